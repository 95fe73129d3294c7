//! Authentication and create-on-first-login (spec §4.4).
//!
//! Password hashing (Argon2id, m=19 MiB, t=2, p=1) runs off the event loop on
//! one dedicated thread (`hasher`). A bounded in-memory cache of
//! recently verified logins spares Delta Chat's frequent reconnects the hash.
//!
//! Login throttling (all delays are async timers, never a blocked thread):
//! * per account (a bounded map keyed by address, never by IP): after `n`
//!   recent failures the next password check waits until
//!   `ACCOUNT_DELAY_BASE·2^(n-1)` (at most `ACCOUNT_DELAY_MAX`) after the
//!   last failure; and one login per account runs at a time, so a flood for
//!   one account collapses into one hash at a time;
//! * per connection (`LoginConn`): each failure delays its reply by
//!   `CONN_DELAY_BASE·2^(f-1)` (at most `CONN_DELAY_MAX`); the
//!   `CONN_MAX_FAILURES`th failure ends the connection;
//! * hasher priorities: checks for accounts or connections with recent
//!   failures wait in the hasher's suspect queue, behind all normal work; a
//!   full queue answers a temporary failure at once. Cached logins never hash.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::hasher::{Busy, Priority};

use crate::clock::today;
use crate::config::Config;
use crate::store::writer::Writer;
use crate::store::{Store, StoreError};

/// Why a login failed. The protocol layers map these to their own replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong password, unknown address that may not be created, bad charset…
    Invalid,
    /// Account creation refused for a reason the user may see.
    CreationRefused(String),
    /// Store trouble or the hasher is saturated: try again later.
    Temporary(String),
    /// Too many failed logins on this connection: close it.
    TooManyFailures,
}

const CACHE_MAX: usize = 10_000;

/// Accounts with recent failures that are remembered (oldest dropped first).
pub const STRIKES_MAX: usize = 10_000;
/// A failure older than this no longer counts.
pub const STRIKE_FORGET: Duration = Duration::from_secs(15 * 60);
/// Per-account wait before the next check after the first failure; doubles per failure.
pub const ACCOUNT_DELAY_BASE: Duration = Duration::from_millis(100);
pub const ACCOUNT_DELAY_MAX: Duration = Duration::from_secs(2);
/// Longest a login waits for its account's turn (other logins of the same
/// account ahead of it) before a temporary failure.
pub const ACCOUNT_WAIT_MAX: Duration = Duration::from_secs(10);
/// Per-connection delay of the first failure's reply; doubles per failure.
pub const CONN_DELAY_BASE: Duration = Duration::from_millis(100);
pub const CONN_DELAY_MAX: Duration = Duration::from_secs(1);
/// Failures on one connection after which it is closed.
pub const CONN_MAX_FAILURES: u32 = 10;

/// `base·2^(n-1)`, at most `max` (`n ≥ 1`).
fn backoff(base: Duration, max: Duration, n: u32) -> Duration {
    let shift = n.saturating_sub(1).min(20);
    base.saturating_mul(1 << shift).min(max)
}

/// Per-connection login state: the sessions keep one and pass it to
/// [`Auth::login`].
#[derive(Debug, Default)]
pub struct LoginConn {
    failures: Cell<u32>,
}

impl LoginConn {
    pub fn new() -> LoginConn {
        LoginConn::default()
    }
    /// Failed logins on this connection so far.
    pub fn failures(&self) -> u32 {
        self.failures.get()
    }
}

type Slots = RefCell<HashMap<String, Rc<async_lock::Mutex<()>>>>;

/// A login's hold on its account's slot. The map entry goes when the last
/// holder is dropped — also when a login is abandoned mid-way (client gone).
struct Slot<'a> {
    slots: &'a Slots,
    addr: &'a str,
    lock: Rc<async_lock::Mutex<()>>,
}

impl<'a> Slot<'a> {
    fn take(slots: &'a Slots, addr: &'a str) -> Slot<'a> {
        let lock = slots
            .borrow_mut()
            .entry(addr.to_string())
            .or_default()
            .clone();
        Slot { slots, addr, lock }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // The map's reference and ours: nobody else holds or waits for it
        // (the caller drops its own clone of the lock first).
        if Rc::strong_count(&self.lock) <= 2 {
            self.slots.borrow_mut().remove(self.addr);
        }
    }
}

/// Recent failed logins of one account.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    last: Instant,
}

pub struct Auth {
    cfg: Rc<Config>,
    store: std::sync::Arc<Store>,
    /// Account writes (creation, hash upgrade, last-login day) go to the store thread.
    writer: Writer,
    /// addr -> HMAC(key, password) of the last successful login.
    cache: RefCell<HashMap<String, [u8; 32]>>,
    cache_key: ring::hmac::Key,
    hasher: super::hasher::Hasher,
    /// addr -> recent failures (bounded by `STRIKES_MAX`).
    strikes: RefCell<HashMap<String, Strikes>>,
    /// addr -> the lock a login of that account holds; present only while
    /// a login of it runs or waits.
    slots: Slots,
}

/// Hash a password as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`), on the calling thread.
pub fn hash_password(password: &[u8]) -> String {
    super::hasher::hash_with(password, &mut None)
}

/// Verify against an Argon2 PHC string or an upstream `{SHA512-CRYPT}` hash, on the calling thread.
pub fn verify_password(password: &[u8], stored: &str) -> bool {
    super::hasher::verify_with(password, stored, &mut None)
}

/// Creation rules of spec §4.4 items 2–5 (lengths, charset, one `@`, domain).
pub fn check_new_address(cfg: &Config, addr: &str, password: &[u8]) -> Result<(), String> {
    if password.len() < cfg.password_min_length {
        return Err(format!(
            "password shorter than {} characters",
            cfg.password_min_length
        ));
    }
    let mut parts = addr.splitn(3, '@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("address must contain exactly one @".into());
    };
    if domain != cfg.mail_domain {
        return Err("address is not in this relay's domain".into());
    }
    if local.len() < cfg.username_min_length || local.len() > cfg.username_max_length {
        return Err(format!(
            "user name must be {}..{} characters",
            cfg.username_min_length, cfg.username_max_length
        ));
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("user name may only contain a-z 0-9 . _ -".into());
    }
    Ok(())
}

/// Resource checks (spec §4.4 item 6); unreadable values are ignored.
fn check_resources(cfg: &Config) -> Result<(), String> {
    if cfg.nocreate || cfg.nocreate_file.exists() {
        return Err("account creation is disabled on this relay".into());
    }
    if let Ok(s) = std::fs::read_to_string("/proc/loadavg") {
        if let Some(l) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            if l > cfg.max_load_1m {
                return Err("server load too high".into());
            }
        }
    }
    if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
        for line in s.lines() {
            if let Some(rest) = line.strip_prefix("MemAvailable:") {
                if let Some(kb) = rest
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    if kb * 1024 < cfg.min_available_memory {
                        return Err("not enough memory available".into());
                    }
                }
            }
        }
    }
    if let Ok(st) = rustix::fs::statvfs(&cfg.data_dir) {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < cfg.min_free_disk_space {
            return Err("not enough free disk space".into());
        }
    }
    Ok(())
}

impl Auth {
    pub fn new(cfg: Rc<Config>, store: std::sync::Arc<Store>, writer: Writer) -> Auth {
        let rng = ring::rand::SystemRandom::new();
        Auth {
            cfg,
            store,
            writer,
            cache: RefCell::new(HashMap::new()),
            cache_key: ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
                .expect("system RNG"),
            hasher: super::hasher::Hasher::start(),
            strikes: RefCell::new(HashMap::new()),
            slots: RefCell::new(HashMap::new()),
        }
    }

    /// Record today's login (spec §4.6) on the store thread.
    async fn touch_login(&self, addr: &str, day: u32) -> Result<(), StoreError> {
        let a = addr.to_string();
        self.writer.run(move |s| s.touch_login(&a, day)).await
    }

    /// Hash jobs waiting (normal, suspect).
    pub fn queued_hashes(&self) -> (usize, usize) {
        self.hasher.queued()
    }

    /// Recent failures of `addr` (0 once forgotten).
    fn strikes_of(&self, addr: &str) -> Option<Strikes> {
        let s = *self.strikes.borrow().get(addr)?;
        (s.last.elapsed() < STRIKE_FORGET).then_some(s)
    }

    fn strike(&self, addr: &str) {
        let now = Instant::now();
        let mut m = self.strikes.borrow_mut();
        if m.len() >= STRIKES_MAX && !m.contains_key(addr) {
            m.retain(|_, s| now.duration_since(s.last) < STRIKE_FORGET);
            if m.len() >= STRIKES_MAX {
                let oldest = m.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    m.remove(&k);
                }
            }
        }
        let e = m.entry(addr.to_string()).or_insert(Strikes {
            count: 0,
            last: now,
        });
        if now.duration_since(e.last) >= STRIKE_FORGET {
            e.count = 0;
        }
        e.count = e.count.saturating_add(1);
        e.last = now;
    }

    /// How long the next check of `addr` must still wait.
    fn account_wait(&self, addr: &str) -> Option<Duration> {
        let s = self.strikes_of(addr)?;
        let due = s.last + backoff(ACCOUNT_DELAY_BASE, ACCOUNT_DELAY_MAX, s.count);
        due.checked_duration_since(Instant::now())
    }

    fn priority(&self, conn: &LoginConn, addr: &str) -> Priority {
        if conn.failures() > 0 || self.strikes_of(addr).is_some() {
            Priority::Suspect
        } else {
            Priority::Normal
        }
    }

    fn cache_tag(&self, addr: &str, password: &[u8]) -> [u8; 32] {
        let mut ctx = ring::hmac::Context::with_key(&self.cache_key);
        ctx.update(addr.as_bytes());
        ctx.update(&[0]);
        ctx.update(password);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn remember(&self, addr: &str, password: &[u8]) {
        let tag = self.cache_tag(addr, password);
        let mut c = self.cache.borrow_mut();
        if c.len() >= CACHE_MAX && !c.contains_key(addr) {
            // Bounded: drop an arbitrary entry (cheap; a miss only costs one hash).
            if let Some(k) = c.keys().next().cloned() {
                c.remove(&k);
            }
        }
        c.insert(addr.to_string(), tag);
    }

    /// Forget a cached login (password change, deletion).
    pub fn invalidate(&self, addr: &str) {
        self.cache.borrow_mut().remove(addr);
    }

    /// Log in `user` with `password`, creating the account if allowed.
    /// `imap` logins update the last-login day (spec §4.6: SMTP does not).
    /// Returns the canonical address. A failure is answered after the
    /// connection's delay; `TooManyFailures` means: close the connection.
    pub async fn login(
        &self,
        conn: &LoginConn,
        user: &str,
        password: &[u8],
        imap: bool,
    ) -> Result<String, AuthError> {
        let suspect = conn.failures() > 0 || self.strikes_of(user.trim()).is_some();
        let r = self.login_once(conn, user, password, imap).await;
        let penalize = match &r {
            Err(AuthError::Invalid) => true,
            // A saturated hasher answers at once; logins of a failing
            // account or on a failing connection still pay the delay.
            Err(AuthError::Temporary(_)) => suspect,
            _ => false,
        };
        if !penalize {
            return r;
        }
        let f = conn.failures.get().saturating_add(1);
        conn.failures.set(f);
        async_io::Timer::after(backoff(CONN_DELAY_BASE, CONN_DELAY_MAX, f)).await;
        if f >= CONN_MAX_FAILURES {
            log::info!("closing a connection after {f} failed logins");
            return Err(AuthError::TooManyFailures);
        }
        r
    }

    /// A cached verified login of `addr` with `password`, if there is one.
    async fn cached(&self, addr: &str, password: &[u8], imap: bool) -> Result<bool, AuthError> {
        let tmp = |e: StoreError| AuthError::Temporary(e.to_string());
        if self.cache.borrow().get(addr) != Some(&self.cache_tag(addr, password)) {
            return Ok(false);
        }
        if let Some(acc) = self.store.get_account(addr).map_err(tmp)? {
            let today = today();
            if imap && acc.last_login_day != today {
                self.touch_login(addr, today).await.map_err(tmp)?;
            }
            return Ok(true);
        }
        self.invalidate(addr);
        Ok(false)
    }

    async fn login_once(
        &self,
        conn: &LoginConn,
        user: &str,
        password: &[u8],
        imap: bool,
    ) -> Result<String, AuthError> {
        let addr = user.trim().to_string();
        if addr.is_empty() || addr.len() > 320 || password.is_empty() || password.len() > 1024 {
            return Err(AuthError::Invalid);
        }
        // Fast path: cached verified login, never throttled.
        if self.cached(&addr, password, imap).await? {
            return Ok(addr);
        }
        // One login per account at a time.
        let slot = Slot::take(&self.slots, &addr);
        let lock = slot.lock.clone();
        let r = match crate::net::timeout(ACCOUNT_WAIT_MAX, lock.lock()).await {
            Some(_guard) => self.login_locked(conn, &addr, password, imap).await,
            None => Err(AuthError::Temporary("account busy".into())),
        };
        drop(lock);
        drop(slot);
        r
    }

    async fn login_locked(
        &self,
        conn: &LoginConn,
        addr: &str,
        password: &[u8],
        imap: bool,
    ) -> Result<String, AuthError> {
        let tmp = |e: StoreError| AuthError::Temporary(e.to_string());
        let busy = |_: Busy| AuthError::Temporary("too many logins in progress".into());
        // A login with the same password may have finished while we waited.
        if self.cached(addr, password, imap).await? {
            return Ok(addr.to_string());
        }
        if self.store.get_account(addr).map_err(tmp)?.is_some() {
            if let Some(w) = self.account_wait(addr) {
                async_io::Timer::after(w).await;
            }
            // Re-read after the wait: the account may be gone or changed.
            let Some(acc) = self.store.get_account(addr).map_err(tmp)? else {
                return Err(AuthError::Invalid);
            };
            let prio = self.priority(conn, addr);
            return self
                .verify_existing(addr, password, acc.hash, imap, prio)
                .await;
        }
        // Unknown address: may we create it?
        if let Err(why) = check_new_address(&self.cfg, addr, password) {
            log::debug!("login refused for a new address: {why}");
            return Err(AuthError::Invalid);
        }
        if let Err(why) = check_resources(&self.cfg) {
            log::info!("registration rejected: {why}");
            return Err(AuthError::CreationRefused(why));
        }
        let prio = self.priority(conn, addr);
        let hash = self.hasher.hash(password, prio).await.map_err(busy)?;
        // Logins of one address are serialised by the slot, but check again:
        // between this check and the insert there is no await, so on this
        // single thread the create is atomic.
        match self.store.get_account(addr).map_err(tmp)? {
            Some(acc) => {
                self.verify_existing(addr, password, acc.hash, imap, prio)
                    .await
            }
            None => {
                let (a, day) = (addr.to_string(), today());
                self.writer
                    .run(move |s| s.create_account(&a, &hash, day))
                    .await
                    .map_err(tmp)?;
                log::info!("created a new account");
                self.remember(addr, password);
                Ok(addr.to_string())
            }
        }
    }

    async fn verify_existing(
        &self,
        addr: &str,
        password: &[u8],
        hash: String,
        imap: bool,
        prio: Priority,
    ) -> Result<String, AuthError> {
        let tmp = |e: StoreError| AuthError::Temporary(e.to_string());
        let busy = |_: Busy| AuthError::Temporary("too many logins in progress".into());
        let legacy = hash.starts_with("{SHA512-CRYPT}");
        if !self
            .hasher
            .verify(password, &hash, prio)
            .await
            .map_err(busy)?
        {
            self.strike(addr);
            return Err(AuthError::Invalid);
        }
        self.strikes.borrow_mut().remove(addr);
        if legacy {
            // Migrated account: upgrade the hash on first successful login.
            let new_hash = self
                .hasher
                .hash(password, Priority::Normal)
                .await
                .map_err(busy)?;
            let a = addr.to_string();
            self.writer
                .run(move |s| s.set_password_hash(&a, &new_hash))
                .await
                .map_err(tmp)?;
        }
        if imap {
            self.touch_login(addr, today()).await.map_err(tmp)?;
        }
        self.remember(addr, password);
        Ok(addr.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_crypt_verifies() {
        // Generated with: python3 -c 'import crypt;print(crypt.crypt("password123", "$6$saltsalt$"))'
        // openssl passwd -6 -salt saltsalt password123
        let h = "{SHA512-CRYPT}$6$saltsalt$I7sf08GTmo.lDz2v6I2Ond3d6r/aJcvBs6MtbEH7x6Z/objDGNAdsYVVcbbcf.vTCAI8Gg5tlfz3HAiw/6jGa1";
        assert!(verify_password(b"password123", h));
        assert!(!verify_password(b"password124", h));
        let new = hash_password(b"password123");
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(b"password123", &new));
        assert!(!verify_password(b"password124", &new));
    }

    #[test]
    fn new_address_rules() {
        let cfg = Config::from_ini("[params]\nmail_domain = example.org\n", None).unwrap();
        assert!(check_new_address(&cfg, "abcdefghi@example.org", b"123456789").is_ok());
        assert!(check_new_address(&cfg, "abcdefgh@example.org", b"123456789").is_err());
        assert!(check_new_address(&cfg, "abcdefghij@example.org", b"123456789").is_err());
        assert!(check_new_address(&cfg, "Abcdefghi@example.org", b"123456789").is_err());
        assert!(check_new_address(&cfg, "abcd+fghi@example.org", b"123456789").is_err());
        assert!(check_new_address(&cfg, "abcdefghi@example.org", b"12345678").is_err());
        assert!(check_new_address(&cfg, "abcdefghi@other.org", b"123456789").is_err());
        assert!(check_new_address(&cfg, "abc@efghi@example.org", b"123456789").is_err());
        assert!(check_new_address(&cfg, "a.c-e_ghi@example.org", b"123456789").is_ok());
    }
}
