//! One certificate order (RFC 8555 §7.4) through `rustls_acme::acme`:
//! directory, account, new order, one challenge per authorization, CSR,
//! finalize, download. Every request has a deadline; `badNonce` answers are
//! sent again with a fresh nonce (RFC 8555 §6.5); polling is bounded.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rustls_acme::acme::{Account, AcmeError, AuthStatus, Directory, Identifier, OrderStatus};

use super::schedule::{classify, is_bad_nonce, FailureKind};
use crate::config::Config;
use crate::tls::CertResolver;

/// Deadline of one ACME HTTPS request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Sends of one request when the CA keeps answering `badNonce`.
const NONCE_TRIES: u32 = 5;
/// Polls of an authorization or order (1, 2, 3 … 5 s apart: ~2 minutes).
const POLLS: u32 = 30;

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

fn fail(kind: FailureKind, what: impl Into<String>) -> Failure {
    Failure {
        kind,
        what: what.into(),
    }
}

fn from_acme(step: &str, e: AcmeError) -> Failure {
    let t = e.to_string();
    fail(classify(&t), format!("{step}: {t}"))
}

/// Run `f` under the deadline, again on `badNonce`.
async fn request<T, F, Fut>(step: &str, mut f: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AcmeError>>,
{
    for n in 1..=NONCE_TRIES {
        match crate::net::timeout(REQUEST_TIMEOUT, f()).await {
            None => {
                return Err(fail(
                    FailureKind::Transient,
                    format!("{step}: no answer in time"),
                ))
            }
            Some(Ok(v)) => return Ok(v),
            Some(Err(e)) if n < NONCE_TRIES && is_bad_nonce(&e.to_string()) => {
                log::info!("ACME: {step}: badNonce, sending again with a fresh nonce");
            }
            Some(Err(e)) => return Err(from_acme(step, e)),
        }
    }
    unreachable!("the last try returns")
}

async fn pause(poll: u32) {
    async_io::Timer::after(Duration::from_secs(u64::from(poll.clamp(1, 5)))).await;
}

/// The account: `contact` from `acme_email`; the CA returns the existing
/// account for a known key (RFC 8555 §7.3.1).
async fn account(
    cfg: &Config,
    client: &Arc<rustls::ClientConfig>,
    key: &[u8],
) -> Result<Account, Failure> {
    let dir = request("directory", || {
        Directory::discover(client, &cfg.acme_directory)
    })
    .await?;
    let contact: Vec<String> = if cfg.acme_email.trim().is_empty() {
        Vec::new()
    } else {
        vec![format!("mailto:{}", cfg.acme_email.trim())]
    };
    request("account", || {
        Account::create_with_keypair(client, dir.clone(), &contact, key)
    })
    .await
}

/// Order, validate and download. Returns the text of the certificate file
/// (`crate::tls::store::format_issued`).
pub async fn issue(
    cfg: &Config,
    client: &Arc<rustls::ClientConfig>,
    resolver: &CertResolver,
    account_key: &[u8],
    challenge: Challenge,
) -> Result<String, Failure> {
    let acct = account(cfg, client, account_key).await?;
    let names = cfg.acme_names();
    let (order_url, mut order) =
        request("new order", || acct.new_order(client, names.clone())).await?;
    for auth_url in &order.authorizations {
        authorize(&acct, client, resolver, auth_url, challenge).await?;
    }
    // Ready (every authorization valid) → finalize with our CSR.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| fail(FailureKind::Transient, format!("key generation: {e}")))?;
    let mut polls = 0;
    let cert_url = loop {
        match &order.status {
            OrderStatus::Ready => {
                let mut params = rcgen::CertificateParams::new(names.clone())
                    .map_err(|e| fail(FailureKind::Transient, format!("CSR: {e}")))?;
                params.distinguished_name = rcgen::DistinguishedName::new();
                let csr = params
                    .serialize_request(&key)
                    .map_err(|e| fail(FailureKind::Transient, format!("CSR: {e}")))?;
                let fin = order.finalize.clone();
                order = request("finalize", || acct.finalize(client, &fin, csr.der())).await?;
                continue;
            }
            OrderStatus::Valid { certificate } => break certificate.clone(),
            OrderStatus::Invalid => {
                let why = order
                    .error
                    .as_ref()
                    .and_then(|p| p.detail.clone())
                    .unwrap_or_else(|| "no reason given".into());
                return Err(fail(
                    FailureKind::Validation,
                    format!("order invalid: {why}"),
                ));
            }
            OrderStatus::Pending | OrderStatus::Processing => {}
        }
        polls += 1;
        if polls > POLLS {
            return Err(fail(FailureKind::Transient, "order not ready in time"));
        }
        pause(polls).await;
        order = request("order status", || acct.order(client, &order_url)).await?;
    };
    let chain = request("download", || acct.certificate(client, &cert_url)).await?;
    Ok(crate::tls::store::format_issued(
        &cfg.acme_directory,
        &key.serialize_pem(),
        &chain,
    ))
}

/// One authorization (RFC 8555 §7.5): publish the challenge answer, tell the
/// CA it is ready (§7.5.1), poll until valid or invalid.
async fn authorize(
    acct: &Account,
    client: &Arc<rustls::ClientConfig>,
    resolver: &CertResolver,
    url: &str,
    challenge: Challenge,
) -> Result<(), Failure> {
    let auth = request("authorization", || acct.auth(client, url)).await?;
    let Identifier::Dns(name) = &auth.identifier;
    match auth.status {
        AuthStatus::Valid => return Ok(()),
        AuthStatus::Pending => {}
        other => {
            return Err(fail(
                FailureKind::Validation,
                format!("authorization for {name} is {other:?}"),
            ))
        }
    }
    let ch_url = match challenge {
        Challenge::TlsAlpn01 => {
            let (ch, cert) = acct
                .tls_alpn_01(&auth.challenges, name.clone())
                .map_err(|e| from_acme("tls-alpn-01", e))?;
            resolver.add_alpn_challenge(name, Arc::new(cert));
            ch.url.clone()
        }
        Challenge::Http01 => {
            let (ch, key_auth) = acct
                .http_01(&auth.challenges)
                .map_err(|e| from_acme("http-01", e))?;
            resolver.add_http_challenge(&ch.token, &key_auth);
            ch.url.clone()
        }
    };
    request("challenge", || acct.challenge(client, &ch_url)).await?;
    for poll in 1..=POLLS {
        pause(poll).await;
        let a = request("authorization status", || acct.auth(client, url)).await?;
        match a.status {
            AuthStatus::Valid => return Ok(()),
            AuthStatus::Pending => continue,
            status => {
                let why = a
                    .challenges
                    .iter()
                    .find_map(|c| c.error.as_ref().and_then(|p| p.detail.clone()))
                    .unwrap_or_else(|| "no reason given".into());
                return Err(fail(
                    FailureKind::Validation,
                    format!("{name}: authorization {status:?}: {why}"),
                ));
            }
        }
    }
    Err(fail(
        FailureKind::Transient,
        format!("{name}: not validated in time"),
    ))
}
