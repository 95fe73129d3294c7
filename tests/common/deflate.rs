//! An IMAP client side of COMPRESS=DEFLATE (RFC 4978): raw DEFLATE both
//! ways, a sync flush after every write (§4).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::{tls_connect, ReadWrite, Relay, PASSWORD};

pub struct Deflated {
    s: Box<dyn ReadWrite>,
    c: Compress,
    d: Decompress,
    pending: Vec<u8>,
}

/// One CRLF line read without compression (before COMPRESS).
pub fn read_line_plain(s: &mut Box<dyn ReadWrite>) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        if s.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Deflated {
    /// Wrap a connection that has just been answered `OK` to COMPRESS.
    pub fn new(s: Box<dyn ReadWrite>) -> Deflated {
        Deflated {
            s,
            c: Compress::new(Compression::default(), false),
            d: Decompress::new(false),
            pending: Vec::new(),
        }
    }

    /// IMAPS on `r`, logged in as `local`, with COMPRESS DEFLATE active.
    pub fn login(r: &Relay, local: &str) -> Deflated {
        let mut s = tls_connect(r.sock(993), &[]);
        let greet = read_line_plain(&mut s);
        assert!(greet.contains("COMPRESS=DEFLATE"), "{greet}");
        let user = r.addr(local);
        s.write_all(format!("a LOGIN {user} {PASSWORD}\r\n").as_bytes())
            .unwrap();
        let l = read_line_plain(&mut s);
        assert!(l.starts_with("a OK"), "{l}");
        s.write_all(b"b COMPRESS DEFLATE\r\n").unwrap();
        assert_eq!(read_line_plain(&mut s), "b OK DEFLATE active\r\n");
        Deflated::new(s)
    }

    /// Compress and send `data`; an error when the server has gone.
    pub fn try_send(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(data.len() / 64 + 64);
        let mut input = data;
        // compress_vec stops when `out` is full: feed it until all is taken.
        while !input.is_empty() || out.is_empty() {
            out.reserve(64 * 1024);
            let before = self.c.total_in();
            self.c
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            input = &input[(self.c.total_in() - before) as usize..];
        }
        self.s.write_all(&out)?;
        self.s.flush()
    }

    pub fn send(&mut self, data: &[u8]) {
        self.try_send(data).expect("send compressed");
    }

    /// Read and inflate once: `false` when the connection is closed.
    fn fill(&mut self) -> bool {
        let mut buf = [0u8; 16384];
        let n = self.s.read(&mut buf).unwrap_or_default();
        if n == 0 {
            return false;
        }
        let mut input = &buf[..n];
        while !input.is_empty() {
            let mut out = Vec::with_capacity(256 * 1024);
            let before = self.d.total_in();
            self.d
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
                .expect("server's DEFLATE stream");
            input = &input[(self.d.total_in() - before) as usize..];
            self.pending.extend_from_slice(&out);
        }
        true
    }

    /// Inflated text up to and including the line starting with `tag `.
    pub fn until_tag(&mut self, tag: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if text
                .split("\r\n")
                .any(|l| l.starts_with(&format!("{tag} ")))
            {
                self.pending.clear();
                return text;
            }
            assert!(Instant::now() < deadline, "no tagged reply: {text:?}");
            assert!(self.fill(), "connection closed: {text:?}");
        }
    }

    /// Read until the server closes or `limit` passes: the inflated byte
    /// count and the last line (only the tail is kept).
    pub fn drain(&mut self, limit: Duration) -> (u64, String) {
        let end = Instant::now() + limit;
        let mut total = self.pending.len() as u64;
        let mut tail = std::mem::take(&mut self.pending);
        while Instant::now() < end && self.fill() {
            total += self.pending.len() as u64;
            tail.append(&mut self.pending);
            if tail.len() > 8192 {
                tail.drain(..tail.len() - 4096);
            }
        }
        let text = String::from_utf8_lossy(&tail).into_owned();
        let last = text
            .trim_end()
            .rsplit("\r\n")
            .next()
            .unwrap_or("")
            .to_string();
        (total, last)
    }

    /// The first complete inflated line, or what arrived before the close.
    pub fn first_line(&mut self) -> String {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                return String::from_utf8_lossy(&self.pending[..i + 2]).into_owned();
            }
            if !self.fill() {
                return String::from_utf8_lossy(&self.pending).into_owned();
            }
        }
    }
}
