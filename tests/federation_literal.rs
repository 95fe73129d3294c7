//! Federation between IP-literal relays on loopback (spec §5.4, §5.5, §6):
//! `/mxdeliv` and SMTP fallback, bounces for unknown users and unreachable
//! relays, durability of the queue over `kill -9`, and the inbound MX and
//! `/mxdeliv` refusals. Each test owns its 127.0.0.x addresses (211–221).

mod common;
#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{https_raw, wait_until, Relay};
use support::{create_account, encrypted, plaintext, submit, Inbox, Smtp};

/// MX on 25, submission on 465, fast retries.
const FED: &str = "smtp_port = 25\nsubmissions_port = 465\nqueue_retry_min = 1\n\
                   username_min_length = 3\nusername_max_length = 20\nmax_load_1m = 1000\n\
                   min_available_memory = 0\nmin_free_disk_space = 0\n";
const DELIVERY: Duration = Duration::from_secs(20);

fn relay(n: u8, extra: &str) -> Relay {
    Relay::start_with(n, &format!("{FED}{extra}"))
}

#[test]
fn mxdeliv_smtp_fallback_and_unknown_user_bounces() {
    let a = relay(211, "");
    let b = relay(212, "");
    // No HTTPS on C: the sender must fall back to SMTP with STARTTLS.
    let c = relay(213, "https_port = 0\n");
    create_account(&a, "alice");
    create_account(&b, "bob");
    create_account(&c, "carol");
    let mut alice = Inbox::open(&a, "alice");
    let mut bob = Inbox::open(&b, "bob");
    let mut carol = Inbox::open(&c, "carol");

    // A → B over /mxdeliv, A → C over SMTP.
    let (from, to_b, to_c) = (a.addr("alice"), b.addr("bob"), c.addr("carol"));
    let r = submit(&a, "alice", &[&to_b], &encrypted(&from, &to_b, "lit-ab"));
    assert_eq!(r.code, 250, "{r:?}");
    let r = submit(&a, "alice", &[&to_c], &encrypted(&from, &to_c, "lit-ac"));
    assert_eq!(r.code, 250, "{r:?}");
    let m = bob
        .wait_for("<lit-ab@chatrelay.test>", DELIVERY)
        .unwrap_or_else(|| panic!("not delivered to B; A stderr:\n{}", a.stderr()));
    assert!(m.contains("-----BEGIN PGP MESSAGE-----"));
    assert!(m.contains(&format!("From: {from}")));
    let m = carol
        .wait_for("<lit-ac@chatrelay.test>", DELIVERY)
        .unwrap_or_else(|| panic!("not delivered to C; A stderr:\n{}", a.stderr()));
    assert!(m.contains("-----BEGIN PGP MESSAGE-----"));

    // Unknown users on both transports → a DSN in alice's INBOX.
    let ghost_b = b.addr("ghost");
    let ghost_c = c.addr("phantom");
    let r = submit(
        &a,
        "alice",
        &[&ghost_b],
        &encrypted(&from, &ghost_b, "lit-ghost-b"),
    );
    assert_eq!(r.code, 250, "{r:?}");
    let r = submit(
        &a,
        "alice",
        &[&ghost_c],
        &encrypted(&from, &ghost_c, "lit-ghost-c"),
    );
    assert_eq!(r.code, 250, "{r:?}");
    for ghost in [&ghost_b, &ghost_c] {
        let dsn = alice
            .wait_for(&format!("<{ghost}>"), DELIVERY)
            .unwrap_or_else(|| panic!("no bounce for {ghost}; A stderr:\n{}", a.stderr()));
        assert!(
            dsn.contains(&format!(
                "From: Mail Delivery System <MAILER-DAEMON@{}>",
                a.domain()
            )),
            "{dsn}"
        );
        assert!(dsn.contains("Auto-Submitted: auto-replied"), "{dsn}");
        assert!(dsn.contains("multipart/report"), "{dsn}");
        assert!(dsn.contains("550 5.1.1"), "{dsn}");
    }
    // Each delivered exactly once.
    assert_eq!(bob.count("<lit-ab@chatrelay.test>"), 1);
    assert_eq!(carol.count("<lit-ac@chatrelay.test>"), 1);
    for mut r in [a, b, c] {
        r.assert_serving();
    }
}

#[test]
fn unreachable_relay_is_retried_then_bounced() {
    // Nothing listens on 127.0.0.219.
    let a = relay(214, "max_queue_lifetime = 5\n");
    create_account(&a, "alice");
    let mut alice = Inbox::open(&a, "alice");
    let from = a.addr("alice");
    let to = "bob@[127.0.0.219]";
    let t0 = Instant::now();
    let r = submit(&a, "alice", &[to], &encrypted(&from, to, "lit-unreach"));
    assert_eq!(r.code, 250, "{r:?}");
    let dsn = alice
        .wait_for(&format!("<{to}>"), Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no bounce; stderr:\n{}", a.stderr()));
    assert!(t0.elapsed() >= Duration::from_secs(4), "bounced too early");
    assert!(dsn.contains("Auto-Submitted: auto-replied"), "{dsn}");
    assert!(
        dsn.contains(&format!("MAILER-DAEMON@{}", a.domain())),
        "{dsn}"
    );
    // "message expired after N attempts": more than one attempt was made.
    let n: u32 = dsn
        .split("expired after ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in the DSN: {dsn}"));
    assert!(n >= 2, "only {n} attempt(s): {dsn}");
    // Exactly one bounce.
    assert_eq!(alice.count(&format!("<{to}>")), 1);
}

#[test]
fn kill9_after_250_then_restart_loses_nothing() {
    let mut a = relay(215, "");
    let mut b = relay(216, "");
    create_account(&a, "alice");
    create_account(&b, "bob");
    // B down: the message can only wait in A's queue.
    b.kill9();
    let (from, to) = (a.addr("alice"), b.addr("bob"));
    let r = submit(&a, "alice", &[&to], &encrypted(&from, &to, "lit-kill9"));
    assert_eq!(r.code, 250, "{r:?}");
    a.kill9();
    b.restart();
    a.restart();
    let mut bob = Inbox::open(&b, "bob");
    bob.wait_for("<lit-kill9@chatrelay.test>", DELIVERY)
        .unwrap_or_else(|| panic!("lost over kill -9; A stderr:\n{}", a.stderr()));
    // A second message sent after the first arrives proves the queue moved
    // on; the first is still there once.
    let r = submit(&a, "alice", &[&to], &encrypted(&from, &to, "lit-after"));
    assert_eq!(r.code, 250, "{r:?}");
    bob.wait_for("<lit-after@chatrelay.test>", DELIVERY)
        .expect("second message");
    assert_eq!(bob.count("<lit-kill9@chatrelay.test>"), 1);

    // kill -9 immediately after the 250 with B up: at least once.
    let r = submit(&a, "alice", &[&to], &encrypted(&from, &to, "lit-kill9b"));
    assert_eq!(r.code, 250, "{r:?}");
    a.kill9();
    a.restart();
    bob.wait_for("<lit-kill9b@chatrelay.test>", DELIVERY)
        .expect("delivered after immediate kill -9");
    let r = submit(&a, "alice", &[&to], &encrypted(&from, &to, "lit-after2"));
    assert_eq!(r.code, 250, "{r:?}");
    bob.wait_for("<lit-after2@chatrelay.test>", DELIVERY)
        .expect("third message");
    // With B up, A may already have handed the message to B when the kill
    // lands, before it recorded that: then the restart sends it again.
    // SMTP relaying is at least once (RFC 5321 §6.1; README, Durability),
    // and Delta Chat drops the copy by its Message-ID. More than one
    // extra copy would mean the queue forgot what it did.
    let copies = bob.count("<lit-kill9b@chatrelay.test>");
    assert!((1..=2).contains(&copies), "{copies} copies");
    a.assert_serving();
    b.assert_serving();
}

#[test]
fn inbound_mx_refusals() {
    let mut b = relay(217, "");
    create_account(&b, "bob");
    let bob = b.addr("bob");
    let peer = "someone@[127.0.0.218]";

    // MAIL before STARTTLS → 530; STARTTLS is offered.
    let mut c = Smtp::connect(b.sock(25));
    let r = c.cmd("EHLO peer.test");
    assert!(r.text.contains("STARTTLS"), "{r:?}");
    assert!(!r.text.contains("AUTH"), "{r:?}");
    let r = c.cmd(&format!("MAIL FROM:<{peer}>"));
    assert_eq!(r.line(), "530 5.7.0 Must issue a STARTTLS command first");
    let r = c.cmd("VRFY bob");
    assert_eq!(
        r.line(),
        "252 2.0.0 Cannot VRFY user, but will accept message"
    );
    drop(c);

    let mut c = Smtp::mx_ready(b.sock(25));
    // VRFY: identical answer for existing and unknown users.
    let v1 = c.cmd(&format!("VRFY {bob}"));
    let v2 = c.cmd("VRFY nobody");
    assert_eq!(v1.line(), v2.line());
    assert_eq!(v1.code, 252);
    assert_eq!(c.cmd("AUTH PLAIN AGJvYgBw").code, 503);
    // Relay attempt and unknown user.
    assert_eq!(c.cmd(&format!("MAIL FROM:<{peer}>")).code, 250);
    let r = c.cmd("RCPT TO:<victim@elsewhere.example>");
    assert!(r.line().starts_with("554 5.7.1"), "{r:?}");
    assert!(r.line().contains("Relay access denied"), "{r:?}");
    let r = c.cmd(&format!("RCPT TO:<{}>", b.addr("ghost")));
    assert!(r.line().starts_with("550 5.1.1"), "{r:?}");
    assert_eq!(c.cmd("RSET").code, 250);
    // Plaintext → 523.
    let r = c.transaction(peer, &[&bob], &plaintext(peer, &bob, "lit-plain"));
    assert_eq!(
        r.line(),
        "523 Encryption Needed: Invalid Unencrypted Mail",
        "{r:?}"
    );
    // Encrypted from an IP-literal domain (no DKIM needed) → stored.
    let r = c.transaction(peer, &[&bob], &encrypted(peer, &bob, "lit-enc25"));
    assert_eq!(r.code, 250, "{r:?}");
    let _ = c.cmd("QUIT");
    let mut inbox = Inbox::open(&b, "bob");
    let m = inbox
        .wait_for("<lit-enc25@chatrelay.test>", Duration::from_secs(5))
        .expect("stored");
    assert!(!m.contains("lit-plain"));
    assert_eq!(inbox.count("lit-plain"), 0);
    b.assert_serving();
}

fn mxdeliv_req(b: &Relay, method: &str, headers: &str, body: &[u8]) -> common::HttpResp {
    let mut req = format!(
        "{method} /mxdeliv HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
        b.ip(),
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    https_raw(b.sock(443), &req)
}

#[test]
fn mxdeliv_refusals() {
    let mut b = relay(218, "max_message_size = 100000\n");
    create_account(&b, "bob");
    let bob = b.addr("bob");
    let peer = "someone@[127.0.0.219]";
    let msg = encrypted(peer, &bob, "lit-http");

    let r = mxdeliv_req(&b, "POST", &format!("X-Mail-From: {peer}\r\n"), &msg);
    assert_eq!(r.status, 400, "{r:?}");
    let r = mxdeliv_req(&b, "GET", "", b"");
    assert_eq!(r.status, 405, "{r:?}");
    // Oversized: answered from the Content-Length before the body is read
    // (the body is not sent: the server closes without draining it, and
    // unread data would turn the 413 into a TCP reset).
    let r = https_raw(
        b.sock(443),
        format!(
            "POST /mxdeliv HTTP/1.1\r\nHost: {}\r\nX-Mail-From: {peer}\r\nX-Mail-To: {bob}\r\n\
             Content-Length: 300000\r\n\r\n",
            b.ip()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.body_str().starts_with("552"), "{r:?}");
    // Relay and unknown user are 400 with the SMTP line in the body.
    let r = mxdeliv_req(
        &b,
        "POST",
        &format!("X-Mail-From: {peer}\r\nX-Mail-To: x@elsewhere.example\r\n"),
        &msg,
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body_str().starts_with("554 5.7.1"), "{r:?}");
    let r = mxdeliv_req(
        &b,
        "POST",
        &format!("X-Mail-From: {peer}\r\nX-Mail-To: {}\r\n", b.addr("ghost")),
        &msg,
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body_str().starts_with("550 5.1.1"), "{r:?}");
    // Plaintext → 400 with 523.
    let r = mxdeliv_req(
        &b,
        "POST",
        &format!("X-Mail-From: {peer}\r\nX-Mail-To: {bob}\r\n"),
        &plaintext(peer, &bob, "lit-http-plain"),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body_str().starts_with("523"), "{r:?}");
    // And a good one is stored.
    let r = mxdeliv_req(
        &b,
        "POST",
        &format!("X-Mail-From: {peer}\r\nX-Mail-To: {bob}\r\n"),
        &msg,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let mut inbox = Inbox::open(&b, "bob");
    inbox
        .wait_for("<lit-http@chatrelay.test>", Duration::from_secs(5))
        .expect("stored");
    assert_eq!(inbox.messages().len(), 1);
    b.assert_serving();
}

#[test]
fn stalled_and_disconnected_peers_store_nothing() {
    let mut b = relay(220, "");
    create_account(&b, "bob");
    let bob = b.addr("bob");
    let peer = "someone@[127.0.0.219]";
    let msg = encrypted(peer, &bob, "lit-partial");
    let half = &msg[..msg.len() / 2];

    // Disconnect mid-DATA.
    let mut c = Smtp::mx_ready(b.sock(25));
    assert_eq!(c.cmd(&format!("MAIL FROM:<{peer}>")).code, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{bob}>")).code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(half);
    drop(c);

    // Stall mid-DATA and keep the connection open …
    let mut stalled = Smtp::mx_ready(b.sock(25));
    assert_eq!(stalled.cmd(&format!("MAIL FROM:<{peer}>")).code, 250);
    assert_eq!(stalled.cmd(&format!("RCPT TO:<{bob}>")).code, 250);
    assert_eq!(stalled.cmd("DATA").code, 354);
    stalled.send(half);
    // … a raw TCP peer that stalls before even the greeting is read …
    let mut raw = common::tcp(b.sock(25));
    raw.write_all(b"EHLO x\r\nMAIL FROM:<a@b>\r\n").unwrap();
    // … while another peer delivers normally.
    let mut c = Smtp::mx_ready(b.sock(25));
    let ok = encrypted(peer, &bob, "lit-ok");
    let r = c.transaction(peer, &[&bob], &ok);
    assert_eq!(r.code, 250, "{r:?}");
    let _ = c.cmd("QUIT");
    let mut inbox = Inbox::open(&b, "bob");
    inbox
        .wait_for("<lit-ok@chatrelay.test>", Duration::from_secs(5))
        .expect("normal delivery while others stall");
    drop(stalled);
    drop(raw);
    // Garbage after STARTTLS: the session answers and survives.
    let mut g = Smtp::mx_ready(b.sock(25));
    let r = g.cmd("\u{1}\u{2}garbage");
    assert_eq!(r.code, 500, "{r:?}");
    drop(g);
    // Only the complete message was stored.
    assert!(wait_until(Duration::from_secs(2), || b.alive()));
    let all = inbox.messages();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(!all[0].contains("lit-partial"));
    b.assert_serving();
}

#[test]
fn ten_thousand_rcpts_are_bounded() {
    let mut b = relay(221, "");
    create_account(&b, "bob");
    // 1100 more accounts straight in the store (cheap fake hashes; nobody
    // logs in as them), so that the 1000-recipient limit is reachable.
    b.kill9();
    {
        let store = chatrelay::store::Store::open(&b.data_dir()).unwrap();
        let today = chatrelay::clock::today();
        for i in 0..1100 {
            store
                .create_account(&format!("u{i}@{}", b.domain()), "x", today)
                .unwrap();
        }
    }
    b.restart();
    let peer = "someone@[127.0.0.219]";
    let mut c = Smtp::mx_ready(b.sock(25));
    assert_eq!(c.cmd(&format!("MAIL FROM:<{peer}>")).code, 250);
    let t0 = Instant::now();
    let (mut ok, mut full, mut other) = (0, 0, 0);
    // 10,000 RCPTs, pipelined in chunks of 500 (existing users first, then
    // unknown ones).
    for chunk in 0..20 {
        let mut batch = String::new();
        for j in 0..500 {
            let i = chunk * 500 + j;
            let local = if i < 1100 {
                format!("u{i}")
            } else {
                format!("none{i}")
            };
            batch.push_str(&format!("RCPT TO:<{}>\r\n", b.addr(&local)));
        }
        c.send(batch.as_bytes());
        for _ in 0..500 {
            let r = c.read();
            match r.code {
                250 => ok += 1,
                452 => full += 1,
                _ => other += 1,
            }
        }
    }
    assert_eq!(ok, 1000);
    // After the limit every RCPT gets 452 (or, past the error cap, a close
    // would also be acceptable — but it must not be a 250).
    assert_eq!(full + other, 9000);
    assert!(full >= 100, "452 expected after 1000 recipients");
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(c.cmd("RSET").code, 250);
    let _ = c.cmd("QUIT");
    b.assert_serving();
}
