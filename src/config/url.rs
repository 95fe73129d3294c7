//! The `https://` URLs of config values (`notification_url`, …). No I/O.

/// Split `https://host[:port]/path` into (host, port, path).
pub fn parse_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("https://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (hostport, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://notifications.delta.chat/notify"),
            Some(("notifications.delta.chat".into(), 443, "/notify".into()))
        );
        assert_eq!(
            parse_url("https://127.0.0.5:8443/n"),
            Some(("127.0.0.5".into(), 8443, "/n".into()))
        );
        assert_eq!(
            parse_url("https://[::1]:8443/n"),
            Some(("::1".into(), 8443, "/n".into()))
        );
        assert_eq!(parse_url("http://x/"), None);
    }
}
