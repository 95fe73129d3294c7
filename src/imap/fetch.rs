//! FETCH (RFC 3501 §6.4.5, §7.4.2; BINARY RFC 3516). Large full-body
//! fetches stream from the body file in chunks, so memory stays flat.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use super::mailbox::render_flags;
use super::mime::{bodystructure, envelope, section_bytes, split_header};
use super::session::Session;
use super::types::{FetchAtt, SeqSet};
use super::wire::imap_datetime;
use crate::relay::offload;
use crate::store::{flag, FlagOp, Message};

/// Bodies up to this size are read whole; larger full-body fetches stream.
const STREAM_ABOVE: u64 = 256 * 1024;
const CHUNK: usize = 64 * 1024;
/// Most distinct items in one FETCH.
const MAX_ITEMS: usize = 64;
/// Yield to other sessions every this many messages.
const YIELD_MESSAGES: usize = 64;
/// A response being built is sent once it is this large.
const FLUSH_ABOVE: usize = 64 * 1024;

type MaybeParsed<'a> = Option<mailparse::ParsedMail<'a>>;

self_cell::self_cell!(
    /// A message body with its MIME tree (when an item needs it), owned
    /// together so that both can move between the loop and the pool.
    struct Body {
        owner: Vec<u8>,
        #[covariant]
        dependent: MaybeParsed,
    }
);

/// The MIME tree is built only when an item needs it and the structure is
/// within the limits that bound the recursive parser.
fn load(raw: Vec<u8>, parse: bool) -> Body {
    Body::new(raw, |r| {
        if parse && crate::mail::structure_within_limits(r) {
            mailparse::parse_mail(r).ok()
        } else {
            None
        }
    })
}

/// What a section or BINARY item is cut from: items with the same base
/// (partials of one part, BINARY.SIZE beside BINARY) share one extraction.
fn base_key(item: &FetchAtt) -> Option<String> {
    match item {
        FetchAtt::BodySection { section, .. } => Some(format!("B{}", section.spec())),
        FetchAtt::Binary { part, .. } | FetchAtt::BinarySize(part) => {
            let spec: Vec<String> = part.iter().map(|x| x.to_string()).collect();
            Some(format!("N{}", spec.join(".")))
        }
        _ => None,
    }
}

/// The last base extracted for this message: items are ordered so that
/// those with one base are adjacent, so sixty partials of one 20 MB part
/// decode it once, not sixty times, and memory holds one base.
type BaseCache = std::sync::Mutex<Option<(String, Arc<Vec<u8>>)>>;

fn cached_base(cache: &BaseCache, key: String, make: &dyn Fn() -> Vec<u8>) -> Arc<Vec<u8>> {
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    match &*c {
        Some((k, v)) if *k == key => v.clone(),
        _ => {
            *c = None; // free the old base before building the next
            let v = Arc::new(make());
            *c = Some((key, v.clone()));
            v
        }
    }
}

/// The response bytes of one item that is built from the body (every item
/// but the index-only ones and a streamed full body). No I/O.
fn content_item(item: &FetchAtt, body: &Body, cache: &BaseCache) -> Vec<u8> {
    let raw = body.borrow_owner().as_slice();
    let parsed = body.borrow_dependent().as_ref();
    let base =
        |make: &dyn Fn() -> Vec<u8>| cached_base(cache, base_key(item).unwrap_or_default(), make);
    let mut out = Vec::new();
    match item {
        FetchAtt::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            match parsed {
                Some(p) => out.extend(envelope(p)),
                None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
            }
        }
        FetchAtt::BodyStructure | FetchAtt::Body => {
            let ext = matches!(item, FetchAtt::BodyStructure);
            out.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
            match parsed {
                Some(p) => out.extend(bodystructure(p, ext)),
                None => out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)"),
            }
        }
        FetchAtt::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            push_literal(&mut out, raw);
        }
        FetchAtt::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            push_literal(&mut out, split_header(raw).0);
        }
        FetchAtt::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            push_literal(&mut out, split_header(raw).1);
        }
        FetchAtt::BodySection {
            section,
            partial: p,
            ..
        } => {
            let data = base(&|| section_bytes(raw, parsed, section).unwrap_or_default());
            let (slice, origin) = partial(&data, *p);
            out.extend_from_slice(format!("BODY[{}]{origin} ", section.spec()).as_bytes());
            push_literal(&mut out, slice);
        }
        FetchAtt::Binary {
            part, partial: p, ..
        } => {
            let data = base(&|| binary_part(raw, parsed, part));
            let (slice, origin) = partial(&data, *p);
            let spec: Vec<String> = part.iter().map(|x| x.to_string()).collect();
            out.extend_from_slice(format!("BINARY[{}]{origin} ", spec.join(".")).as_bytes());
            push_literal(&mut out, slice);
        }
        FetchAtt::BinarySize(part) => {
            let data = base(&|| binary_part(raw, parsed, part));
            let spec: Vec<String> = part.iter().map(|x| x.to_string()).collect();
            out.extend_from_slice(
                format!("BINARY.SIZE[{}] {}", spec.join("."), data.len()).as_bytes(),
            );
        }
        FetchAtt::Uid
        | FetchAtt::Flags
        | FetchAtt::InternalDate
        | FetchAtt::Rfc822Size
        | FetchAtt::ModSeq => {}
    }
    out
}

fn needs_parse(items: &[FetchAtt]) -> bool {
    items.iter().any(|i| match i {
        FetchAtt::Envelope
        | FetchAtt::BodyStructure
        | FetchAtt::Body
        | FetchAtt::Binary { .. }
        | FetchAtt::BinarySize(_) => true,
        FetchAtt::BodySection { section, .. } => !section.part.is_empty(),
        _ => false,
    })
}

fn needs_content(items: &[FetchAtt]) -> bool {
    items.iter().any(|i| {
        !matches!(
            i,
            FetchAtt::Uid
                | FetchAtt::Flags
                | FetchAtt::InternalDate
                | FetchAtt::Rfc822Size
                | FetchAtt::ModSeq
        )
    })
}

/// Whole-message items that can be streamed straight from the file.
fn is_full_body(i: &FetchAtt) -> bool {
    match i {
        FetchAtt::Rfc822 => true,
        FetchAtt::BodySection {
            section,
            partial: None,
            ..
        } => section.part.is_empty() && section.text.is_none(),
        FetchAtt::Binary {
            part,
            partial: None,
            ..
        } => part.is_empty(),
        _ => false,
    }
}

fn sets_seen(i: &FetchAtt) -> bool {
    matches!(
        i,
        FetchAtt::Rfc822
            | FetchAtt::Rfc822Text
            | FetchAtt::BodySection { peek: false, .. }
            | FetchAtt::Binary { peek: false, .. }
    )
}

fn partial(data: &[u8], p: Option<(u32, u32)>) -> (&[u8], String) {
    match p {
        None => (data, String::new()),
        Some((start, len)) => {
            let s = (start as usize).min(data.len());
            let e = s.saturating_add(len as usize).min(data.len());
            (&data[s..e], format!("<{start}>"))
        }
    }
}

fn push_literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

impl Session {
    pub(super) async fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        items: &[FetchAtt],
    ) -> std::io::Result<()> {
        let targets = match self.resolve(set, uid) {
            Ok(t) => t,
            Err(e) => {
                self.bad(tag, &e);
                return Ok(());
            }
        };
        // The same item twice is answered once (RFC 3501 lets the server
        // return each data item once); it would otherwise build every copy.
        let mut items: Vec<FetchAtt> = items.iter().fold(Vec::new(), |mut v, i| {
            if !v.contains(i) {
                v.push(i.clone());
            }
            v
        });
        if items.len() > MAX_ITEMS {
            self.bad(tag, "[LIMIT] Too many FETCH items");
            return Ok(());
        }
        if uid && !items.contains(&FetchAtt::Uid) {
            items.insert(0, FetchAtt::Uid);
        }
        // Items with one base side by side (RFC 9051 §7.5.2 lets the data
        // items come in any order), for the base cache.
        items.sort_by_cached_key(base_key);
        let sel = self.sel.as_ref().expect("selected");
        let (mb_id, read_only) = (sel.mb.id, sel.read_only);
        let meta: HashMap<u32, Message> = match self.ctx.store.messages(mb_id) {
            Ok(m) => m.into_iter().map(|m| (m.uid, m)).collect(),
            Err(e) => {
                self.store_err(tag, e);
                return Ok(());
            }
        };
        // Implicit \Seen (RFC 3501 §6.4.5) for non-PEEK body fetches.
        if !read_only && items.iter().any(sets_seen) {
            let unseen: Vec<u32> = targets
                .iter()
                .filter(|(_, u)| {
                    meta.get(u)
                        .map(|m| !m.flags.has(flag::SEEN))
                        .unwrap_or(false)
                })
                .map(|t| t.1)
                .collect();
            if !unseen.is_empty() {
                // An index write: on the store thread, like STORE.
                let changed = self
                    .ctx
                    .writer
                    .run(move |s| s.store_flags(mb_id, &unseen, FlagOp::Add, flag::SEEN, &[]))
                    .await;
                if let Ok(changed) = changed {
                    let sub = self.sel.as_ref().map(|s| s.sub.id());
                    self.ctx.hub.notify(mb_id, sub);
                    let sel = self.sel.as_mut().expect("selected");
                    for (u, f) in changed {
                        if let Ok(i) = sel.uids.binary_search(&u) {
                            sel.flags[i] = f;
                        }
                    }
                    if !items.contains(&FetchAtt::Flags) {
                        items.push(FetchAtt::Flags);
                    }
                }
            }
        }
        let parse = needs_parse(&items);
        let content = needs_content(&items);
        for (done, (idx, u)) in targets.into_iter().enumerate() {
            if done % YIELD_MESSAGES == YIELD_MESSAGES - 1 {
                // A FETCH of a whole big mailbox must not monopolise the thread.
                futures_lite::future::yield_now().await;
            }
            let Some(m) = meta.get(&u) else { continue }; // expunged meanwhile
            let flags = self
                .sel
                .as_ref()
                .map(|s| s.flags[idx].clone())
                .unwrap_or_default();
            let path = self.ctx.store.body_path(m.body_id);
            let stream = content
                && !parse
                && m.size > STREAM_ABOVE
                && items.iter().filter(|i| is_full_body(i)).count() == 1
                && items
                    .iter()
                    .all(|i| is_full_body(i) || !needs_content(std::slice::from_ref(i)));
            // A big body (`relay::OFF_LOOP_ABOVE`) is read and parsed on the
            // cpu thread, and every item is built from it there too: on the
            // loop, a 28 MB message took ~70 ms to read and parse and each
            // decoded part ~4 ms, with no other session served meanwhile.
            let size = m.size as usize;
            let body = if content && !stream {
                let (store, id) = (self.ctx.store.clone(), m.body_id);
                let loaded =
                    offload(size, move || store.read_body(id).map(|r| load(r, parse))).await;
                match loaded {
                    Ok(b) => Arc::new(b),
                    Err(e) => {
                        log::error!("cannot read a message body: {e}");
                        continue;
                    }
                }
            } else {
                Arc::new(load(Vec::new(), false))
            };
            let cache: Arc<BaseCache> = Arc::default();
            let mut out = format!("* {} FETCH (", idx + 1).into_bytes();
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                if out.len() > FLUSH_ABOVE {
                    // Send each large item before building the next one: memory
                    // holds one item, not all of them.
                    self.s.queue(&out);
                    out.clear();
                    self.s.flush().await?;
                }
                match item {
                    FetchAtt::Uid => out.extend_from_slice(format!("UID {u}").as_bytes()),
                    FetchAtt::Flags => {
                        out.extend_from_slice(format!("FLAGS {}", render_flags(&flags)).as_bytes())
                    }
                    FetchAtt::InternalDate => out.extend_from_slice(
                        format!("INTERNALDATE \"{}\"", imap_datetime(m.internal_date)).as_bytes(),
                    ),
                    FetchAtt::Rfc822Size => {
                        out.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes())
                    }
                    FetchAtt::ModSeq => out.extend_from_slice(b"MODSEQ (1)"),
                    FetchAtt::Rfc822 | FetchAtt::BodySection { .. } | FetchAtt::Binary { .. }
                        if stream && is_full_body(item) =>
                    {
                        let name = match item {
                            FetchAtt::Rfc822 => "RFC822".to_string(),
                            FetchAtt::Binary { .. } => "BINARY[]".to_string(),
                            _ => "BODY[]".to_string(),
                        };
                        out.extend_from_slice(format!("{name} {{{}}}\r\n", m.size).as_bytes());
                        self.s.queue(&out);
                        out.clear();
                        self.stream_file(&path, m.size).await?;
                    }
                    _ => {
                        let (body, item, cache) = (body.clone(), item.clone(), cache.clone());
                        out.extend(offload(size, move || content_item(&item, &body, &cache)).await);
                    }
                }
            }
            out.extend_from_slice(b")\r\n");
            self.s.queue(&out);
            // Keep the output buffer small when fetching many messages.
            self.s.flush().await?;
        }
        // No EXPUNGE during a non-UID FETCH (RFC 3501 §7.4.1).
        self.sync_selected(uid);
        self.ok(tag, "Fetch completed.");
        Ok(())
    }

    async fn stream_file(&mut self, path: &std::path::Path, size: u64) -> std::io::Result<()> {
        self.s.flush().await?;
        let mut f = std::fs::File::open(path)?;
        let mut left = size;
        let mut buf = vec![0u8; CHUNK];
        while left > 0 {
            let want = (left as usize).min(CHUNK);
            let n = f.read(&mut buf[..want])?;
            if n == 0 {
                // File shorter than recorded: pad so the literal stays well-formed.
                let pad = vec![b' '; want];
                self.s.send(&pad).await?;
                left -= want as u64;
                continue;
            }
            self.s.send(&buf[..n]).await?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// BINARY[part]: the part's content with its transfer encoding removed.
fn binary_part(raw: &[u8], parsed: Option<&mailparse::ParsedMail>, part: &[u32]) -> Vec<u8> {
    if part.is_empty() {
        return raw.to_vec();
    }
    let Some(top) = parsed else { return Vec::new() };
    let Some(p) = super::mime::find_part(top, part) else {
        return Vec::new();
    };
    let is_sub = !std::ptr::eq(p, top);
    p.get_body_raw()
        .ok()
        .map(|mut b| {
            // The CRLF before the next boundary is not content (RFC 2046 §5.1.1).
            if is_sub && b.ends_with(b"\r\n") {
                b.truncate(b.len() - 2);
            }
            b
        })
        .unwrap_or_default()
}
