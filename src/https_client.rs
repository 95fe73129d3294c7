//! A minimal HTTPS/1.1 client over rustls, for `/mxdeliv` (spec §5.4),
//! push notifications (spec §9.6), dynamic DNS and ACME (RFC 8555, which
//! needs the response's header fields: [`exchange`]). Responses are bounded.

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

/// [`exchange`] for callers that want only the status and the body as
/// text (trimmed), the response capped at [`MAX_RESPONSE`].
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
    let r = exchange(
        cfg,
        addr,
        host,
        method,
        path,
        headers,
        body,
        limit,
        MAX_RESPONSE,
    )
    .await?;
    Ok(Response {
        status: r.status,
        body: String::from_utf8_lossy(&r.body).trim().to_string(),
    })
}

/// A whole response: status, header fields (names lower-cased), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FullResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Most header fields of a response [`parse_response`] reads.
const MAX_RESPONSE_HEADERS: usize = 64;

/// Parse a response read so far (no I/O): `Ok(None)` while it is
/// incomplete, the response once the head and the whole body are there
/// (RFC 9112 §6.3: `Content-Length`, `chunked` §7.1, or up to the close
/// when `closed`). `head_only`: the answer to a HEAD (no body, §6.3 item 1).
pub fn parse_response(
    raw: &[u8],
    head_only: bool,
    closed: bool,
) -> Result<Option<FullResponse>, String> {
    let mut hdrs = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut r = httparse::Response::new(&mut hdrs);
    let head_len = match r.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if closed => return Err("truncated response head".into()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed HTTP response: {e}")),
    };
    // RFC 9110 §15: a status code is 1xx–5xx (three digits from 100);
    // httparse takes any three digits.
    let status = r
        .code
        .filter(|c| (100..=999).contains(c))
        .ok_or("bad status code")?;
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let done = |body: Vec<u8>| {
        Ok(Some(FullResponse {
            status,
            headers: headers.clone(),
            body,
        }))
    };
    let rest = &raw[head_len..];
    // §6.3 item 1: no body after a HEAD, 1xx, 204 or 304.
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return done(Vec::new());
    }
    let field = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    if field("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked")) {
        let mut body = Vec::new();
        let mut pos = 0;
        loop {
            match httparse::parse_chunk_size(&rest[pos..]) {
                Ok(httparse::Status::Complete((n, size))) => {
                    pos += n;
                    let size = usize::try_from(size).map_err(|_| "chunk too large")?;
                    if size == 0 {
                        // Trailer fields are not used; the body is complete.
                        return done(body);
                    }
                    let end = pos.checked_add(size).ok_or("chunk too large")?;
                    if rest.len() < end + 2 {
                        break;
                    }
                    if &rest[end..end + 2] != b"\r\n" {
                        return Err("bad chunk framing".into());
                    }
                    body.extend_from_slice(&rest[pos..end]);
                    pos = end + 2;
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return Err("bad chunk size".into()),
            }
        }
        return if closed {
            Err("truncated chunked body".into())
        } else {
            Ok(None)
        };
    }
    match field("content-length") {
        Some(v) => {
            let n: usize = v.parse().map_err(|_| "bad Content-Length")?;
            if rest.len() >= n {
                done(rest[..n].to_vec())
            } else if closed {
                Err("truncated body".into())
            } else {
                Ok(None)
            }
        }
        // §6.3 item 8: the body runs to the close.
        None if closed => done(rest.to_vec()),
        None => Ok(None),
    }
}

/// The head of a `Connection: close` request with a Content-Length.
fn request_head(
    method: &str,
    path: &str,
    host: &str,
    port: u16,
    headers: &[(&str, String)],
    body_len: usize,
) -> String {
    // RFC 9110 §7.2: Host carries the port when it is not the default.
    let host_hdr = if port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_hdr}\r\nContent-Length: {body_len}\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// One request (`Connection: close`) and its whole response, at most `max`
/// bytes, all within `limit`. `method` `HEAD` expects no body.
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    cfg: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    limit: Duration,
    max: usize,
) -> Result<FullResponse, String> {
    let io = async {
        let tcp = async_net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name =
            rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let mut tls = futures_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let head = request_head(method, path, host, addr.port(), headers, body.len());
        let e = |e: std::io::Error| e.to_string();
        tls.write_all(head.as_bytes()).await.map_err(e)?;
        tls.write_all(body).await.map_err(e)?;
        tls.flush().await.map_err(e)?;
        let head_only = method == "HEAD";
        let mut resp = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let closed = match tls.read(&mut buf).await {
                Ok(0) => true,
                Ok(n) => {
                    resp.extend_from_slice(&buf[..n]);
                    false
                }
                // A peer that closes without close_notify.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => true,
                Err(e) => return Err(e.to_string()),
            };
            if let Some(r) = parse_response(&resp, head_only, closed)? {
                return Ok(r);
            }
            if resp.len() > max {
                return Err(format!("response larger than {max} bytes"));
            }
        }
    };
    timeout(limit, io).await.ok_or("timeout")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_responses() {
        let p = |raw: &[u8], closed| parse_response(raw, false, closed);
        let r = p(
            b"HTTP/1.1 201 Created\r\nReplay-Nonce: abc\r\nContent-Length: 2\r\n\r\n{}",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (r.status, r.header("replay-nonce"), &r.body[..]),
            (201, Some("abc"), &b"{}"[..])
        );
        assert_eq!(
            p(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", false),
            Ok(None)
        );
        assert!(p(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", true).is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(p(chunked, false).unwrap().unwrap().body, b"abcde");
        assert_eq!(p(&chunked[..chunked.len() - 7], false), Ok(None));
        assert!(p(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX",
            false
        )
        .is_err());
        assert_eq!(
            p(b"HTTP/1.1 200 OK\r\n\r\nto the end", true)
                .unwrap()
                .unwrap()
                .body,
            b"to the end"
        );
        let head = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, false);
        assert_eq!(head.unwrap().unwrap().body, b"");
        assert!(p(b"garbage\r\n\r\n", false).is_err());
        // Found by the fuzz target http_response: status 001 was accepted.
        assert!(p(b"HTTP/1.1 001 Created\r\nContent-Length: 0\r\n\r\n", false).is_err());
    }
}
