//! Dynamic DNS (dyndns2): when the relay's public address changes, tell the
//! provider at `ddns_url` (HTTPS GET, Basic auth). One update per change,
//! never a repeat of an unchanged address (providers block `nochg` floods);
//! `badauth` and the other account/host errors stop the updates until the
//! configuration is fixed and the relay restarted; `911`/`dnserr` wait at
//! least three retry periods (30 minutes with the default); network errors
//! back off, doubling up to six hours.
//!
//! Addresses: the public IPv6 address of the box's interfaces (Linux
//! `/proc/net/if_inet6`), and IPv4 as the router reported its WAN address
//! (PCP, NAT-PMP or UPnP-IGD, `crate::relay::router_state`) when it is
//! public; a new WAN address is sent at once, without waiting for the next
//! look. Without one (no port mapping, or a private/CGNAT WAN address) the
//! update carries no IPv4 `myip` and the provider takes the request's source
//! address (documented by Dyn and No-IP), which is the router's.

pub mod addresses;
pub mod proto;

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use crate::relay::Ctx;
use proto::Reply;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: u64 = 6 * 3600;
/// Seconds the first update waits for the router's WAN address.
const ROUTER_WAIT: u64 = 15;

fn backoff(retry_min: u64, failures: u32) -> u64 {
    retry_min
        .max(1)
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

async fn resolve(ctx: &Ctx, host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(v) = ctx.resolver.ipv4(host).await {
        if let Some(ip) = v.first() {
            return Some(IpAddr::V4(*ip));
        }
    }
    let v6 = ctx.resolver.ipv6(host).await.ok()?;
    v6.first().map(|ip| IpAddr::V6(*ip))
}

/// The DDNS task (spawned by the server; returns at once without `ddns_url`).
pub async fn run(ctx: Rc<Ctx>) {
    let cfg = ctx.cfg.clone();
    let Some(url) = cfg.ddns_url.clone() else {
        return;
    };
    let Some((host, port, base)) = crate::config::url::parse_url(&url) else {
        return;
    };
    let client = match crate::tls::client_configs(cfg.tls_extra_ca.as_deref()) {
        Ok(c) => c.verified_http,
        Err(e) => {
            log::error!("DDNS disabled: {e}");
            return;
        }
    };
    let hostname = cfg.ddns_hostname.clone();
    let auth = proto::basic_auth(&cfg.ddns_user, &cfg.ddns_password);
    let mut reported: Option<(Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>)> = None;
    let mut failures: u32 = 0;
    let mut attempts: u64 = 0;
    if cfg.port_mapping && ctx.router.wan().is_none() {
        // The router's first answer (its WAN address) usually comes within
        // seconds: one update with it, not one without and one with.
        futures_lite::future::or(sleep(ROUTER_WAIT), ctx.router.changed()).await;
    }
    loop {
        let v6 = if cfg.disable_ipv6 {
            None
        } else {
            addresses::public_ipv6(&cfg.ddns_if_inet6)
        };
        let v4 = ctx.router.public_wan();
        if reported == Some((v4, v6)) {
            futures_lite::future::or(sleep(cfg.ddns_check_interval), ctx.router.changed()).await;
            continue;
        }
        attempts += 1;
        log::info!(
            "DDNS: updating {hostname} at {host} (attempt {attempts}{}{})",
            match v4 {
                Some(a) => format!(", IPv4 {a} from the router"),
                None => String::new(),
            },
            match v6 {
                Some(a) => format!(", IPv6 {a}"),
                None => String::new(),
            }
        );
        let path = proto::request_path(&base, &hostname, v4, v6);
        let result = match resolve(&ctx, &host).await {
            None => Err(format!("cannot resolve {host}")),
            Some(ip) => crate::https_client::get(
                client.clone(),
                SocketAddr::new(ip, port),
                &host,
                &path,
                &[
                    ("Authorization", auth.clone()),
                    ("User-Agent", proto::USER_AGENT.to_string()),
                ],
                REQUEST_TIMEOUT,
            )
            .await
            .map(|r| {
                let reply = proto::parse(&r.body);
                match (&reply, r.status) {
                    (Reply::Unknown(_), 401 | 403) => Reply::Stop("badauth".into()),
                    _ => reply,
                }
            }),
        };
        let wait = match result {
            Ok(Reply::Good(ip)) => {
                log::info!("DDNS: {hostname} now points to {ip}");
                reported = Some((v4, v6));
                failures = 0;
                cfg.ddns_check_interval
            }
            Ok(Reply::NoChange(ip)) => {
                log::info!("DDNS: {hostname} already points to {ip}");
                reported = Some((v4, v6));
                failures = 0;
                cfg.ddns_check_interval
            }
            Ok(Reply::Stop(code)) => {
                log::error!(
                    "DDNS: the provider answered {code}: {}; no more updates until the configuration is fixed and the relay restarted",
                    proto::explain(&code)
                );
                return;
            }
            Ok(Reply::Later(code)) => {
                failures += 1;
                let w = backoff(cfg.ddns_retry_min, failures).saturating_mul(3);
                log::warn!(
                    "DDNS: the provider answered {code} (its own trouble); next attempt in {w} s"
                );
                w
            }
            Ok(Reply::Unknown(text)) => {
                failures += 1;
                let w = backoff(cfg.ddns_retry_min, failures);
                log::warn!("DDNS: unexpected answer {text:?}; next attempt in {w} s");
                w
            }
            Err(e) => {
                failures += 1;
                let w = backoff(cfg.ddns_retry_min, failures);
                log::warn!("DDNS: {e}; next attempt in {w} s");
                w
            }
        };
        if failures == 0 {
            // Updated: the next look, or at once when the router reports
            // a new WAN address. After a failure the backoff holds.
            futures_lite::future::or(sleep(wait), ctx.router.changed()).await;
        } else {
            sleep(wait).await;
        }
    }
}

async fn sleep(secs: u64) {
    async_io::Timer::after(Duration::from_secs(secs.max(1))).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(super::backoff(600, 1), 600);
        assert_eq!(super::backoff(600, 3), 2400);
        assert_eq!(super::backoff(600, 40), super::MAX_BACKOFF);
    }
}
