//! A small TURN client for the tests, written from RFC 8489/8656 here,
//! independent of the relay's codec (it shares no code with src/turn), and
//! the way to get REST credentials the way Delta Chat does: IMAP METADATA.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use base64::Engine;
use md5::{Digest, Md5};

pub const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

pub const ALLOCATE: u16 = 0x0003;
pub const REFRESH: u16 = 0x0004;
pub const CREATE_PERMISSION: u16 = 0x0008;
pub const CHANNEL_BIND: u16 = 0x0009;

/// The answer to `GETMETADATA "" (/shared/vendor/deltachat/turn)` →
/// (host, port, user, password).
pub fn parse_turn_metadata(t: &str) -> Option<(String, u16, String, String)> {
    let i = t.find("}\r\n")?;
    let v = t[i + 3..].lines().next()?.trim_end_matches(')').to_string();
    let p: Vec<&str> = v.splitn(4, ':').collect();
    Some((
        p[0].to_string(),
        p[1].parse().ok()?,
        p[2].to_string(),
        p[3].to_string(),
    ))
}

pub const TURN_METADATA: &str = "GETMETADATA \"\" (/shared/vendor/deltachat/turn)";

pub fn rest_password(secret: &str, user: &str) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&k, user.as_bytes()).as_ref())
}

/// One attribute as (type, value).
pub type Attr = (u16, Vec<u8>);

pub fn xor_addr(a: SocketAddr) -> Vec<u8> {
    let IpAddr::V4(ip) = a.ip() else {
        panic!("v4 only")
    };
    let mut v = vec![0, 1];
    v.extend_from_slice(&(a.port() ^ 0x2112).to_be_bytes());
    for (b, m) in ip.octets().iter().zip(MAGIC) {
        v.push(b ^ m);
    }
    v
}

pub fn parse_xor_addr(v: &[u8]) -> SocketAddr {
    assert_eq!(v[1], 1);
    let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
    let ip = [
        v[4] ^ MAGIC[0],
        v[5] ^ MAGIC[1],
        v[6] ^ MAGIC[2],
        v[7] ^ MAGIC[3],
    ];
    SocketAddr::from((ip, port))
}

fn type_of(method: u16, class: u8) -> u16 {
    let c = class as u16;
    (method & 0xF)
        | ((method & 0x70) << 1)
        | ((method & 0xF80) << 2)
        | ((c & 1) << 4)
        | ((c & 2) << 7)
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    ring::hmac::sign(&k, data).as_ref().to_vec()
}

/// Encode a message; with `key`, MESSAGE-INTEGRITY then FINGERPRINT.
pub fn encode(
    method: u16,
    class: u8,
    tid: [u8; 12],
    attrs: &[Attr],
    key: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&type_of(method, class).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&MAGIC);
    m.extend_from_slice(&tid);
    let put = |m: &mut Vec<u8>, t: u16, v: &[u8]| {
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&(v.len() as u16).to_be_bytes());
        m.extend_from_slice(v);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
        let l = (m.len() - 20) as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
    };
    for (t, v) in attrs {
        put(&mut m, *t, v);
    }
    if let Some(k) = key {
        let l = (m.len() - 20 + 24) as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        let tag = hmac_sha1(k, &m);
        put(&mut m, 0x0008, &tag);
        let l = (m.len() - 20 + 8) as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        let crc = crc32fast::hash(&m) ^ 0x5354_554E;
        put(&mut m, 0x8028, &crc.to_be_bytes());
    }
    m
}

/// A decoded answer: class (0 request, 1 indication, 2 success, 3 error), attributes.
#[derive(Debug)]
pub struct Reply {
    pub method: u16,
    pub class: u8,
    pub tid: [u8; 12],
    pub attrs: Vec<Attr>,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn get(&self, t: u16) -> Option<&[u8]> {
        self.attrs.iter().find(|a| a.0 == t).map(|a| &a.1[..])
    }
    pub fn code(&self) -> Option<u16> {
        self.get(0x0009).map(|v| v[2] as u16 * 100 + v[3] as u16)
    }
    /// Does MESSAGE-INTEGRITY verify with `key`?
    pub fn integrity_ok(&self, key: &[u8]) -> bool {
        let mut off = 20;
        while off + 4 <= self.raw.len() {
            let t = u16::from_be_bytes([self.raw[off], self.raw[off + 1]]);
            let l = u16::from_be_bytes([self.raw[off + 2], self.raw[off + 3]]) as usize;
            if t == 0x0008 {
                let mut m = self.raw[..off].to_vec();
                let len = (off - 20 + 24) as u16;
                m[2..4].copy_from_slice(&len.to_be_bytes());
                return hmac_sha1(key, &m) == self.raw[off + 4..off + 24];
            }
            off += 4 + l.div_ceil(4) * 4;
        }
        false
    }
}

pub fn decode(raw: &[u8]) -> Option<Reply> {
    if raw.len() < 20 || raw[4..8] != MAGIC {
        return None;
    }
    let t = u16::from_be_bytes([raw[0], raw[1]]);
    let method = (t & 0xF) | ((t & 0xE0) >> 1) | ((t & 0x3E00) >> 2);
    let class = (((t >> 4) & 1) | ((t >> 7) & 2)) as u8;
    let mut attrs = Vec::new();
    let mut off = 20;
    while off + 4 <= raw.len() {
        let at = u16::from_be_bytes([raw[off], raw[off + 1]]);
        let l = u16::from_be_bytes([raw[off + 2], raw[off + 3]]) as usize;
        attrs.push((at, raw[off + 4..off + 4 + l].to_vec()));
        off += 4 + l.div_ceil(4) * 4;
    }
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&raw[8..20]);
    Some(Reply {
        method,
        class,
        tid,
        attrs,
        raw: raw.to_vec(),
    })
}

pub fn tid(n: u32) -> [u8; 12] {
    let mut t = [0x5Au8; 12];
    t[8..].copy_from_slice(&n.to_be_bytes());
    t
}

/// A TURN client on its own UDP socket (bound to `local`).
pub struct Client {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub user: String,
    pub password: String,
    pub realm: String,
    pub nonce: Vec<u8>,
    n: u32,
}

impl Client {
    pub fn new(local: &str, server: SocketAddr, user: &str, password: &str) -> Client {
        let sock = UdpSocket::bind((local, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Client {
            sock,
            server,
            user: user.into(),
            password: password.into(),
            realm: String::new(),
            nonce: Vec::new(),
            n: 0,
        }
    }

    pub fn key(&self) -> Vec<u8> {
        let mut h = Md5::new();
        h.update(format!("{}:{}:{}", self.user, self.realm, self.password));
        h.finalize().to_vec()
    }

    pub fn send_raw(&self, b: &[u8]) {
        self.sock.send_to(b, self.server).unwrap();
    }

    /// The next datagram from anywhere, or None after the timeout.
    pub fn recv_raw(&self) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => Some((buf[..n].to_vec(), from)),
            Err(_) => None,
        }
    }

    /// Send a request and wait for the answer with its transaction id.
    pub fn request_raw(&mut self, method: u16, attrs: &[Attr], key: Option<&[u8]>) -> Reply {
        self.n += 1;
        let t = tid(self.n);
        self.send_raw(&encode(method, 0, t, attrs, key));
        loop {
            let (b, _) = self.recv_raw().expect("an answer within 3 s");
            if let Some(r) = decode(&b) {
                if r.tid == t {
                    return r;
                }
            }
        }
    }

    /// An authenticated request: learns realm and nonce from a 401/438
    /// first when needed (RFC 8489 §9.2.3), then signs.
    pub fn request(&mut self, method: u16, attrs: &[Attr]) -> Reply {
        for _ in 0..3 {
            if self.nonce.is_empty() {
                let r = self.request_raw(method, attrs, None);
                if r.class == 2 {
                    return r;
                }
                self.realm = String::from_utf8(r.get(0x0014).expect("REALM").to_vec()).unwrap();
                self.nonce = r.get(0x0015).expect("NONCE").to_vec();
            }
            let mut a = attrs.to_vec();
            a.push((0x0006, self.user.as_bytes().to_vec()));
            a.push((0x0014, self.realm.as_bytes().to_vec()));
            a.push((0x0015, self.nonce.clone()));
            let key = self.key();
            let r = self.request_raw(method, &a, Some(&key));
            if r.code() == Some(438) {
                self.nonce = r.get(0x0015).expect("NONCE").to_vec();
                continue;
            }
            return r;
        }
        panic!("nonce kept going stale");
    }

    pub fn allocate(&mut self, lifetime: Option<u32>) -> Reply {
        let mut a = vec![(0x0019, vec![17, 0, 0, 0])];
        if let Some(l) = lifetime {
            a.push((0x000D, l.to_be_bytes().to_vec()));
        }
        self.request(ALLOCATE, &a)
    }

    pub fn create_permission(&mut self, peer: SocketAddr) -> Reply {
        self.request(CREATE_PERMISSION, &[(0x0012, xor_addr(peer))])
    }

    pub fn channel_bind(&mut self, ch: u16, peer: SocketAddr) -> Reply {
        let mut c = ch.to_be_bytes().to_vec();
        c.extend_from_slice(&[0, 0]);
        self.request(CHANNEL_BIND, &[(0x000C, c), (0x0012, xor_addr(peer))])
    }

    pub fn send_indication(&self, peer: SocketAddr, data: &[u8]) {
        let m = encode(
            0x0006,
            1,
            tid(0xFFFF_FFFF),
            &[(0x0012, xor_addr(peer)), (0x0013, data.to_vec())],
            None,
        );
        self.send_raw(&m);
    }

    pub fn channel_data(&self, ch: u16, data: &[u8]) {
        let mut m = ch.to_be_bytes().to_vec();
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(data);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
        self.send_raw(&m);
    }
}
