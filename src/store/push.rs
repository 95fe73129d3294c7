//! Pending push notifications (spec §9.6), durable across restarts.

use super::codec::{Dec, Enc};
use super::{Result, Store, PUSH};
use redb::ReadableTable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEntry {
    pub id: u64,
    /// Owner of the token (to drop it on `410 Gone`).
    pub addr: String,
    pub token: String,
    /// Unix seconds of the first scheduling.
    pub created: i64,
    pub attempts: u32,
    pub next_try: i64,
}

impl PushEntry {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .str(&self.addr)
            .str(&self.token)
            .i64(self.created)
            .u32(self.attempts)
            .i64(self.next_try)
            .0
    }
    fn decode(id: u64, b: &[u8]) -> Option<PushEntry> {
        let mut d = Dec::new(b, 1)?;
        Some(PushEntry {
            id,
            addr: d.str()?,
            token: d.str()?,
            created: d.i64()?,
            attempts: d.u32()?,
            next_try: d.i64()?,
        })
    }
}

impl Store {
    /// Queue one notification per token, in one transaction.
    pub fn push_enqueue(&self, addr: &str, tokens: &[String], now: i64) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let tx = self.db().begin_write()?;
        for t in tokens {
            let id = Self::next_counter(&tx, "push", 1)?;
            let e = PushEntry {
                id,
                addr: addr.to_string(),
                token: t.clone(),
                created: now,
                attempts: 0,
                next_try: now,
            };
            tx.open_table(PUSH)?.insert(id, e.encode().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn push_all(&self) -> Result<Vec<PushEntry>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(PUSH)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            let (k, v) = e?;
            if let Some(p) = PushEntry::decode(k.value(), v.value()) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Save (`Some`) or remove (`None`) an entry.
    pub fn push_update(&self, id: u64, e: Option<&PushEntry>) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(PUSH)?;
            match e {
                Some(e) => {
                    t.insert(id, e.encode().as_slice())?;
                }
                None => {
                    t.remove(id)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
