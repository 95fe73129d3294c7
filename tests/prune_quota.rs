//! Quota that never fills (spec §10.2, issue 6 item 2): an SMTP delivery that
//! would take a mailbox over 75 % of `max_mailbox_size` first removes the
//! oldest INBOX messages (by internal date) until it is at or below 70 %,
//! never messages younger than 24 h; only if that cannot make room is it
//! refused with 552 5.2.2. IMAP APPEND does not trim. Quota counts each
//! message as its size plus `OVERHEAD` (README, "Retention and push").
//!
//! Relays: 127.0.0.236–238.

mod common;
#[path = "support/mod.rs"]
mod support;

use common::{now_unix, Imap, Relay};

const H: i64 = 3600;
const DAY: i64 = 86400;
const LIMIT: u64 = 1024 * 1024;
/// Quota bytes per message on top of its size (`store::MESSAGE_OVERHEAD`).
const OVERHEAD: u64 = 1024;

/// What messages of these sizes count in the quota.
fn charged(v: &[(String, u64)]) -> u64 {
    v.iter().map(|(_, s)| s + OVERHEAD).sum()
}

fn start(n: u8) -> Relay {
    let hh = ((now_unix() / H) + 12) % 24;
    Relay::start_with(
        n,
        &format!(
            "submissions_port = 465\nmax_mailbox_size = 1M\nprune_time = {hh:02}:00\n\
             max_user_send_per_minute = 1000\nmax_user_send_burst_size = 1000\n"
        ),
    )
}

/// A plain message of exactly `size` bytes.
fn sized_msg(subject: &str, size: usize) -> Vec<u8> {
    let mut m = common::msg(subject, "");
    let line = format!("{}\r\n", "y".repeat(76));
    while m.len() + line.len() <= size {
        m.extend_from_slice(line.as_bytes());
    }
    while m.len() < size {
        m.push(b'z');
    }
    m
}

/// (used KiB, limit KiB) from GETQUOTAROOT INBOX.
fn quota(c: &mut Imap) -> (u64, u64) {
    let r = c.cmd("GETQUOTAROOT INBOX");
    assert!(r.ok(), "{r:?}");
    let t = r.text();
    let i = t.find("(STORAGE ").unwrap_or_else(|| panic!("{t}")) + 9;
    let mut it = t[i..].split([' ', ')']);
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

/// (Subject or Message-ID marker, size) of each INBOX message in order.
fn inbox(c: &mut Imap) -> Vec<(String, u64)> {
    let r = c.select("INBOX");
    if r.has("* 0 EXISTS") {
        return Vec::new();
    }
    let r = c.cmd("FETCH 1:* (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
    assert!(r.ok(), "{r:?}");
    r.lines()
        .iter()
        .map(|l| {
            let s = l.find("RFC822.SIZE ").unwrap() + 12;
            let size = l[s..].split([' ', ')']).next().unwrap().parse().unwrap();
            let m = l.find("Message-ID: <").unwrap() + 13;
            let id = l[m..].split('@').next().unwrap().to_string();
            (id, size)
        })
        .collect()
}

fn append_at(c: &mut Imap, date: i64, m: &[u8]) {
    let r = c.append_dated("INBOX", "\\Seen", date, m);
    assert!(r.ok(), "APPEND: {r:?}");
}

fn ids(v: &[(String, u64)]) -> Vec<&str> {
    v.iter().map(|(s, _)| s.as_str()).collect()
}

/// 8 × 100,000 bytes dated two days ago (appended out of date order) plus a
/// small one: ~77 %. APPEND leaves it there; the next SMTP delivery removes
/// the oldest by internal date — just one — and ends at or below 70 % plus
/// the new message.
#[test]
fn delivery_trims_oldest_to_70_percent() {
    let r = start(236);
    let now = now_unix();
    support::create_account(&r, "quotaali1");
    let mut b = r.login("quotabob1");
    let base = now - 2 * DAY;
    for k in [5, 2, 7, 0, 3, 6, 1, 4] {
        append_at(&mut b, base + k * 60, &sized_msg(&format!("q{k}"), 100_000));
    }
    // IMAP APPEND never trims, even past 75 %.
    append_at(&mut b, now - 3 * DAY, &sized_msg("small", 2_000));
    let before = inbox(&mut b);
    assert_eq!(before.len(), 9);
    let used = charged(&before);
    assert!(used > LIMIT * 3 / 4, "{used}");
    assert_eq!(quota(&mut b), (used.div_ceil(1024), 1024));

    let from = r.addr("quotaali1");
    let to = r.addr("quotabob1");
    let m = support::encrypted(&from, &to, "delivered");
    let rep = support::submit(&r, "quotaali1", &[&to], &m);
    assert_eq!(rep.code, 250, "{rep:?}");

    let after = inbox(&mut b);
    // Oldest first: "small" (3 days), then q0 (2 days + 0 min) → 702 KB.
    assert_eq!(
        ids(&after),
        ["q5", "q2", "q7", "q3", "q6", "q1", "q4", "delivered"],
        "{after:?}"
    );
    let new_size = after.last().unwrap().1;
    let used_after = charged(&after);
    assert!(
        used_after <= LIMIT / 10 * 7 + new_size,
        "{used_after} > 70 % + {new_size}"
    );
    // ... and it removed no more than needed: one more would be below 70 %
    // by a whole message.
    assert!(used_after > LIMIT / 10 * 7 - 100_000);
    assert_eq!(quota(&mut b), (used_after.div_ceil(1024), 1024));
    r.assert_no_panic();
}

/// A message younger than 24 h at the front of INBOX (lowest UID) and one
/// 23 h old: the trim removes the 2-day and 25-hour-old ones, then stops at
/// the 23-hour-old one although the mailbox is still over 70 %; the delivery
/// is accepted because it fits.
#[test]
fn trim_stops_at_messages_younger_than_24h() {
    let r = start(237);
    let now = now_unix();
    support::create_account(&r, "quotaali2");
    let mut b = r.login("quotabob2");
    append_at(&mut b, now - H, &sized_msg("young1h", 370_000));
    append_at(&mut b, now - 2 * DAY, &sized_msg("old2d", 30_000));
    append_at(&mut b, now - 23 * H, &sized_msg("young23h", 370_000));
    append_at(&mut b, now - 25 * H, &sized_msg("old25h", 30_000));
    assert!(quota(&mut b).0 * 1024 > LIMIT * 3 / 4);

    let (from, to) = (r.addr("quotaali2"), r.addr("quotabob2"));
    let rep = support::submit(
        &r,
        "quotaali2",
        &[&to],
        &support::encrypted(&from, &to, "fits"),
    );
    assert_eq!(rep.code, 250, "{rep:?}");
    let after = inbox(&mut b);
    assert_eq!(ids(&after), ["young1h", "young23h", "fits"], "{after:?}");
    let used = charged(&after);
    assert!(
        used > LIMIT / 10 * 7,
        "still over 70 %: nothing young removed"
    );
    assert_eq!(quota(&mut b).0, used.div_ceil(1024));

    // Another delivery: nothing old is left to remove; still fits → 250.
    let rep = support::submit(
        &r,
        "quotaali2",
        &[&to],
        &support::encrypted(&from, &to, "fits2"),
    );
    assert_eq!(rep.code, 250, "{rep:?}");
    assert_eq!(
        ids(&inbox(&mut b)),
        ["young1h", "young23h", "fits", "fits2"]
    );
    r.assert_no_panic();
}

/// A mailbox full of messages younger than 24 h: a delivery that would go
/// over `max_mailbox_size` is refused with 552 5.2.2 and nothing is removed;
/// a small one that still fits is accepted.
#[test]
fn refused_with_552_when_trim_cannot_make_room() {
    let r = start(238);
    let now = now_unix();
    support::create_account(&r, "quotaali3");
    let mut b = r.login("quotabob3");
    for i in 0..10 {
        append_at(&mut b, now - 2 * H, &sized_msg(&format!("y{i}"), 100_000));
    }
    let before = inbox(&mut b);
    let q_before = quota(&mut b);
    assert_eq!(q_before.0, (1_000_000 + 10 * OVERHEAD).div_ceil(1024));

    let (from, to) = (r.addr("quotaali3"), r.addr("quotabob3"));
    let big = support::big_encrypted(&from, &to, "toobig", 60_000);
    assert!(big.len() > 80_000, "{}", big.len());
    let rep = support::submit(&r, "quotaali3", &[&to], &big);
    assert_eq!(rep.code, 552, "{rep:?}");
    assert!(rep.text.contains("5.2.2"), "{rep:?}");
    assert_eq!(inbox(&mut b), before);
    assert_eq!(quota(&mut b), q_before);

    // The same shape of message, small enough to fit, goes through.
    let small = support::big_encrypted(&from, &to, "fitsjust", 20_000);
    let rep = support::submit(&r, "quotaali3", &[&to], &small);
    assert_eq!(rep.code, 250, "{rep:?}");
    let after = inbox(&mut b);
    assert_eq!(after.len(), 11);
    assert_eq!(after.last().unwrap().0, "fitsjust");
    r.assert_no_panic();
}
