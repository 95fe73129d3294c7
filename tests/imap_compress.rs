//! COMPRESS=DEFLATE (RFC 4978): only offered with `imap_compress = true`;
//! after it, commands and responses travel as raw DEFLATE with sync flushes.
mod common;

use std::io::{Read, Write};

use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

fn read_line_plain(s: &mut Box<dyn ReadWrite>) -> String {
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

struct Z {
    s: Box<dyn ReadWrite>,
    c: Compress,
    d: Decompress,
    pending: Vec<u8>,
}

impl Z {
    fn send(&mut self, data: &[u8]) {
        let mut out = Vec::with_capacity(data.len() + 64);
        self.c
            .compress_vec(data, &mut out, FlushCompress::Sync)
            .unwrap();
        self.s.write_all(&out).unwrap();
        self.s.flush().unwrap();
    }
    /// Decompressed text up to and including the line starting with `tag `.
    fn until_tag(&mut self, tag: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if text
                .split("\r\n")
                .any(|l| l.starts_with(&format!("{tag} ")))
            {
                self.pending.clear();
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no tagged reply: {text:?}"
            );
            let mut buf = [0u8; 16384];
            let n = self.s.read(&mut buf).expect("read");
            assert!(n > 0, "connection closed: {text:?}");
            let mut out = Vec::with_capacity(65536);
            self.d
                .decompress_vec(&buf[..n], &mut out, FlushDecompress::Sync)
                .unwrap();
            self.pending.extend_from_slice(&out);
        }
    }
}

#[test]
fn deflate_round_trip_when_enabled() {
    let mut r = Relay::start_with(186, "imap_compress = true");
    let mut s = tls_connect(r.sock(993), &[]);
    let greet = read_line_plain(&mut s);
    assert!(greet.contains("COMPRESS=DEFLATE"), "{greet}");
    let user = r.addr("compress1");
    s.write_all(format!("a LOGIN {user} {PASSWORD}\r\n").as_bytes())
        .unwrap();
    assert!(read_line_plain(&mut s).starts_with("a OK"));
    s.write_all(b"b COMPRESS DEFLATE\r\n").unwrap();
    assert_eq!(read_line_plain(&mut s), "b OK DEFLATE active\r\n");
    let mut z = Z {
        s,
        c: Compress::new(Compression::default(), false),
        d: Decompress::new(false),
        pending: Vec::new(),
    };
    z.send(b"c CAPABILITY\r\n");
    let caps = z.until_tag("c");
    assert!(
        caps.contains("c OK") && !caps.contains("COMPRESS=DEFLATE"),
        "{caps}"
    );
    z.send(b"d COMPRESS DEFLATE\r\n");
    assert!(z.until_tag("d").contains("d NO [COMPRESSIONACTIVE]"));
    let body = "Subject: z\r\n\r\n".to_string() + &"compressible line\r\n".repeat(2000);
    z.send(format!("e APPEND INBOX {{{}+}}\r\n{body}\r\n", body.len()).as_bytes());
    assert!(z.until_tag("e").contains("e OK [APPENDUID"));
    z.send(b"f SELECT INBOX\r\n");
    assert!(z.until_tag("f").contains("* 1 EXISTS"));
    z.send(b"g FETCH 1 BODY.PEEK[]\r\n");
    let f = z.until_tag("g");
    assert!(f.contains(&body), "fetched body differs");
    r.assert_serving();
}

#[test]
fn compress_refused_by_default() {
    let r = Relay::start(187);
    let mut c = r.login("compress2");
    let caps = c.cmd("CAPABILITY");
    assert!(!caps.text().contains("COMPRESS"), "{caps:?}");
    let resp = c.cmd("COMPRESS DEFLATE");
    assert!(resp.tagged.contains(" NO "), "{resp:?}");
    let ok = c.cmd("NOOP");
    assert!(ok.ok(), "{ok:?}");
}
