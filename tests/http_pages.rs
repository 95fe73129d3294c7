//! The web pages of issue 12 (`/`, `/privacy.html`, `/info.html`,
//! `/status`) rendered by the real relay for an IP-literal relay and a
//! domain relay, checked against their config; HTML injection through
//! config values; 404/405; bad query strings; `/status` only for peers in
//! `status_networks`. Addresses 127.0.0.20–23.
mod common;
#[path = "support/mod.rs"]
mod support;

use common::*;

/// Every promise of the privacy policy (seed document) that chatrelay
/// keeps, as a phrase the page must contain.
const PROMISES: &[&str] = &[
    "does not ask you for personal details",
    "no phone number",
    "It sends and accepts only messages encrypted with OpenPGP",
    "It writes no Internet address (IP address) to disk or to its log",
    "It never puts an IP address together with an e-mail address",
    "one-way hash (Argon2id)",
    "Each profile has its own credentials",
    "any standard IMAP e-mail program, without asking the operator",
    "The realtime relay only forwards this traffic while it flows; it never stores it, not even in encrypted form",
    "Art. 6 (1) (b) GDPR",
    "Art. 6 (1) (f) GDPR",
    "We do not use any of this to draw conclusions about you as a person",
    "Its log records delivery events",
    "it never contains IP addresses or message contents",
    "Limits protect the relay from excessive use",
    "Art. 6 (1) (a) GDPR",
    "Art. 6 (1) (c) GDPR",
    "Art. 28 (1) and (3) GDPR",
    "Articles 12 to 23 GDPR",
    "supervisory authority",
    "It does not log who asks for them: no IP address",
];

fn get_page(r: &Relay, host: &str, path: &str) -> String {
    let resp = https_get(r.sock(443), host, path);
    assert_eq!(resp.status, 200, "{path}: {resp:?}");
    let ct = resp.header("content-type").unwrap_or_default();
    assert_eq!(ct, "text/html; charset=utf-8", "{path}");
    let csp = resp.header("content-security-policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
    let body = resp.body_str();
    check_clean(path, &body);
    body
}

/// No unfilled marker, no script, nothing loaded from anywhere.
fn check_clean(path: &str, body: &str) {
    assert!(body.starts_with("<!doctype html>"), "{path}");
    assert!(!body.contains("{{"), "{path}: unfilled marker\n{body}");
    let lower = body.to_ascii_lowercase();
    for bad in [
        "<script",
        "<img",
        "<link",
        "<iframe",
        "<object",
        "@import",
        "url(",
        "javascript:",
    ] {
        assert!(!lower.contains(bad), "{path}: contains {bad:?}");
    }
    // Inside real tags (text is escaped, so every `<` opens one): nothing
    // that loads or runs anything.
    for tag in lower.split('<').skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        // Attribute values are escaped (no `"` inside): drop them.
        let names: String = tag.split('"').step_by(2).collect();
        let tag = names.as_str();
        for bad in [
            " src=",
            " onerror",
            " onload",
            " onclick",
            " srcset",
            " action=\"http",
        ] {
            assert!(!tag.contains(bad), "{path}: tag <{tag}> has {bad:?}");
        }
    }
    // Links only to this relay's pages or to the app / mail schemes.
    for (i, _) in lower.match_indices("href=\"") {
        let rest = &body[i + 6..];
        let target = &rest[..rest.find('"').unwrap()];
        assert!(
            target.starts_with('/')
                || target.starts_with("dclogin:")
                || target.starts_with("DCACCOUNT:")
                || target.starts_with("mailto:"),
            "{path}: link to {target}"
        );
    }
    assert!(
        body.contains("prefers-color-scheme:dark"),
        "{path}: no dark style"
    );
    assert!(body.contains("name=\"viewport\""), "{path}: no viewport");
}

#[test]
fn ip_relay_pages_follow_config() {
    let r = Relay::start_with(
        20,
        "delete_mails_after = 15\ndelete_large_after = 3\ndelete_inactive_users_after = 60\n\
         max_mailbox_size = 250M\nmax_message_size = 10485760\nmax_user_send_per_minute = 42\n\
         max_user_send_burst_size = 7\nmax_queue_lifetime = 3d\n",
    );
    let host = r.ip();
    let index = get_page(&r, &host, "/");
    assert!(index.contains("<svg"), "no QR code");
    assert!(
        index.contains("href=\"dclogin:"),
        "no tappable dclogin link"
    );
    assert!(index.contains("15 days after they arrive"), "{index}");
    assert!(index.contains("60 days"), "{index}");
    assert!(index.contains("href=\"/privacy.html\"") && index.contains("href=\"/info.html\""));
    assert!(
        index.contains("<title>[127.0.0.20] — a chatmail relay</title>"),
        "{index}"
    );

    let privacy = get_page(&r, &host, "/privacy.html");
    for p in PROMISES {
        assert!(privacy.contains(p), "privacy page lacks {p:?}");
    }
    for live in [
        "every message is deleted 15 days after it arrived",
        "that were read already after 3 days",
        "removed until it is at 70 %",
        "for 60 days is deleted",
        "250 MiB",
        "10 MiB per message",
        "42 messages per minute",
        "bursts of up to 7",
        "for at most 3 days",
        "notifications.delta.chat",
        "does not name a realtime relay or TURN server",
        "the operator keeps it for a limited time only",
    ] {
        assert!(
            privacy.contains(live),
            "privacy page lacks live value {live:?}"
        );
    }
    // All four operator details unset: said so, four times (plus the contact).
    assert!(
        privacy.matches("has not filled this in yet").count() >= 4,
        "{privacy}"
    );
    // Open registration: both ways of creating a profile.
    assert!(
        privacy.contains("makes up an address on [127.0.0.20]"),
        "{privacy}"
    );

    let info = get_page(&r, &host, "/info.html");
    for live in [
        "15 days after arrival",
        "250 MiB",
        "10 MiB",
        "42 messages per minute",
        "needs no DNS records",
        "name@[127.0.0.20]",
    ] {
        assert!(info.contains(live), "info page lacks {live:?}");
    }

    // LAN page from loopback (in the default status_networks).
    let status = get_page(&r, &host, "/status");
    for want in [
        "[127.0.0.20]",
        "open: anyone",
        "used,",
        "free on the data disk",
        "self-signed",
        "not set in",
        "privacy_postal",
        "<svg",
        "Self-check",
    ] {
        assert!(status.contains(want), "status lacks {want:?}\n{status}");
    }
    r.assert_no_panic();
}

#[test]
fn domain_relay_pages_follow_config() {
    let tmp = TempDir::new("pages-ca");
    let ca = support::TestCa::new(tmp.path());
    let (c, k) = ca.issue("chat.example");
    let r = Relay::start_with(
        21,
        &format!(
            "mail_domain = chat.example\ntls_external_cert_and_key = {} {}\ndkim_ed25519 = true\n\
             privacy_postal = Jane Operator, 1 Main St, Springfield\nprivacy_mail = privacy@chat.example\n\
             privacy_pdo = Dr. Data, dpo@chat.example\nprivacy_supervisor = The State Data Office\n\
             iroh_relay = https://iroh.chat.example\nturn_host = turn.chat.example\nturn_secret = s3cret\n\
             logs_in_ram = true\n",
            c.display(),
            k.display()
        ),
    );
    let host = "chat.example";
    let index = get_page(&r, host, "/");
    assert!(
        index.contains("href=\"DCACCOUNT:https://chat.example/new\""),
        "{index}"
    );
    assert!(index.contains("<svg"));
    let privacy = get_page(&r, host, "/privacy.html");
    for p in PROMISES {
        assert!(privacy.contains(p), "privacy page lacks {p:?}");
    }
    for live in [
        "Jane Operator, 1 Main St, Springfield",
        "<a href=\"mailto:privacy@chat.example\">privacy@chat.example</a>",
        "Dr. Data, dpo@chat.example",
        "The State Data Office",
        "realtime relay at https://iroh.chat.example",
        "TURN server at turn.chat.example:3478",
        "kept in memory only, never on disk",
        "every message is deleted 20 days after it arrived",
        "500 MiB",
        "30 MiB per message",
    ] {
        assert!(privacy.contains(live), "privacy page lacks {live:?}");
    }
    assert!(!privacy.contains("has not filled"), "{privacy}");
    assert!(!privacy.contains("s3cret"), "TURN secret on the page");
    let info = get_page(&r, host, "/info.html");
    assert!(info.contains("opendkim._domainkey.chat.example"), "{info}");
    assert!(info.contains("name@chat.example"), "{info}");
    let status = get_page(&r, host, "/status");
    assert!(status.contains("all operator details"), "{status}");
    assert!(status.contains("from the operator"), "{status}");
    r.assert_no_panic();
}

#[test]
fn config_values_are_escaped() {
    let r = Relay::start_with(
        22,
        "privacy_postal = <script>alert(1)</script>\n\
         privacy_mail = \"><img src=x onerror=alert(1)>@x\n\
         privacy_pdo = {{domain}} & 'quote'\n\
         privacy_supervisor = </dd><h1>pwned</h1>\n\
         iroh_relay = https://x/\"><script>alert(2)</script>\n\
         turn_host = <b>turn</b>\nturn_secret = x\n",
    );
    for path in ["/", "/privacy.html", "/info.html", "/status"] {
        let body = get_page(&r, &r.ip(), path);
        for raw in [
            "<script>",
            "<img",
            "<h1>pwned",
            "<b>turn",
            "{{domain}}",
            "'quote'",
        ] {
            assert!(!body.contains(raw), "{path}: unescaped {raw:?}");
        }
    }
    let privacy = get_page(&r, &r.ip(), "/privacy.html");
    for escaped in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@x",
        "&#123;&#123;domain&#125;&#125; &amp; &#39;quote&#39;",
        "&lt;/dd&gt;&lt;h1&gt;pwned&lt;/h1&gt;",
        "&lt;b&gt;turn&lt;/b&gt;",
    ] {
        assert!(privacy.contains(escaped), "privacy page lacks {escaped:?}");
    }
}

#[test]
fn bad_requests_and_status_from_outside() {
    // 127.0.0.23 is outside these ranges: the relay treats it as public.
    let mut r = Relay::start_with(
        23,
        "status_networks = 10.0.0.0/8 fd00::/8\nregistration = invite\n",
    );
    let host = r.ip();
    let st = https_get(r.sock(443), &host, "/status");
    assert_eq!(st.status, 403, "{st:?}");
    assert!(st
        .body_str()
        .contains("only available on the local network"));
    assert!(!st.body_str().contains("DCACCOUNT") && !st.body_str().contains("dclogin"));
    let inv = https_post(r.sock(443), &host, "/status/invite", b"");
    assert_eq!(inv.status, 403, "{inv:?}");
    // The public pages still work, and show no invitation in invite mode.
    let index = get_page(&r, &host, "/");
    assert!(
        !index.contains("<svg") && !index.contains("dclogin:"),
        "{index}"
    );
    assert!(index.contains("need an invitation"), "{index}");

    for path in [
        "/nope",
        "/privacy",
        "/status/",
        "/index.htm",
        "/.git/config",
    ] {
        assert_eq!(https_get(r.sock(443), &host, path).status, 404, "{path}");
    }
    for (method, path) in [
        ("POST", "/privacy.html"),
        ("PUT", "/"),
        ("DELETE", "/info.html"),
        ("POST", "/status"),
        ("PATCH", "/robots.txt"),
    ] {
        let resp = https_raw(
            r.sock(443),
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(resp.status, 405, "{method} {path}: {resp:?}");
        assert_eq!(
            resp.header("allow").as_deref(),
            Some("GET, HEAD"),
            "{method} {path}"
        );
    }
    // HEAD: the header fields of GET, no content (RFC 9110 §9.3.2).
    let head = https_raw(
        r.sock(443),
        format!("HEAD /info.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(head.status, 200, "{head:?}");
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    assert!(len > 1000 && head.body.is_empty(), "{head:?}");
    let get = https_get(r.sock(443), &host, "/status/invite");
    assert_eq!(
        get.status, 403,
        "outside the LAN even the method is not revealed"
    );
    for q in ["t=%zz", "t=%", "x=%ff%fe", "a=%00", "t=a%0d%0aSet-Cookie:x"] {
        let resp = https_get(r.sock(443), &host, &format!("/privacy.html?{q}"));
        assert_eq!(resp.status, 400, "{q}: {resp:?}");
        let resp = https_post(r.sock(443), &host, &format!("/new?{q}"), b"");
        assert_eq!(resp.status, 400, "/new?{q}: {resp:?}");
    }
    let long = format!("/info.html?x={}", "a".repeat(2000));
    assert_eq!(https_get(r.sock(443), &host, &long).status, 400);
    let many = (0..40)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        https_get(r.sock(443), &host, &format!("/?{many}")).status,
        400
    );
    // A harmless query is ignored.
    assert_eq!(
        https_get(r.sock(443), &host, "/info.html?lang=en").status,
        200
    );
    r.assert_serving();
}
