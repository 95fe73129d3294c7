//! Credentials and invitation links (spec §4.2, §4.3): random accounts for
//! `/new`, `dclogin:` URIs for self-signed relays, terminal QR codes.

use crate::config::Config;

pub const USER_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// ASCII letters, digits and punctuation, like Python's `string.punctuation` set.
const PASS_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

pub fn random_string(alphabet: &[u8], len: usize) -> String {
    let rng = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut b = [0u8; 1];
        ring::rand::SecureRandom::fill(&rng, &mut b).expect("system RNG");
        // Rejection sampling keeps the choice uniform.
        let limit = 256 - (256 % alphabet.len());
        if (b[0] as usize) < limit {
            out.push(alphabet[b[0] as usize % alphabet.len()] as char);
        }
    }
    out
}

pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// A fresh random account (not created until its first login).
pub fn new_credentials(cfg: &Config) -> Credentials {
    let user = random_string(USER_CHARS, cfg.username_max_length.max(1));
    Credentials {
        email: format!("{user}@{}", cfg.mail_domain),
        password: random_string(PASS_CHARS, cfg.password_min_length + 3),
    }
}

/// Percent-encode every byte outside `keep` and unreserved characters.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `dclogin:` URI (spec §4.3) with `ic=3` (accept the self-signed certificate);
/// explicit hosts for IP relays and explicit ports when they are not the defaults.
pub fn dclogin_url(cfg: &Config, c: &Credentials) -> String {
    let mut url = format!(
        "dclogin:{}?p={}&v=1",
        percent_encode(&c.email, b"@[]"),
        percent_encode(&c.password, b"")
    );
    let host = cfg.hostname();
    if cfg.ip_literal.is_some() {
        url.push_str(&format!("&ih={host}&sh={host}"));
    }
    if cfg.imaps_port != 993 && cfg.imaps_port != 0 {
        url.push_str(&format!("&ip={}&is=ssl", cfg.imaps_port));
    }
    if cfg.submissions_port != 465 && cfg.submissions_port != 0 {
        url.push_str(&format!("&sp={}&ss=ssl", cfg.submissions_port));
    }
    url.push_str("&ic=3");
    url
}

/// `DCACCOUNT:` link for relays with a real certificate.
pub fn dcaccount_url(cfg: &Config) -> String {
    let port = if cfg.https_port == 443 {
        String::new()
    } else {
        format!(":{}", cfg.https_port)
    };
    format!("DCACCOUNT:https://{}{}/new", cfg.hostname(), port)
}

/// The invitation for this relay: a `dclogin:` URI with fresh credentials for
/// self-signed relays, else the `DCACCOUNT:` link.
pub fn invitation(cfg: &Config) -> String {
    if cfg.self_signed() {
        dclogin_url(cfg, &new_credentials(cfg))
    } else {
        dcaccount_url(cfg)
    }
}

/// Render `data` as a QR code for a terminal (two rows per character).
pub fn terminal_qr(data: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::L) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(e) => format!("(cannot render QR code: {e})"),
    }
}

/// JSON string literal (RFC 8259 §7).
pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_rules() {
        let cfg = Config::from_ini("[params]\nmail_domain = 192.0.2.1\n", None).unwrap();
        let c = new_credentials(&cfg);
        let (user, dom) = c.email.split_once('@').unwrap();
        assert_eq!(user.len(), 9);
        assert!(user.bytes().all(|b| USER_CHARS.contains(&b)));
        assert_eq!(dom, "[192.0.2.1]");
        assert_eq!(c.password.len(), 12);
        assert!(
            crate::relay::auth::check_new_address(&cfg, &c.email, c.password.as_bytes()).is_ok()
        );
        let url = dclogin_url(&cfg, &c);
        assert!(
            url.starts_with(&format!("dclogin:{user}@[192.0.2.1]?p=")),
            "{url}"
        );
        assert!(url.ends_with("&ih=192.0.2.1&sh=192.0.2.1&ic=3"), "{url}");
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
