//! ACME (RFC 8555): for a domain relay one certificate for the domain,
//! `mta-sts.` and `www.`; for an IP-literal relay with `acme_ip = on` one
//! for its address (RFC 8738, Let's Encrypt's `shortlived` profile, about
//! 6 days). ECDSA P-256, obtained by TLS-ALPN-01 on the HTTPS port
//! (RFC 8737) or HTTP-01 on port 80, kept on the data partition
//! (`crate::tls::store`), renewed by its own dates (`schedule`), and swapped
//! into every listener at once (`crate::tls::CertResolver`).
//!
//! The request layer is our own (`client`, `jws`): JWS ES256 with ring,
//! nonces, problem documents; this module decides when to order, with
//! which challenge, how to retry, and where the files go.

pub mod client;
pub mod jws;
pub mod order;
pub mod schedule;

use std::rc::Rc;
use std::time::Duration;

use crate::clock::now_secs;
use crate::config::{AcmeChallenge, Config};
use crate::relay::Ctx;
use crate::tls::store::{self, Issued};
use order::Challenge;
use schedule::{backoff, renew_at, FailureKind, CLOCK_FLOOR};

/// Longest single sleep: a clock that jumps (NTP step) is noticed within this.
const MAX_SLEEP: i64 = 3600;

/// The ACME task, spawned by the server; it works when `tls_mode` is ACME
/// or an IP-literal relay has `acme_ip = on`.
pub async fn run(ctx: Rc<Ctx>) {
    let cfg = ctx.cfg.clone();
    if !cfg.acme_wanted() {
        return;
    }
    if cfg.acme_directory.is_empty() {
        log::warn!("ACME is off (acme_directory = off): the self-signed certificate is used");
        return;
    }
    let client = match crate::tls::client_configs(cfg.acme_extra_ca.as_deref()) {
        Ok(c) => c.verified,
        Err(e) => {
            log::error!("ACME disabled: {e}");
            return;
        }
    };
    let resolver = ctx.tls.resolver.clone();
    let data_dir = cfg.data_dir.clone();
    let mut current: Option<Issued> = match store::load_issued(&data_dir) {
        Ok(Some(i)) if i.directory == cfg.acme_directory && i.covers(&cfg.acme_names()) => Some(i),
        Ok(Some(_)) => {
            log::info!(
                "ACME: stored certificate is for other names or another CA; ordering a new one"
            );
            None
        }
        Ok(None) => None,
        // Said at startup too (crate::tls); the next order replaces the file.
        Err(_) => None,
    };
    let mut failures: u32 = 0;
    let mut validation_failures: u32 = 0;
    let mut attempts: u64 = 0;
    loop {
        wait_for_clock(&cfg).await;
        let now = now_secs();
        if let Some(i) = &current {
            let due = renew_at(i.not_before, i.not_after);
            if now < due {
                sleep_secs((due - now).min(MAX_SLEEP)).await;
                continue;
            }
            log::info!(
                "ACME: certificate valid until {}: renewing",
                fmt_time(i.not_after)
            );
        }
        let key = match account_key(&data_dir).await {
            Ok(k) => k,
            Err(e) => {
                log::error!("ACME: account key: {e}");
                failures += 1;
                sleep_secs(backoff(cfg.acme_retry_min, failures, FailureKind::Transient) as i64)
                    .await;
                continue;
            }
        };
        let challenge = pick_challenge(&cfg, validation_failures);
        attempts += 1;
        log::info!(
            "ACME: ordering a certificate for {} from {} by {challenge:?} (attempt {attempts})",
            cfg.acme_names().join(", "),
            cfg.acme_directory
        );
        let result = order::issue(&cfg, &client, &ctx.resolver, &resolver, &key, challenge).await;
        resolver.clear_challenges();
        let result = match result {
            Ok(text) => save(&data_dir, text).await,
            Err(f) => Err(f),
        };
        match result {
            Ok(i) => {
                log::info!(
                    "ACME: certificate issued, valid until {}, renewal from {}",
                    fmt_time(i.not_after),
                    fmt_time(renew_at(i.not_before, i.not_after))
                );
                resolver.set(i.key.clone());
                current = Some(i);
                failures = 0;
                validation_failures = 0;
            }
            Err(f) => {
                failures += 1;
                if f.kind == FailureKind::Validation {
                    validation_failures += 1;
                }
                let wait = backoff(cfg.acme_retry_min, failures, f.kind);
                let hint = match f.kind {
                    FailureKind::Validation => " (check that every name's A record points to this relay and that the port is reachable from the Internet)",
                    FailureKind::RateLimited => " (the CA's rate limit: waiting longer)",
                    FailureKind::Transient => "",
                };
                log::error!(
                    "ACME: order failed: {}{hint}; next attempt in {wait} s",
                    f.what
                );
                sleep_secs(wait as i64).await;
            }
        }
    }
}

/// `auto`: TLS-ALPN-01 (needs only the HTTPS port), HTTP-01 after a failed
/// validation when port 80 is served, then back.
fn pick_challenge(cfg: &Config, validation_failures: u32) -> Challenge {
    match cfg.acme_challenge {
        AcmeChallenge::TlsAlpn01 => Challenge::TlsAlpn01,
        AcmeChallenge::Http01 => Challenge::Http01,
        AcmeChallenge::Auto => {
            if cfg.https_port == 0 || (cfg.http_port != 0 && validation_failures % 2 == 1) {
                Challenge::Http01
            } else {
                Challenge::TlsAlpn01
            }
        }
    }
}

/// Until the clock can be trusted: the synced-mark file exists (appliance:
/// `/run/ntp.synced`, written by ntpd's event script) and the time is past
/// [`CLOCK_FLOOR`]. Said once in the log.
async fn wait_for_clock(cfg: &Config) {
    let mut said = false;
    loop {
        let file_ok = cfg
            .clock_synced_file
            .as_ref()
            .map(|p| p.exists())
            .unwrap_or(true);
        let now = now_secs();
        if file_ok && now >= CLOCK_FLOOR {
            if said {
                log::info!("ACME: the clock is set; going on");
            }
            return;
        }
        if !said {
            if file_ok {
                log::warn!(
                    "ACME: the clock says {}, before {}: waiting for the clock to be set",
                    fmt_time(now),
                    fmt_time(CLOCK_FLOOR)
                );
            } else {
                log::warn!(
                    "ACME: waiting for the clock to be synchronised ({} missing)",
                    cfg.clock_synced_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                );
            }
            said = true;
        }
        sleep_secs(2).await;
    }
}

async fn account_key(data_dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let d = data_dir.to_path_buf();
    blocking::unblock(move || {
        match store::load_account_key(&d) {
            Ok(Some(k)) => return Ok(k),
            Ok(None) => {}
            // A damaged key cannot sign: make a new account rather than stop.
            Err(e) => log::error!("ACME: {e}; creating a new account key"),
        }
        let k = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| format!("key generation: {e}"))?;
        store::store_account_key(&d, k.as_ref()).map_err(|e| e.to_string())?;
        Ok(k.as_ref().to_vec())
    })
    .await
}

/// Check the downloaded certificate, then write it (blocking pool: fsync).
async fn save(data_dir: &std::path::Path, text: String) -> Result<Issued, order::Failure> {
    let bad = |e: crate::tls::TlsError| order::Failure {
        kind: FailureKind::Transient,
        what: format!("issued certificate: {e}"),
    };
    let issued = store::parse_issued(&text).map_err(bad)?;
    let d = data_dir.to_path_buf();
    blocking::unblock(move || store::store_issued(&d, &text))
        .await
        .map_err(bad)?;
    Ok(issued)
}

async fn sleep_secs(s: i64) {
    async_io::Timer::after(Duration::from_secs(s.max(1) as u64)).await;
}

fn fmt_time(t: i64) -> String {
    crate::clock::format_utc(t)
}
