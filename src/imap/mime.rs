//! Message structure for FETCH (RFC 3501 §6.4.5, §7.4.2): header/body split,
//! HEADER.FIELDS, part navigation, ENVELOPE and BODYSTRUCTURE. No I/O.

use mailparse::{MailHeaderMap, ParsedMail};

pub use crate::mail::split_header;

use super::types::{Section, SectionText};
use super::wire::{nstring, string};

/// Iterate the logical header lines (a line plus its folded continuations).
fn header_lines(header: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        if header[i] == b'\n' {
            let next = header.get(i + 1).copied();
            if !matches!(next, Some(b' ' | b'\t')) {
                out.push(&header[start..=i]);
                start = i + 1;
            }
        }
        i += 1;
    }
    if start < header.len() {
        out.push(&header[start..]);
    }
    out
}

/// HEADER.FIELDS / HEADER.FIELDS.NOT: the selected lines plus a blank line.
pub fn header_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for line in header_lines(header) {
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        if trimmed.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]);
        let name = name.trim();
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if listed != not {
            out.extend_from_slice(trimmed);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of a subpart without the CRLF that precedes the next boundary
/// (RFC 2046 §5.1.1: that CRLF belongs to the boundary line). mailparse
/// includes it in `raw_bytes`.
pub fn part_raw<'a>(p: &ParsedMail<'a>, is_subpart: bool) -> &'a [u8] {
    let r = p.raw_bytes;
    if !is_subpart {
        return r;
    }
    r.strip_suffix(b"\r\n")
        .or_else(|| r.strip_suffix(b"\n"))
        .unwrap_or(r)
}

/// The part addressed by `path` (1-based). For a non-multipart message part 1
/// is the message body itself (RFC 3501 §6.4.5).
pub fn find_part<'a, 'b>(m: &'b ParsedMail<'a>, path: &[u32]) -> Option<&'b ParsedMail<'a>> {
    let mut cur = m;
    for &n in path {
        if cur.subparts.is_empty() {
            if n == 1 {
                continue;
            }
            return None;
        }
        cur = cur.subparts.get((n as usize).checked_sub(1)?)?;
    }
    Some(cur)
}

/// The bytes of a BODY[section] (without partial).
pub fn section_bytes(
    raw: &[u8],
    parsed: Option<&ParsedMail>,
    section: &Section,
) -> Option<Vec<u8>> {
    let target: &[u8] = if section.part.is_empty() {
        raw
    } else {
        let top = parsed?;
        let part = find_part(top, &section.part)?;
        part_raw(part, !std::ptr::eq(part, top))
    };
    let (h, b) = split_header(target);
    Some(match &section.text {
        None if section.part.is_empty() => raw.to_vec(),
        None => {
            // BODY[n] of a part is its body only; for a top-level non-multipart
            // message, part 1 is the body.
            if section.part.iter().all(|&p| p == 1)
                && parsed.map(|p| p.subparts.is_empty()).unwrap_or(true)
            {
                split_header(raw).1.to_vec()
            } else {
                b.to_vec()
            }
        }
        Some(SectionText::Header) => h.to_vec(),
        Some(SectionText::Mime) => h.to_vec(),
        Some(SectionText::Text) => b.to_vec(),
        Some(SectionText::HeaderFields(f)) => header_fields(h, f, false),
        Some(SectionText::HeaderFieldsNot(f)) => header_fields(h, f, true),
    })
}

fn raw_header<'a>(m: &'a ParsedMail, name: &str) -> Option<&'a [u8]> {
    m.headers
        .iter()
        .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
        .map(|h| h.get_value_raw())
}

fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in v {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        }
    }
    let s = out
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(out.len());
    out.drain(..s);
    out
}

fn addresses(m: &ParsedMail, name: &str) -> Vec<u8> {
    let Some(h) = m
        .headers
        .iter()
        .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
    else {
        return b"NIL".to_vec();
    };
    let Ok(list) = mailparse::addrparse_header(h) else {
        return b"NIL".to_vec();
    };
    let mut singles = Vec::new();
    for a in list.iter() {
        match a {
            mailparse::MailAddr::Single(s) => singles.push(s.clone()),
            mailparse::MailAddr::Group(g) => singles.extend(g.addrs.iter().cloned()),
        }
    }
    if singles.is_empty() {
        return b"NIL".to_vec();
    }
    let mut out = b"(".to_vec();
    for s in singles {
        let (local, host) = s.addr.rsplit_once('@').unwrap_or((s.addr.as_str(), ""));
        out.push(b'(');
        out.extend(nstring(s.display_name.as_deref().map(str::as_bytes)));
        out.extend_from_slice(b" NIL ");
        out.extend(string(local.as_bytes()));
        out.push(b' ');
        out.extend(string(host.as_bytes()));
        out.push(b')');
    }
    out.push(b')');
    out
}

/// ENVELOPE (RFC 3501 §7.4.2).
pub fn envelope(m: &ParsedMail) -> Vec<u8> {
    let hv = |n: &str| raw_header(m, n).map(unfold);
    let mut out = b"(".to_vec();
    out.extend(nstring(hv("Date").as_deref()));
    out.push(b' ');
    out.extend(nstring(hv("Subject").as_deref()));
    let from = addresses(m, "From");
    for name in ["From", "Sender", "Reply-To"] {
        out.push(b' ');
        let a = addresses(m, name);
        // Sender and Reply-To default to From.
        out.extend(if a == b"NIL" && name != "From" {
            from.clone()
        } else {
            a
        });
    }
    for name in ["To", "Cc", "Bcc"] {
        out.push(b' ');
        out.extend(addresses(m, name));
    }
    out.push(b' ');
    out.extend(nstring(hv("In-Reply-To").as_deref()));
    out.push(b' ');
    out.extend(nstring(hv("Message-ID").as_deref()));
    out.push(b')');
    out
}

/// Lines of a body; an unterminated last line counts (as Dovecot does).
fn count_lines(b: &[u8]) -> usize {
    let n = b.iter().filter(|&&c| c == b'\n').count();
    n + usize::from(!b.is_empty() && !b.ends_with(b"\n"))
}

/// BODYSTRUCTURE (`extensible`) or BODY (RFC 3501 §7.4.2).
pub fn bodystructure(m: &ParsedMail, extensible: bool) -> Vec<u8> {
    structure(m, extensible, false)
}

fn structure(m: &ParsedMail, extensible: bool, is_subpart: bool) -> Vec<u8> {
    let (mut ty, mut sub) = match m.ctype.mimetype.split_once('/') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => ("text".to_string(), "plain".to_string()),
    };
    if ty.is_empty() || sub.is_empty() {
        ty = "text".into();
        sub = "plain".into();
    }
    let mut out = b"(".to_vec();
    if !m.subparts.is_empty() {
        for p in &m.subparts {
            out.extend(structure(p, extensible, true));
        }
        out.push(b' ');
        out.extend(string(sub.to_uppercase().as_bytes()));
        if extensible {
            out.push(b' ');
            out.extend(params(m));
            out.extend_from_slice(b" NIL NIL NIL");
        }
        out.push(b')');
        return out;
    }
    let (_, body) = split_header(part_raw(m, is_subpart));
    out.extend(string(ty.to_uppercase().as_bytes()));
    out.push(b' ');
    out.extend(string(sub.to_uppercase().as_bytes()));
    out.push(b' ');
    out.extend(params(m));
    let hv = |n: &str| raw_header(m, n).map(unfold);
    out.push(b' ');
    out.extend(nstring(hv("Content-ID").as_deref()));
    out.push(b' ');
    out.extend(nstring(hv("Content-Description").as_deref()));
    out.push(b' ');
    let enc = hv("Content-Transfer-Encoding")
        .map(|e| e.to_ascii_uppercase())
        .unwrap_or_else(|| b"7BIT".to_vec());
    out.extend(string(&enc));
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if ty.eq_ignore_ascii_case("text") {
        out.extend_from_slice(format!(" {}", count_lines(body)).as_bytes());
    } else if ty.eq_ignore_ascii_case("message") && sub.eq_ignore_ascii_case("rfc822") {
        match mailparse::parse_mail(body) {
            Ok(inner) => {
                out.push(b' ');
                out.extend(envelope(&inner));
                out.push(b' ');
                out.extend(bodystructure(&inner, extensible));
            }
            Err(_) => out.extend_from_slice(b" NIL NIL"),
        }
        out.extend_from_slice(format!(" {}", count_lines(body)).as_bytes());
    }
    if extensible {
        out.push(b' ');
        out.extend(nstring(hv("Content-MD5").as_deref()));
        out.push(b' ');
        match m.headers.get_first_header("Content-Disposition") {
            Some(h) => {
                let d = mailparse::parse_content_disposition(&h.get_value());
                let kind = match d.disposition {
                    mailparse::DispositionType::Inline => "INLINE".to_string(),
                    mailparse::DispositionType::Attachment => "ATTACHMENT".to_string(),
                    mailparse::DispositionType::FormData => "FORM-DATA".to_string(),
                    mailparse::DispositionType::Extension(e) => e.to_uppercase(),
                };
                out.push(b'(');
                out.extend(string(kind.as_bytes()));
                out.push(b' ');
                out.extend(param_list(d.params.iter()));
                out.push(b')');
            }
            None => out.extend_from_slice(b"NIL"),
        }
        out.extend_from_slice(b" NIL NIL");
    }
    out.push(b')');
    out
}

fn param_list<'a>(it: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<u8> {
    let mut v: Vec<(&String, &String)> = it.collect();
    if v.is_empty() {
        return b"NIL".to_vec();
    }
    v.sort();
    let mut out = b"(".to_vec();
    for (i, (k, val)) in v.into_iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend(string(k.to_uppercase().as_bytes()));
        out.push(b' ');
        out.extend(string(val.as_bytes()));
    }
    out.push(b')');
    out
}

fn params(m: &ParsedMail) -> Vec<u8> {
    let mut p: Vec<(String, String)> = m
        .ctype
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !m.ctype.mimetype.starts_with("multipart/")
        && m.ctype.mimetype.starts_with("text/")
        && !p.iter().any(|(k, _)| k == "charset")
    {
        p.push(("charset".into(), m.ctype.charset.clone()));
    }
    param_list(p.iter().map(|(k, v)| (k, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hi\r\n there\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n";

    #[test]
    fn split_and_fields() {
        let (h, b) = split_header(MSG);
        assert!(h.ends_with(b"\r\n\r\n"));
        assert_eq!(b, b"body\r\n");
        let f = header_fields(h, &["subject".into(), "FROM".into()], false);
        assert_eq!(
            f,
            b"From: Alice <alice@example.org>\r\nSubject: hi\r\n there\r\n\r\n".to_vec()
        );
        let f = header_fields(h, &["subject".into(), "FROM".into(), "to".into()], true);
        assert_eq!(f, b"Message-ID: <1@x>\r\n\r\n".to_vec());
    }

    #[test]
    fn envelope_and_structure() {
        let m = mailparse::parse_mail(MSG).unwrap();
        let e = String::from_utf8(envelope(&m)).unwrap();
        assert!(
            e.contains("((\"Alice\" NIL \"alice\" \"example.org\"))"),
            "{e}"
        );
        assert!(e.contains("\"hi there\""), "{e}");
        let b = String::from_utf8(bodystructure(&m, true)).unwrap();
        assert!(
            b.starts_with("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 6 1"),
            "{b}"
        );
    }
}
