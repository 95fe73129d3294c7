//! Prune benchmark (issue 6, item 3). Run: `cargo bench --bench prune`
//! (`-- --messages N` to scale, `-- --ip N` for 127.0.0.N instead of .250).
//!
//! 1. Starts the relay once so an account with a password exists, stops it.
//! 2. Opens the store in-process (`chatrelay::store::Store`) and fills it with
//!    N messages (default 100,000) over 100 accounts, dated 10 days ago:
//!    99 % small (2 KB, stored in the index), 1 % 80 KB (one file each).
//! 3. Starts the relay on that data dir (waits for its startup prune, which
//!    removes nothing), opens an IMAP session with INBOX selected and sends a
//!    NOOP every ~5 ms, then runs `chatrelay prune --days 11` through the
//!    control socket: everything goes.
//! 4. Prints the NOOP latency (p50/p99/max) before and during the prune, the
//!    prune duration and its report, and the data dir's disk usage before,
//!    right after, and after a restart.
//!
//! Not a test: it prints figures. Every loop is bounded by a count and a
//! deadline; the relay is killed on exit and on panic (Drop).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatrelay::store::{BatchItem, Flags, Store};
use common::{now_unix, Relay};

const DAY: i64 = 86400;
const ACCOUNTS: usize = 100;
const SMALL: usize = 2_000;
const LARGE: usize = 80_000;
const BATCH: usize = 1000;

fn arg(name: &str, default: u64) -> u64 {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `du -sk` in KiB (falls back to summing allocated blocks).
fn du_kib(p: &Path) -> u64 {
    if let Ok(o) = std::process::Command::new("du").arg("-sk").arg(p).output() {
        if let Some(v) = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
        {
            return v;
        }
    }
    fn walk(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        let mut n = m.blocks() * 512;
        if m.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                n += walk(&e.path());
            }
        }
        n
    }
    walk(p) / 1024
}

fn file_kib(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len() / 1024).unwrap_or(0)
}

fn count_files(p: &Path, depth: u32) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() && depth > 0 {
            n += count_files(&e.path(), depth - 1);
        } else if ft.is_file() {
            n += 1;
        }
    }
    n
}

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: sender@example.org\r\nTo: bench@example.org\r\nSubject: bench {i}\r\n\
         Message-ID: <bench{i}@example.org>\r\n\r\n"
    )
    .into_bytes();
    let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m.resize(size, b'.');
    m
}

fn populate(data: &Path, login: &str, domain: &str, n: usize) -> (usize, usize) {
    let store = Store::open(data).expect("open store");
    let now = now_unix();
    let today = (now / DAY) as u32;
    let mut addrs = vec![login.to_string()];
    for a in 1..ACCOUNTS {
        let addr = format!("bnch{a:05}@{domain}");
        store.create_account(&addr, "x", today).unwrap();
        addrs.push(addr);
    }
    let base = now - 10 * DAY;
    let (mut small, mut large) = (0, 0);
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        let addr = &addrs[i % ACCOUNTS];
        let date = base + (i / ACCOUNTS) as i64;
        if i % 100 == 99 {
            let m = message(i, LARGE);
            store
                .deliver(
                    &m,
                    &[(addr.as_str(), "INBOX")],
                    &Flags::default(),
                    date,
                    None,
                )
                .unwrap();
            large += 1;
            continue;
        }
        let m = message(i, SMALL);
        let (id, _) = store.new_body().unwrap();
        batch.push(BatchItem {
            body_id: id,
            size: m.len() as u64,
            targets: vec![(addr.clone(), "INBOX".to_string())],
            outbound: None,
            flags: Flags::default(),
            internal_date: date,
            limit: None,
            inline: Some(m),
        });
        small += 1;
        if batch.len() == BATCH || i + 1 == n {
            for r in store.index_batch(&batch) {
                r.expect("index_batch");
            }
            batch.clear();
        }
    }
    if !batch.is_empty() {
        for r in store.index_batch(&batch) {
            r.expect("index_batch");
        }
    }
    (small, large)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn stats(label: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "  {label:<22} n={:<6} p50={:>8.2?} p99={:>8.2?} max={:>8.2?}",
        v.len(),
        pct(&v, 0.50),
        pct(&v, 0.99),
        v.last().copied().unwrap_or_default()
    );
}

fn main() {
    let n = arg("--messages", 100_000) as usize;
    let ip = arg("--ip", 250) as u8;
    let hh = ((now_unix() / 3600) + 12) % 24;
    let mut r = Relay::start_with(ip, &format!("prune_time = {hh:02}:00\n"));
    let login = "benchuser";
    {
        let mut c = r.login(login);
        let _ = c.cmd("LOGOUT");
    }
    r.stop();
    let data = r.data_dir();

    let t = Instant::now();
    let (small, large) = populate(&data, &r.addr(login), &r.domain(), n);
    println!(
        "populated {} messages ({small} x {SMALL} B in the index, {large} x {LARGE} B as files) \
         over {ACCOUNTS} accounts in {:.1?}",
        small + large,
        t.elapsed()
    );
    let du_before = du_kib(&data);
    let idx_before = file_kib(&data.join("index.redb"));

    let t = Instant::now();
    r.restart();
    // The startup prune walks everything (and removes nothing): wait for it.
    assert!(
        common::wait_until(Duration::from_secs(300), || r.stderr().contains("prune:")),
        "no startup prune report: {}",
        r.stderr()
    );
    println!(
        "relay start + startup prune (nothing to remove): {:.1?}",
        t.elapsed()
    );

    let mut c = r.login(login);
    let sel = c.select("INBOX");
    let exists = sel
        .lines()
        .iter()
        .find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" EXISTS")?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    println!("NOOP session: INBOX with {exists} messages selected");

    // NOOP every ~5 ms: (start offset, latency, EXPUNGEs seen).
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<(Duration, Duration, usize)>>> = Arc::default();
    let (st, sm) = (stop.clone(), samples.clone());
    let noop = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(600);
        for _ in 0..200_000 {
            if st.load(Ordering::SeqCst) || Instant::now() > deadline {
                break;
            }
            let s = Instant::now();
            let resp = c.cmd("NOOP");
            let lat = s.elapsed();
            assert!(resp.ok(), "{resp:?}");
            let ex = resp
                .untagged
                .iter()
                .filter(|l| l.ends_with(b"EXPUNGE"))
                .count();
            sm.lock().unwrap().push((s - t0, lat, ex));
            std::thread::sleep(Duration::from_millis(5).saturating_sub(lat));
        }
        let _ = c.cmd("LOGOUT");
    });

    std::thread::sleep(Duration::from_secs(2));
    let cfg = r.config_path();
    let p_start = t0.elapsed();
    let (code, out, err) = common::run_cli(
        &["prune", "--config", cfg.to_str().unwrap(), "--days", "11"],
        Duration::from_secs(600),
    );
    let p_end = t0.elapsed();
    assert_eq!(code, Some(0), "prune failed: {err}");
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    noop.join().unwrap();
    let du_after = du_kib(&data);
    let idx_after = file_kib(&data.join("index.redb"));
    let files_after = count_files(&data, 3);

    let s = samples.lock().unwrap().clone();
    let before: Vec<Duration> = s.iter().filter(|x| x.0 < p_start).map(|x| x.1).collect();
    let during: Vec<Duration> = s
        .iter()
        .filter(|x| x.0 + x.1 > p_start && x.0 < p_end)
        .map(|x| x.1)
        .collect();
    let after: Vec<Duration> = s.iter().filter(|x| x.0 >= p_end).map(|x| x.1).collect();
    let expunges: usize = s.iter().map(|x| x.2).sum();

    println!(
        "prune --days 11 via control socket: {:.2?} -> {}",
        p_end - p_start,
        out.trim()
    );
    println!("NOOP latency (one IMAPS session, NOOP every ~5 ms):");
    stats("before prune", before);
    stats("during prune", during);
    stats("after prune", after);
    println!("  EXPUNGE responses seen by the NOOP session: {expunges}");

    r.restart();
    let du_restart = du_kib(&data);
    let idx_restart = file_kib(&data.join("index.redb"));
    println!("disk usage of the data dir (du -sk):");
    println!("  before prune:        {du_before:>8} KiB (index.redb {idx_before} KiB)");
    println!(
        "  right after prune:   {du_after:>8} KiB (index.redb {idx_after} KiB, {files_after} files)"
    );
    println!("  after a restart:     {du_restart:>8} KiB (index.redb {idx_restart} KiB)");
    r.assert_no_panic();
}
