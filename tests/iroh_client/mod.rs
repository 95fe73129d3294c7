//! A raw iroh relay protocol v3 client for tests and the bench, written
//! from the protocol (iroh-relay 0.35 `protos/relay.rs`), independent of the
//! relay's own codec: HTTP upgrade, signed ClientInfo (ed25519 via ring),
//! then frames of type byte + u32 big-endian length + payload.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ring::signature::{Ed25519KeyPair, KeyPair};

pub const CLIENT_INFO: u8 = 2;
pub const SEND_PACKET: u8 = 4;
pub const RECV_PACKET: u8 = 5;
pub const KEEP_ALIVE: u8 = 6;
pub const PEER_GONE: u8 = 8;
pub const PING: u8 = 12;
pub const PONG: u8 = 13;
pub const HEALTH: u8 = 14;
pub const MAGIC: &[u8] = "RELAY🔑".as_bytes();

pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

pub fn keypair() -> Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

pub fn public(kp: &Ed25519KeyPair) -> [u8; 32] {
    kp.public_key().as_ref().try_into().unwrap()
}

pub fn frame(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![typ];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// ClientInfo with `message` (postcard `{version}`), signed over `signed`.
pub fn client_info(kp: &Ed25519KeyPair, message: &[u8], signed: &[u8]) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(kp.public_key().as_ref());
    p.extend_from_slice(kp.sign(signed).as_ref());
    p.extend_from_slice(message);
    frame(CLIENT_INFO, &p)
}

/// A correct version-3 ClientInfo.
pub fn hello(kp: &Ed25519KeyPair) -> Vec<u8> {
    client_info(kp, &[3], &[3])
}

pub fn upgrade_request(host: &str) -> Vec<u8> {
    upgrade_request_to(host, "/relay")
}

pub fn upgrade_request_to(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: iroh derp http\r\nConnection: Upgrade\r\n\r\n")
        .into_bytes()
}

pub struct Conn {
    pub s: Box<dyn Io>,
    pub tcp: TcpStream,
    pub buf: Vec<u8>,
    /// The response head of the upgrade.
    pub head: String,
}

impl Conn {
    /// Open TCP (optionally TLS) and send `first` right after the upgrade
    /// request in the same write; read the response head.
    pub fn open(tcp: TcpStream, tls: bool, host: &str, first: &[u8]) -> Conn {
        Self::open_path(tcp, tls, host, "/relay", first)
    }

    pub fn open_path(tcp: TcpStream, tls: bool, host: &str, path: &str, first: &[u8]) -> Conn {
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        tcp.set_nodelay(true).unwrap();
        let h = tcp.try_clone().unwrap();
        let s: Box<dyn Io> = if tls {
            let b = crate::common::tls_wrap(tcp, &[]);
            Box::new(b)
        } else {
            Box::new(tcp)
        };
        let mut c = Conn {
            s,
            tcp: h,
            buf: Vec::new(),
            head: String::new(),
        };
        let mut req = upgrade_request_to(host, path);
        req.extend_from_slice(first);
        c.send(&req);
        c.head = c.read_head();
        c
    }

    pub fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn read_head(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 4);
                return head;
            }
            if self.fill().unwrap_or(0) == 0 {
                return String::from_utf8_lossy(&self.buf).into_owned();
            }
        }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("send");
        self.s.flush().expect("flush");
    }

    pub fn try_send(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.s.write_all(b)?;
        self.s.flush()
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 65536];
        let n = self.s.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Next frame, or `None` on EOF (a read error counts as EOF too).
    pub fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() >= 5 + len {
                    let typ = self.buf[0];
                    let p = self.buf[5..5 + len].to_vec();
                    self.buf.drain(..5 + len);
                    return Some((typ, p));
                }
            }
            match self.fill() {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Next frame that is not a server Ping (those are answered).
    pub fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let (t, p) = self.frame()?;
            if t == PING {
                self.send(&frame(PONG, &p));
                continue;
            }
            return Some((t, p));
        }
    }

    /// Frames until EOF (bounded): the connection was closed by the server.
    pub fn until_eof(&mut self, d: Duration) -> Vec<(u8, Vec<u8>)> {
        let end = Instant::now() + d;
        let mut out = Vec::new();
        while Instant::now() < end {
            match self.frame() {
                Some(f) => out.push(f),
                None => return out,
            }
        }
        panic!("server did not close within {d:?}; got {out:?}");
    }

    pub fn send_packet(&mut self, dst: &[u8; 32], data: &[u8]) {
        let mut p = dst.to_vec();
        p.extend_from_slice(data);
        self.send(&frame(SEND_PACKET, &p));
    }

    /// Ping with `data`; wait for the matching Pong (other frames are kept
    /// in `skipped`).
    pub fn ping(&mut self, data: [u8; 8], skipped: &mut Vec<(u8, Vec<u8>)>) -> bool {
        self.send(&frame(PING, &data));
        while let Some((t, p)) = self.next() {
            if t == PONG && p == data {
                return true;
            }
            skipped.push((t, p));
        }
        false
    }
}

/// Upgrade and log in over plain HTTP.
pub fn connect(addr: SocketAddr, kp: &Ed25519KeyPair) -> Conn {
    let c = Conn::open(
        TcpStream::connect(addr).unwrap(),
        false,
        &addr.ip().to_string(),
        &hello(kp),
    );
    assert_eq!(c.status(), 101, "{}", c.head);
    c
}

/// Upgrade and log in over TLS (443).
pub fn connect_tls(addr: SocketAddr, kp: &Ed25519KeyPair) -> Conn {
    let c = Conn::open(
        TcpStream::connect(addr).unwrap(),
        true,
        &addr.ip().to_string(),
        &hello(kp),
    );
    assert_eq!(c.status(), 101, "{}", c.head);
    c
}

/// The relay's counters through its control socket (`stats`).
pub fn stats(data_dir: &std::path::Path) -> std::collections::HashMap<String, u64> {
    let mut s = std::os::unix::net::UnixStream::connect(data_dir.join("control.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"stats\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let line = out
        .trim()
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("stats: {out}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}
