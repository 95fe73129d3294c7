//! Where a domain's mail goes (spec §5.4): IP literals directly, else MX
//! hosts in preference order (null MX and NXDOMAIN are permanent), and per
//! host HTTPS `/mxdeliv` first, SMTP on port 25 second.

use std::net::{IpAddr, SocketAddr};

use super::{http_client, smtp_client, RcptResult};
use crate::server::Ctx;
use crate::store::QueueEntry;

/// A host to try, with its addresses and TLS policy.
pub struct Target {
    /// Name for SNI and certificate checks (the MX host name, or the IP).
    pub host: String,
    pub addrs: Vec<IpAddr>,
    /// `_` domains and IP literals accept any certificate (spec §5.4).
    pub relaxed: bool,
}

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

/// MX resolution through the DNS resolver (wired in by the DNS module).
pub async fn resolve_mx(_ctx: &Ctx, domain: &str) -> Result<Vec<Target>, RcptResult> {
    Err(RcptResult::Temp(format!(
        "421 DNS resolution failed for {domain}: no resolver configured"
    )))
}

/// Try every target in order until one gives an answer (spec §5.4 steps 1–3).
pub async fn deliver(ctx: &Ctx, e: &QueueEntry, body: &[u8]) -> Vec<(String, RcptResult)> {
    let targets = match targets(ctx, &e.domain).await {
        Ok(t) => t,
        Err(r) => return all(&e.rcpts, r),
    };
    let mut last = String::from("no mail server found");
    for t in &targets {
        let now = crate::auth::now_secs();
        for ip in &t.addrs {
            if !ctx.outbound_smtp_only.is_smtp_only(&t.host, now) {
                match http_client::mxdeliv(ctx, t, *ip, e, body).await {
                    Ok(res) => return res,
                    Err(http_client::HttpFail::Unsupported) => {
                        ctx.outbound_smtp_only.set(&t.host, now)
                    }
                    Err(http_client::HttpFail::Conn(err)) => {
                        log::debug!("mxdeliv to {} failed: {err}", t.host)
                    }
                }
            }
            let addr = SocketAddr::new(*ip, ctx.cfg.outbound_smtp_port);
            match smtp_client::deliver(ctx, t, addr, e, body).await {
                Ok(res) => return res,
                Err(err) => {
                    ctx.outbound_smtp_only.clear(&t.host);
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
