//! Long-term credentials for TURN (RFC 8489 §9.2) with REST user names
//! (spec §11.2): the password is derived from the install's secret, so no
//! user table exists. Nonces are stateless: `<hex unix time><hex MAC>`,
//! valid for [`NONCE_LIFETIME`] seconds (rotation), then 438.

use md5::{Digest, Md5};

/// Seconds a nonce stays valid (RFC 8489 §9.2: the server picks it).
pub const NONCE_LIFETIME: i64 = 600;

pub struct NonceKey(ring::hmac::Key);

impl NonceKey {
    /// A fresh random key per process: nonces of an earlier run are stale.
    pub fn random() -> NonceKey {
        let mut k = [0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k);
        NonceKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k))
    }

    fn mac(&self, ts: i64) -> String {
        let t = ring::hmac::sign(&self.0, &ts.to_be_bytes());
        t.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn make(&self, now: i64) -> String {
        format!("{now:016x}{}", self.mac(now))
    }

    /// Is this nonce ours and fresh?
    pub fn fresh(&self, nonce: &[u8], now: i64) -> bool {
        if nonce.len() != 32 || !nonce.iter().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        let s = std::str::from_utf8(nonce).unwrap_or("");
        let Ok(ts) = i64::from_str_radix(&s[..16], 16) else {
            return false;
        };
        let mac_ok = super::msg::ct_eq(self.mac(ts).as_bytes(), &nonce[16..]);
        mac_ok && ts <= now && now - ts < NONCE_LIFETIME
    }
}

/// The long-term key MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
pub fn long_term_key(user: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(user.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_rotation() {
        let k = NonceKey::random();
        let n = k.make(1000);
        assert!(k.fresh(n.as_bytes(), 1000));
        assert!(k.fresh(n.as_bytes(), 1000 + NONCE_LIFETIME - 1));
        assert!(!k.fresh(n.as_bytes(), 1000 + NONCE_LIFETIME));
        assert!(!k.fresh(n.as_bytes(), 999));
        assert!(!NonceKey::random().fresh(n.as_bytes(), 1000));
        let mut bad = n.clone().into_bytes();
        bad[31] = if bad[31] == b'0' { b'1' } else { b'0' };
        assert!(!k.fresh(&bad, 1000));
    }

    #[test]
    fn md5_key() {
        // Checked with `echo -n user:realm:pass | md5sum`.
        let k = long_term_key("user", "realm", "pass");
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "8493fbc53ba582fb4c044c456bdc40eb");
    }
}
