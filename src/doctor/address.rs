//! What kind of address the world would reach the relay at (no I/O).

use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Public,
    /// RFC 1918, link-local, loopback, ULA: only reachable inside a LAN.
    Private,
    /// RFC 6598 shared address space 100.64.0.0/10 (carrier-grade NAT).
    Cgnat,
}

pub fn classify(ip: IpAddr) -> AddressKind {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00 // ULA, RFC 4193
                || (s[0] & 0xffc0) == 0xfe80
            // link-local
            {
                AddressKind::Private
            } else if let Some(v4) = v6.to_ipv4_mapped() {
                classify_v4(v4)
            } else {
                AddressKind::Public
            }
        }
    }
}

fn classify_v4(v4: Ipv4Addr) -> AddressKind {
    let o = v4.octets();
    if o[0] == 100 && (o[1] & 0xc0) == 64 {
        AddressKind::Cgnat
    } else if crate::config::networks::is_public_v4(v4) {
        AddressKind::Public
    } else {
        AddressKind::Private
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let k = |s: &str| classify(s.parse().unwrap());
        assert_eq!(k("100.64.0.1"), AddressKind::Cgnat);
        assert_eq!(k("100.127.255.254"), AddressKind::Cgnat);
        assert_eq!(k("100.128.0.1"), AddressKind::Public);
        assert_eq!(k("192.168.1.2"), AddressKind::Private);
        assert_eq!(k("10.1.2.3"), AddressKind::Private);
        assert_eq!(k("127.0.0.1"), AddressKind::Private);
        assert_eq!(k("fd00::1"), AddressKind::Private);
        assert_eq!(k("2a01:4f8::1"), AddressKind::Public);
        assert_eq!(k("8.8.8.8"), AddressKind::Public);
    }
}
