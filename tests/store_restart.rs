//! Durability: every acknowledged message and flag survives kill -9.
mod common;
use common::*;

#[test]
fn messages_and_flags_survive_kill9() {
    let mut r = Relay::start(160);
    let mut c = r.login("durable01");
    let m1 = msg("d1", "one");
    let m2 = msg("d2", "two");
    let m3 = msg("d3", "three");
    let u1 = c.append_uid("INBOX", "", &m1);
    let u2 = c.append_uid("INBOX", "\\Flagged", &m2);
    assert!(c.cmd("CREATE Archive").ok());
    let u3 = c.append_uid("Archive", "$Custom", &m3);
    c.select("INBOX");
    assert!(c
        .cmd(&format!("UID STORE {u1} +FLAGS (\\Seen \\Answered)"))
        .ok());
    assert!(c.cmd(&format!("UID STORE {u2} -FLAGS (\\Flagged)")).ok());
    assert!(c
        .cmd("SETMETADATA INBOX (/private/devicetoken \"tok1\")")
        .ok());
    let uidvalidity = c.cmd("STATUS INBOX (UIDVALIDITY)").text();
    drop(c);

    r.restart();

    let mut c = r.login("durable01");
    assert_eq!(c.cmd("STATUS INBOX (UIDVALIDITY)").text(), uidvalidity);
    c.select("INBOX");
    let f = c.cmd("UID FETCH 1:* (FLAGS BODY.PEEK[])");
    assert!(f.ok(), "{f:?}");
    assert_eq!(f.untagged.len(), 2, "{f:?}");
    let l1 = String::from_utf8_lossy(&f.untagged[0]).into_owned();
    let l2 = String::from_utf8_lossy(&f.untagged[1]).into_owned();
    assert!(
        l1.contains(&format!("UID {u1}")) && l1.contains("\\Seen") && l1.contains("\\Answered"),
        "{l1}"
    );
    assert!(l1.contains(std::str::from_utf8(&m1).unwrap()), "{l1}");
    assert!(
        l2.contains(&format!("UID {u2}")) && !l2.contains("\\Flagged"),
        "{l2}"
    );
    assert!(l2.contains(std::str::from_utf8(&m2).unwrap()), "{l2}");
    c.select("Archive");
    let f = c.cmd(&format!("UID FETCH {u3} (FLAGS BODY.PEEK[])"));
    let t = f.text();
    assert!(t.contains("$Custom") && t.contains("Subject: d3"), "{t}");
    let g = c.cmd("GETMETADATA INBOX (/private/devicetoken)");
    assert!(g.text().contains("tok1"), "{g:?}");
    // New UIDs continue above the old ones.
    let u4 = c.append_uid("INBOX", "", &msg("d4", "four"));
    assert!(u4 > u2, "{u4} > {u2}");
    // The password still works; a wrong one still fails.
    let mut c2 = r.imaps();
    assert!(c2.login(&r.addr("durable01"), "wrongpassword").no());
    r.assert_no_panic();
}

#[test]
fn kill9_right_after_append_ok() {
    let mut r = Relay::start(161);
    let mut c = r.login("durable02");
    let mut expected = Vec::new();
    for i in 0..5 {
        let m = msg(&format!("k{i}"), &"x".repeat(1000 * i));
        expected.push(m.clone());
        c.append_uid("INBOX", "\\Seen", &m);
    }
    // kill -9 immediately after the last tagged OK arrived.
    r.kill9();
    drop(c);
    r.restart();
    let mut c = r.login("durable02");
    c.select("INBOX");
    let f = c.cmd("FETCH 1:* (FLAGS BODY.PEEK[])");
    assert_eq!(f.untagged.len(), 5, "{f:?}");
    for (i, (l, m)) in f.untagged.iter().zip(&expected).enumerate() {
        let l = String::from_utf8_lossy(l);
        assert!(l.contains("\\Seen"), "message {i}: {l}");
        assert!(
            l.contains(std::str::from_utf8(m).unwrap()),
            "message {i} body"
        );
    }
    // Quota accounting matches after restart.
    let q = c.cmd("GETQUOTAROOT INBOX");
    assert!(q.ok() && q.has("STORAGE"), "{q:?}");
    let expunged = c.cmd("STORE 1:* +FLAGS.SILENT (\\Deleted)");
    assert!(expunged.ok());
    assert!(c.cmd("EXPUNGE").ok());
    drop(c);
    r.restart();
    let mut c = r.login("durable02");
    let s = c.cmd("STATUS INBOX (MESSAGES)");
    assert!(
        s.text().contains("MESSAGES 0"),
        "expunge is durable too: {s:?}"
    );
    let q = c.cmd("GETQUOTAROOT INBOX");
    assert!(q.text().contains("STORAGE 0 "), "quota back to 0: {q:?}");
}
