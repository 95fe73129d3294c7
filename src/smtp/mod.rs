//! SMTP submission (465 implicit TLS, 587 STARTTLS, 443 with ALPN `smtp`):
//! a session state machine split by stage — `session` (loop, dispatch),
//! `ehlo`, `auth`, `envelope` (MAIL/RCPT), `data` — plus the per-sender
//! rate limit and address parsing.
pub mod address;
mod auth;
mod data;
mod ehlo;
mod envelope;
pub mod session;
pub mod transparency;
