//! The box's own public IPv6 address, from Linux `/proc/net/if_inet6`
//! (one line per address: 32 hex digits, ifindex, prefix length, scope,
//! flags, name; see the kernel's `if_inet6_seq_show`).

use std::net::Ipv6Addr;
use std::path::Path;

use crate::doctor::address::{classify, AddressKind};

const IFA_F_TEMPORARY: u32 = 0x01;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;

/// The first global, stable (not temporary, deprecated or tentative), public
/// address; `None` when there is none or the file is unreadable. The file
/// is a few hundred bytes from procfs (no disk I/O).
pub fn public_ipv6(path: &Path) -> Option<Ipv6Addr> {
    let text = std::fs::read_to_string(path).ok()?;
    parse(&text).into_iter().next()
}

pub fn parse(text: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in text.lines().take(1024) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[0].len() != 32 {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(f[0], 16) else {
            continue;
        };
        let scope = u32::from_str_radix(f[3], 16).unwrap_or(u32::MAX);
        let flags = u32::from_str_radix(f[4], 16).unwrap_or(u32::MAX);
        let a = Ipv6Addr::from(bits);
        if scope == 0
            && flags & (IFA_F_TEMPORARY | IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE) == 0
            && classify(a.into()) == AddressKind::Public
        {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn picks_stable_public() {
        let t = "\
00000000000000000000000000000001 01 80 10 80       lo
fe800000000000000000000000000001 02 40 20 80     eth0
fd000000000000000000000000000001 02 40 00 80     eth0
2a010000000000000000000000000009 02 40 00 01     eth0
2a010000000000000000000000000002 02 40 00 80     eth0
garbage
";
        assert_eq!(
            super::parse(t),
            vec!["2a01::2".parse::<std::net::Ipv6Addr>().unwrap()]
        );
    }
}
