//! Optional passphrase encryption of backup archives: the age format
//! (age-encryption.org/v1, scrypt recipient) through the `age` crate, so an
//! archive can also be opened with any age tool (`age -d`). Choice and
//! figures: README "Design decisions".

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use age::secrecy::SecretString;

/// scrypt cost 2^16: 64 MiB and well under a second on a Raspberry Pi 4
/// (age's own default measures for one second, which is 2^18 = 256 MiB on
/// a fast PC: too much for a 512 MB board that must decrypt it again).
pub const WORK_FACTOR: u8 = 16;
/// Highest cost accepted when decrypting (archives made by the `age` tool
/// on a fast machine use up to ~2^20).
const MAX_WORK_FACTOR: u8 = 20;
/// Environment variable read when no `--passphrase-file` is given.
pub const PASSPHRASE_ENV: &str = "CHATRELAY_BACKUP_PASSPHRASE";
const MAGIC: &[u8] = b"age-encryption.org/v1";

/// The passphrase from `file` (its first line) or the environment.
pub fn passphrase(file: Option<&Path>) -> Result<Option<SecretString>, String> {
    if let Some(f) = file {
        let t = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let line = t.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            return Err(format!("{}: empty passphrase", f.display()));
        }
        return Ok(Some(SecretString::from(line)));
    }
    Ok(std::env::var(PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(SecretString::from))
}

/// Encrypt everything written to the result into `out`; call `finish`.
pub fn encrypt<W: Write>(out: W, pass: SecretString) -> io::Result<age::stream::StreamWriter<W>> {
    let mut r = age::scrypt::Recipient::new(pass);
    r.set_work_factor(WORK_FACTOR);
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        .map_err(io::Error::other)?;
    enc.wrap_output(out)
}

/// The plaintext of an archive that may be age-encrypted.
pub fn open<'a>(
    r: impl Read + 'a,
    pass: Option<SecretString>,
) -> Result<Box<dyn Read + 'a>, String> {
    let mut br = BufReader::with_capacity(64 * 1024, r);
    let head = br
        .fill_buf()
        .map_err(|e| format!("reading the archive: {e}"))?;
    if !head.starts_with(MAGIC) {
        return Ok(Box::new(br));
    }
    let Some(pass) = pass else {
        return Err(format!(
            "the archive is encrypted: give its passphrase (--passphrase-file or {PASSPHRASE_ENV})"
        ));
    };
    let d = age::Decryptor::new_buffered(br).map_err(|e| format!("encrypted archive: {e}"))?;
    if !d.is_scrypt() {
        return Err("the archive is encrypted to a key, not a passphrase".into());
    }
    let mut id = age::scrypt::Identity::new(pass);
    id.set_max_work_factor(MAX_WORK_FACTOR);
    let r = d
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                "wrong passphrase (or a damaged archive header)".to_string()
            }
            e => format!("encrypted archive: {e}"),
        })?;
    Ok(Box::new(r))
}
