//! IMAP wire helpers: character classes, string encoding for responses,
//! literal framing, and date/date-time conversion. Pure code, no I/O.

/// Longest string [`astring`]/[`quoted_or_nil`] will send as a quoted string.
pub const MAX_QUOTED: usize = 1024;

/// ATOM-CHAR (RFC 3501 §9): any CHAR except atom-specials.
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR = ATOM-CHAR / resp-specials (`]`).
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// list-char = ATOM-CHAR / list-wildcards / resp-specials.
pub fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// tag = 1*<any ASTRING-CHAR except "+">.
pub fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

fn quotable_plain(s: &[u8]) -> bool {
    s.len() <= MAX_QUOTED
        && s.iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

fn quotable_escaped(s: &[u8]) -> bool {
    s.len() <= MAX_QUOTED && s.iter().all(|&b| (0x20..0x7f).contains(&b))
}

/// A synchronising literal: `{n}\r\n` followed by the bytes.
pub fn literal(s: &[u8]) -> Vec<u8> {
    let mut out = format!("{{{}}}\r\n", s.len()).into_bytes();
    out.extend_from_slice(s);
    out
}

/// Quoted string with `"` and `\` escaped. The caller must ensure the bytes
/// are printable ASCII; otherwise use [`string`].
pub fn quoted(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// astring for responses: atom if safe, quoted if printable without `"`, `\`,
/// CR, LF and short, else a literal. Never emits the bare atom `NIL`.
pub fn astring(s: &[u8]) -> Vec<u8> {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
        s.to_vec()
    } else if quotable_plain(s) {
        quoted(s)
    } else {
        literal(s)
    }
}

/// string: quoted (with escapes) when printable ASCII and short, else literal.
pub fn string(s: &[u8]) -> Vec<u8> {
    if quotable_escaped(s) {
        quoted(s)
    } else {
        literal(s)
    }
}

/// nstring: `NIL` or [`string`].
pub fn nstring(s: Option<&[u8]>) -> Vec<u8> {
    match s {
        None => b"NIL".to_vec(),
        Some(s) => string(s),
    }
}

/// `NIL`, a quoted string (escaping `"`/`\`), or a literal if the value has
/// CR/LF, control or 8-bit bytes or is long. Used for ENVELOPE/BODYSTRUCTURE.
pub fn quoted_or_nil(s: Option<&[u8]>) -> Vec<u8> {
    nstring(s)
}

/// If the line (without CRLF; a trailing CRLF/LF is tolerated) ends with a
/// literal marker `{n}` or `{n+}` (LITERAL+, RFC 7888), also `~{n}` /
/// `~{n+}` (literal8), return `(n, non_synchronizing)`. `None` if there is no
/// marker or `n` overflows u64.
pub fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let (line, nonsync) = match line.strip_suffix(b"+") {
        Some(l) => (l, true),
        None => (line, false),
    };
    let digits_start = line
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let (head, digits) = line.split_at(digits_start);
    if digits.is_empty() || head.last() != Some(&b'{') {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some((n, nonsync))
}

pub use crate::clock::{civil_from_days, days_from_civil, days_in_month, MONTHS};

/// IMAP date-time in UTC: `27-Nov-2026 13:40:00 +0000` (2-digit day).
pub fn imap_datetime(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86400);
    let secs = unix_secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let mon = MONTHS.get((m as usize).wrapping_sub(1)).unwrap_or(&"Jan");
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        d,
        mon,
        y,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// IMAP date (`1-Feb-1994`) for a day number.
pub fn imap_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    let mon = MONTHS.get((m as usize).wrapping_sub(1)).unwrap_or(&"Jan");
    format!("{d}-{mon}-{y:04}")
}

fn month_from_name(s: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

fn digits_value(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Parse an IMAP `date-text` (`1-Feb-1994`, `01-Feb-1994`) into a day number.
pub fn parse_date(s: &[u8]) -> Option<i64> {
    let mut it = s.splitn(3, |&b| b == b'-');
    let day = it.next()?;
    let mon = it.next()?;
    let year = it.next()?;
    if day.len() > 2 || year.len() != 4 {
        return None;
    }
    let d = digits_value(day)?;
    let m = month_from_name(mon)?;
    let y = i64::from(digits_value(year)?);
    if d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Parse an IMAP `date-time` (`27-Nov-2026 13:40:00 +0000`, day may be
/// space-padded or one digit) into unix seconds.
pub fn parse_datetime(s: &[u8]) -> Option<i64> {
    let s = s.strip_prefix(b" ").unwrap_or(s);
    let mut parts = s.split(|&b| b == b' ');
    let date = parts.next()?;
    let time = parts.next()?;
    let zone = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let days = parse_date(date)?;
    if time.len() != 8 || time.get(2) != Some(&b':') || time.get(5) != Some(&b':') {
        return None;
    }
    let hh = digits_value(time.get(0..2)?)?;
    let mm = digits_value(time.get(3..5)?)?;
    let ss = digits_value(time.get(6..8)?)?;
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    if zone.len() != 5 {
        return None;
    }
    let sign: i64 = match zone.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh = digits_value(zone.get(1..3)?)?;
    let zm = digits_value(zone.get(3..5)?)?;
    if zm > 59 {
        return None;
    }
    let offset = sign * (i64::from(zh) * 3600 + i64::from(zm) * 60);
    Some(days * 86400 + i64::from(hh) * 3600 + i64::from(mm) * 60 + i64::from(ss) - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        for z in [-1000000i64, -1, 0, 1, 11016, 20000, 3000000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn datetime_roundtrip() {
        let t = parse_datetime(b"27-Nov-2026 13:40:00 +0000").unwrap();
        assert_eq!(imap_datetime(t), "27-Nov-2026 13:40:00 +0000");
        assert_eq!(parse_datetime(b" 1-Jan-1970 01:00:00 +0100"), Some(0));
        assert_eq!(parse_datetime(b"1-Jan-1970 00:00:00 -0001"), Some(60));
        assert_eq!(parse_datetime(b"31-Feb-2020 00:00:00 +0000"), None);
        assert_eq!(imap_date(parse_date(b"1-Feb-1994").unwrap()), "1-Feb-1994");
    }

    #[test]
    fn strings() {
        assert_eq!(astring(b"INBOX"), b"INBOX");
        assert_eq!(astring(b""), b"\"\"");
        assert_eq!(astring(b"nil"), b"\"nil\"");
        assert_eq!(astring(b"a b"), b"\"a b\"");
        assert_eq!(astring(b"a\"b"), b"{3}\r\na\"b");
        assert_eq!(nstring(None), b"NIL");
        assert_eq!(quoted_or_nil(Some(b"a\"b")), b"\"a\\\"b\"");
        assert_eq!(quoted_or_nil(Some(b"a\r\nb")), b"{4}\r\na\r\nb");
    }

    #[test]
    fn literal_marker() {
        assert_eq!(literal_at_end(b"a LOGIN u {5}"), Some((5, false)));
        assert_eq!(literal_at_end(b"a APPEND x ~{12+}\r\n"), Some((12, true)));
        assert_eq!(literal_at_end(b"a {}"), None);
        assert_eq!(literal_at_end(b"a 5}"), None);
        assert_eq!(literal_at_end(b"}"), None);
        assert_eq!(literal_at_end(b"{99999999999999999999999}"), None);
    }
}
