//! `chatrelay import-upstream`: move an upstream chatmail relay's data in
//! (issue 14). Layout, from upstream's sources (chatmaild `config.py`,
//! `user.py`, `metadata.py`, `doveauth.py`; cmdeploy's `dovecot.conf.j2`
//! and opendkim files):
//!
//! - `mailboxes_dir` (default `/home/vmail/mail/<domain>`) has one folder
//!   per address, named by the address;
//! - in it `password`: `{SHA512-CRYPT}$6$...` (kept as is: our login
//!   verifies it and upgrades it to Argon2id); its mtime is the last login
//!   day (`User.set_last_login_timestamp`);
//! - the Dovecot Maildir++ of the account (`maildir::`), files possibly
//!   gzip-compressed (`zlib_save = gz`);
//! - `metadata.json`: `{"devicetoken": {token: unix_ts}}` (or a list);
//! - the DKIM key `/etc/dkimkeys/<selector>.private` (PKCS#1 PEM);
//! - the certificate: `/var/lib/acme/live/<domain>/{fullchain,privkey}` or
//!   the self-signed `/etc/ssl/certs/mailserver.pem` + private key.
//!
//! Nothing is dropped silently: every skipped account, folder or message
//! is listed in the report with the reason.

pub mod maildir;

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::store::{Flags, Store};

pub struct Options {
    pub mailboxes_dir: PathBuf,
    pub dkim_key: Option<PathBuf>,
    /// Folder with `fullchain` + `privkey` (acmetool) or `cert.pem` + `key.pem`.
    pub tls_dir: Option<PathBuf>,
}

#[derive(Default)]
struct Report {
    accounts: u64,
    messages: u64,
    bytes: u64,
    folders: u64,
    tokens: u64,
    problems: Vec<String>,
}

/// Run the import into `cfg.data_dir` (the relay must be stopped: the
/// store is opened here). Returns the report text.
pub fn import(cfg: &Config, o: &Options) -> Result<String, String> {
    let store = Store::open(&cfg.data_dir).map_err(|e| {
        format!(
            "cannot open the store in {} (stop the relay first): {e}",
            cfg.data_dir.display()
        )
    })?;
    let mut rep = Report::default();
    let mut out = String::new();
    if let Some(k) = &o.dkim_key {
        let line = import_dkim(cfg, k)?;
        let _ = writeln!(out, "{line}");
    }
    if let Some(d) = &o.tls_dir {
        let line = import_tls(cfg, d)?;
        let _ = writeln!(out, "{line}");
    }
    let mut dirs: Vec<_> = std::fs::read_dir(&o.mailboxes_dir)
        .map_err(|e| format!("{}: {e}", o.mailboxes_dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    dirs.sort_by_key(|e| e.file_name());
    for e in dirs {
        let name = e.file_name();
        let Some(addr) = name.to_str() else {
            rep.problems
                .push(format!("{:?}: skipped (name is not UTF-8)", name));
            continue;
        };
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if !addr.contains('@') {
            // upstream keeps other things beside the accounts (none today)
            rep.problems
                .push(format!("{addr}: skipped (not an address)"));
            continue;
        }
        if let Err(why) = import_account(cfg, &store, addr, &e.path(), &mut rep) {
            rep.problems
                .push(format!("{addr}: account skipped ({why})"));
        }
    }
    let _ = writeln!(
        out,
        "imported {} accounts, {} folders, {} messages ({} bytes), {} device tokens",
        rep.accounts, rep.folders, rep.messages, rep.bytes, rep.tokens
    );
    if rep.problems.is_empty() {
        let _ = writeln!(out, "no problems");
    } else {
        let _ = writeln!(out, "{} problems:", rep.problems.len());
        for p in &rep.problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    Ok(out)
}

fn import_account(
    cfg: &Config,
    store: &Store,
    addr: &str,
    dir: &Path,
    rep: &mut Report,
) -> Result<(), String> {
    // Our account rules (spec §4.4); the password itself is not known.
    let pw_ok = vec![b'x'; cfg.password_min_length];
    crate::relay::auth::check_new_address(cfg, addr, &pw_ok)?;
    let pwf = dir.join("password");
    let hash = std::fs::read_to_string(&pwf).map_err(|e| format!("password file: {e}"))?;
    let hash = hash.trim();
    if !hash.starts_with("{SHA512-CRYPT}$6$") {
        return Err("password file holds no {SHA512-CRYPT} hash".into());
    }
    let last_login = std::fs::metadata(&pwf)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| (d.as_secs() / 86400) as u32)
        .unwrap_or_else(crate::clock::today);
    match store.create_account(addr, hash, crate::clock::today()) {
        Ok(_) => {}
        Err(crate::store::StoreError::Exists) => return Err("exists here already".into()),
        Err(e) => return Err(e.to_string()),
    }
    store
        .touch_login(addr, last_login)
        .map_err(|e| e.to_string())?;
    rep.accounts += 1;
    // INBOX is the Maildir root; folders are `.Name` directories.
    import_folder(cfg, store, addr, dir, "INBOX", rep);
    let mut subs: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .collect();
    subs.sort_by_key(|e| e.file_name());
    for s in subs {
        let n = s.file_name();
        let Some(n) = n.to_str() else {
            rep.problems
                .push(format!("{addr}: folder {n:?} skipped (name is not UTF-8)"));
            continue;
        };
        if matches!(n, "cur" | "new" | "tmp") || !n.starts_with('.') {
            continue;
        }
        let Some(folder) = maildir::folder_name(n) else {
            rep.problems.push(format!(
                "{addr}: folder {n:?} skipped (not a Maildir++ folder name)"
            ));
            continue;
        };
        // Parents first: `.A.B` needs `A` (created implicitly, like Dovecot).
        let mut prefix = String::new();
        for part in folder.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if store.get_mailbox(addr, &prefix).ok().flatten().is_none() {
                if let Err(e) = store.create_mailbox(addr, &prefix, None) {
                    rep.problems.push(format!("{addr}: folder {prefix:?}: {e}"));
                }
                rep.folders += 1;
            }
        }
        import_folder(cfg, store, addr, &s.path(), &folder, rep);
    }
    import_tokens(store, addr, dir, rep);
    Ok(())
}

fn import_folder(
    cfg: &Config,
    store: &Store,
    addr: &str,
    dir: &Path,
    folder: &str,
    rep: &mut Report,
) {
    let keywords = std::fs::read_to_string(dir.join("dovecot-keywords"))
        .map(|t| maildir::parse_keywords(&t))
        .unwrap_or_default();
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name();
            let shown = name.to_string_lossy().into_owned();
            if shown.starts_with('.') {
                continue;
            }
            match e.metadata() {
                Ok(m) if m.is_file() => {
                    let mtime = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    files.push((mtime, shown, e.path(), sub == "new"));
                }
                Ok(_) => rep
                    .problems
                    .push(format!("{addr}/{folder}: {shown:?} skipped (not a file)")),
                Err(err) => rep
                    .problems
                    .push(format!("{addr}/{folder}: {shown:?}: {err}")),
            }
        }
    }
    // UIDs ascend with the internal date, as they did upstream.
    files.sort();
    for (mtime, name, path, in_new) in files {
        let flags = if in_new {
            Flags::default()
        } else {
            maildir::flags_of(&name, &keywords)
        };
        match read_message(&path, cfg.max_message_size) {
            Ok(data) => match store.deliver(&data, &[(addr, folder)], &flags, mtime, None) {
                Ok(_) => {
                    rep.messages += 1;
                    rep.bytes += data.len() as u64;
                }
                Err(e) => rep.problems.push(format!("{addr}/{folder}: {name:?}: {e}")),
            },
            Err(e) => rep
                .problems
                .push(format!("{addr}/{folder}: {name:?} skipped ({e})")),
        }
    }
}

/// A message file, gunzipped if Dovecot's zlib plugin compressed it, at
/// most `max` bytes (read with a bound: a bomb stops at the limit).
fn read_message(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut head = [0u8; 2];
    let n = f.read(&mut head).map_err(|e| e.to_string())?;
    let chained = std::io::Read::chain(&head[..n], f);
    let mut data = Vec::new();
    let r = if n == 2 && head == [0x1f, 0x8b] {
        flate2::read::GzDecoder::new(chained)
            .take(max + 1)
            .read_to_end(&mut data)
    } else {
        chained.take(max + 1).read_to_end(&mut data)
    };
    r.map_err(|e| format!("unreadable: {e}"))?;
    // Dovecot keeps LF line ends on disk and serves CRLF (RFC 5322 §2.3).
    let data = crlf(data);
    if data.len() as u64 > max {
        return Err(format!("larger than max_message_size {max}"));
    }
    if data.is_empty() {
        return Err("empty".into());
    }
    Ok(data)
}

fn crlf(data: Vec<u8>) -> Vec<u8> {
    if !data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
    {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// `metadata.json` (chatmaild `metadata.py`): device tokens with the time
/// of their registration, or a plain list in older versions.
fn import_tokens(store: &Store, addr: &str, dir: &Path, rep: &mut Report) {
    let Ok(text) = std::fs::read_to_string(dir.join("metadata.json")) else {
        return;
    };
    let now = crate::clock::now_secs();
    let mut toks = Vec::new();
    match json_tokens(&text) {
        Some(v) => {
            for (t, ts) in v {
                if t.is_empty()
                    || t.len() > crate::store::devicetoken::MAX_TOKEN_LEN
                    || t.contains(['\t', '\n'])
                {
                    rep.problems
                        .push(format!("{addr}: a device token skipped (malformed)"));
                    continue;
                }
                toks.push((t, ts.unwrap_or(now).min(now)));
            }
        }
        None => {
            rep.problems
                .push(format!("{addr}: metadata.json skipped (not understood)"));
            return;
        }
    }
    toks.truncate(crate::store::devicetoken::MAX_TOKENS);
    if toks.is_empty() {
        return;
    }
    match store.set_meta(
        addr,
        "devicetoken",
        Some(&crate::store::devicetoken::encode(&toks)),
    ) {
        Ok(()) => rep.tokens += toks.len() as u64,
        Err(e) => rep.problems.push(format!("{addr}: device tokens: {e}")),
    }
}

/// The `devicetoken` member of a small JSON object: `{"t": ts, ...}` or
/// `["t", ...]`. A tiny reader for this one shape (strings without
/// escapes other than `\"` and `\\`, numbers); anything else is `None`.
fn json_tokens(text: &str) -> Option<Vec<(String, Option<i64>)>> {
    let i = text.find("\"devicetoken\"")?;
    let rest = text[i + 13..].trim_start().strip_prefix(':')?.trim_start();
    let (close, body) = match rest.chars().next()? {
        '{' => ('}', &rest[1..]),
        '[' => (']', &rest[1..]),
        _ => return None,
    };
    let mut out = Vec::new();
    let mut s = body.trim_start();
    loop {
        if let Some(r) = s.strip_prefix(close) {
            let _ = r;
            return Some(out);
        }
        let (tok, r) = json_string(s)?;
        s = r.trim_start();
        let mut ts = None;
        if close == '}' {
            s = s.strip_prefix(':')?.trim_start();
            let end = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .unwrap_or(s.len());
            ts = s[..end].parse::<f64>().ok().map(|v| v as i64);
            s = s[end..].trim_start();
        }
        out.push((tok, ts));
        if out.len() > 1000 {
            return None;
        }
        s = s.strip_prefix(',').unwrap_or(s).trim_start();
    }
}

fn json_string(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match it.next()?.1 {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

fn import_dkim(cfg: &Config, key: &Path) -> Result<String, String> {
    let pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let k = crate::dkim::SigningKey::from_pem(&pem, key.to_path_buf())?;
    let want = if cfg.dkim_ed25519 {
        crate::dkim::KeyKind::Ed25519
    } else {
        crate::dkim::KeyKind::Rsa
    };
    if k.kind() != want {
        return Err(format!(
            "{}: a {:?} key, but {want:?} is configured",
            key.display(),
            k.kind()
        ));
    }
    let dir = cfg.data_dir.join("dkim");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dst = dir.join(format!("{}.key", cfg.dkim_selector));
    crate::store::write_durable(&dir.join("import.tmp"), &dst, &pem)
        .map_err(|e| format!("{}: {e}", dst.display()))?;
    Ok(format!(
        "DKIM key (selector {}) imported to {}",
        cfg.dkim_selector,
        dst.display()
    ))
}

fn import_tls(cfg: &Config, dir: &Path) -> Result<String, String> {
    let pick = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
    let cert = pick(&["fullchain", "fullchain.pem", "cert.pem", "mailserver.pem"])
        .ok_or_else(|| format!("{}: no fullchain or cert.pem", dir.display()))?;
    let key = pick(&["privkey", "privkey.pem", "key.pem", "mailserver.key"])
        .ok_or_else(|| format!("{}: no privkey or key.pem", dir.display()))?;
    let c = std::fs::read(&cert).map_err(|e| format!("{}: {e}", cert.display()))?;
    let k = std::fs::read(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    if !c.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(format!("{}: not a PEM certificate", cert.display()));
    }
    if !k.windows(11).any(|w| w == b"-----BEGIN ") || !k.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(format!("{}: not a PEM private key", key.display()));
    }
    let (cp, kp) = crate::tls::self_signed_paths(&cfg.data_dir);
    let d = cp.parent().expect("has parent");
    std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    crate::store::write_durable(&d.join("import.tmp"), &kp, &k).map_err(|e| e.to_string())?;
    crate::store::write_durable(&d.join("import.tmp"), &cp, &c).map_err(|e| e.to_string())?;
    Ok(format!(
        "certificate and key imported to {} (used until the relay obtains its own)",
        d.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_json_shapes() {
        let v = json_tokens(r#"{"devicetoken": {"abc": 1700000000, "d\"e": 1.5}}"#).unwrap();
        assert_eq!(v[0], ("abc".to_string(), Some(1_700_000_000)));
        assert_eq!(v[1].0, "d\"e");
        let v = json_tokens(r#"{"devicetoken": ["x", "y"]}"#).unwrap();
        assert_eq!(v, vec![("x".into(), None), ("y".into(), None)]);
        assert!(json_tokens(r#"{"other": 1}"#).is_none());
        assert!(json_tokens(r#"{"devicetoken": {"abc"#).is_none());
        assert_eq!(crlf(b"a\nb\r\nc\n".to_vec()), b"a\r\nb\r\nc\r\n");
    }
}
