//! Store operations for retention (spec §10): listing accounts, removing a
//! whole account, and the oldest-first quota trim.

use super::{Account, Mailbox, Result, Store, StoreError, ACCOUNTS, MAILBOXES, METADATA, QUOTA};
use redb::ReadableTable;

impl Store {
    pub fn list_accounts(&self) -> Result<Vec<Account>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(ACCOUNTS)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            let (k, v) = e?;
            if let Some(a) = Account::decode(k.value(), v.value()) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Remove an account and everything it owns: messages (bodies released),
    /// mailboxes, metadata (push tokens), quota. Returns the removed mailboxes
    /// so sessions that have them selected can be told.
    pub fn delete_account(&self, addr: &str) -> Result<Vec<Mailbox>> {
        let boxes = self.list_mailboxes(addr)?;
        let tx = self.db().begin_write()?;
        let mut freed = Vec::new();
        for mb in &boxes {
            let uids: Vec<u32> = Self::messages_tx(&tx, mb.id)?
                .iter()
                .map(|m| m.uid)
                .collect();
            freed.extend(Self::expunge_tx(&tx, addr, mb.id, &uids)?);
            tx.open_table(MAILBOXES)?.remove((addr, mb.name.as_str()))?;
        }
        {
            let mut meta = tx.open_table(METADATA)?;
            let keys: Vec<String> = {
                let mut v = Vec::new();
                for e in meta.range((addr, "")..)? {
                    let (k, _) = e?;
                    let (a, key) = k.value();
                    if a != addr {
                        break;
                    }
                    v.push(key.to_string());
                }
                v
            };
            for k in keys {
                meta.remove((addr, k.as_str()))?;
            }
        }
        tx.open_table(QUOTA)?.remove(addr)?;
        tx.open_table(ACCOUNTS)?.remove(addr)?;
        tx.commit()?;
        for id in freed {
            self.bodies.remove(id);
        }
        Ok(boxes)
    }

    /// Quota trim (spec §10.2): remove the oldest INBOX messages until the
    /// account uses at most `target` bytes, never touching messages younger
    /// than `keep_newer_than` (stops at the first such message). Returns
    /// (INBOX, removed uids).
    pub fn trim_quota(
        &self,
        addr: &str,
        target: u64,
        keep_newer_than: i64,
    ) -> Result<Option<(Mailbox, Vec<u32>)>> {
        let used = self.quota_used(addr)?;
        if used <= target {
            return Ok(None);
        }
        let Some(inbox) = self.get_mailbox(addr, "INBOX")? else {
            return Ok(None);
        };
        let mut msgs = self.messages(inbox.id)?;
        msgs.sort_by_key(|m| (m.internal_date, m.uid));
        let mut left = used;
        let mut doomed = Vec::new();
        for m in msgs {
            if left <= target || m.internal_date >= keep_newer_than {
                break;
            }
            left = left.saturating_sub(super::charged(m.size));
            doomed.push(m.uid);
        }
        if doomed.is_empty() {
            return Ok(None);
        }
        self.expunge(addr, inbox.id, &doomed)?;
        Ok(Some((inbox, doomed)))
    }

    /// Give free index pages back to the file system (after a large prune).
    /// Blocks until done; no transaction may be open (none is between calls).
    pub fn compact(&self) -> Result<bool> {
        let mut db = self
            .db
            .try_write()
            .map_err(|_| StoreError::Invalid("index busy"))?;
        db.compact().map_err(|e| StoreError::Db(e.to_string()))
    }
}
