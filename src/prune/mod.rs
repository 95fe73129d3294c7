//! Retention (spec §10): messages older than `delete_mails_after` days, seen
//! messages over 200 KB older than `delete_large_after` days, accounts
//! without an IMAP login for `delete_inactive_users_after` days, expired push
//! tokens. Runs inside the server on a timer and through `chatrelay prune`.
//! Works in small batches and yields between them so sessions stay
//! responsive; sessions with an affected mailbox selected get EXPUNGE.

pub mod control;

use crate::config::Config;
use crate::hub::Hub;
use crate::store::writer::Writer;
use crate::store::{flag, Store};

/// Removals after which the index is compacted.
const COMPACT_AFTER: u64 = 1000;
/// Messages larger than this count as "large" (spec §10.1).
pub const LARGE: u64 = 200_000;
/// Expunge at most this many messages per index transaction.
const BATCH: usize = 100;
const DAY: i64 = 86400;

/// What one run removed: counts only, never addresses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub accounts: u64,
    pub accounts_removed: u64,
    pub messages_removed: u64,
    pub large_removed: u64,
    pub tokens_removed: u64,
    pub quota_removed: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "prune: {} accounts checked, {} inactive accounts removed, {} old messages and {} large messages removed, {} push tokens expired, {} messages trimmed for quota",
            self.accounts, self.accounts_removed, self.messages_removed, self.large_removed, self.tokens_removed, self.quota_removed
        )
    }
}

/// Run every rule as of `now` (unix seconds). With `dry_run` nothing changes.
/// In the server, `writer` is the store thread, so that no index commit (and
/// no compaction) runs on the event loop; offline (`chatrelay prune`, tests)
/// it is `None` and writes run on the calling thread.
pub async fn run(
    store: &Store,
    writer: Option<&Writer>,
    hub: Option<&Hub>,
    cfg: &Config,
    now: i64,
    dry_run: bool,
) -> Result<Report, String> {
    let mut r = Report::default();
    let inactive_cutoff = now - cfg.delete_inactive_users_after as i64 * DAY;
    let old_cutoff = now - cfg.delete_mails_after as i64 * DAY;
    let large_cutoff = now - cfg.delete_large_after as i64 * DAY;
    let accounts = store.list_accounts().map_err(|e| e.to_string())?;
    for acc in accounts {
        r.accounts += 1;
        // Last login is kept by day (spec §4.6): removal when it is before the cutoff.
        if (acc.last_login_day as i64) * DAY < inactive_cutoff {
            r.accounts_removed += 1;
            if !dry_run {
                let a = acc.addr.clone();
                let boxes = write(store, writer, move |s| s.delete_account(&a))
                    .await
                    .map_err(|e| e.to_string())?;
                if let Some(h) = hub {
                    for mb in boxes {
                        h.notify(mb.id, None);
                    }
                }
            }
            futures_lite::future::yield_now().await;
            continue;
        }
        for mb in store.list_mailboxes(&acc.addr).map_err(|e| e.to_string())? {
            let msgs = store.messages(mb.id).map_err(|e| e.to_string())?;
            let mut doomed = Vec::new();
            for m in &msgs {
                if m.internal_date < old_cutoff {
                    r.messages_removed += 1;
                    doomed.push(m.uid);
                } else if m.size > LARGE
                    && m.flags.has(flag::SEEN)
                    && m.internal_date < large_cutoff
                {
                    r.large_removed += 1;
                    doomed.push(m.uid);
                }
            }
            if dry_run || doomed.is_empty() {
                continue;
            }
            for chunk in doomed.chunks(BATCH) {
                let (a, id, uids) = (acc.addr.clone(), mb.id, chunk.to_vec());
                write(store, writer, move |s| s.expunge(&a, id, &uids))
                    .await
                    .map_err(|e| e.to_string())?;
                if let Some(h) = hub {
                    h.notify(mb.id, None);
                }
                futures_lite::future::yield_now().await;
            }
        }
        r.tokens_removed += prune_tokens(store, writer, &acc.addr, now, dry_run).await?;
        // Spec §10.1 step 4: the daily job also trims every mailbox to 70 %.
        if !dry_run {
            let target = cfg.max_mailbox_size / 10 * 7;
            let a = acc.addr.clone();
            let trimmed = write(store, writer, move |s| s.trim_quota(&a, target, now - DAY)).await;
            if let Ok(Some((inbox, removed))) = trimmed {
                r.quota_removed += removed.len() as u64;
                if let Some(h) = hub {
                    h.notify(inbox.id, None);
                }
            }
        }
    }
    // Give the freed index pages back to the file system after a big prune.
    if !dry_run
        && r.accounts_removed + r.messages_removed + r.large_removed + r.quota_removed
            >= COMPACT_AFTER
    {
        match write(store, writer, |s| s.compact()).await {
            Ok(_) => log::info!("prune: index compacted"),
            Err(e) => log::warn!("prune: index compaction skipped: {e}"),
        }
    }
    Ok(r)
}

/// Drop push tokens 90 days after their last registration (spec §10.3).
async fn prune_tokens(
    store: &Store,
    writer: Option<&Writer>,
    addr: &str,
    now: i64,
    dry_run: bool,
) -> Result<u64, String> {
    let live = move |ts: i64| ts <= now + 60 && now - ts < crate::store::devicetoken::TTL;
    if dry_run {
        let v = store
            .get_meta(addr, "devicetoken")
            .map_err(|e| e.to_string())?;
        let all = v
            .as_deref()
            .map(crate::store::devicetoken::parse)
            .unwrap_or_default();
        return Ok(all.iter().filter(|(_, ts)| !live(*ts)).count() as u64);
    }
    let a = addr.to_string();
    let (before, after) = write(store, writer, move |s| {
        s.update_devicetokens(&a, |toks| toks.retain(|(_, ts)| live(*ts)))
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok((before - after) as u64)
}

/// Run `f` on the store thread when there is one, else right here.
async fn write<R: Send + 'static>(
    store: &Store,
    writer: Option<&Writer>,
    f: impl FnOnce(&Store) -> R + Send + 'static,
) -> R {
    match writer {
        Some(w) => w.run(f).await,
        None => f(store),
    }
}

/// Seconds from `now` until the next `hh:mm` UTC.
pub fn until_next(now: i64, hh: u32, mm: u32) -> i64 {
    let today = now - now.rem_euclid(DAY);
    let mut t = today + (hh as i64) * 3600 + (mm as i64) * 60;
    if t <= now {
        t += DAY;
    }
    t - now
}
