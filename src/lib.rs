//! chatrelay: a chatmail relay in one single-threaded program.
//!
//! Protocol cores (parsers, policies) live in their own modules without I/O;
//! `server` wires them to sockets on one `async_executor::LocalExecutor`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod deliver;
pub mod dkim;
pub mod dns;
pub mod hasher;
pub mod http;
pub mod https_client;
pub mod hub;
pub mod imap;
pub mod inbound;
pub mod invite;
pub mod logger;
pub mod net;
pub mod outbound;
pub mod policy;
pub mod prune;
pub mod push;
pub mod server;
pub mod smtp;
pub mod store;
pub mod tls;
