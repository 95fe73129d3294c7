//! TLS: certificates (self-signed via rcgen, or external files) and the
//! rustls server configurations (spec §14). ring is the only crypto provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::{Config, TlsMode};
use crate::net::Conn;

pub mod resolver;
pub mod store;

pub use resolver::CertResolver;

/// Every TLS handshake must finish within this (a silent peer holds no slot).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Server side of a TLS handshake under [`HANDSHAKE_TIMEOUT`].
pub async fn accept(cfg: Arc<ServerConfig>, tcp: async_net::TcpStream) -> Option<Conn> {
    let acc = futures_rustls::TlsAcceptor::from(cfg);
    match crate::net::timeout(HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
        Some(Ok(s)) => Some(Conn::Tls(Box::new(s))),
        Some(Err(e)) => {
            log::debug!("TLS handshake failed: {e}");
            None
        }
        None => None,
    }
}

/// Server configs for each kind of listener.
#[derive(Clone)]
pub struct TlsConfigs {
    /// IMAP and submission: TLS 1.3 only (spec §14 "Protocol floors").
    pub tls13: Arc<ServerConfig>,
    /// IMAP over 443 (ALPN `imap` negotiated), TLS 1.3.
    pub alpn_imap: Arc<ServerConfig>,
    /// SMTP submission over 443 (ALPN `smtp`), TLS 1.3.
    pub alpn_smtp: Arc<ServerConfig>,
    /// HTTPS: TLS 1.2 and 1.3, ALPN http/1.1.
    pub tls12: Arc<ServerConfig>,
    /// Inbound MX STARTTLS on 25: TLS 1.2 and 1.3, no ALPN.
    pub mx: Arc<ServerConfig>,
    /// TLS-ALPN-01 validation handshakes on 443 (ALPN `acme-tls/1`, RFC 8737).
    pub acme_tls: Arc<ServerConfig>,
    /// The certificate all of the above serve; ACME swaps it at run time.
    pub resolver: Arc<CertResolver>,
}

#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Paths of the self-signed certificate in the data folder.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let d = data_dir.join("tls");
    (d.join("cert.pem"), d.join("key.pem"))
}

/// Create the self-signed certificate once (EC P-256, SAN = hostname and,
/// for names, `www.` and `mta-sts.`; spec §14), keep it in the data folder.
pub fn ensure_self_signed(cfg: &Config) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = self_signed_paths(&cfg.data_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let host = cfg.hostname();
    let sans = match cfg.ip_literal {
        Some(_) => vec![host.clone()],
        None => vec![
            host.clone(),
            format!("www.{host}"),
            format!("mta-sts.{host}"),
        ],
    };
    let mut params = rcgen::CertificateParams::new(sans)
        .map_err(|e| TlsError(format!("certificate params: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError(format!("key generation: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError(format!("self-signing: {e}")))?;
    let dir = cert_path.parent().expect("has parent");
    std::fs::create_dir_all(dir)
        .map_err(|e| TlsError(format!("cannot create {}: {e}", dir.display())))?;
    write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), 0o600)?;
    Ok((cert_path, key_path))
}

pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let err = |e: std::io::Error| TlsError(format!("cannot write {}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    crate::store::fsync_dir(path.parent().expect("has parent")).map_err(err)
}

fn load(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError(format!("cannot read certificate {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("bad certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("no certificate in {}", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError(format!("bad key {}: {e}", key.display())))?;
    Ok((certs, key))
}

fn build(
    resolver: &Arc<CertResolver>,
    tls13_only: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut c = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    // Small session cache: resumption helps reconnecting phones.
    c.session_storage = rustls::server::ServerSessionMemoryCache::new(256);
    Ok(Arc::new(c))
}

/// The certificate to serve at startup: the external files, the stored ACME
/// certificate when it still fits (same directory, every name, not expired),
/// else the self-signed one (also until ACME's first issuance).
fn initial_key(cfg: &Config) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
    let files = match &cfg.tls_mode {
        TlsMode::External { cert, key } => (cert.clone(), key.clone()),
        TlsMode::SelfSigned if !cfg.acme_wanted() => ensure_self_signed(cfg)?,
        // A domain relay, or an IP-literal one with `acme_ip = on`.
        TlsMode::SelfSigned | TlsMode::Acme => {
            match store::load_issued(&cfg.data_dir) {
                Ok(Some(i))
                    if i.directory == cfg.acme_directory
                        && i.covers(&cfg.acme_names())
                        && i.not_after > crate::clock::now_secs() =>
                {
                    return Ok(i.key);
                }
                Ok(_) => {}
                Err(e) => {
                    log::error!("ACME: stored certificate unusable ({e}); ordering a new one")
                }
            }
            ensure_self_signed(cfg)?
        }
    };
    let (certs, key) = load(&files.0, &files.1)?;
    let ck = rustls::sign::CertifiedKey::from_der(certs, key, &provider())
        .map_err(|e| TlsError(format!("certificate/key mismatch or unsupported key: {e}")))?;
    Ok(Arc::new(ck))
}

pub fn load_configs(cfg: &Config) -> Result<TlsConfigs, TlsError> {
    let resolver = CertResolver::new(initial_key(cfg)?);
    Ok(TlsConfigs {
        tls13: build(&resolver, true, &[])?,
        alpn_imap: build(&resolver, true, &[b"imap"])?,
        alpn_smtp: build(&resolver, true, &[b"smtp"])?,
        tls12: build(&resolver, false, &[b"http/1.1"])?,
        mx: build(&resolver, false, &[])?,
        acme_tls: build(&resolver, false, &[resolver::ACME_TLS_ALPN])?,
        resolver,
    })
}

/// Client configs for outbound delivery (spec §5.4): certificates verified
/// against the Mozilla roots plus optional extra CAs (`tls_extra_ca`), or
/// relaxed (any certificate) for `_` domains and IP literals.
#[derive(Clone)]
pub struct ClientConfigs {
    pub verified: Arc<rustls::ClientConfig>,
    pub relaxed: Arc<rustls::ClientConfig>,
    /// Same as `verified` with ALPN `http/1.1` for `/mxdeliv`.
    pub verified_http: Arc<rustls::ClientConfig>,
    pub relaxed_http: Arc<rustls::ClientConfig>,
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn client_configs(extra_ca: Option<&Path>) -> Result<ClientConfigs, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(p) = extra_ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(p)
            .map_err(|e| TlsError(format!("cannot read tls_extra_ca {}: {e}", p.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("bad tls_extra_ca {}: {e}", p.display())))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| TlsError(format!("bad CA in {}: {e}", p.display())))?;
        }
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    let build = |verified: bool, alpn: &[&[u8]]| -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let b = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| TlsError(e.to_string()))?;
        let mut c = if verified {
            b.with_root_certificates(roots.clone())
                .with_no_client_auth()
        } else {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
                .with_no_client_auth()
        };
        c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Ok(Arc::new(c))
    };
    Ok(ClientConfigs {
        verified: build(true, &[])?,
        relaxed: build(false, &[])?,
        verified_http: build(true, &[b"http/1.1"])?,
        relaxed_http: build(false, &[b"http/1.1"])?,
    })
}
