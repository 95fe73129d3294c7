//! Bad archives and faults around `chatrelay backup` / `restore` (issue
//! 14): truncated, altered, wrong passphrase, newer format, non-empty
//! target, full disk (a small tmpfs this test mounts and removes), kill -9
//! of the backup (relay untouched) and of the restore (old or new state,
//! never a mix). Relays on 127.0.0.43 and .44.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{run_cli, Relay, TempDir};

const CLI: Duration = Duration::from_secs(120);

fn msg(id: &str, len: usize) -> Vec<u8> {
    let mut m =
        format!("From: a@x\r\nTo: b@x\r\nMessage-ID: <{id}@faults.test>\r\n\r\n").into_bytes();
    while m.len() < len {
        m.extend_from_slice(b"fault fault fault fault fault fault fault fault fault fault.\r\n");
    }
    m
}

/// path -> contents of every file under `d`.
fn tree(d: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![d.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.insert(
                    e.path().strip_prefix(d).unwrap().to_path_buf(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

fn restore(archive: &Path, data: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "restore",
        archive.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run_cli(&args, CLI);
    (code, format!("{out}{err}"))
}

fn backup(r: &Relay, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let cfg = r.config_path();
    let mut args = vec![
        "backup",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, o, err) = run_cli(&args, CLI);
    (code, format!("{o}{err}"))
}

/// A relay with `n` messages of ~70 KB (body files) and some small ones.
fn relay_with_mail(ip: u8, n: usize) -> Relay {
    let r = Relay::start(ip);
    let mut c = r.login("faultuser");
    for i in 0..n {
        assert!(c
            .append("INBOX", "\\Seen", &msg(&format!("f{i}"), 70_000))
            .ok());
        assert!(c.append("INBOX", "", &msg(&format!("s{i}"), 500)).ok());
    }
    r
}

/// Offsets of a member's data in a plain tar: (header offset, size).
fn member(tar: &[u8], name: &str) -> (usize, usize) {
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        let n = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&h[124..135]).trim_matches(|c| c == '\0' || c == ' '),
            8,
        )
        .unwrap_or(0);
        if n == name {
            return (off, size);
        }
        if n.is_empty() {
            break;
        }
        off += 512 + size.div_ceil(512) * 512;
    }
    panic!("no member {name}");
}

#[test]
fn bad_archives_are_refused_before_anything_changes() {
    let mut r = relay_with_mail(43, 3);
    let tmp = TempDir::new("bfaults");
    let good = tmp.path().join("good.tar");
    let (code, out) = backup(&r, &good, &[]);
    assert_eq!(code, Some(0), "{out}");
    let bytes = std::fs::read(&good).unwrap();
    let target = tmp.path().join("target");

    let refused = |name: &str, data: &[u8], extra: &[&str], want: &str| {
        let f = tmp.path().join(name);
        std::fs::write(&f, data).unwrap();
        let (code, out) = restore(&f, &target, extra);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(out.contains(want), "{name}: {out}");
        assert!(!target.exists(), "{name}: target created");
        assert!(
            !tmp.path().join(".target.restore").exists(),
            "{name}: staging left"
        );
    };
    // Truncated: at a member boundary, inside a member, before the manifest.
    let (m_off, _) = member(&bytes, "chatrelay-backup/MANIFEST");
    refused("trunc1.tar", &bytes[..m_off], &[], "truncated");
    refused("trunc2.tar", &bytes[..m_off / 2], &[], "truncated");
    refused("trunc3.tar", &bytes[..700], &[], "truncated");
    refused("empty.tar", b"", &[], "");
    // One flipped byte in a body file's data.
    let (b_off, b_size) = {
        let mut off = 0;
        loop {
            let h = &bytes[off..off + 512];
            let n = String::from_utf8_lossy(&h[..100])
                .trim_end_matches('\0')
                .to_string();
            if n.starts_with("data/bodies/") {
                break member(&bytes, &n);
            }
            let (_, size) = member(&bytes, &n);
            off += 512 + size.div_ceil(512) * 512;
        }
    };
    assert!(b_size > 1000);
    let mut flipped = bytes.clone();
    flipped[b_off + 512 + b_size / 2] ^= 0x20;
    refused("flip.tar", &flipped, &[], "checksum mismatch");
    // A newer format (same length, so the tar stays well-formed).
    let (f_off, f_size) = member(&bytes, "chatrelay-backup/FORMAT");
    let mut newer = bytes.clone();
    let text = String::from_utf8_lossy(&bytes[f_off + 512..f_off + 512 + f_size])
        .replace("version 1", "version 9");
    newer[f_off + 512..f_off + 512 + f_size].copy_from_slice(text.as_bytes());
    refused("newer.tar", &newer, &[], "newer than this chatrelay");
    // Not a backup at all.
    refused("junk.tar", &[b'x'; 4096], &[], "archive");

    // Encrypted: no, wrong, then right passphrase.
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "right passphrase\n").unwrap();
    let enc = tmp.path().join("enc.tar.age");
    let (code, out) = backup(&r, &enc, &["--passphrase-file", pass.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "wrong passphrase\n").unwrap();
    let e = std::fs::read(&enc).unwrap();
    refused("enc1.age", &e, &[], "passphrase");
    refused(
        "enc2.age",
        &e,
        &["--passphrase-file", wrong.to_str().unwrap()],
        "wrong passphrase",
    );
    refused(
        "enc3.age",
        &e[..e.len() - 100],
        &["--passphrase-file", pass.to_str().unwrap()],
        "",
    );
    let mut ef = e.clone();
    let k = ef.len() / 2;
    ef[k] ^= 1;
    refused(
        "enc4.age",
        &ef,
        &["--passphrase-file", pass.to_str().unwrap()],
        "",
    );
    let (code, out) = restore(
        &enc,
        &target,
        &["--passphrase-file", pass.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}");

    // Non-empty target: refused, and unchanged; --force replaces it.
    let before = tree(&target);
    std::fs::write(target.join("marker"), b"old").unwrap();
    let (code, out) = restore(&good, &target, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not empty"), "{out}");
    assert!(target.join("marker").exists());
    let (code, out) = restore(&good, &target, &["--force"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!target.join("marker").exists());
    assert_eq!(
        tree(&target).keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );

    // A rotated folder keeps the newest --keep archives; the status file
    // (what the status screen shows) names the last one.
    let rot = tmp.path().join("rotated");
    let cfg = r.config_path();
    for _ in 0..3 {
        let (code, _, err) = run_cli(
            &[
                "backup",
                "--config",
                cfg.to_str().unwrap(),
                "--to-dir",
                rot.to_str().unwrap(),
                "--keep",
                "2",
            ],
            CLI,
        );
        assert_eq!(code, Some(0), "{err}");
        std::thread::sleep(Duration::from_millis(1100)); // names have 1 s resolution
    }
    let mut names: Vec<String> = std::fs::read_dir(&rot)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    let st = std::fs::read_to_string(r.data_dir().join("backup-status")).unwrap();
    assert!(
        st.contains(&format!("file {}", names[1])) && st.contains("result ok"),
        "{st}"
    );
    let size = std::fs::metadata(rot.join(&names[1])).unwrap().len();
    assert!(st.contains(&format!("size {size}")), "{st}");

    // The relay was serving the whole time; offline backup works too.
    r.assert_serving();
    r.stop();
    let off = tmp.path().join("offline.tar");
    let (code, out) = backup(&r, &off, &["--without-messages"]);
    assert_eq!(code, Some(0), "{out}");
    let t2 = tmp.path().join("t2");
    let (code, out) = restore(&off, &t2, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !tree(&t2).keys().any(|k| k.starts_with("bodies")),
        "--without-messages has bodies"
    );
}

/// A tmpfs of `size` at a fresh folder; unmounted and removed on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn full_disk_and_kill9_leave_old_or_new_state() {
    let mut r = relay_with_mail(44, 40);
    let tmp = TempDir::new("bfaults-disk");
    let good = tmp.path().join("good.tar");
    let (code, out) = backup(&r, &good, &[]);
    assert_eq!(code, Some(0), "{out}");
    let size = std::fs::metadata(&good).unwrap().len();
    assert!(size > 2_500_000, "{size}");

    // Full disk during backup: the output folder is a 1 MiB tmpfs.
    let small = Tmpfs::new(&tmp.path().join("small"), "1m")
        .expect("mounting a tmpfs needs root (the test suite runs as root)");
    let out_file = small.0.join("b.tar");
    let (code, out) = backup(&r, &out_file, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("No space left"), "{out}");
    assert_eq!(
        std::fs::read_dir(&small.0).unwrap().count(),
        0,
        "partial file left"
    );
    r.assert_serving();

    // Full disk during restore: old state kept, no staging left.
    let target = small.0.join("data");
    std::fs::create_dir_all(target.join("dkim")).unwrap();
    std::fs::write(target.join("dkim/old.key"), b"old").unwrap();
    let old = tree(&target);
    let (code, out) = restore(&good, &target, &["--force"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("No space left"), "{out}");
    assert_eq!(tree(&target), old);
    assert!(!small.0.join(".data.restore").exists());
    drop(small);

    // kill -9 of a backup that is streaming: the relay carries on and the
    // next backup works.
    let cfg = r.config_path();
    let mut child = Command::new(common::bin())
        .args(["backup", "--config", cfg.to_str().unwrap(), "--out", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // stdout pipe full: stalls
    child.kill().unwrap();
    child.wait().unwrap();
    r.assert_serving();
    let again = tmp.path().join("again.tar");
    let ok = common::wait_until(Duration::from_secs(20), || {
        backup(&r, &again, &[]).0 == Some(0)
    });
    assert!(
        ok,
        "backup after a killed one failed; relay:\n{}",
        r.stderr()
    );
    // kill -9 of the relay during a backup: it restarts cleanly, the index
    // copy is swept from tmp/.
    let mut child = Command::new(common::bin())
        .args(["backup", "--config", cfg.to_str().unwrap(), "--out", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    r.restart();
    let _ = child.kill();
    let _ = child.wait();
    r.assert_serving();
    let tmpdir: Vec<_> = std::fs::read_dir(r.data_dir().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmpdir.is_empty(), "{tmpdir:?}");
    let mut c = r.login("faultuser");
    let s = c.select("INBOX");
    assert!(s.has("* 80 EXISTS"), "{s:?}");

    // kill -9 of restores at several moments: the target is the old tree
    // or the complete new one, and a later restore completes.
    let reference = tmp.path().join("reference");
    let (code, out) = restore(&good, &reference, &[]);
    assert_eq!(code, Some(0), "{out}");
    let new = tree(&reference);
    let target = tmp.path().join("target");
    std::fs::create_dir_all(target.join("dkim")).unwrap();
    std::fs::write(target.join("dkim/old.key"), b"old").unwrap();
    let old = tree(&target);
    let (mut saw_old, mut saw_new) = (0, 0);
    for ms in [0u64, 5, 15, 30, 60, 100, 160, 250, 400, 2000] {
        let mut child = Command::new(common::bin())
            .args([
                "restore",
                good.to_str().unwrap(),
                "--force",
                "--data-dir",
                target.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
        let t = tree(&target);
        if t == old {
            saw_old += 1;
        } else if t == new {
            saw_new += 1;
            // back to the old state for the next round
            std::fs::remove_dir_all(&target).unwrap();
            std::fs::create_dir_all(target.join("dkim")).unwrap();
            std::fs::write(target.join("dkim/old.key"), b"old").unwrap();
        } else {
            panic!("after kill at {ms} ms the data folder is neither old nor new");
        }
    }
    eprintln!("kill -9 during restore: {saw_old} times old state, {saw_new} times new state");
    assert!(saw_old > 0 && saw_new > 0, "old {saw_old} new {saw_new}");
    let (code, out) = restore(&good, &target, &["--force"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(tree(&target), new);
}
