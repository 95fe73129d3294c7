//! Envelope address parsing (RFC 5321 §4.1.2 `Path`, simplified to what mail
//! relays see in practice), no I/O.

/// Parse `<local@domain> [params]` after `FROM:` / `TO:`. Returns the
/// lower-cased address (`""` for the null path `<>`) and the ESMTP parameters.
/// ESMTP parameters: `KEY` or `KEY=value`, keys upper-cased.
pub use crate::mail::split_addr;

pub type Params = Vec<(String, Option<String>)>;

pub fn parse_path(arg: &str) -> Result<(String, Params), &'static str> {
    let arg = arg.trim_start();
    let (path, rest) = if let Some(r) = arg.strip_prefix('<') {
        let end = r.find('>').ok_or("Syntax error in address: missing '>'")?;
        (&r[..end], &r[end + 1..])
    } else {
        // Lenient: bare address without brackets.
        match arg.split_once(' ') {
            Some((a, b)) => (a, b),
            None => (arg, ""),
        }
    };
    // Source routes (`@a,@b:user@c`, RFC 5321 §4.1.2) are accepted and ignored.
    let path = match path.rsplit_once(':') {
        Some((route, addr)) if route.starts_with('@') => addr,
        _ => path,
    };
    // The bound holds for the lower-cased form we keep: Unicode lower-casing
    // can make a path longer (fuzz finding of smtp_path).
    let lower = path.to_lowercase();
    if lower.len() > 320
        || lower
            .chars()
            .any(|c| c.is_control() || c == ' ' || c == '<' || c == '>')
    {
        return Err("Syntax error in address");
    }
    let mut params = Vec::new();
    for p in rest.split_whitespace() {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v.to_string())),
            None => (p.to_ascii_uppercase(), None),
        };
        params.push((k, v));
    }
    Ok((lower, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("<A@B.org> SIZE=10").unwrap(),
            ("a@b.org".into(), vec![("SIZE".into(), Some("10".into()))])
        );
        assert_eq!(parse_path("<>").unwrap().0, "");
        assert_eq!(parse_path("<@x,@y:u@z>").unwrap().0, "u@z");
        assert!(parse_path("<a@b").is_err());
        assert!(parse_path("<a b@c>").is_err());
        // 'İ' is 2 bytes and lower-cases to 3: the limit applies after that.
        let long = format!("<{}@x>", "İ".repeat(158));
        assert!(long.len() <= 322 && parse_path(&long).is_err());
        assert_eq!(split_addr("u@[127.0.0.1]"), Some(("u", "[127.0.0.1]")));
        assert_eq!(split_addr("a@b@c"), None);
    }
}
