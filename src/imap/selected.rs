//! Selected-state commands (RFC 3501 §6.4): CHECK, CLOSE, UNSELECT (RFC 3691),
//! EXPUNGE, UID EXPUNGE (RFC 4315), SEARCH, STORE, COPY, MOVE (RFC 6851), and
//! the untagged updates that keep a session's view in step with the store.

use std::collections::HashMap;

use super::mailbox::{flag_bits, keyword_too_long, render_flags};
use super::parser::CommandBody;
use super::session::Session;
use super::types::{SeqSet, StoreOp};
use crate::store::{flag, FlagOp, Message};

impl Session {
    /// Bring the selected mailbox view up to date and queue untagged
    /// responses: EXPUNGE (only when `allow_expunge`, RFC 3501 §7.4.1), EXISTS
    /// for new messages, FETCH FLAGS for changed flags.
    pub fn sync_selected(&mut self, allow_expunge: bool) {
        let Some(sel) = self.sel.as_mut() else { return };
        while sel.sub.rx.try_recv().is_ok() {}
        let Ok(msgs) = self.ctx.store.messages(sel.mb.id) else {
            return;
        };
        let current: HashMap<u32, &Message> = msgs.iter().map(|m| (m.uid, m)).collect();
        let mut out = String::new();
        if allow_expunge {
            let mut i = sel.uids.len();
            while i > 0 {
                i -= 1;
                if !current.contains_key(&sel.uids[i]) {
                    out.push_str(&format!("* {} EXPUNGE\r\n", i + 1));
                    sel.uids.remove(i);
                    sel.flags.remove(i);
                }
            }
        }
        for (i, uid) in sel.uids.iter().enumerate() {
            if let Some(m) = current.get(uid) {
                if m.flags != sel.flags[i] {
                    sel.flags[i] = m.flags.clone();
                    out.push_str(&format!(
                        "* {} FETCH (UID {} FLAGS {})\r\n",
                        i + 1,
                        uid,
                        render_flags(&m.flags)
                    ));
                }
            }
        }
        let max_known = sel.uids.last().copied().unwrap_or(0);
        let before = sel.uids.len();
        for m in msgs.iter().filter(|m| m.uid > max_known) {
            sel.uids.push(m.uid);
            sel.flags.push(m.flags.clone());
        }
        if sel.uids.len() != before {
            out.push_str(&format!("* {} EXISTS\r\n", sel.uids.len()));
        }
        self.s.queue(out.as_bytes());
    }

    /// Resolve a sequence set or UID set to (seq index, uid) pairs in order.
    /// Sequence numbers past the end are an error (RFC 3501 §9 "seq-number").
    pub(super) fn resolve(&self, set: &SeqSet, uid: bool) -> Result<Vec<(usize, u32)>, String> {
        let Some(sel) = self.sel.as_ref() else {
            return Ok(Vec::new());
        };
        let n = sel.uids.len() as u32;
        if uid {
            let uids = set.matching_with_star(&sel.uids, sel.uids.last().copied().unwrap_or(0));
            let mut out = Vec::with_capacity(uids.len());
            for u in uids {
                if let Ok(i) = sel.uids.binary_search(&u) {
                    out.push((i, u));
                }
            }
            Ok(out)
        } else {
            let mut seqs: Vec<u32> = Vec::new();
            for (lo, hi) in set.ranges(n) {
                if lo == 0 || hi > n {
                    return Err("Invalid message sequence number".into());
                }
                seqs.extend(lo..=hi);
                if seqs.len() > sel.uids.len() * 4 + 16 {
                    seqs.sort_unstable();
                    seqs.dedup();
                }
            }
            seqs.sort_unstable();
            seqs.dedup();
            Ok(seqs
                .into_iter()
                .map(|s| ((s - 1) as usize, sel.uids[(s - 1) as usize]))
                .collect())
        }
    }

    pub(super) async fn selected(
        &mut self,
        tag: &str,
        user: &str,
        body: CommandBody,
    ) -> std::io::Result<()> {
        use CommandBody as C;
        match body {
            C::Check => {
                self.sync_selected(true);
                self.ok(tag, "Check completed.");
            }
            C::Close | C::Unselect => {
                let close = matches!(body, C::Close);
                if let Some(sel) = self.sel.take() {
                    if close && !sel.read_only {
                        let deleted: Vec<u32> = match self.ctx.store.messages(sel.mb.id) {
                            Ok(m) => m
                                .into_iter()
                                .filter(|m| m.flags.has(flag::DELETED))
                                .map(|m| m.uid)
                                .collect(),
                            Err(e) => {
                                self.store_err(tag, e);
                                return Ok(());
                            }
                        };
                        if !deleted.is_empty() {
                            let (u, id) = (user.to_string(), sel.mb.id);
                            let r = self
                                .ctx
                                .writer
                                .run(move |s| s.expunge(&u, id, &deleted))
                                .await;
                            if let Err(e) = r {
                                self.store_err(tag, e);
                                return Ok(());
                            }
                            self.ctx.hub.notify(sel.mb.id, Some(sel.sub.id()));
                        }
                    }
                }
                self.ok(
                    tag,
                    if close {
                        "Close completed."
                    } else {
                        "Unselect completed."
                    },
                );
            }
            C::Expunge => self.expunge(tag, user, None).await,
            C::UidExpunge(set) => self.expunge(tag, user, Some(set)).await,
            C::Search { uid, key, ret, .. } => self.search(tag, uid, key, &ret).await,
            C::Fetch {
                uid, set, items, ..
            } => return self.fetch(tag, uid, &set, &items).await,
            C::Store {
                uid,
                set,
                op,
                silent,
                flags,
                ..
            } => self.store(tag, uid, &set, op, silent, &flags).await,
            C::Copy { uid, set, mailbox } => {
                self.copy_move(tag, user, uid, &set, &mailbox.0, false)
                    .await
            }
            C::Move { uid, set, mailbox } => {
                self.copy_move(tag, user, uid, &set, &mailbox.0, true).await
            }
            other => self.bad(tag, &format!("{} is not supported", other.name())),
        }
        Ok(())
    }

    fn read_only(&mut self, tag: &str) -> bool {
        if self.sel.as_ref().map(|s| s.read_only).unwrap_or(true) {
            self.no(tag, "[READ-ONLY] Mailbox is read-only");
            return true;
        }
        false
    }

    async fn expunge(&mut self, tag: &str, user: &str, only: Option<SeqSet>) {
        if self.read_only(tag) {
            return;
        }
        let sel = self.sel.as_ref().expect("selected");
        let (id, sub) = (sel.mb.id, sel.sub.id());
        let msgs = match self.ctx.store.messages(id) {
            Ok(m) => m,
            Err(e) => return self.store_err(tag, e),
        };
        let existing: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
        let allowed = only.map(|s| s.matching(&existing));
        let doomed: Vec<u32> = msgs
            .iter()
            .filter(|m| m.flags.has(flag::DELETED))
            .filter(|m| {
                allowed
                    .as_ref()
                    .map(|a| a.binary_search(&m.uid).is_ok())
                    .unwrap_or(true)
            })
            .map(|m| m.uid)
            .collect();
        if !doomed.is_empty() {
            let u = user.to_string();
            if let Err(e) = self
                .ctx
                .writer
                .run(move |s| s.expunge(&u, id, &doomed))
                .await
            {
                return self.store_err(tag, e);
            }
            self.ctx.hub.notify(id, Some(sub));
        }
        self.sync_selected(true);
        self.ok(tag, "Expunge completed.");
    }

    async fn store(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        op: StoreOp,
        silent: bool,
        flags: &[super::types::Flag],
    ) {
        if self.read_only(tag) {
            return;
        }
        let targets = match self.resolve(set, uid) {
            Ok(t) => t,
            Err(e) => return self.bad(tag, &e),
        };
        if keyword_too_long(flags) {
            return self.no(tag, "[LIMIT] Keyword too long");
        }
        let (bits, kw) = flag_bits(flags);
        let op = match op {
            StoreOp::Replace => FlagOp::Replace,
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
        };
        let sel = self.sel.as_ref().expect("selected");
        let (id, sub) = (sel.mb.id, sel.sub.id());
        let uids: Vec<u32> = targets.iter().map(|t| t.1).collect();
        let changed = match self
            .ctx
            .writer
            .run(move |s| s.store_flags(id, &uids, op, bits, &kw))
            .await
        {
            Ok(c) => c,
            Err(e) => return self.store_err(tag, e),
        };
        self.ctx.hub.notify(id, Some(sub));
        let sel = self.sel.as_mut().expect("selected");
        let mut out = String::new();
        let by_uid: HashMap<u32, &crate::store::Flags> =
            changed.iter().map(|(u, f)| (*u, f)).collect();
        for (i, u) in &targets {
            if let Some(f) = by_uid.get(u) {
                sel.flags[*i] = (*f).clone();
                if !silent {
                    if uid {
                        out.push_str(&format!(
                            "* {} FETCH (UID {} FLAGS {})\r\n",
                            i + 1,
                            u,
                            render_flags(f)
                        ));
                    } else {
                        out.push_str(&format!(
                            "* {} FETCH (FLAGS {})\r\n",
                            i + 1,
                            render_flags(f)
                        ));
                    }
                }
            }
        }
        self.s.queue(out.as_bytes());
        // Other changes seen meanwhile (no expunges during STORE: RFC 3501 §7.4.1).
        self.sync_selected(uid);
        self.ok(tag, "Store completed.");
    }

    async fn copy_move(
        &mut self,
        tag: &str,
        user: &str,
        uid: bool,
        set: &SeqSet,
        dst: &str,
        mv: bool,
    ) {
        if mv && self.read_only(tag) {
            return;
        }
        let targets = match self.resolve(set, uid) {
            Ok(t) => t,
            Err(e) => return self.bad(tag, &e),
        };
        let dst_mb = match self.ctx.store.get_mailbox(user, dst) {
            Ok(Some(m)) => m,
            Ok(None) => return self.no(tag, "[TRYCREATE] Mailbox does not exist"),
            Err(e) => return self.store_err(tag, e),
        };
        let sel = self.sel.as_ref().expect("selected");
        let (src, sub) = (sel.mb.id, sel.sub.id());
        if mv && src == dst_mb.id {
            return self.no(tag, "[CANNOT] Source and destination are the same");
        }
        let uids: Vec<u32> = targets.iter().map(|t| t.1).collect();
        let limit = Some(self.ctx.cfg.max_mailbox_size);
        let (u, d) = (user.to_string(), dst.to_string());
        let (validity, pairs) = match self
            .ctx
            .writer
            .run(move |s| s.copy(&u, src, &uids, &d, limit, mv))
            .await
        {
            Ok(r) => r,
            Err(e) => return self.store_err(tag, e),
        };
        self.ctx.hub.notify(dst_mb.id, None);
        let code = if pairs.is_empty() {
            String::new()
        } else {
            let s = SeqSet::from_sorted(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
            let d = SeqSet::from_sorted(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
            format!("[COPYUID {validity} {s} {d}] ")
        };
        if mv {
            self.ctx.hub.notify(src, Some(sub));
            // RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
            if !code.is_empty() {
                self.s.queue(format!("* OK {code}Moved\r\n").as_bytes());
            }
            self.sync_selected(true);
            self.ok(tag, "Move completed.");
        } else {
            self.ok(tag, &format!("{code}Copy completed."));
        }
    }
}
