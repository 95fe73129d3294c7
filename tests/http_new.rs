//! HTTPS surface (spec §12): /new, autoconfig, robots.txt, 404, header limits.
mod common;
use common::*;

fn check_credentials(r: &Relay, body: &str) -> (String, String) {
    let email = json_field(body, "email").unwrap_or_else(|| panic!("no email: {body}"));
    let password = json_field(body, "password").unwrap_or_else(|| panic!("no password: {body}"));
    let (local, domain) = email.split_once('@').unwrap();
    assert_eq!(domain, r.domain());
    assert_eq!(local.len(), 9, "{email}");
    assert!(
        local
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{email}"
    );
    assert_eq!(password.len(), 12, "{password}");
    let url = json_field(body, "dclogin_url").unwrap_or_else(|| panic!("no dclogin_url: {body}"));
    assert!(url.starts_with("dclogin:"), "{url}");
    assert!(url.contains("ic=3"), "{url}");
    (email, password)
}

#[test]
fn post_new_gives_working_credentials() {
    let r = Relay::start(120);
    let resp = https_post(r.sock(443), &r.ip(), "/new", b"");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(
        resp.header("content-type")
            .unwrap_or_default()
            .contains("application/json"),
        "{resp:?}"
    );
    let (email, password) = check_credentials(&r, &resp.body_str());
    let mut c = r.imaps();
    let l = c.login(&email, &password);
    assert!(l.ok(), "{l:?}");
    assert!(c.cmd("SELECT INBOX").ok());
    // Two calls give different accounts.
    let resp2 = https_post(r.sock(443), &r.ip(), "/new", b"");
    let (email2, _) = check_credentials(&r, &resp2.body_str());
    assert_ne!(email, email2);
}

#[test]
fn get_new_self_signed_is_json() {
    let r = Relay::start(121);
    let resp = https_get(r.sock(443), &r.ip(), "/new");
    assert_eq!(resp.status, 200, "{resp:?}");
    let (email, password) = check_credentials(&r, &resp.body_str());
    let mut c = r.imaps();
    assert!(c.login(&email, &password).ok());
    let resp = https_raw(
        r.sock(443),
        format!(
            "DELETE /new HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            r.ip()
        )
        .as_bytes(),
    );
    assert_eq!(resp.status, 405, "{resp:?}");
}

#[test]
fn new_refused_with_nocreate() {
    let r = Relay::start_with(122, "nocreate = true");
    let resp = https_post(r.sock(443), &r.ip(), "/new", b"");
    assert_eq!(resp.status, 403, "{resp:?}");
    assert!(resp.body_str().contains("reason"), "{resp:?}");
}

#[test]
fn autoconfig_robots_index_404() {
    let r = Relay::start(123);
    for path in [
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        "/mail/config-v1.1.xml",
    ] {
        let a = https_get(r.sock(443), &r.ip(), path);
        assert_eq!(a.status, 200, "{a:?}");
        let b = a.body_str();
        assert!(b.starts_with("<?xml"), "{b}");
        assert!(b.contains("<clientConfig"), "{b}");
        assert!(
            b.contains("<port>993</port>") && b.contains("<socketType>SSL</socketType>"),
            "{b}"
        );
        assert!(b.contains("<hostname>127.0.0.123</hostname>"), "{b}");
        assert!(
            b.contains(&format!("<domain>{}</domain>", r.domain())),
            "{b}"
        );
        // SMTP ports are 0 in the tests: not advertised.
        assert!(!b.contains("<port>0</port>"), "{b}");
    }
    let rb = https_get(r.sock(443), &r.ip(), "/robots.txt");
    assert_eq!(rb.status, 200);
    assert!(rb.body_str().contains("Disallow: /"), "{rb:?}");
    let ix = https_get(r.sock(443), &r.ip(), "/");
    assert_eq!(ix.status, 200);
    assert!(ix.body_str().contains("<html"), "{ix:?}");
    let nf = https_get(r.sock(443), &r.ip(), "/no/such/path");
    assert_eq!(nf.status, 404, "{nf:?}");
    let nf = https_get(r.sock(443), &r.ip(), "/../../etc/passwd");
    assert_eq!(nf.status, 404, "{nf:?}");
}

#[test]
fn keep_alive_two_requests() {
    use std::io::{Read, Write};
    let r = Relay::start(124);
    let mut s = tls_connect(r.sock(443), &[]);
    let req = format!("GET /robots.txt HTTP/1.1\r\nHost: {}\r\n\r\n", r.ip());
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut data = Vec::new();
    let mut tmp = [0u8; 4096];
    while data.windows(12).filter(|w| w == b"Disallow: /\n").count() < 2 {
        let n = s.read(&mut tmp).expect("read second response");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&tmp[..n]);
    }
    assert_eq!(
        String::from_utf8_lossy(&data)
            .matches("HTTP/1.1 200")
            .count(),
        2
    );
}

#[test]
fn oversized_header_block() {
    let mut r = Relay::start(125);
    // One huge header line.
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\n\r\n",
        r.ip(),
        "a".repeat(40 * 1024)
    );
    let resp = https_raw(r.sock(443), req.as_bytes());
    assert!(matches!(resp.status, 431 | 400), "{resp:?}");
    // Many medium lines adding up to > 16 KiB.
    let mut req = format!("GET / HTTP/1.1\r\nHost: {}\r\n", r.ip());
    for i in 0..40 {
        req.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(1000)));
    }
    req.push_str("\r\n");
    let resp = https_raw(r.sock(443), req.as_bytes());
    assert!(matches!(resp.status, 431 | 400), "{resp:?}");
    r.assert_serving();
}

#[test]
fn too_many_headers_and_malformed() {
    let mut r = Relay::start(126);
    let mut req = format!("GET / HTTP/1.1\r\nHost: {}\r\n", r.ip());
    for i in 0..100 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let resp = https_raw(r.sock(443), req.as_bytes());
    assert!(matches!(resp.status, 431 | 400), "{resp:?}");
    let resp = https_raw(r.sock(443), b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(resp.status, 400, "{resp:?}");
    let resp = https_raw(
        r.sock(443),
        format!(
            "POST /new HTTP/1.1\r\nHost: {}\r\nContent-Length: 99999999\r\n\r\n",
            r.ip()
        )
        .as_bytes(),
    );
    assert_eq!(resp.status, 413, "{resp:?}");
    // A client that sends its whole oversized body still gets the 413 (the
    // server drains it, bounded), not a reset connection.
    let mut req = format!(
        "POST /new HTTP/1.1\r\nHost: {}\r\nContent-Length: 300000\r\n\r\n",
        r.ip()
    )
    .into_bytes();
    req.extend(std::iter::repeat_n(b'x', 300_000));
    let resp = https_raw(r.sock(443), &req);
    assert_eq!(resp.status, 413, "{resp:?}");
    let resp = https_raw(
        r.sock(443),
        format!(
            "POST /new HTTP/1.1\r\nHost: {}\r\nContent-Length: abc\r\n\r\n",
            r.ip()
        )
        .as_bytes(),
    );
    assert_eq!(resp.status, 400, "{resp:?}");
    r.assert_serving();
}
