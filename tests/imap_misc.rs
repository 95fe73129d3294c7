//! Smaller protocol details: LITERAL+, literals in SEARCH, RENAME INBOX,
//! hierarchy, pipelining after IDLE, EXISTS for own APPEND.
mod common;
use common::*;

#[test]
fn literal_plus_append_and_search_literal() {
    let r = Relay::start(180);
    let mut c = r.login("literalpl");
    let m = msg("lp", "non-synchronising");
    let tag = c.next_tag();
    let mut req = format!("{tag} APPEND INBOX (\\Seen) {{{}+}}\r\n", m.len()).into_bytes();
    req.extend_from_slice(&m);
    req.extend_from_slice(b"\r\n");
    c.send_raw(&req);
    let t = c.read_until_tagged(&tag);
    assert!(t.ok() && t.tagged.contains("APPENDUID"), "{t:?}");
    assert!(t.untagged.is_empty(), "no continuation for LITERAL+: {t:?}");
    c.select("INBOX");
    let t = c.cmd_literal("SEARCH SUBJECT", b"lp");
    assert!(t.ok() && t.has("* SEARCH 1"), "{t:?}");
    let f = c.cmd("FETCH 1 (RFC822.HEADER BODY.PEEK[HEADER])");
    assert!(f.ok() && f.text().contains("Subject: lp"), "{f:?}");
}

#[test]
fn own_append_reports_exists() {
    let r = Relay::start(181);
    let mut c = r.login("ownappend");
    c.select("INBOX");
    let a = c.append("INBOX", "", &msg("own", "x"));
    assert!(a.ok() && a.has("* 1 EXISTS"), "{a:?}");
    let st = c.cmd("STATUS INBOX (MESSAGES)");
    assert!(st.ok() && st.text().contains("MESSAGES 1"), "{st:?}");
}

#[test]
fn hierarchy_and_rename_inbox() {
    let r = Relay::start(182);
    let mut c = r.login("hierarch1");
    assert!(c.cmd("CREATE Work.Projects").ok());
    let l = c.cmd("LIST \"\" \"Work.%\"");
    assert!(l.ok() && l.has("Work.Projects"), "{l:?}");
    let l = c.cmd("LIST \"\" \"%\"");
    assert!(l.ok() && !l.has("Work.Projects"), "{l:?}");
    c.append_uid("INBOX", "", &msg("ri", "x"));
    // RFC 3501 §6.3.5: RENAME INBOX moves the messages, INBOX stays (empty).
    let rn = c.cmd("RENAME INBOX OldInbox");
    assert!(rn.ok() || rn.no(), "{rn:?}");
    let st = c.cmd("STATUS INBOX (MESSAGES)");
    assert!(st.ok(), "INBOX must still exist: {st:?}");
    if rn.ok() {
        assert!(st.text().contains("MESSAGES 0"), "{st:?}");
        let st = c.cmd("STATUS OldInbox (MESSAGES)");
        assert!(st.text().contains("MESSAGES 1"), "{st:?}");
    }
    let l = c.cmd("LIST (SPECIAL-USE) \"\" \"*\"");
    assert!(l.ok(), "{l:?}");
}

#[test]
fn pipelined_command_after_done() {
    let r = Relay::start(183);
    let mut c = r.login("pipeline1");
    c.select("INBOX");
    let tag = c.next_tag();
    c.send_raw(format!("{tag} IDLE\r\n").as_bytes());
    assert!(c.read_response_line().starts_with(b"+"));
    c.send_raw(b"DONE\r\nb1 NOOP\r\nb2 CAPABILITY\r\n");
    assert!(c.read_until_tagged(&tag).ok());
    assert!(c.read_until_tagged("b1").ok());
    let r2 = c.read_until_tagged("b2");
    assert!(r2.ok() && r2.has("IMAP4rev1"), "{r2:?}");
}

#[test]
fn store_star_and_seq_ranges() {
    let r = Relay::start(184);
    let mut c = r.login("starrange");
    for i in 0..4 {
        c.append_uid("INBOX", "", &msg(&format!("s{i}"), "x"));
    }
    c.select("INBOX");
    let s = c.cmd("STORE 3:* +FLAGS (\\Seen)");
    assert!(s.ok(), "{s:?}");
    assert_eq!(s.untagged.len(), 2, "{s:?}");
    let s = c.cmd("SEARCH SEEN");
    assert!(s.has("* SEARCH 3 4"), "{s:?}");
    let s = c.cmd("UID SEARCH UID *");
    assert!(s.has("* SEARCH 4"), "{s:?}");
    let f = c.cmd("FETCH * UID");
    assert!(f.has("* 4 FETCH (UID 4)"), "{f:?}");
}

#[test]
fn other_session_expunges_or_deletes_selected_mailbox() {
    let mut r = Relay::start(185);
    let mut a = r.login("concurrnt");
    let mut b = r.login("concurrnt");
    assert!(b.cmd("CREATE Box").ok());
    b.append_uid("Box", "", &msg("c1", "one"));
    b.append_uid("Box", "", &msg("c2", "two"));
    a.select("Box");
    b.select("Box");
    assert!(b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").ok());
    assert!(b.cmd("EXPUNGE").ok());
    // A still sees two messages until it syncs; fetching the expunged one
    // must not crash the server (NO, empty, or the cached data are all fine).
    let f = a.cmd("FETCH 1:2 (FLAGS BODY.PEEK[])");
    assert!(!f.bad(), "{f:?}");
    assert!(!a.cmd("STORE 1:2 +FLAGS (\\Seen)").tagged.is_empty());
    let n = a.cmd("NOOP");
    assert!(n.ok() && n.has("EXPUNGE"), "{n:?}");
    // B deletes the mailbox A has selected.
    assert!(b.cmd("UNSELECT").ok());
    assert!(b.cmd("DELETE Box").ok());
    let f = a.cmd("FETCH 1:* (FLAGS BODY.PEEK[])");
    assert!(!f.bad() || f.untagged.is_empty(), "{f:?}");
    let s = a.cmd("STORE 1 +FLAGS (\\Flagged)");
    assert!(!s.tagged.is_empty());
    let cp = a.cmd("COPY 1 INBOX");
    assert!(!cp.tagged.is_empty());
    let _ = a.cmd("NOOP");
    assert!(a.cmd("SELECT INBOX").ok());
    r.assert_serving();
}
