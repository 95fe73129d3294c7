//! One certificate order (RFC 8555 §7.4) through our request layer
//! (`client`): account, new order — `dns` identifiers for a domain relay,
//! one `ip` identifier (RFC 8738 §3) with the `shortlived` profile for an
//! IP-literal relay —, one challenge per authorization (§7.5), CSR,
//! finalize, download. Every request has a deadline (`client`); polling is
//! bounded.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::client::Session;
use super::jws::{b64, json_string, AccountKey};
use super::schedule::FailureKind;
use crate::config::Config;
use crate::tls::CertResolver;

/// Polls of an authorization or order (1, 2, 3 … 5 s apart: ~2 minutes).
const POLLS: u32 = 30;

/// The certificate profile Let's Encrypt issues IP-address certificates
/// under (about 6 days; chosen in newOrder, draft-ietf-acme-profiles).
pub const IP_PROFILE: &str = "shortlived";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    TlsAlpn01,
    Http01,
}

#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub what: String,
}

pub fn fail(kind: FailureKind, what: impl Into<String>) -> Failure {
    Failure {
        kind,
        what: what.into(),
    }
}

async fn pause(poll: u32) {
    async_io::Timer::after(Duration::from_secs(u64::from(poll.clamp(1, 5)))).await;
}

/// The newOrder payload (§7.4; RFC 8738 §3 `ip` identifiers; the profile
/// only for IP orders).
pub fn new_order_payload(names: &[String]) -> String {
    let ids: Vec<Value> = names
        .iter()
        .map(|n| {
            let ty = if n.parse::<IpAddr>().is_ok() {
                "ip"
            } else {
                "dns"
            };
            serde_json::json!({"type": ty, "value": n})
        })
        .collect();
    let mut v = serde_json::json!({ "identifiers": ids });
    if names.iter().any(|n| n.parse::<IpAddr>().is_ok()) {
        v["profile"] = Value::String(IP_PROFILE.into());
    }
    v.to_string()
}

/// RFC 8738 §6: the TLS-ALPN-01 SNI of an IP identifier is its reverse-DNS
/// name (RFC 1035 §3.5 `in-addr.arpa`, RFC 3596 §2.5 `ip6.arpa`).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0x0f, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// The RFC 8737 §3 validation certificate: self-signed, one SAN (the DNS
/// name, or for RFC 8738 §6 the IP address), the critical acmeIdentifier
/// extension holding SHA-256 of the key authorization.
pub fn alpn_certificate(
    identifier: &str,
    key_authorization: &str,
) -> Result<rustls::sign::CertifiedKey, String> {
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    let mut params = rcgen::CertificateParams::new(vec![identifier.to_string()])
        .map_err(|e| format!("challenge certificate: {e}"))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("challenge key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("challenge certificate: {e}"))?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let sk = rustls::crypto::ring::sign::any_ecdsa_type(&der)
        .map_err(|e| format!("challenge key: {e}"))?;
    Ok(rustls::sign::CertifiedKey::new(
        vec![cert.der().clone()],
        sk,
    ))
}

fn status(v: &Value) -> &str {
    v["status"].as_str().unwrap_or("")
}

/// Order, validate and download. Returns the text of the certificate file
/// (`crate::tls::store::format_issued`).
pub async fn issue(
    cfg: &Config,
    client: &Arc<rustls::ClientConfig>,
    dns: &crate::dns::Resolver,
    resolver: &CertResolver,
    account_key: &[u8],
    challenge: Challenge,
) -> Result<String, Failure> {
    let key = AccountKey::from_pkcs8(account_key).map_err(|e| fail(FailureKind::Transient, e))?;
    let mut s = Session::open(client.clone(), dns, &cfg.acme_directory, key).await?;
    let contact: Vec<String> = if cfg.acme_email.trim().is_empty() {
        Vec::new()
    } else {
        vec![format!("mailto:{}", cfg.acme_email.trim())]
    };
    s.account(&contact).await?;
    let names = cfg.acme_names();
    let url = s.new_order.clone();
    let r = s
        .post("new order", &url, Some(&new_order_payload(&names)), false)
        .await?;
    let order_url = r
        .location
        .ok_or_else(|| fail(FailureKind::Transient, "new order: no Location"))?;
    let mut order = r.json;
    let auths: Vec<String> = order["authorizations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if auths.is_empty() || auths.len() > names.len() {
        return Err(fail(
            FailureKind::Transient,
            format!(
                "new order: {} authorizations for {} names",
                auths.len(),
                names.len()
            ),
        ));
    }
    for auth_url in &auths {
        authorize(&mut s, resolver, auth_url, challenge).await?;
    }
    // Ready (every authorization valid) → finalize with our CSR.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| fail(FailureKind::Transient, format!("key generation: {e}")))?;
    let mut polls = 0;
    let mut finalized = false;
    let cert_url = loop {
        match status(&order) {
            "ready" if !finalized => {
                // An IP name becomes an iPAddress SAN (rcgen parses it).
                let mut params = rcgen::CertificateParams::new(names.clone())
                    .map_err(|e| fail(FailureKind::Transient, format!("CSR: {e}")))?;
                params.distinguished_name = rcgen::DistinguishedName::new();
                let csr = params
                    .serialize_request(&key)
                    .map_err(|e| fail(FailureKind::Transient, format!("CSR: {e}")))?;
                let fin = order["finalize"]
                    .as_str()
                    .ok_or_else(|| fail(FailureKind::Transient, "order: no finalize URL"))?
                    .to_string();
                let payload = format!(r#"{{"csr":{}}}"#, json_string(&b64(csr.der())));
                order = s.post("finalize", &fin, Some(&payload), false).await?.json;
                finalized = true;
                continue;
            }
            "valid" => match order["certificate"].as_str() {
                Some(u) => break u.to_string(),
                None => {
                    return Err(fail(
                        FailureKind::Transient,
                        "order valid without certificate",
                    ))
                }
            },
            "invalid" => {
                let why = order["error"]["detail"]
                    .as_str()
                    .unwrap_or("no reason given")
                    .to_string();
                return Err(fail(
                    FailureKind::Validation,
                    format!("order invalid: {why}"),
                ));
            }
            _ => {}
        }
        polls += 1;
        if polls > POLLS {
            return Err(fail(FailureKind::Transient, "order not ready in time"));
        }
        pause(polls).await;
        order = s.post("order status", &order_url, None, false).await?.json;
    };
    let chain = s.post("download", &cert_url, None, true).await?.body;
    let chain = String::from_utf8(chain)
        .map_err(|_| fail(FailureKind::Transient, "download: not PEM text"))?;
    Ok(crate::tls::store::format_issued(
        &cfg.acme_directory,
        &key.serialize_pem(),
        &chain,
    ))
}

/// One authorization (RFC 8555 §7.5): publish the challenge answer, tell the
/// CA it is ready (§7.5.1), poll until valid or invalid.
async fn authorize(
    s: &mut Session<'_>,
    resolver: &CertResolver,
    url: &str,
    challenge: Challenge,
) -> Result<(), Failure> {
    let auth = s.post("authorization", url, None, false).await?.json;
    let name = auth["identifier"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let ip: Option<IpAddr> = match auth["identifier"]["type"].as_str() {
        Some("ip") => Some(name.parse().map_err(|_| {
            fail(
                FailureKind::Transient,
                format!("authorization: bad ip {name:?}"),
            )
        })?),
        _ => None,
    };
    match status(&auth) {
        "valid" => return Ok(()),
        "pending" => {}
        other => {
            return Err(fail(
                FailureKind::Validation,
                format!("authorization for {name} is {other}"),
            ))
        }
    }
    let want = match challenge {
        Challenge::TlsAlpn01 => "tls-alpn-01",
        Challenge::Http01 => "http-01",
    };
    let ch = auth["challenges"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == want))
        .ok_or_else(|| {
            fail(
                FailureKind::Validation,
                format!("{name}: the CA offers no {want} challenge"),
            )
        })?;
    let (ch_url, token) = match (ch["url"].as_str(), ch["token"].as_str()) {
        (Some(u), Some(t)) => (u.to_string(), t.to_string()),
        _ => {
            return Err(fail(
                FailureKind::Transient,
                "challenge without url or token",
            ))
        }
    };
    let key_auth = s.key.key_authorization(&token);
    match challenge {
        Challenge::TlsAlpn01 => {
            let cert =
                alpn_certificate(&name, &key_auth).map_err(|e| fail(FailureKind::Transient, e))?;
            let sni = ip.map(reverse_name).unwrap_or_else(|| name.clone());
            resolver.add_alpn_challenge(&sni, Arc::new(cert));
        }
        Challenge::Http01 => resolver.add_http_challenge(&token, &key_auth),
    }
    s.post("challenge", &ch_url, Some("{}"), false).await?;
    for poll in 1..=POLLS {
        pause(poll).await;
        let a = s.post("authorization status", url, None, false).await?.json;
        match status(&a) {
            "valid" => return Ok(()),
            "pending" | "processing" => continue,
            st => {
                let why = a["challenges"]
                    .as_array()
                    .and_then(|cs| cs.iter().find_map(|c| c["error"]["detail"].as_str()))
                    .unwrap_or("no reason given")
                    .to_string();
                // Same words as before ("authorization Invalid") for the log.
                let st = match st {
                    "invalid" => "Invalid".to_string(),
                    o => o.to_string(),
                };
                return Err(fail(
                    FailureKind::Validation,
                    format!("{name}: authorization {st}: {why}"),
                ));
            }
        }
    }
    Err(fail(
        FailureKind::Transient,
        format!("{name}: not validated in time"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_name_ip_identifiers_and_the_profile() {
        let v: Value =
            serde_json::from_str(&new_order_payload(&["203.0.113.7".to_string()])).unwrap();
        assert_eq!(v["identifiers"][0]["type"], "ip");
        assert_eq!(v["identifiers"][0]["value"], "203.0.113.7");
        assert_eq!(v["profile"], IP_PROFILE);
        let v: Value = serde_json::from_str(&new_order_payload(&[
            "a.test".to_string(),
            "www.a.test".to_string(),
        ]))
        .unwrap();
        assert_eq!(v["identifiers"][1]["type"], "dns");
        assert!(v.get("profile").is_none());
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.5".parse().unwrap()),
            "5.2.0.192.in-addr.arpa"
        );
        let r = reverse_name("2001:db8::567:89ab".parse().unwrap());
        assert_eq!(
            r,
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn alpn_certificate_for_an_ip_has_an_ip_san_and_the_digest() {
        let ck = alpn_certificate("203.0.113.7", "tok.thumb").unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(&ck.cert[0]).unwrap();
        let san = c.subject_alternative_name().unwrap().unwrap();
        assert!(matches!(
            san.value.general_names[..],
            [x509_parser::extensions::GeneralName::IPAddress(b)] if b == [203, 0, 113, 7]
        ));
        // id-pe-acmeIdentifier 1.3.6.1.5.5.7.1.31, critical (RFC 8737 §3).
        let ext = c
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .unwrap();
        assert!(ext.critical);
        let digest = ring::digest::digest(&ring::digest::SHA256, b"tok.thumb");
        assert!(ext.value.ends_with(digest.as_ref()));
    }
}
