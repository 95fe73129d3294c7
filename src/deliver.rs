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

/// Submission: local recipients get the message now, remote ones go to the
/// durable outbound queue — both in one index transaction, before the `250`.
pub fn local_and_remote(ctx: &Ctx, msg: &[u8], from: &str, rcpts: &[String]) -> Result<(), String> {
    let mut local: Vec<&str> = Vec::new();
    let mut per_domain: Vec<(String, Vec<String>)> = Vec::new();
    for r in rcpts {
        let domain = r.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if ctx.cfg.is_local_domain(domain) {
            local.push(r);
        } else {
            match per_domain.iter_mut().find(|(d, _)| d == domain) {
                Some((_, v)) => v.push(r.clone()),
                None => per_domain.push((domain.to_string(), vec![r.clone()])),
            }
        }
    }
    if per_domain.is_empty() {
        return self::local(ctx, msg, rcpts);
    }
    let targets: Vec<(&str, &str)> = local.iter().map(|r| (*r, "INBOX")).collect();
    let out = crate::store::Outbound {
        mail_from: from.to_string(),
        per_domain,
    };
    let now = crate::auth::now_secs();
    match ctx.store.deliver_and_queue(
        msg,
        &targets,
        Some(&out),
        &Flags::default(),
        now,
        Some(ctx.cfg.max_mailbox_size),
    ) {
        Ok((done, _)) => {
            for (_, mb, _) in &done {
                ctx.hub.notify(mb.id, None);
            }
            let _ = ctx.outq.try_send(());
            Ok(())
        }
        Err(StoreError::OverQuota) => {
            Err("552 5.2.2 Quota exceeded (mailbox for user is full)".into())
        }
        Err(e) => {
            log::error!("delivery failed: {e}");
            Err("451 4.3.0 Local delivery failed, try again later".into())
        }
    }
}
