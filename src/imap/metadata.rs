//! METADATA (RFC 5464) as chatmail uses it (spec §9.3), and QUOTA (RFC 9208).

use super::session::Session;
use super::wire::{astring, literal};
use crate::clock::now_secs;
use crate::store::devicetoken;

pub const QUOTA_ROOT: &str = "User quota";

/// TURN credentials are valid this long (spec §11.2: 5 days).
pub const TURN_VALIDITY: i64 = 5 * 86400;

/// TURN REST credentials (spec §11.2): `<host>:<port>:<expiry>:<password>`
/// with password = base64(HMAC-SHA1(secret, expiry)); the expiry doubles as
/// the user name.
pub fn turn_credentials(host: &str, port: u16, secret: &str, expiry: i64) -> String {
    crate::relay::turn_secret::credentials(host, port, secret, expiry)
}

impl Session {
    fn server_entry(&self, key: &str) -> Option<Vec<u8>> {
        let cfg = &self.ctx.cfg;
        match key.to_ascii_lowercase().as_str() {
            "/shared/vendor/deltachat/maxsmtprecipients" => Some(b"1000".to_vec()),
            // One line of JSON, checked at startup (`config::appversions`).
            "/shared/vendor/deltachat/appversions" => {
                cfg.appversions.as_ref().map(|v| v.as_bytes().to_vec())
            }
            // A configured external relay, else our own (upstream's default).
            "/shared/vendor/deltachat/irohrelay" => {
                cfg.advertised_iroh_relay().map(String::into_bytes)
            }
            // A configured external TURN server wins; else our own (issue 11),
            // as `<mail_domain>:<turn_port>:…` like upstream (spec §11.2).
            "/shared/vendor/deltachat/turn" => match (&cfg.turn, &self.ctx.turn_secret) {
                (Some((host, port, secret)), _) => Some(
                    turn_credentials(host, *port, secret, now_secs() + TURN_VALIDITY).into_bytes(),
                ),
                (None, Some(secret)) => {
                    let host = cfg
                        .mail_domain
                        .trim_start_matches('[')
                        .trim_end_matches(']');
                    let expiry = now_secs() + TURN_VALIDITY;
                    Some(turn_credentials(host, cfg.turn_port, secret, expiry).into_bytes())
                }
                (None, None) => None,
            },
            "/shared/admin" if !cfg.privacy_mail.is_empty() => {
                Some(format!("mailto:{}", cfg.privacy_mail).into_bytes())
            }
            _ => None,
        }
    }

    pub(super) fn getmetadata(&mut self, tag: &str, user: &str, mailbox: &str, entries: &[String]) {
        let mut pairs: Vec<u8> = Vec::new();
        for e in entries {
            let value = if mailbox.is_empty() {
                self.server_entry(e)
            } else if mailbox == "INBOX" && e.eq_ignore_ascii_case("/private/devicetoken") {
                match self.ctx.store.get_meta(user, "devicetoken") {
                    Ok(v) => {
                        let t = devicetoken::valid(&v.unwrap_or_default(), now_secs());
                        if t.is_empty() {
                            None
                        } else {
                            Some(t.join(" ").into_bytes())
                        }
                    }
                    Err(e) => return self.store_err(tag, e),
                }
            } else {
                None
            };
            if !pairs.is_empty() {
                pairs.push(b' ');
            }
            pairs.extend(astring(e.as_bytes()));
            pairs.push(b' ');
            match value {
                // Values go out as literals (what the upstream tests parse, spec §9.3).
                Some(v) => pairs.extend(literal(&v)),
                None => pairs.extend_from_slice(b"NIL"),
            }
        }
        if !entries.is_empty() {
            let mut out = b"* METADATA ".to_vec();
            out.extend(if mailbox.is_empty() {
                b"\"\"".to_vec()
            } else {
                astring(mailbox.as_bytes())
            });
            out.extend_from_slice(b" (");
            out.extend(pairs);
            out.extend_from_slice(b")\r\n");
            self.s.queue(&out);
        }
        self.ok(tag, "Getmetadata completed.");
    }

    pub(super) async fn setmetadata(
        &mut self,
        tag: &str,
        user: &str,
        mailbox: &str,
        entries: &[(String, Option<Vec<u8>>)],
    ) {
        for (k, v) in entries {
            if mailbox != "INBOX" || !k.eq_ignore_ascii_case("/private/devicetoken") {
                return self.no(
                    tag,
                    "[METADATA NOPRIVATE] Setting this entry is not permitted",
                );
            }
            // Validate before queueing; the read-modify-write of the token
            // list runs as one job on the store thread, so two sessions of
            // one account cannot lose each other's token.
            let token = match v {
                None => None,
                Some(v) => {
                    let t = String::from_utf8_lossy(v).trim().to_string();
                    if t.is_empty()
                        || t.len() > devicetoken::MAX_TOKEN_LEN
                        || t.bytes().any(|b| !(0x21..0x7f).contains(&b))
                    {
                        return self.no(tag, "[METADATA TOOMANY] Invalid device token");
                    }
                    Some(t)
                }
            };
            let (u, now) = (user.to_string(), now_secs());
            let r = self
                .ctx
                .writer
                .run(move |s| update_tokens(s, &u, token, now))
                .await;
            if let Err(e) = r {
                return self.store_err(tag, e);
            }
        }
        self.ok(tag, "Setmetadata completed.");
    }

    fn quota_line(&self, user: &str) -> String {
        let used = self.ctx.store.quota_used(user).unwrap_or(0);
        format!(
            "* QUOTA \"{QUOTA_ROOT}\" (STORAGE {} {})\r\n",
            used.div_ceil(1024),
            self.ctx.cfg.max_mailbox_size / 1024
        )
    }

    pub(super) fn getquotaroot(&mut self, tag: &str, user: &str, mailbox: &str) {
        match self.ctx.store.get_mailbox(user, mailbox) {
            Ok(Some(_)) => {}
            Ok(None) => return self.no(tag, "[NONEXISTENT] Mailbox does not exist"),
            Err(e) => return self.store_err(tag, e),
        }
        let mut out = b"* QUOTAROOT ".to_vec();
        out.extend(astring(mailbox.as_bytes()));
        out.extend_from_slice(format!(" \"{QUOTA_ROOT}\"\r\n").as_bytes());
        out.extend_from_slice(self.quota_line(user).as_bytes());
        self.s.queue(&out);
        self.ok(tag, "Getquotaroot completed.");
    }

    pub(super) fn getquota(&mut self, tag: &str, user: &str, root: &str) {
        if root != QUOTA_ROOT {
            return self.no(tag, "[NONEXISTENT] No such quota root");
        }
        let l = self.quota_line(user);
        self.s.queue(l.as_bytes());
        self.ok(tag, "Getquota completed.");
    }
}

/// Register `token` for `user` (or clear every token when `None`),
/// dropping expired and future-dated entries and the oldest beyond
/// [`devicetoken::MAX_TOKENS`]. Runs on the store thread.
fn update_tokens(
    s: &crate::store::Store,
    user: &str,
    token: Option<String>,
    now: i64,
) -> Result<(), crate::store::StoreError> {
    s.update_devicetokens(user, |toks| {
        toks.retain(|(_, ts)| *ts <= now + 60 && now - *ts < devicetoken::TTL);
        match token {
            None => toks.clear(),
            Some(t) => {
                toks.retain(|(x, _)| *x != t);
                toks.push((t, now));
                if toks.len() > devicetoken::MAX_TOKENS {
                    toks.remove(0);
                }
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn turn_rest_credentials() {
        // echo -n 1700000000 | openssl dgst -sha1 -hmac north -binary | base64
        let c = super::turn_credentials("turn.example.org", 3478, "north", 1_700_000_000);
        assert_eq!(
            c,
            "turn.example.org:3478:1700000000:CWyHi3zCeWqXBir9thl4m+iZPRY="
        );
    }
}
