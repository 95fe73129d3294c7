//! Password hashing off the event loop on one dedicated thread that reuses a
//! single Argon2 memory buffer (19 MiB) and frees it after a quiet spell.
//!
//! Why not `blocking::unblock`: every pool thread gets its own malloc arena,
//! and freed 19 MiB Argon2 buffers stayed resident in them — 1000 first
//! logins left ~840 MiB RSS (measured with `cargo bench --bench relay`).
//! One thread and one reused buffer bound this to 19 MiB while hashing and
//! ~0 when idle.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;

/// Argon2id parameters of new hashes (OWASP minimum: m=19 MiB, t=2, p=1).
pub const M_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
const OUT_LEN: usize = 32;
const IDLE_FREE: Duration = Duration::from_secs(30);

enum Job {
    Hash(Vec<u8>, async_channel::Sender<String>),
    Verify(Vec<u8>, String, async_channel::Sender<bool>),
}

impl Job {
    /// The waiting login is gone (connection closed): skip the work.
    fn abandoned(&self) -> bool {
        match self {
            Job::Hash(_, r) => r.is_closed(),
            Job::Verify(_, _, r) => r.is_closed(),
        }
    }
}

/// Which queue a job waits in. The thread always takes `Normal` work first;
/// `Suspect` work (accounts or connections with recent failed logins) only
/// runs when no normal job waits, so a flood of wrong passwords cannot delay
/// a first login or an ordinary repeat login by more than the hash already
/// running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Normal,
    Suspect,
}

/// Most jobs waiting in the normal queue; beyond it a login gets a
/// temporary failure at once (`Busy`). 64 hashes are ~2 s of work on a
/// desktop, several seconds on a Pi.
pub const MAX_QUEUED_NORMAL: usize = 64;
/// Most jobs waiting in the suspect queue.
pub const MAX_QUEUED_SUSPECT: usize = 16;

/// The queue of that priority is full: answer "try again later".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

#[derive(Default)]
struct Queues {
    normal: std::collections::VecDeque<Job>,
    suspect: std::collections::VecDeque<Job>,
    stop: bool,
}

struct Shared {
    q: Mutex<Queues>,
    cv: Condvar,
}

pub struct Hasher {
    shared: Arc<Shared>,
}

impl Drop for Hasher {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.q.lock() {
            q.stop = true;
        }
        self.shared.cv.notify_all();
    }
}

fn params() -> Params {
    Params::new(M_KIB, T_COST, P_COST, Some(OUT_LEN)).expect("valid argon2 params")
}

/// Hash with the given buffer (grown to fit when needed).
fn argon2_raw(
    p: Params,
    pw: &[u8],
    salt: &[u8],
    out: &mut [u8],
    buf: &mut Option<Vec<Block>>,
) -> bool {
    let need = p.block_count();
    let blocks = buf.get_or_insert_with(Vec::new);
    if blocks.len() != need {
        *blocks = vec![Block::default(); need];
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into_with_memory(pw, salt, out, &mut blocks[..])
        .is_ok()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD_NO_PAD
}

/// A new PHC string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
pub fn hash_with(pw: &[u8], buf: &mut Option<Vec<Block>>) -> String {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .expect("system RNG");
    let mut out = [0u8; OUT_LEN];
    let ok = argon2_raw(params(), pw, &salt, &mut out, buf);
    assert!(ok, "argon2 with fixed valid parameters");
    format!(
        "$argon2id$v=19$m={M_KIB},t={T_COST},p={P_COST}${}${}",
        b64().encode(salt),
        b64().encode(out)
    )
}

/// Verify an Argon2 PHC string or an upstream `{SHA512-CRYPT}` hash.
pub fn verify_with(pw: &[u8], stored: &str, buf: &mut Option<Vec<Block>>) -> bool {
    if let Some(crypt) = stored.strip_prefix("{SHA512-CRYPT}") {
        let Ok(pw) = std::str::from_utf8(pw) else {
            return false;
        };
        return sha_crypt::sha512_check(pw, crypt).is_ok();
    }
    let Ok(h) = PasswordHash::new(stored) else {
        return false;
    };
    if h.algorithm.as_str() != "argon2id" {
        return false;
    }
    let (Ok(p), Some(expected), Some(salt)) = (Params::try_from(&h), h.hash, h.salt) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    // Bounded work for hashes we did not write ourselves.
    if p.m_cost() > 256 * 1024 || p.t_cost() > 16 || expected.len() > 64 {
        return false;
    }
    let Ok(p) = Params::new(p.m_cost(), p.t_cost(), p.p_cost(), Some(expected.len())) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if !argon2_raw(p, pw, salt, &mut out, buf) {
        return false;
    }
    // Constant-time comparison: no early exit on the first differing byte.
    out.len() == expected.len() && out.iter().zip(expected).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
}

/// Next job to run, normal work first; `None` once the hasher is dropped.
/// Waiting longer than `IDLE_FREE` frees the Argon2 buffer.
fn next_job(sh: &Shared, buf: &mut Option<Vec<Block>>) -> Option<Job> {
    let mut q = sh.q.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if q.stop {
            return None;
        }
        while let Some(j) = q.normal.pop_front().or_else(|| q.suspect.pop_front()) {
            if !j.abandoned() {
                return Some(j);
            }
        }
        let (g, t) = sh
            .cv
            .wait_timeout(q, IDLE_FREE)
            .unwrap_or_else(|e| e.into_inner());
        q = g;
        if t.timed_out() && q.normal.is_empty() && q.suspect.is_empty() {
            *buf = None; // give the memory back while idle
        }
    }
}

impl Hasher {
    /// Start the hashing thread.
    pub fn start() -> Hasher {
        let shared = Arc::new(Shared {
            q: Mutex::new(Queues::default()),
            cv: Condvar::new(),
        });
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("hasher".into())
            .spawn(move || {
                let mut buf: Option<Vec<Block>> = None;
                while let Some(job) = next_job(&sh, &mut buf) {
                    match job {
                        Job::Hash(pw, reply) => {
                            let _ = reply.send_blocking(hash_with(&pw, &mut buf));
                        }
                        Job::Verify(pw, stored, reply) => {
                            let _ = reply.send_blocking(verify_with(&pw, &stored, &mut buf));
                        }
                    }
                }
            })
            .expect("spawn hasher thread");
        Hasher { shared }
    }

    /// Jobs waiting (normal, suspect), not counting the one running.
    pub fn queued(&self) -> (usize, usize) {
        let q = self.shared.q.lock().unwrap_or_else(|e| e.into_inner());
        (q.normal.len(), q.suspect.len())
    }

    fn submit(&self, job: Job, prio: Priority) -> Result<(), Busy> {
        let mut q = self.shared.q.lock().unwrap_or_else(|e| e.into_inner());
        let (queue, max) = match prio {
            Priority::Normal => (&mut q.normal, MAX_QUEUED_NORMAL),
            Priority::Suspect => (&mut q.suspect, MAX_QUEUED_SUSPECT),
        };
        // Abandoned jobs do not count against the cap.
        if queue.len() >= max {
            queue.retain(|j| !j.abandoned());
        }
        if queue.len() >= max {
            return Err(Busy);
        }
        queue.push_back(job);
        drop(q);
        self.shared.cv.notify_one();
        Ok(())
    }

    /// A new PHC string for `pw`. Dropping the future before it completes
    /// withdraws the job if it has not started.
    pub async fn hash(&self, pw: &[u8], prio: Priority) -> Result<String, Busy> {
        let (tx, rx) = async_channel::bounded(1);
        self.submit(Job::Hash(pw.to_vec(), tx), prio)?;
        match rx.recv().await {
            Ok(h) => Ok(h),
            // The thread is gone (only at shutdown): hash here.
            Err(_) => Ok(hash_with(pw, &mut None)),
        }
    }

    /// Check `pw` against a stored hash.
    pub async fn verify(&self, pw: &[u8], stored: &str, prio: Priority) -> Result<bool, Busy> {
        let (tx, rx) = async_channel::bounded(1);
        self.submit(Job::Verify(pw.to_vec(), stored.to_string(), tx), prio)?;
        Ok(rx.recv().await.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_compat() {
        let mut buf = None;
        let h = hash_with(b"password123", &mut buf);
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_with(b"password123", &h, &mut buf));
        assert!(!verify_with(b"password124", &h, &mut buf));
        // A hash made by the argon2 crate's own PHC API verifies too.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw-xyz-123", &salt)
        .unwrap()
        .to_string();
        assert!(verify_with(b"pw-xyz-123", &other, &mut buf));
        assert!(!verify_with(b"pw-xyz-124", &other, &mut buf));
        assert!(!verify_with(b"x", "garbage", &mut buf));
    }

    #[test]
    fn normal_jobs_overtake_suspect_ones_and_queues_are_capped() {
        let h = Hasher::start();
        let stored = hash_with(b"right-password", &mut None);
        let verify = |prio| {
            let (tx, rx) = async_channel::bounded(1);
            let r = h.submit(Job::Verify(b"wrong".to_vec(), stored.clone(), tx), prio);
            (r, rx)
        };
        let suspects: Vec<_> = (0..6).map(|_| verify(Priority::Suspect)).collect();
        let (r, normal) = verify(Priority::Normal);
        assert_eq!(r, Ok(()));
        assert_eq!(normal.recv_blocking(), Ok(false));
        let done = suspects.iter().filter(|(_, rx)| !rx.is_empty()).count();
        assert!(done <= 1, "{done} suspect jobs ran before the normal one");
        drop(suspects);
        // Cap: with the thread busy, the suspect queue takes only so many.
        let flood: Vec<_> = (0..MAX_QUEUED_SUSPECT + 4)
            .map(|_| verify(Priority::Suspect))
            .collect();
        let busy = flood.iter().filter(|(r, _)| *r == Err(Busy)).count();
        assert!(busy >= 2, "only {busy} refused");
        // Abandoned jobs are skipped: a normal job after dropping them is quick.
        drop(flood);
        let t = std::time::Instant::now();
        let (_, rx) = verify(Priority::Normal);
        assert_eq!(rx.recv_blocking(), Ok(false));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}
