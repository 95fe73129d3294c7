//! Local delivery: one durable body file for all local recipients, index
//! commit, then IDLE sessions are woken (design: "store::deliver").

use crate::server::Ctx;
use crate::store::{Flags, StoreError};

/// Deliver `msg` to the INBOX of each local recipient. Returns an SMTP reply
/// line on failure; on `Ok` the message is on disk and indexed.
pub fn local(ctx: &Ctx, msg: &[u8], rcpts: &[String]) -> Result<(), String> {
    let targets: Vec<(&str, &str)> = rcpts.iter().map(|r| (r.as_str(), "INBOX")).collect();
    let now = crate::auth::now_secs();
    match ctx.store.deliver(
        msg,
        &targets,
        &Flags::default(),
        now,
        Some(ctx.cfg.max_mailbox_size),
    ) {
        Ok(done) => {
            for (_, mb, _) in &done {
                ctx.hub.notify(mb.id, None);
            }
            Ok(())
        }
        Err(StoreError::OverQuota) => {
            Err("552 5.2.2 Quota exceeded (mailbox for user is full)".into())
        }
        Err(StoreError::NotFound) => Err("550 5.1.1 User doesn't exist".into()),
        Err(e) => {
            log::error!("delivery failed: {e}");
            Err("451 4.3.0 Local delivery failed, try again later".into())
        }
    }
}
