//! chatrelay: a chatmail relay in one single-threaded program.
//!
//! Layers, bottom up (README "Architecture"; `tests/layering.rs` checks that
//! every import points down and that protocol services never use each other):
//!
//! 0. cores and primitives, no relay state: `clock`, `config`, `logger`,
//!    `net`, `mail`, `hub`, `store`, `policy`, `dkim`, `dns`, `tls`,
//!    `https_client`;
//! 1. the shared context `relay` (`relay::Ctx`, accounts, delivery, the
//!    inbound pipeline), `backup` and `upstream` (archives of the data
//!    folder, import from an upstream relay);
//! 2. protocol services: `smtp`, `imap`, `http`, `outbound`, `push`, `prune`,
//!    `turn`, `iroh` (the iroh relay);
//! 3. `server`: binds the listeners and dispatches connections to services.
#![forbid(unsafe_code)]

// 0: cores and primitives
pub mod clock;
pub mod config;
pub mod dkim;
pub mod dns;
pub mod https_client;
pub mod hub;
pub mod logger;
pub mod mail;
pub mod natpmp;
pub mod net;
pub mod policy;
pub mod store;
pub mod tls;

// 1: shared context
pub mod backup;
pub mod doctor;
pub mod relay;
pub mod upstream;

// 2: protocol services
pub mod acme;
pub mod ddns;
pub mod http;
pub mod imap;
pub mod iroh;
pub mod outbound;
pub mod prune;
pub mod push;
pub mod router;
pub mod smtp;
pub mod turn;

// 3: listeners
pub mod server;
