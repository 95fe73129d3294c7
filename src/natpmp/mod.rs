//! NAT-PMP (RFC 6886) messages: external address (§3.2) and mapping
//! requests (§3.3), and their responses, without I/O; every reply is
//! checked for version, opcode and length, anything else is an error, never
//! a panic. Its successor PCP (RFC 6887, same UDP port 5351) is in [`pcp`].
//! [`exchange`] sends one request over a connected non-blocking UDP socket
//! with the §3.1 retransmission schedule. Used by the router service and by
//! `chatrelay doctor`.

pub mod gateway;
pub mod pcp;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// RFC 6886 §3.1: first retransmission after 250 ms, doubling; we stop
/// after 4 tries (3.75 s) instead of 9 (64 s). PCP uses the same schedule
/// on the LAN (RFC 6887 §8.1.1 allows the client to give up earlier).
const TRIES: u32 = 4;

/// What a parser makes of one datagram.
pub enum Step<T> {
    /// The answer to the request (success or refusal).
    Done(T),
    /// Not an answer to this request (garbage, a late reply to another
    /// request): keep listening; the text is kept for the final error.
    Skip(String),
}

/// One request, retransmitted on the RFC 6886 §3.1 schedule until a reply
/// is `Done`; `Err` when none came (the last skip reason, or "no answer").
pub async fn exchange<T>(
    sock: &async_net::UdpSocket,
    req: &[u8],
    parse: impl Fn(&[u8]) -> Step<T>,
) -> Result<T, String> {
    let mut wait = Duration::from_millis(250);
    let mut last = "no answer".to_string();
    for _ in 0..TRIES {
        sock.send(req).await.map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + wait;
        let mut buf = [0u8; 1100];
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match crate::net::timeout(left, sock.recv(&mut buf)).await {
                Some(Ok(n)) => match parse(&buf[..n]) {
                    Step::Done(v) => return Ok(v),
                    Step::Skip(why) => last = why,
                },
                Some(Err(e)) => last = e.to_string(),
                None => break,
            }
        }
        wait *= 2;
    }
    Err(last)
}

/// One NAT-PMP request: Ok(reply), or Err with the refusal or why none came.
pub async fn transact<T>(
    sock: &async_net::UdpSocket,
    req: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, Error>,
) -> Result<T, String> {
    exchange(sock, req, |b| match parse(b) {
        Ok(v) => Step::Done(Ok(v)),
        Err(Error::Refused(c)) => Step::Done(Err(result_text(c))),
        Err(e) => Step::Skip(e.to_string()),
    })
    .await?
}

/// A UDP socket connected to the router's NAT-PMP/PCP port, sent from
/// `local` when given (the relay's listen address: the mappings' internal
/// address is the packets' source, RFC 6886 §3.3, RFC 6887 §8.1).
pub async fn connect(
    router: Ipv4Addr,
    local: Option<Ipv4Addr>,
) -> Result<async_net::UdpSocket, String> {
    let sock = async_net::UdpSocket::bind((local.unwrap_or(Ipv4Addr::UNSPECIFIED), 0))
        .await
        .map_err(|e| e.to_string())?;
    sock.connect(SocketAddr::from((router, PORT)))
        .await
        .map_err(|e| e.to_string())?;
    Ok(sock)
}

/// The router's WAN address (§3.2): (epoch, address).
pub async fn external_address(router: Ipv4Addr) -> Result<(u32, Ipv4Addr), String> {
    let sock = connect(router, None).await?;
    transact(&sock, &external_address_request(), parse_external_address).await
}

/// RFC 6886 §3: the gateway listens on UDP 5351.
pub const PORT: u16 = 5351;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    fn opcode(self) -> u8 {
        match self {
            Proto::Udp => 1,
            Proto::Tcp => 2,
        }
    }
}

/// §3.2: version 0, opcode 0.
pub fn external_address_request() -> [u8; 2] {
    [0, 0]
}

/// §3.3: map `internal` to `external` (a suggestion) for `lifetime` seconds;
/// lifetime 0 with external 0 deletes the mapping (§3.4).
pub fn map_request(proto: Proto, internal: u16, external: u16, lifetime: u32) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[1] = proto.opcode();
    b[4..6].copy_from_slice(&internal.to_be_bytes());
    b[6..8].copy_from_slice(&external.to_be_bytes());
    b[8..12].copy_from_slice(&lifetime.to_be_bytes());
    b
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not a NAT-PMP answer to our request (wrong size, version, opcode).
    Malformed(&'static str),
    /// §3.5 result codes 1..=5 (and any other non-zero value).
    Refused(u16),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Malformed(w) => write!(f, "malformed NAT-PMP reply ({w})"),
            Error::Refused(c) => write!(f, "NAT-PMP refused: {}", result_text(*c)),
        }
    }
}

/// §3.5.
pub fn result_text(code: u16) -> String {
    match code {
        1 => "unsupported version".into(),
        2 => "not authorized / refused (mapping disabled on the router)".into(),
        3 => "network failure (the router has no WAN address)".into(),
        4 => "out of resources".into(),
        5 => "unsupported opcode".into(),
        n => format!("result code {n}"),
    }
}

fn header(b: &[u8], opcode: u8, len: usize) -> Result<u32, Error> {
    if b.len() < len {
        return Err(Error::Malformed("short"));
    }
    if b[0] != 0 {
        return Err(Error::Malformed("version"));
    }
    if b[1] != 128 + opcode {
        return Err(Error::Malformed("opcode"));
    }
    let result = u16::from_be_bytes([b[2], b[3]]);
    if result != 0 {
        return Err(Error::Refused(result));
    }
    // Seconds since start of epoch: a decrease means the router lost state.
    Ok(u32::from_be_bytes([b[4], b[5], b[6], b[7]]))
}

/// §3.2 reply: (epoch, external address).
pub fn parse_external_address(b: &[u8]) -> Result<(u32, Ipv4Addr), Error> {
    let epoch = header(b, 0, 12)?;
    Ok((epoch, Ipv4Addr::new(b[8], b[9], b[10], b[11])))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub epoch: u32,
    pub internal: u16,
    pub external: u16,
    pub lifetime: u32,
}

/// §3.3 reply for `proto`.
pub fn parse_map(b: &[u8], proto: Proto) -> Result<Mapped, Error> {
    let epoch = header(b, proto.opcode(), 16)?;
    Ok(Mapped {
        epoch,
        internal: u16::from_be_bytes([b[8], b[9]]),
        external: u16::from_be_bytes([b[10], b[11]]),
        lifetime: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(external_address_request(), [0, 0]);
        assert_eq!(
            map_request(Proto::Tcp, 993, 993, 7200),
            [0, 2, 0, 0, 3, 225, 3, 225, 0, 0, 0x1c, 0x20]
        );
    }

    #[test]
    fn replies() {
        let r = [0, 128, 0, 0, 0, 0, 0, 9, 11, 13, 0, 2];
        assert_eq!(
            parse_external_address(&r),
            Ok((9, Ipv4Addr::new(11, 13, 0, 2)))
        );
        let m = [0, 130, 0, 0, 0, 0, 0, 9, 0, 25, 0, 25, 0, 0, 14, 16];
        assert_eq!(
            parse_map(&m, Proto::Tcp),
            Ok(Mapped {
                epoch: 9,
                internal: 25,
                external: 25,
                lifetime: 3600
            })
        );
        assert_eq!(parse_map(&m, Proto::Udp), Err(Error::Malformed("opcode")));
        assert_eq!(
            parse_map(&m[..10], Proto::Tcp),
            Err(Error::Malformed("short"))
        );
        let refused = [0, 130, 0, 2, 0, 0, 0, 9, 0, 25, 0, 25, 0, 0, 0, 0];
        assert_eq!(parse_map(&refused, Proto::Tcp), Err(Error::Refused(2)));
        assert_eq!(
            parse_external_address(&[1; 12]),
            Err(Error::Malformed("version"))
        );
        assert!(parse_external_address(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
