//! What the outbound transports share: where a message goes (`Target`),
//! what came of it per recipient (`RcptResult`), and the memory of hosts
//! that speak SMTP only (spec §5.4).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

/// A host to try, with its addresses and TLS policy.
pub struct Target {
    /// Name for SNI and certificate checks (the MX host name, or the IP).
    pub host: String,
    pub addrs: Vec<IpAddr>,
    /// `_` domains and IP literals accept any certificate (spec §5.4).
    pub relaxed: bool,
}

/// Result for one recipient of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    Ok,
    /// 4xx or connection trouble: retry later.
    Temp(String),
    /// 5xx: bounce now.
    Perm(String),
}

/// Remembers hosts that answered `/mxdeliv` with "not supported" (spec §5.4: 30 minutes).
#[derive(Default)]
pub struct SmtpOnly(RefCell<HashMap<String, i64>>);

impl SmtpOnly {
    pub fn is_smtp_only(&self, host: &str, now: i64) -> bool {
        self.0
            .borrow()
            .get(host)
            .map(|until| *until > now)
            .unwrap_or(false)
    }
    pub fn set(&self, host: &str, now: i64) {
        let mut m = self.0.borrow_mut();
        if m.len() > 10_000 {
            m.retain(|_, u| *u > now);
        }
        m.insert(host.to_string(), now + 1800);
    }
    pub fn clear(&self, host: &str) {
        self.0.borrow_mut().remove(host);
    }
}
