//! chatrelay: a chatmail relay in one single-threaded program.
//!
//! Protocol cores (parsers, policies) live in their own modules without I/O;
//! `server` wires them to sockets on one `async_executor::LocalExecutor`.
#![forbid(unsafe_code)]

pub mod policy;
pub mod imap;
