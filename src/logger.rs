//! A minimal `log` backend writing to stderr. By design no module logs peer
//! addresses (we never read them), so logs cannot relate IPs to accounts.
//! On the appliance stderr goes to a RAM-only log (tmpfs).

use log::{LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

/// Level from `CHATRELAY_LOG` (error, warn, info, debug, trace); default info.
pub fn init() {
    let level = std::env::var("CHATRELAY_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LevelFilter::Info);
    let _ = log::set_logger(&Stderr);
    log::set_max_level(level);
}
