//! Backup / restore figures (issue 14). Run: `cargo bench --bench backup`
//! (`-- --messages N`, default 10,000). In-process, no network: fills a
//! store in a temp folder with N messages over 50 accounts (90 % 4 KB,
//! stored in the index; 10 % 200 KB, one body file each), then times
//!
//! 1. the index copy under redb's write lock (the only moment a backup
//!    holds up writers: README "Design decisions");
//! 2. `backup::create::write` into a file (what `chatrelay backup --out`
//!    does, online or offline), plaintext and age-encrypted;
//! 3. `backup::restore::restore` of the plaintext archive into an empty
//!    folder (verify, fsync, swap in);
//!
//! and prints archive sizes and the peak RSS growth of each step
//! (`-- --encrypted 0` skips the age runs).
//! Not a test: it prints figures.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chatrelay::store::{BatchItem, Flags, Store};

fn arg(name: &str, default: u64) -> u64 {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.org\r\nTo: b@example.org\r\nMessage-ID: <b{i}@example.org>\r\n\r\n"
    )
    .into_bytes();
    // Encrypted mail is incompressible: pseudo-random base64-ish lines.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ i as u64;
    while m.len() < size {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            m.push(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    [(x % 64) as usize],
            );
        }
        m.extend_from_slice(b"\r\n");
    }
    m.truncate(size);
    m
}

/// Reset the peak RSS (`/proc/self/clear_refs` 5), then read VmHWM in KiB.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
fn peak_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n = arg("--messages", 10_000) as usize;
    let root = std::env::temp_dir().join(format!("chatrelay-bench-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let t = Instant::now();
    let (store, bytes) = {
        let store = Store::open(&data).unwrap();
        let day = (chatrelay::clock::now_secs() / 86400) as u32;
        let addrs: Vec<String> = (0..50)
            .map(|a| format!("bench{a:04}@example.org"))
            .collect();
        for a in &addrs {
            store
                .create_account(a, "{SHA512-CRYPT}$6$x$y", day)
                .unwrap();
        }
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        for i in 0..n {
            let addr = &addrs[i % addrs.len()];
            if i % 10 == 9 {
                let m = message(i, 200_000);
                bytes += m.len() as u64;
                store
                    .deliver(
                        &m,
                        &[(addr, "INBOX")],
                        &Flags::default(),
                        1_700_000_000,
                        None,
                    )
                    .unwrap();
                continue;
            }
            let m = message(i, 4_000);
            bytes += m.len() as u64;
            let (id, _) = store.new_body().unwrap();
            batch.push(BatchItem {
                body_id: id,
                size: m.len() as u64,
                targets: vec![(addr.clone(), "INBOX".into())],
                outbound: None,
                flags: Flags::default(),
                internal_date: 1_700_000_000,
                limit: None,
                inline: Some(m),
            });
            if batch.len() == 500 {
                for r in store.index_batch(&batch) {
                    r.unwrap();
                }
                batch.clear();
            }
        }
        for r in store.index_batch(&batch) {
            r.unwrap();
        }
        (store, bytes)
    };
    let index = std::fs::metadata(data.join("index.redb")).unwrap().len();
    println!(
        "store: {n} messages, {:.1} MB of mail, index {:.1} MB, filled in {:.1} s",
        bytes as f64 / 1e6,
        index as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // 1. the write-lock hold: the index copy (page cache, no fsync)
    let copy = root.join("copy.redb");
    let t = Instant::now();
    store.copy_index(&copy).unwrap();
    println!(
        "index copy under the write lock: {:.1} ms for {:.1} MB",
        t.elapsed().as_secs_f64() * 1e3,
        index as f64 / 1e6
    );
    std::fs::remove_file(&copy).unwrap();

    // 2. backup, plain and encrypted
    let opts = chatrelay::backup::create::Options::default();
    let plain = root.join("b.tar");
    reset_peak();
    let base = rss_kib();
    let t = Instant::now();
    let f = std::fs::File::create(&plain).unwrap();
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, &f);
    let s = chatrelay::backup::create::write(&store, &opts, &mut w).unwrap();
    w.flush().unwrap();
    drop(w);
    f.sync_all().unwrap();
    let el = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&plain).unwrap().len();
    println!(
        "backup: {:.2} s, archive {:.1} MB ({} files), {:.0} MB/s, peak RSS +{} KiB",
        el,
        size as f64 / 1e6,
        s.files,
        size as f64 / 1e6 / el,
        peak_kib().saturating_sub(base)
    );
    let enc = root.join("b.tar.age");
    if arg("--encrypted", 1) == 0 {
        drop(store);
        let target = root.join("restored");
        reset_peak();
        let base = rss_kib();
        let t = Instant::now();
        let r = chatrelay::backup::restore::restore(
            std::fs::File::open(&plain).unwrap(),
            &target,
            &chatrelay::backup::restore::Options::default(),
        )
        .unwrap();
        println!(
            "restore: {:.2} s ({} files, {:.1} MB, verified, fsynced), peak RSS +{} KiB",
            t.elapsed().as_secs_f64(),
            r.files,
            r.bytes as f64 / 1e6,
            peak_kib().saturating_sub(base)
        );
        let _ = std::fs::remove_dir_all(&root);
        return;
    }
    reset_peak();
    let base = rss_kib();
    let t = Instant::now();
    let f = std::fs::File::create(&enc).unwrap();
    let mut w = chatrelay::backup::crypt::encrypt(
        std::io::BufWriter::with_capacity(64 * 1024, &f),
        age::secrecy::SecretString::from("bench passphrase".to_string()),
    )
    .unwrap();
    chatrelay::backup::create::write(&store, &opts, &mut w).unwrap();
    w.finish().unwrap().flush().unwrap();
    f.sync_all().unwrap();
    let el = t.elapsed().as_secs_f64();
    println!(
        "backup, encrypted (age, scrypt 2^{}): {:.2} s, archive {:.1} MB, peak RSS +{} KiB",
        chatrelay::backup::crypt::WORK_FACTOR,
        el,
        std::fs::metadata(&enc).unwrap().len() as f64 / 1e6,
        peak_kib().saturating_sub(base)
    );
    drop(store);

    // 3. restore
    let target = root.join("restored");
    reset_peak();
    let base = rss_kib();
    let t = Instant::now();
    let r = chatrelay::backup::restore::restore(
        std::fs::File::open(&plain).unwrap(),
        &target,
        &chatrelay::backup::restore::Options::default(),
    )
    .unwrap();
    println!(
        "restore: {:.2} s ({} files, {:.1} MB, verified, fsynced), peak RSS +{} KiB",
        t.elapsed().as_secs_f64(),
        r.files,
        r.bytes as f64 / 1e6,
        peak_kib().saturating_sub(base)
    );
    let t = Instant::now();
    let r = chatrelay::backup::restore::restore(
        chatrelay::backup::crypt::open(
            std::fs::File::open(&enc).unwrap(),
            Some(age::secrecy::SecretString::from(
                "bench passphrase".to_string(),
            )),
        )
        .unwrap(),
        &target,
        &chatrelay::backup::restore::Options {
            force: true,
            config_out: None,
        },
    )
    .unwrap();
    println!(
        "restore, encrypted (--force over the first): {:.2} s ({} files)",
        t.elapsed().as_secs_f64(),
        r.files
    );
    let _ = std::fs::remove_dir_all(&root);
    let _ = Path::new("");
}
