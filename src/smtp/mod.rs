//! SMTP: submission (465/587/443-ALPN) sessions; outbound delivery comes later.
pub mod session;
