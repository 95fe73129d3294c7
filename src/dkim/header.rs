//! Message splitting (header fields / body), tag-list parsing (RFC 6376
//! §3.2) and the DKIM-Signature field (RFC 6376 §3.5).

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine;

use super::canon::{BodyCanon, HeaderCanon};

/// At most this many header fields are read; a message with more is
/// rejected by the verifier (and not signed).
pub const MAX_HEADER_FIELDS: usize = 1000;
/// At most this many DKIM-Signature fields are parsed and considered.
pub const MAX_SIGNATURES: usize = 16;

/// A message with CRLF line endings, split into header fields and body.
pub(crate) struct Message<'a> {
    pub data: Cow<'a, [u8]>,
    /// Each field: (range of the name, range of the whole field including
    /// its terminating CRLF, if any).
    pub fields: Vec<(Range<usize>, Range<usize>)>,
    pub body: Range<usize>,
    /// More than [`MAX_HEADER_FIELDS`] fields: only the first ones are kept.
    pub truncated: bool,
}

/// Lone LF → CRLF (see module docs); borrowed when already CRLF-clean.
fn crlf(msg: &[u8]) -> Cow<'_, [u8]> {
    let lone = msg
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || msg[i - 1] != b'\r'));
    if !lone {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 32);
    for (i, &b) in msg.iter().enumerate() {
        if b == b'\n' && (i == 0 || msg[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

impl<'a> Message<'a> {
    /// RFC 5322 §2.2/§2.2.3: a field starts on a line not beginning with
    /// WSP and continues over lines that do. The header section ends at the
    /// first empty line; without one, everything is header and the body is
    /// empty. A line without a colon becomes a field whose name is the whole
    /// line (it can never match a signed name).
    pub fn parse(msg: &'a [u8]) -> Message<'a> {
        let data = crlf(msg);
        let d: &[u8] = &data;
        let mut fields: Vec<(Range<usize>, Range<usize>)> = Vec::new();
        let mut truncated = false;
        let mut pos = 0;
        let mut body = d.len()..d.len();
        while pos < d.len() {
            let eol = find_crlf(d, pos);
            let next = eol.map(|e| e + 2).unwrap_or(d.len());
            if eol == Some(pos) {
                body = next..d.len();
                break;
            }
            let first = d[pos];
            if (first == b' ' || first == b'\t') && !fields.is_empty() {
                fields.last_mut().unwrap().1.end = next;
            } else if fields.len() >= MAX_HEADER_FIELDS {
                truncated = true;
                // Keep scanning for the body so that callers can still hash it.
            } else {
                let line_end = eol.unwrap_or(d.len());
                let colon = d[pos..line_end].iter().position(|&b| b == b':');
                let name_end = colon.map(|c| pos + c).unwrap_or(line_end);
                fields.push((pos..name_end, pos..next));
            }
            pos = next;
        }
        Message {
            fields,
            body,
            truncated,
            data,
        }
    }

    pub fn name(&self, i: usize) -> &[u8] {
        trim_wsp_end(&self.data[self.fields[i].0.clone()])
    }

    pub fn field(&self, i: usize) -> &[u8] {
        &self.data[self.fields[i].1.clone()]
    }

    pub fn body(&self) -> &[u8] {
        &self.data[self.body.clone()]
    }

    /// The value of field `i` (after the colon, including folding).
    pub fn value(&self, i: usize) -> &[u8] {
        let (n, f) = &self.fields[i];
        if n.end >= f.end || self.data[n.end] != b':' {
            return b"";
        }
        &self.data[n.end + 1..f.end]
    }
}

pub(crate) fn find_crlf(d: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < d.len() {
        match d[i + 1..].iter().position(|&b| b == b'\n') {
            None => return None,
            Some(p) => {
                let lf = i + 1 + p;
                if d[lf - 1] == b'\r' {
                    return Some(lf - 1);
                }
                i = lf;
            }
        }
    }
    None
}

pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_wsp_end(s: &[u8]) -> &[u8] {
    let mut e = s.len();
    while e > 0 && is_wsp(s[e - 1]) {
        e -= 1;
    }
    &s[..e]
}

/// Folding whitespace and plain whitespace, as the tag-list grammar allows
/// it around tags and values (RFC 6376 §3.2, FWS).
fn is_fws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_fws(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut e = s.len();
    while a < e && is_fws(s[a]) {
        a += 1;
    }
    while e > a && is_fws(s[e - 1]) {
        e -= 1;
    }
    &s[a..e]
}

/// One `tag=value` of a tag list, with the byte range of the value in the
/// parsed input (used to blank out `b=` for the header hash, §3.7).
pub(crate) struct Tag<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
    pub value_range: Range<usize>,
}

const MAX_TAGS: usize = 64;

/// RFC 6376 §3.2 tag list: `tag-spec *( ";" tag-spec ) [ ";" ]`, tag names
/// case-sensitive, FWS around names and values, duplicate tags an error.
/// Total: every input gives `Ok` or `Err`, never a panic.
/// With `lenient` (key records, spec §6.2), empty specs anywhere are skipped.
pub(crate) fn parse_tag_list(s: &[u8], lenient: bool) -> Result<Vec<Tag<'_>>, String> {
    let mut tags: Vec<Tag<'_>> = Vec::new();
    let mut start = 0;
    while start <= s.len() {
        let end = s[start..]
            .iter()
            .position(|&b| b == b';')
            .map(|p| start + p)
            .unwrap_or(s.len());
        let spec = &s[start..end];
        if trim_fws(spec).is_empty() {
            // Empty spec: allowed only as a trailing ";" (or an empty list).
            if !lenient && end < s.len() && !trim_fws(&s[end + 1..]).is_empty() {
                return Err("empty tag in tag list".into());
            }
        } else {
            let eq = spec
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| "tag without '='".to_string())?;
            let name = trim_fws(&spec[..eq]);
            let valid_name = !name.is_empty()
                && name[0].is_ascii_alphabetic()
                && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err("invalid tag name".into());
            }
            let name = std::str::from_utf8(name).map_err(|_| "invalid tag name".to_string())?;
            let raw_v = &spec[eq + 1..];
            let v = trim_fws(raw_v);
            let lead = raw_v.len() - trim_fws_start_len(raw_v);
            let vstart = start + eq + 1 + lead;
            if tags.iter().any(|t| t.name == name) {
                return Err(format!("duplicate tag {name}="));
            }
            if tags.len() >= MAX_TAGS {
                return Err("too many tags".into());
            }
            tags.push(Tag {
                name,
                value: v,
                value_range: vstart..vstart + v.len(),
            });
        }
        start = end + 1;
    }
    Ok(tags)
}

fn trim_fws_start_len(s: &[u8]) -> usize {
    let a = s.iter().position(|&b| !is_fws(b)).unwrap_or(s.len());
    s.len() - a
}

/// Base64 with FWS allowed anywhere inside (RFC 6376 §2.4 base64string).
pub(crate) fn decode_b64(v: &[u8]) -> Result<Vec<u8>, String> {
    let clean: Vec<u8> = v.iter().copied().filter(|&b| !is_fws(b)).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .map_err(|e| format!("bad base64: {e}"))
}

/// Signing algorithms we accept (RFC 6376 §3.3, RFC 8463).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

/// The tags of a well-formed DKIM-Signature (RFC 6376 §3.5).
#[derive(Clone, Debug)]
pub struct Signature {
    pub algorithm: Algorithm,
    pub header_canon: HeaderCanon,
    pub body_canon: BodyCanon,
    /// `d=`, lower-cased.
    pub domain: String,
    pub selector: String,
    /// `h=`, lower-cased, in order.
    pub headers: Vec<String>,
    pub body_hash: Vec<u8>,
    pub signature: Vec<u8>,
    pub identity: Option<String>,
    pub timestamp: Option<u64>,
    pub expiration: Option<u64>,
}

/// One DKIM-Signature header field of a message, parsed or not.
#[derive(Clone, Debug)]
pub struct ParsedSignature {
    /// Position among the message's header fields (0 = topmost).
    pub field_index: usize,
    /// The well-formed signature, or why it is malformed (such a signature
    /// can never verify: RFC 6376 §6.1.1 PERMFAIL).
    pub parsed: Result<Signature, String>,
}

impl ParsedSignature {
    pub fn domain(&self) -> Option<&str> {
        self.parsed.as_ref().ok().map(|s| s.domain.as_str())
    }
    pub fn selector(&self) -> Option<&str> {
        self.parsed.as_ref().ok().map(|s| s.selector.as_str())
    }
}

const MAX_SIG_FIELD: usize = 16 * 1024;
const MAX_SIGNED_HEADERS: usize = 256;

fn utf8(v: &[u8], tag: &str) -> Result<String, String> {
    String::from_utf8(v.to_vec()).map_err(|_| format!("{tag}= is not UTF-8"))
}

fn parse_u64(v: &[u8], tag: &str) -> Result<u64, String> {
    // RFC 6376 §3.5: at most 12 digits.
    if v.is_empty() || v.len() > 12 || !v.iter().all(u8::is_ascii_digit) {
        return Err(format!("bad {tag}= value"));
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad {tag}= value"))
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parse the value of one DKIM-Signature field (RFC 6376 §3.5, §6.1.1).
pub(crate) fn parse_signature(value: &[u8]) -> Result<Signature, String> {
    if value.len() > MAX_SIG_FIELD {
        return Err("signature field too long".into());
    }
    let tags = parse_tag_list(value, false)?;
    let get = |n: &str| tags.iter().find(|t| t.name == n).map(|t| t.value);
    let req = |n: &str| get(n).ok_or_else(|| format!("missing {n}= tag"));
    if req("v")? != b"1" {
        return Err("unsupported v= (want 1)".into());
    }
    let algorithm = match req("a")? {
        b"rsa-sha256" => Algorithm::RsaSha256,
        b"ed25519-sha256" => Algorithm::Ed25519Sha256,
        // RFC 8301 §3.1: rsa-sha1 MUST NOT be considered valid.
        b"rsa-sha1" => return Err("rsa-sha1 is not accepted (RFC 8301)".into()),
        _ => return Err("unknown a= algorithm".into()),
    };
    let (header_canon, body_canon) = match get("c") {
        None => (HeaderCanon::Simple, BodyCanon::Simple),
        Some(c) => {
            let c = std::str::from_utf8(c).map_err(|_| "bad c= value".to_string())?;
            let (h, b) = c.split_once('/').unwrap_or((c, "simple"));
            let h = match h {
                "simple" => HeaderCanon::Simple,
                "relaxed" => HeaderCanon::Relaxed,
                _ => return Err("unknown header canonicalization".into()),
            };
            let b = match b {
                "simple" => BodyCanon::Simple,
                "relaxed" => BodyCanon::Relaxed,
                _ => return Err("unknown body canonicalization".into()),
            };
            (h, b)
        }
    };
    // RFC 6376 §8.2: l= lets a third party append to a signed body. We do
    // not honour it: a signature with l= is treated as invalid.
    if get("l").is_some() {
        return Err("l= (body length limit) is refused".into());
    }
    if let Some(q) = get("q") {
        let ok = q
            .split(|&b| b == b':')
            .any(|m| trim_fws(m).eq_ignore_ascii_case(b"dns/txt"));
        if !ok {
            return Err("unsupported q= query method".into());
        }
    }
    let domain = utf8(req("d")?, "d")?.to_ascii_lowercase();
    if !valid_domain(&domain) {
        return Err("invalid d= domain".into());
    }
    let selector = utf8(req("s")?, "s")?;
    if !valid_domain(&selector) {
        return Err("invalid s= selector".into());
    }
    let mut headers = Vec::new();
    for h in req("h")?.split(|&b| b == b':') {
        let h = trim_fws(h);
        if h.is_empty() || !h.iter().all(|&b| (33..=126).contains(&b) && b != b':') {
            return Err("invalid h= header name".into());
        }
        if headers.len() >= MAX_SIGNED_HEADERS {
            return Err("too many h= names".into());
        }
        headers.push(String::from_utf8_lossy(h).to_ascii_lowercase());
    }
    // RFC 6376 §5.4: From MUST be signed.
    if !headers.iter().any(|h| h == "from") {
        return Err("h= does not include From".into());
    }
    let body_hash = decode_b64(req("bh")?).map_err(|e| format!("bh=: {e}"))?;
    if body_hash.len() != 32 {
        return Err("bh= has the wrong length for SHA-256".into());
    }
    let signature = decode_b64(req("b")?).map_err(|e| format!("b=: {e}"))?;
    if signature.is_empty() || signature.len() > 1024 {
        return Err("b= has an impossible length".into());
    }
    let identity = match get("i") {
        None => None,
        Some(i) => {
            let i = utf8(i, "i")?;
            let idom = i
                .rsplit_once('@')
                .map(|(_, d)| d)
                .ok_or_else(|| "i= without '@'".to_string())?
                .to_ascii_lowercase();
            // RFC 6376 §3.5 i=: the domain MUST be d= or a subdomain of it.
            if idom != domain && !idom.ends_with(&format!(".{domain}")) {
                return Err("i= domain is not d= or a subdomain of it".into());
            }
            Some(i)
        }
    };
    let timestamp = get("t").map(|v| parse_u64(v, "t")).transpose()?;
    let expiration = get("x").map(|v| parse_u64(v, "x")).transpose()?;
    if let (Some(t), Some(x)) = (timestamp, expiration) {
        if x < t {
            return Err("x= is before t=".into());
        }
    }
    Ok(Signature {
        algorithm,
        header_canon,
        body_canon,
        domain,
        selector,
        headers,
        body_hash,
        signature,
        identity,
        timestamp,
        expiration,
    })
}

pub(crate) fn is_dkim_signature(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"dkim-signature")
}

/// All DKIM-Signature fields of a parsed message, top-down, at most
/// [`MAX_SIGNATURES`].
pub(crate) fn signatures_of(m: &Message<'_>) -> Vec<ParsedSignature> {
    let mut out = Vec::new();
    for i in 0..m.fields.len() {
        if !is_dkim_signature(m.name(i)) {
            continue;
        }
        if out.len() >= MAX_SIGNATURES {
            break;
        }
        out.push(ParsedSignature {
            field_index: i,
            parsed: parse_signature(m.value(i)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_list_grammar() {
        let t = parse_tag_list(b" a = 1 ;b=\r\n\t2 3;", false).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].name, t[0].value), ("a", &b"1"[..]));
        assert_eq!(t[1].value, b"2 3");
        assert!(parse_tag_list(b"", false).unwrap().is_empty());
        assert!(parse_tag_list(b"a=1;;b=2", false).is_err());
        assert_eq!(parse_tag_list(b"a=1;;b=2", true).unwrap().len(), 2);
        assert!(parse_tag_list(b"a=1;a=2", false).is_err());
        assert!(parse_tag_list(b"1a=1", false).is_err());
        assert!(parse_tag_list(b"a", false).is_err());
        assert!(parse_tag_list(b"=", false).is_err());
        // value ranges point into the input
        let s = b"x=1; b=abc ; y=2";
        let t = parse_tag_list(s, false).unwrap();
        assert_eq!(&s[t[1].value_range.clone()], b"abc");
        let many: String = (0..100).map(|i| format!("t{i}=1;")).collect();
        assert!(parse_tag_list(many.as_bytes(), false).is_err());
    }

    #[test]
    fn message_split() {
        let m = Message::parse(b"A: 1\r\n b\r\nB:2\r\n\r\nbody\r\n");
        assert_eq!(m.fields.len(), 2);
        assert_eq!(m.field(0), b"A: 1\r\n b\r\n");
        assert_eq!(m.name(1), b"B");
        assert_eq!(m.value(0), b" 1\r\n b\r\n");
        assert_eq!(m.body(), b"body\r\n");
        let m = Message::parse(b"A: 1\nB: 2\n\nx\n");
        assert_eq!(m.fields.len(), 2);
        assert_eq!(m.body(), b"x\r\n");
        let m = Message::parse(b"\r\nonly body");
        assert!(m.fields.is_empty());
        assert_eq!(m.body(), b"only body");
        let m = Message::parse(b"No colon line\r\nName : v\r\n");
        assert_eq!(m.name(0), b"No colon line");
        assert_eq!(m.name(1), b"Name");
        assert_eq!(m.value(0), b"");
        assert!(m.body().is_empty());
        // Continuation before any field is kept as its own field.
        let m = Message::parse(b" lead\r\nA: 1\r\n");
        assert_eq!(m.fields.len(), 2);
        let big = "X: y\r\n".repeat(MAX_HEADER_FIELDS + 5) + "\r\nbody";
        let m = Message::parse(big.as_bytes());
        assert!(m.truncated);
        assert_eq!(m.fields.len(), MAX_HEADER_FIELDS);
        assert_eq!(m.body(), b"body");
    }

    #[test]
    fn find_crlf_cases() {
        assert_eq!(find_crlf(b"ab\r\n", 0), Some(2));
        assert_eq!(find_crlf(b"a\nb\r\n", 0), Some(3));
        assert_eq!(find_crlf(b"\r", 0), None);
        assert_eq!(find_crlf(b"\n", 0), None);
        assert_eq!(find_crlf(b"", 0), None);
        assert_eq!(find_crlf(b"\r\n\r\n", 2), Some(2));
    }
}
