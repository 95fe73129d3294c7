//! Liveness, not just life: a task on the event loop rewrites the heartbeat
//! file every second, so its modification time says when the loop last
//! turned. A supervisor outside the process (the appliance's
//! `chatrelay-liveness`) restarts the relay when the file goes stale, and
//! stops feeding the hardware watchdog when a restart does not help.
//!
//! The file holds only the Unix time; it belongs on a RAM file system
//! (`/run`), not on the SD card.

use std::path::PathBuf;
use std::time::Duration;

/// How often the loop proves it is turning.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Rewrite `path` every [`INTERVAL`] for as long as the loop runs. The write
/// is a few bytes to tmpfs: it never blocks the loop for long.
pub async fn run(path: PathBuf) {
    let tmp = path.with_extension("tmp");
    loop {
        let now = format!("{}\n", crate::clock::now_secs());
        if std::fs::write(&tmp, &now)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .is_err()
        {
            log::warn!("heartbeat: cannot write {}", path.display());
        }
        async_io::Timer::after(INTERVAL).await;
    }
}
