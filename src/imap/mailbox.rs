//! Authenticated-state commands on mailboxes (RFC 3501 §6.3): SELECT,
//! EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB, STATUS, APPEND.

use super::session::{Selected, Session};
use super::types::{Flag, StatusItem};
use super::wire::astring;
use crate::store::{flag, Flags, StoreError, MAX_KEYWORDS, MAX_KEYWORD_LEN};

/// Hierarchy delimiter.
pub const DELIM: char = '.';

/// Whether a keyword is longer than the store keeps ([`MAX_KEYWORD_LEN`]):
/// the command gets `NO [LIMIT]`.
pub fn keyword_too_long(flags: &[Flag]) -> bool {
    flags
        .iter()
        .any(|f| matches!(f, Flag::Keyword(k) if k.len() > MAX_KEYWORD_LEN))
}

/// System flag bits and at most [`MAX_KEYWORDS`] distinct keywords.
pub fn flag_bits(flags: &[Flag]) -> (u8, Vec<String>) {
    let mut bits = 0;
    let mut kw = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => bits |= flag::SEEN,
            Flag::Answered => bits |= flag::ANSWERED,
            Flag::Flagged => bits |= flag::FLAGGED,
            Flag::Deleted => bits |= flag::DELETED,
            Flag::Draft => bits |= flag::DRAFT,
            Flag::Recent => {}
            Flag::Keyword(k) => {
                if !kw.iter().any(|x: &String| x.eq_ignore_ascii_case(k)) && kw.len() < MAX_KEYWORDS
                {
                    kw.push(k.clone())
                }
            }
        }
    }
    (bits, kw)
}

pub fn render_flags(f: &Flags) -> String {
    let mut v: Vec<&str> = Vec::new();
    for (bit, name) in [
        (flag::SEEN, "\\Seen"),
        (flag::ANSWERED, "\\Answered"),
        (flag::FLAGGED, "\\Flagged"),
        (flag::DELETED, "\\Deleted"),
        (flag::DRAFT, "\\Draft"),
    ] {
        if f.has(bit) {
            v.push(name);
        }
    }
    for k in &f.keywords {
        v.push(k);
    }
    format!("({})", v.join(" "))
}

/// Mailbox names: printable, not empty, bounded, no empty hierarchy levels.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(DELIM)
        && !name.ends_with(DELIM)
        && !name.contains("..")
        && name
            .chars()
            .all(|c| !c.is_control() && c != '*' && c != '%')
}

/// Longest reference + patterns of one LIST/LSUB.
const MAX_PATTERN_BYTES: usize = 1024;

/// `**`, `*%`, `%*` → `*`; `%%` → `%` (same language, fewer NFA states).
fn collapse_wildcards(p: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(p.len());
    for &c in p {
        match (out.last().copied(), c) {
            (Some(b'*'), b'*' | b'%') => {}
            (Some(b'%'), b'*') => *out.last_mut().unwrap() = b'*',
            (Some(b'%'), b'%') => {}
            _ => out.push(c),
        }
    }
    out
}

/// LIST wildcard match (RFC 3501 §6.3.8): `*` anything, `%` anything but the
/// delimiter. Simulates the pattern as an NFA over the name: one pass over
/// `s` with a set of live pattern positions, O(|p|·|s|) for any input (no
/// backtracking: a pattern of many `*` cannot blow up).
fn wildmatch(p: &[u8], s: &[u8]) -> bool {
    // live[i]: the prefix of s read so far can be matched by p[..i].
    let mut live = vec![false; p.len() + 1];
    let mut next = vec![false; p.len() + 1];
    live[0] = true;
    // A wildcard matches the empty string: close over it.
    let close = |v: &mut Vec<bool>| {
        for i in 0..p.len() {
            if v[i] && (p[i] == b'*' || p[i] == b'%') {
                v[i + 1] = true;
            }
        }
    };
    close(&mut live);
    for &c in s {
        next.iter_mut().for_each(|x| *x = false);
        let mut any = false;
        for i in 0..p.len() {
            if !live[i] {
                continue;
            }
            match p[i] {
                b'*' => next[i] = true,
                b'%' if c != DELIM as u8 => next[i] = true,
                b'%' => {}
                pc if pc == c => next[i + 1] = true,
                _ => {}
            }
        }
        close(&mut next);
        std::mem::swap(&mut live, &mut next);
        for x in live.iter() {
            any |= *x;
        }
        if !any {
            return false;
        }
    }
    live[p.len()]
}

impl Session {
    pub(super) fn select(&mut self, tag: &str, user: &str, name: &str, read_only: bool) {
        // Any previous selection ends first (RFC 3501 §6.3.1), even if this one fails.
        if self.sel.take().is_some() {
            self.s.queue(b"* OK [CLOSED] Previous mailbox closed.\r\n");
        }
        let mb = match self.ctx.store.get_mailbox(user, name) {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, "[NONEXISTENT] Mailbox does not exist"),
            Err(e) => return self.store_err(tag, e),
        };
        let msgs = match self.ctx.store.messages(mb.id) {
            Ok(m) => m,
            Err(e) => return self.store_err(tag, e),
        };
        let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
        let flags: Vec<Flags> = msgs.into_iter().map(|m| m.flags).collect();
        let unseen = flags.iter().position(|f| !f.has(flag::SEEN));
        let mut out = String::new();
        out.push_str("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n");
        if read_only {
            out.push_str("* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
        } else {
            out.push_str("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n");
        }
        out.push_str(&format!("* {} EXISTS\r\n* 0 RECENT\r\n", uids.len()));
        if let Some(i) = unseen {
            out.push_str(&format!("* OK [UNSEEN {}] First unseen.\r\n", i + 1));
        }
        out.push_str(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid\r\n",
            mb.uidvalidity
        ));
        out.push_str(&format!(
            "* OK [UIDNEXT {}] Predicted next UID\r\n",
            mb.uidnext
        ));
        self.s.queue(out.as_bytes());
        let sub = self.ctx.hub.subscribe(mb.id);
        let verb = if read_only {
            "[READ-ONLY] Examine completed."
        } else {
            "[READ-WRITE] Select completed."
        };
        self.sel = Some(Selected {
            mb,
            read_only,
            uids,
            flags,
            sub,
        });
        self.ok(tag, verb);
    }

    pub(super) fn store_err(&mut self, tag: &str, e: StoreError) {
        match e {
            StoreError::NotFound => self.no(tag, "[NONEXISTENT] Mailbox does not exist"),
            StoreError::Exists => self.no(tag, "[ALREADYEXISTS] Mailbox already exists"),
            StoreError::OverQuota => {
                self.no(tag, "[OVERQUOTA] Quota exceeded (mailbox for user is full)")
            }
            StoreError::Invalid(m) => self.no(tag, m),
            e => {
                log::error!("store error: {e}");
                self.no(tag, "[SERVERBUG] Internal error, try again later")
            }
        }
    }

    pub(super) async fn create(
        &mut self,
        tag: &str,
        user: &str,
        name: &str,
        special_use: Vec<String>,
    ) {
        let name = name.trim_end_matches(DELIM);
        if name == "INBOX" || !valid_name(name) {
            return self.no(tag, "[CANNOT] Invalid mailbox name");
        }
        match self.ctx.store.list_mailboxes(user) {
            Ok(l) if l.len() >= 1000 => return self.no(tag, "[LIMIT] Too many mailboxes"),
            Err(e) => return self.store_err(tag, e),
            _ => {}
        }
        let su = special_use.into_iter().next();
        if let Some(u) = &su {
            if ![
                "\\Sent",
                "\\Drafts",
                "\\Junk",
                "\\Trash",
                "\\Archive",
                "\\All",
                "\\Flagged",
            ]
            .iter()
            .any(|x| x.eq_ignore_ascii_case(u))
            {
                return self.no(tag, "[USEATTR] Unsupported special-use attribute");
            }
        }
        let (u, n) = (user.to_string(), name.to_string());
        match self
            .ctx
            .writer
            .run(move |s| s.create_mailbox(&u, &n, su))
            .await
        {
            Ok(_) => self.ok(tag, "Create completed."),
            Err(e) => self.store_err(tag, e),
        }
    }

    pub(super) async fn delete(&mut self, tag: &str, user: &str, name: &str) {
        if name == "INBOX" {
            return self.no(tag, "[CANNOT] INBOX cannot be deleted");
        }
        if self
            .sel
            .as_ref()
            .map(|s| s.mb.name == name)
            .unwrap_or(false)
        {
            self.sel = None;
        }
        match self.ctx.store.get_mailbox(user, name) {
            Ok(Some(mb)) => {
                let (u, n) = (user.to_string(), name.to_string());
                let r = self.ctx.writer.run(move |s| s.delete_mailbox(&u, &n)).await;
                self.ctx.hub.notify(mb.id, None);
                match r {
                    Ok(()) => self.ok(tag, "Delete completed."),
                    Err(e) => self.store_err(tag, e),
                }
            }
            Ok(None) => self.no(tag, "[NONEXISTENT] Mailbox does not exist"),
            Err(e) => self.store_err(tag, e),
        }
    }

    pub(super) async fn rename(&mut self, tag: &str, user: &str, from: &str, to: &str) {
        if to == "INBOX" || !valid_name(to) {
            return self.no(tag, "[CANNOT] Invalid mailbox name");
        }
        let (u, f, t) = (user.to_string(), from.to_string(), to.to_string());
        match self
            .ctx
            .writer
            .run(move |s| s.rename_mailbox(&u, &f, &t))
            .await
        {
            Ok(()) => self.ok(tag, "Rename completed."),
            Err(e) => self.store_err(tag, e),
        }
    }

    pub(super) async fn subscribe(&mut self, tag: &str, user: &str, name: &str, on: bool) {
        let (u, n) = (user.to_string(), name.to_string());
        match self
            .ctx
            .writer
            .run(move |s| s.set_subscribed(&u, &n, on))
            .await
        {
            Ok(()) => self.ok(
                tag,
                if on {
                    "Subscribe completed."
                } else {
                    "Unsubscribe completed."
                },
            ),
            Err(e) => self.store_err(tag, e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn list(
        &mut self,
        tag: &str,
        user: &str,
        reference: &[u8],
        patterns: &[Vec<u8>],
        select_special_use: bool,
        return_special_use: bool,
        subscribed_only_or_flag: bool,
        status: &[StatusItem],
        lsub: bool,
    ) {
        let verb = if lsub { "LSUB" } else { "LIST" };
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.s
                .queue(format!("* {verb} (\\Noselect) \"{DELIM}\" \"\"\r\n").as_bytes());
            return self.ok(tag, &format!("{verb} completed."));
        }
        // Bounded work: at most 1000 mailboxes × MAX_PATTERN_BYTES × 255.
        if patterns
            .iter()
            .map(|p| p.len() + reference.len())
            .sum::<usize>()
            > MAX_PATTERN_BYTES
        {
            return self.no(tag, "[LIMIT] Patterns too long");
        }
        let patterns: Vec<Vec<u8>> = patterns
            .iter()
            .map(|p| {
                let mut full = reference.to_vec();
                full.extend_from_slice(p);
                collapse_wildcards(&full)
            })
            .collect();
        let boxes = match self.ctx.store.list_mailboxes(user) {
            Ok(b) => b,
            Err(e) => return self.store_err(tag, e),
        };
        let mut out = Vec::new();
        for mb in &boxes {
            let matched = patterns.iter().any(|full| {
                // INBOX is case-insensitive in patterns too.
                if mb.name == "INBOX" {
                    wildmatch(&full.to_ascii_uppercase(), b"INBOX")
                } else {
                    wildmatch(full, mb.name.as_bytes())
                }
            });
            if !matched
                || (lsub && !mb.subscribed)
                || (select_special_use && mb.special_use.is_none())
            {
                continue;
            }
            let mut attrs: Vec<String> = Vec::new();
            let prefix = format!("{}{DELIM}", mb.name);
            let children = boxes.iter().any(|b| b.name.starts_with(&prefix));
            attrs.push(if children {
                "\\HasChildren".into()
            } else {
                "\\HasNoChildren".into()
            });
            if subscribed_only_or_flag && !lsub && mb.subscribed {
                attrs.push("\\Subscribed".into());
            }
            if let Some(su) = &mb.special_use {
                if return_special_use || !lsub {
                    attrs.push(su.clone());
                }
            }
            out.extend_from_slice(
                format!("* {verb} ({}) \"{DELIM}\" ", attrs.join(" ")).as_bytes(),
            );
            out.extend(astring(mb.name.as_bytes()));
            out.extend_from_slice(b"\r\n");
            if !status.is_empty() {
                out.extend(self.status_line(mb, status));
            }
        }
        self.s.queue(&out);
        self.ok(tag, &format!("{verb} completed."));
    }

    fn status_line(&self, mb: &crate::store::Mailbox, items: &[StatusItem]) -> Vec<u8> {
        let msgs = self.ctx.store.messages(mb.id).unwrap_or_default();
        let mut parts = Vec::new();
        for it in items {
            let v = match it {
                StatusItem::Messages => msgs.len() as u64,
                StatusItem::Recent => 0,
                StatusItem::UidNext => mb.uidnext as u64,
                StatusItem::UidValidity => mb.uidvalidity as u64,
                StatusItem::Unseen => {
                    msgs.iter().filter(|m| !m.flags.has(flag::SEEN)).count() as u64
                }
                StatusItem::Size => msgs.iter().map(|m| m.size).sum(),
                StatusItem::HighestModSeq => continue,
            };
            parts.push(format!("{} {v}", it.name()));
        }
        let mut out = b"* STATUS ".to_vec();
        out.extend(astring(mb.name.as_bytes()));
        out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        out
    }

    pub(super) fn status(&mut self, tag: &str, user: &str, name: &str, items: &[StatusItem]) {
        match self.ctx.store.get_mailbox(user, name) {
            Ok(Some(mb)) => {
                let line = self.status_line(&mb, items);
                self.s.queue(&line);
                self.ok(tag, "Status completed.");
            }
            Ok(None) => self.no(tag, "[NONEXISTENT] Mailbox does not exist"),
            Err(e) => self.store_err(tag, e),
        }
    }

    /// APPEND (RFC 3501 §6.3.11, UIDPLUS RFC 4315 §3): durable before OK.
    pub(super) async fn append(
        &mut self,
        tag: &str,
        user: &str,
        name: &str,
        flags: &[Flag],
        date: Option<i64>,
        msg: Vec<u8>,
    ) {
        if msg.is_empty() {
            return self.no(tag, "Empty message");
        }
        if msg.len() as u64 > self.ctx.cfg.max_message_size {
            return self.no(tag, "[TOOBIG] Message too large");
        }
        let mb = match self.ctx.store.get_mailbox(user, name) {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, "[TRYCREATE] Mailbox does not exist"),
            Err(e) => return self.store_err(tag, e),
        };
        if keyword_too_long(flags) {
            return self.no(tag, "[LIMIT] Keyword too long");
        }
        let (bits, keywords) = flag_bits(flags);
        let f = Flags { bits, keywords };
        let when = date.unwrap_or_else(crate::clock::now_secs);
        // Body write, fsyncs and the index commit run on the store thread.
        let (owner, mbname) = (user.to_string(), mb.name.clone());
        let limit = Some(self.ctx.cfg.max_mailbox_size);
        let done = self
            .ctx
            .writer
            .run(move |s| s.deliver(&msg, &[(&owner, &mbname)], &f, when, limit))
            .await;
        match done {
            Ok(v) => {
                let (_, mb, uid) = &v[0];
                self.ctx.hub.notify(mb.id, None);
                let selected_here = self.sel.as_ref().map(|s| s.mb.id == mb.id).unwrap_or(false);
                if selected_here {
                    self.sync_selected(true);
                }
                self.ok(
                    tag,
                    &format!("[APPENDUID {} {}] Append completed.", mb.uidvalidity, uid),
                );
            }
            Err(e) => self.store_err(tag, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wildmatch;

    #[test]
    fn wildcards() {
        assert!(wildmatch(b"*", b"a.b"));
        assert!(wildmatch(b"%", b"ab"));
        assert!(!wildmatch(b"%", b"a.b"));
        assert!(wildmatch(b"a.%", b"a.b"));
        assert!(wildmatch(b"INBOX", b"INBOX"));
        assert!(!wildmatch(b"Sent", b"Sent2"));
        assert!(wildmatch(b"a*b*c", b"axxbyyc"));
        assert!(!wildmatch(b"a*b*c", b"axxbyy"));
        assert!(wildmatch(b"%.%", b"a.b"));
        assert!(!wildmatch(b"%.%", b"a.b.c"));
        assert!(wildmatch(b"*.c", b"a.b.c"));
        assert!(wildmatch(b"", b""));
        assert!(!wildmatch(b"", b"a"));
        assert!(wildmatch(b"**%%", b""));
        // The exponential case of a backtracking matcher: instant here.
        let p = "*a".repeat(200) + "b";
        assert!(!wildmatch(p.as_bytes(), "a".repeat(255).as_bytes()));
    }
}
