//! FETCH and SEARCH: header fields, full bodies, partial fetch, sizes,
//! BODYSTRUCTURE/ENVELOPE, a 3 MB message byte for byte, search keys.
mod common;
use common::*;

/// The bytes of the first literal in a response line.
fn first_literal(line: &[u8]) -> Vec<u8> {
    let open = line.iter().position(|&b| b == b'{').expect("literal");
    let close = open + line[open..].iter().position(|&b| b == b'}').unwrap();
    let n: usize = std::str::from_utf8(&line[open + 1..close])
        .unwrap()
        .parse()
        .unwrap();
    line[close + 3..close + 3 + n].to_vec()
}

#[test]
fn uid_fetch_items() {
    let r = Relay::start(50);
    let mut c = r.login("fetchuser");
    let m = msg("hello", "Body text here.");
    let uid = c.append_uid("INBOX", "\\Flagged", &m);
    c.select("INBOX");

    let f = c.cmd(&format!(
        "UID FETCH {uid} (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])"
    ));
    assert!(f.ok(), "{f:?}");
    assert_eq!(f.untagged.len(), 1, "{f:?}");
    let t = f.text();
    assert!(t.contains(&format!("UID {uid}")), "{t}");
    assert!(t.contains(&format!("RFC822.SIZE {}", m.len())), "{t}");
    assert!(t.contains("\\Flagged"), "{t}");
    let hdr = first_literal(&f.untagged[0]);
    assert_eq!(
        hdr,
        b"Subject: hello\r\nMessage-ID: <hello@example.org>\r\n\r\n".to_vec()
    );

    let f = c.cmd(&format!("UID FETCH {uid} BODY.PEEK[]"));
    assert_eq!(first_literal(&f.untagged[0]), m);
    let f = c.cmd(&format!("UID FETCH {uid} FLAGS"));
    assert!(
        !f.text().contains("\\Seen"),
        "PEEK must not set \\Seen: {f:?}"
    );

    // Partial fetch.
    let f = c.cmd(&format!("UID FETCH {uid} BODY[]<0.10>"));
    assert!(f.ok(), "{f:?}");
    let t = f.text();
    assert!(t.contains("BODY[]<0> {10}"), "{t}");
    assert_eq!(first_literal(&f.untagged[0]), m[..10].to_vec());
    // Non-PEEK BODY[] sets \Seen.
    let f = c.cmd(&format!("UID FETCH {uid} FLAGS"));
    assert!(f.text().contains("\\Seen"), "{f:?}");

    let f = c.cmd(&format!("UID FETCH {uid} (BODY.PEEK[TEXT] INTERNALDATE)"));
    assert!(f.ok() && f.text().contains("INTERNALDATE \""), "{f:?}");
    assert_eq!(
        first_literal(&f.untagged[0]),
        b"Body text here.\r\n".to_vec()
    );

    // Sequence FETCH of a missing message: BAD or empty OK, never a crash.
    let f = c.cmd("UID FETCH 999 FLAGS");
    assert!(f.ok() && f.untagged.is_empty(), "{f:?}");
}

const MULTIPART: &str = "From: Alice <alice@example.org>\r\n\
To: Bob <bob@example.org>\r\n\
Subject: multi\r\n\
Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n\
Message-ID: <multi@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\
\r\n\
--XYZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
part one\r\n\
--XYZ\r\n\
Content-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAwQ=\r\n\
--XYZ--\r\n";

#[test]
fn bodystructure_and_envelope() {
    let r = Relay::start(51);
    let mut c = r.login("structure");
    let uid = c.append_uid("INBOX", "", MULTIPART.as_bytes());
    c.select("INBOX");
    let f = c.cmd(&format!("UID FETCH {uid} (BODYSTRUCTURE ENVELOPE)"));
    assert!(f.ok(), "{f:?}");
    let t = f.text();
    assert!(t.contains("BODYSTRUCTURE ("), "{t}");
    assert!(t.contains("\"MIXED\"") || t.contains("\"mixed\""), "{t}");
    assert!(t.to_lowercase().contains("\"text\" \"plain\""), "{t}");
    assert!(
        t.to_lowercase()
            .contains("\"application\" \"octet-stream\""),
        "{t}"
    );
    assert!(t.to_lowercase().contains("\"boundary\" \"xyz\""), "{t}");
    assert!(
        t.contains("ENVELOPE (\"Tue, 1 Oct 2024 10:00:00 +0000\" \"multi\""),
        "{t}"
    );
    assert!(t.contains("\"alice\" \"example.org\""), "{t}");
    assert!(t.contains("<multi@example.org>"), "{t}");
    let f = c.cmd(&format!("UID FETCH {uid} BODY.PEEK[2.MIME]"));
    assert!(f.ok(), "{f:?}");
    assert!(f.text().contains("a.bin"), "{f:?}");
    let f = c.cmd(&format!("UID FETCH {uid} BODY"));
    assert!(f.ok() && f.text().contains("BODY ("), "{f:?}");
}

#[test]
fn large_message_intact() {
    let r = Relay::start(52);
    let mut c = r.login("largeuser");
    let mut m = msg("large", "");
    // 3 MB of varied printable lines.
    let mut i = 0u32;
    while m.len() < 3 * 1024 * 1024 {
        m.extend_from_slice(format!("line {i:08} {}\r\n", "abcdefghij".repeat(7)).as_bytes());
        i += 1;
    }
    let uid = c.append_uid("INBOX", "", &m);
    c.select("INBOX");
    let f = c.cmd(&format!("UID FETCH {uid} (RFC822.SIZE BODY.PEEK[])"));
    assert!(f.ok(), "{}", f.tagged);
    let body = first_literal(&f.untagged[0]);
    assert_eq!(body.len(), m.len());
    assert!(body == m, "3 MB body differs");
    assert!(f.text().contains(&format!("RFC822.SIZE {}", m.len())));
    // Also over the 443 ALPN multiplexer.
    let mut c2 = Imap::connect_tls_alpn(r.sock(443), &[b"imap"]);
    assert!(c2.login(&r.addr("largeuser"), PASSWORD).ok());
    c2.select("INBOX");
    let f = c2.cmd(&format!("UID FETCH {uid} BODY.PEEK[]"));
    assert!(first_literal(&f.untagged[0]) == m);
}

fn search_nums(r: &Resp) -> Vec<u32> {
    let l = r
        .lines()
        .into_iter()
        .find(|l| l.starts_with("* SEARCH"))
        .unwrap_or_else(|| panic!("no SEARCH line: {r:?}"));
    l[8..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn search_keys() {
    let r = Relay::start(53);
    let mut c = r.login("searchusr");
    let dated = |d: &str, subj: &str, extra: usize| {
        let mut m = format!(
            "From: a@example.org\r\nTo: b@example.org\r\nSubject: {subj}\r\nDate: {d}\r\nX-Tag: {subj}-tag\r\n\r\nbody\r\n"
        )
        .into_bytes();
        m.extend(std::iter::repeat_n(b'z', extra));
        m.extend_from_slice(b"\r\n");
        m
    };
    // APPEND with an internal date.
    let mut app = |date: &str, flags: &str, m: &[u8]| {
        let r = c.cmd_literal(&format!("APPEND INBOX ({flags}) \"{date}\""), m);
        assert!(r.ok(), "{r:?}");
    };
    app(
        "01-Jan-2020 10:00:00 +0000",
        "\\Seen",
        &dated("Wed, 1 Jan 2020 10:00:00 +0000", "alpha", 0),
    );
    app(
        "01-Jun-2021 10:00:00 +0000",
        "\\Flagged",
        &dated("Tue, 1 Jun 2021 10:00:00 +0000", "beta", 5000),
    );
    app(
        "01-Jan-2023 10:00:00 +0000",
        "",
        &dated("Sun, 1 Jan 2023 10:00:00 +0000", "gamma", 20000),
    );
    c.select("INBOX");

    assert_eq!(search_nums(&c.cmd("SEARCH ALL")), vec![1, 2, 3]);
    assert_eq!(search_nums(&c.cmd("UID SEARCH UID 2:*")), vec![2, 3]);
    assert_eq!(search_nums(&c.cmd("SEARCH 1,3")), vec![1, 3]);
    assert_eq!(search_nums(&c.cmd("SEARCH SEEN")), vec![1]);
    assert_eq!(search_nums(&c.cmd("SEARCH UNSEEN")), vec![2, 3]);
    assert_eq!(search_nums(&c.cmd("SEARCH FLAGGED")), vec![2]);
    assert_eq!(search_nums(&c.cmd("SEARCH NOT FLAGGED")), vec![1, 3]);
    assert_eq!(search_nums(&c.cmd("SEARCH OR SEEN FLAGGED")), vec![1, 2]);
    assert_eq!(search_nums(&c.cmd("SEARCH SINCE 1-Jan-2021")), vec![2, 3]);
    assert_eq!(search_nums(&c.cmd("SEARCH BEFORE 1-Jan-2021")), vec![1]);
    assert_eq!(search_nums(&c.cmd("SEARCH SENTSINCE 1-Jan-2022")), vec![3]);
    assert_eq!(search_nums(&c.cmd("SEARCH HEADER X-Tag beta-tag")), vec![2]);
    assert_eq!(search_nums(&c.cmd("SEARCH SUBJECT gamma")), vec![3]);
    assert_eq!(search_nums(&c.cmd("SEARCH LARGER 10000")), vec![3]);
    assert_eq!(search_nums(&c.cmd("SEARCH SMALLER 1000")), vec![1]);
    assert_eq!(
        search_nums(&c.cmd("SEARCH HEADER Subject nomatch")),
        Vec::<u32>::new()
    );
    let bad = c.cmd("SEARCH FOOBAR");
    assert!(bad.bad(), "{bad:?}");
}

/// RFC 2046 §5.1.1: the CRLF before a boundary delimiter belongs to the
/// delimiter, so BODY[1] of the multipart above is exactly `part one` and its
/// BODYSTRUCTURE size is 8 (what Dovecot returns).
#[test]
fn body_part_excludes_boundary_crlf() {
    let r = Relay::start(54);
    let mut c = r.login("partcrlf1");
    let uid = c.append_uid("INBOX", "", MULTIPART.as_bytes());
    c.select("INBOX");
    let f = c.cmd(&format!("UID FETCH {uid} BODY.PEEK[1]"));
    assert_eq!(
        String::from_utf8_lossy(&first_literal(&f.untagged[0])),
        "part one"
    );
    let f = c.cmd(&format!("UID FETCH {uid} BODYSTRUCTURE"));
    let t = f.text().to_lowercase();
    assert!(t.contains("\"7bit\" 8 1"), "text part size must be 8: {t}");
}
