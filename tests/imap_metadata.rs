//! METADATA wire format exactly as spec §9.3.
mod common;
use common::*;

#[test]
fn devicetoken_wire_format() {
    let r = Relay::start(80);
    let mut c = r.login("metauser1");
    let tag = c.next_tag();
    c.send_raw(format!("{tag} SETMETADATA INBOX (/private/devicetoken \"1111\" )\r\n").as_bytes());
    let s = c.read_until_tagged(&tag);
    assert_eq!(s.tagged, format!("{tag} OK Setmetadata completed."));
    assert!(s.untagged.is_empty(), "{s:?}");

    let g = c.cmd("GETMETADATA INBOX /private/devicetoken");
    assert!(g.ok(), "{g:?}");
    assert_eq!(
        g.tagged.split_once(' ').unwrap().1,
        "OK Getmetadata completed."
    );
    assert_eq!(g.untagged.len(), 1, "{g:?}");
    assert_eq!(
        String::from_utf8_lossy(&g.untagged[0]),
        "* METADATA INBOX (/private/devicetoken {4}\r\n1111)"
    );

    assert!(c
        .cmd("SETMETADATA INBOX (/private/devicetoken \"2222\" )")
        .ok());
    let g = c.cmd("GETMETADATA INBOX (/private/devicetoken)");
    assert_eq!(
        String::from_utf8_lossy(&g.untagged[0]),
        "* METADATA INBOX (/private/devicetoken {9}\r\n1111 2222)"
    );
    // Setting an existing token again does not duplicate it.
    assert!(c
        .cmd("SETMETADATA INBOX (/private/devicetoken \"1111\")")
        .ok());
    let g = c.cmd("GETMETADATA INBOX (/private/devicetoken)");
    let t = g.text();
    assert_eq!(t.matches("1111").count(), 1, "{t}");
    assert_eq!(t.matches("2222").count(), 1, "{t}");

    // Tokens survive a new session.
    let mut c2 = r.login("metauser1");
    let g = c2.cmd("GETMETADATA INBOX (/private/devicetoken)");
    assert!(
        g.text().contains("1111") && g.text().contains("2222"),
        "{g:?}"
    );

    // NIL removes all tokens.
    assert!(c.cmd("SETMETADATA INBOX (/private/devicetoken NIL)").ok());
    let g = c.cmd("GETMETADATA INBOX (/private/devicetoken)");
    assert_eq!(
        String::from_utf8_lossy(&g.untagged[0]),
        "* METADATA INBOX (/private/devicetoken NIL)"
    );
}

#[test]
fn server_entries() {
    let r = Relay::start(81);
    let mut c = r.login("metauser2");
    let g = c.cmd("GETMETADATA \"\" (/shared/vendor/deltachat/maxsmtprecipients)");
    assert!(g.ok(), "{g:?}");
    assert_eq!(
        String::from_utf8_lossy(&g.untagged[0]),
        "* METADATA \"\" (/shared/vendor/deltachat/maxsmtprecipients {4}\r\n1000)"
    );
    // Unknown server entry → NIL; no iroh relay configured → NIL.
    let g = c.cmd("GETMETADATA \"\" (/shared/vendor/deltachat/irohrelay /shared/nothing)");
    assert!(g.ok(), "{g:?}");
    assert!(
        g.text().contains("/shared/vendor/deltachat/irohrelay NIL"),
        "{g:?}"
    );
}

#[test]
fn iroh_relay_configured() {
    let r = Relay::start_with(82, "iroh_relay = https://iroh.example.org");
    let mut c = r.login("metauser3");
    let g = c.cmd("GETMETADATA \"\" (/shared/vendor/deltachat/irohrelay)");
    assert!(g.text().contains("https://iroh.example.org"), "{g:?}");
}

#[test]
fn setmetadata_refusals() {
    let r = Relay::start(83);
    let mut c = r.login("metauser4");
    let s = c.cmd("SETMETADATA INBOX (/private/comment \"x\")");
    assert!(s.no(), "{s:?}");
    let s = c.cmd("SETMETADATA \"\" (/shared/vendor/deltachat/maxsmtprecipients \"5\")");
    assert!(s.no(), "{s:?}");
    let s = c.cmd("SETMETADATA INBOX (/private/devicetoken \"has space\")");
    assert!(s.no(), "{s:?}");
    // Before login: BAD, not allowed.
    let mut c = r.imaps();
    let s = c.cmd("GETMETADATA \"\" (/shared/vendor/deltachat/maxsmtprecipients)");
    assert!(s.bad(), "{s:?}");
}
