//! Listeners, TLS/ALPN dispatch and connection limits, all on one
//! `LocalExecutor` (design principle 1).

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_executor::LocalExecutor;
use async_net::{TcpListener, TcpStream};
use futures_lite::future;

use crate::auth::Auth;
use crate::config::Config;
use crate::hub::Hub;
use crate::net::{Conn, Stream};
use crate::store::Store;
use crate::tls::TlsConfigs;

/// Everything a session needs, shared by `Rc` on the one thread.
pub struct Ctx {
    pub cfg: Rc<Config>,
    pub store: Rc<Store>,
    pub auth: Auth,
    pub hub: Rc<Hub>,
    pub tls: TlsConfigs,
    /// Wakes the outbound queue runner.
    pub outq: async_channel::Sender<()>,
    pub client_tls: crate::tls::ClientConfigs,
    pub outbound_smtp_only: crate::outbound::SmtpOnly,
    pub committer: crate::deliver::Committer,
    /// Wakes the push notification runner.
    pub pushq: async_channel::Sender<()>,
    pub resolver: crate::dns::Resolver,
    /// DKIM signing key; `None` for IP-literal relays (spec §5.3).
    pub dkim_key: Option<crate::dkim::SigningKey>,
    pub ratelimit: std::cell::RefCell<crate::smtp::ratelimit::RateLimiter>,
    pub imap_conns: Rc<Cell<usize>>,
    pub smtp_conns: Rc<Cell<usize>>,
    pub http_conns: Rc<Cell<usize>>,
}

/// Counts a live connection; decremented on drop.
pub struct ConnGuard(Rc<Cell<usize>>);

impl ConnGuard {
    pub fn try_new(c: &Rc<Cell<usize>>, max: usize) -> Option<ConnGuard> {
        if c.get() >= max {
            return None;
        }
        c.set(c.get() + 1);
        Some(ConnGuard(c.clone()))
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Run `fut` with a deadline; `None` on timeout.
pub async fn timeout<T>(d: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(d).await;
        None
    })
    .await
}

pub async fn tls_accept(cfg: Arc<rustls::ServerConfig>, tcp: TcpStream) -> Option<Conn> {
    let acc = futures_rustls::TlsAcceptor::from(cfg);
    match timeout(HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
        Some(Ok(s)) => Some(Conn::Tls(Box::new(s))),
        Some(Err(e)) => {
            log::debug!("TLS handshake failed: {e}");
            None
        }
        None => None,
    }
}

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
            if let Some(c) = tls_accept(ctx.tls.tls13.clone(), tcp).await {
                crate::imap::session::run(ctx, Stream::new(c), false).await
            }
        }
        Service::Imap => crate::imap::session::run(ctx, Stream::new(Conn::Plain(tcp)), true).await,
        Service::Submissions => {
            if let Some(c) = tls_accept(ctx.tls.tls13.clone(), tcp).await {
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
    outq: async_channel::Receiver<()>,
    pushq: async_channel::Receiver<()>,
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
    ex.spawn(crate::outbound::run(ex.clone(), ctx.clone(), outq))
        .detach();
    ex.spawn(crate::deliver::run_committer(ctx.clone()))
        .detach();
    ex.spawn(prune_timer(ctx.clone())).detach();
    ex.spawn(crate::push::run(ex.clone(), ctx.clone(), pushq))
        .detach();
    match control_listener(&cfg) {
        Ok(l) => {
            ex.spawn(control_loop(ctx.clone(), l)).detach();
        }
        Err(e) => log::warn!(
            "control socket unavailable ({e}); 'chatrelay prune' will need the relay stopped"
        ),
    }
    eprintln!("chatrelay ready: {} ", cfg.mail_domain);
    future::pending::<()>().await;
    Ok(())
}

/// Prune at startup, then daily at `prune_time` (UTC): a real deadline timer,
/// no polling.
async fn prune_timer(ctx: Rc<Ctx>) {
    loop {
        let now = crate::auth::now_secs();
        match crate::prune::run(&ctx.store, Some(&ctx.hub), &ctx.cfg, now, false).await {
            Ok(r) => log::info!("{r}"),
            Err(e) => log::error!("prune failed: {e}"),
        }
        let (h, m) = ctx.cfg.prune_time;
        let wait = crate::prune::until_next(crate::auth::now_secs(), h, m);
        async_io::Timer::after(Duration::from_secs(wait.max(1) as u64)).await;
    }
}

pub fn control_path(cfg: &Config) -> std::path::PathBuf {
    cfg.data_dir.join("control.sock")
}

fn control_listener(cfg: &Config) -> std::io::Result<async_net::unix::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let p = control_path(cfg);
    let _ = std::fs::remove_file(&p);
    let l = async_net::unix::UnixListener::bind(&p)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// The local control socket: one command line per connection, one reply line.
/// `prune <days ahead> <dry 0|1>` runs the prune inside the server, so IDLE
/// sessions see the expunges.
async fn control_loop(ctx: Rc<Ctx>, l: async_net::unix::UnixListener) {
    use futures_lite::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    loop {
        let Ok((mut conn, _)) = l.accept().await else {
            continue;
        };
        let mut line = String::new();
        let mut r = BufReader::new(conn.clone().take(256));
        if timeout(Duration::from_secs(5), r.read_line(&mut line))
            .await
            .is_none()
        {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let reply = match parts.as_slice() {
            ["prune", days, dry] => match days.parse::<i64>() {
                Ok(d) => {
                    let now = crate::auth::now_secs() + d * 86400;
                    match crate::prune::run(&ctx.store, Some(&ctx.hub), &ctx.cfg, now, *dry == "1")
                        .await
                    {
                        Ok(r) => {
                            log::info!("{r}");
                            format!("ok {r}")
                        }
                        Err(e) => format!("error {e}"),
                    }
                }
                Err(_) => "error bad day count".to_string(),
            },
            _ => "error unknown command".to_string(),
        };
        let _ = conn.write_all(format!("{reply}\n").as_bytes()).await;
    }
}
