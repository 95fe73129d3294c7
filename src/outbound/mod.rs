//! Outbound delivery (spec §5.4, §5.5): the queue runner, routes, the two
//! transports (HTTPS `/mxdeliv` first, SMTP with STARTTLS second) and DSN
//! bounces. Entries live in the store (`store::queue`) before the `250`.

pub mod bounce;
pub mod http_client;
pub mod route;
pub mod smtp_client;
pub mod target;

pub use target::{RcptResult, SmtpOnly};

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;

use crate::relay::Ctx;
use crate::store::QueueEntry;

/// Most deliveries in flight at once, and per destination domain.
const MAX_IN_FLIGHT: usize = 32;
const MAX_PER_DOMAIN: usize = 4;
/// Upper bound between queue scans when nothing wakes the runner.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// Delay before retry number `attempt` (1-based): min, 5×, 15×, 30×, then 60× `min`.
pub fn backoff(attempt: u32, min: u64) -> u64 {
    let f = match attempt {
        0 | 1 => 1,
        2 => 5,
        3 => 15,
        4 => 30,
        _ => 60,
    };
    min.saturating_mul(f)
}

/// The queue runner: wakes on new entries (channel) or the next retry time.
pub async fn run(ex: Rc<LocalExecutor<'static>>, ctx: Rc<Ctx>, wake: async_channel::Receiver<()>) {
    let in_flight: Rc<RefCell<HashSet<u64>>> = Rc::default();
    let smtp_only: Rc<SmtpOnly> = Rc::default();
    loop {
        while wake.try_recv().is_ok() {}
        let now = crate::clock::now_secs();
        let entries = match ctx.store.queue_all() {
            Ok(e) => e,
            Err(e) => {
                log::error!("queue: cannot read the queue: {e}");
                Vec::new()
            }
        };
        let mut next: Option<i64> = None;
        let mut per_domain: HashMap<String, usize> = HashMap::new();
        for e in &entries {
            if in_flight.borrow().contains(&e.id) {
                *per_domain.entry(e.domain.clone()).or_default() += 1;
            }
        }
        for e in entries {
            if in_flight.borrow().contains(&e.id) {
                continue;
            }
            if e.next_try > now {
                next = Some(next.map_or(e.next_try, |n: i64| n.min(e.next_try)));
                continue;
            }
            let busy = per_domain.entry(e.domain.clone()).or_default();
            if in_flight.borrow().len() >= MAX_IN_FLIGHT || *busy >= MAX_PER_DOMAIN {
                continue; // picked up when an attempt finishes and wakes us
            }
            *busy += 1;
            in_flight.borrow_mut().insert(e.id);
            let (ctx2, fl, tx) = (ctx.clone(), in_flight.clone(), ctx.outq.clone());
            let so = smtp_only.clone();
            ex.spawn(async move {
                let id = e.id;
                attempt(&ctx2, &so, e).await;
                fl.borrow_mut().remove(&id);
                let _ = tx.try_send(());
            })
            .detach();
        }
        let sleep = match next {
            Some(t) => Duration::from_secs((t - now).max(1) as u64).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        let _ = crate::net::timeout(sleep, wake.recv()).await;
    }
}

/// One delivery attempt for one queue entry, then bookkeeping: done, retry
/// later, or bounce.
async fn attempt(ctx: &Ctx, smtp_only: &SmtpOnly, mut e: QueueEntry) {
    let body = match ctx.store.read_body(e.body_id) {
        Ok(b) => b,
        Err(err) => {
            log::error!(
                "queue: body of entry {} unreadable: {err}; dropping it",
                e.id
            );
            let id = e.id;
            let _ = ctx.writer.run(move |s| s.queue_done(id)).await;
            return;
        }
    };
    let results = route::deliver(ctx, smtp_only, &e, &body).await;
    let now = crate::clock::now_secs();
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut retry: Vec<String> = Vec::new();
    let mut last_temp = String::new();
    for (rcpt, r) in results {
        match r {
            RcptResult::Ok => {}
            RcptResult::Perm(msg) => failed.push((rcpt, msg)),
            RcptResult::Temp(msg) => {
                last_temp = msg;
                retry.push(rcpt);
            }
        }
    }
    e.attempts += 1;
    if !retry.is_empty() && now - e.created >= ctx.cfg.max_queue_lifetime as i64 {
        for r in retry.drain(..) {
            failed.push((
                r,
                format!(
                    "message expired after {} attempts; last error: {last_temp}",
                    e.attempts
                ),
            ));
        }
    }
    if !failed.is_empty() {
        log::info!("queue: {} recipient(s) failed permanently", failed.len());
        bounce::send(ctx, &e, &body, &failed).await;
    }
    if retry.is_empty() {
        let id = e.id;
        if let Err(err) = ctx.writer.run(move |s| s.queue_done(id)).await {
            log::error!("queue: cannot remove entry {}: {err}", e.id);
        }
    } else {
        e.rcpts = retry;
        e.next_try = now + backoff(e.attempts, ctx.cfg.queue_retry_min) as i64;
        e.last_error = last_temp;
        log::info!("queue: entry {} deferred (attempt {})", e.id, e.attempts);
        let id = e.id;
        if let Err(err) = ctx.writer.run(move |s| s.queue_update(&e)).await {
            log::error!("queue: cannot update entry {id}: {err}");
        }
    }
}
