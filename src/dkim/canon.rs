//! Canonicalization (RFC 6376 §3.4).
//!
//! Bodies are streamed into a sink so that a large body is never copied.

use super::header::{find_crlf, is_wsp};

/// Header canonicalization (RFC 6376 §3.4.1, §3.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderCanon {
    Simple,
    Relaxed,
}

/// Body canonicalization (RFC 6376 §3.4.3, §3.4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyCanon {
    Simple,
    Relaxed,
}

impl HeaderCanon {
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderCanon::Simple => "simple",
            HeaderCanon::Relaxed => "relaxed",
        }
    }
}

impl BodyCanon {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyCanon::Simple => "simple",
            BodyCanon::Relaxed => "relaxed",
        }
    }
}

/// Canonicalize one whole header field (`field` = name, colon, value and
/// its CRLF, if any) into `out`.
///
/// * simple (§3.4.1): unchanged.
/// * relaxed (§3.4.2): name lower-cased; value unfolded, WSP runs → one SP,
///   WSP at the end of the value and around the colon removed; `name:value`
///   followed by CRLF.
///
/// `with_crlf = false` drops the terminating CRLF (for the DKIM-Signature
/// field itself, §3.7).
pub(crate) fn header(c: HeaderCanon, field: &[u8], with_crlf: bool, out: &mut Vec<u8>) {
    match c {
        HeaderCanon::Simple => {
            let f = if !with_crlf && field.ends_with(b"\r\n") {
                &field[..field.len() - 2]
            } else {
                field
            };
            out.extend_from_slice(f);
            if with_crlf && !f.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
        HeaderCanon::Relaxed => {
            let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
            let name = &field[..colon];
            let mut ne = name.len();
            while ne > 0 && is_wsp(name[ne - 1]) {
                ne -= 1;
            }
            out.extend(name[..ne].iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            let value = if colon < field.len() {
                &field[colon + 1..]
            } else {
                b""
            };
            let mut pending_sp = false;
            let mut started = false;
            for &b in value {
                if b == b'\r' || b == b'\n' {
                    // Unfolding: CRLF disappears (§3.4.2 "Unfold").
                    continue;
                }
                if is_wsp(b) {
                    pending_sp = started;
                    continue;
                }
                if pending_sp {
                    out.push(b' ');
                    pending_sp = false;
                }
                started = true;
                out.push(b);
            }
            if with_crlf {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Feed the canonicalized `body` to `sink` (RFC 6376 §3.4.3, §3.4.4).
///
/// * simple: trailing empty lines removed; an empty body becomes one CRLF;
///   a missing final CRLF is added.
/// * relaxed: WSP at line ends removed, WSP runs → one SP, trailing empty
///   lines removed; an empty body stays empty; a non-empty body ends in CRLF.
pub(crate) fn body(c: BodyCanon, body: &[u8], mut sink: impl FnMut(&[u8])) {
    let mut pending_empty = 0usize;
    let mut any = false;
    let mut pos = 0;
    let mut line_buf: Vec<u8> = Vec::new();
    while pos < body.len() {
        let (line, next) = match find_crlf(body, pos) {
            Some(e) => (&body[pos..e], e + 2),
            None => (&body[pos..], body.len()),
        };
        pos = next;
        let line: &[u8] = match c {
            BodyCanon::Simple => line,
            BodyCanon::Relaxed => {
                line_buf.clear();
                let mut pending_sp = false;
                for &b in line {
                    if is_wsp(b) {
                        pending_sp = true;
                        continue;
                    }
                    if pending_sp {
                        line_buf.push(b' ');
                        pending_sp = false;
                    }
                    line_buf.push(b);
                }
                &line_buf
            }
        };
        if line.is_empty() {
            pending_empty += 1;
            continue;
        }
        for _ in 0..pending_empty {
            sink(b"\r\n");
        }
        pending_empty = 0;
        sink(line);
        sink(b"\r\n");
        any = true;
    }
    if !any && c == BodyCanon::Simple {
        sink(b"\r\n");
    }
}

/// SHA-256 of the canonicalized body (the `bh=` value).
pub(crate) fn body_hash(c: BodyCanon, b: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    body(c, b, |chunk| ctx.update(chunk));
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(c: BodyCanon, s: &str) -> String {
        let mut v = Vec::new();
        body(c, s.as_bytes(), |x| v.extend_from_slice(x));
        String::from_utf8(v).unwrap()
    }

    fn h(c: HeaderCanon, s: &str) -> String {
        let mut v = Vec::new();
        header(c, s.as_bytes(), true, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn rfc6376_3_4_6_example() {
        // The example of RFC 6376 §3.4.6.
        let hdr1 = "A: X\r\n";
        let hdr2 = "B : Y\t\r\n\tZ  \r\n";
        assert_eq!(h(HeaderCanon::Relaxed, hdr1), "a:X\r\n");
        assert_eq!(h(HeaderCanon::Relaxed, hdr2), "b:Y Z\r\n");
        assert_eq!(h(HeaderCanon::Simple, hdr2), hdr2);
        let body = " C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(b(BodyCanon::Relaxed, body), " C\r\nD E\r\n");
        assert_eq!(b(BodyCanon::Simple, body), " C \r\nD \t E\r\n");
    }

    #[test]
    fn empty_and_crlf_only_bodies() {
        assert_eq!(b(BodyCanon::Simple, ""), "\r\n");
        assert_eq!(b(BodyCanon::Relaxed, ""), "");
        assert_eq!(b(BodyCanon::Simple, "\r\n\r\n\r\n"), "\r\n");
        assert_eq!(b(BodyCanon::Relaxed, "\r\n \r\n\t\r\n"), "");
        assert_eq!(b(BodyCanon::Simple, "x"), "x\r\n");
        assert_eq!(b(BodyCanon::Relaxed, "x  "), "x\r\n");
        assert_eq!(b(BodyCanon::Simple, "a\r\n\r\nb\r\n\r\n"), "a\r\n\r\nb\r\n");
    }

    #[test]
    fn known_empty_body_hashes() {
        use base64::Engine;
        let e = base64::engine::general_purpose::STANDARD;
        // Well-known values: SHA-256("\r\n") and SHA-256("").
        assert_eq!(
            e.encode(body_hash(BodyCanon::Simple, b"")),
            "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="
        );
        assert_eq!(
            e.encode(body_hash(BodyCanon::Relaxed, b"")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn relaxed_header_odd_cases() {
        assert_eq!(
            h(HeaderCanon::Relaxed, "SuBjEcT:   hi   there  \r\n"),
            "subject:hi there\r\n"
        );
        assert_eq!(h(HeaderCanon::Relaxed, "X:\r\n"), "x:\r\n");
        assert_eq!(h(HeaderCanon::Relaxed, "X: \r\n \r\n"), "x:\r\n");
        let mut v = Vec::new();
        header(HeaderCanon::Relaxed, b"X: a\r\n", false, &mut v);
        assert_eq!(v, b"x:a");
    }
}
