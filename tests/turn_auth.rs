//! TURN authentication and allocation rules against the real relay over
//! UDP (issue 11, RFC 8489 §9.2, RFC 8656 §7–8): 401 with REALM and NONCE,
//! wrong password, expired REST user name, bad nonce (438), unknown
//! comprehension-required attribute (420), truncated headers, the
//! per-user quota (486), lifetime clamping, Refresh 0, private peers (403).
//!
//! Relays: 127.0.0.110, 127.0.0.111 (UDP 3478 and relay ports there).

mod common;
mod turn_support;

use std::net::SocketAddr;

use common::{now_unix, Relay};
use turn_support::*;

fn secret(r: &Relay) -> String {
    std::fs::read_to_string(r.data_dir().join("turn.secret"))
        .unwrap()
        .trim()
        .to_string()
}

fn client(r: &Relay, user: &str, pw: &str) -> Client {
    Client::new(
        &r.ip(),
        r.sock(3478).to_string().parse::<SocketAddr>().unwrap(),
        user,
        pw,
    )
}

#[test]
fn binding_and_authentication() {
    let r = Relay::start(110);
    let s = secret(&r);
    assert!(s.len() >= 40, "a random secret, base64 of 32 bytes: {s:?}");
    let user = format!("{}", now_unix() + 3600);

    // Binding (RFC 8489 §7.3.1): the reflexive address, no credentials.
    let mut c = client(&r, &user, &rest_password(&s, &user));
    let b = c.request_raw(0x0001, &[], None);
    assert_eq!(b.class, 2, "{b:?}");
    assert_eq!(
        parse_xor_addr(b.get(0x0020).unwrap()),
        c.sock.local_addr().unwrap()
    );

    // No credentials: 401 with REALM (the mail domain) and NONCE.
    let a = c.request_raw(ALLOCATE, &[(0x0019, vec![17, 0, 0, 0])], None);
    assert_eq!(a.code(), Some(401), "{a:?}");
    assert_eq!(a.get(0x0014), Some(&b"127.0.0.110"[..]));
    assert!(a.get(0x0015).is_some_and(|n| !n.is_empty()));

    // Right credentials: an allocation on the relay's address, in the range.
    let ok = c.allocate(None);
    assert_eq!(ok.class, 2, "{ok:?}");
    assert!(
        ok.integrity_ok(&c.key()),
        "response signed with the long-term key"
    );
    let relayed = parse_xor_addr(ok.get(0x0016).unwrap());
    assert_eq!(relayed.ip().to_string(), "127.0.0.110");
    assert!((49152..=49407).contains(&relayed.port()), "{relayed}");
    assert_eq!(
        ok.get(0x000D),
        Some(&600u32.to_be_bytes()[..]),
        "default lifetime"
    );

    // `timestamp:anything` user names are accepted too.
    let u2 = format!("{}:alice", now_unix() + 3600);
    let mut c2 = client(&r, &u2, &rest_password(&s, &u2));
    assert_eq!(c2.allocate(None).class, 2);

    // Wrong password → 401.
    let mut bad = client(&r, &user, "not-the-password");
    let w = bad.allocate(None);
    assert_eq!(w.code(), Some(401), "{w:?}");

    // Expired user name (right password for it) → 401.
    let old = format!("{}", now_unix() - 10);
    let mut e = client(&r, &old, &rest_password(&s, &old));
    assert_eq!(e.allocate(None).code(), Some(401));

    // A nonce that is not ours (or too old) → 438 with a fresh one.
    let mut n = client(&r, &user, &rest_password(&s, &user));
    n.realm = "127.0.0.110".into();
    let key = n.key();
    let attrs = vec![
        (0x0019, vec![17, 0, 0, 0]),
        (0x0006, user.as_bytes().to_vec()),
        (0x0014, b"127.0.0.110".to_vec()),
        (
            0x0015,
            format!("{:016x}0000000000000000", now_unix() - 1).into_bytes(),
        ),
    ];
    let st = n.request_raw(ALLOCATE, &attrs, Some(&key));
    assert_eq!(st.code(), Some(438), "{st:?}");
    assert!(st.get(0x0015).is_some());

    // Unknown comprehension-required attribute (0x0030) → 420 listing it.
    let mut u = client(&r, &user, &rest_password(&s, &user));
    let x = u.request(
        ALLOCATE,
        &[(0x0019, vec![17, 0, 0, 0]), (0x0030, vec![1, 2, 3, 4])],
    );
    assert_eq!(x.code(), Some(420), "{x:?}");
    assert_eq!(x.get(0x000A), Some(&[0x00, 0x30][..]));
    // DONT-FRAGMENT is unsupported, hence unknown (RFC 8656 §7.2).
    let x = u.request(ALLOCATE, &[(0x0019, vec![17, 0, 0, 0]), (0x001A, vec![])]);
    assert_eq!(x.code(), Some(420), "{x:?}");
    // An unknown comprehension-optional one is ignored.
    let x = u.request(ALLOCATE, &[(0x0019, vec![17, 0, 0, 0]), (0x8030, vec![1])]);
    assert_eq!(x.class, 2, "{x:?}");
    // Not UDP → 442.
    let mut t = client(&r, &user, &rest_password(&s, &user));
    assert_eq!(
        t.request(ALLOCATE, &[(0x0019, vec![6, 0, 0, 0])]).code(),
        Some(442)
    );

    // Truncated and broken datagrams get no answer and break nothing.
    let g = client(&r, &user, "x");
    for junk in [
        &b""[..],
        &b"\x00\x01\x00"[..],
        &[0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3][..],
        &[
            0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            0, 6, 0, 200,
        ][..],
        &[
            0x00, 0x01, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ][..],
        &[0xff; 600][..],
    ] {
        g.send_raw(junk);
    }
    g.sock
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    assert!(g.recv_raw().is_none(), "no answer to junk");
    let mut c3 = client(&r, &user, "x");
    assert_eq!(c3.request_raw(0x0001, &[], None).class, 2, "still serving");
    r.assert_no_panic();
}

#[test]
fn quota_lifetimes_refresh_and_peers() {
    let r = Relay::start(111);
    let s = secret(&r);
    let user = format!("{}", now_unix() + 3600);
    let pw = rest_password(&s, &user);

    // Allocate flood from one user: 8 allocations, then 486.
    let mut held = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..12 {
        let mut c = client(&r, &user, &pw);
        let a = c.allocate(None);
        codes.push(a.code().unwrap_or(0));
        held.push(c);
    }
    assert_eq!(
        codes,
        [0, 0, 0, 0, 0, 0, 0, 0, 486, 486, 486, 486],
        "{codes:?}"
    );
    // Another user is not affected; a Refresh 0 frees a slot.
    let u2 = format!("{}", now_unix() + 3601);
    let mut other = client(&r, &u2, &rest_password(&s, &u2));
    assert_eq!(other.allocate(None).class, 2);
    let z = held[0].request(REFRESH, &[(0x000D, 0u32.to_be_bytes().to_vec())]);
    assert_eq!(z.class, 2, "{z:?}");
    assert_eq!(z.get(0x000D), Some(&[0, 0, 0, 0][..]));
    // The deleted allocation is gone (437 on the same 5-tuple) …
    let gone = held[0].create_permission("8.8.8.8:53".parse().unwrap());
    assert_eq!(gone.code(), Some(437), "{gone:?}");
    // … and the user may allocate once more.
    let mut again = client(&r, &user, &pw);
    assert_eq!(again.allocate(None).class, 2);

    // Lifetimes are clamped to [600, 3600] (RFC 8656 §7.2).
    let u3 = format!("{}", now_unix() + 3602);
    let mut lo = client(&r, &u3, &rest_password(&s, &u3));
    assert_eq!(
        lo.allocate(Some(1)).get(0x000D),
        Some(&600u32.to_be_bytes()[..])
    );
    let mut hi = client(&r, &u3, &rest_password(&s, &u3));
    assert_eq!(
        hi.allocate(Some(1_000_000)).get(0x000D),
        Some(&3600u32.to_be_bytes()[..])
    );
    let rf = hi.request(REFRESH, &[(0x000D, 99_999u32.to_be_bytes().to_vec())]);
    assert_eq!(rf.get(0x000D), Some(&3600u32.to_be_bytes()[..]));
    // A second Allocate on the same 5-tuple is a mismatch.
    assert_eq!(hi.allocate(None).code(), Some(437));

    // Peers in private, loopback, link-local and CGNAT ranges → 403.
    for p in [
        "127.0.0.1:9",
        "10.0.0.1:9",
        "192.168.1.1:9",
        "172.16.5.5:9",
        "169.254.1.1:9",
        "100.64.1.1:9",
    ] {
        let peer: SocketAddr = p.parse().unwrap();
        assert_eq!(lo.create_permission(peer).code(), Some(403), "{p}");
        assert_eq!(lo.channel_bind(0x4001, peer).code(), Some(403), "{p}");
    }
    // A public peer is allowed (nothing is sent to it).
    let okp = lo.create_permission("8.8.8.8:9".parse().unwrap());
    assert_eq!(okp.class, 2, "{okp:?}");
    // Bad channel numbers → 400.
    assert_eq!(
        lo.channel_bind(0x3FFF, "8.8.8.8:9".parse().unwrap()).code(),
        Some(400)
    );
    assert_eq!(
        lo.channel_bind(0x8000, "8.8.8.8:9".parse().unwrap()).code(),
        Some(400)
    );
    r.assert_no_panic();
}
