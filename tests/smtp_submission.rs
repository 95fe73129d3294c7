//! SMTP submission (spec §5.1, §5.2, issue "Relay core II"): EHLO extensions,
//! 587 STARTTLS, SMTP over 443 by ALPN `smtp`, SIZE checks, a client that
//! lies about SIZE, strict line endings in DATA, bounded pipelined garbage.
//! Each test owns its 127.0.0.x address (188–195).

mod common;
#[path = "support/mod.rs"]
mod support;

use base64::Engine;
use common::{Relay, PASSWORD};
use support::{create_account, encrypted, Inbox, Smtp};

const SUB: &str = "submission_port = 587\nsubmissions_port = 465\nmax_message_size = 200000\n";

fn auth(c: &mut Smtp, from: &str) {
    let tok = base64::engine::general_purpose::STANDARD.encode(format!("\0{from}\0{PASSWORD}"));
    let r = c.cmd(&format!("AUTH PLAIN {tok}"));
    assert_eq!(r.code, 235, "{r:?}");
}

#[test]
fn ehlo_extensions_and_auth_only_after_tls() {
    let r = Relay::start_with(188, SUB);
    let mut c = Smtp::connect(r.sock(587));
    let e = c.cmd("EHLO client.test");
    assert!(
        e.text.contains("STARTTLS") && !e.text.contains("AUTH"),
        "{e:?}"
    );
    let a = c.cmd("AUTH PLAIN AGEAYg==");
    assert_eq!(a.code, 530, "{a:?}");
    c.starttls();
    let e = c.cmd("EHLO client.test");
    for ext in [
        "PIPELINING",
        "SIZE 200000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(e.text.contains(ext), "missing {ext}: {e:?}");
    }
    let from = r.addr("sender001");
    auth(&mut c, &from);
    let to = r.addr("rcpt00001");
    create_account(&r, "rcpt00001");
    let d = c.transaction(&from, &[&to], &encrypted(&from, &to, "starttls-1"));
    assert_eq!(d.code, 250, "{d:?}");
    assert!(Inbox::open(&r, "rcpt00001")
        .wait_for("starttls-1", std::time::Duration::from_secs(5))
        .is_some());
}

#[test]
fn smtp_over_443_by_alpn() {
    let r = Relay::start_with(189, SUB);
    let mut tls = common::tls_connect(r.sock(443), &[b"smtp"]);
    let mut buf = [0u8; 512];
    let n = std::io::Read::read(&mut tls, &mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"220 "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    std::io::Write::write_all(&mut tls, b"EHLO client.test\r\n").unwrap();
    let n = std::io::Read::read(&mut tls, &mut buf).unwrap();
    let t = String::from_utf8_lossy(&buf[..n]);
    assert!(t.contains("AUTH PLAIN LOGIN"), "{t}");
}

#[test]
fn size_declared_and_lied_about() {
    let r = Relay::start_with(190, SUB);
    let from = r.addr("sender002");
    let to = r.addr("rcpt00002");
    create_account(&r, "rcpt00002");
    let mut c = Smtp::connect_tls(r.sock(465));
    c.cmd("EHLO client.test");
    auth(&mut c, &from);
    let m = c.cmd(&format!("MAIL FROM:<{from}> SIZE=300000"));
    assert_eq!(m.code, 552, "{m:?}");
    // Declares 100 bytes, sends 250 kB: refused at the end of DATA.
    assert_eq!(c.cmd(&format!("MAIL FROM:<{from}> SIZE=100")).code, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{to}>")).code, 250);
    let mut big = encrypted(&from, &to, "liar-1");
    big.extend(std::iter::repeat_n(b'A', 250_000));
    big.extend_from_slice(b"\r\n");
    let d = c.data(&big);
    assert_eq!(d.code, 552, "{d:?}");
    // Still usable, and nothing was stored.
    let ok = c.transaction(&from, &[&to], &encrypted(&from, &to, "after-liar"));
    assert_eq!(ok.code, 250, "{ok:?}");
    let mut inbox = Inbox::open(&r, "rcpt00002");
    assert!(inbox
        .wait_for("after-liar", std::time::Duration::from_secs(5))
        .is_some());
    assert_eq!(inbox.count("liar-1"), 0);
}

#[test]
fn bare_lf_and_long_lines_refused() {
    let r = Relay::start_with(191, SUB);
    let from = r.addr("sender003");
    let to = r.addr("rcpt00003");
    create_account(&r, "rcpt00003");
    let mut c = Smtp::connect_tls(r.sock(465));
    c.cmd("EHLO client.test");
    auth(&mut c, &from);
    for (id, mangle) in [("bare-lf", 0), ("long-line", 1)] {
        assert_eq!(c.cmd(&format!("MAIL FROM:<{from}>")).code, 250);
        assert_eq!(c.cmd(&format!("RCPT TO:<{to}>")).code, 250);
        let mut m = encrypted(&from, &to, id);
        if mangle == 0 {
            m.extend_from_slice(b"x\nsmuggled\n");
        } else {
            m.extend(std::iter::repeat_n(b'B', 1200));
        }
        m.extend_from_slice(b"\r\n");
        let d = c.data(&m);
        assert_eq!(d.code, 500, "{id}: {d:?}");
    }
    assert_eq!(Inbox::open(&r, "rcpt00003").count("bare-lf"), 0);
}

#[test]
fn pipelined_garbage_is_bounded() {
    let mut r = Relay::start_with(192, SUB);
    let mut c = Smtp::connect_tls(r.sock(465));
    let mut junk = Vec::new();
    for i in 0..200 {
        junk.extend_from_slice(format!("XYZZY{i} \u{1}\u{2}\r\n").as_bytes());
    }
    let _ = c.try_send(&junk);
    // The server answers 500 and closes after too many errors; no hang, no crash.
    let mut saw_421 = false;
    for _ in 0..300 {
        match c.try_read() {
            Ok(rep) if rep.code == 421 => {
                saw_421 = true;
                break;
            }
            Ok(rep) => assert!(rep.code == 500 || rep.code == 502, "{rep:?}"),
            Err(_) => break,
        }
    }
    assert!(saw_421, "expected 421 after too many errors");
    r.assert_serving();
}
