//! Message bodies: one file per body under `<data>/bodies/<xx>/<id>`.
//!
//! A body is written to `<data>/tmp/`, fsynced, renamed into place and the
//! directory fsynced before any index entry points at it (design principle 4).
//! Several recipients share one body file (refcount in the index).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct Bodies {
    root: PathBuf,
    tmp: PathBuf,
}

/// Write `data` to `tmp`, fsync, rename to `dst`, fsync `dst`'s directory.
/// Needs no store handle, so it can run on a blocking thread.
pub fn write_durable(tmp: &Path, dst: &Path, data: &[u8]) -> io::Result<()> {
    {
        let mut f = File::create(tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    let dir = dst
        .parent()
        .ok_or_else(|| io::Error::other("body path without parent"))?;
    if let Err(e) = fs::rename(tmp, dst) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
        fs::create_dir_all(dir)?;
        fs::rename(tmp, dst)?;
    }
    fsync_dir(dir)
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Bodies {
    pub fn open(data_dir: &Path) -> io::Result<Bodies> {
        let root = data_dir.join("bodies");
        let tmp = data_dir.join("tmp");
        fs::create_dir_all(&root)?;
        fs::create_dir_all(&tmp)?;
        // Anything in tmp/ is half-written by definition: never acknowledged.
        for e in fs::read_dir(&tmp)? {
            let e = e?;
            let _ = fs::remove_file(e.path());
        }
        Ok(Bodies { root, tmp })
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.root
            .join(format!("{:02x}", id & 0xff))
            .join(format!("{id:016x}"))
    }

    pub fn tmp_path(&self, id: u64) -> PathBuf {
        self.tmp.join(format!("{id:016x}"))
    }

    /// Durably place `data` as body `id` (write, fsync, rename, fsync dir).
    pub fn write(&self, id: u64, data: &[u8]) -> io::Result<()> {
        let tmp = self.tmp_path(id);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        self.commit_tmp(id)
    }

    /// Move an already fsynced `tmp_path(id)` into place and fsync the directory.
    pub fn commit_tmp(&self, id: u64) -> io::Result<()> {
        let dst = self.path(id);
        let dir = dst.parent().expect("body path has a parent");
        if let Err(e) = fs::rename(self.tmp_path(id), &dst) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
            fs::create_dir_all(dir)?;
            fs::rename(self.tmp_path(id), &dst)?;
        }
        fsync_dir(dir)
    }

    pub fn remove(&self, id: u64) {
        let _ = fs::remove_file(self.path(id));
    }

    /// All body ids present on disk (for the startup orphan sweep).
    pub fn scan(&self) -> io::Result<Vec<u64>> {
        let mut ids = Vec::new();
        for sub in fs::read_dir(&self.root)? {
            let sub = sub?;
            if !sub.file_type()?.is_dir() {
                continue;
            }
            for f in fs::read_dir(sub.path())? {
                let f = f?;
                if let Some(id) = f
                    .file_name()
                    .to_str()
                    .and_then(|n| u64::from_str_radix(n, 16).ok())
                {
                    ids.push(id);
                } else {
                    let _ = fs::remove_file(f.path());
                }
            }
        }
        Ok(ids)
    }
}

/// Restrict `dir` and everything under it to the owner: directories 0700,
/// files (and sockets) 0600 where they allow more. Symlinks are not followed.
/// Returns how many modes were changed (existing installs made before the
/// relay created its files 0600/0700).
pub fn restrict_tree(dir: &Path) -> io::Result<u64> {
    use std::os::unix::fs::PermissionsExt;
    let mut fixed = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let md = fs::symlink_metadata(&p)?;
        let ft = md.file_type();
        if ft.is_symlink() {
            continue;
        }
        let mode = md.permissions().mode() & 0o7777;
        let want = if ft.is_dir() {
            mode & 0o700 | 0o700
        } else {
            mode & 0o600
        };
        if mode != want {
            fs::set_permissions(&p, fs::Permissions::from_mode(want))?;
            fixed += 1;
        }
        if ft.is_dir() {
            for e in fs::read_dir(&p)? {
                todo.push(e?.path());
            }
        }
    }
    Ok(fixed)
}
