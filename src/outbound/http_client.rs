//! `POST https://<mx>/mxdeliv` (spec §5.4 step 1): the relay-to-relay fast
//! path. A minimal HTTP/1.1 client over rustls.

use std::net::IpAddr;
use std::time::Duration;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

use super::route::Target;
use super::RcptResult;
use crate::server::{timeout, Ctx};
use crate::store::QueueEntry;

pub enum HttpFail {
    /// The host does not speak `/mxdeliv` (404/405/…): use SMTP for 30 min.
    Unsupported,
    /// Connection or TLS trouble: fall back to SMTP now.
    Conn(String),
}

const TIMEOUT: Duration = Duration::from_secs(60);
const MAX_RESPONSE: usize = 16 * 1024;

pub async fn mxdeliv(
    ctx: &Ctx,
    t: &Target,
    ip: IpAddr,
    e: &QueueEntry,
    body: &[u8],
) -> Result<Vec<(String, RcptResult)>, HttpFail> {
    let addr = std::net::SocketAddr::new(ip, ctx.cfg.outbound_https_port);
    let conn = |e: String| HttpFail::Conn(e);
    let tcp = timeout(TIMEOUT, async_net::TcpStream::connect(addr))
        .await
        .ok_or_else(|| conn("connect timeout".into()))?
        .map_err(|e| conn(e.to_string()))?;
    let cfg = if t.relaxed {
        ctx.client_tls.relaxed_http.clone()
    } else {
        ctx.client_tls.verified_http.clone()
    };
    let name =
        rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|e| conn(e.to_string()))?;
    let mut tls = timeout(
        TIMEOUT,
        futures_rustls::TlsConnector::from(cfg).connect(name, tcp),
    )
    .await
    .ok_or_else(|| conn("TLS timeout".into()))?
    .map_err(|e| conn(format!("TLS: {e}")))?;
    let mut head = format!(
        "POST /mxdeliv HTTP/1.1\r\nHost: {}\r\nContent-Type: message/rfc822\r\nContent-Length: {}\r\nConnection: close\r\n",
        t.host,
        body.len()
    );
    if !e.mail_from.is_empty() {
        head.push_str(&format!("X-Mail-From: {}\r\n", e.mail_from));
    }
    for r in &e.rcpts {
        head.push_str(&format!("X-Mail-To: {r}\r\n"));
    }
    head.push_str("\r\n");
    let io = async {
        tls.write_all(head.as_bytes()).await?;
        tls.write_all(body).await?;
        tls.flush().await?;
        let mut resp = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // Stop as soon as the response is complete: a peer that closes
            // without TLS close_notify must not turn a delivered message
            // into an error (and a duplicate over SMTP).
            if response_complete(&resp) || resp.len() > MAX_RESPONSE {
                break;
            }
            match tls.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => resp.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !resp.is_empty() => {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        Ok::<_, std::io::Error>(resp)
    };
    let resp = timeout(TIMEOUT, io)
        .await
        .ok_or_else(|| conn("timeout".into()))?
        .map_err(|e| conn(e.to_string()))?;
    let text = String::from_utf8_lossy(&resp);
    let status: u16 = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| conn("malformed HTTP response".into()))?;
    let body_text = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    let all = |r: RcptResult| {
        e.rcpts
            .iter()
            .map(|x| (x.clone(), r.clone()))
            .collect::<Vec<_>>()
    };
    match status {
        200..=299 => Ok(all(RcptResult::Ok)),
        400 | 413 if body_text.starts_with('5') => Ok(all(RcptResult::Perm(body_text))),
        400 | 413 | 503 if body_text.starts_with('4') => Ok(all(RcptResult::Temp(body_text))),
        404 | 405 | 501 => Err(HttpFail::Unsupported),
        _ => Err(HttpFail::Conn(format!("HTTP {status}"))),
    }
}

/// Head received and, if it has a Content-Length, the whole body too.
fn response_complete(resp: &[u8]) -> bool {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
    match head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        Some(n) => resp.len() >= end + 4 + n,
        None => false,
    }
}
