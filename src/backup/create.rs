//! Writing a backup archive (a tar stream, `tar` crate) from a store that
//! may be serving at the same time. Memory is bounded by the copy buffer
//! and the manifest's lines (~100 bytes per file); bodies are streamed.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::manifest::{self, Entry, Format};
use crate::store::Store;

/// What `chatrelay backup` puts in and what it reports.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub without_messages: bool,
    /// `chatmail.ini` to include (`--config`).
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub bodies: u64,
    /// Bodies the snapshot listed that were expunged before they were read
    /// (their index entries are dropped at the restored relay's first start).
    pub gone: u64,
}

/// Names in the data folder that are not copied as files: the live index
/// (a snapshot copy goes in instead), bodies (listed by the snapshot),
/// half-written files, the control socket and the backup status file.
const SKIP_TOP: &[&str] = &[
    crate::store::snapshot::INDEX_FILE,
    "bodies",
    "tmp",
    "control.sock",
    super::status::STATUS_FILE,
];

/// Counts bytes and hashes what passes through.
struct Hashing<R> {
    inner: R,
    ctx: ring::digest::Context,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.ctx.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
}

struct Writer<W: Write> {
    tar: tar::Builder<W>,
    entries: Vec<Entry>,
    created: u64,
}

impl<W: Write> Writer<W> {
    fn header(&self, size: u64) -> tar::Header {
        // No owner names or ids, one mode, the backup's time: nothing about
        // the host or its users travels in the archive.
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.created);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    /// Append `size` bytes from `r` as member `path` (listed in the manifest).
    fn add(&mut self, path: &str, size: u64, r: impl Read) -> io::Result<()> {
        let mut h = self.header(size);
        let mut hr = Hashing {
            inner: r.take(size),
            ctx: ring::digest::Context::new(&ring::digest::SHA256),
            n: 0,
        };
        self.tar.append_data(&mut h, path, &mut hr)?;
        if hr.n != size {
            return Err(io::Error::other(format!(
                "{path} changed size while it was read"
            )));
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(hr.ctx.finish().as_ref());
        self.entries.push(Entry {
            path: path.to_string(),
            size,
            sha256,
        });
        Ok(())
    }

    fn add_file(&mut self, path: &str, file: &Path) -> io::Result<()> {
        let f = std::fs::File::open(file)?;
        let size = f.metadata()?.len();
        self.add(path, size, f)
    }

    /// A member outside the manifest (FORMAT, MANIFEST itself).
    fn add_bytes_unlisted(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut h = self.header(data.len() as u64);
        self.tar.append_data(&mut h, path, data)
    }
}

/// Write the archive of `store` (and `opts.config`) to `out`. `scratch` is a
/// folder on the data partition for the index copy (removed again).
pub fn write(store: &Store, opts: &Options, out: impl Write) -> Result<Summary, String> {
    let data_dir = store.data_dir().to_path_buf();
    let scratch = data_dir.join("tmp");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let copy = scratch.join(format!("backup-{}.redb", std::process::id()));
    let r = write_inner(store, opts, out, &data_dir, &copy);
    let _ = std::fs::remove_file(&copy);
    r
}

fn write_inner(
    store: &Store,
    opts: &Options,
    out: impl Write,
    data_dir: &Path,
    copy: &Path,
) -> Result<Summary, String> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| format!("{what}: {e}")
    };
    store
        .copy_index(copy)
        .map_err(|e| format!("copying the index: {e}"))?;
    if opts.without_messages {
        crate::store::snapshot::strip_messages(copy).map_err(|e| format!("index copy: {e}"))?;
    }
    let ids = crate::store::snapshot::body_files(copy).map_err(|e| format!("index copy: {e}"))?;
    let created = crate::clock::now_secs().max(0) as u64;
    let mut w = Writer {
        tar: tar::Builder::new(out),
        entries: Vec::new(),
        created,
    };
    let fmt = Format {
        version: manifest::FORMAT_VERSION,
        created: created as i64,
        messages: !opts.without_messages,
    };
    w.add_bytes_unlisted(manifest::FORMAT_PATH, fmt.encode().as_bytes())
        .map_err(io("writing the archive"))?;
    w.add_file(
        &format!(
            "{}{}",
            manifest::DATA_PREFIX,
            crate::store::snapshot::INDEX_FILE
        ),
        copy,
    )
    .map_err(io("index copy"))?;
    let mut sum = Summary::default();
    if !opts.without_messages {
        for id in ids {
            let p = store.body_path(id);
            let rel = p
                .strip_prefix(data_dir)
                .map_err(|_| "body path outside the data folder".to_string())?
                .to_string_lossy()
                .into_owned();
            match std::fs::File::open(&p) {
                Ok(f) => {
                    let size = f.metadata().map_err(io(&rel))?.len();
                    w.add(&format!("{}{rel}", manifest::DATA_PREFIX), size, f)
                        .map_err(io(&rel))?;
                    sum.bodies += 1;
                }
                // Expunged after the snapshot: the restored relay's orphan
                // sweep drops the index entries (store::open).
                Err(e) if e.kind() == io::ErrorKind::NotFound => sum.gone += 1,
                Err(e) => return Err(format!("{rel}: {e}")),
            }
        }
    }
    for (rel, path) in other_files(data_dir).map_err(io("listing the data folder"))? {
        w.add_file(&format!("{}{rel}", manifest::DATA_PREFIX), &path)
            .map_err(io(&rel))?;
    }
    if let Some(c) = &opts.config {
        w.add_file(manifest::CONFIG_PATH, c)
            .map_err(io(&c.display().to_string()))?;
    }
    let m = manifest::encode(&w.entries);
    w.add_bytes_unlisted(manifest::MANIFEST_PATH, m.as_bytes())
        .map_err(io("writing the archive"))?;
    sum.files = w.entries.len() as u64;
    sum.bytes = w.entries.iter().map(|e| e.size).sum();
    let mut out = w.tar.into_inner().map_err(io("writing the archive"))?;
    out.flush().map_err(io("writing the archive"))?;
    Ok(sum)
}

/// Regular files of the data folder other than index, bodies and scratch
/// (DKIM keys, TLS certificate and key, ACME state, tables of other
/// modules kept as files...), as (relative path, path), sorted.
fn other_files(data_dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), data_dir.to_path_buf())];
    while let Some((rel, dir)) = todo.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                log::warn!(
                    "backup: skipping a file with a non-UTF-8 name in {}",
                    dir.display()
                );
                continue;
            };
            if rel.is_empty() && (SKIP_TOP.contains(&name.as_str()) || name.starts_with(".restore"))
            {
                continue;
            }
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                todo.push((r, e.path()));
            } else if ft.is_file() {
                if manifest::check_path(&format!("{}{r}", manifest::DATA_PREFIX)).is_err() {
                    log::warn!("backup: skipping {r:?} (name not allowed in an archive)");
                    continue;
                }
                // Temporary files of atomic writes are never complete state.
                if name.ends_with(".tmp") {
                    continue;
                }
                out.push((r, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}
