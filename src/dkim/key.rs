//! Keys: our signing key (kept on disk as PKCS#8 PEM) and the public keys
//! of DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};

use super::header::{decode_b64, parse_tag_list};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) enum Signer {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// Our DKIM private key: RSA (2048 bits when we generate it) or Ed25519.
pub struct SigningKey {
    pub(crate) signer: Signer,
    path: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kind", &self.kind())
            .field("path", &self.path)
            .finish()
    }
}

/// Key algorithm of a signing key or a key record (`k=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ed25519,
}

impl SigningKey {
    /// Load `<dir>/dkim/<selector>.key`, or generate it (RSA-2048, or Ed25519
    /// when `ed25519`) and store it atomically with mode 0600. Accepts PKCS#8
    /// PEM (`PRIVATE KEY`) and PKCS#1 PEM (`RSA PRIVATE KEY`, what
    /// `opendkim-genkey` writes, so an upstream relay's key can be copied in).
    /// An existing key of the other kind than requested is an error: its
    /// published DNS record would not match the configuration.
    pub fn load_or_generate(
        dir: &Path,
        selector: &str,
        ed25519: bool,
    ) -> Result<SigningKey, String> {
        if selector.is_empty()
            || !selector
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            || selector.starts_with('.')
        {
            return Err(format!("invalid DKIM selector {selector:?}"));
        }
        let kdir = dir.join("dkim");
        let path = kdir.join(format!("{selector}.key"));
        match fs::read(&path) {
            Ok(pem) => {
                let key = Self::from_pem(&pem, path.clone())?;
                let want = if ed25519 {
                    KeyKind::Ed25519
                } else {
                    KeyKind::Rsa
                };
                if key.kind() != want {
                    return Err(format!(
                        "{}: is an {:?} key but {:?} is configured; use another selector",
                        path.display(),
                        key.kind(),
                        want
                    ));
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let der = if ed25519 {
                    generate_ed25519()?
                } else {
                    generate_rsa(2048)?
                };
                let pem = to_pem("PRIVATE KEY", &der);
                fs::create_dir_all(&kdir).map_err(|e| format!("{}: {e}", kdir.display()))?;
                let _ = fs::set_permissions(&kdir, fs::Permissions::from_mode(0o700));
                write_atomic(&kdir, &path, pem.as_bytes())?;
                Self::from_pem(pem.as_bytes(), path)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Parse a PEM private key (see [`SigningKey::load_or_generate`]). ring
    /// signs only with RSA keys of 2048 bits or more.
    pub fn from_pem(pem: &[u8], path: PathBuf) -> Result<SigningKey, String> {
        let where_ = path.display().to_string();
        let text = std::str::from_utf8(pem).map_err(|_| format!("{where_}: not PEM"))?;
        let (label, der) = from_pem(text).ok_or_else(|| format!("{where_}: not PEM"))?;
        let signer = match label.as_str() {
            "RSA PRIVATE KEY" => Signer::Rsa(
                RsaKeyPair::from_der(&der).map_err(|e| format!("{where_}: bad RSA key: {e}"))?,
            ),
            "PRIVATE KEY" => {
                if let Ok(k) = RsaKeyPair::from_pkcs8(&der) {
                    Signer::Rsa(k)
                } else {
                    Signer::Ed25519(
                        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| {
                            format!("{where_}: neither RSA nor Ed25519 PKCS#8: {e}")
                        })?,
                    )
                }
            }
            other => return Err(format!("{where_}: unexpected PEM label {other:?}")),
        };
        Ok(SigningKey { signer, path })
    }

    pub fn kind(&self) -> KeyKind {
        match self.signer {
            Signer::Rsa(_) => KeyKind::Rsa,
            Signer::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Where the key is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `p=` value: base64 of the SubjectPublicKeyInfo for RSA (as
    /// `opendkim-genkey` publishes it), of the raw 32-byte key for Ed25519
    /// (RFC 8463 §4.2).
    pub fn public_key_b64(&self) -> String {
        match &self.signer {
            Signer::Rsa(k) => B64.encode(rsa_spki(k.public_key().as_ref())),
            Signer::Ed25519(k) => B64.encode(k.public_key().as_ref()),
        }
    }

    /// The TXT record for `<selector>._domainkey.<domain>` (spec §13). The
    /// caller splits it into ≤255-byte strings for DNS.
    pub fn dns_record(&self) -> String {
        let k = match self.kind() {
            KeyKind::Rsa => "rsa",
            KeyKind::Ed25519 => "ed25519",
        };
        format!("v=DKIM1;k={k};p={};s=email;t=s", self.public_key_b64())
    }
}

/// Ring-backed RNG for the `rsa` crate's key generation.
struct RingRng(SystemRandom);

impl rsa::rand_core::RngCore for RingRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The OS RNG failing is not recoverable.
        ring::rand::SecureRandom::fill(&self.0, dest).expect("system RNG failed");
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for RingRng {}

/// A new RSA key as PKCS#8 DER (the `rsa` crate generates, ring signs).
pub(crate) fn generate_rsa(bits: usize) -> Result<Vec<u8>, String> {
    use rsa::pkcs8::EncodePrivateKey;
    let mut rng = RingRng(SystemRandom::new());
    let key = rsa::RsaPrivateKey::new(&mut rng, bits).map_err(|e| format!("RSA keygen: {e}"))?;
    let doc = key.to_pkcs8_der().map_err(|e| format!("RSA keygen: {e}"))?;
    Ok(doc.as_bytes().to_vec())
}

fn generate_ed25519() -> Result<Vec<u8>, String> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| "Ed25519 keygen failed".to_string())
}

/// tmp + fsync + rename + directory fsync, mode 0600.
fn write_atomic(dir: &Path, path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("key.tmp{}", std::process::id()));
    let err = |e: std::io::Error| format!("{}: {e}", tmp.display());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

pub(crate) fn to_pem(label: &str, der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn from_pem(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let lend = rest.find("-----")?;
    let label = rest[..lend].to_string();
    let body = &rest[lend + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, B64.decode(b64).ok()?))
}

// ---- minimal DER (only what SPKI <-> PKCS#1 RSAPublicKey needs) ----

fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    der_len(content.len(), &mut v);
    v.extend_from_slice(content);
    v
}

/// AlgorithmIdentifier for rsaEncryption (1.2.840.113549.1.1.1) with NULL.
const RSA_ALG_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Wrap a PKCS#1 RSAPublicKey into a SubjectPublicKeyInfo.
pub(crate) fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut inner = RSA_ALG_ID.to_vec();
    inner.extend(der(0x03, &bits));
    der(0x30, &inner)
}

/// Read one DER TLV: (tag, content, rest). Total on any input.
fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&l0, d) = d.split_first()?;
    let (len, d) = if l0 < 0x80 {
        (l0 as usize, d)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || d.len() < n {
            return None;
        }
        let len = d[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &d[n..])
    };
    if d.len() < len {
        return None;
    }
    Some((tag, &d[..len], &d[len..]))
}

/// The PKCS#1 RSAPublicKey inside `p=`: a SubjectPublicKeyInfo (what
/// everybody publishes) or a bare RSAPublicKey (RFC 6376 §3.6.1 allows it).
fn rsa_pkcs1_from_p(p: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "p= is not an RSA public key".to_string();
    let (tag, content, _) = tlv(p).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (t1, c1, rest) = tlv(content).ok_or_else(bad)?;
    match t1 {
        // SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }
        0x30 => {
            let (oid_tag, oid, _) = tlv(c1).ok_or_else(bad)?;
            if oid_tag != 0x06 || oid != &RSA_ALG_ID[4..13] {
                return Err("p= is not an rsaEncryption key".into());
            }
            let (t2, bits, _) = tlv(rest).ok_or_else(bad)?;
            if t2 != 0x03 || bits.first() != Some(&0) {
                return Err(bad());
            }
            Ok(bits[1..].to_vec())
        }
        // RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }
        0x02 => Ok(p.to_vec()),
        _ => Err(bad()),
    }
}

/// A public key from a DKIM key record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub kind: KeyKind,
    /// RSA: PKCS#1 RSAPublicKey DER; Ed25519: the 32 raw bytes.
    pub key: Vec<u8>,
    /// `t=s`: the `i=` domain must equal `d=` exactly (RFC 6376 §3.6.1).
    pub strict: bool,
    /// `t=y`: the domain is testing DKIM. We verify as usual.
    pub testing: bool,
}

/// Parse a DKIM key record (RFC 6376 §3.6.1), tolerant as spec §6.2 says:
/// whitespace anywhere, escaped or stray quotes (from a caller that did not
/// unquote the TXT strings), no `v=`, the strings already concatenated.
/// `p=` empty means revoked (an error). Keys whose `h=` excludes sha256 or
/// whose `s=` excludes email are refused.
pub fn parse_key_record(txt: &str) -> Result<PublicKey, String> {
    if txt.len() > 16 * 1024 {
        return Err("key record too long".into());
    }
    let cleaned: Vec<u8> = txt.bytes().filter(|&b| b != b'"' && b != b'\\').collect();
    let tags = parse_tag_list(&cleaned, true).map_err(|e| format!("key record: {e}"))?;
    let get = |n: &str| tags.iter().find(|t| t.name == n).map(|t| t.value);
    if let Some(v) = get("v") {
        if v != b"DKIM1" {
            return Err("key record: v= is not DKIM1".into());
        }
    }
    let kind = match get("k").map(|k| k.to_ascii_lowercase()) {
        None => KeyKind::Rsa,
        Some(k) if k == b"rsa" => KeyKind::Rsa,
        Some(k) if k == b"ed25519" => KeyKind::Ed25519,
        Some(_) => return Err("key record: unknown k= key type".into()),
    };
    let list_has = |v: &[u8], want: &[u8]| {
        v.split(|&b| b == b':').any(|x| {
            x.iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .eq(want.iter().copied())
        })
    };
    if let Some(h) = get("h") {
        if !list_has(h, b"sha256") {
            return Err("key record: h= excludes sha256".into());
        }
    }
    if let Some(s) = get("s") {
        if !list_has(s, b"*") && !list_has(s, b"email") {
            return Err("key record: s= excludes email".into());
        }
    }
    let (mut strict, mut testing) = (false, false);
    if let Some(t) = get("t") {
        strict = list_has(t, b"s");
        testing = list_has(t, b"y");
    }
    let p = get("p").ok_or_else(|| "key record: no p= tag".to_string())?;
    let p = decode_b64(p).map_err(|e| format!("key record: p= {e}"))?;
    if p.is_empty() {
        return Err("key revoked (empty p=)".into());
    }
    let key = match kind {
        KeyKind::Rsa => rsa_pkcs1_from_p(&p)?,
        KeyKind::Ed25519 => {
            if p.len() != 32 {
                return Err("key record: Ed25519 p= is not 32 bytes".into());
            }
            p
        }
    };
    Ok(PublicKey {
        kind,
        key,
        strict,
        testing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_roundtrip_and_totality() {
        let pkcs1 = vec![0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        let spki = rsa_spki(&pkcs1);
        assert_eq!(rsa_pkcs1_from_p(&spki).unwrap(), pkcs1);
        assert_eq!(rsa_pkcs1_from_p(&pkcs1).unwrap(), pkcs1);
        // Long-form lengths.
        let big = vec![0u8; 300];
        let d = der(0x04, &big);
        assert_eq!(&d[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(tlv(&d).unwrap().1.len(), 300);
        for junk in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x80],
            &[0x30, 0x05, 0x30],
        ] {
            assert!(rsa_pkcs1_from_p(junk).is_err());
        }
    }

    #[test]
    fn pem_roundtrip() {
        let der = (0u8..=200).collect::<Vec<_>>();
        let pem = to_pem("PRIVATE KEY", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(from_pem(&pem), Some(("PRIVATE KEY".to_string(), der)));
        assert_eq!(from_pem("nothing"), None);
        assert!(SigningKey::from_pem(
            b"-----BEGIN X-----\nAAAA\n-----END X-----\n",
            PathBuf::new()
        )
        .is_err());
        assert!(SigningKey::from_pem(pem.as_bytes(), PathBuf::new()).is_err());
    }

    #[test]
    fn generated_rsa_key_loads_in_ring() {
        // ring loads only keys of at least 2048 bits for signing.
        let der = generate_rsa(2048).unwrap();
        let k = RsaKeyPair::from_pkcs8(&der).unwrap();
        assert_eq!(k.public().modulus_len(), 256);
    }
}
