//! Address ranges (CIDR) and the LAN classifier of the `/status` page: a
//! peer may see it only when its address is in `status_networks`.

use std::net::IpAddr;

/// One `address/prefix` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

/// The default of `status_networks`: loopback, RFC 1918 private IPv4,
/// IPv4 link-local (RFC 3927), IPv6 loopback, unique local (RFC 4193) and
/// link-local (RFC 4291 §2.5.6). Carrier-grade NAT space (RFC 6598) is not
/// a LAN and is not listed.
pub const DEFAULT_STATUS_NETWORKS: &str =
    "127.0.0.0/8 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 169.254.0.0/16 ::1/128 fc00::/7 fe80::/10";

impl Net {
    /// `a.b.c.d/n`, `x::y/n` or a bare address (a single host).
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok()?
            }
            Some(_) => return None,
        };
        (prefix <= max).then_some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => self.v4(n, a),
            // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
            (IpAddr::V4(n), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| self.v4(n, a)),
            (IpAddr::V6(n), IpAddr::V6(a)) => self.v6(n, a),
            (IpAddr::V6(n), IpAddr::V4(a)) => self.v6(n, a.to_ipv6_mapped()),
        }
    }

    fn v4(&self, n: std::net::Ipv4Addr, a: std::net::Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
        u32::from(n) & mask == u32::from(a) & mask
    }

    fn v6(&self, n: std::net::Ipv6Addr, a: std::net::Ipv6Addr) -> bool {
        let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
        u128::from(n) & mask == u128::from(a) & mask
    }
}

/// Space-separated list of ranges; `None` names the bad item.
pub fn parse_list(s: &str) -> Result<Vec<Net>, String> {
    s.split_whitespace()
        .map(|item| Net::parse(item).ok_or_else(|| item.to_string()))
        .collect()
}

/// Is `ip` in one of `nets`?
pub fn is_lan(nets: &[Net], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// A globally routed IPv4 address: not RFC 1918, loopback, link-local,
/// unspecified, broadcast, RFC 5737 documentation or RFC 6598 CGNAT
/// (100.64.0.0/10). A CA can reach only these.
pub fn is_public_v4(v4: std::net::Ipv4Addr) -> bool {
    let o = v4.octets();
    let cgnat = o[0] == 100 && (o[1] & 0xc0) == 64;
    !(cgnat
        || v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_documentation())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_ranges_classify() {
        let nets = parse_list(DEFAULT_STATUS_NETWORKS).unwrap();
        for lan in [
            "127.0.0.1",
            "127.0.0.25",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.20",
            "169.254.3.4",
            "::1",
            "fd00::5",
            "fe80::1",
            "::ffff:192.168.1.2",
        ] {
            assert!(is_lan(&nets, ip(lan)), "{lan} should count as LAN");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "192.169.0.1",
            "100.64.0.1",
            "11.0.0.1",
            "2001:db8::1",
            "2a00::1",
            "::ffff:8.8.8.8",
            "0.0.0.0",
        ] {
            assert!(
                !is_lan(&nets, ip(public)),
                "{public} should count as public"
            );
        }
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "1.2.3.4/+1",
            "1.2.3.4/0008",
        ] {
            assert!(Net::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(parse_list("10.0.0.0/8 oops").unwrap_err(), "oops");
        let all = Net::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(!all.contains(ip("2001:db8::1")));
        let mapped = Net::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains(ip("::ffff:10.1.2.3")) && mapped.contains(ip("10.1.2.3")));
        assert!(!mapped.contains(ip("11.0.0.1")));
        let host = Net::parse("127.0.0.21").unwrap();
        assert!(host.contains(ip("127.0.0.21")) && !host.contains(ip("127.0.0.22")));
    }
}
