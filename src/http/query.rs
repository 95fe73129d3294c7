//! Query strings (`?a=b&c=d`, RFC 3986 §3.4, form encoding with `+` as a
//! space): bounded, strict percent-decoding, UTF-8 only. A query that is
//! too long, has too many parameters, a broken `%` escape or invalid UTF-8
//! is refused as a whole (400) instead of being half-understood.

/// Longest query accepted (an invite link's is under 40 bytes).
pub const MAX_QUERY: usize = 1024;
/// Most parameters.
pub const MAX_PARAMS: usize = 16;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

#[derive(Debug, PartialEq, Eq)]
pub enum QueryError {
    TooLong,
    TooMany,
    Malformed,
}

impl QueryError {
    pub fn reason(&self) -> &'static str {
        match self {
            QueryError::TooLong => "query string too long",
            QueryError::TooMany => "too many query parameters",
            QueryError::Malformed => "malformed query string",
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(s: &str) -> Result<String, QueryError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(QueryError::Malformed);
                };
                out.push(h << 4 | l);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c if c.is_ascii_control() || c == b' ' => return Err(QueryError::Malformed),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    let s = String::from_utf8(out).map_err(|_| QueryError::Malformed)?;
    if s.chars().any(|c| c.is_control()) {
        return Err(QueryError::Malformed);
    }
    Ok(s)
}

impl Query {
    pub fn parse(q: &str) -> Result<Query, QueryError> {
        if q.len() > MAX_QUERY {
            return Err(QueryError::TooLong);
        }
        let mut out = Vec::new();
        for part in q.split('&').filter(|p| !p.is_empty()) {
            if out.len() == MAX_PARAMS {
                return Err(QueryError::TooMany);
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((decode(k)?, decode(v)?));
        }
        Ok(Query(out))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let q = Query::parse("t=abc123&x=a%20b+c&flag").unwrap();
        assert_eq!(q.get("t"), Some("abc123"));
        assert_eq!(q.get("x"), Some("a b c"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("nope"), None);
        assert!(Query::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "t=%", "t=%4", "t=%zz", "t=%ff", "t=%00", "t=a%0Ab", "t=\u{1}",
        ] {
            assert_eq!(Query::parse(bad), Err(QueryError::Malformed), "{bad:?}");
        }
        assert_eq!(
            Query::parse(&"a".repeat(MAX_QUERY + 1)),
            Err(QueryError::TooLong)
        );
        let many = (0..=MAX_PARAMS)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(Query::parse(&many), Err(QueryError::TooMany));
    }
}
