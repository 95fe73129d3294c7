//! The store: a redb index (accounts, mailboxes, messages, flags, metadata,
//! quota) plus one file per message body.
//!
//! Ordering rule for every write that is acknowledged to a client: body file
//! durable first (see `bodies`), index commit second (redb `Durability::Immediate`
//! fsyncs). A crash between the two leaves an orphan body file that `open`
//! removes; an index entry never points at a missing file.

mod bodies;
mod codec;
pub mod devicetoken;
pub mod invites;
mod prune;
mod push;
mod queue;
pub mod snapshot;
pub mod writer;

pub use bodies::write_durable;
pub use push::PushEntry;
pub use queue::{Outbound, QueueEntry};

/// Local deliveries (address, mailbox, uid) and queue entries of one item.
pub type Delivered = (Vec<(String, Mailbox, u32)>, Vec<QueueEntry>);

/// One delivery for `index_batch`; its body is already durable.
pub struct BatchItem {
    pub body_id: u64,
    pub size: u64,
    /// (address, mailbox name)
    pub targets: Vec<(String, String)>,
    pub outbound: Option<Outbound>,
    pub flags: Flags,
    pub internal_date: i64,
    pub limit: Option<u64>,
    /// Small bodies travel with the item and are stored in the index.
    pub inline: Option<Vec<u8>>,
}

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

pub use bodies::fsync_dir;
use bodies::Bodies;
use codec::{Dec, Enc};

const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// (address, mailbox name) -> MailboxRec
const MAILBOXES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("mailboxes");
/// (mailbox id, uid) -> MsgRec
const MESSAGES: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("messages");
/// body id -> reference count
const BODIES: TableDefinition<u64, u32> = TableDefinition::new("bodies");
/// (address, key) -> value
const METADATA: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("metadata");
/// address -> bytes used
const QUOTA: TableDefinition<&str, u64> = TableDefinition::new("quota");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// body id -> message bytes, for small bodies kept in the index (no file:
/// one fsync per group commit instead of two per message).
const INLINE: TableDefinition<u64, &[u8]> = TableDefinition::new("inline");
/// mailbox id -> number of messages (for `max_messages_per_mailbox`).
const MBCOUNT: TableDefinition<u64, u64> = TableDefinition::new("mailbox_counts");

/// Bytes every message counts in the quota on top of its size: a round
/// figure for its index record (UID, flags, keywords), the body-reference
/// and mailbox-count entries and the B-tree pages around them, or a body
/// file's inode and block rounding. Without it a mailbox of tiny messages
/// could grow the index far beyond `max_mailbox_size`.
pub const MESSAGE_OVERHEAD: u64 = 1024;

/// What a message of `size` bytes costs in the quota.
pub fn charged(size: u64) -> u64 {
    size.saturating_add(MESSAGE_OVERHEAD)
}

/// `COUNTERS` key of the index layout version; 2 = quota includes
/// `MESSAGE_OVERHEAD` and `MBCOUNT` is kept.
const LAYOUT_KEY: &str = "layout_version";
const LAYOUT: u64 = 2;
/// Bodies up to this size are stored inline.
pub const INLINE_MAX: usize = 64 * 1024;
/// push notification id -> PushEntry (see push.rs)
const PUSH: TableDefinition<u64, &[u8]> = TableDefinition::new("push");
/// outbound queue id -> QueueEntry (see queue.rs)
const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");

#[derive(Debug)]
pub enum StoreError {
    Db(String),
    Io(std::io::Error),
    NotFound,
    Exists,
    Invalid(&'static str),
    OverQuota,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "index error: {e}"),
            StoreError::Io(e) => write!(f, "I/O error: {e}"),
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Exists => f.write_str("already exists"),
            StoreError::Invalid(s) => f.write_str(s),
            StoreError::OverQuota => f.write_str("quota exceeded"),
        }
    }
}

macro_rules! from_db {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
from_db!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub addr: String,
    /// `$argon2id$...` or `{SHA512-CRYPT}$6$...`
    pub hash: String,
    /// Days since 1970-01-01.
    pub created_day: u32,
    pub last_login_day: u32,
}

impl Account {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .str(&self.hash)
            .u32(self.created_day)
            .u32(self.last_login_day)
            .0
    }
    fn decode(addr: &str, b: &[u8]) -> Option<Account> {
        let mut d = Dec::new(b, 1)?;
        Some(Account {
            addr: addr.to_string(),
            hash: d.str()?,
            created_day: d.u32()?,
            last_login_day: d.u32()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: u64,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    /// RFC 6154 attribute such as `\Sent`, if any.
    pub special_use: Option<String>,
    pub subscribed: bool,
}

impl Mailbox {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.id)
            .u32(self.uidvalidity)
            .u32(self.uidnext)
            .str(self.special_use.as_deref().unwrap_or(""))
            .u8(self.subscribed as u8)
            .0
    }
    fn decode(name: &str, b: &[u8]) -> Option<Mailbox> {
        let mut d = Dec::new(b, 1)?;
        let id = d.u64()?;
        let uidvalidity = d.u32()?;
        let uidnext = d.u32()?;
        let su = d.str()?;
        Some(Mailbox {
            id,
            name: name.to_string(),
            uidvalidity,
            uidnext,
            special_use: if su.is_empty() { None } else { Some(su) },
            subscribed: d.u8()? != 0,
        })
    }
}

/// System flags as bits; keywords separately.
pub mod flag {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;
}

/// Most keywords one message keeps (RFC 9051 §2.3.2 lets a server refuse
/// more); without a bound, each `STORE +FLAGS` could grow one index record
/// that every later STORE rewrites and every FETCH renders.
pub const MAX_KEYWORDS: usize = 64;
/// Longest keyword accepted, in bytes (Dovecot's default is 50; clients
/// use short names such as `$MDNSent`).
pub const MAX_KEYWORD_LEN: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub bits: u8,
    pub keywords: Vec<String>,
}

impl Flags {
    pub fn has(&self, bit: u8) -> bool {
        self.bits & bit != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    pub body_id: u64,
    pub size: u64,
    /// Unix seconds.
    pub internal_date: i64,
    pub flags: Flags,
}

impl Message {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.body_id)
            .u64(self.size)
            .i64(self.internal_date)
            .u8(self.flags.bits)
            .strs(&self.flags.keywords)
            .0
    }
    fn decode(uid: u32, b: &[u8]) -> Option<Message> {
        let mut d = Dec::new(b, 1)?;
        Some(Message {
            uid,
            body_id: d.u64()?,
            size: d.u64()?,
            internal_date: d.i64()?,
            flags: Flags {
                bits: d.u8()?,
                keywords: d.strs()?,
            },
        })
    }
}

/// How a STORE changes flags (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// Special-use mailboxes we declare (spec §9.1), not auto-created.
pub fn default_special_use(name: &str) -> Option<&'static str> {
    match name {
        "Drafts" => Some("\\Drafts"),
        "Junk" => Some("\\Junk"),
        "Trash" => Some("\\Trash"),
        "Sent" | "Sent Messages" => Some("\\Sent"),
        _ => None,
    }
}

pub struct Store {
    /// In a lock only so that `compact` can get `&mut`; transactions never
    /// outlive a call (redb's transactions own what they need), so the read
    /// side is held for an instant. The store is shared with the store
    /// thread (`writer`), which does the durable commits.
    db: std::sync::RwLock<Database>,
    bodies: Bodies,
    data_dir: PathBuf,
    /// Next body id: kept in memory, started above every id in the index and
    /// on disk, so allocating one costs no index write.
    next_body: std::sync::atomic::AtomicU64,
    /// Most messages per mailbox for deliveries with a quota limit.
    max_messages: std::sync::atomic::AtomicU64,
}

impl Store {
    /// The database, for one transaction's start.
    fn db(&self) -> std::sync::RwLockReadGuard<'_, Database> {
        self.db.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Open (or create) the store in `data_dir`, then sweep orphans: tmp files,
    /// body files no index entry refers to, and index entries whose body is gone.
    /// Everything the process creates from here on is the owner's alone
    /// (umask 077: files 0600, directories 0700), and what an older version
    /// left in `data_dir` with wider modes is narrowed.
    pub fn open(data_dir: &Path) -> Result<Store> {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        std::fs::create_dir_all(data_dir)?;
        let fixed = bodies::restrict_tree(data_dir)?;
        if fixed > 0 {
            log::info!("store: narrowed the modes of {fixed} files and folders in the data folder to 0600/0700");
        }
        let bodies = Bodies::open(data_dir)?;
        let db = Database::create(data_dir.join("index.redb"))?;
        let store = Store {
            db: std::sync::RwLock::new(db),
            bodies,
            data_dir: data_dir.to_path_buf(),
            next_body: std::sync::atomic::AtomicU64::new(1),
            max_messages: std::sync::atomic::AtomicU64::new(u64::MAX),
        };
        store.init_tables()?;
        let (max_id, removed) = store.sweep_orphans()?;
        store
            .next_body
            .store(max_id + 1, std::sync::atomic::Ordering::Relaxed);
        store.recount_if_needed(removed)?;
        Ok(store)
    }

    /// Cap of `max_messages_per_mailbox` (checked where a quota limit is).
    pub fn set_max_messages(&self, n: u64) {
        self.max_messages
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Messages in mailbox `id`.
    pub fn message_count(&self, id: u64) -> Result<u64> {
        let tx = self.db().begin_read()?;
        Ok(tx
            .open_table(MBCOUNT)?
            .get(id)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Recompute quota (with the per-message overhead) and per-mailbox
    /// counts from the messages: once when upgrading an older index, and
    /// after the orphan sweep removed entries.
    fn recount_if_needed(&self, forced: bool) -> Result<()> {
        let tx = self.db().begin_write()?;
        let version = tx
            .open_table(COUNTERS)?
            .get(LAYOUT_KEY)?
            .map(|v| v.value())
            .unwrap_or(0);
        if version >= LAYOUT && !forced {
            return Ok(());
        }
        let mut owner: HashMap<u64, String> = HashMap::new();
        for e in tx.open_table(MAILBOXES)?.iter()? {
            let (k, v) = e?;
            let (addr, name) = k.value();
            if let Some(mb) = Mailbox::decode(name, v.value()) {
                owner.insert(mb.id, addr.to_string());
            }
        }
        let mut used: HashMap<String, u64> = HashMap::new();
        let mut counts: HashMap<u64, u64> = HashMap::new();
        for e in tx.open_table(MESSAGES)?.iter()? {
            let (k, v) = e?;
            let (mb, uid) = k.value();
            let Some(m) = Message::decode(uid, v.value()) else {
                continue;
            };
            *counts.entry(mb).or_insert(0) += 1;
            if let Some(a) = owner.get(&mb) {
                *used.entry(a.clone()).or_insert(0) += charged(m.size);
            }
        }
        {
            let mut q = tx.open_table(QUOTA)?;
            let addrs: Vec<String> = q
                .iter()?
                .filter_map(|e| e.ok().map(|(k, _)| k.value().to_string()))
                .collect();
            for a in addrs {
                q.remove(a.as_str())?;
            }
            for (a, u) in &used {
                q.insert(a.as_str(), *u)?;
            }
        }
        {
            let mut c = tx.open_table(MBCOUNT)?;
            let ids: Vec<u64> = c
                .iter()?
                .filter_map(|e| e.ok().map(|(k, _)| k.value()))
                .collect();
            for id in ids {
                c.remove(id)?;
            }
            for (id, n) in &counts {
                c.insert(*id, *n)?;
            }
        }
        tx.open_table(COUNTERS)?.insert(LAYOUT_KEY, LAYOUT)?;
        tx.commit()?;
        if version < LAYOUT {
            log::info!("store: quota recounted with the per-message overhead");
        }
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn init_tables(&self) -> Result<()> {
        let tx = self.db().begin_write()?;
        tx.open_table(ACCOUNTS)?;
        tx.open_table(MAILBOXES)?;
        tx.open_table(MESSAGES)?;
        tx.open_table(BODIES)?;
        tx.open_table(METADATA)?;
        tx.open_table(QUOTA)?;
        tx.open_table(COUNTERS)?;
        tx.open_table(QUEUE)?;
        tx.open_table(INLINE)?;
        tx.open_table(PUSH)?;
        tx.open_table(MBCOUNT)?;
        Self::init_invites(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Returns the largest body id seen and whether index entries were removed.
    fn sweep_orphans(&self) -> Result<(u64, bool)> {
        let on_disk: HashSet<u64> = self.bodies.scan()?.into_iter().collect();
        let mut max_id = on_disk.iter().copied().max().unwrap_or(0);
        let tx = self.db().begin_write()?;
        let mut known = HashSet::new();
        let mut missing = HashSet::new();
        let mut removed = false;
        let inline: HashSet<u64> = {
            let t = tx.open_table(INLINE)?;
            let mut v = HashSet::new();
            for e in t.iter()? {
                v.insert(e?.0.value());
            }
            v
        };
        {
            let t = tx.open_table(BODIES)?;
            for e in t.iter()? {
                let (k, _) = e?;
                let id = k.value();
                max_id = max_id.max(id);
                known.insert(id);
                if !on_disk.contains(&id) && !inline.contains(&id) {
                    missing.insert(id);
                }
            }
        }
        for id in on_disk.difference(&known) {
            self.bodies.remove(*id);
        }
        if !missing.is_empty() {
            log::warn!(
                "store: {} index entries point at missing body files; removing them",
                missing.len()
            );
            let mut dead = Vec::new();
            {
                let t = tx.open_table(MESSAGES)?;
                for e in t.iter()? {
                    let (k, v) = e?;
                    let (mb, uid) = k.value();
                    if let Some(m) = Message::decode(uid, v.value()) {
                        if missing.contains(&m.body_id) {
                            dead.push((mb, uid));
                        }
                    }
                }
            }
            removed = !dead.is_empty();
            let mut t = tx.open_table(MESSAGES)?;
            for k in dead {
                t.remove(k)?;
            }
            let mut b = tx.open_table(BODIES)?;
            for id in missing {
                b.remove(id)?;
            }
        }
        tx.commit()?;
        Ok((max_id, removed))
    }

    /// Empty every table that holds messages or exists for them (see
    /// `snapshot::strip_messages`).
    fn clear_message_tables(tx: &redb::WriteTransaction) -> Result<()> {
        macro_rules! clear {
            ($($t:expr),*) => {$(
                tx.open_table($t)?.retain(|_, _| false)?;
            )*};
        }
        clear!(MESSAGES, BODIES, INLINE, MBCOUNT, QUOTA, QUEUE, PUSH);
        Ok(())
    }

    fn next_counter(tx: &redb::WriteTransaction, name: &str, at_least: u64) -> Result<u64> {
        let mut t = tx.open_table(COUNTERS)?;
        let cur = t.get(name)?.map(|v| v.value()).unwrap_or(0);
        let next = (cur + 1).max(at_least);
        t.insert(name, next)?;
        Ok(next)
    }

    // ------------------------------------------------------------------ accounts

    pub fn get_account(&self, addr: &str) -> Result<Option<Account>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(ACCOUNTS)?;
        Ok(t.get(addr)?.and_then(|v| Account::decode(addr, v.value())))
    }

    /// Create an account with its INBOX. `Exists` if it is already there.
    pub fn create_account(&self, addr: &str, hash: &str, today: u32) -> Result<Account> {
        let tx = self.db().begin_write()?;
        let acc = Self::create_account_tx(&tx, addr, hash, today)?;
        tx.commit()?;
        Ok(acc)
    }

    /// The account record and its INBOX inside `tx` (not committed);
    /// `Exists` if the address is taken.
    pub(crate) fn create_account_tx(
        tx: &redb::WriteTransaction,
        addr: &str,
        hash: &str,
        today: u32,
    ) -> Result<Account> {
        let acc = Account {
            addr: addr.to_string(),
            hash: hash.to_string(),
            created_day: today,
            last_login_day: today,
        };
        {
            let mut t = tx.open_table(ACCOUNTS)?;
            if t.get(addr)?.is_some() {
                return Err(StoreError::Exists);
            }
            t.insert(addr, acc.encode().as_slice())?;
        }
        Self::create_mailbox_tx(tx, addr, "INBOX", None)?;
        Ok(acc)
    }

    pub fn set_password_hash(&self, addr: &str, hash: &str) -> Result<()> {
        self.update_account(addr, |a| a.hash = hash.to_string())
    }

    /// Record a login on `day` (written only when the day changes: spec §4.6).
    pub fn touch_login(&self, addr: &str, day: u32) -> Result<()> {
        if let Some(a) = self.get_account(addr)? {
            if a.last_login_day != day {
                self.update_account(addr, |a| a.last_login_day = day)?;
            }
        }
        Ok(())
    }

    fn update_account(&self, addr: &str, f: impl FnOnce(&mut Account)) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(ACCOUNTS)?;
            let mut a = match t.get(addr)?.and_then(|v| Account::decode(addr, v.value())) {
                Some(a) => a,
                None => return Err(StoreError::NotFound),
            };
            f(&mut a);
            t.insert(addr, a.encode().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn account_count(&self) -> Result<u64> {
        let tx = self.db().begin_read()?;
        Ok(tx.open_table(ACCOUNTS)?.len()?)
    }

    // ----------------------------------------------------------------- mailboxes

    fn create_mailbox_tx(
        tx: &redb::WriteTransaction,
        addr: &str,
        name: &str,
        special_use: Option<String>,
    ) -> Result<Mailbox> {
        let id = Self::next_counter(tx, "mailbox", 1)?;
        let uidvalidity =
            Self::next_counter(tx, "uidvalidity", crate::clock::now_secs() as u64)? as u32;
        let mb = Mailbox {
            id,
            name: name.to_string(),
            uidvalidity: uidvalidity.max(1),
            uidnext: 1,
            special_use: special_use.or_else(|| default_special_use(name).map(String::from)),
            subscribed: true,
        };
        let mut t = tx.open_table(MAILBOXES)?;
        if t.get((addr, name))?.is_some() {
            return Err(StoreError::Exists);
        }
        t.insert((addr, name), mb.encode().as_slice())?;
        Ok(mb)
    }

    pub fn create_mailbox(
        &self,
        addr: &str,
        name: &str,
        special_use: Option<String>,
    ) -> Result<Mailbox> {
        let tx = self.db().begin_write()?;
        let mb = Self::create_mailbox_tx(&tx, addr, name, special_use)?;
        tx.commit()?;
        Ok(mb)
    }

    pub fn get_mailbox(&self, addr: &str, name: &str) -> Result<Option<Mailbox>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(MAILBOXES)?;
        Ok(t.get((addr, name))?
            .and_then(|v| Mailbox::decode(name, v.value())))
    }

    pub fn list_mailboxes(&self, addr: &str) -> Result<Vec<Mailbox>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(MAILBOXES)?;
        let mut out = Vec::new();
        for e in t.range((addr, "")..)? {
            let (k, v) = e?;
            let (a, name) = k.value();
            if a != addr {
                break;
            }
            if let Some(m) = Mailbox::decode(name, v.value()) {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub fn set_subscribed(&self, addr: &str, name: &str, on: bool) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(MAILBOXES)?;
            let mut mb = t
                .get((addr, name))?
                .and_then(|v| Mailbox::decode(name, v.value()))
                .ok_or(StoreError::NotFound)?;
            mb.subscribed = on;
            t.insert((addr, name), mb.encode().as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Delete a mailbox and its messages. Returns the ids of bodies freed.
    pub fn delete_mailbox(&self, addr: &str, name: &str) -> Result<()> {
        let tx = self.db().begin_write()?;
        let mb = {
            let mut t = tx.open_table(MAILBOXES)?;
            let mb = t
                .get((addr, name))?
                .and_then(|v| Mailbox::decode(name, v.value()))
                .ok_or(StoreError::NotFound)?;
            t.remove((addr, name))?;
            mb
        };
        let uids: Vec<u32> = Self::messages_tx(&tx, mb.id)?
            .iter()
            .map(|m| m.uid)
            .collect();
        let freed = Self::expunge_tx(&tx, addr, mb.id, &uids)?;
        tx.commit()?;
        for id in freed {
            self.bodies.remove(id);
        }
        Ok(())
    }

    /// RENAME (RFC 3501 §6.3.5): renaming INBOX moves its messages to the new
    /// mailbox and leaves INBOX empty; children `old/...` follow.
    pub fn rename_mailbox(&self, addr: &str, from: &str, to: &str) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(MAILBOXES)?;
            if t.get((addr, to))?.is_some() {
                return Err(StoreError::Exists);
            }
            let mb = t
                .get((addr, from))?
                .and_then(|v| Mailbox::decode(from, v.value()))
                .ok_or(StoreError::NotFound)?;
            let mut moves = vec![(from.to_string(), to.to_string(), mb)];
            let prefix = format!("{from}/");
            for e in t.range((addr, prefix.as_str())..)? {
                let (k, v) = e?;
                let (a, n) = k.value();
                if a != addr || !n.starts_with(&prefix) {
                    break;
                }
                if let Some(m) = Mailbox::decode(n, v.value()) {
                    moves.push((n.to_string(), format!("{to}/{}", &n[prefix.len()..]), m));
                }
            }
            for (old, new, mut m) in moves {
                m.name = new.clone();
                t.remove((addr, old.as_str()))?;
                t.insert((addr, new.as_str()), m.encode().as_slice())?;
            }
        }
        if from == "INBOX" {
            // The messages moved with the old record's id; give INBOX a fresh one.
            Self::create_mailbox_tx(&tx, addr, "INBOX", None)?;
        }
        tx.commit()?;
        Ok(())
    }

    // ------------------------------------------------------------------ messages

    /// The messages of `mailbox` in UID order, from a read or write transaction's table.
    fn collect_messages(
        t: &impl ReadableTable<(u64, u32), &'static [u8]>,
        mailbox: u64,
    ) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        for e in t.range((mailbox, 0)..=(mailbox, u32::MAX))? {
            let (k, v) = e?;
            if let Some(m) = Message::decode(k.value().1, v.value()) {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn messages_tx(tx: &redb::WriteTransaction, mailbox: u64) -> Result<Vec<Message>> {
        Self::collect_messages(&tx.open_table(MESSAGES)?, mailbox)
    }

    /// All messages of a mailbox in UID order.
    pub fn messages(&self, mailbox: u64) -> Result<Vec<Message>> {
        let tx = self.db().begin_read()?;
        Self::collect_messages(&tx.open_table(MESSAGES)?, mailbox)
    }

    pub fn body_path(&self, body_id: u64) -> PathBuf {
        self.bodies.path(body_id)
    }

    /// Allocate a body id and return the tmp path to write it at (for streaming
    /// writers). Call `commit_body` after the file is written and fsynced.
    pub fn new_body(&self) -> Result<(u64, PathBuf)> {
        let id = self
            .next_body
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((id, self.bodies.tmp_path(id)))
    }

    pub fn quota_used(&self, addr: &str) -> Result<u64> {
        let tx = self.db().begin_read()?;
        Ok(tx
            .open_table(QUOTA)?
            .get(addr)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Durably write `data` as a new body and add it to `(addr, mailbox)` for
    /// each target in one index transaction. `limit` (bytes) is checked per
    /// account: a target that would go over it fails the whole call with
    /// `OverQuota` unless `skip_over_quota` — then that target is skipped and
    /// reported in the result as `None`.
    pub fn deliver(
        &self,
        data: &[u8],
        targets: &[(&str, &str)],
        flags: &Flags,
        internal_date: i64,
        limit: Option<u64>,
    ) -> Result<Vec<(String, Mailbox, u32)>> {
        self.deliver_and_queue(data, targets, None, flags, internal_date, limit)
            .map(|(v, _)| v)
    }

    /// Like `deliver`, and in the same index transaction put the message in
    /// the outbound queue for remote recipients (one entry per domain). The
    /// body file is shared; the queue holds references to it.
    pub fn deliver_and_queue(
        &self,
        data: &[u8],
        targets: &[(&str, &str)],
        outbound: Option<&Outbound>,
        flags: &Flags,
        internal_date: i64,
        limit: Option<u64>,
    ) -> Result<Delivered> {
        let (id, _) = self.new_body()?;
        self.bodies.write(id, data)?;
        self.index_delivery_q(
            id,
            data.len() as u64,
            targets,
            outbound,
            flags,
            internal_date,
            limit,
        )
    }

    /// Index commit for a body already placed durably with `commit_body`/`deliver`.
    pub fn index_delivery(
        &self,
        body_id: u64,
        size: u64,
        targets: &[(&str, &str)],
        flags: &Flags,
        internal_date: i64,
        limit: Option<u64>,
    ) -> Result<Vec<(String, Mailbox, u32)>> {
        self.index_delivery_q(body_id, size, targets, None, flags, internal_date, limit)
            .map(|(v, _)| v)
    }

    #[allow(clippy::too_many_arguments)]
    fn index_delivery_q(
        &self,
        body_id: u64,
        size: u64,
        targets: &[(&str, &str)],
        outbound: Option<&Outbound>,
        flags: &Flags,
        internal_date: i64,
        limit: Option<u64>,
    ) -> Result<Delivered> {
        let item = BatchItem {
            body_id,
            size,
            targets: targets
                .iter()
                .map(|(a, m)| (a.to_string(), m.to_string()))
                .collect(),
            outbound: outbound.map(|o| Outbound {
                mail_from: o.mail_from.clone(),
                per_domain: o.per_domain.clone(),
            }),
            flags: flags.clone(),
            internal_date,
            limit,
            inline: None,
        };
        self.index_batch(std::slice::from_ref(&item))
            .pop()
            .unwrap_or(Err(StoreError::Invalid("empty batch")))
    }

    /// Group commit: index several deliveries (bodies already durable) in one
    /// write transaction — one fsync of the index for the whole batch. Each
    /// item succeeds or fails on its own (e.g. over quota); a failed commit
    /// fails all. Bodies of failed items are removed.
    pub fn index_batch(&self, items: &[BatchItem]) -> Vec<Result<Delivered>> {
        let mut results: Vec<Result<Delivered>> = Vec::with_capacity(items.len());
        let outcome = (|| -> Result<()> {
            let tx = self.db().begin_write()?;
            // Quota use including earlier items of this batch.
            let mut used: HashMap<String, u64> = HashMap::new();
            for item in items {
                results.push(Self::index_item_tx(
                    &tx,
                    item,
                    &mut used,
                    self.max_messages.load(std::sync::atomic::Ordering::Relaxed),
                ));
            }
            {
                let mut qt = tx.open_table(QUOTA)?;
                for (a, u) in &used {
                    qt.insert(a.as_str(), *u)?;
                }
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = outcome {
            let msg = e.to_string();
            results = items
                .iter()
                .map(|_| Err(StoreError::Db(msg.clone())))
                .collect();
        }
        for (item, r) in items.iter().zip(&results) {
            let empty = r
                .as_ref()
                .map(|(v, q)| v.is_empty() && q.is_empty())
                .unwrap_or(true);
            if empty {
                self.bodies.remove(item.body_id);
            }
        }
        results
    }

    /// One delivery inside a batch transaction: all checks first, then writes,
    /// so a refused item leaves nothing behind.
    fn index_item_tx(
        tx: &redb::WriteTransaction,
        item: &BatchItem,
        used: &mut HashMap<String, u64>,
        max_messages: u64,
    ) -> Result<Delivered> {
        let mut mbt = tx.open_table(MAILBOXES)?;
        let qt = tx.open_table(QUOTA)?;
        let mut ct = tx.open_table(MBCOUNT)?;
        let mut boxes = Vec::with_capacity(item.targets.len());
        let mut add: HashMap<&str, u64> = HashMap::new();
        let mut per_box: HashMap<u64, u64> = HashMap::new();
        for (addr, name) in &item.targets {
            let mb = mbt
                .get((addr.as_str(), name.as_str()))?
                .and_then(|v| Mailbox::decode(name, v.value()))
                .ok_or(StoreError::NotFound)?;
            let base = match used.get(addr) {
                Some(u) => *u,
                None => qt.get(addr.as_str())?.map(|v| v.value()).unwrap_or(0),
            };
            let a = add.entry(addr.as_str()).or_insert(0);
            *a += charged(item.size);
            let n = per_box.entry(mb.id).or_insert(0);
            *n += 1;
            if let Some(l) = item.limit {
                if base + *a > l {
                    return Err(StoreError::OverQuota);
                }
                let have = ct.get(mb.id)?.map(|v| v.value()).unwrap_or(0);
                if have + *n > max_messages {
                    return Err(StoreError::OverQuota);
                }
            }
            boxes.push(mb);
        }
        drop(qt);
        for (id, n) in &per_box {
            let have = ct.get(*id)?.map(|v| v.value()).unwrap_or(0);
            ct.insert(*id, have + n)?;
        }
        drop(ct);
        for (addr, n) in &add {
            let base = match used.get(*addr) {
                Some(u) => *u,
                None => tx
                    .open_table(QUOTA)?
                    .get(*addr)?
                    .map(|v| v.value())
                    .unwrap_or(0),
            };
            used.insert(addr.to_string(), base + n);
        }
        let queued = match &item.outbound {
            Some(o) => Self::enqueue_tx(tx, item.body_id, item.size, o, item.internal_date)?,
            None => Vec::new(),
        };
        let mut out = Vec::with_capacity(boxes.len());
        let mut mt = tx.open_table(MESSAGES)?;
        for ((addr, name), mut mb) in item.targets.iter().zip(boxes) {
            // Re-read: an earlier target of this item may be the same mailbox.
            if let Some(cur) = mbt
                .get((addr.as_str(), name.as_str()))?
                .and_then(|v| Mailbox::decode(name, v.value()))
            {
                mb = cur;
            }
            let uid = mb.uidnext;
            mb.uidnext += 1;
            let m = Message {
                uid,
                body_id: item.body_id,
                size: item.size,
                internal_date: item.internal_date,
                flags: item.flags.clone(),
            };
            mt.insert((mb.id, uid), m.encode().as_slice())?;
            mbt.insert((addr.as_str(), name.as_str()), mb.encode().as_slice())?;
            out.push((addr.clone(), mb, uid));
        }
        let refs = out.len() + queued.len();
        if refs > 0 {
            tx.open_table(BODIES)?.insert(item.body_id, refs as u32)?;
            if let Some(data) = &item.inline {
                tx.open_table(INLINE)?
                    .insert(item.body_id, data.as_slice())?;
            }
        }
        Ok((out, queued))
    }

    /// The bytes of a body, inline or from its file.
    pub fn read_body(&self, id: u64) -> std::io::Result<Vec<u8>> {
        if let Some(v) = self.inline_body(id) {
            return Ok(v);
        }
        std::fs::read(self.bodies.path(id))
    }

    /// An inline body, if this one is stored in the index.
    pub fn inline_body(&self, id: u64) -> Option<Vec<u8>> {
        let tx = self.db().begin_read().ok()?;
        let t = tx.open_table(INLINE).ok()?;
        let v = t.get(id).ok()??.value().to_vec();
        Some(v)
    }

    /// Paths for writing body `id` off the event loop: (tmp, final).
    pub fn body_write_paths(&self, id: u64) -> (PathBuf, PathBuf) {
        (self.bodies.tmp_path(id), self.bodies.path(id))
    }

    /// Place a fully written and fsynced tmp file (from `new_body`) as body `id`.
    pub fn commit_body(&self, id: u64) -> Result<()> {
        Ok(self.bodies.commit_tmp(id)?)
    }

    /// Remove a never-committed body (tmp or placed).
    pub fn discard_body(&self, id: u64) {
        let _ = std::fs::remove_file(self.bodies.tmp_path(id));
        self.bodies.remove(id);
    }

    /// Change flags of `uids`; returns the messages whose flags changed, with new flags.
    pub fn store_flags(
        &self,
        mailbox: u64,
        uids: &[u32],
        op: FlagOp,
        bits: u8,
        keywords: &[String],
    ) -> Result<Vec<(u32, Flags)>> {
        let tx = self.db().begin_write()?;
        let mut changed = Vec::new();
        {
            let mut t = tx.open_table(MESSAGES)?;
            for &uid in uids {
                let Some(mut m) = t
                    .get((mailbox, uid))?
                    .and_then(|v| Message::decode(uid, v.value()))
                else {
                    continue;
                };
                let old = m.flags.clone();
                match op {
                    FlagOp::Replace => {
                        m.flags.bits = bits;
                        m.flags.keywords = keywords.iter().take(MAX_KEYWORDS).cloned().collect();
                    }
                    FlagOp::Add => {
                        m.flags.bits |= bits;
                        for k in keywords {
                            if m.flags.keywords.len() >= MAX_KEYWORDS {
                                break;
                            }
                            if !m.flags.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                                m.flags.keywords.push(k.clone());
                            }
                        }
                    }
                    FlagOp::Remove => {
                        m.flags.bits &= !bits;
                        m.flags
                            .keywords
                            .retain(|x| !keywords.iter().any(|k| k.eq_ignore_ascii_case(x)));
                    }
                }
                if m.flags != old {
                    t.insert((mailbox, uid), m.encode().as_slice())?;
                }
                changed.push((uid, m.flags));
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    fn expunge_tx(
        tx: &redb::WriteTransaction,
        addr: &str,
        mailbox: u64,
        uids: &[u32],
    ) -> Result<Vec<u64>> {
        let mut freed = Vec::new();
        let mut released = 0u64;
        let mut gone = 0u64;
        let mut t = tx.open_table(MESSAGES)?;
        let mut b = tx.open_table(BODIES)?;
        for &uid in uids {
            let Some(m) = t
                .remove((mailbox, uid))?
                .and_then(|v| Message::decode(uid, v.value()))
            else {
                continue;
            };
            released += charged(m.size);
            gone += 1;
            let rc = b.get(m.body_id)?.map(|v| v.value()).unwrap_or(1);
            if rc <= 1 {
                b.remove(m.body_id)?;
                tx.open_table(INLINE)?.remove(m.body_id)?;
                freed.push(m.body_id);
            } else {
                b.insert(m.body_id, rc - 1)?;
            }
        }
        let mut q = tx.open_table(QUOTA)?;
        let used = q.get(addr)?.map(|v| v.value()).unwrap_or(0);
        q.insert(addr, used.saturating_sub(released))?;
        let mut c = tx.open_table(MBCOUNT)?;
        let have = c.get(mailbox)?.map(|v| v.value()).unwrap_or(0);
        match have.saturating_sub(gone) {
            0 => c.remove(mailbox).map(drop)?,
            n => c.insert(mailbox, n).map(drop)?,
        }
        Ok(freed)
    }

    /// Remove messages; body files whose last reference is gone are unlinked
    /// after the commit. Returns the UIDs that were removed.
    pub fn expunge(&self, addr: &str, mailbox: u64, uids: &[u32]) -> Result<()> {
        let tx = self.db().begin_write()?;
        let freed = Self::expunge_tx(&tx, addr, mailbox, uids)?;
        tx.commit()?;
        for id in freed {
            self.bodies.remove(id);
        }
        Ok(())
    }

    /// COPY (and with `remove_source`, MOVE): same body file, new UIDs in `dst`.
    /// Returns (source uid, destination uid) pairs and the destination UIDVALIDITY.
    pub fn copy(
        &self,
        addr: &str,
        src: u64,
        uids: &[u32],
        dst_name: &str,
        limit: Option<u64>,
        remove_source: bool,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let tx = self.db().begin_write()?;
        let mut pairs = Vec::new();
        let uidvalidity;
        let mut freed = Vec::new();
        {
            let mut mbt = tx.open_table(MAILBOXES)?;
            let mut dst = mbt
                .get((addr, dst_name))?
                .and_then(|v| Mailbox::decode(dst_name, v.value()))
                .ok_or(StoreError::NotFound)?;
            uidvalidity = dst.uidvalidity;
            let mut added = 0u64;
            {
                let mut mt = tx.open_table(MESSAGES)?;
                let mut bt = tx.open_table(BODIES)?;
                for &uid in uids {
                    let Some(m) = mt
                        .get((src, uid))?
                        .and_then(|v| Message::decode(uid, v.value()))
                    else {
                        continue;
                    };
                    let new_uid = dst.uidnext;
                    dst.uidnext += 1;
                    let mut nm = m.clone();
                    nm.uid = new_uid;
                    mt.insert((dst.id, new_uid), nm.encode().as_slice())?;
                    let rc = bt.get(m.body_id)?.map(|v| v.value()).unwrap_or(0);
                    bt.insert(m.body_id, rc + 1)?;
                    added += charged(m.size);
                    pairs.push((uid, new_uid));
                }
            }
            {
                let mut ct = tx.open_table(MBCOUNT)?;
                let have = ct.get(dst.id)?.map(|v| v.value()).unwrap_or(0);
                let n = pairs.len() as u64;
                if limit.is_some()
                    && n > 0
                    && have + n > self.max_messages.load(std::sync::atomic::Ordering::Relaxed)
                {
                    return Err(StoreError::OverQuota);
                }
                ct.insert(dst.id, have + n)?;
            }
            mbt.insert((addr, dst_name), dst.encode().as_slice())?;
            let mut q = tx.open_table(QUOTA)?;
            let used = q.get(addr)?.map(|v| v.value()).unwrap_or(0);
            if !remove_source {
                if let Some(l) = limit {
                    if used + added > l {
                        return Err(StoreError::OverQuota);
                    }
                }
            }
            q.insert(addr, used + added)?;
        }
        if remove_source {
            let src_uids: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            freed = Self::expunge_tx(&tx, addr, src, &src_uids)?;
        }
        tx.commit()?;
        for id in freed {
            self.bodies.remove(id);
        }
        Ok((uidvalidity, pairs))
    }

    // ------------------------------------------------------------------ metadata

    pub fn get_meta(&self, addr: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(METADATA)?;
        Ok(t.get((addr, key))?.map(|v| v.value().to_vec()))
    }

    pub fn set_meta(&self, addr: &str, key: &str, value: Option<&[u8]>) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(METADATA)?;
            match value {
                Some(v) => {
                    t.insert((addr, key), v)?;
                }
                None => {
                    t.remove((addr, key))?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Read, change and write `addr`'s device tokens in one write
    /// transaction (so concurrent changes cannot lose each other). `f` gets
    /// the parsed list; an empty list removes the key. Returns how many
    /// tokens there were before and after.
    pub fn update_devicetokens(
        &self,
        addr: &str,
        f: impl FnOnce(&mut Vec<(String, i64)>),
    ) -> Result<(usize, usize)> {
        let tx = self.db().begin_write()?;
        let counts = {
            let mut t = tx.open_table(METADATA)?;
            let cur = t.get((addr, "devicetoken"))?.map(|v| v.value().to_vec());
            let mut toks = cur.as_deref().map(devicetoken::parse).unwrap_or_default();
            let before = toks.len();
            f(&mut toks);
            let enc = devicetoken::encode(&toks);
            let changed = Some(&enc) != cur.as_ref() && !(toks.is_empty() && cur.is_none());
            if changed {
                if toks.is_empty() {
                    t.remove((addr, "devicetoken"))?;
                } else {
                    t.insert((addr, "devicetoken"), enc.as_slice())?;
                }
            }
            (before, toks.len(), changed)
        };
        if counts.2 {
            tx.commit()?;
        } else {
            // Unchanged: no commit, no fsync.
            tx.abort()?;
        }
        Ok((counts.0, counts.1))
    }
}
