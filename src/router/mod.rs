//! Router port mapping: PCP (RFC 6887) first, then NAT-PMP (RFC 6886; a
//! PCP request answered "unsupported version" means the router speaks only
//! NAT-PMP, RFC 6887 §9), then UPnP-IGD (IGD:2 or IGD:1). The relay asks
//! the router to forward each port it serves (TCP services, and UDP for its
//! own TURN server: 3478 and the relay port range, see [`wanted`]), learns
//! the WAN address (reported to DDNS, TURN and `chatrelay doctor` through
//! [`crate::relay::router_state`]), renews every mapping at half its
//! lifetime, makes them again when the router lost its state (PCP epoch
//! check, RFC 6887 §8.5, and its unsolicited ANNOUNCE, §14.1.3; NAT-PMP
//! epoch, RFC 6886 §3.6), and deletes them on SIGTERM/SIGINT (lifetime 0).
//! All I/O is non-blocking with deadlines.

pub mod igd;
mod pcp_client;
pub mod upnp;

pub use crate::natpmp;
pub use crate::natpmp::gateway;

use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use natpmp::{pcp, Proto, Step};

use crate::doctor::address::{classify, AddressKind};
use crate::relay::router_state::{PortReport, PortState};
use crate::relay::Ctx;

const MAX_BACKOFF: u64 = 3600;
/// At most this many TURN relay ports are mapped (the first ones of
/// `turn_relay_ports`; the default range has 256). Each is one request per
/// renewal.
pub const MAX_RELAY_PORTS_MAPPED: u16 = 256;
/// An ANNOUNCE triggers a new round at most this often (a LAN host cannot
/// make the relay flood the router).
const ANNOUNCE_GAP: Duration = Duration::from_secs(10);
/// Unanswered requests in a row after which a round stops (the router went
/// away): the other ports wait for the next round, not 3.75 s each.
const MAX_SILENT: usize = 3;
/// The deletions at shutdown take at most this long in all.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// One port to map and its PCP nonce (RFC 6887 §11.1: the same nonce for
/// the life of the mapping, so renewals and the deletion are recognised).
#[derive(Debug, Clone)]
pub struct Want {
    pub proto: Proto,
    pub port: u16,
    pub nonce: pcp::Nonce,
}

/// Ports to map: every TCP service that is on; for our own TURN server
/// (no external `turn_host`, `turn_port` not 0) UDP `turn_port` and the
/// relay ports, at most [`MAX_RELAY_PORTS_MAPPED`] of them.
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
    if cfg.turn.is_none() && cfg.turn_port != 0 {
        v.push((Proto::Udp, cfg.turn_port));
        let (lo, hi) = cfg.turn_relay_ports;
        let hi = hi.min(lo.saturating_add(MAX_RELAY_PORTS_MAPPED - 1));
        v.extend((lo..=hi).map(|p| (Proto::Udp, p)));
    }
    v
}

pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
    }
}

fn say_wan(ctx: &Ctx, wan: Ipv4Addr) {
    if ctx.router.wan() != Some(wan) {
        match classify(IpAddr::V4(wan)) {
            AddressKind::Public => log::info!("router: WAN address {wan} (public)"),
            AddressKind::Cgnat => log::warn!("router: WAN address {wan} is carrier-grade NAT (100.64.0.0/10): connections from the Internet cannot reach this relay"),
            AddressKind::Private => log::warn!("router: WAN address {wan} is private: connections from the Internet cannot reach this relay (double NAT?)"),
        }
    }
    ctx.router.set_wan(wan);
}

/// How the router was reached.
#[derive(Debug, Clone)]
enum Method {
    Pcp,
    NatPmp,
    Upnp(igd::Igd),
}

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Pcp => "PCP",
            Method::NatPmp => "NAT-PMP",
            Method::Upnp(_) => "UPnP-IGD",
        }
    }
}

/// What one round of requests gave.
struct Round {
    method: Method,
    wan: Option<Ipv4Addr>,
    states: Vec<PortState>,
    /// Seconds until the first mapping ends.
    lifetime: u64,
}

/// One NAT-PMP round: WAN address (§3.2), then every mapping (§3.3).
/// Err when the router does not answer NAT-PMP.
async fn natpmp_round(
    sock: &async_net::UdpSocket,
    wants: &[Want],
    lifetime: u32,
    last_epoch: &mut Option<u32>,
) -> Result<Round, String> {
    let (epoch, wan) = natpmp::transact(
        sock,
        &natpmp::external_address_request(),
        natpmp::parse_external_address,
    )
    .await?;
    if last_epoch.is_some_and(|p| epoch < p) {
        log::info!("router: the router restarted (NAT-PMP epoch went back); mapping again");
    }
    *last_epoch = Some(epoch);
    let mut states = Vec::with_capacity(wants.len());
    let mut granted = u64::from(lifetime);
    let mut silent = 0;
    for w in wants {
        if silent >= MAX_SILENT {
            states.push(PortState::NotTried);
            continue;
        }
        let port = w.port;
        let req = natpmp::map_request(w.proto, port, port, lifetime);
        // A late reply to an earlier request (another port) is skipped.
        let parse = |b: &[u8]| {
            natpmp::parse_map(b, w.proto).and_then(|m| match m.internal == port {
                true => Ok(m),
                false => Err(natpmp::Error::Malformed("reply for another port")),
            })
        };
        let answer = natpmp::exchange(sock, &req, |b| match parse(b) {
            Ok(m) => Step::Done(Ok(m)),
            Err(natpmp::Error::Refused(c)) => Step::Done(Err(natpmp::result_text(c))),
            Err(e) => Step::Skip(e.to_string()),
        })
        .await;
        silent = if answer.is_err() { silent + 1 } else { 0 };
        states.push(match answer {
            Ok(Ok(m)) => {
                granted = granted.min(u64::from(m.lifetime));
                PortState::Mapped {
                    external: m.external,
                    by: "NAT-PMP",
                }
            }
            Ok(Err(e)) => PortState::Refused(e),
            Err(e) => PortState::Refused(format!("no answer ({e})")),
        });
    }
    Ok(Round {
        method: Method::NatPmp,
        wan: Some(wan),
        states,
        lifetime: granted,
    })
}

/// One UPnP round: WAN address, then AddPortMapping for every port
/// (WANIPConnection §2.4.16; 718 = another device holds the port).
async fn upnp_round(g: &igd::Igd, wants: &[Want], lifetime: u64) -> Round {
    let wan = igd::external_ip(g).await;
    let mut states = Vec::with_capacity(wants.len());
    for w in wants {
        states.push(
            match igd::add(g, proto_name(w.proto), w.port, lifetime as u32).await {
                Ok(()) => PortState::Mapped {
                    external: w.port,
                    by: "UPnP-IGD",
                },
                Err(code) => PortState::Refused(upnp::fault_text(code)),
            },
        );
    }
    Round {
        method: Method::Upnp(g.clone()),
        wan,
        states,
        lifetime,
    }
}

/// The summary lines of a round: what was mapped, and the refusals grouped
/// by reason (a refused relay port range is one line, not 256).
fn log_round(r: &Round, wants: &[Want]) {
    let ok: Vec<String> = wants
        .iter()
        .zip(&r.states)
        .filter(|(_, s)| matches!(s, PortState::Mapped { .. }))
        .map(|(w, _)| w.port.to_string())
        .collect();
    let mut refused: Vec<(&str, Vec<u16>)> = Vec::new();
    for (w, s) in wants.iter().zip(&r.states) {
        match s {
            PortState::Mapped { external, .. } if *external != w.port => {
                log::warn!(
                    "router: port {} is forwarded from external port {external} (the standard port is taken)",
                    w.port
                )
            }
            PortState::Refused(why) => match refused.iter_mut().find(|(r, _)| r == why) {
                Some((_, v)) => v.push(w.port),
                None => refused.push((why, vec![w.port])),
            },
            _ => {}
        }
    }
    for (why, ports) in refused {
        match ports.as_slice() {
            [p] => log::warn!("router: port {p} not mapped: {why}"),
            v => log::warn!(
                "router: {} ports not mapped: {why}: {}{}",
                v.len(),
                v.iter()
                    .take(20)
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                if v.len() > 20 { " …" } else { "" }
            ),
        }
    }
    let shown = if ok.len() > 12 {
        format!("{} … {}", ok[..9].join(" "), ok[ok.len() - 1])
    } else {
        ok.join(" ")
    };
    log::info!(
        "router: mapped {} of {} ports by {} ({shown}), lifetime {} s",
        ok.len(),
        wants.len(),
        r.method.name(),
        r.lifetime
    );
}

/// Wait `secs`, or less when the router announces a restart (RFC 6887
/// §14.1.3): then the next round starts after a second. Announcements
/// closer than [`ANNOUNCE_GAP`] to the last one that counted are ignored.
async fn pause(
    secs: u64,
    announced: &async_channel::Receiver<()>,
    last: &std::cell::Cell<Option<Instant>>,
) {
    let deadline = Instant::now() + Duration::from_secs(secs.max(1));
    loop {
        let timer = async {
            async_io::Timer::at(deadline).await;
            false
        };
        let announce = async {
            if announced.recv().await.is_err() {
                // No listener: only the timer.
                async_io::Timer::at(deadline).await;
                return false;
            }
            true
        };
        if !futures_lite::future::or(timer, announce).await {
            return;
        }
        if last.get().is_some_and(|t| t.elapsed() < ANNOUNCE_GAP) {
            continue;
        }
        last.set(Some(Instant::now()));
        async_io::Timer::after(Duration::from_secs(1)).await;
        return;
    }
}

async fn sleep(secs: u64) {
    async_io::Timer::after(Duration::from_secs(secs.max(1))).await;
}

fn random_nonce() -> pcp::Nonce {
    let mut n = [0u8; 12];
    // On failure (no randomness) the nonce stays zero: still one per
    // mapping, only guessable.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut n);
    n
}

/// The port-mapping task (spawned by the server when `port_mapping = auto`).
pub async fn run(ctx: Rc<Ctx>) {
    let cfg = ctx.cfg.clone();
    if !cfg.port_mapping {
        return;
    }
    let wants: Vec<Want> = wanted(&cfg)
        .into_iter()
        .map(|(proto, port)| Want {
            proto,
            port,
            nonce: random_nonce(),
        })
        .collect();
    let (lo, hi) = cfg.turn_relay_ports;
    if cfg.turn.is_none()
        && cfg.turn_port != 0
        && u32::from(hi - lo) + 1 > u32::from(MAX_RELAY_PORTS_MAPPED)
    {
        log::warn!(
            "router: only the first {MAX_RELAY_PORTS_MAPPED} TURN relay ports ({lo}-{}) are mapped; forward the rest by hand",
            lo + MAX_RELAY_PORTS_MAPPED - 1
        );
    }
    let local = match cfg.listen_address {
        Some(IpAddr::V4(a)) if !a.is_unspecified() => Some(a),
        _ => None,
    };
    let not_tried = || -> Vec<PortReport> {
        wants
            .iter()
            .map(|w| PortReport {
                proto: proto_name(w.proto),
                port: w.port,
                state: PortState::NotTried,
            })
            .collect()
    };
    ctx.router
        .set_ports("no answer from the router yet", not_tried());
    // The mappings held now, and how they were made (for the deletion).
    let held = std::cell::RefCell::new((None::<Method>, None::<Ipv4Addr>, Vec::<usize>::new()));
    let (announce_tx, announce_rx) = async_channel::bounded::<()>(1);
    let gw_now = std::cell::Cell::new(None::<Ipv4Addr>);
    let last_announce = std::cell::Cell::new(None::<Instant>);
    let work = async {
        let mut failures = 0u32;
        let mut nat_epoch: Option<u32> = None;
        let mut pcp_epoch: Option<pcp::Epoch> = None;
        let mut said_no_gw = false;
        let t0 = Instant::now();
        loop {
            let Some(gw) = cfg.router_address.or_else(gateway::default_gateway) else {
                if !said_no_gw {
                    log::warn!("router: no default gateway; no port mapping");
                    ctx.router.set_method("no default gateway");
                    said_no_gw = true;
                }
                sleep(60).await;
                continue;
            };
            gw_now.set(Some(gw));
            let sock = match natpmp::connect(gw, local).await {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("router: {e}");
                    sleep(60).await;
                    continue;
                }
            };
            let client = sock
                .local_addr()
                .map(|a| a.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let lifetime = cfg.port_mapping_lifetime as u32;
            let round = match pcp_client::round(&sock, client, &wants, lifetime, &mut pcp_epoch, t0)
                .await
            {
                Ok(r) => Ok(r),
                Err(e_pcp) => match natpmp_round(&sock, &wants, lifetime, &mut nat_epoch).await {
                    Ok(r) => {
                        log::debug!("router: no PCP ({e_pcp})");
                        Ok(r)
                    }
                    // UPnP-IGD only on the LAN's own router: an explicit
                    // `router_address` means a PCP/NAT-PMP router.
                    Err(e) if cfg.router_address.is_none() => match igd::discover().await {
                        Some(g) => {
                            log::info!(
                                "router: no PCP or NAT-PMP ({e}); using UPnP-IGD {}",
                                g.service
                            );
                            Ok(upnp_round(&g, &wants, cfg.port_mapping_lifetime).await)
                        }
                        None => Err(format!("PCP: {e_pcp}; NAT-PMP: {e}; no UPnP-IGD found")),
                    },
                    Err(e) => Err(format!("PCP: {e_pcp}; NAT-PMP: {e}")),
                },
            };
            let round = match round {
                Ok(r) => r,
                Err(e) => {
                    failures += 1;
                    let w = (cfg.port_mapping_lifetime / 4)
                        .max(30)
                        .saturating_mul(1 << failures.min(8))
                        .min(MAX_BACKOFF);
                    log::warn!("router: no answer to PCP, NAT-PMP or UPnP-IGD from the router ({e}): forward the ports by hand; next try in {w} s");
                    ctx.router.set_ports(
                        "no answer from the router (PCP, NAT-PMP, UPnP-IGD)",
                        not_tried(),
                    );
                    pause(w, &announce_rx, &last_announce).await;
                    continue;
                }
            };
            failures = 0;
            if let Some(wan) = round.wan {
                say_wan(&ctx, wan);
            }
            log_round(&round, &wants);
            ctx.router.set_ports(
                round.method.name(),
                wants
                    .iter()
                    .zip(&round.states)
                    .map(|(w, s)| PortReport {
                        proto: proto_name(w.proto),
                        port: w.port,
                        state: s.clone(),
                    })
                    .collect(),
            );
            let mapped: Vec<usize> = round
                .states
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, PortState::Mapped { .. }))
                .map(|(i, _)| i)
                .collect();
            *held.borrow_mut() = (Some(round.method), Some(gw), mapped);
            // RFC 6887 §11.2.1 / RFC 6886 §3.3: renew at half the lifetime;
            // a PCP router's ANNOUNCE (it restarted) renews at once.
            pause((round.lifetime / 2).max(1), &announce_rx, &last_announce).await;
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
    let announcements = pcp_client::announcements(&gw_now, announce_tx);
    futures_lite::future::or(futures_lite::future::or(work, announcements), signal).await;
    let (method, gw, list) = held.borrow().clone();
    let removed = std::cell::Cell::new(0usize);
    let deletions = async {
        match (method, gw) {
            _ if list.is_empty() => {}
            (Some(Method::Upnp(g)), _) => {
                for &i in &list {
                    match igd::delete(&g, proto_name(wants[i].proto), wants[i].port).await {
                        Ok(()) => removed.set(removed.get() + 1),
                        // The router is gone: no use asking for the rest.
                        Err(0) => break,
                        Err(_) => {}
                    }
                }
            }
            // RFC 6887 §15 / RFC 6886 §3.4: deletion is a request with
            // lifetime 0 (PCP: with the mapping's nonce), one round.
            (Some(m), Some(gw)) => {
                let Ok(sock) = natpmp::connect(gw, local).await else {
                    return;
                };
                let client = sock
                    .local_addr()
                    .map(|a| a.ip())
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                for &i in &list {
                    let w = &wants[i];
                    let answered = match m {
                        Method::Pcp => pcp_client::delete(&sock, client, w).await,
                        _ => {
                            let req = natpmp::map_request(w.proto, w.port, 0, 0);
                            natpmp::exchange(&sock, &req, |b| match natpmp::parse_map(b, w.proto) {
                                Ok(r) if r.internal == w.port => Step::Done(true),
                                Err(natpmp::Error::Refused(_)) => Step::Done(false),
                                _ => Step::Skip(String::new()),
                            })
                            .await
                            .ok()
                        }
                    };
                    match answered {
                        Some(true) => removed.set(removed.get() + 1),
                        Some(false) => {}
                        None => break,
                    }
                }
            }
            _ => {}
        }
    };
    let n = match list.is_empty() {
        true => None,
        false => {
            if crate::net::timeout(SHUTDOWN_DEADLINE, deletions)
                .await
                .is_none()
            {
                log::warn!("router: the router did not confirm every deletion in time; the rest expire with their lifetime");
            }
            Some(removed.get())
        }
    };
    if let Some(n) = n {
        log::info!("router: removed {n} of {} port mappings", list.len());
    }
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    #[test]
    fn turn_ports_are_wanted_and_bounded() {
        let ini = |extra: &str| {
            crate::config::Config::from_ini(
                &format!("[params]\nmail_domain = example.org\n{extra}"),
                None,
            )
            .unwrap()
        };
        let w = super::wanted(&ini("turn_relay_ports = 50000-50003\n"));
        assert_eq!(w.len(), 7 + 1 + 4);
        assert!(w.contains(&(super::Proto::Udp, 3478)));
        assert!(w.contains(&(super::Proto::Udp, 50003)));
        let w = super::wanted(&ini("turn_relay_ports = 40000-60000\n"));
        assert_eq!(w.len(), 7 + 1 + super::MAX_RELAY_PORTS_MAPPED as usize);
        let w = super::wanted(&ini("turn_port = 0\n"));
        assert_eq!(w.len(), 7);
    }
}
