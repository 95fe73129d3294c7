//! A small HTTP/1.1 server (httparse) for the web surface of spec §12:
//! `/new`, autoconfig, MTA-STS, robots.txt, the index page.

mod mxdeliv;
pub mod pages;
pub mod query;
mod routes;

use std::rc::Rc;
use std::time::Duration;

use crate::net::Stream;
use crate::relay::Ctx;

/// Limits: request head size, header count, request body size for non-upload routes.
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;
pub const MAX_SMALL_BODY: usize = 64 * 1024;
/// Most bytes of an oversized body read and dropped before answering 413.
const MAX_DISCARD: u64 = 64 * 1024 * 1024;
const IDLE: Duration = Duration::from_secs(60);
const MAX_REQUESTS_PER_CONN: usize = 100;

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            reason: reason(status),
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }
    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }
    fn encode(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).into_bytes();
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        // RFC 9110 §8.6: no Content-Length in a 204.
        if self.status != 204 {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

enum ReadError {
    Closed,
    Bad(u16, &'static str),
    /// Body over the limit: answer 413 at once, then drain what the client
    /// still sends (bounded) so it sees the answer, not a reset.
    TooLarge(&'static str, u64),
}

async fn drain(s: &mut Stream, len: u64) {
    let mut left = len.min(MAX_DISCARD);
    while left > 0 {
        let mut sink = Vec::new();
        let n = left.min(64 * 1024);
        s.set_deadline(Duration::from_secs(10));
        match s.read_exact_into(n as usize, &mut sink).await {
            Ok(true) => left -= n,
            _ => break,
        }
    }
}

/// Parse a request head (request line and header lines, each ending in
/// CRLF, then an empty line) without I/O: RFC 9112 §2–§6 through httparse,
/// then what this server requires of a body — a `Content-Length`, no
/// `Transfer-Encoding` (§6.1). Returns the request (body still empty) and
/// the declared body length, or the status and reason to refuse it with.
pub fn parse_head(head: &[u8]) -> Result<(Request, u64), (u16, &'static str)> {
    let mut hdrs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hdrs);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err((431, "too many headers")),
        _ => return Err((400, "malformed request")),
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let r = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };
    if r.header("transfer-encoding").is_some() {
        return Err((411, "chunked request bodies are not supported"));
    }
    // §6.3: Content-Length is 1*DIGIT; several differing ones are an
    // error (a request smuggling vector behind proxies).
    let mut len = None;
    for (_, v) in r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        let v = v.trim_ascii();
        let n = (!v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit))
            .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            .flatten()
            .ok_or((400, "bad Content-Length"))?;
        if len.is_some_and(|l| l != n) {
            return Err((400, "conflicting Content-Length"));
        }
        len = Some(n);
    }
    Ok((r, len.unwrap_or(0)))
}

async fn read_request(s: &mut Stream, ctx: &Ctx) -> Result<Request, ReadError> {
    let max_message = ctx.cfg.max_message_size;
    // Read the head line by line (bounded), then parse it with httparse.
    let mut head = Vec::new();
    loop {
        match s.read_line(MAX_HEAD).await {
            Ok(crate::net::Line::Ok(l)) => {
                if l.is_empty() {
                    if head.is_empty() {
                        // Tolerate leading empty lines (RFC 9112 §2.2),
                        // each counted like a request against the budget.
                        s.command_done().await;
                        continue;
                    }
                    break;
                }
                head.extend_from_slice(&l);
                head.extend_from_slice(b"\r\n");
                if head.len() > MAX_HEAD {
                    return Err(ReadError::Bad(431, "request head too large"));
                }
            }
            Ok(crate::net::Line::TooLong(_)) => {
                return Err(ReadError::Bad(431, "request line too long"))
            }
            _ => return Err(ReadError::Closed),
        }
    }
    head.extend_from_slice(b"\r\n");
    let (mut r, len) = parse_head(&head).map_err(|(code, why)| ReadError::Bad(code, why))?;
    // `/mxdeliv` carries whole messages (spec §6.3); everything else is small.
    let limit = if r.path == "/mxdeliv" {
        max_message
    } else {
        MAX_SMALL_BODY as u64
    };
    if len > limit {
        let msg = if r.path == "/mxdeliv" {
            "552 Message exceeds maximum size"
        } else {
            "request body too large"
        };
        return Err(ReadError::TooLarge(msg, len));
    }
    let mut body = Vec::new();
    // Only a few large bodies are buffered at once; each at a bounded pace.
    let _permit = if len as usize > crate::relay::BIG_BODY {
        Some(ctx.big_bodies.acquire_arc().await)
    } else {
        None
    };
    s.set_deadline(crate::net::transfer_time(len));
    if len > 0
        && !s
            .read_exact_into(len as usize, &mut body)
            .await
            .map_err(|_| ReadError::Closed)?
    {
        return Err(ReadError::Closed);
    }
    r.body = body;
    Ok(r)
}

/// Serve HTTP requests on one connection (keep-alive, bounded). The caller
/// holds the connection's slots. Returns the connection when the client
/// asked to switch to the iroh relay protocol (`GET /relay` with `Upgrade:
/// iroh derp http`): the caller hands it to the relay service, which
/// answers the upgrade; bytes after the request head stay buffered.
pub async fn serve_conn(ctx: Rc<Ctx>, mut s: Stream, tls: bool, lan: bool) -> Option<Stream> {
    for _ in 0..MAX_REQUESTS_PER_CONN {
        s.command_done().await;
        s.set_deadline(IDLE);
        let mut req = match read_request(&mut s, &ctx).await {
            Err(ReadError::Closed) => return None,
            Err(ReadError::TooLarge(msg, len)) => {
                let _ = s.send(&Response::text(413, msg).encode(false)).await;
                drain(&mut s, len).await;
                let _ = futures_lite::io::AsyncWriteExt::close(&mut s.conn).await;
                return None;
            }
            Err(ReadError::Bad(code, msg)) => {
                let _ = s.send(&Response::text(code, msg).encode(false)).await;
                return None;
            }
            Ok(r) => r,
        };
        let relay = routes::iroh_relay(&ctx, &req);
        if let Some(routes::Relay::Upgrade) = relay {
            return Some(s);
        }
        let keep_alive = !req
            .header("connection")
            .map(|v| v.eq_ignore_ascii_case(b"close"))
            .unwrap_or(false);
        let resp = if let Some(routes::Relay::Answer(r)) = relay {
            r
        } else if !tls {
            routes::plain_http(&ctx, &req)
        } else if req.path == "/mxdeliv" {
            mxdeliv::handle(&ctx, &mut req).await
        } else {
            routes::route(&ctx, &req, lan).await
        };
        let mut out = resp.encode(keep_alive);
        if req.method == "HEAD" {
            // RFC 9110 §9.3.2: the GET answer's header fields, no content.
            out.truncate(out.len() - resp.body.len());
        }
        if s.send(&out).await.is_err() {
            return None;
        }
        if !keep_alive {
            // Sends TLS close_notify so clients see a clean end.
            let _ = futures_lite::io::AsyncWriteExt::close(&mut s.conn).await;
            return None;
        }
    }
    None
}
