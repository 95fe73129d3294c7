//! Header rewriting on the raw header block (spec §5.3 and §6.4).
//!
//! Works on bytes: the header block is split into fields (a field is its first
//! line plus folded continuation lines, RFC 5322 §2.2.3), fields are dropped or
//! replaced, everything else — including the blank separator line and the body
//! — is copied byte for byte. The MIME tree is never re-serialised.

/// Header names removed from outgoing mail (privacy, spec §5.3 / design principle 5).
const OUTGOING_DROP: [&[u8]; 4] = [b"received", b"x-originating-ip", b"x-mailer", b"user-agent"];
/// Header names removed before local delivery (spec §6.4).
const INCOMING_DROP: [&[u8]; 3] = [b"dkim-signature", b"authentication-results", b"received"];

/// One header field inside the header block.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The field name (bytes before `:`, trailing blanks trimmed); empty for a
    /// line that is not a header field (no colon), which is kept untouched.
    pub name: &'a [u8],
    /// All raw bytes of the field, including folded lines and line endings.
    pub raw: &'a [u8],
}

/// Length of the line at `raw[start..]` including its `\n` (if any).
fn line_end(raw: &[u8], start: usize) -> usize {
    raw[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |p| start + p + 1)
}

/// Splits `raw` into header fields and the rest. The rest starts with the blank
/// separator line (`\r\n` or `\n`), or is empty for a message without a body.
/// A continuation line before any field is kept as a nameless field.
pub(crate) fn split(raw: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let end = line_end(raw, i);
        let line = &raw[i..end];
        if line == b"\n" || line == b"\r\n" {
            break; // end of the header block
        }
        // Take the folded continuation lines (starting with SP or HTAB).
        let mut field_end = end;
        while field_end < raw.len() && matches!(raw[field_end], b' ' | b'\t') {
            field_end = line_end(raw, field_end);
        }
        let name = match line.iter().position(|&b| b == b':') {
            Some(colon) if !matches!(line[0], b' ' | b'\t') => line[..colon].trim_ascii_end(),
            _ => &[][..],
        };
        fields.push(Field {
            name,
            raw: &raw[i..field_end],
        });
        i = field_end;
    }
    (fields, &raw[i..])
}

/// The line ending a field uses (that of its first line), to keep the message consistent.
fn eol(field: &[u8]) -> &'static [u8] {
    let first = &field[..line_end(field, 0)];
    if first.ends_with(b"\r\n") {
        b"\r\n"
    } else if first.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    }
}

fn named(field: &Field, names: &[&[u8]]) -> bool {
    names.iter().any(|n| field.name.eq_ignore_ascii_case(n))
}

/// Outgoing scrub (spec §5.3): drop `Received`, `X-Originating-IP`, `X-Mailer`,
/// `User-Agent` (with folded lines); every `Subject` becomes `Subject: [...]`.
pub fn scrub_outgoing(raw: &[u8]) -> Vec<u8> {
    let (fields, rest) = split(raw);
    let mut out = Vec::with_capacity(raw.len());
    for f in &fields {
        if named(f, &OUTGOING_DROP) {
            continue;
        }
        if f.name.eq_ignore_ascii_case(b"subject") {
            out.extend_from_slice(b"Subject: [...]");
            out.extend_from_slice(eol(f.raw));
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    out.extend_from_slice(rest);
    out
}

/// Incoming strip (spec §6.4): drop `DKIM-Signature`, `Authentication-Results`,
/// `Received` (with folded lines) before the message is stored.
pub fn strip_incoming(raw: &[u8]) -> Vec<u8> {
    let (fields, rest) = split(raw);
    let mut out = Vec::with_capacity(raw.len());
    for f in fields.iter().filter(|f| !named(f, &INCOMING_DROP)) {
        out.extend_from_slice(f.raw);
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "Received: from [192.0.2.7] (unknown [192.0.2.7])\r\n\tby example.org (Postfix) with ESMTPSA\r\n\tfor <bob@example.org>; Tue, 1 Apr 2025\r\n\
From: alice@example.org\r\n\
Subject: secret plans\r\n\
X-Mailer: Delta Chat\r\n\
received: second one\r\n  folded\r\n\
Subject: =?utf-8?q?another?=\r\n =?utf-8?q?_folded?=\r\n\
User-Agent: Foo/1.0\r\n\
X-Originating-IP: [192.0.2.7]\r\n\
Subject-Extra: keep me\r\n\
To: bob@example.org\r\n\
\r\n\
Subject: not a header, body\r\nReceived: body line\r\n\r\n";

    #[test]
    fn scrub_crlf() {
        let out = scrub_outgoing(MSG.as_bytes());
        let expected = "From: alice@example.org\r\n\
Subject: [...]\r\n\
Subject: [...]\r\n\
Subject-Extra: keep me\r\n\
To: bob@example.org\r\n\
\r\n\
Subject: not a header, body\r\nReceived: body line\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&out), expected);
        assert!(!out.windows(9).any(|w| w == b"192.0.2.7"));
    }

    #[test]
    fn scrub_lf() {
        let msg = MSG.replace("\r\n", "\n");
        let out = scrub_outgoing(msg.as_bytes());
        let s = String::from_utf8_lossy(&out);
        assert!(
            s.starts_with("From: alice@example.org\nSubject: [...]\nSubject: [...]\nSubject-Extra")
        );
        assert!(!s.contains('\r'));
        assert!(s.ends_with("\n\nSubject: not a header, body\nReceived: body line\n\n"));
    }

    #[test]
    fn body_byte_identical() {
        let body: Vec<u8> = (0u8..=255)
            .chain(b"\r\n\r\nReceived: x\r\n".iter().copied())
            .collect();
        let mut msg = b"Subject: hi\r\nReceived: x\r\n\r\n".to_vec();
        msg.extend_from_slice(&body);
        let out = scrub_outgoing(&msg);
        assert!(out.ends_with(&body));
        assert_eq!(out, [b"Subject: [...]\r\n\r\n".as_slice(), &body].concat());
        let out = strip_incoming(&msg);
        assert_eq!(out, [b"Subject: hi\r\n\r\n".as_slice(), &body].concat());
    }

    #[test]
    fn strip_incoming_headers() {
        let msg = "DKIM-Signature: v=1; a=rsa-sha256; d=example.org;\r\n\tb=abc\r\n\tdef\r\n\
Authentication-Results: example.org; dkim=pass\r\n\
Received: from x\r\n by y\r\n\
From: alice@example.org\r\n\
Subject: [...]\r\n\
X-Mailer: kept on incoming\r\n\
\r\nbody\r\n";
        let out = strip_incoming(msg.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "From: alice@example.org\r\nSubject: [...]\r\nX-Mailer: kept on incoming\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn no_body_and_edge_cases() {
        assert_eq!(scrub_outgoing(b""), b"");
        assert_eq!(scrub_outgoing(b"Subject: x"), b"Subject: [...]");
        assert_eq!(
            scrub_outgoing(b"Subject: x\r\nReceived: y"),
            b"Subject: [...]\r\n"
        );
        assert_eq!(scrub_outgoing(b"Received: y\r\n folded"), b"");
        // A message that starts with the blank line has no headers at all.
        assert_eq!(scrub_outgoing(b"\r\nSubject: x\r\n"), b"\r\nSubject: x\r\n");
        // Orphan continuation line and a line without colon are kept.
        assert_eq!(
            scrub_outgoing(b" orphan\r\nno colon\r\nSubject : x\r\n\r\nb"),
            b" orphan\r\nno colon\r\nSubject: [...]\r\n\r\nb"
        );
        // Obsolete "Name :" syntax still matches.
        assert_eq!(strip_incoming(b"Received : x\n\nb"), b"\nb");
        // A lone CR line is not the separator.
        assert_eq!(
            scrub_outgoing(b"A: b\r\r\nSubject: s\r\n"),
            b"A: b\r\r\nSubject: [...]\r\n"
        );
    }

    #[test]
    fn split_fields() {
        let (f, rest) = split(b"A: 1\r\n 2\r\nB:3\n\nbody");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, b"A");
        assert_eq!(f[0].raw, b"A: 1\r\n 2\r\n");
        assert_eq!(f[1].raw, b"B:3\n");
        assert_eq!(rest, b"\nbody");
    }
}
