//! Internet-message syntax that more than one protocol needs (RFC 5322
//! header/body split, `local@domain` addresses). No I/O.

/// Split a message (or part) into header (including the blank line) and body.
pub fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    // A part that starts with an empty line has an empty header.
    if raw.starts_with(b"\r\n") {
        return (&raw[..2], &raw[2..]);
    }
    if raw.starts_with(b"\n") {
        return (&raw[..1], &raw[1..]);
    }
    while i < raw.len() {
        if raw[i] == b'\n' {
            if raw[i + 1..].starts_with(b"\r\n") {
                return raw.split_at(i + 3);
            }
            if raw[i + 1..].starts_with(b"\n") {
                return raw.split_at(i + 2);
            }
        }
        i += 1;
    }
    (raw, &[])
}

/// `local@domain` with exactly one `@` and both sides non-empty.
pub fn split_addr(addr: &str) -> Option<(&str, &str)> {
    let (l, d) = addr.split_once('@')?;
    if l.is_empty() || d.is_empty() || d.contains('@') {
        return None;
    }
    Some((l, d))
}

/// Most `boundary=` parameters (so multipart levels) and boundary lines a
/// message may have before the relay stops parsing it structurally (the
/// policy refuses it, FETCH serves it unparsed). Delta Chat's messages
/// have at most a few.
pub const MAX_BOUNDARY_PARAMS: usize = 16;
pub const MAX_BOUNDARY_LINES: usize = 1000;

/// Lines starting with `--` (every multipart level needs its own).
fn boundary_lines(raw: &[u8]) -> usize {
    usize::from(raw.starts_with(b"--")) + memchr::memmem::find_iter(raw, b"\n--").count()
}

/// A cheap linear pre-check before a recursive MIME parser sees `raw`:
/// mailparse re-scans each part per nesting level, so the work of a parse is
/// about depth × size; both stay bounded when this returns true.
pub fn structure_within_limits(raw: &[u8]) -> bool {
    if boundary_lines(raw) > MAX_BOUNDARY_LINES {
        return false;
    }
    // Each nested multipart declares a boundary parameter; count them
    // case-insensitively without copying the message.
    let mut declared = 0;
    for i in memchr::memchr_iter(b'=', raw) {
        if i >= 8 && raw[i - 8..i].eq_ignore_ascii_case(b"boundary") {
            declared += 1;
            if declared > MAX_BOUNDARY_PARAMS {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_body() {
        assert_eq!(
            split_header(b"A: b\r\n\r\nbody"),
            (&b"A: b\r\n\r\n"[..], &b"body"[..])
        );
        assert_eq!(split_header(b"\r\nbody"), (&b"\r\n"[..], &b"body"[..]));
        assert_eq!(split_header(b"A: b\r\n"), (&b"A: b\r\n"[..], &b""[..]));
    }

    #[test]
    fn structure_limits() {
        assert!(structure_within_limits(
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--\r\n"
        ));
        let deep = "Content-Type: multipart/mixed; BOUNDARY=a\r\n".repeat(100);
        assert!(!structure_within_limits(deep.as_bytes()));
        let many = "\n--x".repeat(1001);
        assert!(!structure_within_limits(many.as_bytes()));
    }

    #[test]
    fn addresses() {
        assert_eq!(split_addr("u@[127.0.0.1]"), Some(("u", "[127.0.0.1]")));
        assert_eq!(split_addr("a@b@c"), None);
        assert_eq!(split_addr("@b"), None);
    }
}
