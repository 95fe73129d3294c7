//! Integration tests for the IMAP command parser (`chatrelay::imap::parser`).

use chatrelay::imap::parser::*;
use chatrelay::imap::wire;

fn ok(s: &[u8]) -> Command {
    match parse_command(s) {
        Ok(c) => c,
        Err(e) => panic!("{:?} failed: {e}", String::from_utf8_lossy(s)),
    }
}

fn body(s: &str) -> CommandBody {
    ok(s.as_bytes()).body
}

fn bad(s: &[u8]) -> (String, String) {
    match parse_command(s) {
        Err(ParseError::Bad { tag, msg }) => (tag, msg),
        other => panic!(
            "{:?}: expected Bad, got {other:?}",
            String::from_utf8_lossy(s)
        ),
    }
}

fn notag(s: &[u8]) -> String {
    match parse_command(s) {
        Err(ParseError::NoTag(m)) => m,
        other => panic!(
            "{:?}: expected NoTag, got {other:?}",
            String::from_utf8_lossy(s)
        ),
    }
}

fn mb(s: &str) -> Mailbox {
    Mailbox(s.to_string())
}

fn n(x: u32) -> SeqNum {
    SeqNum::Num(x)
}

fn day(s: &str) -> i64 {
    wire::parse_date(s.as_bytes()).unwrap()
}

// ---------------------------------------------------------------- Delta Chat lines

#[test]
fn dc_prefetch() {
    let c = ok(b"a1 UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE X-MICROSOFT-ORIGINAL-MESSAGE-ID FROM IN-REPLY-TO REFERENCES CHAT-VERSION AUTOCRYPT-SETUP-MESSAGE)])");
    assert_eq!(c.tag, "a1");
    let fields: Vec<String> = "MESSAGE-ID DATE X-MICROSOFT-ORIGINAL-MESSAGE-ID FROM IN-REPLY-TO REFERENCES CHAT-VERSION AUTOCRYPT-SETUP-MESSAGE"
        .split(' ')
        .map(String::from)
        .collect();
    assert_eq!(
        c.body,
        CommandBody::Fetch {
            uid: true,
            set: SeqSet(vec![(n(1), SeqNum::Star)]),
            items: vec![
                FetchAtt::Uid,
                FetchAtt::Rfc822Size,
                FetchAtt::BodySection {
                    peek: true,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(fields))
                    },
                    partial: None
                }
            ],
            changed_since: None
        }
    );
}

#[test]
fn dc_prefetch_current_core() {
    let c = body("a UID FETCH 5:10 (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE X-MICROSOFT-ORIGINAL-MESSAGE-ID FROM CHAT-VERSION CHAT-IS-POST-MESSAGE AUTO-SUBMITTED AUTOCRYPT-SETUP-MESSAGE)])");
    let CommandBody::Fetch { items, .. } = c else {
        panic!()
    };
    assert_eq!(items.len(), 4);
    assert_eq!(items[1], FetchAtt::InternalDate);
}

#[test]
fn dc_fetch_full_and_flags_changedsince() {
    assert_eq!(
        body("a UID FETCH 7 (FLAGS BODY.PEEK[])"),
        CommandBody::Fetch {
            uid: true,
            set: SeqSet::single(7),
            items: vec![
                FetchAtt::Flags,
                FetchAtt::BodySection {
                    peek: true,
                    section: Section::default(),
                    partial: None
                }
            ],
            changed_since: None
        }
    );
    assert_eq!(
        body("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
        CommandBody::Fetch {
            uid: true,
            set: SeqSet(vec![(n(1), SeqNum::Star)]),
            items: vec![FetchAtt::Flags],
            changed_since: Some(12345)
        }
    );
}

#[test]
fn dc_getmetadata() {
    assert_eq!(
        body("a2 GETMETADATA \"\" (/shared/comment /shared/admin /shared/vendor/deltachat/irohrelay /shared/vendor/deltachat/turn)"),
        CommandBody::GetMetadata {
            mailbox: mb(""),
            entries: vec![
                "/shared/comment".into(),
                "/shared/admin".into(),
                "/shared/vendor/deltachat/irohrelay".into(),
                "/shared/vendor/deltachat/turn".into()
            ],
            maxsize: None,
            depth: None
        }
    );
    assert_eq!(
        body("a02 GETMETADATA INBOX /private/devicetoken"),
        CommandBody::GetMetadata {
            mailbox: mb("INBOX"),
            entries: vec!["/private/devicetoken".into()],
            maxsize: None,
            depth: None
        }
    );
    assert_eq!(
        body("a GETMETADATA (MAXSIZE 1024 DEPTH infinity) inbox (/private/x)"),
        CommandBody::GetMetadata {
            mailbox: mb("INBOX"),
            entries: vec!["/private/x".into()],
            maxsize: Some(1024),
            depth: Some("infinity".into())
        }
    );
}

#[test]
fn dc_setmetadata() {
    let want = CommandBody::SetMetadata {
        mailbox: mb("INBOX"),
        entries: vec![("/private/devicetoken".into(), Some(b"1111".to_vec()))],
    };
    assert_eq!(
        body("a3 SETMETADATA INBOX (/private/devicetoken \"1111\" )"),
        want
    );
    assert_eq!(
        ok(b"a4 SETMETADATA INBOX (/private/devicetoken {4}\r\n1111)").body,
        want
    );
    assert_eq!(
        ok(b"a4 SETMETADATA INBOX (/private/devicetoken {4+}\r\n1111)\r\n").body,
        want
    );
    assert_eq!(
        body("a SETMETADATA \"INBOX\" (/private/devicetoken \"openpgp:abc\")"),
        CommandBody::SetMetadata {
            mailbox: mb("INBOX"),
            entries: vec![("/private/devicetoken".into(), Some(b"openpgp:abc".to_vec()))],
        }
    );
    assert_eq!(
        body("a SETMETADATA INBOX (/private/devicetoken NIL /private/comment \"x\")"),
        CommandBody::SetMetadata {
            mailbox: mb("INBOX"),
            entries: vec![
                ("/private/devicetoken".into(), None),
                ("/private/comment".into(), Some(b"x".to_vec()))
            ],
        }
    );
    assert_eq!(
        ok(b"a SETMETADATA INBOX (/private/comment ~{3}\r\na\0b)").body,
        CommandBody::SetMetadata {
            mailbox: mb("INBOX"),
            entries: vec![("/private/comment".into(), Some(b"a\0b".to_vec()))],
        }
    );
    bad(b"a SETMETADATA INBOX ()");
    bad(b"a SETMETADATA INBOX (private/x \"1\")");
    bad(b"a SETMETADATA INBOX (/private/x)");
}

#[test]
fn dc_id() {
    assert_eq!(
        body("a5 ID (\"name\" \"Delta Chat\" \"version\" \"1.2\")"),
        CommandBody::Id(Some(vec![
            ("name".into(), Some("Delta Chat".into())),
            ("version".into(), Some("1.2".into()))
        ]))
    );
    assert_eq!(body("a ID NIL"), CommandBody::Id(None));
    assert_eq!(body("a ID ()"), CommandBody::Id(Some(vec![])));
    assert_eq!(
        body("a ID (\"k\" NIL)"),
        CommandBody::Id(Some(vec![("k".into(), None)]))
    );
    bad(b"a ID (\"k\")");
    bad(b"a ID (NIL \"v\")");
    bad(b"a ID");
}

#[test]
fn dc_store() {
    assert_eq!(
        body("a6 UID STORE 5:7 +FLAGS.SILENT (\\Deleted)"),
        CommandBody::Store {
            uid: true,
            set: SeqSet(vec![(n(5), n(7))]),
            op: StoreOp::Add,
            silent: true,
            flags: vec![Flag::Deleted],
            unchanged_since: None
        }
    );
    assert_eq!(
        body("a STORE 1 -flags \\seen $Label1"),
        CommandBody::Store {
            uid: false,
            set: SeqSet::single(1),
            op: StoreOp::Remove,
            silent: false,
            flags: vec![Flag::Seen, Flag::Keyword("$Label1".into())],
            unchanged_since: None
        }
    );
    assert_eq!(
        body("a UID STORE 1,3 (UNCHANGEDSINCE 99) FLAGS ()"),
        CommandBody::Store {
            uid: true,
            set: SeqSet(vec![(n(1), n(1)), (n(3), n(3))]),
            op: StoreOp::Replace,
            silent: false,
            flags: vec![],
            unchanged_since: Some(99)
        }
    );
    bad(b"a STORE 1 +FLAGS (\\*)");
    bad(b"a STORE 1 FLAGZ (\\Seen)");
    bad(b"a STORE 1 +FLAGS");
}

#[test]
fn dc_append() {
    let c = ok(b"a7 APPEND Sent (\\Seen) \"27-Nov-2026 13:40:00 +0000\" {5+}\r\nhello");
    assert_eq!(
        c.body,
        CommandBody::Append {
            mailbox: mb("Sent"),
            flags: vec![Flag::Seen],
            date: wire::parse_datetime(b"27-Nov-2026 13:40:00 +0000"),
            message: b"hello".to_vec()
        }
    );
    if let CommandBody::Append { date: Some(d), .. } = c.body {
        assert_eq!(wire::imap_datetime(d), "27-Nov-2026 13:40:00 +0000");
    }
    assert_eq!(
        ok(b"a APPEND inbox {3}\r\nabc\r\n").body,
        CommandBody::Append {
            mailbox: mb("INBOX"),
            flags: vec![],
            date: None,
            message: b"abc".to_vec()
        }
    );
    assert_eq!(
        ok(b"a APPEND x ~{4}\r\n\0\x01\r\n").body,
        CommandBody::Append {
            mailbox: mb("x"),
            flags: vec![],
            date: None,
            message: b"\0\x01\r\n".to_vec()
        }
    );
    assert_eq!(
        ok(b"a APPEND x () \" 1-Jan-1970 00:00:00 +0000\" {0}\r\n").body,
        CommandBody::Append {
            mailbox: mb("x"),
            flags: vec![],
            date: Some(0),
            message: vec![]
        }
    );
    bad(b"a APPEND x \"32-Jan-2020 00:00:00 +0000\" {1}\r\nx");
    bad(b"a APPEND x {10}\r\nshort");
    bad(b"a APPEND x \"message\"");
    bad(b"a APPEND x");
}

#[test]
fn dc_list() {
    assert_eq!(
        body("a8 LIST \"\" \"*\""),
        CommandBody::List {
            reference: vec![],
            patterns: vec![b"*".to_vec()],
            select_special_use: false,
            return_special_use: false,
            return_subscribed: false,
            return_status: vec![]
        }
    );
    assert_eq!(
        body("a15 LIST (SPECIAL-USE) \"\" \"*\" RETURN (SUBSCRIBED)"),
        CommandBody::List {
            reference: vec![],
            patterns: vec![b"*".to_vec()],
            select_special_use: true,
            return_special_use: false,
            return_subscribed: true,
            return_status: vec![]
        }
    );
    assert_eq!(
        body("a LIST \"\" (INBOX %) RETURN (SPECIAL-USE CHILDREN STATUS (MESSAGES UIDNEXT))"),
        CommandBody::List {
            reference: vec![],
            patterns: vec![b"INBOX".to_vec(), b"%".to_vec()],
            select_special_use: false,
            return_special_use: true,
            return_subscribed: false,
            return_status: vec![StatusItem::Messages, StatusItem::UidNext]
        }
    );
    assert_eq!(
        body("a LIST foo/ bar*"),
        CommandBody::List {
            reference: b"foo/".to_vec(),
            patterns: vec![b"bar*".to_vec()],
            select_special_use: false,
            return_special_use: false,
            return_subscribed: false,
            return_status: vec![]
        }
    );
    assert_eq!(
        body("a LSUB \"\" *"),
        CommandBody::Lsub {
            reference: vec![],
            pattern: b"*".to_vec()
        }
    );
    bad(b"a LIST \"\"");
    bad(b"a LIST \"\" * FOO (X)");
}

#[test]
fn dc_select() {
    assert_eq!(
        body("a9 SELECT INBOX (CONDSTORE)"),
        CommandBody::Select {
            mailbox: mb("INBOX"),
            condstore: true
        }
    );
    assert_eq!(
        body("a SELECT \"DeltaChat\""),
        CommandBody::Select {
            mailbox: mb("DeltaChat"),
            condstore: false
        }
    );
    assert_eq!(
        body("a EXAMINE iNbOx"),
        CommandBody::Examine {
            mailbox: mb("INBOX"),
            condstore: false
        }
    );
    assert_eq!(
        body("a SELECT INBOXES"),
        CommandBody::Select {
            mailbox: mb("INBOXES"),
            condstore: false
        }
    );
    bad(b"a SELECT INBOX (QRESYNC (1 2))");
    bad(b"a SELECT");
}

#[test]
fn dc_search() {
    assert_eq!(
        body("a10 UID SEARCH UID 5:* NOT DELETED SINCE 1-Feb-1994"),
        CommandBody::Search {
            uid: true,
            charset: None,
            key: SearchKey::And(vec![
                SearchKey::Uid(SeqSet(vec![(n(5), SeqNum::Star)])),
                SearchKey::Not(Box::new(SearchKey::Deleted)),
                SearchKey::Since(day("1-Feb-1994"))
            ]),
            ret: vec![]
        }
    );
    assert_eq!(day("1-Feb-1994"), 8797);
    assert_eq!(
        body("a SEARCH UNSEEN"),
        CommandBody::Search {
            uid: false,
            charset: None,
            key: SearchKey::Unseen,
            ret: vec![]
        }
    );
    assert_eq!(
        body("a UID SEARCH RETURN () CHARSET utf-8 OR FROM alice SUBJECT \"hi there\""),
        CommandBody::Search {
            uid: true,
            charset: Some("UTF-8".into()),
            key: SearchKey::Or(
                Box::new(SearchKey::From("alice".into())),
                Box::new(SearchKey::Subject("hi there".into()))
            ),
            ret: vec!["ALL".into()]
        }
    );
    assert_eq!(
        ok(b"a SEARCH RETURN (MIN max COUNT) (1:3,5 HEADER Chat-Version {3}\r\n1.0) BEFORE \"2-Mar-2020\"").body,
        CommandBody::Search {
            uid: false,
            charset: None,
            key: SearchKey::And(vec![
                SearchKey::And(vec![
                    SearchKey::Seq(SeqSet(vec![(n(1), n(3)), (n(5), n(5))])),
                    SearchKey::Header("Chat-Version".into(), "1.0".into())
                ]),
                SearchKey::Before(day("2-Mar-2020"))
            ]),
            ret: vec!["MIN".into(), "MAX".into(), "COUNT".into()]
        }
    );
    assert_eq!(
        body("a SEARCH MODSEQ 5 KEYWORD $x UNKEYWORD \\Seen LARGER 10 SMALLER 20 ON 1-jan-2000"),
        CommandBody::Search {
            uid: false,
            charset: None,
            key: SearchKey::And(vec![
                SearchKey::ModSeq(5),
                SearchKey::Keyword("$x".into()),
                SearchKey::Unkeyword("\\Seen".into()),
                SearchKey::Larger(10),
                SearchKey::Smaller(20),
                SearchKey::On(day("1-Jan-2000"))
            ]),
            ret: vec![]
        }
    );
    assert_eq!(
        body("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338"),
        CommandBody::Search {
            uid: false,
            charset: None,
            key: SearchKey::ModSeq(620162338),
            ret: vec![]
        }
    );
    let all = "ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN";
    let CommandBody::Search {
        key: SearchKey::And(v),
        ..
    } = body(&format!("a SEARCH {all}"))
    else {
        panic!()
    };
    assert_eq!(v.len(), 14);
    let strs = "FROM a TO b CC c BCC d SUBJECT e BODY f TEXT g SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000";
    let CommandBody::Search {
        key: SearchKey::And(v),
        ..
    } = body(&format!("a SEARCH {strs}"))
    else {
        panic!()
    };
    assert_eq!(v.len(), 10);
    bad(b"a SEARCH");
    bad(b"a SEARCH FOO");
    bad(b"a SEARCH SINCE 1-Foo-1994");
    bad(b"a SEARCH OR SEEN");
    bad(b"a SEARCH ()");
}

#[test]
fn dc_fetch_sections() {
    assert_eq!(
        body("a11 FETCH 1 BODY[1.2.MIME]<0.100>"),
        CommandBody::Fetch {
            uid: false,
            set: SeqSet::single(1),
            items: vec![FetchAtt::BodySection {
                peek: false,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::Mime)
                },
                partial: Some((0, 100))
            }],
            changed_since: None
        }
    );
    let CommandBody::Fetch { items, .. } = body("a FETCH 1:2 (body[header] BODY[TEXT] body.peek[2] BODY[3.HEADER.FIELDS.NOT (x-a)] BINARY.PEEK[1]<5.6> BINARY[] BINARY.SIZE[2.1] RFC822 RFC822.HEADER RFC822.TEXT ENVELOPE BODYSTRUCTURE BODY MODSEQ)") else { panic!() };
    assert_eq!(
        items,
        vec![
            FetchAtt::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::Header)
                },
                partial: None
            },
            FetchAtt::BodySection {
                peek: false,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::Text)
                },
                partial: None
            },
            FetchAtt::BodySection {
                peek: true,
                section: Section {
                    part: vec![2],
                    text: None
                },
                partial: None
            },
            FetchAtt::BodySection {
                peek: false,
                section: Section {
                    part: vec![3],
                    text: Some(SectionText::HeaderFieldsNot(vec!["x-a".into()]))
                },
                partial: None
            },
            FetchAtt::Binary {
                peek: true,
                part: vec![1],
                partial: Some((5, 6))
            },
            FetchAtt::Binary {
                peek: false,
                part: vec![],
                partial: None
            },
            FetchAtt::BinarySize(vec![2, 1]),
            FetchAtt::Rfc822,
            FetchAtt::Rfc822Header,
            FetchAtt::Rfc822Text,
            FetchAtt::Envelope,
            FetchAtt::BodyStructure,
            FetchAtt::Body,
            FetchAtt::ModSeq,
        ]
    );
    assert_eq!(
        Section {
            part: vec![3],
            text: Some(SectionText::HeaderFields(vec!["A".into(), "B".into()]))
        }
        .spec(),
        "3.HEADER.FIELDS (A B)"
    );
}

#[test]
fn fetch_macros() {
    use FetchAtt::*;
    let items = |s: &str| match body(s) {
        CommandBody::Fetch { items, .. } => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(
        items("a FETCH 1 ALL"),
        vec![Flags, InternalDate, Rfc822Size, Envelope]
    );
    assert_eq!(
        items("a FETCH 1 fast"),
        vec![Flags, InternalDate, Rfc822Size]
    );
    assert_eq!(
        items("a FETCH 1 FULL"),
        vec![Flags, InternalDate, Rfc822Size, Envelope, Body]
    );
    assert_eq!(items("a FETCH 1 UID"), vec![Uid]);
    bad(b"a FETCH 1 (ALL)");
    bad(b"a FETCH 1 (FOO)");
    bad(b"a FETCH 1 BODY.PEEK");
    bad(b"a FETCH 1 BODY[MIME]");
    bad(b"a FETCH 1 BODY[1.FOO]");
    bad(b"a FETCH 1 BODY[HEADER.FIELDS ()]");
    bad(b"a FETCH 1 BODY[]<1>");
    bad(b"a FETCH 1 BODY[0]");
    bad(b"a FETCH 1 UID[1]");
    bad(b"a FETCH 1 ()");
    bad(b"a FETCH 1 (FLAGS) (VANISHED)");
}

#[test]
fn dc_authenticate_status_quota() {
    assert_eq!(
        body("a12 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=="),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(b"AGFsaWNlAHNlY3JldA==".to_vec())
        }
    );
    assert_eq!(
        body("a authenticate plain"),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: None
        }
    );
    assert_eq!(
        body("a AUTHENTICATE PLAIN ="),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(b"=".to_vec())
        }
    );
    bad(b"a AUTHENTICATE PLAIN a$b");
    assert_eq!(
        body("a13 STATUS INBOX (UIDNEXT MESSAGES)"),
        CommandBody::Status {
            mailbox: mb("INBOX"),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
    assert_eq!(
        body("a STATUS x (recent uidvalidity unseen size highestmodseq)"),
        CommandBody::Status {
            mailbox: mb("x"),
            items: vec![
                StatusItem::Recent,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::Size,
                StatusItem::HighestModSeq
            ]
        }
    );
    bad(b"a STATUS INBOX (FOO)");
    assert_eq!(
        body("a14 GETQUOTAROOT INBOX"),
        CommandBody::GetQuotaRoot(mb("INBOX"))
    );
    assert_eq!(
        body("a GETQUOTA \"\""),
        CommandBody::GetQuota(String::new())
    );
}

#[test]
fn simple_commands() {
    let cases = [
        ("CAPABILITY", CommandBody::Capability),
        ("noop", CommandBody::Noop),
        ("Logout", CommandBody::Logout),
        ("STARTTLS", CommandBody::StartTls),
        ("NAMESPACE", CommandBody::Namespace),
        ("CHECK", CommandBody::Check),
        ("CLOSE", CommandBody::Close),
        ("UNSELECT", CommandBody::Unselect),
        ("EXPUNGE", CommandBody::Expunge),
        ("IDLE", CommandBody::Idle),
    ];
    for (s, want) in cases {
        assert_eq!(body(&format!("t1 {s}")), want);
        assert_eq!(ok(format!("t1 {s}\r\n").as_bytes()).body, want);
        bad(format!("t1 {s} x").as_bytes());
    }
    assert_eq!(
        body("a UID EXPUNGE 1:3"),
        CommandBody::UidExpunge(SeqSet(vec![(n(1), n(3))]))
    );
    assert_eq!(
        body("a ENABLE condstore UTF8=ACCEPT"),
        CommandBody::Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()])
    );
    assert_eq!(
        body("a COMPRESS deflate"),
        CommandBody::Compress("DEFLATE".into())
    );
    assert_eq!(ok(b"A001.x] NOOP").tag, "A001.x]");
    assert_eq!(CommandBody::Expunge.name(), "EXPUNGE");
    assert_eq!(body("a UID MOVE 1 x").name(), "UID MOVE");
}

#[test]
fn login() {
    assert_eq!(
        body("a LOGIN alice@example.org \"p\\\"w\\\\d\""),
        CommandBody::Login {
            user: b"alice@example.org".to_vec(),
            pass: b"p\"w\\d".to_vec()
        }
    );
    assert_eq!(
        ok(b"a LOGIN {17}\r\nalice@example.org {6}\r\n(){}\"\\\r\n").body,
        CommandBody::Login {
            user: b"alice@example.org".to_vec(),
            pass: b"(){}\"\\".to_vec()
        }
    );
    bad(b"a LOGIN alice");
    bad(b"a LOGIN alice \"x\\n\"");
}

#[test]
fn mailbox_commands() {
    assert_eq!(
        body("a CREATE Archive (USE (\\Archive))"),
        CommandBody::Create {
            mailbox: mb("Archive"),
            special_use: vec!["\\Archive".into()]
        }
    );
    assert_eq!(
        body("a CREATE \"a b\""),
        CommandBody::Create {
            mailbox: mb("a b"),
            special_use: vec![]
        }
    );
    assert_eq!(body("a DELETE foo"), CommandBody::Delete(mb("foo")));
    assert_eq!(
        body("a RENAME foo &AOQ-"),
        CommandBody::Rename {
            from: mb("foo"),
            to: mb("&AOQ-")
        }
    );
    assert_eq!(
        body("a SUBSCRIBE inbox"),
        CommandBody::Subscribe(mb("INBOX"))
    );
    assert_eq!(body("a UNSUBSCRIBE x"), CommandBody::Unsubscribe(mb("x")));
    assert_eq!(
        body("a UID COPY 1:2 Trash"),
        CommandBody::Copy {
            uid: true,
            set: SeqSet(vec![(n(1), n(2))]),
            mailbox: mb("Trash")
        }
    );
    assert_eq!(
        body("a MOVE 3 \"DeltaChat\""),
        CommandBody::Move {
            uid: false,
            set: SeqSet::single(3),
            mailbox: mb("DeltaChat")
        }
    );
    bad(b"a RENAME foo");
    bad(b"a CREATE x (FOO (\\Sent))");
    bad(b"a SELECT \"\xff\xfe\"");
}

// ---------------------------------------------------------------- sequence sets

#[test]
fn seqset_helpers() {
    let CommandBody::UidExpunge(s) = body("a UID EXPUNGE 1,3:5,10:*,7") else {
        panic!()
    };
    assert!(s.contains(1, 20));
    assert!(!s.contains(2, 20));
    assert!(s.contains(4, 20));
    assert!(s.contains(15, 20));
    assert!(!s.contains(21, 20));
    let existing = [1, 2, 4, 8, 9, 11, 100];
    assert_eq!(s.matching(&existing), vec![1, 4, 11, 100]);
    // `N:*` with N above the largest UID still matches the largest UID.
    let big = SeqSet(vec![(n(4_000_000_000), SeqNum::Star)]);
    assert_eq!(big.matching(&existing), vec![100]);
    assert_eq!(big.matching(&[]), Vec::<u32>::new());
    let full = SeqSet(vec![(n(1), n(u32::MAX))]);
    assert_eq!(full.matching(&existing), existing.to_vec());
    // Reversed range and overlaps.
    let r = SeqSet(vec![(n(9), n(2)), (n(4), n(8))]);
    assert_eq!(r.matching(&existing), vec![2, 4, 8, 9]);
    assert_eq!(
        SeqSet::from_sorted(&[1, 2, 3, 5, 7, 8]).to_string(),
        "1:3,5,7:8"
    );
    assert_eq!(s.to_string(), "1,3:5,10:*,7");
    assert!(s.has_star());
}

#[test]
fn bad_seqsets() {
    for s in [
        "0",
        "1:",
        "a:b",
        "1:0",
        ":1",
        "1,",
        "4294967296",
        "1:2x",
        "$",
        "",
    ] {
        let line = format!("a FETCH {s} FLAGS");
        let (tag, msg) = bad(line.as_bytes());
        assert_eq!(tag, "a");
        assert!(!msg.is_empty());
    }
    assert_eq!(
        body("a FETCH 4294967295 FLAGS"),
        CommandBody::Fetch {
            uid: false,
            set: SeqSet::single(u32::MAX),
            items: vec![FetchAtt::Flags],
            changed_since: None
        }
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn errors() {
    let (_, m) = bad(b"a LOGIN \"alice pw");
    assert!(m.contains("unterminated"), "{m}");
    let (_, m) = bad(b"a FROBNICATE");
    assert!(m.contains("unknown command"), "{m}");
    let (_, m) = bad(b"a UID FROB 1");
    assert!(m.contains("unknown UID command"), "{m}");
    bad(b"a UID");
    let (_, m) = bad(b"a SELECT");
    assert!(m.contains("missing"), "{m}");
    let (t, m) = bad(b"tag");
    assert_eq!(t, "tag");
    assert!(m.contains("missing command"), "{m}");
    bad(b"tag\r\n");
    bad(b"a ");
    notag(b"");
    notag(b"\r\n");
    notag(b" NOOP");
    notag(b"+ NOOP");
    notag(b"\"a\" NOOP");
    notag(b"\xff\xfe NOOP");
    notag(b"a\xff NOOP");
    bad(b"a NOOP \xff");
    bad(b"a LOGIN {5}\r\nab");
    bad(b"a LOGIN {5}x");
    bad(b"a LOGIN {99999999999999999999999}\r\n");
    bad(b"a LOGIN {18446744073709551615}\r\nx y");
    bad(b"a FETCH 1 FLAGS extra");
    bad(b"a NOOP\r\nextra");
    // Errors display as the reply line.
    assert_eq!(
        ParseError::Bad {
            tag: "a".into(),
            msg: "x".into()
        }
        .to_string(),
        "a BAD x"
    );
}

#[test]
fn deep_nesting() {
    let mut ok_line = String::from("a SEARCH ");
    ok_line.push_str(&"(".repeat(31));
    ok_line.push_str("SEEN");
    ok_line.push_str(&")".repeat(31));
    assert_eq!(
        body(&ok_line),
        CommandBody::Search {
            uid: false,
            charset: None,
            key: SearchKey::Seen,
            ret: vec![]
        }
    );

    let deep = format!("a SEARCH {}SEEN{}", "(".repeat(40), ")".repeat(40));
    let (_, m) = bad(deep.as_bytes());
    assert!(m.contains("nested too deeply"), "{m}");
    let nots = format!("a SEARCH {}SEEN", "NOT ".repeat(100));
    bad(nots.as_bytes());
    let ors = format!("a SEARCH {}SEEN{}", "OR ".repeat(100), " SEEN".repeat(100));
    bad(ors.as_bytes());

    let mut huge = b"a SEARCH ".to_vec();
    huge.extend(std::iter::repeat_n(b'(', 1 << 20));
    bad(&huge);
    let mut huge = b"a FETCH 1 ".to_vec();
    huge.extend(std::iter::repeat_n(b'(', 1 << 20));
    bad(&huge);
    let huge = vec![b'('; 1 << 20];
    notag(&huge);
}

#[test]
fn literal_framing() {
    assert_eq!(literal_at_end(b"a LOGIN alice {6}"), Some((6, false)));
    assert_eq!(
        literal_at_end(b"a APPEND Sent (\\Seen) {5+}"),
        Some((5, true))
    );
    assert_eq!(literal_at_end(b"a APPEND Sent ~{5}"), Some((5, false)));
    assert_eq!(literal_at_end(b"a NOOP"), None);
    assert_eq!(literal_at_end(b"a x{}"), None);
    assert_eq!(literal_at_end(b"a x{+}"), None);
    assert_eq!(literal_at_end(b"a x{1a}"), None);
    assert_eq!(literal_at_end(b""), None);

    // Simulate the session's assembly: line + CRLF + literal + next line.
    let mut full = b"a LOGIN {5}".to_vec();
    let (len, _) = literal_at_end(&full).unwrap();
    full.extend_from_slice(b"\r\n");
    full.extend_from_slice(b"alice");
    assert_eq!(len, 5);
    full.extend_from_slice(b" {3+}");
    full.extend_from_slice(b"\r\n");
    full.extend_from_slice(b"p w");
    assert_eq!(
        ok(&full).body,
        CommandBody::Login {
            user: b"alice".to_vec(),
            pass: b"p w".to_vec()
        }
    );
}

#[test]
fn wire_helpers() {
    assert_eq!(wire::astring(b"Sent"), b"Sent");
    assert_eq!(wire::astring(b"Delta Chat"), b"\"Delta Chat\"");
    assert_eq!(wire::astring(b"a\"b"), b"{3}\r\na\"b");
    assert_eq!(wire::literal(b"1111"), b"{4}\r\n1111");
    assert_eq!(wire::nstring(None), b"NIL");
    assert_eq!(wire::nstring(Some(b"x")), b"\"x\"");
    assert_eq!(wire::quoted_or_nil(None), b"NIL");
    assert_eq!(wire::imap_datetime(0), "01-Jan-1970 00:00:00 +0000");
    assert_eq!(wire::imap_datetime(-1), "31-Dec-1969 23:59:59 +0000");
    assert_eq!(wire::days_from_civil(1994, 2, 1), 8797);
    // Parser round trip of server-formatted strings.
    for s in [
        &b"plain"[..],
        b"with space",
        b"q\"uote",
        b"nl\r\nx",
        b"",
        b"NIL",
        b"\xc3\xa4",
    ] {
        let mut line = b"a LOGIN ".to_vec();
        line.extend(wire::astring(s));
        line.extend(b" ");
        line.extend(wire::astring(s));
        assert_eq!(
            ok(&line).body,
            CommandBody::Login {
                user: s.to_vec(),
                pass: s.to_vec()
            }
        );
    }
}

// ---------------------------------------------------------------- property-style

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(64);
        let buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = parse_command(&buf);
        let _ = literal_at_end(&buf);
    }
}

#[test]
fn random_tokens_never_panic() {
    const TOKENS: &[&str] = &[
        "a",
        " ",
        "UID",
        "FETCH",
        "STORE",
        "SEARCH",
        "APPEND",
        "LOGIN",
        "SETMETADATA",
        "GETMETADATA",
        "LIST",
        "SELECT",
        "STATUS",
        "ID",
        "(",
        ")",
        "[",
        "]",
        "<",
        ">",
        ".",
        "\"",
        "\\",
        "{",
        "}",
        "{3}\r\n",
        "{0+}\r\n",
        "~{2}\r\n",
        "1",
        "0",
        ":",
        ",",
        "*",
        "BODY",
        "BODY.PEEK",
        "HEADER.FIELDS",
        "MIME",
        "NOT",
        "OR",
        "SINCE",
        "1-Feb-1994",
        "INBOX",
        "NIL",
        "+FLAGS",
        "\\Seen",
        "RETURN",
        "CHARSET",
        "\r\n",
        "\u{ff}",
        "CHANGEDSINCE",
        "MODSEQ",
        "BINARY",
        "/private/x",
        "2.3",
        "%",
        "4294967296",
    ];
    let mut rng = XorShift(12345);
    for _ in 0..50_000 {
        let mut buf = Vec::new();
        for _ in 0..rng.below(24) {
            buf.extend_from_slice(TOKENS[rng.below(TOKENS.len())].as_bytes());
        }
        let _ = parse_command(&buf);
        let _ = literal_at_end(&buf);
    }
}

#[test]
fn mutated_valid_commands_never_panic() {
    let seeds: &[&[u8]] = &[
        b"a1 UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)])",
        b"a4 SETMETADATA INBOX (/private/devicetoken {4}\r\n1111)",
        b"a7 APPEND Sent (\\Seen) \"27-Nov-2026 13:40:00 +0000\" {5+}\r\nhello",
        b"a10 UID SEARCH UID 5:* NOT DELETED SINCE 1-Feb-1994",
        b"a11 FETCH 1 BODY[1.2.MIME]<0.100>",
        b"a15 LIST (SPECIAL-USE) \"\" \"*\" RETURN (SUBSCRIBED STATUS (MESSAGES))",
        b"a GETMETADATA (MAXSIZE 1 DEPTH 1) \"\" (/shared/admin)",
        b"a UID STORE 1 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Deleted)",
    ];
    let mut rng = XorShift(777);
    for _ in 0..30_000 {
        let mut buf = seeds[rng.below(seeds.len())].to_vec();
        for _ in 0..1 + rng.below(4) {
            if buf.is_empty() {
                break;
            }
            let i = rng.below(buf.len());
            match rng.below(4) {
                0 => buf[i] = rng.next() as u8,
                1 => {
                    buf.remove(i);
                }
                2 => buf.insert(i, b"( )\"{}\\*:0"[rng.below(10)]),
                _ => buf.truncate(i),
            }
        }
        let _ = parse_command(&buf);
        let _ = literal_at_end(&buf);
    }
}

#[test]
fn random_seqset_matching_agrees_with_contains() {
    let mut rng = XorShift(4242);
    for _ in 0..2000 {
        let mut existing: Vec<u32> = (0..rng.below(30))
            .map(|_| 1 + rng.below(200) as u32)
            .collect();
        existing.sort_unstable();
        existing.dedup();
        let mut ranges = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let a = if rng.below(8) == 0 {
                SeqNum::Star
            } else {
                n(1 + rng.below(220) as u32)
            };
            let b = if rng.below(8) == 0 {
                SeqNum::Star
            } else {
                n(1 + rng.below(220) as u32)
            };
            ranges.push((a, b));
        }
        let set = SeqSet(ranges);
        // Round-trip through the parser.
        let line = format!("a UID EXPUNGE {set}");
        assert_eq!(body(&line), CommandBody::UidExpunge(set.clone()));
        let star = existing.last().copied().unwrap_or(0);
        let want: Vec<u32> = existing
            .iter()
            .copied()
            .filter(|&x| set.contains(x, star))
            .collect();
        assert_eq!(set.matching(&existing), want);
    }
}
