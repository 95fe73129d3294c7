//! Pruning is safe (issue 6 item 3): a `kill -9` while a large prune runs
//! inside the relay leaves a consistent store after the next start — no
//! index entry without a body, no body file without an entry, quota equal to
//! the sum of what is left (each message plus the 1 KiB overhead) — and the
//! next prune finishes the job.
//!
//! Relay: 127.0.0.249.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use chatrelay::store::{BatchItem, Flags, Store};
use common::{now_unix, Relay};

const IP: u8 = 249;
const DAY: i64 = 86400;

fn populate(data: &Path, domain: &str, accounts: usize, small: usize, large: usize) {
    let store = Store::open(data).unwrap();
    let now = now_unix();
    let today = (now / DAY) as u32;
    let addrs: Vec<String> = (0..accounts)
        .map(|a| format!("crash{a:04}@{domain}"))
        .collect();
    for a in &addrs {
        store.create_account(a, "x", today).unwrap();
    }
    let date = now - 10 * DAY;
    let mut batch = Vec::new();
    for i in 0..small {
        let mut m = format!("Subject: s{i}\r\n\r\n").into_bytes();
        m.resize(1500, b'x');
        let (id, _) = store.new_body().unwrap();
        batch.push(BatchItem {
            body_id: id,
            size: m.len() as u64,
            targets: vec![(addrs[i % accounts].clone(), "INBOX".into())],
            outbound: None,
            flags: Flags::default(),
            internal_date: date,
            limit: None,
            inline: Some(m),
        });
        if batch.len() == 1000 {
            store.index_batch(&batch).into_iter().for_each(|r| {
                r.unwrap();
            });
            batch.clear();
        }
    }
    store.index_batch(&batch).into_iter().for_each(|r| {
        r.unwrap();
    });
    for i in 0..large {
        let mut m = format!("Subject: l{i}\r\n\r\n").into_bytes();
        m.resize(70_000, b'y');
        store
            .deliver(
                &m,
                &[(addrs[i % accounts].as_str(), "INBOX")],
                &Flags::default(),
                date,
                None,
            )
            .unwrap();
    }
}

/// Every body file under `bodies/`, as ids.
fn body_files(data: &Path) -> HashSet<u64> {
    let mut out = HashSet::new();
    for sub in std::fs::read_dir(data.join("bodies")).unwrap().flatten() {
        for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
            let n = f.file_name().into_string().unwrap();
            out.insert(u64::from_str_radix(&n, 16).unwrap());
        }
    }
    out
}

/// Check consistency with the store opened in-process; returns the number
/// of messages left.
fn check_consistent(data: &Path) -> usize {
    let store = Store::open(data).unwrap();
    let mut referenced_files = HashSet::new();
    let mut left = 0;
    for acc in store.list_accounts().unwrap() {
        let mut used = 0;
        for mb in store.list_mailboxes(&acc.addr).unwrap() {
            for m in store.messages(mb.id).unwrap() {
                left += 1;
                used += chatrelay::store::charged(m.size);
                let body = store
                    .read_body(m.body_id)
                    .unwrap_or_else(|e| panic!("index entry without body {}: {e}", m.body_id));
                assert_eq!(body.len() as u64, m.size);
                if store.inline_body(m.body_id).is_none() {
                    referenced_files.insert(m.body_id);
                }
            }
        }
        assert_eq!(store.quota_used(&acc.addr).unwrap(), used, "{}", acc.addr);
    }
    drop(store);
    assert_eq!(body_files(data), referenced_files, "body files vs index");
    assert!(
        std::fs::read_dir(data.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "tmp/ not empty"
    );
    left
}

#[test]
fn kill9_mid_prune_leaves_consistent_store() {
    let hh = ((now_unix() / 3600) + 12) % 24;
    let mut r = Relay::start_with(IP, &format!("prune_time = {hh:02}:00\n"));
    r.stop();
    let data = r.data_dir();
    let (accounts, small, large) = (20, 8000, 200);
    populate(&data, &r.domain(), accounts, small, large);
    let total = small + large;
    assert_eq!(check_consistent(&data), total);
    assert_eq!(body_files(&data).len(), large);

    r.restart();
    // Wait for the startup prune (removes nothing) to finish.
    assert!(common::wait_until(Duration::from_secs(30), || r
        .stderr()
        .contains("prune:")));
    let cfg = r.config_path();
    let mut child = std::process::Command::new(common::bin())
        .args(["prune", "--config", cfg.to_str().unwrap(), "--days", "11"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill the relay while it works through the batches.
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(400));
    r.stop();
    let _ = child.wait();
    let killed_after = t.elapsed();

    // The next start sweeps; then the store must be consistent.
    r.restart();
    r.stop();
    let left = check_consistent(&data);
    println!("killed after {killed_after:?}: {left} of {total} messages left");
    assert!(left <= total);

    // And a prune (relay stopped, store opened directly) finishes the job.
    let rep = r.prune(&["--days", "11"]);
    assert!(
        rep.contains(&format!("{left} old messages")),
        "{rep} (left {left})"
    );
    assert_eq!(check_consistent(&data), 0);
    assert!(body_files(&data).is_empty());
    r.restart();
    r.assert_serving();
}
