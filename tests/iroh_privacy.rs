//! Privacy of the iroh relay (issue 11, item 5; design principle 5): relay
//! clients connect only from 127.0.0.108 and do a full exchange (plain and
//! TLS upgrades, refused handshakes, forwarding, PeerGone, probes, a
//! replaced connection) with the most verbose logging. Afterwards neither
//! the client address nor a client key appears in the data folder, the
//! files beside it, or the relay's output. Relay on 127.0.0.107.

mod common;
mod iroh_client;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::Relay;
use iroh_client::*;

const SRC: [u8; 4] = [127, 0, 0, 108];
const PORT: u16 = 3340;

fn tcp_from(dst: SocketAddr) -> TcpStream {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let src: SocketAddr = (std::net::Ipv4Addr::from(SRC), 0).into();
    bind(&fd, &src).unwrap();
    connect(&fd, &dst).unwrap();
    TcpStream::from(fd)
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn client_address_and_keys_are_neither_stored_nor_logged() {
    // Single test in this binary: setting the environment is safe here.
    std::env::set_var("CHATRELAY_LOG", "trace");
    let mut r = Relay::start_with(107, &format!("iroh_relay_http_port = {PORT}\n"));
    let plain = r.sock(PORT);
    let (ka, kb) = (keypair(), keypair());
    let (pa, pb) = (public(&ka), public(&kb));

    let mut a = Conn::open(tcp_from(plain), false, &r.ip(), &hello(&ka));
    assert_eq!(a.status(), 101);
    let mut b = Conn::open(tcp_from(r.sock(443)), true, &r.ip(), &hello(&kb));
    assert_eq!(b.status(), 101);
    assert!(b.ping(*b"regist..", &mut Vec::new()));
    a.send_packet(&pb, b"a to b");
    assert_eq!(b.next().unwrap().0, RECV_PACKET);
    b.send_packet(&pa, b"b to a");
    assert_eq!(a.next().unwrap().0, RECV_PACKET);
    a.send_packet(&public(&keypair()), b"to nobody");
    drop(a);
    assert_eq!(b.next().unwrap().0, PEER_GONE);
    // Refused handshakes and bad frames.
    for first in [
        client_info(&ka, &[3], &[4]),
        client_info(&ka, &[4], &[4]),
        b"garbage garbage".to_vec(),
    ] {
        let mut c = Conn::open(tcp_from(plain), false, "x", &first);
        let _ = c.until_eof(Duration::from_secs(10));
    }
    let mut c = Conn::open(tcp_from(plain), false, "x", &hello(&ka));
    c.send(&[SEND_PACKET, 0xff, 0, 0, 0]);
    let _ = c.until_eof(Duration::from_secs(10));
    // Replaced by a second connection with the same key.
    let _b2 = Conn::open(tcp_from(plain), false, "x", &hello(&kb));
    let _ = b.until_eof(Duration::from_secs(10));
    // Probes.
    for path in ["/ping", "/generate_204", "/relay"] {
        let mut s = tcp_from(plain);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(
            &mut s,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut out);
        assert!(out.starts_with(b"HTTP/1.1 "), "{path}");
    }
    let st = stats(&r.data_dir());
    assert!(st["iroh_packets"] >= 2 && st["iroh_refused"] >= 3, "{st:?}");

    // The restart truncates the log: keep the first run's.
    let mut log = std::fs::read(r.stderr_path()).unwrap();
    r.restart();
    r.kill9();
    log.extend(std::fs::read(r.stderr_path()).unwrap());
    assert!(
        String::from_utf8_lossy(&log).contains("iroh relay: client connected"),
        "trace logging was on"
    );

    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("dotted".into(), b"127.0.0.108".to_vec()),
        ("packed".into(), SRC.to_vec()),
        (
            "packed reversed".into(),
            SRC.iter().rev().copied().collect(),
        ),
    ];
    for (name, k) in [("key a", pa), ("key b", pb)] {
        needles.push((format!("{name} raw"), k.to_vec()));
        needles.push((format!("{name} hex"), hex(&k).into_bytes()));
        needles.push((format!("{name} short hex"), hex(&k[..5]).into_bytes()));
    }
    let mut all = Vec::new();
    files(r.dir.path(), &mut all);
    assert!(all.len() > 3, "{all:?}");
    let mut hits = Vec::new();
    let mut contents: Vec<(String, Vec<u8>)> = vec![("first run's log".into(), log)];
    for f in &all {
        contents.push((f.display().to_string(), std::fs::read(f).unwrap()));
    }
    for (f, data) in &contents {
        for (name, n) in &needles {
            if data.windows(n.len()).any(|w| w == n.as_slice()) {
                hits.push(format!("{f}: {name}"));
            }
        }
    }
    assert!(hits.is_empty(), "found: {hits:#?}");
}
