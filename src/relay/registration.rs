//! Registration policy (issue 12): `registration = open | invite | closed`
//! and invite tokens.
//!
//! * A token is 24+ random characters `[a-z0-9]`; the store keeps only its
//!   SHA-256 (a high-entropy secret needs no slow hash), with uses left,
//!   expiry and a revoked flag.
//! * Relays with a real certificate invite with
//!   `DCACCOUNT:https://<host>/new?t=<token>`: Delta Chat POSTs that URL as
//!   it is (query included) and gets fresh credentials; the relay creates
//!   the account at once and counts one use. Such tokens may be N-use.
//! * Self-signed relays (IP literal, `_` domains) cannot use `DCACCOUNT:`
//!   (Delta Chat checks that certificate strictly), so they invite with
//!   `dclogin:<random address>?p=<token>&…&ic=3`: the token is the new
//!   account's password, and the first login of that unknown address with a
//!   password whose hash is a live token creates it and counts the use. A
//!   `dclogin:` QR names one address, so whoever holds it holds that
//!   account: these invites are always single-use.
//! * In `invite` mode no other unknown address is ever created at login;
//!   in `closed` mode nothing is created at all.

use crate::config::{Config, Registration};
use crate::store::invites::Refusal;
use crate::store::Store;

/// Shortest token (≈124 bits over `[a-z0-9]`).
pub const TOKEN_LEN: usize = 24;
/// Validity of invites made from the status page.
pub const STATUS_PAGE_TTL: i64 = 7 * 86400;
/// Most invites kept (the status page can make them on request).
pub const MAX_INVITES: u64 = 10_000;
/// Expired invites stay listed this long, then go.
pub const KEEP_EXPIRED: i64 = 30 * 86400;
/// Validity of the first-start invite.
pub const FIRST_TTL: i64 = 30 * 86400;

pub fn token_hash(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn new_token(cfg: &Config) -> String {
    super::invite::random_string(
        super::invite::USER_CHARS,
        TOKEN_LEN.max(cfg.password_min_length),
    )
}

/// Do invites of this relay travel as `dclogin:` (single-use) links?
pub fn uses_dclogin(cfg: &Config) -> bool {
    cfg.self_signed()
}

/// The invitation link carrying `token`.
pub fn link(cfg: &Config, token: &str) -> String {
    if uses_dclogin(cfg) {
        let c = super::invite::Credentials {
            email: super::invite::new_credentials(cfg).email,
            password: token.to_string(),
        };
        super::invite::dclogin_url(cfg, &c)
    } else {
        let port = if cfg.https_port == 443 {
            String::new()
        } else {
            format!(":{}", cfg.https_port)
        };
        format!("DCACCOUNT:https://{}{port}/new?t={token}", cfg.hostname())
    }
}

/// A new invite in `store` (on the calling thread: the CLI with the relay
/// stopped, start-up, or a job on the store thread). Returns (id, link).
pub fn create(
    store: &Store,
    cfg: &Config,
    uses: u32,
    ttl_secs: i64,
    now: i64,
    first: bool,
) -> Result<(u64, String), String> {
    if uses == 0 {
        return Err("an invite needs at least one use".into());
    }
    if uses > 1 && uses_dclogin(cfg) {
        return Err(format!(
            "{} uses a self-signed certificate, so its invites are dclogin: links that name one \
             account: they are single-use (make {uses} invites instead)",
            cfg.mail_domain
        ));
    }
    if ttl_secs <= 0 {
        return Err("an invite needs a validity above zero".into());
    }
    let kept = store
        .drop_stale_invites(now, KEEP_EXPIRED)
        .map_err(|e| format!("cannot tidy the invites: {e}"))?;
    if kept >= MAX_INVITES {
        return Err(format!(
            "{kept} invites exist already; revoke some or wait until they expire"
        ));
    }
    let token = new_token(cfg);
    let id = store
        .add_invite(
            &token_hash(&token),
            uses,
            now,
            now.saturating_add(ttl_secs),
            uses_dclogin(cfg),
            first,
        )
        .map_err(|e| format!("cannot store the invite: {e}"))?;
    Ok((id, link(cfg, &token)))
}

/// At start-up in invite mode, while no account exists: one admin invite
/// (single-use, 30 days) replacing the one of the previous start. The link
/// is kept in memory only (`Ctx::first_invite`).
pub fn first_invite(store: &Store, cfg: &Config, now: i64) -> Result<Option<String>, String> {
    if cfg.registration != Registration::Invite {
        return Ok(None);
    }
    let n = store
        .account_count()
        .map_err(|e| format!("cannot count accounts: {e}"))?;
    if n > 0 {
        return Ok(None);
    }
    create(store, cfg, 1, FIRST_TTL, now, true).map(|(_, l)| Some(l))
}

/// `invite list` lines.
pub fn describe(i: &crate::store::invites::Invite, now: i64) -> String {
    let state = match i.check(now) {
        Ok(()) => "valid",
        Err(Refusal::Revoked) => "revoked",
        Err(Refusal::Used) => "used",
        Err(Refusal::Expired) => "expired",
        Err(Refusal::Unknown) => "unknown",
    };
    let left = (i.expires - now).max(0);
    format!(
        "{:>4}  {:<8} uses {}/{}  {}  {}",
        i.id,
        state,
        i.uses_total - i.uses_left,
        i.uses_total,
        if left > 0 {
            format!("expires in {}h", (left + 3599) / 3600)
        } else {
            "expired".to_string()
        },
        if i.dclogin { "dclogin" } else { "dcaccount" }
    )
}
