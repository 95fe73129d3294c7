//! `chatrelay restore`: unpack into a staging folder beside the data
//! folder, verify every checksum, fsync, then swap it into place with one
//! rename. `kill -9` or a full disk at any moment leaves the old data
//! folder as it was (and a stale staging folder the next restore removes),
//! or the complete new one.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::manifest;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replace a data folder that is not empty.
    pub force: bool,
    /// Where the archive's `chatmail.ini` goes, if it has one.
    pub config_out: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: u64,
    pub bytes: u64,
    pub config_written: Option<PathBuf>,
    pub created: i64,
    pub messages: bool,
}

/// The staging folder for `data_dir`: a sibling, so the final rename stays
/// on one filesystem.
pub fn staging_path(data_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    data_dir.with_file_name(format!(".{name}.restore"))
}

fn is_empty_dir(p: &Path) -> io::Result<bool> {
    match std::fs::read_dir(p) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Restore the archive read from `r` (plaintext; see `crypt::open`) into
/// `data_dir`. The relay must not be running on it.
pub fn restore(r: impl Read, data_dir: &Path, opts: &Options) -> Result<Report, String> {
    let dd = data_dir.display();
    if !opts.force && !is_empty_dir(data_dir).map_err(|e| format!("{dd}: {e}"))? {
        return Err(format!(
            "{dd} is not empty; restore onto an empty data folder, or give --force to replace it"
        ));
    }
    if std::os::unix::net::UnixStream::connect(data_dir.join("control.sock")).is_ok() {
        return Err(format!("a relay is running on {dd}; stop it first"));
    }
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let staging = staging_path(data_dir);
    // A restore killed earlier left this: never complete, never in use.
    remove_tree(&staging)?;
    let cfg_tmp = opts
        .config_out
        .as_ref()
        .map(|c| c.with_extension("ini.restore"));
    let result = unpack(r, &staging, cfg_tmp.as_deref());
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = remove_tree(&staging);
            if let Some(t) = &cfg_tmp {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
    };
    swap_in(&staging, data_dir).map_err(|e| format!("moving the restored data into place: {e}"))?;
    let mut report = report;
    if let (Some(tmp), Some(out)) = (&cfg_tmp, &opts.config_out) {
        if tmp.exists() {
            if out.exists() && !opts.force {
                log::warn!(
                    "restore: {} exists; the archive's config is left in {}",
                    out.display(),
                    tmp.display()
                );
            } else {
                std::fs::rename(tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
                crate::store::fsync_dir(out.parent().unwrap_or(Path::new(".")))
                    .map_err(|e| format!("{}: {e}", out.display()))?;
                report.config_written = Some(out.clone());
            }
        }
    }
    Ok(report)
}

fn unpack(r: impl Read, staging: &Path, cfg_tmp: Option<&Path>) -> Result<Report, String> {
    use std::os::unix::fs::DirBuilderExt;
    let mk = |p: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p)
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    mk(staging)?;
    let mut dirs = vec![staging.to_path_buf()];
    let mut report = Report::default();
    let (format, listed) = super::read::read(r, |path, _size, src| {
        let dst = if path == manifest::CONFIG_PATH {
            match cfg_tmp {
                Some(t) => t.to_path_buf(),
                None => return Ok(()),
            }
        } else {
            let rel = &path[manifest::DATA_PREFIX.len()..];
            let dst = staging.join(rel);
            let dir = dst
                .parent()
                .expect("joined path has a parent")
                .to_path_buf();
            if !dirs.contains(&dir) {
                mk(&dir).map_err(io::Error::other)?;
                dirs.push(dir);
            }
            dst
        };
        write_file(&dst, src)
    })?;
    // Directory entries durable before the swap makes them the data folder.
    for d in dirs.iter().rev() {
        crate::store::fsync_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    // The index must open (and is closed cleanly again).
    let idx = staging.join(crate::store::snapshot::INDEX_FILE);
    redb::Database::open(&idx).map_err(|e| format!("the archive's index does not open: {e}"))?;
    report.files = listed.len() as u64;
    report.bytes = listed.iter().map(|e| e.size).sum();
    report.created = format.created;
    report.messages = format.messages;
    Ok(report)
}

fn write_file(dst: &Path, src: &mut dyn Read) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)?;
    io::copy(src, &mut f)?;
    f.flush()?;
    f.sync_all()
}

/// Make `staging` the data folder in one step: `renameat2(RENAME_EXCHANGE)`
/// swaps the two atomically (Linux ≥ 3.15, ext4/tmpfs/btrfs/xfs), then the
/// old data is removed. A missing or empty target is a plain rename.
fn swap_in(staging: &Path, data_dir: &Path) -> io::Result<()> {
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !data_dir.exists() {
        std::fs::rename(staging, data_dir)?;
        return crate::store::fsync_dir(parent);
    }
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        staging,
        rustix::fs::CWD,
        data_dir,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        Ok(()) => {
            crate::store::fsync_dir(parent)?;
            // `staging` now holds the old data.
            remove_tree(staging).map_err(io::Error::other)
        }
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
            // No atomic exchange on this filesystem: the old folder is
            // moved aside first (a kill between the renames leaves it
            // there, next to the complete new one in staging).
            let old = data_dir.with_file_name(format!(
                ".{}.old",
                data_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            remove_tree(&old).map_err(io::Error::other)?;
            std::fs::rename(data_dir, &old)?;
            std::fs::rename(staging, data_dir)?;
            crate::store::fsync_dir(parent)?;
            remove_tree(&old).map_err(io::Error::other)
        }
        Err(e) => Err(e.into()),
    }
}

fn remove_tree(p: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}
