//! Capabilities and login / create-on-login rules (spec §4.4).
mod common;
use common::*;

const REQUIRED: &[&str] = &[
    "XCHATMAIL",
    "XDELTAPUSH",
    "METADATA",
    "QUOTA",
    "IDLE",
    "MOVE",
    "UIDPLUS",
    "ID",
];

fn caps(c: &mut Imap) -> Vec<String> {
    let r = c.cmd("CAPABILITY");
    assert!(r.ok(), "{r:?}");
    let line = r
        .lines()
        .into_iter()
        .find(|l| l.starts_with("* CAPABILITY "))
        .expect("CAPABILITY line");
    line.split(' ').skip(2).map(str::to_string).collect()
}

#[test]
fn capabilities_imaps_before_and_after_login() {
    let r = Relay::start(10);
    let mut c = r.imaps();
    let before = caps(&mut c);
    for k in REQUIRED.iter().chain(&["IMAP4rev1", "AUTH=PLAIN"]) {
        assert!(before.iter().any(|c| c == k), "missing {k} in {before:?}");
    }
    assert!(!before
        .iter()
        .any(|c| c == "LOGINDISABLED" || c == "STARTTLS"));
    let l = c.login(&r.addr("capsuser1"), PASSWORD);
    assert!(l.ok(), "{l:?}");
    let after = caps(&mut c);
    for k in REQUIRED {
        assert!(
            after.iter().any(|c| c == k),
            "missing {k} after login: {after:?}"
        );
    }
    assert!(!after.iter().any(|c| c == "AUTH=PLAIN"), "{after:?}");
}

#[test]
fn starttls_on_143() {
    let r = Relay::start(11);
    let mut c = r.imap_plain();
    let before = caps(&mut c);
    assert!(before.iter().any(|c| c == "STARTTLS"), "{before:?}");
    assert!(before.iter().any(|c| c == "LOGINDISABLED"), "{before:?}");
    let l = c.login(&r.addr("plainuser"), PASSWORD);
    assert!(
        l.no() || l.bad(),
        "LOGIN must be refused before STARTTLS: {l:?}"
    );
    let a = c.cmd("AUTHENTICATE PLAIN AHBsYWludXNlcgBwYXNzd29yZDEyMw==");
    assert!(a.no() || a.bad(), "{a:?}");
    c.starttls();
    let after = caps(&mut c);
    assert!(
        !after
            .iter()
            .any(|c| c == "STARTTLS" || c == "LOGINDISABLED"),
        "{after:?}"
    );
    assert!(after.iter().any(|c| c == "AUTH=PLAIN"), "{after:?}");
    let l = c.login(&r.addr("plainuser"), PASSWORD);
    assert!(l.ok(), "{l:?}");
    let s = c.cmd("SELECT INBOX");
    assert!(s.ok(), "{s:?}");
    // A second STARTTLS is refused.
    let t = c.cmd("STARTTLS");
    assert!(t.bad() || t.no(), "{t:?}");
}

#[test]
fn create_on_login_rules() {
    let r = Relay::start(12);
    let d = r.domain();
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("short1@{d}"), PASSWORD, "local part too short"),
        (format!("toolonguser@{d}"), PASSWORD, "local part too long"),
        (format!("Upperca5e@{d}"), PASSWORD, "uppercase"),
        (format!("plus+user@{d}"), PASSWORD, "plus"),
        ("gooduser1@example.org".into(), PASSWORD, "wrong domain"),
        (format!("gooduser1@{d}"), "short", "short password"),
        (format!("gooduser1@{d}"), "", "empty password"),
        ("gooduser1".into(), PASSWORD, "no domain"),
        (format!("good@user1@{d}"), PASSWORD, "two @"),
    ];
    let mut c = r.imaps();
    for (addr, pass, why) in &cases {
        let l = c.login(addr, pass);
        assert!(l.no(), "{why}: {addr} must be refused: {l:?}");
    }
    // The refused attempts did not create the account with the short password.
    let l = c.login(&format!("gooduser1@{d}"), PASSWORD);
    assert!(l.ok(), "{l:?}");
    // Allowed characters . _ - and digits.
    let mut c = r.imaps();
    let l = c.login(&format!("a.b_c-d12@{d}"), PASSWORD);
    assert!(l.ok(), "{l:?}");
}

#[test]
fn wrong_password_on_existing_account() {
    let r = Relay::start(13);
    let addr = r.addr("existing1");
    let mut c = r.imaps();
    assert!(c.login(&addr, PASSWORD).ok());
    drop(c);
    let mut c = r.imaps();
    let l = c.login(&addr, "wrongpassword");
    assert!(l.no(), "{l:?}");
    assert!(l.tagged.contains("AUTHENTICATIONFAILED"), "{l:?}");
    let l = c.login(&addr, PASSWORD);
    assert!(l.ok(), "right password still works: {l:?}");
    // Already authenticated: a second LOGIN is refused.
    let l = c.login(&addr, PASSWORD);
    assert!(l.bad() || l.no(), "{l:?}");
}

#[test]
fn concurrent_first_logins_same_address() {
    let r = Relay::start(14);
    let addr = r.addr("racer0001");
    let sock = r.sock(993);
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = Imap::connect_tls(sock);
                c.login(&addr, PASSWORD)
            })
        })
        .collect();
    for h in handles {
        let l = h.join().unwrap();
        assert!(l.ok(), "{l:?}");
    }
    let mut c = r.imaps();
    assert!(c.login(&addr, "otherpassword").no());
    r.assert_no_panic();
}

#[test]
fn nocreate_flag_file() {
    let r = Relay::start(15);
    let existing = r.addr("existing2");
    let mut c = r.imaps();
    assert!(c.login(&existing, PASSWORD).ok());
    std::fs::write(r.dir.path().join("nocreate"), b"").unwrap();
    let mut c = r.imaps();
    let l = c.login(&r.addr("newuser01"), PASSWORD);
    assert!(l.no(), "{l:?}");
    let mut c = r.imaps();
    let l = c.login(&existing, PASSWORD);
    assert!(l.ok(), "existing account still works: {l:?}");
    std::fs::remove_file(r.dir.path().join("nocreate")).unwrap();
    let mut c = r.imaps();
    assert!(c.login(&r.addr("newuser01"), PASSWORD).ok());
}

#[test]
fn nocreate_config_key() {
    let r = Relay::start_with(16, "nocreate = true");
    let mut c = r.imaps();
    let l = c.login(&r.addr("newuser02"), PASSWORD);
    assert!(l.no(), "{l:?}");
}

fn plain_b64(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

#[test]
fn authenticate_plain() {
    let r = Relay::start(17);
    let addr = r.addr("authuser1");
    // SASL-IR
    let mut c = r.imaps();
    let a = c.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_b64(&addr, PASSWORD)
    ));
    assert!(a.ok(), "{a:?}");
    assert!(c.cmd("SELECT INBOX").ok());
    // Continuation
    let mut c = r.imaps();
    let tag = c.next_tag();
    c.send_raw(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes());
    let cont = c.read_response_line();
    assert!(
        cont.starts_with(b"+"),
        "{:?}",
        String::from_utf8_lossy(&cont)
    );
    c.send_raw(format!("{}\r\n", plain_b64(&addr, PASSWORD)).as_bytes());
    let a = c.read_until_tagged(&tag);
    assert!(a.ok(), "{a:?}");
    // Wrong password via AUTHENTICATE
    let mut c = r.imaps();
    let a = c.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        plain_b64(&addr, "wrongpassword")
    ));
    assert!(a.no(), "{a:?}");
    // Cancelled exchange
    let tag = c.next_tag();
    c.send_raw(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes());
    let cont = c.read_response_line();
    assert!(cont.starts_with(b"+"));
    c.send_raw(b"*\r\n");
    let a = c.read_until_tagged(&tag);
    assert!(a.bad(), "{a:?}");
    // Bad base64, unknown mechanism
    assert!(c.cmd("AUTHENTICATE PLAIN !!!notbase64").bad());
    assert!(c.cmd("AUTHENTICATE CRAM-MD5").no());
    assert!(c.cmd("NOOP").ok());
}

#[test]
fn alpn_imap_on_443() {
    let r = Relay::start(18);
    let mut c = Imap::connect_tls_alpn(r.sock(443), &[b"imap"]);
    let l = c.login(&r.addr("alpnuser1"), PASSWORD);
    assert!(l.ok(), "{l:?}");
    assert!(c.cmd("SELECT INBOX").ok());
}
