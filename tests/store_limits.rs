//! Quota overhead per message, the per-mailbox message cap and the modes
//! of everything under `data_dir` (issue 10, item 7). Real server, real TLS.
//!
//! Relays: 127.0.0.63–65.
mod common;
#[path = "support/mod.rs"]
mod support;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Tiny messages (~200 bytes) each count 1 KiB more: a 256 KiB quota holds
/// about 200 of them, not 1300.
#[test]
fn tiny_messages_hit_the_quota() {
    let r = Relay::start_with(63, "max_mailbox_size = 256K");
    let mut c = r.login("tinyuser1");
    let mut n = 0;
    let refused = loop {
        let m = msg(&format!("t{n}"), "x");
        let a = c.append("INBOX", "", &m);
        if !a.ok() {
            break a;
        }
        n += 1;
        assert!(n < 2000, "quota never reached");
    };
    println!("{n} tiny messages fit in a 256 KiB quota");
    assert!(refused.tagged.contains("[OVERQUOTA]"), "{refused:?}");
    let size = msg("t0", "x").len() as u64;
    let expected = 256 * 1024 / (size + 1024);
    assert!(
        (n as u64).abs_diff(expected) <= 2,
        "{n} messages, expected about {expected}"
    );
    // The quota the client sees includes the overhead.
    let q = c.cmd("GETQUOTAROOT INBOX");
    assert!(q.ok(), "{q:?}");
    let line = q
        .lines()
        .into_iter()
        .find(|l| l.starts_with("* QUOTA "))
        .unwrap();
    println!("{line}");
    assert!(
        line.contains("STORAGE 25") && line.ends_with(" 256)"),
        "{line}"
    );
    // Expunging frees the overhead too.
    c.select("INBOX");
    assert!(c.cmd("STORE 1:10 +FLAGS (\\Deleted)").ok());
    assert!(c.cmd("EXPUNGE").ok());
    assert!(c.append("INBOX", "", &msg("again", "x")).ok());
    r.assert_no_panic();
}

#[test]
fn message_cap_per_mailbox() {
    let r = Relay::start_with(
        64,
        "max_messages_per_mailbox = 20\nsubmissions_port = 465\nsubmission_port = 587",
    );
    let to = r.addr("fullbox01");
    let mut c = r.login("fullbox01");
    for i in 0..20 {
        let a = c.append("INBOX", "", &msg(&format!("m{i}"), "x"));
        assert!(a.ok(), "{i}: {a:?}");
    }
    let a = c.append("INBOX", "", &msg("m20", "x"));
    assert!(a.no() && a.tagged.contains("[OVERQUOTA]"), "{a:?}");
    // Per mailbox: another one still takes messages.
    assert!(c.cmd("CREATE Other").ok());
    assert!(c.append("Other", "", &msg("o1", "x")).ok());
    // COPY into the full INBOX is refused the same way.
    c.select("Other");
    let cp = c.cmd("COPY 1 INBOX");
    assert!(cp.no() && cp.tagged.contains("[OVERQUOTA]"), "{cp:?}");
    // Delivery gets the over-quota reply.
    let from = r.addr("sender001");
    assert!(r.imaps().login(&from, PASSWORD).ok());
    let mut s = support::Smtp::connect_tls(r.sock(465));
    assert_eq!(s.cmd("EHLO client.test").code, 250);
    use base64::Engine;
    let tok = base64::engine::general_purpose::STANDARD.encode(format!("\0{from}\0{PASSWORD}"));
    assert_eq!(s.cmd(&format!("AUTH PLAIN {tok}")).code, 235);
    let d = s.transaction(&from, &[&to], &support::encrypted(&from, &to, "capped"));
    println!("delivery to a full mailbox: {d:?}");
    assert_eq!(d.code, 552, "{d:?}");
    // Removing one makes room again; the count survives a restart.
    c.select("INBOX");
    assert!(c.cmd("STORE 1 +FLAGS (\\Deleted)").ok());
    assert!(c.cmd("EXPUNGE").ok());
    assert!(c.append("INBOX", "", &msg("m21", "x")).ok());
    drop(c);
    let mut r = r;
    r.restart();
    let mut c = r.login("fullbox01");
    let a = c.append("INBOX", "", &msg("m22", "x"));
    assert!(a.tagged.contains("[OVERQUOTA]"), "{a:?}");
    r.assert_no_panic();
}

/// Every file and folder under `dir`, with its mode.
fn modes(dir: &Path) -> Vec<(String, bool, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        out.push((
            p.display().to_string(),
            md.is_dir(),
            md.permissions().mode() & 0o7777,
        ));
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

fn assert_private(dir: &Path) -> usize {
    let all = modes(dir);
    for (p, is_dir, mode) in &all {
        if *is_dir {
            assert_eq!(*mode, 0o700, "{p} is {mode:o}");
        } else {
            assert_eq!(mode & 0o077, 0, "{p} is {mode:o}");
        }
    }
    all.len()
}

#[test]
fn data_dir_is_private() {
    let mut r = Relay::start_with(65, "submissions_port = 465\nsubmission_port = 587");
    let a = r.addr("permuser1");
    let b = r.addr("permuser2");
    let mut c = r.login("permuser1");
    // A body large enough for its own file, and a small inline one.
    let big = msg("big", &"y".repeat(200_000));
    assert!(c.append("INBOX", "", &big).ok());
    assert!(c.append("INBOX", "", &msg("small", "x")).ok());
    assert!(r.imaps().login(&b, PASSWORD).ok());
    let mut s = support::Smtp::connect_tls(r.sock(465));
    assert_eq!(s.cmd("EHLO client.test").code, 250);
    use base64::Engine;
    let tok = base64::engine::general_purpose::STANDARD.encode(format!("\0{a}\0{PASSWORD}"));
    assert_eq!(s.cmd(&format!("AUTH PLAIN {tok}")).code, 235);
    let d = s.transaction(&a, &[&b], &support::encrypted(&a, &b, "perm1"));
    assert_eq!(d.code, 250, "{d:?}");
    let n = assert_private(&r.data_dir());
    println!("{n} entries under data_dir, all 0600/0700");
    assert!(
        modes(&r.data_dir())
            .iter()
            .any(|(p, _, _)| p.contains("bodies/")),
        "a body file exists"
    );
    // An older install with wide modes is narrowed at startup.
    r.stop();
    for (p, is_dir, _) in modes(&r.data_dir()) {
        let m = if is_dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    r.restart();
    assert_private(&r.data_dir());
    let mut c = r.login("permuser1");
    c.select("INBOX");
    r.assert_no_panic();
}
