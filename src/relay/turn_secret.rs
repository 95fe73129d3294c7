//! The TURN REST credential secret (issue 11): 32 random bytes made once
//! per install, kept in `data_dir/turn.secret` (0600, written tmp + fsync +
//! rename + dir fsync), and the credentials derived from it. Both the IMAP
//! METADATA answer and the TURN service use them, so they live here.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;

pub const FILE: &str = "turn.secret";

/// Load the secret, or make and store a new one.
pub fn load_or_create(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| "no randomness for the TURN secret".to_string())?;
    let secret = base64::engine::general_purpose::STANDARD.encode(raw);
    let tmp = data_dir.join("turn.secret.tmp");
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(secret.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, &path).map_err(err)?;
    crate::store::fsync_dir(data_dir).map_err(err)?;
    Ok(secret)
}

/// password = base64(HMAC-SHA1(secret, username)) (the TURN REST scheme,
/// spec §11.2).
pub fn password(secret: &str, username: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// The METADATA value `<host>:<port>:<expiry>:<password>` (spec §11.2); the
/// expiry doubles as the user name.
pub fn credentials(host: &str, port: u16, secret: &str, expiry: i64) -> String {
    let user = expiry.to_string();
    format!("{host}:{port}:{user}:{}", password(secret, &user))
}

/// The expiry of a REST user name: `timestamp` or `timestamp:anything`.
pub fn username_expiry(user: &str) -> Option<i64> {
    let ts = user.split(':').next()?;
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ts.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_password_vector() {
        // openssl dgst -sha1 -hmac north <<< -n 1700000000, base64.
        assert_eq!(
            password("north", "1700000000"),
            "CWyHi3zCeWqXBir9thl4m+iZPRY="
        );
        assert_eq!(username_expiry("1700000000:alice"), Some(1700000000));
        assert_eq!(username_expiry("1700000000"), Some(1700000000));
        assert_eq!(username_expiry("x1700000000"), None);
        assert_eq!(username_expiry(""), None);
    }
}
