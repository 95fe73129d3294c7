//! Bad input on IMAP: each case gets a clear error and the server keeps
//! serving fresh connections afterwards (issue 2, "Bad input").
mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn oversized_command_line() {
    let mut r = Relay::start(90);
    let mut c = r.imaps();
    let mut line = b"a1 NOOP ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 70 * 1024));
    line.extend_from_slice(b"\r\n");
    c.send_raw(&line);
    let l = String::from_utf8_lossy(&c.read_response_line()).into_owned();
    assert!(l.contains("BAD"), "{l}");
    assert!(l.to_lowercase().contains("too long"), "{l}");
    // The same connection resynchronises on the next line.
    assert!(c.cmd("NOOP").ok());
    r.assert_serving();
}

#[test]
fn literal_over_limit() {
    let mut r = Relay::start(91);
    // Non-APPEND literal above 64 KiB → NO [TOOBIG], connection continues.
    let mut c = r.imaps();
    let tag = c.next_tag();
    c.send_raw(format!("{tag} LOGIN {{100000}}\r\n").as_bytes());
    let t = c.read_until_tagged(&tag);
    assert!(t.no() && t.tagged.contains("[TOOBIG]"), "{t:?}");
    assert!(c.cmd("NOOP").ok());
    // APPEND above max_message_size (default 30 MiB) → NO [TOOBIG] before any data.
    assert!(c.login(&r.addr("toobiguse"), PASSWORD).ok());
    let tag = c.next_tag();
    c.send_raw(format!("{tag} APPEND INBOX {{40000000}}\r\n").as_bytes());
    let t = c.read_until_tagged(&tag);
    assert!(t.no() && t.tagged.contains("[TOOBIG]"), "{t:?}");
    assert!(c.cmd("NOOP").ok());
    // LITERAL+ over the limit: NO [TOOBIG] then the server closes.
    let tag = c.next_tag();
    c.send_raw(format!("{tag} APPEND INBOX {{40000000+}}\r\nxxxx").as_bytes());
    let t = c.read_until_tagged(&tag);
    assert!(t.no() && t.tagged.contains("[TOOBIG]"), "{t:?}");
    assert!(c.closed_within(Duration::from_secs(5)));
    r.assert_serving();
}

#[test]
fn unterminated_literal_then_disconnect() {
    let mut r = Relay::start(92);
    let mut c = r.login("literal01");
    let tag = c.next_tag();
    c.send_raw(format!("{tag} APPEND INBOX {{1000}}\r\n").as_bytes());
    let l = c.read_response_line();
    assert!(l.starts_with(b"+"));
    c.send_raw(b"From: a@example.org\r\nSubject: cut\r\n\r\nonly part of it");
    drop(c);
    // Mid-literal disconnect in LOGIN as well.
    let mut c = r.imaps();
    c.send_raw(b"a1 LOGIN {20}\r\n");
    let l = c.read_response_line();
    assert!(l.starts_with(b"+"));
    c.send_raw(b"abc");
    drop(c);
    r.assert_serving();
    // Nothing half-written was stored.
    let mut c = r.login("literal01");
    let s = c.cmd("STATUS INBOX (MESSAGES)");
    assert!(s.text().contains("MESSAGES 0"), "{s:?}");
}

#[test]
fn unknown_command_and_garbage() {
    let mut r = Relay::start(93);
    let mut c = r.imaps();
    let u = c.cmd("FROBNICATE now");
    assert!(u.bad(), "{u:?}");
    let u = c.cmd("SELECT");
    assert!(u.bad(), "missing argument: {u:?}");
    c.send_raw(b"\r\n");
    let l = String::from_utf8_lossy(&c.read_response_line()).into_owned();
    assert!(l.starts_with("* BAD"), "{l}");
    c.send_raw(b"\x00\x01\x02\xff\xfe garbage\r\n");
    let l = String::from_utf8_lossy(&c.read_response_line()).into_owned();
    assert!(l.contains("BAD"), "{l}");
    assert!(c.cmd("NOOP").ok());
    r.assert_serving();
}

#[test]
fn too_many_bad_commands_disconnects() {
    let mut r = Relay::start(94);
    let mut c = r.imaps();
    let mut saw_bye = false;
    for i in 0..40 {
        if c.try_send_raw(format!("t{i} BOGUS\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        match c.try_read_response_line() {
            Ok(l) if l.starts_with(b"* BYE") => {
                saw_bye = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(saw_bye, "expected BYE after repeated bad commands");
    assert!(c.closed_within(Duration::from_secs(5)));
    r.assert_serving();
}

#[test]
fn commands_in_wrong_state() {
    let mut r = Relay::start(95);
    let mut c = r.imaps();
    for cmd in [
        "SELECT INBOX",
        "LIST \"\" *",
        "FETCH 1 FLAGS",
        "IDLE",
        "APPEND INBOX {3+}\r\nabc",
    ] {
        let t = c.cmd(cmd);
        assert!(t.bad(), "{cmd} before login: {t:?}");
    }
    assert!(c.login(&r.addr("stateuser"), PASSWORD).ok());
    for cmd in [
        "FETCH 1 FLAGS",
        "UID FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "EXPUNGE",
        "CLOSE",
        "COPY 1 INBOX",
        "MOVE 1 INBOX",
    ] {
        let t = c.cmd(cmd);
        assert!(t.bad(), "{cmd} without SELECT: {t:?}");
    }
    c.select("INBOX");
    let t = c.cmd("FETCH 5 FLAGS");
    assert!(t.bad() || (t.ok() && t.untagged.is_empty()), "{t:?}");
    let t = c.cmd("FETCH 0 FLAGS");
    assert!(t.bad(), "{t:?}");
    r.assert_serving();
}

#[test]
fn login_bad_charset() {
    let mut r = Relay::start(96);
    let mut c = r.imaps();
    // A non-UTF-8 user name in a literal.
    let tag = c.next_tag();
    c.send_raw(format!("{tag} LOGIN {{9}}\r\n").as_bytes());
    assert!(c.read_response_line().starts_with(b"+"));
    c.send_raw(b"\xff\xfe\xfdabcdef password123\r\n");
    let t = c.read_until_tagged(&tag);
    assert!(t.no(), "{t:?}");
    // UTF-8 but outside [a-z0-9._-].
    let t = c.login(&r.addr("üsername"), PASSWORD);
    assert!(t.no(), "{t:?}");
    assert!(c.login(&r.addr("charset01"), PASSWORD).ok());
    r.assert_serving();
}

#[test]
fn garbage_before_tls_on_993() {
    let mut r = Relay::start(97);
    for junk in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"a1 LOGIN user pass\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0][..],
        &[0u8; 4096][..],
    ] {
        let mut t = tcp(r.sock(993));
        let _ = t.write_all(junk);
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1024];
        // The server answers with a TLS alert or closes; either way it must not hang us.
        let _ = t.read(&mut buf);
        drop(t);
    }
    // A connection that sends nothing and goes away.
    drop(tcp(r.sock(993)));
    r.assert_serving();
    // Garbage on 443 (the ALPN multiplexer) too.
    let mut t = tcp(r.sock(443));
    let _ = t.write_all(b"\x16\x03\x01\x00\x05hello");
    drop(t);
    r.assert_serving();
}

#[test]
fn disconnect_mid_idle() {
    let mut r = Relay::start(98);
    let mut a = r.login("idledrop1");
    a.select("INBOX");
    let tag = a.next_tag();
    a.send_raw(format!("{tag} IDLE\r\n").as_bytes());
    assert!(a.read_response_line().starts_with(b"+"));
    drop(a);
    // A change after the idler vanished must not trouble the server.
    let mut b = r.login("idledrop1");
    b.select("INBOX");
    b.append_uid("INBOX", "", &msg("after", "idle"));
    assert!(b.cmd("STORE 1 +FLAGS (\\Seen)").ok());
    r.assert_serving();
}

#[test]
fn starttls_with_pipelined_data_refused() {
    let mut r = Relay::start(99);
    let mut c = r.imap_plain();
    c.send_raw(b"a1 STARTTLS\r\na2 NOOP\r\n");
    let t = c.read_until_tagged("a1");
    assert!(
        t.bad(),
        "pipelined data after STARTTLS must be refused: {t:?}"
    );
    r.assert_serving();
}
