//! The self-check inside the running relay: [`super::run`] in the
//! background, once at start, then every `self_check_interval` (default an hour; about ten DNS queries
//! each) and on demand (the
//! LAN status page's button), never more often than once per [`MIN_GAP`].
//! The result is kept with its time; `/status`, the control socket and the
//! appliance's status screen show the cached result and never wait for a
//! run, so a page load costs no DNS query and no connection.
//!
//! The run is an ordinary task on the event loop: its DNS lookups and
//! connections are async with deadlines, its file reads go to the blocking
//! pool (`super::run`), so other clients are served while it runs.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Check, State};
use crate::config::Config;

/// Runs on demand are at least this far apart.
pub const MIN_GAP: Duration = Duration::from_secs(60);

/// One finished run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Unix seconds when the run started.
    pub at: i64,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn problems(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.state == State::Problem)
            .count()
    }

    /// The control socket's lines: `<at>` then `<state> <id> <detail>\t<todo>`
    /// per check (tabs and line breaks in texts become spaces).
    pub fn encode(&self) -> String {
        let flat = |s: &str| s.replace(['\n', '\r', '\t'], " ");
        let mut out = self.at.to_string();
        for c in &self.checks {
            out.push_str(&format!(
                "\n{} {} {}\t{}",
                c.state.word(),
                c.id,
                flat(&c.detail),
                flat(&c.todo)
            ));
        }
        out
    }
}

/// Why an on-demand run was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// One is running now.
    Running,
    /// The last one started less than [`MIN_GAP`] ago: seconds to wait.
    TooSoon(u64),
}

/// The shared state (one per relay, in `relay::Ctx`).
pub struct SelfCheck {
    last: RefCell<Option<Rc<Report>>>,
    running: Cell<bool>,
    started: Cell<Option<Instant>>,
    wake_tx: async_channel::Sender<()>,
    wake_rx: async_channel::Receiver<()>,
}

impl Default for SelfCheck {
    fn default() -> Self {
        let (wake_tx, wake_rx) = async_channel::bounded(1);
        SelfCheck {
            last: RefCell::new(None),
            running: Cell::new(false),
            started: Cell::new(None),
            wake_tx,
            wake_rx,
        }
    }
}

impl SelfCheck {
    pub fn last(&self) -> Option<Rc<Report>> {
        self.last.borrow().clone()
    }

    pub fn running(&self) -> bool {
        self.running.get()
    }

    /// Ask for a run now (it starts in the background; the caller does not
    /// wait for it).
    pub fn request(&self) -> Result<(), Refused> {
        if self.running.get() {
            return Err(Refused::Running);
        }
        if let Some(t) = self.started.get() {
            let since = t.elapsed();
            if since < MIN_GAP {
                return Err(Refused::TooSoon((MIN_GAP - since).as_secs().max(1)));
            }
        }
        // A full channel means a run is already asked for.
        let _ = self.wake_tx.try_send(());
        Ok(())
    }

    /// Until the interval has passed (never when it is 0) or a run is asked for.
    async fn wait_for_next(&self, interval: u64) {
        let timer = async {
            if interval == 0 {
                futures_lite::future::pending::<()>().await;
            }
            async_io::Timer::after(Duration::from_secs(interval)).await;
        };
        let asked = async {
            let _ = self.wake_rx.recv().await;
        };
        futures_lite::future::or(timer, asked).await;
        // Keep the gap even if a request slipped in.
        if let Some(t) = self.started.get() {
            if let Some(rest) = MIN_GAP.checked_sub(t.elapsed()) {
                async_io::Timer::after(rest).await;
            }
        }
    }
}

/// The background task (spawned by the server). Each run asks the
/// configured resolvers afresh (a resolver of its own, no cache: an
/// operator who fixed a record sees it on the next run).
/// `router` gives the router service's state line (`mapping::line`), so
/// the relay's own run shows its port mappings without asking the router.
pub async fn run(
    cfg: Rc<Config>,
    servers: Vec<std::net::SocketAddr>,
    sc: Rc<SelfCheck>,
    router: Box<dyn Fn() -> String>,
) {
    if cfg.self_check_interval == 0 {
        // Only on demand: not even at start.
        let _ = sc.wake_rx.recv().await;
    }
    loop {
        sc.running.set(true);
        sc.started.set(Some(Instant::now()));
        let resolver = crate::dns::Resolver::new(servers.clone());
        let at = crate::clock::now_secs();
        let checks = super::run_with(&cfg, &resolver, at, Some(router())).await;
        let report = Report { at, checks };
        log::info!(
            "self-check: {} problem(s) in {} checks",
            report.problems(),
            report.checks.len()
        );
        *sc.last.borrow_mut() = Some(Rc::new(report));
        sc.running.set(false);
        sc.wait_for_next(cfg.self_check_interval).await;
    }
}

/// The status screen's summary of an [`Report::encode`]d report: one line
/// with the age and the count, then one line per problem with its advice.
pub fn summary(encoded: &str, now: i64) -> String {
    let mut lines = encoded.lines();
    let Some(at) = lines.next().and_then(|l| l.trim().parse::<i64>().ok()) else {
        return "self-check: not run yet (the relay runs it at start)\n".to_string();
    };
    let mut problems = Vec::new();
    let mut total = 0;
    for l in lines {
        total += 1;
        let (head, todo) = l.split_once('\t').unwrap_or((l, ""));
        let mut w = head.splitn(3, ' ');
        let (state, id, detail) = (
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
        );
        if state == "problem" {
            problems.push(if todo.is_empty() {
                format!("  ✘ {id}: {detail}\n")
            } else {
                format!("  ✘ {id}: {detail}\n      → {todo}\n")
            });
        }
    }
    let mut out = format!(
        "self-check ({}): {}\n",
        ago(now - at),
        match problems.len() {
            0 => format!("no problems ({total} checks)"),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    );
    for p in problems {
        out.push_str(&p);
    }
    out
}

/// `3 minutes ago`, for a result `age` seconds old.
pub fn ago(age: i64) -> String {
    let age = age.max(0);
    let (n, unit) = match age {
        0..=59 => return "just now".to_string(),
        60..=3599 => (age / 60, "minute"),
        3600..=172_799 => (age / 3600, "hour"),
        _ => (age / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(59), "just now");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(3599), "59 minutes ago");
        assert_eq!(ago(7200), "2 hours ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
    }

    #[test]
    fn requests_are_rate_limited() {
        let sc = SelfCheck::default();
        assert_eq!(sc.request(), Ok(()));
        // A second ask before any run: the channel is full, still fine.
        assert_eq!(sc.request(), Ok(()));
        sc.running.set(true);
        assert_eq!(sc.request(), Err(Refused::Running));
        sc.running.set(false);
        sc.started.set(Some(Instant::now()));
        assert!(matches!(sc.request(), Err(Refused::TooSoon(s)) if s <= 60));
    }

    #[test]
    fn encode_flattens_texts() {
        let r = Report {
            at: 5,
            checks: vec![Check::problem("dns.mx", "a\nb", "do\tthis")],
        };
        assert_eq!(r.encode(), "5\nproblem dns.mx a b\tdo this");
        let s = summary(&r.encode(), 125);
        assert_eq!(
            s,
            "self-check (2 minutes ago): 1 problem\n  ✘ dns.mx: a b\n      → do this\n"
        );
        let ok = Report {
            at: 5,
            checks: vec![Check::ok("clock", "fine")],
        };
        assert_eq!(
            summary(&ok.encode(), 5),
            "self-check (just now): no problems (1 checks)\n"
        );
        assert!(summary("", 5).contains("not run yet"));
    }
}
