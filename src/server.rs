//! Listeners, TLS/ALPN dispatch and connection limits, all on one
//! `LocalExecutor` (design principle 1).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;
use async_net::{TcpListener, TcpStream};
use futures_lite::future;

use crate::config::Config;
use crate::net::timeout;
use crate::net::{Conn, Stream};
use crate::relay::limits;
use crate::relay::{ConnGuard, Ctx, IpSlot, Queues};
use crate::tls::HANDSHAKE_TIMEOUT;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Imaps,
    Imap,
    Submissions,
    Submission,
    Https,
    Http,
    Mx,
}

/// 443: one TLS acceptor; the negotiated ALPN picks IMAP, SMTP or HTTPS
/// (spec §2.1: the client offers `imap` or `smtp`; anything else is HTTPS).
async fn accept_443(
    ctx: Rc<Ctx>,
    iroh: Rc<crate::iroh::Registry>,
    tcp: TcpStream,
    ip: IpSlot,
    lan: bool,
) {
    let Some(hs) = ConnGuard::try_new(&ctx.handshakes, limits::MAX_HANDSHAKES) else {
        return;
    };
    let acceptor =
        futures_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let Some(Ok(start)) = timeout(HANDSHAKE_TIMEOUT, acceptor).await else {
        return;
    };
    let alpn: Vec<Vec<u8>> = start
        .client_hello()
        .alpn()
        .map(|i| i.map(|p| p.to_vec()).collect())
        .unwrap_or_default();
    if crate::tls::resolver::is_acme_hello(&alpn) {
        // RFC 8737 §3: a validation handshake; nothing follows it.
        let _ = timeout(
            HANDSHAKE_TIMEOUT,
            start.into_stream(ctx.tls.acme_tls.clone()),
        )
        .await;
        return;
    }
    let (cfg, kind) = if alpn.iter().any(|p| p == b"imap") {
        (ctx.tls.alpn_imap.clone(), Service::Imaps)
    } else if alpn.iter().any(|p| p == b"smtp") {
        (ctx.tls.alpn_smtp.clone(), Service::Submissions)
    } else {
        (ctx.tls.tls12.clone(), Service::Https)
    };
    // The service's slot is taken before the rest of the handshake.
    let Some(slot) = service_slot(&ctx, kind) else {
        return;
    };
    let Some(Ok(s)) = timeout(HANDSHAKE_TIMEOUT, start.into_stream(cfg)).await else {
        return;
    };
    drop(hs);
    let stream = Stream::new(Conn::Tls(Box::new(s)));
    match kind {
        Service::Imaps => crate::imap::session::run(ctx, stream, false, ip).await,
        Service::Submissions => {
            crate::smtp::session::run(ctx, stream, crate::smtp::session::Mode::Submission, ip).await
        }
        _ => http(ctx, iroh, stream, true, slot, ip, lan).await,
    }
}

/// HTTP on 443 or a plain port; a connection that upgrades to the iroh
/// relay protocol goes on to the relay service with its slots.
async fn http(
    ctx: Rc<Ctx>,
    iroh: Rc<crate::iroh::Registry>,
    stream: Stream,
    tls: bool,
    slot: ConnGuard,
    ip: IpSlot,
    lan: bool,
) {
    if let Some(s) = crate::http::serve_conn(ctx.clone(), stream, tls, lan).await {
        crate::iroh::serve(ctx, iroh, s, slot, ip).await
    }
}

/// The per-service connection slot (spec §2.1 groups: IMAP, submission,
/// MX, HTTP).
fn service_slot(ctx: &Ctx, service: Service) -> Option<ConnGuard> {
    let (counter, max) = match service {
        Service::Imaps | Service::Imap => (&ctx.imap_conns, ctx.cfg.max_imap_connections),
        Service::Submissions | Service::Submission => {
            (&ctx.smtp_conns, ctx.cfg.max_smtp_connections)
        }
        Service::Mx => (&ctx.mx_conns, ctx.cfg.max_smtp_connections),
        Service::Https | Service::Http => (&ctx.http_conns, limits::MAX_HTTP),
    };
    ConnGuard::try_new(counter, max)
}

/// Refuse a connection over a limit with the protocol's own words where the
/// protocol speaks first in plain text; TLS ports just close.
async fn refuse(service: Service, tcp: TcpStream) {
    use futures_lite::io::AsyncWriteExt;
    let line: &[u8] = match service {
        Service::Imap => b"* BYE Too many connections, try again later\r\n",
        Service::Submission | Service::Mx => b"421 4.7.0 Too many connections, try again later\r\n",
        _ => return,
    };
    let mut tcp = tcp;
    let _ = timeout(Duration::from_secs(5), tcp.write_all(line)).await;
}

async fn handle(
    ctx: Rc<Ctx>,
    iroh: Rc<crate::iroh::Registry>,
    service: Service,
    tcp: TcpStream,
    peer: IpAddr,
) {
    let _ = tcp.set_nodelay(true);
    // Counted from accept: a silent or slow peer holds its slots for at most
    // the handshake deadline, and only a few per address.
    let Some(ip) = ctx.unauth.try_take(peer) else {
        return refuse(service, tcp).await;
    };
    // Only a yes/no about the peer's range goes on (for `/status`).
    let lan = crate::config::networks::is_lan(&ctx.cfg.status_networks, peer);
    if service == Service::Https {
        return accept_443(ctx, iroh, tcp, ip, lan).await;
    }
    let Some(slot) = service_slot(&ctx, service) else {
        return refuse(service, tcp).await;
    };
    use crate::smtp::session::Mode;
    match service {
        Service::Imaps => {
            if let Some(c) = crate::tls::accept(ctx.tls.tls13.clone(), tcp).await {
                crate::imap::session::run(ctx, Stream::new(c), false, ip).await
            }
        }
        Service::Imap => {
            crate::imap::session::run(ctx, Stream::new(Conn::Plain(tcp)), true, ip).await
        }
        Service::Submissions => {
            if let Some(c) = crate::tls::accept(ctx.tls.tls13.clone(), tcp).await {
                crate::smtp::session::run(ctx, Stream::new(c), Mode::Submission, ip).await
            }
        }
        Service::Submission => {
            let s = Stream::new(Conn::Plain(tcp));
            crate::smtp::session::run(ctx, s, Mode::SubmissionStartTls, ip).await
        }
        Service::Https => unreachable!("handled above"),
        Service::Http => {
            // Port 80 serves a few fixed routes and the iroh relay; the
            // address slot stays until an iroh client has proven its key.
            http(
                ctx,
                iroh,
                Stream::new(Conn::Plain(tcp)),
                false,
                slot,
                ip,
                lan,
            )
            .await
        }
        Service::Mx => {
            // Peers never log in on port 25: the address slot lasts the connection.
            crate::smtp::session::run(ctx, Stream::new(Conn::Plain(tcp)), Mode::Mx, ip).await
        }
    }
}

async fn bind(cfg: &Config, port: u16) -> std::io::Result<TcpListener> {
    if let Some(ip) = cfg.listen_address {
        return TcpListener::bind(SocketAddr::new(ip, port)).await;
    }
    if !cfg.disable_ipv6 {
        // Dual-stack on Linux by default.
        if let Ok(l) =
            TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)).await
        {
            return Ok(l);
        }
    }
    TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).await
}

/// Bind every configured port, then serve until the process ends.
pub async fn run(
    ex: Rc<LocalExecutor<'static>>,
    ctx: Rc<Ctx>,
    queues: Queues,
) -> Result<(), String> {
    let cfg = ctx.cfg.clone();
    let services = [
        (Service::Imaps, cfg.imaps_port),
        (Service::Imap, cfg.imap_port),
        (Service::Submissions, cfg.submissions_port),
        (Service::Submission, cfg.submission_port),
        (Service::Https, cfg.https_port),
        (Service::Http, cfg.http_port),
        (Service::Mx, cfg.smtp_port),
        // Our iroh relay on its own plain-HTTP port (port 80 serves it too).
        (
            Service::Http,
            if cfg.own_iroh_relay_url().is_some() {
                cfg.iroh_relay_http_port
            } else {
                0
            },
        ),
    ];
    // Every connection is a descriptor, and each outbound delivery too.
    let needed = (cfg.max_imap_connections + 2 * cfg.max_smtp_connections + limits::MAX_HTTP)
        as u64
        + limits::MAX_HANDSHAKES as u64
        // one UDP socket per TURN allocation
        + (cfg.turn_relay_ports.1 - cfg.turn_relay_ports.0) as u64
        + cfg.iroh_relay_max_clients as u64
        + 256;
    if let Some(w) = limits::raise_nofile(needed) {
        log::warn!("{w}");
    }
    let mut listeners = Vec::new();
    for (svc, port) in services {
        if port == 0 {
            continue;
        }
        let l = bind(&cfg, port)
            .await
            .map_err(|e| format!("cannot listen on port {port} ({svc:?}): {e}"))?;
        log::info!("listening: {:?} on port {}", svc, port);
        listeners.push((svc, l));
    }
    let iroh = Rc::new(crate::iroh::Registry::default());
    for (svc, l) in listeners {
        let ctx = ctx.clone();
        let iroh = iroh.clone();
        let ex2 = ex.clone();
        ex.spawn(async move {
            loop {
                match l.accept().await {
                    // The peer address is dropped here on purpose: it is never logged or stored.
                    // The peer address only keys the in-memory per-address
                    // counter while the connection lives: never logged or stored.
                    Ok((tcp, peer)) => {
                        ex2.spawn(handle(ctx.clone(), iroh.clone(), svc, tcp, peer.ip()))
                            .detach();
                    }
                    Err(e) => {
                        log::warn!("accept failed on {svc:?}: {e}");
                        async_io::Timer::after(Duration::from_millis(100)).await;
                    }
                }
            }
        })
        .detach();
    }
    ex.spawn(crate::outbound::run(
        ex.clone(),
        ctx.clone(),
        queues.outbound,
    ))
    .detach();
    ex.spawn(crate::relay::delivery::run_committer(ctx.clone()))
        .detach();
    ex.spawn(crate::prune::control::daily(ctx.clone())).detach();
    ex.spawn(crate::acme::run(ctx.clone())).detach();
    ex.spawn(crate::ddns::run(ctx.clone())).detach();
    ex.spawn(crate::router::run(ctx.clone())).detach();
    let router_state = ctx.router.clone();
    ex.spawn(crate::doctor::cache::run(
        cfg.clone(),
        ctx.resolver.servers().to_vec(),
        ctx.selfcheck.clone(),
        Box::new(move || router_state.line()),
    ))
    .detach();
    ex.spawn(crate::push::run(ex.clone(), ctx.clone(), queues.push))
        .detach();
    match crate::prune::control::listener(&cfg) {
        Ok(l) => {
            ex.spawn(crate::prune::control::serve(ctx.clone(), l))
                .detach();
        }
        Err(e) => log::warn!(
            "control socket unavailable ({e}); 'chatrelay prune' will need the relay stopped"
        ),
    }
    crate::turn::start(&ex, &ctx)?;
    if let Some(p) = cfg.heartbeat_file.clone() {
        ex.spawn(crate::relay::heartbeat::run(p)).detach();
    }
    eprintln!("chatrelay ready: {} ", cfg.mail_domain);
    future::pending::<()>().await;
    Ok(())
}
