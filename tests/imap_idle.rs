//! IDLE wake-up across two sessions (RFC 2177): EXISTS, FETCH FLAGS, EXPUNGE.
mod common;
use common::*;
use std::time::Duration;

/// Deadline for a change to reach an IDLEing session (spec: "within 1 s").
const WAKE: Duration = Duration::from_secs(1);

fn start_idle(c: &mut Imap) -> String {
    let tag = c.next_tag();
    c.send_raw(format!("{tag} IDLE\r\n").as_bytes());
    let l = c.read_response_line();
    assert!(l.starts_with(b"+"), "{:?}", String::from_utf8_lossy(&l));
    tag
}

fn stop_idle(c: &mut Imap, tag: &str) -> Resp {
    c.send_raw(b"DONE\r\n");
    let r = c.read_until_tagged(tag);
    assert!(r.ok(), "{r:?}");
    r
}

#[test]
fn idle_wakes_on_append_flags_expunge() {
    let r = Relay::start(70);
    let mut a = r.login("idleuser1");
    let mut b = r.login("idleuser1");
    b.append_uid("INBOX", "", &msg("first", "x"));
    let s = a.select("INBOX");
    assert!(s.has("* 1 EXISTS"), "{s:?}");
    b.select("INBOX");

    let tag = start_idle(&mut a);
    b.append_uid("INBOX", "", &msg("second", "y"));
    let got = a.wait_for("EXISTS", WAKE);
    assert_eq!(got.as_deref(), Some("* 2 EXISTS"));

    // Flag change from the other session.
    assert!(b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)").ok());
    let got = a.wait_for("FETCH", WAKE).expect("FETCH FLAGS while idling");
    assert!(
        got.starts_with("* 1 FETCH") && got.contains("\\Flagged"),
        "{got}"
    );

    // Expunge from the other session.
    assert!(b.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)").ok());
    assert!(b.cmd("EXPUNGE").ok());
    let got = a.wait_for("EXPUNGE", WAKE);
    assert_eq!(got.as_deref(), Some("* 2 EXPUNGE"));

    stop_idle(&mut a, &tag);
    let s = a.cmd("SEARCH ALL");
    assert!(s.has("* SEARCH 1") && !s.has(" 2"), "{s:?}");
}

#[test]
fn idle_wakes_on_move_into_mailbox() {
    let r = Relay::start(71);
    let mut a = r.login("idleuser2");
    let mut b = r.login("idleuser2");
    assert!(b.cmd("CREATE DeltaChat").ok());
    a.select("DeltaChat");
    let tag = start_idle(&mut a);
    b.append_uid("INBOX", "", &msg("moved", "z"));
    b.select("INBOX");
    assert!(b.cmd("MOVE 1 DeltaChat").ok());
    let got = a.wait_for("EXISTS", WAKE);
    assert_eq!(got.as_deref(), Some("* 1 EXISTS"));
    stop_idle(&mut a, &tag);
}

#[test]
fn idle_without_selected_mailbox_and_bad_continuation() {
    let r = Relay::start(72);
    let mut a = r.login("idleuser3");
    // IDLE in authenticated state is allowed and ends with DONE.
    let tag = start_idle(&mut a);
    stop_idle(&mut a, &tag);
    // Anything but DONE ends IDLE with BAD.
    a.select("INBOX");
    let tag = start_idle(&mut a);
    a.send_raw(b"NOTDONE\r\n");
    let r2 = a.read_until_tagged(&tag);
    assert!(r2.bad(), "{r2:?}");
    assert!(a.cmd("NOOP").ok());
}

#[test]
fn noop_reports_changes_without_idle() {
    let r = Relay::start(73);
    let mut a = r.login("idleuser4");
    let mut b = r.login("idleuser4");
    a.select("INBOX");
    b.append_uid("INBOX", "", &msg("n", "x"));
    let n = a.cmd("NOOP");
    assert!(n.has("* 1 EXISTS"), "{n:?}");
}
