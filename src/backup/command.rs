//! The `chatrelay backup` and `chatrelay restore` verbs: where the archive
//! comes from (the running relay's control socket, else the store opened
//! here), where it goes (a file written tmp + fsync + rename, a folder of
//! rotated archives, or stdout), and the optional encryption.

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;

use super::{create, crypt, restore, status};
use crate::config::Config;

pub enum Target {
    Stdout,
    File(PathBuf),
    /// A folder of dated archives, keeping the newest `keep`.
    Dir(PathBuf, usize),
}

pub struct BackupArgs {
    pub target: Target,
    pub without_messages: bool,
    pub config: Option<PathBuf>,
    pub passphrase: Option<SecretString>,
}

/// File name prefix of archives in a backup folder.
pub const DIR_PREFIX: &str = "chatrelay-backup-";

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies everything read to `w` (the relay's stream is verified while
/// it is saved).
struct Tee<R, W> {
    r: R,
    w: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.r.read(buf)?;
        self.w.write_all(&buf[..k])?;
        Ok(k)
    }
}

/// `YYYYmmdd-HHMMSS` (UTC).
fn stamp(t: i64) -> String {
    let (y, m, d) = crate::clock::civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Produce the plaintext archive into `out`; returns (files, bytes).
fn produce(cfg: &Config, a: &BackupArgs, out: &mut dyn Write) -> Result<(u64, u64), String> {
    // The control socket of `prune::control` (one path, no import upward).
    let sock = cfg.data_dir.join("control.sock");
    if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) {
        let cfg_arg = match &a.config {
            Some(p) => std::fs::canonicalize(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .to_string_lossy()
                .into_owned(),
            None => "-".into(),
        };
        if cfg_arg.contains(char::is_whitespace) {
            return Err("the config path may not contain spaces".into());
        }
        writeln!(s, "backup {} {cfg_arg}", u8::from(a.without_messages))
            .map_err(|e| e.to_string())?;
        let mut r = io::BufReader::with_capacity(64 * 1024, s);
        let mut line = String::new();
        (&mut r)
            .take(512)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        match line.trim_end() {
            "ok" => {}
            "" => return Err("the relay closed the control connection".into()),
            l => {
                return Err(format!(
                    "the relay: {}",
                    l.strip_prefix("error ").unwrap_or(l)
                ))
            }
        }
        let (_, listed) = super::read::read(Tee { r, w: out }, |_, _, _| Ok(()))
            .map_err(|e| format!("the relay's archive: {e} (see the relay's log)"))?;
        return Ok((listed.len() as u64, listed.iter().map(|e| e.size).sum()));
    }
    let store = crate::store::Store::open(&cfg.data_dir)
        .map_err(|e| format!("cannot open the store in {}: {e}", cfg.data_dir.display()))?;
    let opts = create::Options {
        without_messages: a.without_messages,
        config: a.config.clone(),
    };
    let s = create::write(&store, &opts, out)?;
    Ok((s.files, s.bytes))
}

/// Produce, maybe encrypt, and write to `w`; returns (files, bytes in, bytes out).
fn produce_to(cfg: &Config, a: &BackupArgs, w: impl Write) -> Result<(u64, u64, u64), String> {
    let mut c = Counting { inner: w, n: 0 };
    let (files, bytes) = match &a.passphrase {
        Some(p) => {
            let mut enc =
                crypt::encrypt(io::BufWriter::with_capacity(64 * 1024, &mut c), p.clone())
                    .map_err(|e| format!("encryption: {e}"))?;
            let r = produce(cfg, a, &mut enc)?;
            enc.finish()
                .and_then(|mut b| b.flush())
                .map_err(|e| format!("writing the archive: {e}"))?;
            r
        }
        None => {
            let mut b = io::BufWriter::with_capacity(64 * 1024, &mut c);
            let r = produce(cfg, a, &mut b)?;
            b.flush().map_err(|e| format!("writing the archive: {e}"))?;
            r
        }
    };
    Ok((files, bytes, c.n))
}

/// Write to `path` durably: `path.partial`, fsync, rename, fsync folder.
fn produce_file(cfg: &Config, a: &BackupArgs, path: &Path) -> Result<u64, String> {
    let tmp = path.with_file_name(format!(
        "{}.partial",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let r = produce_to(cfg, a, &f).and_then(|(_, _, n)| {
        f.sync_all()
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::store::fsync_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(n)
    });
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// `chatrelay backup`. Returns a one-line report for the terminal.
pub fn backup(cfg: &Config, a: &BackupArgs) -> Result<String, String> {
    let now = crate::clock::now_secs();
    let (path, r) = match &a.target {
        Target::Stdout => {
            let out = io::stdout().lock();
            let (files, bytes, n) = produce_to(cfg, a, out)?;
            return Ok(format!(
                "backup: {files} files ({bytes} bytes), {n} bytes written"
            ));
        }
        Target::File(p) => (p.clone(), produce_file(cfg, a, p)),
        Target::Dir(d, keep) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            let ext = if a.passphrase.is_some() {
                "tar.age"
            } else {
                "tar"
            };
            let p = d.join(format!("{DIR_PREFIX}{}.{ext}", stamp(now)));
            let r = produce_file(cfg, a, &p);
            if r.is_ok() {
                rotate(d, *keep);
            }
            (p, r)
        }
    };
    let st = status::Status {
        time: crate::clock::now_secs(),
        size: *r.as_ref().unwrap_or(&0),
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        error: r.as_ref().err().cloned(),
    };
    if let Err(e) = status::write(&cfg.data_dir, &st) {
        log::warn!("backup: cannot write {}: {e}", status::STATUS_FILE);
    }
    let n = r?;
    Ok(format!("backup: {} ({n} bytes)", path.display()))
}

/// Keep the newest `keep` archives of a backup folder (names sort by time).
fn rotate(dir: &Path, keep: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(DIR_PREFIX) && (n.ends_with(".tar") || n.ends_with(".tar.age")))
        .collect();
    names.sort();
    let drop = names.len().saturating_sub(keep.max(1));
    for n in &names[..drop] {
        if let Err(e) = std::fs::remove_file(dir.join(n)) {
            log::warn!("backup: cannot remove old archive {n}: {e}");
        }
    }
}

/// `chatrelay restore FILE|-`.
pub fn restore(
    data_dir: &Path,
    file: &str,
    pass: Option<SecretString>,
    opts: &restore::Options,
) -> Result<String, String> {
    let src: Box<dyn Read> = if file == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?)
    };
    let plain = crypt::open(src, pass)?;
    let r = restore::restore(plain, data_dir, opts)?;
    let mut s = format!(
        "restored {} files ({} bytes{}) into {}",
        r.files,
        r.bytes,
        if r.messages { "" } else { ", without messages" },
        data_dir.display()
    );
    if let Some(c) = &r.config_written {
        s.push_str(&format!("; config written to {}", c.display()));
    }
    Ok(s)
}
