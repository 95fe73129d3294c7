//! Delivery into the store: bodies are written and fsynced off the event loop
//! (concurrent fsyncs share ext4 journal commits), then a committer task
//! indexes everything that became ready in one redb transaction (group
//! commit). Only then does the caller answer `250`, IDLE sessions wake and
//! the outbound queue runs.

use std::cell::RefCell;

use super::Ctx;
use crate::store::{BatchItem, Delivered, Flags, Outbound, StoreError};

type Reply = async_channel::Sender<Result<Delivered, StoreError>>;

/// Deliveries waiting for the next group commit.
pub struct Committer {
    pending: RefCell<Vec<(BatchItem, Reply)>>,
    /// Large bodies are written on blocking threads, at most two at a time.
    writers: async_lock::Semaphore,
    wake_tx: async_channel::Sender<()>,
    wake_rx: async_channel::Receiver<()>,
}

impl Default for Committer {
    fn default() -> Self {
        let (wake_tx, wake_rx) = async_channel::bounded(1);
        Committer {
            pending: RefCell::new(Vec::new()),
            writers: async_lock::Semaphore::new(2),
            wake_tx,
            wake_rx,
        }
    }
}

/// The committer task: waits for work, lets every ready session add its
/// delivery (one yield), then commits the batch.
pub async fn run_committer(ctx: std::rc::Rc<Ctx>) {
    let c = &ctx.committer;
    while c.wake_rx.recv().await.is_ok() {
        futures_lite::future::yield_now().await;
        let batch = std::mem::take(&mut *c.pending.borrow_mut());
        if batch.is_empty() {
            continue;
        }
        let (items, replies): (Vec<BatchItem>, Vec<Reply>) = batch.into_iter().unzip();
        // The commit (and its fsync) runs on the store thread; deliveries
        // arriving meanwhile gather into the next batch.
        let results = ctx.writer.run(move |s| s.index_batch(&items)).await;
        for (r, tx) in results.into_iter().zip(replies) {
            let _ = tx.try_send(r);
        }
    }
}

/// Durably store `msg` for local `targets` and the outbound queue.
pub async fn store_message(
    ctx: &Ctx,
    msg: Vec<u8>,
    targets: Vec<(String, String)>,
    outbound: Option<Outbound>,
) -> Result<Delivered, StoreError> {
    let size = msg.len() as u64;
    for (addr, _) in &targets {
        make_room(ctx, addr, size).await;
    }
    let (id, _) = ctx.store.new_body()?;
    let inline = if msg.len() <= crate::store::INLINE_MAX {
        // Small: it rides in the index transaction (the common chat message).
        Some(msg)
    } else {
        let (tmp, dst) = ctx.store.body_write_paths(id);
        let _permit = ctx.committer.writers.acquire().await;
        let written =
            blocking::unblock(move || crate::store::write_durable(&tmp, &dst, &msg)).await;
        if let Err(e) = written {
            ctx.store.discard_body(id);
            return Err(StoreError::Io(e));
        }
        None
    };
    let item = BatchItem {
        body_id: id,
        size,
        targets,
        outbound,
        flags: Flags::default(),
        internal_date: crate::clock::now_secs(),
        limit: Some(ctx.cfg.max_mailbox_size),
        inline,
    };
    let (tx, rx) = async_channel::bounded(1);
    ctx.committer.pending.borrow_mut().push((item, tx));
    let _ = ctx.committer.wake_tx.try_send(());
    rx.recv()
        .await
        .unwrap_or(Err(StoreError::Invalid("committer stopped")))
}

/// Queue push notifications (spec §9.5) for `owner` unless the message came
/// from them; the push service (`crate::push`) is woken through `pushq`.
fn queue_push(ctx: &Ctx, owner: &str, sender: &str) {
    if owner.eq_ignore_ascii_case(sender) {
        return;
    }
    let now = crate::clock::now_secs();
    let tokens = match ctx.store.get_meta(owner, "devicetoken") {
        Ok(Some(v)) => crate::store::devicetoken::valid(&v, now),
        _ => return,
    };
    if tokens.is_empty() {
        return;
    }
    // Queued on the store thread without waiting: the message is already
    // durable, and the push runner is woken once the entry is committed.
    let (owner, pushq) = (owner.to_string(), ctx.pushq.clone());
    ctx.writer
        .submit(move |s| match s.push_enqueue(&owner, &tokens, now) {
            Ok(()) => {
                let _ = pushq.try_send(());
            }
            Err(e) => log::error!("push: cannot queue: {e}"),
        });
}

fn reply_for(e: StoreError) -> String {
    match e {
        StoreError::OverQuota => "552 5.2.2 Quota exceeded (mailbox for user is full)".into(),
        StoreError::NotFound => "550 5.1.1 User doesn't exist".into(),
        e => {
            log::error!("delivery failed: {e}");
            "451 4.3.0 Local delivery failed, try again later".into()
        }
    }
}

fn announce(ctx: &Ctx, d: &Delivered, sender: &str) {
    for (owner, mb, _) in &d.0 {
        ctx.hub.notify(mb.id, None);
        queue_push(ctx, owner, sender);
    }
    if !d.1.is_empty() {
        let _ = ctx.outq.try_send(());
    }
}

/// Deliver `msg` to the INBOX of each local recipient. Returns an SMTP reply
/// line on failure; on `Ok` the message is on disk and indexed.
pub async fn local(ctx: &Ctx, msg: &[u8], sender: &str, rcpts: &[String]) -> Result<(), String> {
    let targets = rcpts
        .iter()
        .map(|r| (r.clone(), "INBOX".to_string()))
        .collect();
    match store_message(ctx, msg.to_vec(), targets, None).await {
        Ok(d) => {
            announce(ctx, &d, sender);
            Ok(())
        }
        Err(e) => Err(reply_for(e)),
    }
}

/// Submission: local recipients get the message now, remote ones go to the
/// durable outbound queue — both in one index transaction, before the `250`.
pub async fn local_and_remote(
    ctx: &Ctx,
    msg: &[u8],
    from: &str,
    rcpts: &[String],
) -> Result<(), String> {
    let mut targets: Vec<(String, String)> = Vec::new();
    let mut per_domain: Vec<(String, Vec<String>)> = Vec::new();
    for r in rcpts {
        let domain = r.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if ctx.cfg.is_local_domain(domain) {
            targets.push((r.clone(), "INBOX".to_string()));
        } else {
            match per_domain.iter_mut().find(|(d, _)| d == domain) {
                Some((_, v)) => v.push(r.clone()),
                None => per_domain.push((domain.to_string(), vec![r.clone()])),
            }
        }
    }
    let outbound = if per_domain.is_empty() {
        None
    } else {
        Some(Outbound {
            mail_from: from.to_string(),
            per_domain,
        })
    };
    match store_message(ctx, msg.to_vec(), targets, outbound).await {
        Ok(d) => {
            announce(ctx, &d, from);
            Ok(())
        }
        Err(e) => Err(reply_for(e)),
    }
}

/// Quota that never fills (spec §10.2): when this delivery would take the
/// account over 75 % of `max_mailbox_size`, remove its oldest INBOX messages
/// until it will be at or below 70 % — never messages younger than 24 h.
/// Only if that cannot make room does the delivery fail (552 5.2.2).
async fn make_room(ctx: &Ctx, addr: &str, size: u64) {
    let limit = ctx.cfg.max_mailbox_size;
    let Ok(used) = ctx.store.quota_used(addr) else {
        return;
    };
    let size = crate::store::charged(size);
    if used + size <= limit / 4 * 3 {
        return;
    }
    let target = (limit / 10 * 7).saturating_sub(size);
    let keep_newer_than = crate::clock::now_secs() - 86400;
    let a = addr.to_string();
    match ctx
        .writer
        .run(move |s| s.trim_quota(&a, target, keep_newer_than))
        .await
    {
        Ok(Some((inbox, removed))) => {
            log::info!(
                "quota: removed {} old message(s) to make room",
                removed.len()
            );
            ctx.hub.notify(inbox.id, None);
        }
        Ok(None) => {}
        Err(e) => log::error!("quota trim failed: {e}"),
    }
}
