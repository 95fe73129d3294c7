//! The shared context: the state every session and service holds (`Ctx`),
//! and the relay's own logic that more than one protocol uses — accounts
//! and login (`auth`, `hasher`), invitations (`invite`), durable delivery
//! into the store (`delivery`) and the incoming pipeline of port 25 and
//! `/mxdeliv` (`inbound`).
//!
//! This layer imports no protocol service (smtp, imap, http, outbound,
//! push, prune) and not the server; services above it are woken through
//! the channels it owns (`outq`, `pushq`). `tests/layering.rs` checks it.

use std::cell::Cell;
use std::rc::Rc;

use crate::config::Config;
use crate::hub::Hub;
use crate::store::Store;
use crate::tls::TlsConfigs;

pub mod auth;
pub mod cpu;
pub mod delivery;
pub mod hasher;
pub mod heartbeat;
pub mod inbound;
pub mod invite;
pub mod limits;
pub mod ratelimit;
pub mod registration;
pub mod router_state;
pub mod stats;
pub mod turn_secret;

use auth::Auth;
pub use limits::{ConnGuard, IpSlot, IpSlots};

/// Bodies larger than this hold one of `Ctx::big_bodies` while being read.
pub const BIG_BODY: usize = 64 * 1024;

/// Messages above this size get their policy check, header rewrite and
/// DKIM hashing on the cpu thread ([`cpu`]): on the loop, refusing one
/// 23 MB message held every other session ~200 ms.
pub const OFF_LOOP_ABOVE: usize = 256 * 1024;

/// Run `f` (CPU work over a message of `size` bytes) inline when the
/// message is small, on the cpu thread when it is big.
pub async fn offload<T: Send + 'static>(size: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    if size > OFF_LOOP_ABOVE {
        cpu::run(f).await
    } else {
        f()
    }
}
/// How many large bodies (DATA, APPEND literals, `/mxdeliv`) are read at once.
pub const BIG_BODIES_AT_ONCE: usize = 4;

/// Most recipients per message, on every way in (SMTP `RCPT`, `/mxdeliv`).
pub const MAX_RECIPIENTS: usize = 1000;

/// Everything a session needs, shared by `Rc` on the one thread.
pub struct Ctx {
    pub cfg: Rc<Config>,
    pub store: std::sync::Arc<Store>,
    /// The store thread: durable index commits run there, never on the loop.
    pub writer: crate::store::writer::Writer,
    pub auth: Auth,
    pub hub: Rc<Hub>,
    pub tls: TlsConfigs,
    /// Wakes the outbound queue runner.
    pub outq: async_channel::Sender<()>,
    pub client_tls: crate::tls::ClientConfigs,
    pub committer: delivery::Committer,
    /// Wakes the push notification runner.
    pub pushq: async_channel::Sender<()>,
    pub resolver: crate::dns::Resolver,
    /// DKIM signing key; `None` for IP-literal relays (spec §5.3).
    pub dkim_key: Option<std::sync::Arc<crate::dkim::SigningKey>>,
    pub ratelimit: std::cell::RefCell<ratelimit::RateLimiter>,
    /// Live connections per service, counted from accept (before TLS).
    pub imap_conns: Rc<Cell<usize>>,
    /// Submission: 465, 587 and 443 with ALPN `smtp`.
    pub smtp_conns: Rc<Cell<usize>>,
    /// Port 25.
    pub mx_conns: Rc<Cell<usize>>,
    pub http_conns: Rc<Cell<usize>>,
    /// TLS handshakes on 443 before ALPN has picked the service.
    pub handshakes: Rc<Cell<usize>>,
    /// Connections per client address that have not logged in (memory only,
    /// for as long as the connection lives).
    pub unauth: Rc<IpSlots>,
    /// Permits to buffer a body larger than [`BIG_BODY`] (memory bound).
    pub big_bodies: std::sync::Arc<async_lock::Semaphore>,
    /// The first-start admin invitation (invite mode, no accounts yet):
    /// in memory only, shown on `/status` and by `chatrelay invite`.
    pub first_invite: std::cell::RefCell<Option<String>>,
    /// Secret of our own TURN server's REST credentials (issue 11); `None`
    /// when an external TURN server is configured or `turn_port = 0`.
    pub turn_secret: Option<String>,
    /// Counters of the realtime services (no keys, no addresses).
    pub realtime: stats::Realtime,
    /// The router's WAN address and the port mappings (router service).
    pub router: Rc<router_state::RouterState>,
    /// The background self-check's last result (`crate::doctor::cache`).
    pub selfcheck: Rc<crate::doctor::cache::SelfCheck>,
}

/// The receiving ends of the wake-up channels the context owns: the server
/// hands them to the services that drain the durable queues.
pub struct Queues {
    /// New outbound queue entries (`crate::outbound`).
    pub outbound: async_channel::Receiver<()>,
    /// New push notifications (`crate::push`).
    pub push: async_channel::Receiver<()>,
}

impl Ctx {
    /// Open the data folder (store, TLS, DKIM key) and build the context.
    pub fn open(cfg: Config) -> Result<(Ctx, Queues), String> {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| format!("cannot create data folder {}: {e}", cfg.data_dir.display()))?;
        let store = Store::open(&cfg.data_dir)
            .map_err(|e| format!("cannot open the store in {}: {e}", cfg.data_dir.display()))?;
        store.set_max_messages(cfg.max_messages_per_mailbox);
        let tls = crate::tls::load_configs(&cfg).map_err(|e| format!("TLS: {e}"))?;
        let client_tls = crate::tls::client_configs(cfg.tls_extra_ca.as_deref())
            .map_err(|e| format!("TLS: {e}"))?;
        let (outq, outbound) = async_channel::bounded(1);
        let (pushq, push) = async_channel::bounded(1);
        let dkim_key = match cfg.ip_literal {
            Some(_) => None,
            None => Some(std::sync::Arc::new(
                crate::dkim::SigningKey::load_or_generate(
                    &cfg.data_dir,
                    &cfg.dkim_selector,
                    cfg.dkim_ed25519,
                )
                .map_err(|e| format!("DKIM key: {e}"))?,
            )),
        };
        let resolver = if cfg.dns_servers.is_empty() {
            crate::dns::Resolver::from_resolv_conf()
        } else {
            crate::dns::Resolver::new(cfg.dns_servers.clone())
        };
        let ratelimit = std::cell::RefCell::new(ratelimit::RateLimiter::new(
            cfg.max_user_send_per_minute,
            cfg.max_user_send_burst_size,
        ));
        let first_invite = registration::first_invite(&store, &cfg, crate::clock::now_secs())?;
        let turn_secret = if cfg.turn.is_none() && cfg.turn_port != 0 {
            Some(turn_secret::load_or_create(&cfg.data_dir).map_err(|e| format!("TURN: {e}"))?)
        } else {
            None
        };
        let cfg = Rc::new(cfg);
        let store = std::sync::Arc::new(store);
        let writer = crate::store::writer::Writer::spawn(store.clone())
            .map_err(|e| format!("cannot start the store thread: {e}"))?;
        let ctx = Ctx {
            auth: Auth::new(cfg.clone(), store.clone(), writer.clone()),
            first_invite: std::cell::RefCell::new(first_invite),
            cfg,
            store,
            writer,
            hub: Rc::new(Hub::default()),
            tls,
            outq,
            client_tls,
            committer: Default::default(),
            pushq,
            dkim_key,
            resolver,
            ratelimit,
            imap_conns: Default::default(),
            smtp_conns: Default::default(),
            mx_conns: Default::default(),
            http_conns: Default::default(),
            handshakes: Default::default(),
            unauth: Rc::new(IpSlots::new(limits::UNAUTH_PER_IP)),
            big_bodies: std::sync::Arc::new(async_lock::Semaphore::new(BIG_BODIES_AT_ONCE)),
            turn_secret,
            realtime: Default::default(),
            router: Default::default(),
            selfcheck: Default::default(),
        };
        Ok((ctx, Queues { outbound, push }))
    }
}
