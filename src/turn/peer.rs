//! Which peers a relay may send to (RFC 8656 §21.3: a TURN server must not
//! become a way into the operator's own networks). Loopback, private,
//! link-local, CGNAT, unspecified, multicast, broadcast and documentation-only
//! ranges are refused with 403, unless the test-only config key
//! `turn_allow_loopback_peers_for_tests` allows loopback and private peers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn forbidden(ip: IpAddr, allow_private_for_tests: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4, allow_private_for_tests),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4, allow_private_for_tests),
            None => forbidden_v6(v6, allow_private_for_tests),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr, allow: bool) -> bool {
    let o = ip.octets();
    let always =
        ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || o[0] == 0 || o[0] >= 240;
    let private = ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        // 100.64.0.0/10 (RFC 6598, carrier-grade NAT)
        || (o[0] == 100 && (o[1] & 0xC0) == 64)
        // 192.0.0.0/24 (RFC 6890), 198.18.0.0/15 (benchmarking)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xFE) == 18);
    always || (private && !allow)
}

fn forbidden_v6(ip: Ipv6Addr, allow: bool) -> bool {
    let s = ip.segments();
    let always = ip.is_unspecified() || ip.is_multicast();
    let private = ip.is_loopback()
        || (s[0] & 0xFE00) == 0xFC00 // fc00::/7 unique local
        || (s[0] & 0xFFC0) == 0xFE80 // fe80::/10 link-local
        || (s[0] & 0xFFC0) == 0xFEC0 // fec0::/10 site-local (deprecated)
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 can reach private v4
        || (s[0] == 0x2001 && s[1] == 0x0db8); // documentation
    always || (private && !allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            assert!(forbidden(a.parse().unwrap(), false), "{a}");
        }
        for a in [
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2a00:1450::1",
            "8.8.8.8",
        ] {
            assert!(!forbidden(a.parse().unwrap(), false), "{a}");
        }
        assert!(!forbidden("127.0.0.1".parse().unwrap(), true));
        assert!(forbidden("0.0.0.0".parse().unwrap(), true));
    }
}
