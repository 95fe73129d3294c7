//! Push notifications (spec §9.5, §9.6): on each delivery into a mailbox whose
//! owner is not the sender, one notification per registered, unexpired device
//! token — a `POST` of the raw token (nothing else: no address, no content) to
//! `notification_url` over verified TLS. `200` done, `410` drops the token,
//! anything else retries after 8, 64, 512, 4096 s; dropped once the next try
//! would fall past 5 h after the first. Pending notifications are in the store.

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;

use crate::relay::Ctx;
use crate::store::PushEntry;

const TIMEOUT: Duration = Duration::from_secs(60);
const DEADLINE: i64 = 5 * 3600;
const MAX_IN_FLIGHT: usize = 8;

/// Delay after the `attempts`-th failed try: 8^attempts seconds.
pub fn retry_delay(attempts: u32) -> i64 {
    8i64.saturating_pow(attempts.min(10))
}

async fn resolve(ctx: &Ctx, host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(v) = ctx.resolver.ipv4(host).await {
        if let Some(ip) = v.first() {
            return Some(IpAddr::V4(*ip));
        }
    }
    ctx.resolver
        .ipv6(host)
        .await
        .ok()?
        .first()
        .map(|ip| IpAddr::V6(*ip))
}

/// One try for one entry, then bookkeeping.
async fn attempt(ctx: &Ctx, mut e: PushEntry) {
    let result = match crate::config::url::parse_url(&ctx.cfg.notification_url) {
        None => Err("bad notification_url".to_string()),
        Some((host, port, path)) => match resolve(ctx, &host).await {
            None => Err(format!("cannot resolve {host}")),
            Some(ip) => crate::https_client::post(
                ctx.client_tls.verified_http.clone(),
                SocketAddr::new(ip, port),
                &host,
                &path,
                &[],
                e.token.as_bytes(),
                TIMEOUT,
            )
            .await
            .map(|r| r.status),
        },
    };
    let now = crate::clock::now_secs();
    match result {
        Ok(200) => {
            let id = e.id;
            let _ = ctx.writer.run(move |s| s.push_update(id, None)).await;
        }
        Ok(410) => {
            // The notification service says this token is dead: forget it,
            // together with the queue entry, in one job on the store thread.
            let (id, addr, token) = (e.id, e.addr.clone(), e.token.clone());
            let _ = ctx
                .writer
                .run(move |s| {
                    s.push_update(id, None)?;
                    s.update_devicetokens(&addr, |toks| toks.retain(|(t, _)| *t != token))
                })
                .await;
        }
        other => {
            e.attempts += 1;
            let next = now + retry_delay(e.attempts);
            if next - e.created > DEADLINE {
                log::warn!(
                    "push: notification dropped after {} tries ({other:?})",
                    e.attempts
                );
                let id = e.id;
                let _ = ctx.writer.run(move |s| s.push_update(id, None)).await;
            } else {
                e.next_try = next;
                let _ = ctx.writer.run(move |s| s.push_update(e.id, Some(&e))).await;
            }
        }
    }
}

/// The push runner: wakes on new entries or at the next retry time.
pub async fn run(ex: Rc<LocalExecutor<'static>>, ctx: Rc<Ctx>, wake: async_channel::Receiver<()>) {
    let in_flight: Rc<RefCell<HashSet<u64>>> = Rc::default();
    loop {
        while wake.try_recv().is_ok() {}
        let now = crate::clock::now_secs();
        let mut next: Option<i64> = None;
        for e in ctx.store.push_all().unwrap_or_default() {
            if in_flight.borrow().contains(&e.id) {
                continue;
            }
            if e.next_try > now {
                next = Some(next.map_or(e.next_try, |n: i64| n.min(e.next_try)));
                continue;
            }
            if in_flight.borrow().len() >= MAX_IN_FLIGHT {
                break;
            }
            in_flight.borrow_mut().insert(e.id);
            let (ctx2, fl, tx) = (ctx.clone(), in_flight.clone(), ctx.pushq.clone());
            ex.spawn(async move {
                let id = e.id;
                attempt(&ctx2, e).await;
                fl.borrow_mut().remove(&id);
                let _ = tx.try_send(());
            })
            .detach();
        }
        let sleep = match next {
            Some(t) => Duration::from_secs((t - now).max(1) as u64),
            None => Duration::from_secs(3600),
        };
        let _ = crate::net::timeout(sleep, wake.recv()).await;
    }
}
