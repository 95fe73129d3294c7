//! Realtime metadata (spec §9.3, §11.2; issue 6 item 5): TURN REST
//! credentials and the iroh relay over `GETMETADATA ""`, both absent (NIL)
//! when not configured. The HMAC is checked with a SHA-1/HMAC written here,
//! independent of the relay's crypto library.
//!
//! Relays: 127.0.0.243, 127.0.0.244.

mod common;

use common::{now_unix, Relay};

const TURN: &str = "/shared/vendor/deltachat/turn";
const IROH: &str = "/shared/vendor/deltachat/irohrelay";

// ------------------------------------------------------------------ SHA-1, HMAC, base64

fn sha1(msg: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut m = msg.to_vec();
    let bits = (msg.len() as u64) * 8;
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    m.extend_from_slice(&bits.to_be_bytes());
    for block in m.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&sha1(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha1(&inner));
    sha1(&outer)
}

fn b64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn own_hmac_sha1_matches_known_vectors() {
    assert_eq!(
        hex(&sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    // RFC 2202 test cases 1, 2 and 6.
    assert_eq!(
        hex(&hmac_sha1(&[0x0b; 20], b"Hi There")),
        "b617318655057264e28bc0b6fb378c8ef146be00"
    );
    assert_eq!(
        hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
    assert_eq!(
        hex(&hmac_sha1(
            &[0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "aa4ae5e15272d00e95705637ce8a3b55ed402112"
    );
    // The TURN scheme's own example (openssl dgst -sha1 -hmac north).
    assert_eq!(
        b64(&hmac_sha1(b"north", b"1700000000")),
        "CWyHi3zCeWqXBir9thl4m+iZPRY="
    );
    assert_eq!(b64(b"ab"), "YWI=");
    assert_eq!(b64(b"a"), "YQ==");
}

// ------------------------------------------------------------------ IMAP

/// `GETMETADATA "" (keys…)`: each key's value (None for NIL), in order.
fn server_meta(c: &mut common::Imap, keys: &[&str]) -> Vec<Option<String>> {
    let r = c.cmd(&format!("GETMETADATA \"\" ({})", keys.join(" ")));
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    let mut rest = r.lines()[0].clone();
    let p = rest.find('(').unwrap();
    rest = rest[p + 1..].to_string();
    let mut out = Vec::new();
    for k in keys {
        rest = rest.trim_start().to_string();
        assert!(rest.starts_with(k), "expected {k} in {rest:?}");
        rest = rest[k.len() + 1..].to_string();
        if let Some(r2) = rest.strip_prefix("NIL") {
            out.push(None);
            rest = r2.to_string();
        } else {
            assert!(rest.starts_with('{'), "value as literal: {rest:?}");
            let close = rest.find("}\r\n").unwrap();
            let n: usize = rest[1..close].parse().unwrap();
            let v = rest[close + 3..close + 3 + n].to_string();
            rest = rest[close + 3 + n..].to_string();
            out.push(Some(v));
        }
    }
    assert_eq!(rest.trim(), ")");
    out
}

/// TURN REST credentials (`host:port:expiry:base64(HMAC-SHA1(secret, expiry))`,
/// expiry now + 5 days) and the configured iroh relay; in the one command
/// Delta Chat core sends.
#[test]
fn turn_credentials_and_iroh_relay_from_config() {
    let r = Relay::start_with(
        243,
        "turn_host = turn.example.org\nturn_port = 3479\nturn_secret = s3cret-Shared\n\
         iroh_relay = https://iroh.example.org\n",
    );
    let mut c = r.login("turnuser1");
    let keys = [
        "/shared/comment",
        "/shared/admin",
        IROH,
        TURN,
        "/shared/vendor/deltachat/maxsmtprecipients",
    ];
    let before = now_unix();
    let v = server_meta(&mut c, &keys);
    let after = now_unix();
    assert_eq!(v[0], None);
    assert_eq!(v[2].as_deref(), Some("https://iroh.example.org"));
    assert_eq!(v[4].as_deref(), Some("1000"));
    let turn = v[3].clone().expect("turn credentials");
    let parts: Vec<&str> = turn.splitn(4, ':').collect();
    assert_eq!(parts.len(), 4, "{turn}");
    assert_eq!(parts[0], "turn.example.org");
    assert_eq!(parts[1], "3479");
    let expiry: i64 = parts[2].parse().unwrap();
    assert!(
        (before + 5 * 86400..=after + 5 * 86400).contains(&expiry),
        "expiry {expiry} not now + 5 days"
    );
    assert_eq!(
        parts[3],
        b64(&hmac_sha1(b"s3cret-Shared", parts[2].as_bytes())),
        "{turn}"
    );

    // Fresh each time, and also without the list parentheses.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r2 = c.cmd(&format!("GETMETADATA \"\" {TURN}"));
    assert!(r2.ok(), "{r2:?}");
    let t2 = r2.text();
    let i = t2.find("}\r\n").unwrap();
    let turn2 = t2[i + 3..].trim_end_matches(')').to_string();
    let p2: Vec<&str> = turn2.splitn(4, ':').collect();
    assert!(
        p2[2].parse::<i64>().unwrap() > expiry,
        "{turn} then {turn2}"
    );
    assert_eq!(p2[3], b64(&hmac_sha1(b"s3cret-Shared", p2[2].as_bytes())));

    // Server entries are not per-mailbox and not settable.
    let s = c.cmd(&format!("SETMETADATA \"\" ({TURN} \"x\")"));
    assert!(s.no(), "{s:?}");
    r.assert_no_panic();
}

/// Not configured (and our own TURN server off, `turn_port = 0`; with it on,
/// see tests/turn_metadata.rs): both NIL. A TURN host without a secret
/// counts as not configured.
#[test]
fn turn_and_iroh_absent_when_not_configured() {
    let r = Relay::start_with(244, "turn_port = 0\n");
    let mut c = r.login("turnuser2");
    assert_eq!(server_meta(&mut c, &[TURN, IROH]), [None, None]);
    drop(c);
    drop(r);

    let r = Relay::start_with(
        244,
        "turn_host = turn.example.org\niroh_relay =\nturn_port = 0\n",
    );
    let mut c = r.login("turnuser3");
    assert_eq!(server_meta(&mut c, &[TURN, IROH]), [None, None]);
    r.assert_no_panic();
}
