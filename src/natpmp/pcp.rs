//! PCP, the Port Control Protocol (RFC 6887), without I/O: MAP requests
//! (§11.1) and their responses (§11.2), ANNOUNCE (§14.1), the result codes
//! (§7.4), the version negotiation with NAT-PMP routers (§9) and the epoch
//! check that tells a router which lost its state (§8.5). PCP shares UDP
//! port 5351 with NAT-PMP; a version-2 request answered by a NAT-PMP-only
//! router comes back as a NAT-PMP "unsupported version" reply.
//!
//! Every response is checked for version, opcode, length (a multiple of
//! four, at most 1100 bytes, §7), and for MAP the nonce, protocol and
//! internal port of the request it answers; anything else is an error,
//! never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// §7: the version this implementation speaks.
pub const VERSION: u8 = 2;
/// §7: the largest PCP message.
pub const MAX_MESSAGE: usize = 1100;
/// §8.1: clients listen for unsolicited ANNOUNCE on this port (servers
/// send them to 224.0.0.1 and ff02::1, §14.1.3).
pub const CLIENT_PORT: u16 = 5350;

pub const OP_ANNOUNCE: u8 = 0;
pub const OP_MAP: u8 = 1;

/// IANA protocol numbers (§11.1 "Protocol").
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// A MAP nonce (§11.1: 96 random bits, the same for the life of a mapping).
pub type Nonce = [u8; 12];

/// §5: IPv4 addresses travel as IPv4-mapped IPv6 addresses.
fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn addr_of(b: &[u8]) -> IpAddr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    let v6 = Ipv6Addr::from(o);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// §7.1 request header: version, R = 0 and opcode, lifetime, client address
/// (the source address the router sees, else ADDRESS_MISMATCH).
fn request_header(op: u8, lifetime: u32, client: IpAddr) -> Vec<u8> {
    let mut b = Vec::with_capacity(60);
    b.push(VERSION);
    b.push(op & 0x7f);
    b.extend([0, 0]);
    b.extend(lifetime.to_be_bytes());
    b.extend(addr_bytes(client));
    b
}

/// §11.1: map `internal` (protocol `proto`, IANA number) to the same
/// external port (a suggestion; the router may assign another) for
/// `lifetime` seconds; lifetime 0 deletes the mapping (§15). No suggested
/// external address: the all-zeros address of the family (§11.1).
pub fn map_request(
    nonce: &Nonce,
    proto: u8,
    internal: u16,
    external: u16,
    lifetime: u32,
    client: IpAddr,
) -> Vec<u8> {
    let mut b = request_header(OP_MAP, lifetime, client);
    b.extend_from_slice(nonce);
    b.push(proto);
    b.extend([0, 0, 0]);
    b.extend(internal.to_be_bytes());
    b.extend(external.to_be_bytes());
    let zero = match client {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    b.extend(addr_bytes(zero));
    b
}

/// §14.1: an ANNOUNCE request (lifetime 0) asks the router for its epoch.
pub fn announce_request(client: IpAddr) -> Vec<u8> {
    request_header(OP_ANNOUNCE, 0, client)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not a PCP response we asked for (size, version, opcode, nonce…).
    Malformed(&'static str),
    /// §9: a NAT-PMP router (version 0) does not speak PCP: fall back.
    NatPmpOnly,
    /// §7.4 result code other than SUCCESS.
    Refused(u8),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Malformed(w) => write!(f, "malformed PCP reply ({w})"),
            Error::NatPmpOnly => write!(f, "the router speaks NAT-PMP, not PCP"),
            Error::Refused(c) => write!(f, "PCP refused: {}", result_text(*c)),
        }
    }
}

/// §7.4.
pub fn result_text(code: u8) -> String {
    match code {
        1 => "1 UNSUPP_VERSION".into(),
        2 => "2 NOT_AUTHORIZED (mapping disabled or port not allowed on the router)".into(),
        3 => "3 MALFORMED_REQUEST".into(),
        4 => "4 UNSUPP_OPCODE".into(),
        5 => "5 UNSUPP_OPTION".into(),
        6 => "6 MALFORMED_OPTION".into(),
        7 => "7 NETWORK_FAILURE (the router has no WAN address)".into(),
        8 => "8 NO_RESOURCES".into(),
        9 => "9 UNSUPP_PROTOCOL".into(),
        10 => "10 USER_EX_QUOTA (too many mappings)".into(),
        11 => "11 CANNOT_PROVIDE_EXTERNAL (the external port is taken)".into(),
        12 => "12 ADDRESS_MISMATCH (a NAT between the relay and the router?)".into(),
        13 => "13 EXCESSIVE_REMOTE_PEERS".into(),
        n => format!("result code {n}"),
    }
}

/// The §7.2 response header: (lifetime, epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub lifetime: u32,
    pub epoch: u32,
}

fn response_header(b: &[u8], op: u8, len: usize) -> Result<Header, Error> {
    // §9: a NAT-PMP-only server answers version 0, result 1 (RFC 6886 §3.5).
    if b.len() >= 4 && b[0] == 0 && b[1] >= 128 && u16::from_be_bytes([b[2], b[3]]) == 1 {
        return Err(Error::NatPmpOnly);
    }
    if b.len() < 24 || b.len() > MAX_MESSAGE || !b.len().is_multiple_of(4) {
        return Err(Error::Malformed("size"));
    }
    if b[0] != VERSION {
        // A PCP server of another version answers UNSUPP_VERSION with the
        // version it speaks (§9); we speak only 2.
        return Err(Error::Malformed("version"));
    }
    if b[1] != 0x80 | op {
        return Err(Error::Malformed("opcode"));
    }
    let h = Header {
        lifetime: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        epoch: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
    };
    if b[3] != 0 {
        return Err(Error::Refused(b[3]));
    }
    if b.len() < len {
        return Err(Error::Malformed("short"));
    }
    Ok(h)
}

/// A successful MAP response (§11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub epoch: u32,
    pub lifetime: u32,
    pub internal: u16,
    pub external: u16,
    pub external_ip: IpAddr,
}

/// The MAP response to the request with `nonce`, `proto`, `internal`
/// (§11.3: a response with another nonce is not ours and is dropped).
/// Options after the 60 bytes are skipped.
pub fn parse_map(b: &[u8], nonce: &Nonce, proto: u8, internal: u16) -> Result<Mapped, Error> {
    // The nonce check comes first: an error answer for another mapping is
    // not an answer to this request either.
    if b.len() >= 60 && b[0] == VERSION && (&b[24..36] != nonce || b[36] != proto) {
        return Err(Error::Malformed("nonce or protocol of another request"));
    }
    let h = response_header(b, OP_MAP, 60)?;
    if &b[24..36] != nonce {
        return Err(Error::Malformed("nonce"));
    }
    if b[36] != proto || u16::from_be_bytes([b[40], b[41]]) != internal {
        return Err(Error::Malformed("reply for another port"));
    }
    Ok(Mapped {
        epoch: h.epoch,
        lifetime: h.lifetime,
        internal,
        external: u16::from_be_bytes([b[42], b[43]]),
        external_ip: addr_of(&b[44..60]),
    })
}

/// An ANNOUNCE response (§14.1), solicited or not: the router's epoch.
pub fn parse_announce(b: &[u8]) -> Result<u32, Error> {
    response_header(b, OP_ANNOUNCE, 24).map(|h| h.epoch)
}

/// §8.5: what the client remembers from the last response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    /// The router's epoch time in that response.
    pub server: u32,
    /// Our clock (seconds, monotonic) when it came.
    pub client: u64,
}

/// §8.5: false when the router's epoch says it lost its state (it went
/// back, or it moved too differently from our clock), so every mapping must
/// be made again. Seconds on both sides; 2 s of slack and 1/16 drift.
pub fn epoch_valid(prev: Epoch, server: u32, client: u64) -> bool {
    if u64::from(server) + 2 < u64::from(prev.server) {
        return false;
    }
    let client_delta = client.saturating_sub(prev.client);
    let server_delta = u64::from(server.saturating_sub(prev.server));
    !(client_delta.saturating_add(2) < server_delta - server_delta / 16
        || server_delta.saturating_add(2) < client_delta - client_delta / 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: Nonce = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 213, 1, 2));

    /// A MAP response as RFC 6887 §11.2 lays it out.
    pub fn map_response(
        result: u8,
        lifetime: u32,
        epoch: u32,
        nonce: &Nonce,
        proto: u8,
        port: u16,
        ext: Ipv4Addr,
    ) -> Vec<u8> {
        let mut b = vec![2, 0x81, 0, result];
        b.extend(lifetime.to_be_bytes());
        b.extend(epoch.to_be_bytes());
        b.extend([0; 12]);
        b.extend_from_slice(nonce);
        b.extend([proto, 0, 0, 0]);
        b.extend(port.to_be_bytes());
        b.extend(port.to_be_bytes());
        b.extend(ext.to_ipv6_mapped().octets());
        b
    }

    #[test]
    fn map_request_layout() {
        let r = map_request(&N, PROTO_TCP, 993, 993, 7200, LAN);
        assert_eq!(r.len(), 60);
        assert_eq!(&r[..8], &[2, 1, 0, 0, 0, 0, 0x1c, 0x20]);
        assert_eq!(
            &r[8..24],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 213, 1, 2]
        );
        assert_eq!(&r[24..36], &N);
        assert_eq!(&r[36..40], &[6, 0, 0, 0]);
        assert_eq!(&r[40..44], &[3, 225, 3, 225]);
        // Suggested external address ::ffff:0.0.0.0 (no preference).
        assert_eq!(
            &r[44..60],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]
        );
        let a = announce_request(LAN);
        assert_eq!(a.len(), 24);
        assert_eq!(&a[..4], &[2, 0, 0, 0]);
    }

    #[test]
    fn map_responses() {
        let ext = Ipv4Addr::new(11, 13, 1, 2);
        let ok = map_response(0, 120, 77, &N, PROTO_UDP, 3478, ext);
        assert_eq!(
            parse_map(&ok, &N, PROTO_UDP, 3478),
            Ok(Mapped {
                epoch: 77,
                lifetime: 120,
                internal: 3478,
                external: 3478,
                external_ip: IpAddr::V4(ext)
            })
        );
        // Options after the payload are skipped (a multiple of 4 bytes).
        let mut with_opt = ok.clone();
        with_opt.extend([1, 0, 0, 0]);
        assert!(parse_map(&with_opt, &N, PROTO_UDP, 3478).is_ok());
        let mut other = N;
        other[0] = 99;
        assert!(matches!(
            parse_map(&ok, &other, PROTO_UDP, 3478),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            parse_map(&ok, &N, PROTO_TCP, 3478),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            parse_map(&ok, &N, PROTO_UDP, 25),
            Err(Error::Malformed(_))
        ));
        let refused = map_response(11, 0, 77, &N, PROTO_UDP, 3478, Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            parse_map(&refused, &N, PROTO_UDP, 3478),
            Err(Error::Refused(11))
        );
        // A refusal for another nonce is not ours.
        assert!(matches!(
            parse_map(&refused, &other, PROTO_UDP, 3478),
            Err(Error::Malformed(_))
        ));
        // Error answers may be short (header only, §7.2).
        let mut short = vec![2, 0x81, 0, 2];
        short.extend([0; 20]);
        assert_eq!(parse_map(&short, &N, PROTO_TCP, 25), Err(Error::Refused(2)));
        assert!(parse_map(&ok[..58], &N, PROTO_UDP, 3478).is_err());
        assert!(parse_map(&ok[..59], &N, PROTO_UDP, 3478).is_err());
        assert!(parse_map(b"HTTP/1.1 200 OK\r\n\r\n", &N, PROTO_UDP, 1).is_err());
        assert!(parse_map(&[], &N, PROTO_UDP, 1).is_err());
        assert!(parse_map(&vec![2; 1104], &N, PROTO_UDP, 1).is_err());
    }

    #[test]
    fn nat_pmp_router_means_fall_back() {
        // RFC 6886 §3.5 "unsupported version": version 0, op 128+1, result 1.
        let r = [0, 129, 0, 1, 0, 0, 0, 9];
        assert_eq!(parse_map(&r, &N, PROTO_TCP, 25), Err(Error::NatPmpOnly));
        let r = [0, 128, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0];
        assert_eq!(parse_announce(&r), Err(Error::NatPmpOnly));
    }

    #[test]
    fn announce() {
        let mut a = vec![2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
        a.extend([0; 12]);
        assert_eq!(parse_announce(&a), Ok(5));
        a[1] = 0x81;
        assert!(parse_announce(&a).is_err());
    }

    #[test]
    fn epochs() {
        let prev = Epoch {
            server: 1000,
            client: 50,
        };
        assert!(epoch_valid(prev, 1010, 60));
        assert!(epoch_valid(prev, 1000, 50));
        // The router restarted: its epoch went back.
        assert!(!epoch_valid(prev, 3, 60));
        // Its clock jumped far ahead of ours, or stood still while ours ran.
        assert!(!epoch_valid(prev, 5000, 60));
        assert!(!epoch_valid(prev, 1001, 500));
        // Long waits with a little drift stay valid.
        assert!(epoch_valid(prev, 1000 + 3600, 50 + 3650));
        // Extreme values neither overflow nor pass.
        assert!(!epoch_valid(prev, u32::MAX, u64::MAX));
        assert!(!epoch_valid(prev, 0, 0));
    }
}
