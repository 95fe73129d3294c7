//! The iroh relay (protocol v3) served by the relay itself, against a raw
//! v3 client written from the protocol (`tests/iroh_client`): upgrade on the
//! plain-HTTP relay port and on 443, forwarding both ways, PeerGone,
//! Ping/Pong, probes, and every bad input of issue 11's list.
//! Addresses 127.0.0.100–104.

mod common;
mod iroh_client;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{https_get, Relay};
use iroh_client::*;

const PORT: u16 = 3340;

fn relay(n: u8, extra: &str) -> Relay {
    Relay::start_with(n, &format!("iroh_relay_http_port = {PORT}\n{extra}"))
}

fn http_get(r: &Relay, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(r.sock(PORT)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn health_text(frames: &[(u8, Vec<u8>)]) -> String {
    let h: Vec<String> = frames
        .iter()
        .filter(|(t, _)| *t == HEALTH)
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(h.len(), 1, "expected one Health frame, got {frames:?}");
    h[0].clone()
}

#[test]
fn two_clients_forward_both_ways() {
    let r = relay(100, "");
    let addr = r.sock(PORT);
    let (ka, kb) = (keypair(), keypair());
    let (pa, pb) = (public(&ka), public(&kb));
    let mut a = connect(addr, &ka);
    assert!(
        a.head
            .to_ascii_lowercase()
            .contains("upgrade: iroh derp http"),
        "{}",
        a.head
    );
    // B over TLS on 443: the same relay behind the ALPN-less HTTPS path.
    let mut b = connect_tls(r.sock(443), &kb);
    // A's packet may race B's registration only if B were not connected
    // yet; both upgrades completed, so wait for the registry with a ping.
    assert!(b.ping(*b"ready..b", &mut Vec::new()));

    a.send_packet(&pb, b"hello from a");
    let (t, p) = b.next().unwrap();
    assert_eq!(t, RECV_PACKET);
    assert_eq!(&p[..32], &pa);
    assert_eq!(&p[32..], b"hello from a");

    let big = vec![0xabu8; 64 * 1024];
    b.send_packet(&pa, &big);
    let (t, p) = a.next().unwrap();
    assert_eq!((t, &p[..32]), (RECV_PACKET, &pb[..]));
    assert_eq!(p.len(), 32 + big.len());

    let mut skipped = Vec::new();
    assert!(a.ping(*b"12345678", &mut skipped));
    assert!(skipped.is_empty(), "{skipped:?}");
    a.send(&frame(KEEP_ALIVE, &[]));
    a.send(&frame(7, &[1])); // NotePreferred: ignored

    // To a key nobody holds: dropped, the connection stays.
    a.send_packet(&public(&keypair()), b"nobody");
    assert!(a.ping(*b"stillok!", &mut Vec::new()));

    let st = stats(&r.data_dir());
    assert_eq!(st["iroh_clients"], 2, "{st:?}");
    assert_eq!(st["iroh_accepted"], 2, "{st:?}");
    assert_eq!(st["iroh_packets"], 2, "{st:?}");
    assert_eq!(st["iroh_bytes"], 12 + 64 * 1024, "{st:?}");
    assert_eq!(st["iroh_pairs"], 2, "{st:?}");
    assert_eq!(st["iroh_dropped_unknown"], 1, "{st:?}");

    // A leaves: B, whom A sent to, is told.
    drop(a);
    let (t, p) = b.next().unwrap();
    assert_eq!((t, p.as_slice()), (PEER_GONE, &pa[..]));

    // A second connection with B's key replaces the first.
    let mut b2 = connect(addr, &kb);
    let end = b.until_eof(Duration::from_secs(10));
    assert!(health_text(&end).contains("replaced"), "{end:?}");
    assert!(b2.ping(*b"b2alive!", &mut Vec::new()));
    assert!(common::wait_until(Duration::from_secs(5), || stats(
        &r.data_dir()
    )["iroh_clients"]
        == 1));
    r.assert_no_panic();
}

#[test]
fn probes_and_plain_requests() {
    let r = relay(101, "");
    let host = r.ip();
    let ping = https_get(r.sock(443), &host, "/ping");
    assert_eq!(ping.status, 200, "{}", ping.head);
    assert!(http_get(&r, "/ping", "").starts_with("HTTP/1.1 200"));
    let g = http_get(
        &r,
        "/generate_204",
        "X-Tailscale-Challenge: abc.DEF-12_3\r\n",
    );
    assert!(g.starts_with("HTTP/1.1 204"), "{g}");
    assert!(
        g.contains("X-Tailscale-Response: response abc.DEF-12_3\r\n"),
        "{g}"
    );
    assert!(!g.to_ascii_lowercase().contains("content-length"), "{g}");
    // A challenge with other characters is not echoed.
    let g = http_get(
        &r,
        "/generate_204",
        "X-Tailscale-Challenge: a b<script>\r\n",
    );
    assert!(
        g.starts_with("HTTP/1.1 204") && !g.contains("X-Tailscale-Response"),
        "{g}"
    );
    // The relay path without the upgrade: a clear 400.
    let bad = http_get(&r, "/relay", "");
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("Upgrade: iroh derp http"),
        "{bad}"
    );
    let ws = http_get(&r, "/derp", "Upgrade: websocket\r\n");
    assert!(ws.starts_with("HTTP/1.1 400"), "{ws}");
    // /derp is the legacy alias of /relay.
    let kp = keypair();
    let tcp = TcpStream::connect(r.sock(PORT)).unwrap();
    let mut c = Conn::open_path(tcp, false, "x", "/derp", &hello(&kp));
    assert_eq!(c.status(), 101, "{}", c.head);
    assert!(c.ping(*b"derp....", &mut Vec::new()));
    r.assert_no_panic();
}

/// Each malformed first exchange gets a Health frame naming the problem
/// (where there is a frame to judge) and the connection is closed; nothing
/// is registered; the relay keeps serving.
#[test]
fn bad_handshakes_are_refused_with_health() {
    let mut r = relay(102, "");
    let addr = r.sock(PORT);
    let kp = keypair();
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "garbage after upgrade",
            b"GET / HTTP/1.1\r\nthis is not a frame at all......".to_vec(),
            Some("expected a ClientInfo"),
        ),
        (
            "wrong magic",
            {
                let mut f = hello(&kp);
                f[5] = b'X';
                f
            },
            Some("wrong magic"),
        ),
        (
            "bad signature",
            client_info(&kp, &[3], &[4]),
            Some("signature"),
        ),
        ("version 4", client_info(&kp, &[4], &[4]), Some("version 4")),
        ("version 2", client_info(&kp, &[2], &[2]), Some("version 2")),
        (
            "empty message",
            client_info(&kp, &[], &[]),
            Some("not a version"),
        ),
        (
            "not a ClientInfo first",
            frame(PING, b"12345678"),
            Some("expected a ClientInfo"),
        ),
        (
            "oversize frame header",
            vec![CLIENT_INFO, 0x00, 0x20, 0x00, 0x00],
            Some("over the limit"),
        ),
        (
            "frame over 1 MiB",
            vec![SEND_PACKET, 0xff, 0xff, 0xff, 0xff],
            Some("expected a ClientInfo"),
        ),
        (
            "ClientInfo too long for one",
            vec![CLIENT_INFO, 0x00, 0x00, 0x04, 0x00],
            Some("over the limit"),
        ),
        (
            "truncated frame then disconnect",
            {
                let mut f = hello(&kp);
                f.truncate(40);
                f
            },
            None,
        ),
    ];
    for (name, first, want) in &cases {
        let mut c = Conn::open(TcpStream::connect(addr).unwrap(), false, "x", first);
        assert_eq!(c.status(), 101, "{name}: {}", c.head);
        if want.is_none() {
            c.tcp.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let t0 = Instant::now();
        let frames = c.until_eof(Duration::from_secs(15));
        match want {
            Some(w) => {
                let h = health_text(&frames);
                assert!(h.contains(w), "{name}: health {h:?}, want {w:?}");
                assert!(t0.elapsed() < Duration::from_secs(5), "{name}: slow close");
            }
            None => assert!(frames.is_empty(), "{name}: {frames:?}"),
        }
    }
    let st = stats(&r.data_dir());
    assert_eq!(st["iroh_accepted"], 0, "{st:?}");
    assert_eq!(st["iroh_refused"], cases.len() as u64, "{st:?}");
    assert_eq!(st["iroh_clients"], 0, "{st:?}");

    // After the handshake: an oversize frame, a truncated frame, and a
    // frame only servers send.
    let (ka, kb) = (keypair(), keypair());
    let mut a = connect(addr, &ka);
    a.send(&[SEND_PACKET, 0x00, 0x10, 0x00, 0x00]);
    let end = a.until_eof(Duration::from_secs(10));
    assert!(health_text(&end).contains("over the limit"), "{end:?}");
    let mut a = connect(addr, &ka);
    let mut f = frame(SEND_PACKET, &[0u8; 100]);
    f.truncate(50);
    a.send(&f);
    a.tcp.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(a.until_eof(Duration::from_secs(10)).is_empty());
    let mut a = connect(addr, &ka);
    a.send(&frame(RECV_PACKET, &[0u8; 40]));
    let end = a.until_eof(Duration::from_secs(10));
    assert!(health_text(&end).contains("does not send"), "{end:?}");
    // A packet over 64 KiB inside a frame under the limit is refused too.
    let mut a = connect(addr, &ka);
    let mut p = public(&kb).to_vec();
    p.extend_from_slice(&[0u8; 64 * 1024 + 1]);
    a.send(&[SEND_PACKET]);
    let _ = a.try_send(&((p.len() as u32).to_be_bytes()));
    let _ = a.try_send(&p);
    let end = a.until_eof(Duration::from_secs(10));
    assert!(
        !end.is_empty() && end.iter().all(|(t, _)| *t == HEALTH),
        "{end:?}"
    );

    // Still serving, relay and IMAP.
    let mut b = connect(addr, &kb);
    assert!(b.ping(*b"fine....", &mut Vec::new()));
    r.assert_serving();
}

/// A client that never reads: its queue stays bounded (packets for it are
/// dropped), a third client keeps being served promptly, memory does not
/// grow with what is sent, and once the kernel's buffers towards it are
/// full its writes time out and it is cut.
#[test]
fn a_client_that_never_reads_stays_bounded() {
    let r = relay(103, "");
    let addr = r.sock(PORT);
    let (ks, kq, kc) = (keypair(), keypair(), keypair());
    // The silent client: upgrades, logs in, then never reads again.
    let silent = Conn::open(TcpStream::connect(addr).unwrap(), false, "x", &hello(&kq));
    assert_eq!(silent.status(), 101);
    let pq = public(&kq);
    let mut sender = connect(addr, &ks);
    let mut other = connect(addr, &kc);
    let pc = public(&kc);
    assert!(other.ping(*b"regist..", &mut Vec::new()));
    let (rss0, _) = r.rss_kib();

    // 60 kB packets aimed at the silent client from a thread: 2,000 at full
    // speed (120 MB), then one every 100 ms until the relay cuts it (its
    // write has been stuck for 10 s by then); bounded by 60 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let t0 = Instant::now();
    let flood = std::thread::spawn(move || {
        let data = vec![0x5au8; 60_000];
        let mut n = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed)
            && t0.elapsed() < Duration::from_secs(60)
        {
            sender.send_packet(&pq, &data);
            n += 1;
            if n > 2000 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        sender.send_packet(&pc, b"after the flood");
        (sender, n)
    });
    // Meanwhile the third client's round trips to the relay stay short.
    let mut worst = Duration::ZERO;
    let mut rounds = 0;
    let mut peak = rss0;
    let mut cut = false;
    while !flood.is_finished() {
        let t = Instant::now();
        assert!(other.ping(*b"duringfl", &mut Vec::new()));
        worst = worst.max(t.elapsed());
        rounds += 1;
        peak = peak.max(r.rss_kib().0);
        if rounds % 10 == 0 && stats(&r.data_dir())["iroh_clients"] == 2 {
            cut = true;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut sender, sent) = flood.join().unwrap();
    let (ty, p) = other.next().unwrap();
    assert_eq!((ty, &p[32..]), (RECV_PACKET, &b"after the flood"[..]));
    assert!(sender.ping(*b"sender..", &mut Vec::new()));
    let st = stats(&r.data_dir());
    assert!(
        cut,
        "the silent client was not cut after {sent} packets: {st:?}"
    );
    assert!(st["iroh_dropped_full"] > 100, "{st:?}");
    assert!(
        peak < rss0 + 8 * 1024,
        "RSS grew from {rss0} to {peak} KiB with a silent client"
    );
    assert!(
        worst < Duration::from_millis(500),
        "round trip of the other client: {worst:?} (worst of {rounds})"
    );
    drop(silent.s);
    r.assert_no_panic();
}

/// 10,000 connect attempts in a bounded loop: half complete the handshake
/// and leave, half drop right after the upgrade request. Nothing leaks.
#[test]
fn ten_thousand_connects() {
    let mut r = relay(104, "iroh_relay_max_clients = 64\n");
    let addr = r.sock(PORT);
    let kp = keypair();
    let (rss0, _) = r.rss_kib();
    let t0 = Instant::now();
    let mut ok = 0;
    for i in 0..10_000 {
        assert!(t0.elapsed() < Duration::from_secs(240), "stopped at {i}");
        let tcp = TcpStream::connect(addr).unwrap();
        if i % 2 == 0 {
            let c = Conn::open(tcp, false, "x", &hello(&kp));
            if c.status() == 101 {
                ok += 1;
            }
            drop(c.s);
        } else {
            let mut t = tcp;
            let _ = std::io::Write::write_all(&mut t, &upgrade_request("x"));
        }
    }
    assert!(ok > 4_900, "{ok} of 5000 handshakes got 101");
    assert!(common::wait_until(Duration::from_secs(30), || stats(
        &r.data_dir()
    )["iroh_clients"]
        == 0));
    let (rss1, _) = r.rss_kib();
    assert!(rss1 < rss0 + 16 * 1024, "RSS {rss0} -> {rss1} KiB");
    let mut c = connect(addr, &keypair());
    assert!(c.ping(*b"after...", &mut Vec::new()));
    r.assert_serving();
    eprintln!("10,000 connects in {:?}", t0.elapsed());
}

fn irohrelay_metadata(r: &Relay, user: &str) -> String {
    let mut c = r.login(user);
    let g = c.cmd("GETMETADATA \"\" (/shared/vendor/deltachat/irohrelay)");
    assert!(g.ok(), "{g:?}");
    g.text()
}

/// Without `iroh_relay`, METADATA names our own relay: a self-signed relay
/// its plain-HTTP port (the client trusts only public certificates); an
/// external relay wins and ours is off; an empty value advertises none.
#[test]
fn advertised_by_default_external_wins() {
    let r = relay(105, "");
    let t = irohrelay_metadata(&r, "irohmeta1");
    assert!(t.contains("{23}\r\nhttp://127.0.0.105:3340)"), "{t}");
    drop(r);

    let r = Relay::start_with(105, "http_port = 80\n");
    let t = irohrelay_metadata(&r, "irohmeta2");
    assert!(t.contains("\r\nhttp://127.0.0.105)"), "{t}");
    let mut c = connect(r.sock(80), &keypair());
    assert!(c.ping(*b"port80..", &mut Vec::new()));
    drop(r);

    let r = relay(105, "iroh_relay = https://iroh.example.org\n");
    let t = irohrelay_metadata(&r, "irohmeta3");
    assert!(t.contains("\r\nhttps://iroh.example.org)"), "{t}");
    let g = https_get(r.sock(443), &r.ip(), "/relay");
    assert_eq!(g.status, 404, "our relay is off when another is configured");
    assert!(TcpStream::connect(r.sock(PORT)).is_err(), "no relay port");
    drop(r);

    let r = relay(105, "iroh_relay =\n");
    let t = irohrelay_metadata(&r, "irohmeta4");
    assert!(t.contains("irohrelay NIL"), "{t}");
}

/// `iroh_relay_max_clients` caps the clients (503 beyond); a client that
/// sends nothing for `iroh_relay_idle_timeout` is dropped, one that answers
/// the relay's pings stays.
#[test]
fn client_cap_and_idle_timeout() {
    let r = relay(
        106,
        "iroh_relay_max_clients = 2\niroh_relay_idle_timeout = 3\n",
    );
    let addr = r.sock(PORT);
    let silent = connect(addr, &keypair());
    let mut live = connect(addr, &keypair());
    let full = Conn::open(
        TcpStream::connect(addr).unwrap(),
        false,
        "x",
        &hello(&keypair()),
    );
    assert_eq!(full.status(), 503, "{}", full.head);
    let t0 = Instant::now();
    // The live one answers pings for 6 s (in a thread), then is checked.
    let live_thread = std::thread::spawn(move || {
        live.tcp
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while t0.elapsed() < Duration::from_secs(6) {
            if let Some((t, p)) = live.frame() {
                assert_eq!(t, PING);
                live.send(&frame(PONG, &p));
            } else {
                live.buf.clear();
            }
        }
        live.tcp
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        live
    });
    let mut silent = silent;
    // The silent one reads (sees the pings) but never answers.
    let mut pings = 0;
    while let Some((t, _)) = silent.frame() {
        assert_eq!(t, PING);
        pings += 1;
        assert!(t0.elapsed() < Duration::from_secs(15), "not dropped");
    }
    let idle = t0.elapsed();
    assert!(pings >= 1, "the relay pinged");
    assert!(
        idle >= Duration::from_secs(2) && idle < Duration::from_secs(6),
        "{idle:?}"
    );
    let mut live = live_thread.join().unwrap();
    assert!(live.ping(*b"alive...", &mut Vec::new()));
    assert_eq!(stats(&r.data_dir())["iroh_clients"], 1);
    r.assert_no_panic();
}
