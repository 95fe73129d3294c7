//! The dyndns2 update protocol (no I/O): the request line and the meaning
//! of the answer. Checked against the public docs of Dyn
//! ("Perform Update", "Return Codes"), No-IP ("Integrate: Request",
//! "Interpret Response") and Google Domains' former `nic/update`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `User-Agent` (the providers require one naming program and version).
pub const USER_AGENT: &str = concat!("chatrelay chatrelay/", env!("CARGO_PKG_VERSION"));

/// What an answer tells the client to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `good <ip>`: updated.
    Good(String),
    /// `nochg <ip>`: already so; repeating it is abuse (Dyn, No-IP).
    NoChange(String),
    /// `badauth`, `!donator`, `notfqdn`, `nohost`, `numhost`, `abuse`,
    /// `badagent`, `nofqdn`: nothing more until the configuration changes.
    Stop(String),
    /// `911`, `dnserr`: the provider's trouble; no sooner than 30 minutes.
    Later(String),
    /// Anything else (an HTTP error page, garbage): retry with backoff.
    Unknown(String),
}

fn percent(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// Path and query: `hostname=`, `myip=` with IPv4 and/or IPv6 comma-separated
/// (Dyn and No-IP accept both); no `myip` at all lets the provider take the
/// request's source address (all three providers document this).
pub fn request_path(
    base: &str,
    hostname: &str,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut p = format!("{base}{sep}hostname={}", percent(hostname));
    let ips: Vec<String> = v4
        .map(|a| a.to_string())
        .into_iter()
        .chain(v6.map(|a| a.to_string()))
        .collect();
    if !ips.is_empty() {
        p.push_str("&myip=");
        p.push_str(&percent(&ips.join(",")));
    }
    p
}

/// `Authorization: Basic` value.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The first line of the body decides (one hostname per request).
pub fn parse(body: &str) -> Reply {
    let line = body.lines().next().unwrap_or("").trim();
    let mut w = line.splitn(2, ' ');
    let code = w.next().unwrap_or("");
    let rest = w.next().unwrap_or("").trim().to_string();
    match code {
        "good" => Reply::Good(rest),
        "nochg" => Reply::NoChange(rest),
        "badauth" | "!donator" | "notfqdn" | "nofqdn" | "nohost" | "numhost" | "abuse"
        | "badagent" | "!yours" => Reply::Stop(code.to_string()),
        "911" | "dnserr" => Reply::Later(code.to_string()),
        _ => Reply::Unknown(line.chars().take(80).collect()),
    }
}

/// What to tell the user for a `Stop` code.
pub fn explain(code: &str) -> &'static str {
    match code {
        "badauth" => "user name or password wrong (ddns_user, ddns_password)",
        "!donator" => "the request needs a paid account",
        "notfqdn" | "nofqdn" => "the hostname is not a full domain name",
        "nohost" | "!yours" => "the hostname is not in this account",
        "numhost" => "too many hosts in one update",
        "abuse" => "the provider blocked the hostname for too many updates",
        "badagent" => "the provider refuses this client",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_path("/nic/update", "a.example", None, None),
            "/nic/update?hostname=a.example"
        );
        assert_eq!(
            request_path(
                "/nic/update",
                "a.example",
                Some("192.0.2.1".parse().unwrap()),
                Some("2001:db8::1".parse().unwrap())
            ),
            "/nic/update?hostname=a.example&myip=192.0.2.1%2C2001%3Adb8%3A%3A1"
        );
        assert_eq!(basic_auth("u", "p"), "Basic dTpw");
    }

    #[test]
    fn codes() {
        assert_eq!(parse("good 192.0.2.1\n"), Reply::Good("192.0.2.1".into()));
        assert_eq!(
            parse("nochg 192.0.2.1"),
            Reply::NoChange("192.0.2.1".into())
        );
        for c in [
            "badauth", "notfqdn", "nohost", "abuse", "!donator", "badagent", "numhost",
        ] {
            assert_eq!(parse(c), Reply::Stop(c.into()));
        }
        assert_eq!(parse("911"), Reply::Later("911".into()));
        assert_eq!(parse("dnserr"), Reply::Later("dnserr".into()));
        assert!(matches!(parse("<html>"), Reply::Unknown(_)));
        assert!(matches!(parse(""), Reply::Unknown(_)));
    }
}
