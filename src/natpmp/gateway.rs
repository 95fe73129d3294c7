//! The default IPv4 gateway from Linux `/proc/net/route` (columns: Iface,
//! Destination, Gateway, Flags, … in little-endian hex).

use std::net::Ipv4Addr;

const RTF_GATEWAY: u32 = 0x2;

pub fn parse(text: &str) -> Option<Ipv4Addr> {
    for line in text.lines().skip(1).take(4096) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[1] != "00000000" {
            continue;
        }
        let (Ok(gw), Ok(flags)) = (u32::from_str_radix(f[2], 16), u32::from_str_radix(f[3], 16))
        else {
            continue;
        };
        if flags & RTF_GATEWAY != 0 && gw != 0 {
            return Some(Ipv4Addr::from(gw.to_le_bytes()));
        }
    }
    None
}

pub fn default_gateway() -> Option<Ipv4Addr> {
    parse(&std::fs::read_to_string("/proc/net/route").ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_route() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                 eth0\t00000000\t0100D50A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(super::parse(t), Some("10.213.0.1".parse().unwrap()));
        assert_eq!(super::parse("garbage\nx y\n"), None);
    }
}
