//! Mailbox management and message round trips: LIST/CREATE/DELETE/RENAME,
//! SUBSCRIBE/LSUB, STATUS, APPEND/STORE/EXPUNGE/COPY/MOVE, QUOTA.
mod common;
use common::*;

#[test]
fn list_create_rename_delete_subscribe_status() {
    let r = Relay::start(30);
    let mut c = r.login("mailbox01");
    let l = c.cmd("LIST \"\" \"*\"");
    assert!(l.ok(), "{l:?}");
    assert!(l.has("INBOX"), "{l:?}");
    let l = c.cmd("LIST \"\" \"\"");
    assert!(l.ok() && l.has("\\Noselect"), "{l:?}");

    assert!(c.cmd("CREATE Archive").ok());
    let dup = c.cmd("CREATE Archive");
    assert!(dup.no() && dup.tagged.contains("ALREADYEXISTS"), "{dup:?}");
    let l = c.cmd("LIST \"\" \"*\"");
    assert!(l.has("Archive"), "{l:?}");

    assert!(c.cmd("SUBSCRIBE Archive").ok());
    let ls = c.cmd("LSUB \"\" \"*\"");
    assert!(ls.ok() && ls.has("Archive"), "{ls:?}");
    assert!(c.cmd("UNSUBSCRIBE Archive").ok());
    let ls = c.cmd("LSUB \"\" \"*\"");
    assert!(ls.ok() && !ls.has("Archive"), "{ls:?}");

    c.append_uid("Archive", "\\Seen", &msg("s1", "one"));
    c.append_uid("Archive", "", &msg("s2", "two"));
    let st = c.cmd("STATUS Archive (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)");
    assert!(st.ok(), "{st:?}");
    let t = st.text();
    assert!(t.contains("MESSAGES 2"), "{t}");
    assert!(t.contains("UNSEEN 1"), "{t}");
    assert!(t.contains("UIDNEXT 3"), "{t}");

    assert!(c.cmd("RENAME Archive Old").ok());
    let l = c.cmd("LIST \"\" \"*\"");
    assert!(l.has("Old") && !l.has("Archive"), "{l:?}");
    let st = c.cmd("STATUS Old (MESSAGES)");
    assert!(st.ok() && st.text().contains("MESSAGES 2"), "{st:?}");

    assert!(c.cmd("DELETE Old").ok());
    let st = c.cmd("STATUS Old (MESSAGES)");
    assert!(st.no(), "{st:?}");
    let d = c.cmd("DELETE INBOX");
    assert!(d.no(), "{d:?}");
    let d = c.cmd("DELETE Nonexistent");
    assert!(d.no(), "{d:?}");
    let s = c.cmd("SELECT Nonexistent");
    assert!(s.no(), "{s:?}");
    // APPEND to a missing mailbox → TRYCREATE.
    let a = c.append("Nope", "", &msg("x", "y"));
    assert!(a.no() && a.tagged.contains("TRYCREATE"), "{a:?}");
}

#[test]
fn append_store_expunge_copy_move() {
    let r = Relay::start(31);
    let mut c = r.login("roundtrp1");
    let u1 = c.append_uid("INBOX", "", &msg("m1", "first"));
    let u2 = c.append_uid("INBOX", "\\Flagged", &msg("m2", "second"));
    let u3 = c.append_uid("INBOX", "", &msg("m3", "third"));
    assert!(u1 < u2 && u2 < u3);
    let s = c.select("INBOX");
    assert!(s.has("* 3 EXISTS"), "{s:?}");
    assert!(s.tagged.contains("READ-WRITE"), "{s:?}");

    let f = c.cmd(&format!("UID STORE {u1} +FLAGS (\\Seen)"));
    assert!(f.ok(), "{f:?}");
    assert!(f.has("\\Seen"), "{f:?}");
    let f = c.cmd(&format!("UID STORE {u2} -FLAGS.SILENT (\\Flagged)"));
    assert!(f.ok() && f.untagged.is_empty(), "{f:?}");
    let f = c.cmd(&format!("UID FETCH {u1}:{u2} (FLAGS)"));
    let t = f.text();
    assert!(
        t.contains(&format!("UID {u1}")) && t.contains("\\Seen"),
        "{t}"
    );
    assert!(!t.contains("\\Flagged"), "{t}");
    // Keywords are kept.
    let f = c.cmd(&format!("UID STORE {u3} +FLAGS ($MyKeyword)"));
    assert!(f.ok() && f.has("$MyKeyword"), "{f:?}");

    assert!(c.cmd("CREATE DeltaChat").ok());
    let cp = c.cmd(&format!("UID COPY {u1} DeltaChat"));
    assert!(cp.ok(), "{cp:?}");
    assert!(cp.tagged.contains("[COPYUID "), "{cp:?}");
    let mv = c.cmd(&format!("UID MOVE {u2} DeltaChat"));
    assert!(mv.ok(), "{mv:?}");
    assert!(mv.has("[COPYUID "), "{mv:?}");
    assert!(mv.has("* 2 EXPUNGE"), "{mv:?}");
    let mv = c.cmd("UID MOVE 99999 DeltaChat");
    assert!(mv.ok(), "{mv:?}");
    let mv = c.cmd("MOVE 1 NoSuchBox");
    assert!(mv.no() && mv.tagged.contains("TRYCREATE"), "{mv:?}");

    // INBOX now: u1 (\Seen), u3. Expunge u1.
    assert!(c
        .cmd(&format!("UID STORE {u1} +FLAGS.SILENT (\\Deleted)"))
        .ok());
    let e = c.cmd("EXPUNGE");
    assert!(e.ok() && e.has("* 1 EXPUNGE"), "{e:?}");
    let s = c.cmd("SEARCH ALL");
    assert!(s.has("* SEARCH 1"), "{s:?}");
    // UID EXPUNGE only removes the given UIDs.
    assert!(c
        .cmd(&format!("UID STORE {u3} +FLAGS.SILENT (\\Deleted)"))
        .ok());
    let e = c.cmd(&format!("UID EXPUNGE {u1}"));
    assert!(e.ok() && !e.has("EXPUNGE"), "{e:?}");

    let st = c.cmd("STATUS DeltaChat (MESSAGES)");
    assert!(st.text().contains("MESSAGES 2"), "{st:?}");
    let s = c.select("DeltaChat");
    assert!(s.has("* 2 EXISTS"), "{s:?}");
    let f = c.cmd("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let t = f.text();
    assert!(
        t.contains("Subject: m1") && t.contains("Subject: m2"),
        "{t}"
    );
    // CLOSE expunges deleted messages silently.
    assert!(c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").ok());
    let cl = c.cmd("CLOSE");
    assert!(cl.ok() && !cl.has("EXPUNGE"), "{cl:?}");
    let st = c.cmd("STATUS DeltaChat (MESSAGES)");
    assert!(st.text().contains("MESSAGES 1"), "{st:?}");
}

#[test]
fn examine_is_read_only() {
    let r = Relay::start(32);
    let mut c = r.login("readonly1");
    c.append_uid("INBOX", "", &msg("ro", "x"));
    let e = c.cmd("EXAMINE INBOX");
    assert!(e.ok() && e.tagged.contains("READ-ONLY"), "{e:?}");
    let s = c.cmd("STORE 1 +FLAGS (\\Seen)");
    assert!(s.no(), "{s:?}");
    let e = c.cmd("EXPUNGE");
    assert!(e.no(), "{e:?}");
    // FETCH BODY[] in EXAMINE does not set \Seen.
    assert!(c.cmd("FETCH 1 BODY[]").ok());
    let f = c.cmd("FETCH 1 FLAGS");
    assert!(!f.text().contains("\\Seen"), "{f:?}");
}

#[test]
fn quota_reports_usage() {
    let r = Relay::start(33);
    let mut c = r.login("quotauser");
    let q = c.cmd("GETQUOTAROOT INBOX");
    assert!(q.ok(), "{q:?}");
    assert!(q.has("* QUOTAROOT INBOX"), "{q:?}");
    let usage = |q: &Resp| -> (u64, u64) {
        let l = q
            .lines()
            .into_iter()
            .find(|l| l.starts_with("* QUOTA "))
            .expect("QUOTA line");
        let i = l.find("STORAGE ").unwrap();
        let mut it = l[i + 8..].trim_end_matches(')').split(' ');
        (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        )
    };
    let (u0, limit) = usage(&q);
    assert_eq!(u0, 0);
    assert_eq!(limit, 500 * 1024, "default max_mailbox_size 500M in KiB");
    let big = vec![b'x'; 100 * 1024];
    let mut m = msg("q", "");
    m.extend_from_slice(&big);
    c.append_uid("INBOX", "", &m);
    let q = c.cmd("GETQUOTAROOT INBOX");
    let (u1, _) = usage(&q);
    assert!(
        (100..=110).contains(&u1),
        "usage after 100 KiB append: {u1}"
    );
    let q = c.cmd("GETQUOTA \"User quota\"");
    assert!(q.ok() && q.has("STORAGE"), "{q:?}");
}

#[test]
fn over_quota_append_refused() {
    let r = Relay::start_with(34, "max_mailbox_size = 1M");
    let mut c = r.login("quotafull");
    let mut m = msg("q", "");
    m.extend_from_slice(&vec![b'y'; 600 * 1024]);
    c.append_uid("INBOX", "", &m);
    let a = c.append("INBOX", "", &m);
    assert!(a.no() && a.tagged.contains("OVERQUOTA"), "{a:?}");
    r.assert_no_panic();
}

#[test]
fn namespace_id_enable_unselect() {
    let r = Relay::start(35);
    let mut c = r.login("misccmds1");
    let n = c.cmd("NAMESPACE");
    assert!(n.ok() && n.has("* NAMESPACE"), "{n:?}");
    let i = c.cmd("ID (\"name\" \"test\")");
    assert!(i.ok() && i.has("* ID"), "{i:?}");
    c.select("INBOX");
    assert!(c.cmd("UNSELECT").ok());
    let f = c.cmd("FETCH 1 FLAGS");
    assert!(f.bad(), "FETCH after UNSELECT: {f:?}");
}
