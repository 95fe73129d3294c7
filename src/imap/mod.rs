//! IMAP4rev1 server (RFC 3501) with the extensions chatmail needs.
//! `parser`/`types`/`wire` are the protocol core without I/O; `session` and
//! the command-group files drive it over a connection.
pub mod parser;
pub mod types;
pub mod wire;

mod fetch;
mod idle;
mod mailbox;
pub mod metadata;
pub mod mime;
mod search;
mod selected;
pub mod session;
