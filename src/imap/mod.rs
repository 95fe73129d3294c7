//! IMAP4rev1 server (RFC 3501) with the extensions chatmail needs.
pub mod parser;
pub mod types;
pub mod wire;
