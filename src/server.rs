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
use crate::relay::{Ctx, Queues};
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
async fn accept_443(ctx: Rc<Ctx>, tcp: TcpStream) {
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
    let (cfg, kind) = if alpn.iter().any(|p| p == b"imap") {
        (ctx.tls.alpn_imap.clone(), Service::Imaps)
    } else if alpn.iter().any(|p| p == b"smtp") {
        (ctx.tls.alpn_smtp.clone(), Service::Submissions)
    } else {
        (ctx.tls.tls12.clone(), Service::Https)
    };
    let Some(Ok(s)) = timeout(HANDSHAKE_TIMEOUT, start.into_stream(cfg)).await else {
        return;
    };
    let stream = Stream::new(Conn::Tls(Box::new(s)));
    match kind {
        Service::Imaps => crate::imap::session::run(ctx, stream, false).await,
        Service::Submissions => {
            crate::smtp::session::run(ctx, stream, crate::smtp::session::Mode::Submission).await
        }
        _ => crate::http::serve_conn(ctx, stream, true).await,
    }
}

async fn handle(ctx: Rc<Ctx>, service: Service, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    match service {
        Service::Imaps => {
            if let Some(c) = crate::tls::accept(ctx.tls.tls13.clone(), tcp).await {
                crate::imap::session::run(ctx, Stream::new(c), false).await
            }
        }
        Service::Imap => crate::imap::session::run(ctx, Stream::new(Conn::Plain(tcp)), true).await,
        Service::Submissions => {
            if let Some(c) = crate::tls::accept(ctx.tls.tls13.clone(), tcp).await {
                crate::smtp::session::run(
                    ctx,
                    Stream::new(c),
                    crate::smtp::session::Mode::Submission,
                )
                .await
            }
        }
        Service::Submission => {
            crate::smtp::session::run(
                ctx,
                Stream::new(Conn::Plain(tcp)),
                crate::smtp::session::Mode::SubmissionStartTls,
            )
            .await
        }
        Service::Https => accept_443(ctx, tcp).await,
        Service::Http => crate::http::serve_conn(ctx, Stream::new(Conn::Plain(tcp)), false).await,
        Service::Mx => {
            crate::smtp::session::run(
                ctx,
                Stream::new(Conn::Plain(tcp)),
                crate::smtp::session::Mode::Mx,
            )
            .await
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
    ];
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
    for (svc, l) in listeners {
        let ctx = ctx.clone();
        let ex2 = ex.clone();
        ex.spawn(async move {
            loop {
                match l.accept().await {
                    // The peer address is dropped here on purpose: it is never logged or stored.
                    Ok((tcp, _peer)) => {
                        ex2.spawn(handle(ctx.clone(), svc, tcp)).detach();
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
    eprintln!("chatrelay ready: {} ", cfg.mail_domain);
    future::pending::<()>().await;
    Ok(())
}
