//! Relaying through the real TURN server (issue 11, RFC 8656 §9–12) with
//! credentials taken from IMAP METADATA, as Delta Chat gets them:
//! permissions, Send/Data indications, ChannelBind and ChannelData both
//! ways, ChannelData on an unbound channel, data from a peer without a
//! permission; afterwards no client or peer address in the data folder
//! or the log (privacy, issue 11 item 5).
//!
//! Relay 127.0.0.112 with `turn_allow_loopback_peers_for_tests`; peers on
//! 127.0.0.113, the client on 127.0.0.114.

mod common;
mod turn_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::Relay;
use turn_support::*;

fn peer_sock() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.113:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
    let mut b = vec![0u8; 65536];
    s.recv_from(&mut b).ok().map(|(n, f)| (b[..n].to_vec(), f))
}

#[test]
fn relays_with_metadata_credentials() {
    let r = Relay::start_with(112, "turn_allow_loopback_peers_for_tests = true\n");
    let mut imap = r.login("turnrely1");
    let (host, port, user, pw) =
        parse_turn_metadata(&imap.cmd(TURN_METADATA).text()).expect("our own TURN credentials");
    assert_eq!((host.as_str(), port), ("127.0.0.112", 3478));
    let server: SocketAddr = format!("{host}:{port}").parse().unwrap();
    let mut c = Client::new("127.0.0.114", server, &user, &pw);
    let a = c.allocate(None);
    assert_eq!(a.class, 2, "{a:?}");
    let relayed = parse_xor_addr(a.get(0x0016).unwrap());

    let p1 = peer_sock();
    let p1a = p1.local_addr().unwrap();
    let p2 = peer_sock();
    let p2a = p2.local_addr().unwrap();

    // Without a permission nothing goes out, and nothing comes in.
    c.send_indication(p1a, b"too early");
    p1.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    assert!(recv(&p1).is_none(), "sent without a permission");
    p2.send_to(b"stranger", relayed).unwrap();
    c.sock
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    assert!(
        c.recv_raw().is_none(),
        "relayed from a peer without permission"
    );
    c.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    p1.set_read_timeout(Some(Duration::from_secs(3))).unwrap();

    // Permission → Send indication → peer; peer → Data indication.
    assert_eq!(c.create_permission(p1a).class, 2);
    c.send_indication(p1a, b"hello peer");
    let (got, from) = recv(&p1).expect("relayed to the peer");
    assert_eq!(got, b"hello peer");
    assert_eq!(from, relayed, "from the relayed address");
    p1.send_to(b"hello client", relayed).unwrap();
    let (d, _) = c.recv_raw().expect("Data indication");
    let d = decode(&d).unwrap();
    assert_eq!((d.method, d.class), (0x0007, 1), "{d:?}");
    assert_eq!(d.get(0x0013), Some(&b"hello client"[..]));
    assert_eq!(parse_xor_addr(d.get(0x0012).unwrap()), p1a);

    // ChannelBind → ChannelData both ways (also installs the permission).
    let cb = c.channel_bind(0x4000, p2a);
    assert_eq!(cb.class, 2, "{cb:?}");
    for i in 0..20u8 {
        let msg = vec![i; 1 + i as usize * 50];
        c.channel_data(0x4000, &msg);
        let (got, from) = recv(&p2).expect("ChannelData relayed");
        assert_eq!((got, from), (msg.clone(), relayed));
        p2.send_to(&msg, relayed).unwrap();
        let (back, _) = c.recv_raw().expect("ChannelData back");
        assert_eq!(&back[..2], &[0x40, 0x00]);
        let n = u16::from_be_bytes([back[2], back[3]]) as usize;
        assert_eq!(&back[4..4 + n], &msg[..]);
    }
    // Rebinding the channel to another peer, or the peer to another channel: 400.
    assert_eq!(c.channel_bind(0x4000, p1a).code(), Some(400));
    assert_eq!(c.channel_bind(0x4001, p2a).code(), Some(400));
    // Refreshing the same binding is fine.
    assert_eq!(c.channel_bind(0x4000, p2a).class, 2);

    // ChannelData for an unbound channel is dropped, for a bound one it flows.
    c.channel_data(0x4ABC, b"nobody");
    c.channel_data(0x4000, b"after");
    let (got, _) = recv(&p2).expect("bound channel still works");
    assert_eq!(got, b"after", "the unbound one went nowhere");
    p1.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(recv(&p1).is_none());

    // Another client cannot use this allocation's channel from its own 5-tuple.
    let other = Client::new("127.0.0.114", server, &user, &pw);
    other.channel_data(0x4000, b"spoof");
    p2.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(recv(&p2).is_none());

    // Refresh 0 deletes: the relayed port stops relaying.
    let z = c.request(REFRESH, &[(0x000D, vec![0, 0, 0, 0])]);
    assert_eq!(z.class, 2);
    c.channel_data(0x4000, b"after delete");
    assert!(recv(&p2).is_none());

    // Privacy: the client's and the peers' addresses are nowhere on disk or in the log.
    drop(imap);
    r.assert_no_panic();
    let needles = ["127.0.0.114", "127.0.0.113"];
    let log = r.stderr();
    for n in needles {
        assert!(!log.contains(n), "{n} in the log");
    }
    let mut stack = vec![r.data_dir()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                for n in needles {
                    assert!(
                        !b.windows(n.len()).any(|w| w == n.as_bytes()),
                        "{n} in {}",
                        p.display()
                    );
                }
            }
        }
    }
}
