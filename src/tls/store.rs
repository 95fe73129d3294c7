//! The ACME account key and the issued certificate on the data partition,
//! written tmp + fsync + rename + dir fsync (never the library's own cache).
//!
//! `data_dir/acme/account.pem`: the account's P-256 key (PKCS#8 PEM).
//! `data_dir/acme/certificate.pem`: one file holding a comment line with the
//! directory URL, the certificate's private key and its chain, so a crash
//! can never leave a key beside another key's certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::TlsError;

const DIRECTORY_LINE: &str = "# acme directory: ";

pub fn acme_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("acme")
}
pub fn account_path(data_dir: &Path) -> PathBuf {
    acme_dir(data_dir).join("account.pem")
}
pub fn certificate_path(data_dir: &Path) -> PathBuf {
    acme_dir(data_dir).join("certificate.pem")
}

/// An issued certificate as kept on disk.
#[derive(Debug, Clone)]
pub struct Issued {
    pub key: Arc<CertifiedKey>,
    /// Unix seconds, from the leaf certificate itself.
    pub not_before: i64,
    pub not_after: i64,
    /// DNS names of the leaf's subjectAltName.
    pub names: Vec<String>,
    pub directory: String,
}

impl Issued {
    /// True when the leaf names every one of `wanted` (case-insensitive).
    pub fn covers(&self, wanted: &[String]) -> bool {
        wanted
            .iter()
            .all(|w| self.names.iter().any(|n| n.eq_ignore_ascii_case(w)))
    }
}

/// Validity and names (DNS names and IP addresses) of a DER certificate
/// (RFC 5280 §4.1.2.5, §4.2.1.6).
pub fn leaf_facts(der: &[u8]) -> Result<(i64, i64, Vec<String>), TlsError> {
    let d = leaf_details(der)?;
    Ok((d.not_before, d.not_after, d.names))
}

/// What the status page says about the certificate being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertDetails {
    /// subjectAltName entries: DNS names (lower case) and IP addresses.
    pub names: Vec<String>,
    /// The subject's common name, if any.
    pub subject_cn: Option<String>,
    /// The issuer's distinguished name (RFC 4514 string).
    pub issuer: String,
    pub self_issued: bool,
    pub not_before: i64,
    pub not_after: i64,
}

pub fn leaf_details(der: &[u8]) -> Result<CertDetails, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError(format!("certificate does not parse: {e}")))?;
    let v = cert.validity();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    names.push(d.to_ascii_lowercase())
                }
                // RFC 5280 §4.2.1.6: 4 octets (IPv4) or 16 (IPv6).
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        names.push(std::net::Ipv4Addr::from(a).to_string());
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        names.push(std::net::Ipv6Addr::from(a).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let subject_cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_string);
    Ok(CertDetails {
        names,
        subject_cn,
        issuer: cert.issuer().to_string(),
        self_issued: cert.issuer().as_raw() == cert.subject().as_raw(),
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
    })
}

/// Parse the certificate file's text: directory line, key, chain; the key
/// must belong to the leaf.
pub fn parse_issued(text: &str) -> Result<Issued, TlsError> {
    let directory = text
        .lines()
        .find_map(|l| l.strip_prefix(DIRECTORY_LINE))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| TlsError("no directory line".into()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("bad certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError("no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| TlsError(format!("bad private key: {e}")))?;
    let (not_before, not_after, names) = leaf_facts(&chain[0])?;
    let ck = CertifiedKey::from_der(chain, key, &super::provider())
        .map_err(|e| TlsError(format!("key does not match the certificate: {e}")))?;
    Ok(Issued {
        key: Arc::new(ck),
        not_before,
        not_after,
        names,
        directory,
    })
}

/// The file's text for [`parse_issued`].
pub fn format_issued(directory: &str, key_pem: &str, chain_pem: &str) -> String {
    format!("{DIRECTORY_LINE}{directory}\n{key_pem}\n{chain_pem}")
}

/// `Ok(None)`: nothing stored yet. `Err`: a file that is there but unusable
/// (the caller says so and orders a new certificate, which replaces it).
pub fn load_issued(data_dir: &Path) -> Result<Option<Issued>, TlsError> {
    let p = certificate_path(data_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TlsError(format!("cannot read {}: {e}", p.display()))),
    };
    parse_issued(&text)
        .map(Some)
        .map_err(|e| TlsError(format!("{}: {e}", p.display())))
}

/// Blocking (fsync): call from the blocking pool.
pub fn store_issued(data_dir: &Path, text: &str) -> Result<(), TlsError> {
    let d = acme_dir(data_dir);
    std::fs::create_dir_all(&d)
        .map_err(|e| TlsError(format!("cannot create {}: {e}", d.display())))?;
    super::write_atomic(&certificate_path(data_dir), text.as_bytes(), 0o600)
}

/// The account key (PKCS#8 DER), `Ok(None)` when there is none yet.
pub fn load_account_key(data_dir: &Path) -> Result<Option<Vec<u8>>, TlsError> {
    let p = account_path(data_dir);
    let text = match std::fs::read(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TlsError(format!("cannot read {}: {e}", p.display()))),
    };
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(&text)
        .map_err(|e| TlsError(format!("{}: bad account key: {e}", p.display())))?;
    let der = key.secret_pkcs8_der().to_vec();
    // Must be a usable P-256 key, not just any PEM.
    ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| TlsError(format!("{}: bad account key: {e}", p.display())))?;
    Ok(Some(der))
}

/// Blocking (fsync): call from the blocking pool.
pub fn store_account_key(data_dir: &Path, pkcs8_der: &[u8]) -> Result<(), TlsError> {
    let d = acme_dir(data_dir);
    std::fs::create_dir_all(&d)
        .map_err(|e| TlsError(format!("cannot create {}: {e}", d.display())))?;
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64_lines(pkcs8_der)
    );
    super::write_atomic(&account_path(data_dir), pem.as_bytes(), 0o600)
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    b.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued_text(names: &[&str]) -> String {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.not_before = rcgen::date_time_ymd(2030, 1, 1);
        p.not_after = rcgen::date_time_ymd(2030, 3, 1);
        let c = p.self_signed(&k).unwrap();
        format_issued("https://ca.test/dir", &k.serialize_pem(), &c.pem())
    }

    #[test]
    fn round_trip_dates_names_directory() {
        let i = parse_issued(&issued_text(&["a.test", "www.a.test"])).unwrap();
        assert_eq!(i.directory, "https://ca.test/dir");
        assert_eq!(
            i.not_before,
            crate::clock::days_from_civil(2030, 1, 1) * 86400
        );
        assert_eq!(
            i.not_after,
            crate::clock::days_from_civil(2030, 3, 1) * 86400
        );
        assert!(i.covers(&["A.test".into(), "www.a.test".into()]));
        assert!(!i.covers(&["mta-sts.a.test".into()]));
    }

    #[test]
    fn corrupt_or_mismatched_is_an_error() {
        let good = issued_text(&["a.test"]);
        assert!(parse_issued(&good.replace("MII", "MIX")).is_err());
        assert!(parse_issued("").is_err());
        // The key of one certificate beside another's chain.
        let other = issued_text(&["a.test"]);
        let key_of_good = &good[..good.find("-----BEGIN CERTIFICATE").unwrap()];
        let chain_of_other = &other[other.find("-----BEGIN CERTIFICATE").unwrap()..];
        let e = parse_issued(&format!("{key_of_good}{chain_of_other}")).unwrap_err();
        assert!(e.0.contains("does not match"), "{e}");
    }

    #[test]
    fn account_key_round_trip() {
        let d = std::env::temp_dir().join(format!("acme-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        assert!(load_account_key(&d).unwrap().is_none());
        let der = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        store_account_key(&d, der.as_ref()).unwrap();
        assert_eq!(load_account_key(&d).unwrap().unwrap(), der.as_ref());
        std::fs::write(account_path(&d), "garbage").unwrap();
        assert!(load_account_key(&d).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
