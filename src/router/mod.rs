//! Router port mapping with NAT-PMP (RFC 6886), else UPnP-IGD (IGD:2 or
//! IGD:1): the relay asks the router for its WAN address and to forward
//! each port the relay serves, renews every mapping at half its lifetime
//! (which also brings back mappings a rebooted router forgot, RFC 6886
//! §3.7), and deletes them on SIGTERM/SIGINT. All I/O is non-blocking with
//! deadlines. PCP is not implemented.

pub mod igd;
pub mod upnp;

pub use crate::natpmp;
pub use crate::natpmp::gateway;

use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::Duration;

use natpmp::Proto;

use crate::doctor::address::{classify, AddressKind};
use crate::relay::Ctx;

const MAX_BACKOFF: u64 = 3600;

/// Ports to map: every TCP service that is on, UDP 3478-style TURN when set.
pub fn wanted(cfg: &crate::config::Config) -> Vec<(Proto, u16)> {
    let mut v: Vec<(Proto, u16)> = [
        cfg.smtp_port,
        cfg.http_port,
        cfg.https_port,
        cfg.submissions_port,
        cfg.submission_port,
        cfg.imap_port,
        cfg.imaps_port,
    ]
    .into_iter()
    .filter(|p| *p != 0)
    .map(|p| (Proto::Tcp, p))
    .collect();
    if let Some((_, port, _)) = &cfg.turn {
        v.push((Proto::Udp, *port));
    }
    v
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

fn say_wan(wan: Ipv4Addr) {
    match classify(IpAddr::V4(wan)) {
        AddressKind::Public => log::info!("router: WAN address {wan} (public)"),
        AddressKind::Cgnat => log::warn!("router: WAN address {wan} is carrier-grade NAT (100.64.0.0/10): connections from the Internet cannot reach this relay"),
        AddressKind::Private => log::warn!("router: WAN address {wan} is private: connections from the Internet cannot reach this relay (double NAT?)"),
    }
}

/// One UPnP round: WAN address, then AddPortMapping for every port
/// (WANIPConnection §2.4.16; 718 = another device holds the port).
/// Returns the lease to renew by.
async fn upnp_round(
    cfg: &crate::config::Config,
    g: &igd::Igd,
    ports: &[(Proto, u16)],
    mapped: &std::cell::RefCell<Vec<(Proto, u16)>>,
) -> u64 {
    if let Some(wan) = igd::external_ip(g).await {
        say_wan(wan);
    }
    let mut ok = Vec::new();
    for (proto, port) in ports {
        match igd::add(
            g,
            proto_name(*proto),
            *port,
            cfg.port_mapping_lifetime as u32,
        )
        .await
        {
            Ok(()) => ok.push((*proto, *port)),
            Err(code) => log::warn!("router: port {port} not mapped: {}", upnp::fault_text(code)),
        }
    }
    log::info!(
        "router: mapped {} of {} ports by UPnP ({}), lifetime {} s",
        ok.len(),
        ports.len(),
        ok.iter()
            .map(|(_, p)| p.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        cfg.port_mapping_lifetime
    );
    *mapped.borrow_mut() = ok;
    cfg.port_mapping_lifetime
}

async fn sleep(secs: u64) {
    async_io::Timer::after(Duration::from_secs(secs.max(1))).await;
}

/// The port-mapping task (spawned by the server when `port_mapping = auto`).
pub async fn run(ctx: Rc<Ctx>) {
    let cfg = ctx.cfg.clone();
    if !cfg.port_mapping {
        return;
    }
    let ports = wanted(&cfg);
    let mapped = std::cell::RefCell::new(Vec::<(Proto, u16)>::new());
    let gw_cell = std::cell::Cell::new(None::<Ipv4Addr>);
    let igd_cell = std::cell::RefCell::new(None::<igd::Igd>);
    let work = async {
        let mut failures = 0u32;
        let mut last_epoch: Option<u32> = None;
        let mut said_no_gw = false;
        loop {
            let Some(gw) = cfg.router_address.or_else(gateway::default_gateway) else {
                if !said_no_gw {
                    log::warn!("router: no default gateway; no port mapping");
                    said_no_gw = true;
                }
                sleep(60).await;
                continue;
            };
            gw_cell.set(Some(gw));
            let sock = match natpmp::connect(gw).await {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("router: {e}");
                    sleep(60).await;
                    continue;
                }
            };
            let ext = natpmp::transact(
                &sock,
                &natpmp::external_address_request(),
                natpmp::parse_external_address,
            )
            .await;
            let (epoch, wan) = match ext {
                Ok(v) => v,
                // UPnP-IGD only on the LAN's own router: an explicit
                // `router_address` means that NAT-PMP router.
                Err(e)
                    if cfg.router_address.is_none() && {
                        let found = igd::discover().await;
                        let some = found.is_some();
                        *igd_cell.borrow_mut() = found;
                        some
                    } =>
                {
                    let g = igd_cell.borrow().clone().expect("found");
                    log::info!("router: no NAT-PMP ({e}); using UPnP-IGD {}", g.service);
                    let lifetime = upnp_round(&cfg, &g, &ports, &mapped).await;
                    failures = 0;
                    sleep((lifetime / 2).max(1)).await;
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    let w = (cfg.port_mapping_lifetime / 4)
                        .max(30)
                        .saturating_mul(1 << failures.min(8))
                        .min(MAX_BACKOFF);
                    log::warn!("router: no NAT-PMP answer from the router ({e}) and no UPnP-IGD: forward the ports by hand; next try in {w} s");
                    sleep(w).await;
                    continue;
                }
            };
            if last_epoch.is_some_and(|p| epoch < p) {
                log::info!("router: the router restarted (epoch went back); mapping again");
            }
            last_epoch = Some(epoch);
            say_wan(wan);
            *igd_cell.borrow_mut() = None;
            let mut ok = Vec::new();
            let mut lifetime = cfg.port_mapping_lifetime;
            for (proto, port) in &ports {
                let req =
                    natpmp::map_request(*proto, *port, *port, cfg.port_mapping_lifetime as u32);
                // A late reply to an earlier request (another port) is skipped.
                let parse = |b: &[u8]| {
                    natpmp::parse_map(b, *proto).and_then(|m| match m.internal == *port {
                        true => Ok(m),
                        false => Err(natpmp::Error::Malformed("reply for another port")),
                    })
                };
                match natpmp::transact(&sock, &req, parse).await {
                    Ok(m) => {
                        if m.external != *port {
                            log::warn!("router: port {port} is forwarded from external port {} (the standard port is taken)", m.external);
                        }
                        lifetime = lifetime.min(u64::from(m.lifetime));
                        ok.push((*proto, *port));
                    }
                    Err(e) => log::warn!("router: port {port} not mapped: {e}"),
                }
            }
            failures = 0;
            log::info!(
                "router: mapped {} of {} ports ({}), lifetime {lifetime} s",
                ok.len(),
                ports.len(),
                ok.iter()
                    .map(|(_, p)| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            *mapped.borrow_mut() = ok;
            // RFC 6886 §3.3: renew at half the lifetime.
            sleep((lifetime / 2).max(1)).await;
        }
    };
    let signal = async {
        use futures_lite::StreamExt;
        match async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int]) {
            Ok(mut s) => {
                s.next().await;
            }
            Err(e) => {
                log::warn!(
                    "router: cannot watch for SIGTERM ({e}); mappings stay until they expire"
                );
                futures_lite::future::pending::<()>().await
            }
        }
    };
    futures_lite::future::or(work, signal).await;
    let list = mapped.borrow().clone();
    let igd_now = igd_cell.borrow().clone();
    if let (Some(g), false) = (igd_now, list.is_empty()) {
        let mut n = 0;
        for (proto, port) in &list {
            if igd::delete(&g, proto_name(*proto), *port).await.is_ok() {
                n += 1;
            }
        }
        log::info!("router: removed {n} of {} port mappings", list.len());
        std::process::exit(0);
    }
    // Clean shutdown: RFC 6886 §3.4 deletion (lifetime 0), one round.
    if let (Some(gw), false) = (gw_cell.get(), list.is_empty()) {
        if let Ok(sock) = natpmp::connect(gw).await {
            {
                let mut n = 0;
                for (proto, port) in &list {
                    let req = natpmp::map_request(*proto, *port, 0, 0);
                    let parse = |b: &[u8]| {
                        natpmp::parse_map(b, *proto).and_then(|m| match m.internal == *port {
                            true => Ok(m),
                            false => Err(natpmp::Error::Malformed("reply for another port")),
                        })
                    };
                    if natpmp::transact(&sock, &req, parse).await.is_ok() {
                        n += 1;
                    }
                }
                log::info!("router: removed {n} of {} port mappings", list.len());
            }
        }
    }
    std::process::exit(0);
}
