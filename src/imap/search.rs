//! SEARCH / UID SEARCH (RFC 3501 §6.4.4) and ESEARCH results (RFC 4731).

use super::session::Session;
use super::types::{SearchKey, SeqSet};
use crate::store::{flag, Message};

struct Item<'a> {
    seq: u32,
    max_seq: u32,
    max_uid: u32,
    m: &'a Message,
    raw: Option<Vec<u8>>,
}

fn needs_content(k: &SearchKey) -> bool {
    use SearchKey::*;
    match k {
        From(_) | To(_) | Cc(_) | Bcc(_) | Subject(_) | Body(_) | Text(_) | Header(..)
        | SentBefore(_) | SentOn(_) | SentSince(_) => true,
        Not(k) => needs_content(k),
        Or(a, b) => needs_content(a) || needs_content(b),
        And(v) => v.iter().any(needs_content),
        _ => false,
    }
}

/// Longest SEARCH string (bytes); longer needles get `NO [LIMIT]`.
pub const MAX_NEEDLE: usize = 1024;
/// Most content keys (TEXT, BODY, HEADER, FROM…) in one SEARCH: each one
/// scans every message once.
pub const MAX_CONTENT_KEYS: usize = 16;
/// Yield to other sessions after reading this many message bytes.
const YIELD_BYTES: usize = 4 << 20;
/// … or after this many messages.
const YIELD_MESSAGES: usize = 64;

/// Case-insensitive (ASCII) substring test in linear time: the haystack is
/// lower-cased in chunks that overlap by the needle's length, and each chunk
/// is searched with memchr's `memmem` (Two-Way: O(n + m), no quadratic case).
fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes().to_ascii_lowercase();
    if n.is_empty() {
        return true;
    }
    if hay.len() < n.len() {
        return false;
    }
    const CHUNK: usize = 64 * 1024;
    let finder = memchr::memmem::Finder::new(&n);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + n.len());
    let mut start = 0;
    while start < hay.len() {
        let end = (start + CHUNK + n.len() - 1).min(hay.len());
        buf.clear();
        buf.extend(hay[start..end].iter().map(u8::to_ascii_lowercase));
        if finder.find(&buf).is_some() {
            return true;
        }
        if end == hay.len() {
            break;
        }
        start += CHUNK;
    }
    false
}

/// The needles of content keys, for the limits above.
fn content_needles<'a>(k: &'a SearchKey, out: &mut Vec<&'a str>) {
    use SearchKey::*;
    match k {
        From(s) | To(s) | Cc(s) | Bcc(s) | Subject(s) | Body(s) | Text(s) | Header(_, s) => {
            out.push(s)
        }
        SentBefore(_) | SentOn(_) | SentSince(_) => out.push(""),
        Not(k) => content_needles(k, out),
        Or(a, b) => {
            content_needles(a, out);
            content_needles(b, out);
        }
        And(v) => v.iter().for_each(|k| content_needles(k, out)),
        _ => {}
    }
}

/// Most search keys (every node of the tree: `ALL`, `NOT`, each set …) in
/// one SEARCH: each is evaluated for every message.
pub const MAX_SEARCH_KEYS: usize = 1000;

fn count_keys(k: &SearchKey) -> usize {
    use SearchKey::*;
    1 + match k {
        Not(k) => count_keys(k),
        Or(a, b) => count_keys(a) + count_keys(b),
        And(v) => v.iter().map(count_keys).sum(),
        _ => 0,
    }
}

/// Replace every `UID set` / sequence-set key by the UID ranges it covers
/// in the selected view `uids` (sorted): the set's merged ranges, each
/// sequence range mapped to the UIDs at its ends. Costs O(r log r) for r
/// ranges sent, whatever the mailbox's size.
fn resolve_sets(k: &mut SearchKey, uids: &[u32]) {
    use SearchKey::*;
    match k {
        // `*` is the highest UID in the mailbox (RFC 9051 §6.4.9).
        Uid(set) => *k = InUidRanges(set.merged(uids.last().copied().unwrap_or(0))),
        Seq(set) => {
            let n = uids.len() as u32;
            let mut v = Vec::new();
            for (lo, hi) in set.merged(n) {
                let (lo, hi) = (lo.max(1), hi.min(n));
                if lo <= hi {
                    v.push((uids[lo as usize - 1], uids[hi as usize - 1]));
                }
            }
            *k = InUidRanges(v);
        }
        Not(k) => resolve_sets(k, uids),
        Or(a, b) => {
            resolve_sets(a, uids);
            resolve_sets(b, uids);
        }
        And(v) => v.iter_mut().for_each(|k| resolve_sets(k, uids)),
        _ => {}
    }
}

/// Whether `uid` is in the sorted, disjoint inclusive ranges `v`.
fn in_ranges(v: &[(u32, u32)], uid: u32) -> bool {
    let i = v.partition_point(|&(_, hi)| hi < uid);
    v.get(i).is_some_and(|&(lo, _)| lo <= uid)
}

fn header_value(raw: &[u8], name: &str) -> Vec<u8> {
    let (h, _) = super::mime::split_header(raw);
    let f = super::mime::header_fields(h, &[name.to_string()], false);
    // Drop the "Name:" prefixes; keep values for substring matching.
    let mut out = Vec::new();
    for line in f.split(|&b| b == b'\n') {
        if let Some(c) = line.iter().position(|&b| b == b':') {
            out.extend_from_slice(&line[c + 1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

fn sent_day(raw: &[u8]) -> Option<i64> {
    let v = header_value(raw, "Date");
    let s = String::from_utf8_lossy(&v);
    mailparse::dateparse(s.trim())
        .ok()
        .map(|t| t.div_euclid(86400))
}

fn matches(k: &SearchKey, it: &Item) -> bool {
    use SearchKey::*;
    let f = &it.m.flags;
    let day = it.m.internal_date.div_euclid(86400);
    let raw = it.raw.as_deref().unwrap_or(&[]);
    match k {
        All => true,
        Answered => f.has(flag::ANSWERED),
        Deleted => f.has(flag::DELETED),
        Draft => f.has(flag::DRAFT),
        Flagged => f.has(flag::FLAGGED),
        Seen => f.has(flag::SEEN),
        New | Recent => false,
        Old => true,
        Unanswered => !f.has(flag::ANSWERED),
        Undeleted => !f.has(flag::DELETED),
        Undraft => !f.has(flag::DRAFT),
        Unflagged => !f.has(flag::FLAGGED),
        Unseen => !f.has(flag::SEEN),
        Keyword(kw) => f.keywords.iter().any(|x| x.eq_ignore_ascii_case(kw)),
        Unkeyword(kw) => !f.keywords.iter().any(|x| x.eq_ignore_ascii_case(kw)),
        Before(d) => day < *d,
        On(d) => day == *d,
        Since(d) => day >= *d,
        SentBefore(d) => sent_day(raw).map(|s| s < *d).unwrap_or(false),
        SentOn(d) => sent_day(raw).map(|s| s == *d).unwrap_or(false),
        SentSince(d) => sent_day(raw).map(|s| s >= *d).unwrap_or(false),
        From(s) => contains_ci(&header_value(raw, "From"), s),
        To(s) => contains_ci(&header_value(raw, "To"), s),
        Cc(s) => contains_ci(&header_value(raw, "Cc"), s),
        Bcc(s) => contains_ci(&header_value(raw, "Bcc"), s),
        Subject(s) => contains_ci(&header_value(raw, "Subject"), s),
        Header(name, s) => {
            let v = header_value(raw, name);
            if s.is_empty() {
                // Empty string: the header exists (RFC 3501 §6.4.4).
                v.len() > 2
            } else {
                contains_ci(&v, s)
            }
        }
        Body(s) => contains_ci(super::mime::split_header(raw).1, s),
        Text(s) => contains_ci(raw, s),
        Larger(n) => it.m.size > *n,
        Smaller(n) => it.m.size < *n,
        Uid(set) => set.contains(it.m.uid, it.max_uid),
        Seq(set) => set.contains(it.seq, it.max_seq),
        InUidRanges(v) => in_ranges(v, it.m.uid),
        Not(k) => !matches(k, it),
        Or(a, b) => matches(a, it) || matches(b, it),
        And(v) => v.iter().all(|k| matches(k, it)),
        ModSeq(_) => true,
    }
}

impl Session {
    pub(super) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        mut key: SearchKey,
        ret: &[String],
    ) {
        let mut needles = Vec::new();
        content_needles(&key, &mut needles);
        if needles.len() > MAX_CONTENT_KEYS {
            return self.no(tag, "[LIMIT] Too many content criteria in one SEARCH");
        }
        if needles.iter().any(|n| n.len() > MAX_NEEDLE) {
            return self.no(tag, "[LIMIT] Search string too long");
        }
        if count_keys(&key) > MAX_SEARCH_KEYS {
            return self.no(tag, "[LIMIT] Too many criteria in one SEARCH");
        }
        let sel = self.sel.as_ref().expect("selected");
        let msgs = match self.ctx.store.messages(sel.mb.id) {
            Ok(m) => m,
            Err(e) => return self.store_err(tag, e),
        };
        // The session's view may change while we yield; search a snapshot.
        let view: Vec<u32> = sel.uids.clone();
        resolve_sets(&mut key, &view);
        // Shared with the cpu thread, where big bodies are matched.
        let key = std::sync::Arc::new(key);
        let content = needs_content(&key);
        let max_seq = view.len() as u32;
        let max_uid = view.last().copied().unwrap_or(0);
        let mut hits = Vec::new();
        let (mut read, mut since_yield) = (0usize, 0usize);
        for (i, u) in view.iter().enumerate() {
            since_yield += 1;
            if read >= YIELD_BYTES || since_yield >= YIELD_MESSAGES {
                // One session's SEARCH must not monopolise the thread.
                futures_lite::future::yield_now().await;
                (read, since_yield) = (0, 0);
            }
            let Ok(mi) = msgs.binary_search_by_key(u, |m| m.uid) else {
                continue;
            };
            let m = &msgs[mi];
            let seq = i as u32 + 1;
            let hit = if content {
                // A big body is read and scanned (up to 16 needles over
                // max_message_size) on the cpu thread (`relay::offload`).
                let (store, key, m) = (self.ctx.store.clone(), key.clone(), m.clone());
                read += m.size as usize;
                crate::relay::offload(m.size as usize, move || {
                    let raw = store.read_body(m.body_id).ok();
                    let it = Item {
                        seq,
                        max_seq,
                        max_uid,
                        m: &m,
                        raw,
                    };
                    matches(&key, &it)
                })
                .await
            } else {
                let it = Item {
                    seq,
                    max_seq,
                    max_uid,
                    m,
                    raw: None,
                };
                matches(&key, &it)
            };
            if hit {
                hits.push(if uid { m.uid } else { seq });
            }
        }
        if ret.is_empty() {
            let mut line = String::from("* SEARCH");
            for h in &hits {
                line.push_str(&format!(" {h}"));
            }
            line.push_str("\r\n");
            self.s.queue(line.as_bytes());
        } else {
            // ESEARCH (RFC 4731 §3.1).
            let mut line = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                line.push_str(" UID");
            }
            let all = ret.iter().any(|r| r == "ALL");
            if ret.iter().any(|r| r == "MIN") {
                if let Some(m) = hits.first() {
                    line.push_str(&format!(" MIN {m}"));
                }
            }
            if ret.iter().any(|r| r == "MAX") {
                if let Some(m) = hits.last() {
                    line.push_str(&format!(" MAX {m}"));
                }
            }
            if ret.iter().any(|r| r == "COUNT") {
                line.push_str(&format!(" COUNT {}", hits.len()));
            }
            if all && !hits.is_empty() {
                line.push_str(&format!(" ALL {}", SeqSet::from_sorted(&hits)));
            }
            line.push_str("\r\n");
            self.s.queue(line.as_bytes());
        }
        self.sync_selected(uid);
        self.ok(tag, "Search completed.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::parser::{parse_command, CommandBody};

    fn key(cmd: &str) -> SearchKey {
        match parse_command(format!("a SEARCH {cmd}").as_bytes())
            .unwrap()
            .body
        {
            CommandBody::Search { key, .. } => key,
            _ => unreachable!(),
        }
    }

    #[test]
    fn sets_become_uid_ranges_not_uid_lists() {
        let view = [3, 5, 9, 10, 11, 20];
        // Sequence numbers 2:4 are UIDs 5, 9, 10; 6 (and `*`) is UID 20.
        let mut k = key("2:4,6");
        resolve_sets(&mut k, &view);
        let SearchKey::InUidRanges(r) = &k else {
            panic!("{k:?}")
        };
        assert_eq!(r, &[(5, 10), (20, 20)]);
        for (uid, hit) in [
            (3, false),
            (5, true),
            (9, true),
            (10, true),
            (11, false),
            (20, true),
        ] {
            assert_eq!(in_ranges(r, uid), hit, "uid {uid}");
        }
        // A thousand copies of `1:*` are one range.
        let mut k = key(&format!("UID {}", vec!["1:*"; 1000].join(",")));
        resolve_sets(&mut k, &view);
        assert!(
            matches!(&k, SearchKey::InUidRanges(r) if r == &[(1, 20)]),
            "{k:?}"
        );
        // `UID 30:*` covers the last message (`*` is 20).
        let mut k = key("UID 30:*");
        resolve_sets(&mut k, &view);
        let SearchKey::InUidRanges(r) = &k else {
            panic!("{k:?}")
        };
        assert!(in_ranges(r, 20) && !in_ranges(r, 11));
    }

    #[test]
    fn every_node_counts() {
        assert_eq!(count_keys(&key("ALL")), 1);
        assert_eq!(count_keys(&key("NOT SEEN")), 2);
        assert_eq!(count_keys(&key("OR SEEN (FLAGGED 1:3)")), 5);
    }
}
