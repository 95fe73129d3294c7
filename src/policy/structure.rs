//! Strict MIME structure reader: the one view of a message's part tree that
//! the encryption rule and its exemptions decide from (spec §7).
//!
//! Why not mailparse's tree alone: mailparse takes any line that *starts*
//! with `--boundary` as a delimiter, so a message can carry parts that other
//! readers (the recipient's MUA) see differently. This reader follows RFC 2046
//! §5.1.1 exactly and refuses everything another reader could take otherwise:
//!
//! * Line endings: the whole message uses CRLF, or (the `/mxdeliv` and test
//!   shape) bare LF only; a bare CR, or a bare LF in a CRLF message, is refused.
//! * Header blocks (RFC 5322 §2.2): a field is `name:` (printable ASCII, no
//!   blank before the colon) plus folded continuation lines; a continuation
//!   first or a line that is not a field is refused. `Content-Type` and
//!   `Content-Transfer-Encoding` appear at most once per entity.
//! * `Content-Type` (RFC 2045 §5.1): `type/subtype` tokens, then `; attr=value`
//!   with token or quoted-string values; comments, RFC 2231 continuations of
//!   `boundary`, duplicate parameters, quoted-pairs inside a boundary, and
//!   boundaries outside RFC 2046 `bchars` (1–70 characters) are refused.
//! * Multipart bodies (RFC 2046 §5.1.1): a delimiter line is exactly
//!   `--boundary` + optional SP/HTAB; the close delimiter `--boundary--` +
//!   optional SP/HTAB. Any other line starting with `--boundary` (compared
//!   case-insensitively, to catch case tricks too) anywhere in the body —
//!   preamble, parts, epilogue — is refused, as is a delimiter after the close
//!   delimiter, `--boundary` anywhere but at the start of a line (some
//!   readers split there too), a missing close delimiter, a multipart without
//!   parts and an epilogue that is not blank. The CRLF before a delimiter belongs to it.
//! * A multipart or `message/*` entity must not be transfer-encoded.
//! * Limits, checked while reading and before any decoding or recursion:
//!   [`MAX_DEPTH`] nested multiparts, [`MAX_PARTS`] parts in all,
//!   [`MAX_HEADER_BYTES`] / [`MAX_FIELDS`] per header block.
//!
//! `message/*` parts are leaves (as for mailparse); a caller that cares about
//! an embedded message reads it with [`read`] again.
//!
//! Cost: every multipart scans its own body once, line by line, so each input
//! byte is looked at by at most `MAX_DEPTH + 1` scans, plus one pass for the
//! line endings and one per header block, and every multipart looks for its
//! `--boundary` inside lines once (at most 72 byte comparisons per position):
//! `O((MAX_DEPTH + 1) · 73 · n + 2n)`, linear in the input. Nothing is copied
//! but unfolded header values; bodies are slices.

use base64::Engine;

/// Most nested multipart levels: the top-level multipart is level 1.
pub const MAX_DEPTH: usize = 8;
/// Most body parts in the whole tree (the top-level entity not counted).
pub const MAX_PARTS: usize = 64;
/// Most bytes in one header block (the Autocrypt key of an RSA-4096 user is ~4 KiB).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most fields in one header block.
pub const MAX_FIELDS: usize = 512;

/// Why the reader refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A hard limit (depth, part count, header size): refused before heavy work.
    Limit(&'static str),
    /// The bytes are not a message (header block, line endings).
    Syntax(&'static str),
    /// The MIME structure could be read differently by another reader.
    Ambiguous(&'static str),
}

/// One header field: its name as sent and its unfolded, trimmed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: Vec<u8>,
}

/// One MIME entity (the message or a body part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity<'a> {
    pub fields: Vec<Field<'a>>,
    /// Lower-cased `type/subtype` (the default if there is no `Content-Type`).
    pub mime_type: String,
    /// Parameters: lower-cased names, values unquoted.
    pub params: Vec<(String, String)>,
    /// Lower-cased `Content-Transfer-Encoding`, if present.
    pub encoding: Option<String>,
    /// The body as sent (for a multipart: the whole multipart body).
    pub body: &'a [u8],
    /// Body parts of a multipart, in order; empty for leaves.
    pub parts: Vec<Entity<'a>>,
}

impl<'a> Entity<'a> {
    /// Values of every field named `name` (case-insensitive).
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| f.value.as_slice())
    }

    /// The value of the field `name` if it occurs exactly once.
    pub fn single<'s>(&'s self, name: &'s str) -> Option<&'s [u8]> {
        let mut it = self.values(name);
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }

    /// A `Content-Type` parameter (name lower-case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_multipart(&self) -> bool {
        self.mime_type.starts_with("multipart/")
    }

    /// The body with its transfer encoding undone (none, 7bit, 8bit, binary,
    /// base64, quoted-printable); `None` for another or a broken encoding.
    pub fn decoded_body(&self) -> Option<Vec<u8>> {
        match self.encoding.as_deref() {
            None | Some("7bit" | "8bit" | "binary") => Some(self.body.to_vec()),
            Some("base64") => {
                let text: Vec<u8> = self
                    .body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                BASE64.decode(text).ok()
            }
            Some("quoted-printable") => quoted_printable(self.body),
            Some(_) => None,
        }
    }

    /// The content-type tree, e.g. `multipart/encrypted(application/pgp-encrypted,application/octet-stream)`.
    pub fn tree(&self) -> String {
        let mut out = String::new();
        self.write_tree(&mut out);
        out
    }

    fn write_tree(&self, out: &mut String) {
        out.push_str(&self.mime_type);
        if self.is_multipart() {
            out.push('(');
            for (i, p) in self.parts.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                p.write_tree(out);
            }
            out.push(')');
        }
    }
}

/// The same tree notation for mailparse's view, to compare with [`Entity::tree`].
pub fn mailparse_tree(parsed: &mailparse::ParsedMail) -> String {
    fn walk(p: &mailparse::ParsedMail, out: &mut String) {
        out.push_str(&p.ctype.mimetype.to_ascii_lowercase());
        if p.ctype
            .mimetype
            .to_ascii_lowercase()
            .starts_with("multipart/")
            || !p.subparts.is_empty()
        {
            out.push('(');
            for (i, s) in p.subparts.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                walk(s, out);
            }
            out.push(')');
        }
    }
    let mut out = String::new();
    walk(parsed, &mut out);
    out
}

/// True if mailparse reads `raw` into the same tree as the strict reader did.
pub fn agrees_with_mailparse(entity: &Entity, raw: &[u8]) -> bool {
    mailparse::parse_mail(raw).is_ok_and(|p| mailparse_tree(&p) == entity.tree())
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// RFC 2045 §6.7 quoted-printable; `None` on a malformed `=` escape.
fn quoted_printable(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'=' => {
                let rest = &body[i + 1..];
                // Soft line break: `=` then optional blanks then the line end.
                let blanks = rest
                    .iter()
                    .take_while(|b| matches!(b, b' ' | b'\t'))
                    .count();
                let after = &rest[blanks..];
                if after.starts_with(b"\r\n") {
                    i += 1 + blanks + 2;
                } else if after.starts_with(b"\n") {
                    i += 1 + blanks + 1;
                } else if after.is_empty() {
                    i = body.len();
                } else {
                    let hex = |b: u8| (b as char).to_digit(16);
                    let (h, l) = (hex(*rest.first()?)?, hex(*rest.get(1)?)?);
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Reads `raw` (a whole message) into its entity tree, or refuses it.
pub fn read(raw: &[u8]) -> Result<Entity<'_>, Refusal> {
    let eol = line_endings(raw)?;
    let mut reader = Reader { eol, parts: 0 };
    reader.entity(raw, 0, "text/plain")
}

/// Reads a header block on its own (e.g. the body of `text/rfc822-headers`):
/// the fields and what follows the blank line.
pub fn read_header_block(raw: &[u8]) -> Result<(Vec<Field<'_>>, &[u8]), Refusal> {
    let eol = line_endings(raw)?;
    Reader { eol, parts: 0 }.header_block(raw)
}

/// CRLF everywhere, or LF everywhere (then no CR at all).
fn line_endings(raw: &[u8]) -> Result<&'static [u8], Refusal> {
    let crlf = match raw.iter().position(|&b| b == b'\n') {
        Some(i) => i > 0 && raw[i - 1] == b'\r',
        None => true,
    };
    let mut prev = 0u8;
    for (i, &b) in raw.iter().enumerate() {
        let bad = if crlf {
            (b == b'\n' && prev != b'\r') || (b == b'\r' && raw.get(i + 1) != Some(&b'\n'))
        } else {
            b == b'\r'
        };
        if bad {
            return Err(Refusal::Syntax("mixed line endings"));
        }
        prev = b;
    }
    Ok(if crlf { b"\r\n" } else { b"\n" })
}

fn blank(s: &[u8]) -> bool {
    s.iter().all(|b| matches!(b, b' ' | b'\t'))
}

struct Reader {
    eol: &'static [u8],
    parts: usize,
}

impl Reader {
    /// The line at `pos` without its ending, and where the next line starts.
    /// Line endings were checked to be consistent, so `\n` finds them all.
    fn line<'a>(&self, s: &'a [u8], pos: usize) -> (&'a [u8], usize) {
        match s[pos..].iter().position(|&b| b == b'\n') {
            Some(p) => {
                let end = (pos + p + 1).saturating_sub(self.eol.len()).max(pos);
                (&s[pos..end], pos + p + 1)
            }
            None => (&s[pos..], s.len()),
        }
    }

    fn header_block<'a>(&self, s: &'a [u8]) -> Result<(Vec<Field<'a>>, &'a [u8]), Refusal> {
        let mut fields: Vec<Field<'a>> = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            if s[pos..].starts_with(self.eol) {
                return Ok((fields, &s[pos + self.eol.len()..]));
            }
            let (line, next) = self.line(s, pos);
            if next > MAX_HEADER_BYTES {
                return Err(Refusal::Limit("header block too large"));
            }
            if matches!(line[0], b' ' | b'\t') {
                let Some(last) = fields.last_mut() else {
                    return Err(Refusal::Syntax(
                        "header block starts with a continuation line",
                    ));
                };
                last.value.extend_from_slice(line);
            } else {
                let colon = line.iter().position(|&b| b == b':');
                let name = colon.map_or(line, |c| &line[..c]);
                if colon.is_none()
                    || name.is_empty()
                    || !name.iter().all(|b| (33..=126).contains(b))
                {
                    return Err(Refusal::Syntax("header line is not a field"));
                }
                if fields.len() == MAX_FIELDS {
                    return Err(Refusal::Limit("too many header fields"));
                }
                fields.push(Field {
                    name,
                    value: line[name.len() + 1..].to_vec(),
                });
            }
            pos = next;
        }
        Ok((fields, &s[s.len()..]))
    }

    fn entity<'a>(
        &mut self,
        s: &'a [u8],
        depth: usize,
        default_type: &str,
    ) -> Result<Entity<'a>, Refusal> {
        let (mut fields, body) = self.header_block(s)?;
        // A body part whose header block runs into the next delimiter with
        // no empty line (RFC 2046 §5.1.1 allows it: `MIME-part-headers
        // [CRLF *OCTET]`) is read by mail-parser as no part at all: a
        // structure two readers disagree on is refused (found by the
        // policy_mime_diff fuzz target).
        if depth > 0 && !fields.is_empty() && body.is_empty() && !s.ends_with(self.eol) {
            return Err(Refusal::Syntax(
                "body part header block without its empty line",
            ));
        }
        for f in &mut fields {
            let trimmed = f.value.trim_ascii();
            if trimmed.len() != f.value.len() {
                f.value = trimmed.to_vec();
            }
        }
        let mut entity = Entity {
            fields,
            mime_type: default_type.to_string(),
            params: Vec::new(),
            encoding: None,
            body,
            parts: Vec::new(),
        };
        if entity.values("Content-Type").count() > 1 {
            return Err(Refusal::Ambiguous("several Content-Type fields"));
        }
        if entity.values("Content-Transfer-Encoding").count() > 1 {
            return Err(Refusal::Ambiguous(
                "several Content-Transfer-Encoding fields",
            ));
        }
        if let Some(ct) = entity.single("Content-Type") {
            let (mime_type, params) = content_type(ct)?;
            entity.mime_type = mime_type;
            entity.params = params;
        }
        if let Some(cte) = entity.single("Content-Transfer-Encoding") {
            let cte = std::str::from_utf8(cte)
                .map_err(|_| Refusal::Ambiguous("Content-Transfer-Encoding is not ASCII"))?;
            entity.encoding = Some(cte.to_ascii_lowercase());
        }
        let composite = entity.is_multipart() || entity.mime_type.starts_with("message/");
        if composite
            && !matches!(
                entity.encoding.as_deref(),
                None | Some("7bit" | "8bit" | "binary")
            )
        {
            return Err(Refusal::Ambiguous("transfer-encoded composite entity"));
        }
        if !entity.is_multipart() {
            return Ok(entity);
        }
        if depth == MAX_DEPTH {
            return Err(Refusal::Limit("multiparts nested too deeply"));
        }
        let boundary = entity
            .param("boundary")
            .ok_or(Refusal::Ambiguous("multipart without boundary"))?
            .as_bytes()
            .to_vec();
        let child_default = if entity.mime_type == "multipart/digest" {
            "message/rfc822"
        } else {
            "text/plain"
        };
        for content in self.split(body, &boundary)? {
            let part = self.entity(content, depth + 1, child_default)?;
            entity.parts.push(part);
        }
        Ok(entity)
    }

    /// RFC 2046 §5.1.1 body parts of a multipart body, see the module doc.
    fn split<'a>(&mut self, body: &'a [u8], boundary: &[u8]) -> Result<Vec<&'a [u8]>, Refusal> {
        let mut contents = Vec::new();
        let mut start: Option<usize> = None;
        let mut epilogue: Option<usize> = None;
        let mut pos = 0;
        while pos < body.len() {
            let (line, next) = self.line(body, pos);
            let n = 2 + boundary.len();
            if line.len() >= n
                && line.starts_with(b"--")
                && line[2..n].eq_ignore_ascii_case(boundary)
            {
                let rest = &line[n..];
                let close = if line[2..n] != *boundary {
                    return Err(Refusal::Ambiguous("boundary in another case"));
                } else if blank(rest) {
                    false
                } else if rest.starts_with(b"--") && blank(&rest[2..]) {
                    true
                } else {
                    return Err(Refusal::Ambiguous(
                        "line starts with the boundary but is no delimiter",
                    ));
                };
                if epilogue.is_some() {
                    return Err(Refusal::Ambiguous("delimiter after the close delimiter"));
                }
                if let Some(s) = start {
                    // pos > 0 here, so an line ending precedes the delimiter.
                    let end = (pos - self.eol.len()).max(s);
                    contents.push(&body[s..end]);
                }
                if close {
                    start = None;
                    epilogue = Some(next);
                } else {
                    self.parts += 1;
                    if self.parts > MAX_PARTS {
                        return Err(Refusal::Limit("too many body parts"));
                    }
                    start = Some(next);
                }
            }
            pos = next;
        }
        // A reader that finds delimiters anywhere (mail-parser does, fuzz
        // finding of `policy_mime_diff`) must not see any either.
        if boundary_inside_line(body, boundary) {
            return Err(Refusal::Ambiguous("boundary inside a line"));
        }
        let Some(epilogue) = epilogue else {
            return Err(Refusal::Ambiguous("missing close delimiter"));
        };
        if contents.is_empty() {
            return Err(Refusal::Ambiguous("multipart without body parts"));
        }
        if !body[epilogue..].iter().all(|b| b.is_ascii_whitespace()) {
            return Err(Refusal::Ambiguous("text after the close delimiter"));
        }
        Ok(contents)
    }
}

/// True if `--boundary` occurs other than at the start of a line. (Exact case:
/// with a one-letter boundary `B`, armor's `-----BEGIN` would match otherwise.)
/// At most `boundary.len() + 2` comparisons per position: linear.
fn boundary_inside_line(body: &[u8], boundary: &[u8]) -> bool {
    let n = boundary.len() + 2;
    (1..body.len().saturating_sub(n - 1)).any(|i| {
        body[i] == b'-'
            && body[i + 1] == b'-'
            && body[i - 1] != b'\n'
            && body[i + 2..i + n] == *boundary
    })
}

fn is_token(b: u8) -> bool {
    (33..=126).contains(&b) && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

/// RFC 2046 §5.1.1 `bchars`, 1 to 70 of them, not ending in a space.
fn boundary_ok(b: &str) -> bool {
    (1..=70).contains(&b.len())
        && !b.ends_with(' ')
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
}

type Params = Vec<(String, String)>;

/// RFC 2045 §5.1 `type "/" subtype *(";" attribute "=" value)`, strictly.
fn content_type(v: &[u8]) -> Result<(String, Params), Refusal> {
    const BAD: Refusal = Refusal::Ambiguous("unreadable Content-Type");
    let v = std::str::from_utf8(v).map_err(|_| BAD)?;
    let b = v.as_bytes();
    let token = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && is_token(b[*i]) {
            *i += 1;
        }
        (*i > s).then(|| v[s..*i].to_ascii_lowercase())
    };
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    let mut i = 0;
    let ty = token(&mut i).ok_or(BAD)?;
    if b.get(i) != Some(&b'/') {
        return Err(BAD);
    }
    i += 1;
    let sub = token(&mut i).ok_or(BAD)?;
    let mut params: Params = Vec::new();
    loop {
        skip_ws(&mut i);
        if i == b.len() {
            break;
        }
        if b[i] != b';' {
            return Err(BAD);
        }
        i += 1;
        skip_ws(&mut i);
        if i == b.len() {
            break; // a trailing `;` is common and harmless
        }
        if b[i] == b';' {
            continue;
        }
        let name = token(&mut i).ok_or(BAD)?;
        skip_ws(&mut i);
        if b.get(i) != Some(&b'=') {
            return Err(BAD);
        }
        i += 1;
        skip_ws(&mut i);
        let (value, escaped) = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut value = String::new();
            let mut escaped = false;
            loop {
                match b.get(i) {
                    None => return Err(BAD),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        escaped = true;
                        let c = v[i + 1..].chars().next().ok_or(BAD)?;
                        value.push(c);
                        i += 1 + c.len_utf8();
                    }
                    Some(_) => {
                        let c = v[i..].chars().next().ok_or(BAD)?;
                        value.push(c);
                        i += c.len_utf8();
                    }
                }
            }
            i += 1;
            (value, escaped)
        } else {
            let s = i;
            while i < b.len() && is_token(b[i]) {
                i += 1;
            }
            (v[s..i].to_string(), false)
        };
        if params.iter().any(|(n, _)| *n == name) {
            return Err(Refusal::Ambiguous("duplicate Content-Type parameter"));
        }
        if name.starts_with("boundary") && name != "boundary" {
            return Err(Refusal::Ambiguous("encoded boundary parameter"));
        }
        if name == "boundary" && (escaped || !boundary_ok(&value)) {
            return Err(Refusal::Ambiguous("invalid boundary"));
        }
        params.push((name, value));
    }
    Ok((format!("{ty}/{sub}"), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_grammar() {
        let (t, p) = content_type(b"Multipart/Mixed; BOUNDARY=\"a b\"; charset=utf-8;").unwrap();
        assert_eq!(t, "multipart/mixed");
        assert_eq!(
            p,
            vec![
                ("boundary".into(), "a b".into()),
                ("charset".into(), "utf-8".into())
            ]
        );
        for bad in [
            &b"text"[..],
            b"text/",
            b"text /plain",
            b"text/plain (comment)",
            b"text/plain; boundary=\"a",
            b"multipart/mixed; boundary=a; boundary=b",
            b"multipart/mixed; boundary*0=a",
            b"multipart/mixed; boundary=\"a\\b\"",
            b"multipart/mixed; boundary=\"a \"",
            b"multipart/mixed; boundary=\"\"",
            b"multipart/mixed; boundary=\"a<b\"",
        ] {
            assert!(
                content_type(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn qp() {
        assert_eq!(quoted_printable(b"a=3Db=\r\nc").unwrap(), b"a=bc");
        assert!(quoted_printable(b"a=zz").is_none());
    }

    #[test]
    fn delimiters() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b \t\r\n\r\nx\r\n--b\r\nContent-Type: text/html\r\n\r\ny\r\n--b-- \r\n\r\n";
        let e = read(m).unwrap();
        assert_eq!(e.tree(), "multipart/mixed(text/plain,text/html)");
        assert_eq!(e.parts[0].body, b"x");
        assert_eq!(e.parts[1].body, b"y");
        let lf = String::from_utf8_lossy(m).replace("\r\n", "\n");
        assert_eq!(read(lf.as_bytes()).unwrap().tree(), e.tree());
        for (bad, why) in [
            (
                "--bX\r\n",
                "line starts with the boundary but is no delimiter",
            ),
            (
                "--b trailing\r\n",
                "line starts with the boundary but is no delimiter",
            ),
            ("--B\r\n", "boundary in another case"),
        ] {
            let msg = format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n{bad}\r\ny\r\n--b--\r\n");
            assert_eq!(read(msg.as_bytes()), Err(Refusal::Ambiguous(why)));
        }
    }
}
