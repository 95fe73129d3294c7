//! Authentication and create-on-first-login (spec §4.4).
//!
//! Password hashing (Argon2id, m=19 MiB, t=2, p=1) runs off the event loop on
//! one dedicated thread (`hasher`). A bounded in-memory cache of
//! recently verified logins spares Delta Chat's frequent reconnects the hash.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::clock::today;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// Why a login failed. The protocol layers map these to their own replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong password, unknown address that may not be created, bad charset…
    Invalid,
    /// Account creation refused for a reason the user may see.
    CreationRefused(String),
    /// Store trouble: try again later.
    Temporary(String),
}

const CACHE_MAX: usize = 10_000;

pub struct Auth {
    cfg: Rc<Config>,
    store: Rc<Store>,
    /// addr -> HMAC(key, password) of the last successful login.
    cache: RefCell<HashMap<String, [u8; 32]>>,
    cache_key: ring::hmac::Key,
    hasher: super::hasher::Hasher,
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
    pub fn new(cfg: Rc<Config>, store: Rc<Store>) -> Auth {
        let rng = ring::rand::SystemRandom::new();
        Auth {
            cfg,
            store,
            cache: RefCell::new(HashMap::new()),
            cache_key: ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
                .expect("system RNG"),
            hasher: super::hasher::Hasher::start(),
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

    async fn verify_blocking(&self, password: &[u8], hash: String) -> bool {
        self.hasher.verify(password, &hash).await
    }

    async fn hash_blocking(&self, password: &[u8]) -> String {
        self.hasher.hash(password).await
    }

    /// Log in `user` with `password`, creating the account if allowed.
    /// `imap` logins update the last-login day (spec §4.6: SMTP does not).
    /// Returns the canonical address.
    pub async fn login(
        &self,
        user: &str,
        password: &[u8],
        imap: bool,
    ) -> Result<String, AuthError> {
        let addr = user.trim().to_string();
        if addr.is_empty() || addr.len() > 320 || password.is_empty() || password.len() > 1024 {
            return Err(AuthError::Invalid);
        }
        let tmp = |e: StoreError| AuthError::Temporary(e.to_string());
        let today = today();
        // Fast path: cached verified login.
        if self.cache.borrow().get(&addr) == Some(&self.cache_tag(&addr, password)) {
            if let Some(acc) = self.store.get_account(&addr).map_err(tmp)? {
                if imap && acc.last_login_day != today {
                    self.store.touch_login(&addr, today).map_err(tmp)?;
                }
                return Ok(addr);
            }
            self.invalidate(&addr);
        }
        if let Some(acc) = self.store.get_account(&addr).map_err(tmp)? {
            return self.verify_existing(&addr, password, acc.hash, imap).await;
        }
        // Unknown address: may we create it?
        if let Err(why) = check_new_address(&self.cfg, &addr, password) {
            log::debug!("login refused for a new address: {why}");
            return Err(AuthError::Invalid);
        }
        if let Err(why) = check_resources(&self.cfg) {
            log::info!("registration rejected: {why}");
            return Err(AuthError::CreationRefused(why));
        }
        let hash = self.hash_blocking(password).await;
        // Re-check after the await: a concurrent first login may have created it.
        // Between this check and the insert there is no await, so on this single
        // thread the create is atomic.
        match self.store.get_account(&addr).map_err(tmp)? {
            // A concurrent first login with the same password won the race and
            // cached it: no second hash needed.
            Some(_) if self.cache.borrow().get(&addr) == Some(&self.cache_tag(&addr, password)) => {
                Ok(addr)
            }
            Some(acc) => self.verify_existing(&addr, password, acc.hash, imap).await,
            None => {
                self.store
                    .create_account(&addr, &hash, today)
                    .map_err(tmp)?;
                log::info!("created a new account");
                self.remember(&addr, password);
                Ok(addr)
            }
        }
    }

    async fn verify_existing(
        &self,
        addr: &str,
        password: &[u8],
        hash: String,
        imap: bool,
    ) -> Result<String, AuthError> {
        let tmp = |e: StoreError| AuthError::Temporary(e.to_string());
        let legacy = hash.starts_with("{SHA512-CRYPT}");
        if !self.verify_blocking(password, hash).await {
            return Err(AuthError::Invalid);
        }
        if legacy {
            // Migrated account: upgrade the hash on first successful login.
            let new_hash = self.hash_blocking(password).await;
            self.store.set_password_hash(addr, &new_hash).map_err(tmp)?;
        }
        if imap {
            self.store.touch_login(addr, today()).map_err(tmp)?;
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
