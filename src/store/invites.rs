//! Invite tokens (issue 12, `registration = invite`). Only the SHA-256 of a
//! token is stored; the token itself exists in the invitation link alone.
//! Redeeming checks, counts down and creates the account in one write
//! transaction, so of two redemptions of a single-use token exactly one
//! wins (the store thread runs them one after the other).

use super::codec::{Dec, Enc};
use super::{Account, Result, Store, StoreError, COUNTERS};
use redb::{ReadableTable, TableDefinition};

/// sha256(token) -> InviteRec
pub(super) const INVITES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("invites");
/// `COUNTERS` key: the id of the invite made at first start (see `relay::registration`).
const FIRST_KEY: &str = "first_invite_id";

/// One invite as `invite list` shows it (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: u64,
    pub created: i64,
    pub expires: i64,
    pub uses_total: u32,
    pub uses_left: u32,
    pub revoked: bool,
    /// Made for a `dclogin:` QR (the token is the new account's password).
    pub dclogin: bool,
}

/// Why a token does not open an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Used,
    Expired,
    Revoked,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unknown => "this invite code is not valid on this relay",
            Refusal::Used => "this invite code has already been used",
            Refusal::Expired => "this invite code has expired",
            Refusal::Revoked => "this invite code has been revoked",
        }
    }
}

impl Invite {
    fn encode(&self) -> Vec<u8> {
        Enc::new(1)
            .u64(self.id)
            .i64(self.created)
            .i64(self.expires)
            .u32(self.uses_total)
            .u32(self.uses_left)
            .u8(self.revoked as u8)
            .u8(self.dclogin as u8)
            .0
    }
    fn decode(b: &[u8]) -> Option<Invite> {
        let mut d = Dec::new(b, 1)?;
        Some(Invite {
            id: d.u64()?,
            created: d.i64()?,
            expires: d.i64()?,
            uses_total: d.u32()?,
            uses_left: d.u32()?,
            revoked: d.u8()? != 0,
            dclogin: d.u8()? != 0,
        })
    }
    /// May this invite still open an account at `now`?
    pub fn check(&self, now: i64) -> std::result::Result<(), Refusal> {
        if self.revoked {
            Err(Refusal::Revoked)
        } else if self.uses_left == 0 {
            Err(Refusal::Used)
        } else if now >= self.expires {
            Err(Refusal::Expired)
        } else {
            Ok(())
        }
    }
}

impl Store {
    pub(super) fn init_invites(tx: &redb::WriteTransaction) -> Result<()> {
        tx.open_table(INVITES)?;
        Ok(())
    }

    /// Store a new invite under `hash`; returns its id. `first` marks the
    /// first-start invite and revokes the previous one.
    pub fn add_invite(
        &self,
        hash: &[u8; 32],
        uses: u32,
        created: i64,
        expires: i64,
        dclogin: bool,
        first: bool,
    ) -> Result<u64> {
        let tx = self.db().begin_write()?;
        let id = Self::next_counter(&tx, "invite", 1)?;
        {
            let mut t = tx.open_table(INVITES)?;
            if t.get(hash.as_slice())?.is_some() {
                return Err(StoreError::Exists);
            }
            let inv = Invite {
                id,
                created,
                expires,
                uses_total: uses,
                uses_left: uses,
                revoked: false,
                dclogin,
            };
            t.insert(hash.as_slice(), inv.encode().as_slice())?;
        }
        if first {
            let prev = tx.open_table(COUNTERS)?.get(FIRST_KEY)?.map(|v| v.value());
            if let Some(prev) = prev {
                Self::revoke_tx(&tx, prev)?;
            }
            tx.open_table(COUNTERS)?.insert(FIRST_KEY, id)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Drop invites that expired more than `keep` seconds before `now`;
    /// returns how many invites remain.
    pub fn drop_stale_invites(&self, now: i64, keep: i64) -> Result<u64> {
        let tx = self.db().begin_write()?;
        let left = {
            let mut t = tx.open_table(INVITES)?;
            let stale: Vec<Vec<u8>> = t
                .iter()?
                .filter_map(|e| e.ok())
                .filter(|(_, v)| {
                    Invite::decode(v.value()).is_some_and(|i| i.expires < now.saturating_sub(keep))
                })
                .map(|(k, _)| k.value().to_vec())
                .collect();
            for k in stale {
                t.remove(k.as_slice())?;
            }
            redb::ReadableTableMetadata::len(&t)?
        };
        tx.commit()?;
        Ok(left)
    }

    /// The invite stored under `hash`.
    pub fn get_invite(&self, hash: &[u8; 32]) -> Result<Option<Invite>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(INVITES)?;
        Ok(t.get(hash.as_slice())?
            .and_then(|v| Invite::decode(v.value())))
    }

    /// Every invite, oldest first.
    pub fn list_invites(&self) -> Result<Vec<Invite>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(INVITES)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            if let Some(i) = Invite::decode(e?.1.value()) {
                out.push(i);
            }
        }
        out.sort_by_key(|i| i.id);
        Ok(out)
    }

    fn revoke_tx(tx: &redb::WriteTransaction, id: u64) -> Result<bool> {
        let mut t = tx.open_table(INVITES)?;
        let mut hit = None;
        for e in t.iter()? {
            let (k, v) = e?;
            if let Some(i) = Invite::decode(v.value()) {
                if i.id == id {
                    hit = Some((k.value().to_vec(), i));
                    break;
                }
            }
        }
        match hit {
            Some((k, mut i)) => {
                i.revoked = true;
                t.insert(k.as_slice(), i.encode().as_slice())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Revoke invite `id`; false when there is none.
    pub fn revoke_invite(&self, id: u64) -> Result<bool> {
        let tx = self.db().begin_write()?;
        let hit = Self::revoke_tx(&tx, id)?;
        tx.commit()?;
        Ok(hit)
    }

    /// Check the invite under `hash`, count one use and create the account
    /// `addr` with password hash `pw_hash`, all in one transaction. The
    /// outer error is store trouble (or `Exists` for a taken address).
    pub fn redeem_invite(
        &self,
        hash: &[u8; 32],
        now: i64,
        addr: &str,
        pw_hash: &str,
        today: u32,
    ) -> Result<std::result::Result<Account, Refusal>> {
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(INVITES)?;
            let inv = t
                .get(hash.as_slice())?
                .and_then(|v| Invite::decode(v.value()));
            let Some(mut inv) = inv else {
                return Ok(Err(Refusal::Unknown));
            };
            if let Err(r) = inv.check(now) {
                return Ok(Err(r));
            }
            inv.uses_left -= 1;
            t.insert(hash.as_slice(), inv.encode().as_slice())?;
        }
        let acc = Self::create_account_tx(&tx, addr, pw_hash, today)?;
        tx.commit()?;
        Ok(Ok(acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Store, std::path::PathBuf) {
        let d = std::env::temp_dir().join(format!(
            "chatrelay-invites-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        (Store::open(&d).unwrap(), d)
    }

    #[test]
    fn uses_expiry_revoke() {
        let (s, d) = store();
        let h = [7u8; 32];
        let id = s.add_invite(&h, 2, 100, 1000, false, false).unwrap();
        assert_eq!(
            s.redeem_invite(&h, 200, "a@x", "h", 1)
                .unwrap()
                .unwrap()
                .addr,
            "a@x"
        );
        assert!(s.get_account("a@x").unwrap().is_some());
        assert!(s.redeem_invite(&h, 200, "b@x", "h", 1).unwrap().is_ok());
        assert_eq!(
            s.redeem_invite(&h, 200, "c@x", "h", 1)
                .unwrap()
                .unwrap_err(),
            Refusal::Used
        );
        assert!(s.get_account("c@x").unwrap().is_none());
        let h2 = [8u8; 32];
        let id2 = s.add_invite(&h2, 1, 100, 1000, false, false).unwrap();
        assert_eq!(
            s.redeem_invite(&h2, 1000, "d@x", "h", 1)
                .unwrap()
                .unwrap_err(),
            Refusal::Expired
        );
        assert!(s.revoke_invite(id2).unwrap());
        assert!(!s.revoke_invite(999).unwrap());
        assert_eq!(
            s.redeem_invite(&h2, 200, "d@x", "h", 1)
                .unwrap()
                .unwrap_err(),
            Refusal::Revoked
        );
        assert_eq!(
            s.redeem_invite(&[9u8; 32], 200, "d@x", "h", 1)
                .unwrap()
                .unwrap_err(),
            Refusal::Unknown
        );
        // A taken address is store-level `Exists` and costs no use.
        let h3 = [10u8; 32];
        s.add_invite(&h3, 1, 100, 1000, false, false).unwrap();
        assert!(matches!(
            s.redeem_invite(&h3, 200, "a@x", "h", 1),
            Err(StoreError::Exists)
        ));
        assert_eq!(s.get_invite(&h3).unwrap().unwrap().uses_left, 1);
        // The first-start invite replaces its predecessor.
        let f1 = s
            .add_invite(&[11u8; 32], 1, 100, 1000, false, true)
            .unwrap();
        s.add_invite(&[12u8; 32], 1, 100, 1000, false, true)
            .unwrap();
        let list = s.list_invites().unwrap();
        assert!(list.iter().find(|i| i.id == f1).unwrap().revoked);
        // Expired long ago: dropped; the rest stay.
        let n = list.len() as u64;
        assert_eq!(s.drop_stale_invites(1000 + 50, 100).unwrap(), n);
        assert_eq!(s.drop_stale_invites(1000 + 101, 100).unwrap(), 0);
        assert_eq!(list.iter().find(|i| i.id == id).unwrap().uses_left, 0);
        drop(s);
        let _ = std::fs::remove_dir_all(d);
    }
}
