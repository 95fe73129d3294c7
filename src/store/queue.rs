//! The durable outbound queue: one entry per (message, destination domain),
//! committed in the same index transaction as the local deliveries, so a
//! message is queued before its `250` and survives `kill -9`.

use super::codec::{Dec, Enc};
use super::{Result, Store, StoreError, BODIES, INLINE, QUEUE};
use redb::ReadableTable;

/// What a submission hands to the queue.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Envelope sender; empty for bounces (null sender).
    pub mail_from: String,
    /// Remote recipients grouped by domain.
    pub per_domain: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: u64,
    pub body_id: u64,
    pub size: u64,
    pub mail_from: String,
    pub domain: String,
    pub rcpts: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub attempts: u32,
    pub next_try: i64,
    pub last_error: String,
}

impl QueueEntry {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.body_id)
            .u64(self.size)
            .str(&self.mail_from)
            .str(&self.domain)
            .strs(&self.rcpts)
            .i64(self.created)
            .u32(self.attempts)
            .i64(self.next_try)
            .str(&self.last_error)
            .0
    }
    fn decode(id: u64, b: &[u8]) -> Option<QueueEntry> {
        let mut d = Dec::new(b, 1)?;
        Some(QueueEntry {
            id,
            body_id: d.u64()?,
            size: d.u64()?,
            mail_from: d.str()?,
            domain: d.str()?,
            rcpts: d.strs()?,
            created: d.i64()?,
            attempts: d.u32()?,
            next_try: d.i64()?,
            last_error: d.str()?,
        })
    }
}

impl Store {
    pub(super) fn enqueue_tx(
        tx: &redb::WriteTransaction,
        body_id: u64,
        size: u64,
        o: &Outbound,
        now: i64,
    ) -> Result<Vec<QueueEntry>> {
        let mut out = Vec::new();
        for (domain, rcpts) in &o.per_domain {
            let id = Self::next_counter(tx, "queue", 1)?;
            let e = QueueEntry {
                id,
                body_id,
                size,
                mail_from: o.mail_from.clone(),
                domain: domain.clone(),
                rcpts: rcpts.clone(),
                created: now,
                attempts: 0,
                next_try: now,
                last_error: String::new(),
            };
            tx.open_table(QUEUE)?.insert(id, e.encode().as_slice())?;
            out.push(e);
        }
        Ok(out)
    }

    /// Every queued entry (startup, status).
    pub fn queue_all(&self) -> Result<Vec<QueueEntry>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(QUEUE)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            let (k, v) = e?;
            if let Some(q) = QueueEntry::decode(k.value(), v.value()) {
                out.push(q);
            }
        }
        Ok(out)
    }

    /// Save a changed entry (attempts, next try, remaining recipients).
    pub fn queue_update(&self, e: &QueueEntry) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(QUEUE)?;
            if t.get(e.id)?.is_none() {
                return Err(StoreError::NotFound);
            }
            t.insert(e.id, e.encode().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Remove an entry (delivered or bounced) and release its body reference.
    pub fn queue_done(&self, id: u64) -> Result<()> {
        let tx = self.db().begin_write()?;
        let mut freed = None;
        {
            let mut t = tx.open_table(QUEUE)?;
            let Some(e) = t
                .remove(id)?
                .and_then(|v| QueueEntry::decode(id, v.value()))
            else {
                return Ok(());
            };
            let mut b = tx.open_table(BODIES)?;
            let rc = b.get(e.body_id)?.map(|v| v.value()).unwrap_or(1);
            if rc <= 1 {
                b.remove(e.body_id)?;
                tx.open_table(INLINE)?.remove(e.body_id)?;
                freed = Some(e.body_id);
            } else {
                b.insert(e.body_id, rc - 1)?;
            }
        }
        tx.commit()?;
        if let Some(id) = freed {
            self.bodies.remove(id);
        }
        Ok(())
    }
}
