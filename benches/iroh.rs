//! iroh relay benchmark (issue 11). Run: `cargo bench --bench iroh`
//! (`-- --clients N` for another client count, `-- --quick` for 200).
//!
//! Starts the release `chatrelay` on 127.0.0.109 with its iroh relay on a
//! plain-HTTP port, and prints
//! 1. RSS per connected iroh client: N raw v3 clients (upgrade + signed
//!    ClientInfo) over plain HTTP, then N over TLS (443), RSS delta / N;
//! 2. relayed throughput on loopback, one sender → one receiver, with
//!    1,200-byte packets (QUIC datagram size) and 64 KiB packets: MB/s
//!    received and the share dropped at the receiver's bounded queue.
//!
//! Every loop is bounded by count and deadline; the server is killed on
//! exit (Drop guard of `tests/common`'s `Relay`).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/iroh_client/mod.rs"]
mod iroh_client;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Relay;
use iroh_client::*;

const N: u8 = 109;
const PORT: u16 = 3340;

fn arg(name: &str) -> Option<String> {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1).cloned())
}

fn raise_nofile(n: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    let want = cur.maximum.map_or(n, |h| h.min(n));
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: cur.maximum,
        },
    );
}

fn wait_clients(r: &Relay, n: u64) {
    assert!(
        common::wait_until(Duration::from_secs(60), || stats(&r.data_dir())
            ["iroh_clients"]
            == n),
        "clients did not reach {n}: {:?}",
        stats(&r.data_dir())
    );
}

/// Connect `n` clients (plain or TLS), return the RSS growth per client (KiB).
fn per_client(r: &Relay, n: usize, tls: bool) -> f64 {
    wait_clients(r, 0);
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, _) = r.rss_kib();
    let t0 = Instant::now();
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        assert!(
            t0.elapsed() < Duration::from_secs(50),
            "connecting stopped at {i}"
        );
        let kp = keypair();
        let c = if tls {
            connect_tls(r.sock(443), &kp)
        } else {
            connect(r.sock(PORT), &kp)
        };
        held.push(c);
    }
    wait_clients(r, n as u64);
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, _) = r.rss_kib();
    println!(
        "  {n} {} clients connected in {:.1} s: RSS {rss0} -> {rss1} KiB",
        if tls { "TLS" } else { "plain" },
        t0.elapsed().as_secs_f64()
    );
    drop(held);
    (rss1 as f64 - rss0 as f64) / n as f64
}

/// One sender → one receiver for `total` bytes of `size`-byte packets.
/// Returns (MB/s received, share dropped).
fn throughput(r: &Relay, size: usize, total: usize) -> (f64, f64) {
    let (ka, kb) = (keypair(), keypair());
    let pb = public(&kb);
    let mut a = connect(r.sock(PORT), &ka);
    let mut b = connect(r.sock(PORT), &kb);
    assert!(b.ping(*b"ready...", &mut Vec::new()));
    let count = total / size;
    let got = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (g, d) = (got.clone(), done.clone());
    b.tcp
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut last = Instant::now();
        let mut first: Option<Instant> = None;
        loop {
            match b.frame() {
                Some((RECV_PACKET, p)) => {
                    first.get_or_insert_with(Instant::now);
                    g.fetch_add((p.len() - 32) as u64, Ordering::Relaxed);
                    last = Instant::now();
                }
                Some((PING, p)) => b.send(&frame(PONG, &p)),
                Some(_) => {}
                None => {
                    b.buf.clear();
                    if d.load(Ordering::Relaxed) && last.elapsed() > Duration::from_millis(400) {
                        break;
                    }
                }
            }
            if last.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        (first.unwrap_or(last), last)
    });
    let payload = vec![0x42u8; size];
    // Frames batched per write (a real client writes many datagrams at once).
    let mut batch = Vec::new();
    let per_write = (256 * 1024 / (size + 37)).max(1);
    let t0 = Instant::now();
    let mut sent = 0usize;
    while sent < count {
        batch.clear();
        for _ in 0..per_write.min(count - sent) {
            let mut p = pb.to_vec();
            p.extend_from_slice(&payload);
            batch.extend_from_slice(&frame(SEND_PACKET, &p));
            sent += 1;
        }
        a.send(&batch);
        assert!(t0.elapsed() < Duration::from_secs(120), "sending too slow");
    }
    done.store(true, Ordering::Relaxed);
    let (first, last) = reader.join().unwrap();
    let bytes = got.load(Ordering::Relaxed) as f64;
    let _ = first;
    let secs = last.saturating_duration_since(t0).as_secs_f64().max(1e-3);
    let dropped = 1.0 - bytes / (count * size) as f64;
    ((bytes / 1e6) / secs, dropped)
}

fn main() {
    if std::env::args().any(|a| a == "--help") {
        println!("cargo bench --bench iroh [-- --clients N | --quick]");
        return;
    }
    let n: usize = if std::env::args().any(|a| a == "--quick") {
        200
    } else {
        arg("--clients")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    };
    raise_nofile(4 * n as u64 + 256);
    let r = Relay::start_with(
        N,
        &format!(
            "iroh_relay_http_port = {PORT}\niroh_relay_max_clients = {}\n",
            2 * n + 16
        ),
    );
    println!("chatrelay iroh relay bench on {} (release build)", r.ip());
    let (idle, _) = r.rss_kib();
    println!("idle RSS: {idle} KiB");
    let plain = per_client(&r, n, false);
    let tls = per_client(&r, n, true);
    println!(
        "RSS per connected iroh client: plain HTTP {plain:.1} KiB, TLS {tls:.1} KiB ({n} each)"
    );
    for (size, total) in [(1200usize, 200_000_000usize), (64 * 1024, 400_000_000)] {
        let (mbs, dropped) = throughput(&r, size, total);
        println!(
            "relayed throughput, {size}-byte packets, {} MB sent: {mbs:.0} MB/s received, {:.1} % dropped at the receiver's queue",
            total / 1_000_000,
            dropped * 100.0
        );
    }
    let st = stats(&r.data_dir());
    println!("counters: {st:?}");
    r.assert_no_panic();
}
