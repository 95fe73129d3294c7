//! TURN server for Delta Chat calls (issue 11): RFC 8656 over UDP with
//! STUN Binding (RFC 8489), REST credentials (spec §11.2).
//!
//! `msg` and `attr` are the STUN codec, `auth` long-term credentials and
//! nonces, `alloc` the allocations table, `peer` the peer address policy,
//! `proto` the state machine (no I/O), `udp` the socket loop.

pub mod alloc;
pub mod attr;
pub mod auth;
pub mod msg;
pub mod peer;
pub mod proto;
pub mod udp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::rc::Rc;

use async_executor::LocalExecutor;

use crate::relay::Ctx;

/// Bind the TURN port (`turn_port`, 0 disables) and spawn the service.
pub fn start(ex: &Rc<LocalExecutor<'static>>, ctx: &Ctx) -> Result<(), String> {
    let cfg = &ctx.cfg;
    let Some(secret) = ctx.turn_secret.as_ref() else {
        return Ok(());
    };
    let ip = cfg
        .listen_address
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let sock = async_io::Async::<UdpSocket>::bind(SocketAddr::new(ip, cfg.turn_port))
        .map_err(|e| format!("cannot listen on UDP port {} (TURN): {e}", cfg.turn_port))?;
    let realm = cfg
        .mail_domain
        .trim_start_matches('[')
        .trim_end_matches(']');
    let limits = proto::Limits {
        allow_private_peers: cfg.turn_allow_loopback_peers_for_tests,
        per_user: cfg.turn_user_quota,
        per_client_ip: cfg.turn_ip_quota,
    };
    let turn = proto::Turn::new(realm, secret, cfg.turn_relay_ports, limits);
    log::info!("listening: TURN on UDP port {}", cfg.turn_port);
    if cfg.turn_allow_loopback_peers_for_tests {
        log::warn!(
            "turn_allow_loopback_peers_for_tests is on: TURN relays to loopback and private peers"
        );
    }
    // RFC 8656 §7.3: peers send to the relayed address, so behind a NAT it
    // must be the public one (the router forwards the relay ports).
    let external: udp::External = match cfg.turn_external_ip {
        crate::config::TurnExternalIp::Fixed(ip) => {
            log::info!("TURN: relayed addresses name {ip} (turn_external_ip)");
            Box::new(move || Some(ip))
        }
        crate::config::TurnExternalIp::Off => Box::new(|| None),
        crate::config::TurnExternalIp::Auto => {
            let router = ctx.router.clone();
            Box::new(move || router.public_wan())
        }
    };
    ex.spawn(udp::run(
        ex.clone(),
        sock,
        turn,
        cfg.listen_address,
        external,
    ))
    .detach();
    Ok(())
}

/// `chatrelay turn-probe`: one STUN Binding request (RFC 8489 §6) to the
/// TURN port, retried for up to 5 s; Ok when a success response with our
/// transaction id and an XOR-MAPPED-ADDRESS comes back. A blocking CLI
/// helper, never used by the server loop.
pub fn probe(server: SocketAddr) -> Result<(), String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .unwrap();
    let s = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let mut tid = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut tid)
        .map_err(|_| "no randomness".to_string())?;
    let req = msg::Builder::new(msg::BINDING, msg::Class::Request, &tid).fingerprint();
    let mut buf = [0u8; 1024];
    for _ in 0..10 {
        s.send_to(&req, server)
            .map_err(|e| format!("send to {server}: {e}"))?;
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let Ok(m) = msg::Message::parse(&buf[..n]) else {
                continue;
            };
            if from == server && m.tid == tid && m.class == msg::Class::Success {
                if m.get(attr::XOR_MAPPED_ADDRESS)
                    .and_then(|v| attr::decode_xor_addr(v, &tid))
                    .is_some()
                {
                    return Ok(());
                }
                return Err("Binding answer without XOR-MAPPED-ADDRESS".into());
            }
        }
    }
    Err(format!("no STUN Binding answer from {server} in 5 s"))
}
