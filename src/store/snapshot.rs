//! A consistent copy of the index for `chatrelay backup` (issue 14).
//!
//! redb lets only one process open a database file, and its typed tables
//! cannot be walked without knowing their types, so the backup copies the
//! index *file*: while this call holds redb's write transaction no commit can
//! start, and every earlier commit was durable (`Durability::Immediate`), so
//! the file on disk is exactly the last committed state. The copy runs
//! through the page cache without fsync (README "Design decisions" has the
//! measured hold time); readers are never blocked (MVCC). The copy is then a
//! separate database the caller opens on its own (repairing it like any
//! file after a crash) to list the body files its snapshot refers to. The
//! copy is generic: tables other branches add travel without code here.

use std::collections::HashSet;
use std::path::Path;

use redb::{Database, ReadableTable};

use super::{Result, Store, BODIES, INLINE};

/// redb cache for the one-pass walks over an index copy.
const SCAN_CACHE: usize = 2 * 1024 * 1024;

/// File name of the index inside a data folder.
pub const INDEX_FILE: &str = "index.redb";

impl Store {
    /// Copy the index file to `dst` (not fsynced: it is a temporary copy)
    /// while no write transaction can commit. Returns the bytes copied.
    pub fn copy_index(&self, dst: &Path) -> Result<u64> {
        let tx = self.db().begin_write()?;
        let n = std::fs::copy(self.data_dir.join(INDEX_FILE), dst);
        tx.abort()?;
        Ok(n?)
    }
}

/// The body ids of the index copy at `index` that live in body files (not
/// inline), ascending.
pub fn body_files(index: &Path) -> Result<Vec<u64>> {
    // A small cache: the walk reads every page once (measured: the default
    // cache let a 68 MB index add 26 MB of RSS to the backup).
    let db = Database::builder()
        .set_cache_size(SCAN_CACHE)
        .create(index)?;
    let tx = db.begin_read()?;
    let inline: HashSet<u64> = {
        let t = tx.open_table(INLINE)?;
        let mut v = HashSet::new();
        for e in t.iter()? {
            v.insert(e?.0.value());
        }
        v
    };
    let mut ids = Vec::new();
    for e in tx.open_table(BODIES)?.iter()? {
        let id = e?.0.value();
        if !inline.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Remove every message (and what only exists for messages: body refcounts,
/// inline bodies, per-mailbox counts, quota use, the outbound queue and
/// pending push notifications) from the index copy at `index`, then compact
/// it. Accounts, mailboxes (with their UID counters), metadata and every
/// other table stay. For `chatrelay backup --without-messages`.
pub fn strip_messages(index: &Path) -> Result<()> {
    let mut db = Database::builder()
        .set_cache_size(SCAN_CACHE)
        .create(index)?;
    {
        let tx = db.begin_write()?;
        Store::clear_message_tables(&tx)?;
        tx.commit()?;
    }
    db.compact()
        .map_err(|e| super::StoreError::Db(e.to_string()))?;
    Ok(())
}
