//! Retention rules (spec §10, issue 6): every prune rule with its boundary,
//! driven by `chatrelay prune --days N` (the relay's injectable clock) and,
//! for exact-second boundaries, by `chatrelay::prune::run` with an explicit
//! `now` on a store opened in-process.
//!
//! Relays: 127.0.0.231–235.

mod common;

use std::time::Duration;

use common::{now_unix, Imap, Relay, PASSWORD};

const H: i64 = 3600;
const DAY: i64 = 86400;

/// Config lines that keep the daily prune timer ~12 h away from the test.
fn far_prune_time() -> String {
    let hh = ((now_unix() / H) + 12) % 24;
    format!("prune_time = {hh:02}:00\n")
}

fn start(n: u8, extra: &str) -> Relay {
    Relay::start_with(n, &format!("{}{extra}", far_prune_time()))
}

/// The first five counts of a prune report, in order: accounts checked,
/// inactive accounts removed, old messages, large messages, push tokens
/// expired (the sixth, quota trims, is checked in prune_quota.rs).
fn counts(report: &str) -> [u64; 5] {
    assert!(report.starts_with("prune: "), "report: {report:?}");
    let nums: Vec<u64> = report
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 6, "report: {report:?}");
    [nums[0], nums[1], nums[2], nums[3], nums[4]]
}

/// A plain message of about `size` bytes (body in 76-char lines).
fn sized_msg(subject: &str, size: usize) -> Vec<u8> {
    let mut body = String::with_capacity(size + size / 70);
    while body.len() < size {
        body.push_str(&"x".repeat(76));
        body.push_str("\r\n");
    }
    common::msg(subject, &body)
}

/// Subjects of every message in `mb`, in sequence order.
fn subjects(c: &mut Imap, mb: &str) -> Vec<String> {
    let r = c.select(mb);
    let exists = r
        .lines()
        .iter()
        .find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" EXISTS")?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    if exists == 0 {
        return Vec::new();
    }
    let r = c.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(r.ok(), "{r:?}");
    r.lines()
        .iter()
        .map(|l| {
            let i = l
                .find("Subject: ")
                .unwrap_or_else(|| panic!("no subject: {l}"));
            l[i + 9..].split("\r\n").next().unwrap().to_string()
        })
        .collect()
}

fn append_at(c: &mut Imap, mb: &str, flags: &str, date: i64, m: &[u8]) {
    let r = c.append_dated(mb, flags, date, m);
    assert!(r.ok(), "APPEND: {r:?}");
}

/// `delete_mails_after = 20`: a message is removed once it is strictly older
/// than 20 days as of the (shifted) prune time, in every mailbox and account.
#[test]
fn old_messages_boundaries_via_days() {
    let r = start(231, "");
    let now = now_unix();
    let mut a = r.login("oldalice1");
    let mut b = r.login("oldbobby1");
    assert!(a.cmd("CREATE Archive").ok());
    let m = common::msg;
    append_at(
        &mut a,
        "INBOX",
        "",
        now - 20 * DAY - 3 * H,
        &m("over20", "a"),
    );
    append_at(
        &mut a,
        "INBOX",
        "\\Seen",
        now - 20 * DAY + 3 * H,
        &m("under20", "b"),
    );
    append_at(
        &mut a,
        "INBOX",
        "",
        now - 19 * DAY + 3 * H,
        &m("under19", "c"),
    );
    append_at(&mut a, "INBOX", "", now - H, &m("fresh", "d"));
    append_at(
        &mut a,
        "Archive",
        "\\Seen",
        now - 20 * DAY - 3 * H,
        &m("archover", "e"),
    );
    append_at(&mut b, "INBOX", "", now - 25 * DAY, &m("bobover", "f"));
    append_at(&mut b, "INBOX", "", now - 2 * DAY, &m("bobkeep", "g"));

    // Today: only what is more than 20 days old goes, in every mailbox.
    let rep = r.prune(&[]);
    assert_eq!(counts(&rep), [2, 0, 3, 0, 0], "{rep}");
    assert_eq!(subjects(&mut a, "INBOX"), ["under20", "under19", "fresh"]);
    assert!(subjects(&mut a, "Archive").is_empty());
    assert_eq!(subjects(&mut b, "INBOX"), ["bobkeep"]);

    // One day later the message that was 3 h short of 20 days is over.
    let rep = r.prune(&["--days", "1"]);
    assert_eq!(counts(&rep), [2, 0, 1, 0, 0], "{rep}");
    assert_eq!(subjects(&mut a, "INBOX"), ["under19", "fresh"]);

    // Running again at the same shift removes nothing more.
    let rep = r.prune(&["--days", "1"]);
    assert_eq!(counts(&rep), [2, 0, 0, 0, 0], "{rep}");

    // 19 days on (cutoff = now - 1 day): the one-hour-old message stays;
    // the one dated 19 days - 3 h ago and bob's 2-day-old one go.
    let rep = r.prune(&["--days", "19"]);
    assert_eq!(counts(&rep), [2, 0, 2, 0, 0], "{rep}");
    assert_eq!(subjects(&mut a, "INBOX"), ["fresh"]);
    assert!(subjects(&mut b, "INBOX").is_empty());

    // `--days 21` on what is left: everything older than one day is gone.
    let rep = r.prune(&["--days", "21"]);
    assert_eq!(counts(&rep), [2, 0, 1, 0, 0], "{rep}");
    assert!(subjects(&mut a, "INBOX").is_empty());

    // Accounts and folders themselves stay; quota is given back.
    assert!(a.cmd("SELECT Archive").ok());
    let q = a.cmd("GETQUOTAROOT INBOX");
    assert!(q.has("(STORAGE 0 "), "{q:?}");
    r.assert_no_panic();
}

/// `delete_large_after = 7`: seen messages over 200,000 bytes go after 7 days;
/// unseen large ones and small seen ones stay (until the 20-day rule).
#[test]
fn large_seen_vs_unseen_vs_small() {
    let r = start(232, "");
    let now = now_unix();
    let mut a = r.login("largeusr1");
    let old = now - 7 * DAY - 3 * H;
    append_at(
        &mut a,
        "INBOX",
        "\\Seen",
        old,
        &sized_msg("bigseen", 250_000),
    );
    append_at(&mut a, "INBOX", "", old, &sized_msg("bigunseen", 250_000));
    append_at(
        &mut a,
        "INBOX",
        "\\Seen",
        old,
        &sized_msg("smallseen", 150_000),
    );
    append_at(
        &mut a,
        "INBOX",
        "\\Seen \\Flagged",
        now - 7 * DAY + 3 * H,
        &sized_msg("bigyoung", 250_000),
    );
    assert!(a.cmd("CREATE Archive").ok());
    append_at(
        &mut a,
        "Archive",
        "\\Seen",
        old,
        &sized_msg("bigarch", 250_000),
    );

    let rep = r.prune(&[]);
    assert_eq!(counts(&rep), [1, 0, 0, 2, 0], "{rep}");
    assert_eq!(
        subjects(&mut a, "INBOX"),
        ["bigunseen", "smallseen", "bigyoung"]
    );
    assert!(subjects(&mut a, "Archive").is_empty());

    // Seen later (STORE) counts too: the next prune takes it.
    a.select("INBOX");
    assert!(a.cmd("STORE 1 +FLAGS.SILENT (\\Seen)").ok());
    let rep = r.prune(&["--days", "1"]);
    assert_eq!(counts(&rep), [1, 0, 0, 2, 0], "{rep}");
    assert_eq!(subjects(&mut a, "INBOX"), ["smallseen"]);
    r.assert_no_panic();
}

/// `delete_inactive_users_after = 90` by last IMAP login day: with the relay
/// stopped (store opened directly), an account last seen today survives
/// `--days 89` and is removed completely at `--days 91`: messages, folders,
/// push tokens, password. Logging in again creates a new, empty account.
#[test]
fn inactive_account_removed_at_91_not_89() {
    let mut r = start(233, "");
    let now = now_unix();
    {
        let mut a = r.login("inactive1");
        append_at(&mut a, "INBOX", "", now - H, &common::msg("keepme", "x"));
        assert!(a.cmd("CREATE Projects").ok());
        a.set_device_token("tok-inactive");
        assert_eq!(a.device_tokens().as_deref(), Some("tok-inactive"));
        let _ = a.cmd("LOGOUT");
    }
    r.stop();
    assert!(
        r.data_dir().join("control.sock").exists(),
        "stale socket left by kill -9"
    );

    // 89 days on: the account stays (its message is past 20 days, its token
    // is 89 days old: kept).
    let rep = r.prune(&["--days", "89"]);
    assert_eq!(counts(&rep), [1, 0, 1, 0, 0], "{rep}");
    // Dry run at 91: reported, nothing changed.
    let rep = r.prune(&["--dry-run", "--days", "91"]);
    assert!(rep.ends_with("(dry run)"), "{rep}");
    assert_eq!(counts(&rep), [1, 1, 0, 0, 0], "{rep}");

    r.restart();
    {
        // Still there after 89 days and a dry run: the old password works and
        // a wrong one does not create a fresh account.
        let mut c = r.imaps();
        let resp = c.login(&r.addr("inactive1"), "anotherpw9");
        assert!(resp.no(), "{resp:?}");
        let mut a = r.login("inactive1");
        assert!(subjects(&mut a, "INBOX").is_empty());
        assert_eq!(a.device_tokens().as_deref(), Some("tok-inactive"));
        assert!(a.cmd("LIST \"\" *").text().contains("Projects"));
        append_at(
            &mut a,
            "Projects",
            "",
            now_unix(),
            &common::msg("again", "x"),
        );
        let _ = a.cmd("LOGOUT");
    }
    r.stop();

    let rep = r.prune(&["--days", "91"]);
    assert_eq!(counts(&rep), [1, 1, 0, 0, 0], "{rep}");
    let rep = r.prune(&["--days", "91"]);
    assert_eq!(counts(&rep), [0, 0, 0, 0, 0], "{rep}");

    r.restart();
    let mut c = r.imaps();
    // A different password now succeeds: the account was created anew.
    let resp = c.login(&r.addr("inactive1"), "anotherpw9");
    assert!(resp.ok(), "{resp:?}");
    assert!(subjects(&mut c, "INBOX").is_empty());
    assert_eq!(c.device_tokens(), None);
    let l = c.cmd("LIST \"\" *");
    assert!(!l.text().contains("Projects"), "{l:?}");
    let q = c.cmd("GETQUOTAROOT INBOX");
    assert!(q.has("(STORAGE 0 "), "{q:?}");
    let resp = r.imaps().login(&r.addr("inactive1"), PASSWORD);
    assert!(resp.no(), "old password must be gone: {resp:?}");
    r.assert_no_panic();
}

/// `--dry-run` reports what would go and changes nothing.
#[test]
fn dry_run_changes_nothing() {
    let r = start(234, "");
    let now = now_unix();
    let mut a = r.login("dryrunus1");
    append_at(
        &mut a,
        "INBOX",
        "",
        now - 21 * DAY,
        &common::msg("old1", "x"),
    );
    append_at(
        &mut a,
        "INBOX",
        "",
        now - 30 * DAY,
        &common::msg("old2", "x"),
    );
    append_at(
        &mut a,
        "INBOX",
        "\\Seen",
        now - 8 * DAY,
        &sized_msg("big", 210_000),
    );
    append_at(&mut a, "INBOX", "", now - H, &common::msg("new", "x"));
    a.set_device_token("tok-dry");
    let q0 = a.cmd("GETQUOTAROOT INBOX").text();

    for _ in 0..2 {
        let rep = r.prune(&["--dry-run"]);
        assert!(rep.ends_with("(dry run)"), "{rep}");
        assert_eq!(counts(&rep), [1, 0, 2, 1, 0], "{rep}");
    }
    // Even an account that would be removed at 91 days, and the token at 90.
    let rep = r.prune(&["--dry-run", "--days", "91"]);
    assert_eq!(counts(&rep), [1, 1, 0, 0, 0], "{rep}");
    assert_eq!(subjects(&mut a, "INBOX"), ["old1", "old2", "big", "new"]);
    assert_eq!(a.cmd("GETQUOTAROOT INBOX").text(), q0);
    assert_eq!(a.device_tokens().as_deref(), Some("tok-dry"));

    // The real run removes exactly what the dry run reported.
    let rep = r.prune(&[]);
    assert_eq!(counts(&rep), [1, 0, 2, 1, 0], "{rep}");
    assert!(!rep.contains("dry run"), "{rep}");
    assert_eq!(subjects(&mut a, "INBOX"), ["new"]);
    r.assert_no_panic();
}

/// Through the control socket of the running relay, an IMAP session that
/// IDLEs on INBOX gets `* n EXPUNGE` for each removed message, and a second
/// session with the mailbox selected sees them at its next command.
#[test]
fn prune_via_control_socket_expunges_to_idle() {
    let r = start(235, "");
    let now = now_unix();
    let mut a = r.login("idleprune");
    for (i, age) in [10 * DAY + H, 3 * DAY, 10 * DAY + 2 * H, 10 * DAY + 3 * H, H]
        .iter()
        .enumerate()
    {
        append_at(
            &mut a,
            "INBOX",
            "",
            now - age,
            &common::msg(&format!("m{i}"), "x"),
        );
    }
    let mut other = r.login("idleprune");
    let sel = other.select("INBOX");
    assert!(sel.has("* 5 EXISTS"), "{sel:?}");

    let sel = a.select("INBOX");
    assert!(sel.has("* 5 EXISTS"), "{sel:?}");
    a.send_raw(b"i1 IDLE\r\n");
    let l = a.read_response_line();
    assert!(l.starts_with(b"+"), "{}", String::from_utf8_lossy(&l));

    let rep = r.prune(&["--days", "11"]);
    assert_eq!(counts(&rep), [1, 0, 3, 0, 0], "{rep}");
    // The relay logged the same report: it ran inside the server.
    assert!(r.stderr().contains(&rep), "not run via the control socket");

    let mut expunges = Vec::new();
    while expunges.len() < 3 {
        let l = a
            .wait_for("EXPUNGE", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("IDLE got only {expunges:?}"));
        expunges.push(l);
    }
    // Replaying the announced sequence numbers on the client's view must
    // remove exactly m0, m2 and m3.
    let mut view: Vec<&str> = vec!["m0", "m1", "m2", "m3", "m4"];
    for l in &expunges {
        let seq: usize = l.split(' ').nth(1).unwrap().parse().unwrap();
        assert!((1..=view.len()).contains(&seq), "{expunges:?}");
        let gone = view.remove(seq - 1);
        assert!(
            ["m0", "m2", "m3"].contains(&gone),
            "{expunges:?} removed {gone}"
        );
    }
    assert_eq!(view, ["m1", "m4"]);
    a.send_raw(b"DONE\r\n");
    let done = a.read_until_tagged("i1");
    assert!(done.ok(), "{done:?}");
    assert_eq!(subjects(&mut a, "INBOX"), ["m1", "m4"]);

    let n = other.cmd("NOOP");
    assert_eq!(n.text().matches("EXPUNGE").count(), 3, "{n:?}");
    r.assert_no_panic();
}

// ------------------------------------------------------------------ in-process

/// Exact-second boundaries with the library's prune and an explicit `now`:
/// strictly older than the cutoff goes, exactly at it stays.
#[test]
fn exact_boundaries_in_process() {
    use chatrelay::store::{flag, Flags, Store};
    let dir = common::TempDir::new("prune-exact");
    let data = dir.path().join("data");
    let cfg = chatrelay::config::Config::from_ini(
        &format!(
            "[params]\nmail_domain = 127.0.0.231\ndata_dir = {}\n",
            data.display()
        ),
        None,
    )
    .unwrap();
    assert_eq!(
        (
            cfg.delete_mails_after,
            cfg.delete_large_after,
            cfg.delete_inactive_users_after
        ),
        (20, 7, 90)
    );
    let store = Store::open(&data).unwrap();
    // A fixed "now" at 12:00 UTC some day.
    let now: i64 = 20_000 * DAY + 12 * H;
    let today = (now / DAY) as u32;
    let seen = Flags {
        bits: flag::SEEN,
        keywords: vec![],
    };
    let unseen = Flags::default();

    let u = "exactuser@127.0.0.231";
    store.create_account(u, "x", today).unwrap();
    let put = |name: &str, size: usize, f: &Flags, date: i64| {
        let mut m = format!("Subject: {name}\r\n\r\n").into_bytes();
        m.resize(size, b'x');
        store.deliver(&m, &[(u, "INBOX")], f, date, None).unwrap()[0].2
    };
    let at20 = put("at20", 100, &unseen, now - 20 * DAY);
    let _over20 = put("over20", 100, &unseen, now - 20 * DAY - 1);
    let big_at7 = put("bigat7", 200_001, &seen, now - 7 * DAY);
    let _big_over7 = put("bigover7", 200_001, &seen, now - 7 * DAY - 1);
    let exactly_large = put("exactly200000", 200_000, &seen, now - 7 * DAY - 1);
    let big_unseen = put("bigunseen", 200_001, &unseen, now - 7 * DAY - 1);

    // Accounts: the last login is kept by day; an account is removed once
    // `now` is past (login day start + 90 days).
    let at90 = "at90days1@127.0.0.231";
    let over90 = "over90day@127.0.0.231";
    store.create_account(at90, "x", today - 90).unwrap();
    store.create_account(over90, "x", today - 91).unwrap();
    let day_start = today as i64 * DAY;
    // Push tokens: registered exactly 90 days ago → expired; 1 s later → kept;
    // more than 60 s in the future → invalid.
    let toks = format!(
        "dead\t{}\nlive\t{}\nfuture\t{}\n",
        now - 90 * DAY,
        now - 90 * DAY + 1,
        now + 61
    );
    store
        .set_meta(u, "devicetoken", Some(toks.as_bytes()))
        .unwrap();

    let run = |now: i64, dry: bool| {
        futures_lite::future::block_on(chatrelay::prune::run(&store, None, None, &cfg, now, dry))
            .unwrap()
    };
    // At the start of today: the account whose login day started exactly 90
    // days ago stays, the 91-day one goes. No message is old enough yet (they
    // are dated relative to noon); the future token is invalid.
    let rep = run(day_start, false);
    assert_eq!(rep.accounts, 3, "{rep:?}");
    assert_eq!(rep.accounts_removed, 1, "{rep:?}");
    assert_eq!(
        (rep.messages_removed, rep.large_removed, rep.tokens_removed),
        (0, 0, 1),
        "{rep:?}"
    );
    assert!(store.get_account(at90).unwrap().is_some());
    assert!(store.get_account(over90).unwrap().is_none());

    // At noon: one second past every message cutoff for the "over" ones.
    let dry = run(now, true);
    let rep = run(now, false);
    assert_eq!(dry, rep);
    assert_eq!(rep.accounts, 2, "{rep:?}");
    assert_eq!(rep.accounts_removed, 1, "{rep:?}");
    assert_eq!(rep.messages_removed, 1, "{rep:?}");
    assert_eq!(rep.large_removed, 1, "{rep:?}");
    assert_eq!(rep.tokens_removed, 1, "{rep:?}");
    assert!(store.get_account(at90).unwrap().is_none());
    let inbox = store.get_mailbox(u, "INBOX").unwrap().unwrap();
    let left: Vec<u32> = store
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, [at20, big_at7, exactly_large, big_unseen]);
    let t = store.get_meta(u, "devicetoken").unwrap().unwrap();
    assert_eq!(
        String::from_utf8(t).unwrap(),
        format!("live\t{}\n", now - 90 * DAY + 1)
    );
    let used: u64 = store
        .messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| chatrelay::store::charged(m.size))
        .sum();
    assert_eq!(store.quota_used(u).unwrap(), used, "quota given back");

    // Idempotent.
    let rep = run(now, false);
    assert_eq!(
        (
            rep.accounts,
            rep.accounts_removed,
            rep.messages_removed,
            rep.large_removed,
            rep.tokens_removed
        ),
        (1, 0, 0, 0, 0)
    );
}
