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
    ex.spawn(udp::run(ex.clone(), sock, turn, cfg.listen_address))
        .detach();
    Ok(())
}
