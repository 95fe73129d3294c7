//! The PCP client's I/O (RFC 6887): one round of MAP requests with the
//! epoch check (§8.5), the deletion (§15), and the listener for the
//! router's unsolicited ANNOUNCE (§14.1.3). The messages are
//! [`crate::natpmp::pcp`].

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::{Method, Round, Want};
use crate::natpmp::{self, pcp, Proto, Step};
use crate::relay::router_state::PortState;

fn number(p: Proto) -> u8 {
    match p {
        Proto::Tcp => pcp::PROTO_TCP,
        Proto::Udp => pcp::PROTO_UDP,
    }
}

/// One MAP request (lifetime 0 deletes); the answer or why none came.
async fn map(
    sock: &async_net::UdpSocket,
    client: IpAddr,
    w: &Want,
    lifetime: u32,
) -> Result<Result<pcp::Mapped, pcp::Error>, String> {
    let proto = number(w.proto);
    let req = pcp::map_request(&w.nonce, proto, w.port, w.port, lifetime, client);
    natpmp::exchange(sock, &req, |b| {
        match pcp::parse_map(b, &w.nonce, proto, w.port) {
            Err(pcp::Error::Malformed(m)) => Step::Skip(format!("malformed PCP reply ({m})")),
            r => Step::Done(r),
        }
    })
    .await
}

/// One round of MAP requests for every port. Err when the router does not
/// speak PCP (no answer to the first request, or a NAT-PMP "unsupported
/// version", §9): then NAT-PMP is tried. A router whose epoch shows lost
/// state in the middle of the round gets the round once more.
pub(super) async fn round(
    sock: &async_net::UdpSocket,
    client: IpAddr,
    wants: &[Want],
    lifetime: u32,
    epoch: &mut Option<pcp::Epoch>,
    t0: Instant,
) -> Result<Round, String> {
    let mut again = true;
    loop {
        let mut states = Vec::with_capacity(wants.len());
        let mut wan = None;
        let mut granted = u64::from(lifetime);
        let mut lost_at = None;
        let mut silent = 0;
        for (i, w) in wants.iter().enumerate() {
            if silent >= super::MAX_SILENT {
                // The router went away in the middle: the rest waits for
                // the next round instead of 3.75 s each.
                states.push(PortState::NotTried);
                continue;
            }
            let answer = match map(sock, client, w, lifetime).await {
                Err(e) if i == 0 => return Err(e),
                Err(e) => {
                    silent += 1;
                    states.push(PortState::Refused(format!("no answer ({e})")));
                    continue;
                }
                Ok(a) => {
                    silent = 0;
                    a
                }
            };
            match answer {
                Err(pcp::Error::NatPmpOnly) => return Err(pcp::Error::NatPmpOnly.to_string()),
                Err(e @ pcp::Error::Malformed(_)) => states.push(PortState::Refused(e.to_string())),
                Err(pcp::Error::Refused(c)) => states.push(PortState::Refused(pcp::result_text(c))),
                Ok(m) => {
                    let now = t0.elapsed().as_secs();
                    if let Some(prev) = *epoch {
                        if !pcp::epoch_valid(prev, m.epoch, now) {
                            log::info!(
                                "router: the router restarted (PCP epoch {} after {}); mapping again",
                                m.epoch,
                                prev.server
                            );
                            lost_at.get_or_insert(i);
                        }
                    }
                    *epoch = Some(pcp::Epoch {
                        server: m.epoch,
                        client: now,
                    });
                    if let IpAddr::V4(a) = m.external_ip {
                        wan = wan.or(Some(a).filter(|a| !a.is_unspecified()));
                    }
                    granted = granted.min(u64::from(m.lifetime));
                    states.push(PortState::Mapped {
                        external: m.external,
                        by: "PCP",
                    });
                }
            }
        }
        // Lost state at the first answer: this round made everything anew.
        if lost_at.is_some_and(|i| i > 0) && again {
            again = false;
            continue;
        }
        return Ok(Round {
            method: Method::Pcp,
            wan,
            states,
            lifetime: granted.max(2),
        });
    }
}

/// §15: delete one mapping (lifetime 0, the mapping's nonce). None when
/// the router did not answer at all.
pub(super) async fn delete(sock: &async_net::UdpSocket, client: IpAddr, w: &Want) -> Option<bool> {
    match map(sock, client, w, 0).await {
        Ok(r) => Some(r.is_ok()),
        Err(_) => None,
    }
}

/// §14.1.3: a PCP server that restarted (or whose WAN address changed)
/// multicasts ANNOUNCE to 224.0.0.1:5350. Listens there (shared with other
/// programs, SO_REUSEADDR) and wakes `tx` for an ANNOUNCE from the router
/// `gw` names; never returns. When the port cannot be bound, the epoch
/// check at each renewal still finds a restarted router.
pub(super) async fn announcements(gw: &Cell<Option<Ipv4Addr>>, tx: async_channel::Sender<()>) {
    let sock = match bind_shared(SocketAddr::from((Ipv4Addr::UNSPECIFIED, pcp::CLIENT_PORT))) {
        Ok(s) => s,
        Err(e) => {
            log::debug!(
                "router: no PCP ANNOUNCE listener on UDP {}: {e}",
                pcp::CLIENT_PORT
            );
            return futures_lite::future::pending().await;
        }
    };
    let mut buf = [0u8; pcp::MAX_MESSAGE];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            async_io::Timer::after(std::time::Duration::from_secs(1)).await;
            continue;
        };
        let from_router =
            gw.get().is_some_and(|g| from.ip() == IpAddr::V4(g)) && from.port() == natpmp::PORT;
        if from_router && pcp::parse_announce(&buf[..n]).is_ok() {
            log::info!("router: the router announced a restart (PCP ANNOUNCE)");
            let _ = tx.try_send(());
        }
    }
}

fn bind_shared(addr: SocketAddr) -> std::io::Result<async_io::Async<std::net::UdpSocket>> {
    use rustix::net::{bind, socket, sockopt, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    bind(&fd, &addr)?;
    async_io::Async::new(std::net::UdpSocket::from(fd))
}
