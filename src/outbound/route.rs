//! Where a domain's mail goes (spec §5.4): IP literals directly, else MX
//! hosts in preference order (null MX and NXDOMAIN are permanent), and per
//! host HTTPS `/mxdeliv` first, SMTP on port 25 second.

use std::net::{IpAddr, SocketAddr};

use super::target::{RcptResult, SmtpOnly, Target};
use super::{http_client, smtp_client};
use crate::relay::Ctx;
use crate::store::QueueEntry;

fn all(rcpts: &[String], r: RcptResult) -> Vec<(String, RcptResult)> {
    rcpts.iter().map(|x| (x.clone(), r.clone())).collect()
}

/// Resolve the targets of `domain`, or a result for all recipients.
pub async fn targets(ctx: &Ctx, domain: &str) -> Result<Vec<Target>, RcptResult> {
    if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let lit = lit.strip_prefix("IPv6:").unwrap_or(lit);
        return match lit.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![Target {
                host: ip.to_string(),
                addrs: vec![ip],
                relaxed: true,
            }]),
            Err(_) => Err(RcptResult::Perm(format!(
                "512 Domain {domain} does not exist"
            ))),
        };
    }
    crate::outbound::route::resolve_mx(ctx, domain).await
}

/// MX resolution (spec §5.4): null MX and NXDOMAIN are permanent, other DNS
/// failures temporary; no MX means the domain itself (implicit MX).
pub async fn resolve_mx(ctx: &Ctx, domain: &str) -> Result<Vec<Target>, RcptResult> {
    use crate::dns::{DnsError, MxResult};
    let hosts: Vec<String> = match ctx.resolver.mx(domain).await {
        Ok(MxResult::NullMx) => {
            return Err(RcptResult::Perm(
                "556 5.1.10 Permanent failure: Recipient address has null MX".into(),
            ))
        }
        Ok(MxResult::Implicit(d)) => vec![d],
        Ok(MxResult::Hosts(v)) => v.into_iter().map(|(_, h)| h).collect(),
        Err(DnsError::NxDomain) => {
            return Err(RcptResult::Perm(format!(
                "512 Domain {domain} does not exist"
            )))
        }
        Err(e) => {
            return Err(RcptResult::Temp(format!(
                "421 DNS resolution failed for {domain}: {e}"
            )))
        }
    };
    let mut out = Vec::new();
    for host in hosts.into_iter().take(10) {
        let mut addrs: Vec<IpAddr> = Vec::new();
        if let Ok(v4) = ctx.resolver.ipv4(&host).await {
            addrs.extend(v4.into_iter().map(IpAddr::V4));
        }
        if !ctx.cfg.disable_ipv6 {
            if let Ok(v6) = ctx.resolver.ipv6(&host).await {
                addrs.extend(v6.into_iter().map(IpAddr::V6));
            }
        }
        if addrs.is_empty() {
            continue;
        }
        // `_` domains use self-signed certificates (spec §5.4).
        let relaxed = domain.starts_with('_') || host.starts_with('_');
        out.push(Target {
            host,
            addrs,
            relaxed,
        });
    }
    if out.is_empty() {
        return Err(RcptResult::Temp(format!(
            "421 DNS resolution failed for {domain}: no address for any MX host"
        )));
    }
    Ok(out)
}

/// Try every target in order until one gives an answer (spec §5.4 steps 1–3).
pub async fn deliver(
    ctx: &Ctx,
    smtp_only: &SmtpOnly,
    e: &QueueEntry,
    body: &[u8],
) -> Vec<(String, RcptResult)> {
    let targets = match targets(ctx, &e.domain).await {
        Ok(t) => t,
        Err(r) => return all(&e.rcpts, r),
    };
    let mut last = String::from("no mail server found");
    for t in &targets {
        let now = crate::clock::now_secs();
        for ip in &t.addrs {
            if !smtp_only.is_smtp_only(&t.host, now) {
                match http_client::mxdeliv(ctx, t, *ip, e, body).await {
                    Ok(res) => return res,
                    Err(http_client::HttpFail::Unsupported) => smtp_only.set(&t.host, now),
                    Err(http_client::HttpFail::Conn(err)) => {
                        log::debug!("mxdeliv to {} failed: {err}", t.host)
                    }
                }
            }
            let addr = SocketAddr::new(*ip, ctx.cfg.outbound_smtp_port);
            match smtp_client::deliver(ctx, t, addr, e, body).await {
                Ok(res) => return res,
                Err(err) => {
                    smtp_only.clear(&t.host);
                    last = format!("{}: {err}", t.host);
                }
            }
        }
    }
    all(
        &e.rcpts,
        RcptResult::Temp(format!(
            "421 Failed to connect to any mail server; last attempt to {last}"
        )),
    )
}
