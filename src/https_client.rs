//! A minimal HTTPS/1.1 POST client over rustls, for `/mxdeliv` (spec §5.4)
//! and push notifications (spec §9.6). Responses are bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::timeout;

const MAX_RESPONSE: usize = 16 * 1024;

pub struct Response {
    pub status: u16,
    pub body: String,
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

/// POST `body` to `https://<host><path>` at `addr`. `Err` is a connection,
/// TLS or protocol failure (the request may or may not have arrived).
pub async fn post(
    cfg: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    limit: Duration,
) -> Result<Response, String> {
    send(cfg, addr, host, "POST", path, headers, body, limit).await
}

/// GET `https://<host><path>` at `addr` (dynamic DNS updates).
pub async fn get(
    cfg: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, String)],
    limit: Duration,
) -> Result<Response, String> {
    send(cfg, addr, host, "GET", path, headers, b"", limit).await
}

#[allow(clippy::too_many_arguments)]
async fn send(
    cfg: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    limit: Duration,
) -> Result<Response, String> {
    let tcp = timeout(limit, async_net::TcpStream::connect(addr))
        .await
        .ok_or("connect timeout")?
        .map_err(|e| e.to_string())?;
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut tls = timeout(
        limit,
        futures_rustls::TlsConnector::from(cfg).connect(name, tcp),
    )
    .await
    .ok_or("TLS timeout")?
    .map_err(|e| format!("TLS: {e}"))?;
    // RFC 9110 §7.2: Host carries the port when it is not the default.
    let host_hdr = if addr.port() == 443 {
        host.to_string()
    } else {
        format!("{host}:{}", addr.port())
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_hdr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let io = async {
        tls.write_all(head.as_bytes()).await?;
        tls.write_all(body).await?;
        tls.flush().await?;
        let mut resp = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // Stop at a complete response: a peer that closes without TLS
            // close_notify must not turn a success into an error.
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
    let resp = timeout(limit, io)
        .await
        .ok_or("timeout")?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp);
    let status: u16 = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or("malformed HTTP response")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"
        ));
    }
}
