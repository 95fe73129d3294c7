//! `POST https://<mx>/mxdeliv` (spec §5.4 step 1): the relay-to-relay fast path.

use std::net::IpAddr;
use std::time::Duration;

use super::target::{RcptResult, Target};
use crate::relay::Ctx;
use crate::store::QueueEntry;

pub enum HttpFail {
    /// The host does not speak `/mxdeliv` (404/405/…): use SMTP for 30 min.
    Unsupported,
    /// Connection or TLS trouble: fall back to SMTP now.
    Conn(String),
}

const TIMEOUT: Duration = Duration::from_secs(60);

pub async fn mxdeliv(
    ctx: &Ctx,
    t: &Target,
    ip: IpAddr,
    e: &QueueEntry,
    body: &[u8],
) -> Result<Vec<(String, RcptResult)>, HttpFail> {
    let addr = std::net::SocketAddr::new(ip, ctx.cfg.outbound_https_port);
    let cfg = if t.relaxed {
        ctx.client_tls.relaxed_http.clone()
    } else {
        ctx.client_tls.verified_http.clone()
    };
    let mut headers = vec![("Content-Type", "message/rfc822".to_string())];
    if !e.mail_from.is_empty() {
        headers.push(("X-Mail-From", e.mail_from.clone()));
    }
    for r in &e.rcpts {
        headers.push(("X-Mail-To", r.clone()));
    }
    let resp = crate::https_client::post(cfg, addr, &t.host, "/mxdeliv", &headers, body, TIMEOUT)
        .await
        .map_err(HttpFail::Conn)?;
    let all = |r: RcptResult| {
        e.rcpts
            .iter()
            .map(|x| (x.clone(), r.clone()))
            .collect::<Vec<_>>()
    };
    let b = resp.body;
    match resp.status {
        200..=299 => Ok(all(RcptResult::Ok)),
        400 | 413 if b.starts_with('5') => Ok(all(RcptResult::Perm(b))),
        400 | 413 | 503 if b.starts_with('4') => Ok(all(RcptResult::Temp(b))),
        404 | 405 | 501 => Err(HttpFail::Unsupported),
        s => Err(HttpFail::Conn(format!("HTTP {s}"))),
    }
}
