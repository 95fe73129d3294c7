//! TURN benchmark (issue 11). Run: `cargo bench --bench turn`.
//!
//! Starts the release `chatrelay` on 127.0.0.118 (TURN on UDP 3478, relay
//! ports 49152–50279, quotas raised, loopback peers allowed) and prints:
//!
//! 1. RSS growth per TURN allocation over 1,000 allocations (each from its
//!    own client socket with its own REST user name, each with a permission
//!    and a channel bound);
//! 2. relayed throughput over loopback: ChannelData of 1,200-byte payloads
//!    client → relay → peer, with at most 256 in flight, for 5 s, then the
//!    same peer → relay → client.
//!
//! Every loop is bounded by a count and a deadline; the server is killed
//! on exit and on panic.

#[path = "../tests/turn_support/mod.rs"]
mod turn_support;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use turn_support::*;

const IP: &str = "127.0.0.118";
const ALLOCATIONS: usize = 1000;
const PAYLOAD: usize = 1200;
const WINDOW: u64 = 256;
const RUN: Duration = Duration::from_secs(5);

struct Server(Child, PathBuf);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn start() -> Server {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let bin = PathBuf::from(target).join("release/chatrelay");
    let dir = std::env::temp_dir().join(format!("chatrelay-bench-turn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ini = format!(
        "[params]\nmail_domain = {IP}\nlisten_address = {IP}\ndata_dir = {}\n\
         smtp_port = 0\nsubmission_port = 0\nsubmissions_port = 0\nimap_port = 0\nimaps_port = 0\n\
         https_port = 0\nhttp_port = 0\nturn_relay_ports = 49152-50279\nturn_user_quota = 2000\n\
         turn_ip_quota = 2000\nturn_allow_loopback_peers_for_tests = true\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("c.ini"), ini).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = Command::new(&bin)
        .args(["serve", "--config"])
        .arg(dir.join("c.ini"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo build --release first)", bin.display()));
    let s = Server(child, dir.clone());
    let t = Instant::now();
    while !std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .contains("chatrelay ready")
    {
        assert!(t.elapsed() < Duration::from_secs(30), "relay not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

fn main() {
    let srv = start();
    let pid = srv.0.id();
    let secret = std::fs::read_to_string(srv.1.join("data/turn.secret")).unwrap();
    let secret = secret.trim();
    let server: SocketAddr = format!("{IP}:3478").parse().unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let peer = UdpSocket::bind((IP, 0)).unwrap();
    let peer_addr = peer.local_addr().unwrap();

    // 1. Memory per allocation.
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid);
    let mut clients = Vec::with_capacity(ALLOCATIONS);
    let t = Instant::now();
    for i in 0..ALLOCATIONS {
        let user = format!("{exp}:bench{i}");
        let mut c = Client::new(IP, server, &user, &rest_password(secret, &user));
        let a = c.allocate(None);
        assert_eq!(a.class, 2, "allocation {i}: {a:?}");
        assert_eq!(c.channel_bind(0x4000, peer_addr).class, 2);
        clients.push(c);
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "allocations too slow"
        );
    }
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib(pid);
    println!(
        "TURN: {ALLOCATIONS} allocations (each with a channel) in {:.2} s; RSS {} KiB -> {} KiB: {:.2} KiB per allocation",
        took.as_secs_f64(),
        before,
        after,
        (after.saturating_sub(before)) as f64 / ALLOCATIONS as f64
    );

    // 2. Throughput client -> peer over the first allocation's channel.
    let c = clients.swap_remove(0);
    let relayed = {
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.channel_data(0x4000, b"probe");
        let mut b = [0u8; 2048];
        let (_, from) = peer.recv_from(&mut b).expect("probe relayed");
        from
    };
    drop(clients);
    let mb = |bytes: u64, d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    let (sent, got, d) = blast(
        |buf| {
            c.channel_data(0x4000, buf);
        },
        &peer,
        0,
    );
    println!(
        "TURN relay client -> peer (ChannelData, {PAYLOAD} B): {:.1} MB/s, {} of {} datagrams arrived",
        mb(got * PAYLOAD as u64, d),
        got,
        sent
    );
    let (sent, got, d) = blast(
        |buf| {
            let _ = peer.send_to(buf, relayed);
        },
        &c.sock,
        4,
    );
    println!(
        "TURN relay peer -> client (ChannelData, {PAYLOAD} B): {:.1} MB/s, {} of {} datagrams arrived",
        mb(got * PAYLOAD as u64, d),
        got,
        sent
    );
    println!("RSS at the end: {} KiB", rss_kib(pid));
}

/// Send for [`RUN`] with at most [`WINDOW`] unanswered datagrams; a reader
/// thread counts what arrives at `rx` (payloads of `PAYLOAD + header`).
fn blast(mut send: impl FnMut(&[u8]), rx: &UdpSocket, header: usize) -> (u64, u64, Duration) {
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = rx.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (g, s) = (got.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        let mut b = vec![0u8; 4096];
        while !s.load(Ordering::Relaxed) {
            if let Ok(n) = rx.recv(&mut b) {
                if n >= PAYLOAD + header {
                    g.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let buf = vec![0xA5u8; PAYLOAD];
    let mut sent = 0u64;
    // Datagrams given up as lost (so they no longer count as in flight).
    let mut written_off = 0u64;
    let t = Instant::now();
    let mut stalled = Instant::now();
    while t.elapsed() < RUN {
        let in_flight = sent - written_off - got.load(Ordering::Relaxed).min(sent - written_off);
        if in_flight < WINDOW {
            send(&buf);
            sent += 1;
            stalled = Instant::now();
        } else if stalled.elapsed() > Duration::from_millis(20) {
            written_off += in_flight;
            stalled = Instant::now();
        } else {
            std::hint::spin_loop();
        }
    }
    let d = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let g = got.load(Ordering::Relaxed);
    (sent, g, d)
}
