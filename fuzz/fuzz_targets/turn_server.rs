//! Fuzz the TURN state machine (`turn::proto::Turn`, RFC 8656 over UDP) with
//! the STUN codec under it: a sequence of operations — raw client
//! datagrams, structured requests (optionally signed with valid REST
//! long-term credentials, so the fuzzer gets past authentication),
//! datagrams from peers, and clock jumps with expiry. Nothing may panic;
//! every datagram we send to a client parses back as STUN or ChannelData;
//! the table never exceeds the relay port range; expiry frees every port.
#![no_main]

use std::net::SocketAddr;

use chatrelay::relay::turn_secret::password;
use chatrelay::turn::attr;
use chatrelay::turn::auth::long_term_key;
use chatrelay::turn::msg::{self, Builder, Class, Message};
use chatrelay::turn::proto::{Limits, Out, Sockets, Turn};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";
const REALM: &str = "fuzz.example";
const PORTS: (u16, u16) = (50000, 50003);

#[derive(Default)]
struct Fake {
    open: Vec<u16>,
}
impl Sockets for Fake {
    fn open(&mut self, port: u16, _client: SocketAddr) -> Option<SocketAddr> {
        if port == 50002 {
            return None; // a port some other program holds
        }
        assert!(!self.open.contains(&port));
        self.open.push(port);
        Some(SocketAddr::from(([203, 0, 113, 1], port)))
    }
    fn close(&mut self, port: u16) {
        let i = self.open.iter().position(|p| *p == port).expect("closing an open port");
        self.open.remove(i);
    }
}

struct Cur<'a>(&'a [u8]);
impl Cur<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (b, r) = self.0.split_first()?;
        self.0 = r;
        Some(*b)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, r) = self.0.split_at(n);
        self.0 = r;
        a
    }
}

fn check_out(o: &Out) {
    if let Out::Client(_, b) = o {
        assert!(b.len() <= 2048, "answer of {} bytes", b.len());
        if b[0] & 0xC0 == 0x40 {
            assert!(msg::parse_channel_data(b).is_some());
        } else {
            let m = Message::parse(b).expect("our own answer parses");
            // Responses carry FINGERPRINT; Data indications need none.
            assert_ne!(m.fingerprint_ok(), Some(false));
            if m.class != Class::Indication {
                assert_eq!(m.fingerprint_ok(), Some(true));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut t = Turn::new(REALM, SECRET, PORTS, Limits { per_user: 3, per_client_ip: 4, allow_private_peers: data.len() % 2 == 0 });
    let mut socks = Fake::default();
    let mut now: i64 = 1_700_000_000;
    let clients: Vec<SocketAddr> = (0..4).map(|i| SocketAddr::from(([198, 51, 100, 1 + (i % 2) as u8], 40000 + i as u16))).collect();
    let peers: Vec<SocketAddr> = vec![
        SocketAddr::from(([8, 8, 8, 8], 53)),
        SocketAddr::from(([127, 0, 0, 1], 9)),
        "[2001:4860::8888]:53".parse().unwrap(),
    ];
    let user = format!("{}:fuzz", now + 86_400);
    let key = long_term_key(&user, REALM, &password(SECRET, &user));
    let mut c = Cur(data);
    let mut n_ops = 0;
    while let Some(op) = c.u8() {
        n_ops += 1;
        if n_ops > 64 {
            break;
        }
        let who = clients[c.u8().unwrap_or(0) as usize % clients.len()];
        match op % 4 {
            0 => {
                let n = c.u8().unwrap_or(0) as usize * 2;
                let d = c.bytes(n).to_vec();
                if let Some(o) = t.from_client(now, who, &d, &mut socks) {
                    check_out(&o);
                }
            }
            1 => {
                let method = [msg::BINDING, msg::ALLOCATE, msg::REFRESH, msg::SEND, msg::CREATE_PERMISSION, msg::CHANNEL_BIND, 0x00B][c.u8().unwrap_or(0) as usize % 7];
                let class = [Class::Request, Class::Indication, Class::Success, Class::Error][c.u8().unwrap_or(0) as usize % 4];
                let flags = c.u8().unwrap_or(0);
                let tid = [c.u8().unwrap_or(0); 12];
                let mut b = Builder::new(method, class, &tid);
                for _ in 0..c.u8().unwrap_or(0) % 6 {
                    let sel = c.u8().unwrap_or(0);
                    let ty = match sel % 8 {
                        0 => attr::REQUESTED_TRANSPORT,
                        1 => attr::LIFETIME,
                        2 => attr::XOR_PEER_ADDRESS,
                        3 => attr::CHANNEL_NUMBER,
                        4 => attr::DATA,
                        5 => attr::EVEN_PORT,
                        6 => attr::REQUESTED_ADDRESS_FAMILY,
                        _ => u16::from(c.u8().unwrap_or(0)) << 8 | u16::from(c.u8().unwrap_or(0)),
                    };
                    let v = if ty == attr::XOR_PEER_ADDRESS && sel & 0x80 != 0 {
                        attr::encode_xor_addr(peers[sel as usize % peers.len()], &tid)
                    } else {
                        let n = c.u8().unwrap_or(0) as usize % 24;
                        c.bytes(n).to_vec()
                    };
                    b.attr(ty, &v);
                }
                if flags & 1 != 0 {
                    // Learn a fresh nonce the way a client does: from a 401.
                    let mut probe = Builder::new(msg::ALLOCATE, Class::Request, &[9; 12]);
                    probe.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
                    let probe = probe.fingerprint();
                    let Some(Out::Client(_, r)) = t.from_client(now, SocketAddr::from(([192, 0, 2, 99], 1)), &probe, &mut socks) else {
                        panic!("no 401 to an unsigned Allocate");
                    };
                    let r = Message::parse(&r).unwrap();
                    let nonce = r.get(attr::NONCE).expect("401 has a NONCE").to_vec();
                    b.attr(attr::USERNAME, user.as_bytes()).attr(attr::REALM, REALM.as_bytes()).attr(attr::NONCE, &nonce);
                    b.integrity(&key);
                }
                let d = if flags & 2 != 0 { b.fingerprint() } else { b.finish() };
                if let Some(o) = t.from_client(now, who, &d, &mut socks) {
                    check_out(&o);
                }
            }
            2 => {
                let port = PORTS.0 + u16::from(c.u8().unwrap_or(0) % 4);
                let from = peers[c.u8().unwrap_or(0) as usize % peers.len()];
                let n = c.u8().unwrap_or(0) as usize;
                let d = c.bytes(n).to_vec();
                if let Some((_, b)) = t.from_peer(now, port, from, &d) {
                    check_out(&Out::Client(who, b));
                }
            }
            _ => {
                now += i64::from(c.u8().unwrap_or(0)) * 30;
                t.expire(now, &mut socks);
            }
        }
        assert!(t.allocations() <= 3, "more allocations than usable ports");
        assert_eq!(t.allocations(), socks.open.len());
    }
    now += 10_000;
    t.expire(now, &mut socks);
    assert_eq!(t.allocations(), 0);
    assert!(socks.open.is_empty(), "expiry closes every relay socket");
});
