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
    fn addresses() {
        assert_eq!(split_addr("u@[127.0.0.1]"), Some(("u", "[127.0.0.1]")));
        assert_eq!(split_addr("a@b@c"), None);
        assert_eq!(split_addr("@b"), None);
    }
}
