//! `chatrelay doctor`: the conditions a relay on a home network needs, each
//! ok / problem / unknown with what to do. [`run`] returns them as data (for
//! the status page); [`render`] makes the text the command prints.
//!
//! It contacts nothing but the configured DNS resolver and the relay's own
//! ports (no "is my port open" service).

pub mod address;
pub mod cache;
mod checks;
pub mod mapping;

use crate::config::Config;
use crate::dns::Resolver;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok,
    Problem,
    /// Not checkable here (e.g. nothing to check against).
    Unknown,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Problem => "problem",
            State::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable key: `clock`, `dns.a`, `dns.mx`, `dns.dkim`, `dns.spf`,
    /// `dns.dmarc`, `dns.mta-sts`, `dns.www`, `certificate`, `router`,
    /// `wan`, `mapping` (one per port, or per range of relay ports),
    /// `ports`, `privacy`.
    pub id: &'static str,
    pub state: State,
    /// What was found.
    pub detail: String,
    /// What to do (empty when ok).
    pub todo: String,
}

impl Check {
    pub(crate) fn ok(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            state: State::Ok,
            detail: detail.into(),
            todo: String::new(),
        }
    }
    pub(crate) fn problem(
        id: &'static str,
        detail: impl Into<String>,
        todo: impl Into<String>,
    ) -> Check {
        Check {
            id,
            state: State::Problem,
            detail: detail.into(),
            todo: todo.into(),
        }
    }
    fn unknown(id: &'static str, detail: impl Into<String>, todo: impl Into<String>) -> Check {
        Check {
            id,
            state: State::Unknown,
            detail: detail.into(),
            todo: todo.into(),
        }
    }
}

/// Every check, in a fixed order. `now`: Unix seconds (the caller reads the
/// clock, so tests can judge a certificate at any time). Safe on the
/// relay's event loop: lookups and connections are async with deadlines,
/// file reads (DKIM key, certificate) run on the blocking pool.
pub async fn run(cfg: &Config, resolver: &Resolver, now: i64) -> Vec<Check> {
    run_with(cfg, resolver, now, None).await
}

/// [`run`] with the running relay's report of the router (its control
/// socket's `router` line, [`mapping::line`]): then the router, WAN and
/// per-port mapping checks show what the relay got from the router, and
/// the router is not asked again.
pub async fn run_with(
    cfg: &Config,
    resolver: &Resolver,
    now: i64,
    relay_report: Option<String>,
) -> Vec<Check> {
    let mut out = vec![checks::clock(cfg, now)];
    let a = checks::dns(cfg, resolver, &mut out).await;
    let c = cfg.clone();
    out.push(blocking::unblock(move || checks::certificate(&c, now)).await);
    let report = relay_report.as_deref().and_then(mapping::parse_line);
    let (router, router_wan) = match &report {
        Some((method, wan, _)) if cfg.port_mapping => checks::router_from_relay(method, *wan),
        _ => checks::router(cfg).await,
    };
    out.push(router);
    out.push(checks::wan(cfg, &a, router_wan));
    out.extend(checks::mapping(
        cfg,
        report.as_ref().map(|r| r.2.as_slice()),
    ));
    out.push(checks::ports(cfg).await);
    out.push(checks::privacy(cfg));
    out
}

/// The text of `chatrelay doctor`: one line per check, the advice under it.
pub fn render(checks: &[Check]) -> String {
    let mut s = String::new();
    for c in checks {
        s.push_str(&format!(
            "{:<8} {:<12} {}\n",
            c.state.word(),
            c.id,
            c.detail
        ));
        if !c.todo.is_empty() {
            s.push_str(&format!("{:<8} {:<12} → {}\n", "", "", c.todo));
        }
    }
    let problems = checks.iter().filter(|c| c.state == State::Problem).count();
    s.push_str(&match problems {
        0 => "no problems found\n".to_string(),
        n => format!("{n} problem(s) found\n"),
    });
    s
}
