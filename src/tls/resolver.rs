//! The one certificate every listener serves, swappable at run time, and the
//! ACME challenge answers (RFC 8737 TLS-ALPN-01 certificates, RFC 8555 §8.3
//! HTTP-01 key authorizations) while an order is being validated.
//!
//! Every `ServerConfig` of the relay (IMAPS, SMTPS, STARTTLS, HTTPS, MX)
//! resolves through one [`CertResolver`], so replacing its certificate
//! replaces it everywhere for the next handshake; connections already open
//! keep the one they began with.

use std::sync::{Arc, Mutex, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// At most this many challenges are answered at once (one per name of the
/// order; the relay's order has three).
const MAX_CHALLENGES: usize = 8;

#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
    /// (name, challenge certificate) for TLS-ALPN-01.
    alpn: Mutex<Vec<(String, Arc<CertifiedKey>)>>,
    /// (token, key authorization) for HTTP-01.
    http: Mutex<Vec<(String, String)>>,
}

impl CertResolver {
    pub fn new(initial: Arc<CertifiedKey>) -> Arc<CertResolver> {
        Arc::new(CertResolver {
            current: RwLock::new(initial),
            alpn: Mutex::new(Vec::new()),
            http: Mutex::new(Vec::new()),
        })
    }

    /// Serve `cert` from the next handshake on, on every listener.
    pub fn set(&self, cert: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = cert;
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn add_alpn_challenge(&self, name: &str, cert: Arc<CertifiedKey>) {
        let mut v = self.alpn.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if v.len() < MAX_CHALLENGES {
            v.push((name.to_ascii_lowercase(), cert));
        }
    }

    pub fn add_http_challenge(&self, token: &str, key_authorization: &str) {
        let mut v = self.http.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|(t, _)| t != token);
        if v.len() < MAX_CHALLENGES {
            v.push((token.to_string(), key_authorization.to_string()));
        }
    }

    /// Forget every challenge (the order is done, valid or not).
    pub fn clear_challenges(&self) {
        self.alpn.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.http.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The key authorization for `GET /.well-known/acme-challenge/<token>`.
    pub fn http_challenge(&self, token: &str) -> Option<String> {
        self.http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, k)| k.clone())
    }

    fn alpn_challenge(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        // A validation server may send the reverse-DNS name of an IP
        // (RFC 8738 §6) with its root dot.
        let name = name.strip_suffix('.').unwrap_or(name);
        self.alpn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| c.clone())
    }
}

/// True when the ClientHello offers only `acme-tls/1` (RFC 8737 §3: the
/// validation server offers exactly this protocol).
pub fn is_acme_hello(alpn: &[Vec<u8>]) -> bool {
    alpn.len() == 1 && alpn[0] == ACME_TLS_ALPN
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let alpn: Vec<Vec<u8>> = hello
            .alpn()
            .map(|i| i.map(|p| p.to_vec()).collect())
            .unwrap_or_default();
        if is_acme_hello(&alpn) {
            // RFC 8737 §3: the challenge certificate for the SNI name, or
            // no handshake at all (never the real certificate).
            return hello.server_name().and_then(|n| self.alpn_challenge(n));
        }
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<CertifiedKey> {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let c = rcgen::CertificateParams::new(vec!["a.test".into()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(k.serialize_der().into());
        let sk = rustls::crypto::ring::sign::any_ecdsa_type(&der).unwrap();
        Arc::new(CertifiedKey::new(vec![c.der().clone()], sk))
    }

    #[test]
    fn challenges_are_bounded_and_cleared() {
        let r = CertResolver::new(key());
        for i in 0..20 {
            r.add_http_challenge(&format!("t{i}"), "ka");
            r.add_alpn_challenge(&format!("n{i}.test"), key());
        }
        assert_eq!(r.http.lock().unwrap().len(), MAX_CHALLENGES);
        assert_eq!(r.http_challenge("t1").as_deref(), Some("ka"));
        assert!(r.alpn_challenge("N1.test").is_some());
        r.clear_challenges();
        assert!(r.http_challenge("t1").is_none());
        assert!(r.alpn_challenge("n1.test").is_none());
    }

    #[test]
    fn acme_hello_is_only_acme_tls() {
        assert!(is_acme_hello(&[b"acme-tls/1".to_vec()]));
        assert!(!is_acme_hello(&[
            b"http/1.1".to_vec(),
            b"acme-tls/1".to_vec()
        ]));
        assert!(!is_acme_hello(&[]));
    }
}
