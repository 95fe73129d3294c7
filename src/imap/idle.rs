//! IDLE (RFC 2177): wait for the client's DONE while forwarding mailbox
//! changes as they happen (woken through the in-process hub, no polling).

use std::time::Duration;

use futures_lite::future;

use super::session::{Flow, Session};
use crate::net::Line;

/// Re-check at most this often even without changes; clients re-IDLE within
/// 29 minutes (RFC 2177 §3), so this also bounds a silent dead connection.
const IDLE_MAX: Duration = Duration::from_secs(31 * 60);

enum Ev {
    Line(std::io::Result<Line>),
    Changed,
    Timeout,
}

impl Session {
    pub(super) async fn idle(&mut self, tag: &str) -> std::io::Result<Flow> {
        self.sync_selected(true);
        self.s.flush().await?;
        let deadline = async_io::Timer::after(IDLE_MAX);
        // The stream's own read deadline must not end IDLE before the timer.
        self.s.set_deadline(IDLE_MAX + Duration::from_secs(60));
        futures_lite::pin!(deadline);
        loop {
            let rx = self.sel.as_ref().map(|s| s.sub.rx.clone());
            let ev = {
                let read = async { Ev::Line(self.s.read_line(64).await) };
                let changed = async {
                    match rx {
                        Some(rx) => {
                            let _ = rx.recv().await;
                            Ev::Changed
                        }
                        None => future::pending().await,
                    }
                };
                let timer = async {
                    (&mut deadline).await;
                    Ev::Timeout
                };
                future::or(read, future::or(changed, timer)).await
            };
            match ev {
                Ev::Changed => {
                    self.sync_selected(true);
                    self.s.flush().await?;
                }
                Ev::Timeout => {
                    self.s.send(b"* BYE IDLE for too long\r\n").await?;
                    return Ok(Flow::Close);
                }
                Ev::Line(r) => match r? {
                    Line::Eof => return Ok(Flow::Close),
                    Line::Ok(l) if l.eq_ignore_ascii_case(b"DONE") => {
                        self.ok(tag, "IDLE terminated.");
                        return Ok(Flow::Continue);
                    }
                    _ => {
                        self.bad(tag, "Expected DONE");
                        return Ok(Flow::Continue);
                    }
                },
            }
        }
    }
}
