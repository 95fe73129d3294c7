//! Reading a backup archive member by member, checking the format first
//! and every member's size and SHA-256 against the manifest last. Used by
//! `restore` (members written to a staging folder) and by `backup` itself
//! (the stream the relay sends is verified while it is saved).

use std::collections::HashMap;
use std::io::{self, Read};

use super::manifest::{self, Entry, Format};

/// Largest FORMAT or MANIFEST member we read into memory (the manifest of
/// a relay with 100,000 body files is ~11 MB).
const MAX_TEXT_MEMBER: u64 = 512 * 1024 * 1024;

struct Hashing<'a> {
    inner: &'a mut dyn Read,
    ctx: ring::digest::Context,
    n: u64,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.ctx.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
}

/// Read the archive from `r`; `on_member(path, size, reader)` receives every
/// listed member's bytes (it may read fewer; the rest is drained). Returns
/// the format and the manifest once every member matched it. Any error
/// (truncation, altered byte, unknown format, unsafe path) is an `Err`.
pub fn read(
    r: impl Read,
    mut on_member: impl FnMut(&str, u64, &mut dyn Read) -> io::Result<()>,
) -> Result<(Format, Vec<Entry>), String> {
    let mut ar = tar::Archive::new(r);
    let mut format: Option<Format> = None;
    let mut seen: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    let mut entries = ar.entries().map_err(|e| damaged(&e))?;
    let listed = loop {
        let Some(e) = entries.next() else {
            return Err("archive truncated: no MANIFEST".into());
        };
        let mut e = e.map_err(|e| damaged(&e))?;
        let path = String::from_utf8(e.path_bytes().into_owned())
            .map_err(|_| "member path is not UTF-8".to_string())?;
        if e.header().entry_type() != tar::EntryType::Regular {
            return Err(format!("member {path:?} is not a regular file"));
        }
        let size = e.header().size().map_err(|e| damaged(&e))?;
        if path == manifest::FORMAT_PATH || path == manifest::MANIFEST_PATH {
            if size > MAX_TEXT_MEMBER {
                return Err(format!("{path} too large"));
            }
            let mut b = Vec::new();
            e.read_to_end(&mut b).map_err(|e| damaged(&e))?;
            if b.len() as u64 != size {
                return Err("archive truncated".into());
            }
            if path == manifest::FORMAT_PATH {
                if format.is_some() {
                    return Err("two FORMAT members".into());
                }
                format = Some(Format::parse(&b)?);
                continue;
            }
            break manifest::parse(&b)?;
        }
        if format.is_none() {
            return Err("not a chatrelay backup (FORMAT is not the first member)".into());
        }
        manifest::check_path(&path)?;
        if seen.contains_key(&path) {
            return Err(format!("member {path:?} appears twice"));
        }
        let mut h = Hashing {
            inner: &mut e,
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
            n: 0,
        };
        on_member(&path, size, &mut h).map_err(|e| format!("{path}: {e}"))?;
        io::copy(&mut h, &mut io::sink()).map_err(|e| damaged(&e))?;
        if h.n != size {
            return Err("archive truncated".into());
        }
        let mut d = [0u8; 32];
        d.copy_from_slice(h.ctx.finish().as_ref());
        seen.insert(path, (size, d));
    };
    let format = format.ok_or("archive has no FORMAT member")?;
    if listed.len() != seen.len() {
        return Err(format!(
            "archive has {} members, its MANIFEST lists {}",
            seen.len(),
            listed.len()
        ));
    }
    for m in &listed {
        match seen.get(&m.path) {
            Some((size, d)) if *size == m.size && *d == m.sha256 => {}
            Some(_) => return Err(format!("checksum mismatch: {} is damaged", m.path)),
            None => return Err(format!("{} is listed but missing", m.path)),
        }
    }
    // Nothing may follow the manifest but the end-of-archive blocks.
    match entries.next() {
        None => {}
        Some(Ok(_)) => return Err("members after the MANIFEST".into()),
        Some(Err(e)) => return Err(damaged(&e)),
    }
    // Drain to the end: an encrypted stream authenticates its last chunk
    // only when it is read.
    io::copy(&mut ar.into_inner(), &mut io::sink()).map_err(|e| damaged(&e))?;
    Ok((format, listed))
}

fn damaged(e: &io::Error) -> String {
    format!("archive damaged or truncated: {e}")
}
