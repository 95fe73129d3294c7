//! `chatrelay backup` / `chatrelay restore` (issue 14): a relay with
//! accounts, folders, flags, keywords, a device token, inline and file
//! bodies and its DKIM key is backed up while a client keeps appending,
//! restored into a fresh data folder, and the relay started on it serves
//! the same state with the old passwords and signs with the same key.
//! Addresses 127.0.0.40–43; clients connect from 127.0.0.47 so the archive
//! can be searched for a client address.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{quote, run_cli, Imap, Relay, TempDir, PASSWORD};
use support::{start_named, DnsServer, TestCa, Zone};

const CLIENT_IP: &str = "127.0.0.47";
const CLI: Duration = Duration::from_secs(120);

/// Bind-before-connect from [`CLIENT_IP`] (rustix: std cannot).
fn tcp_from(dst: SocketAddr) -> TcpStream {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(
        &fd,
        &format!("{CLIENT_IP}:0").parse::<SocketAddr>().unwrap(),
    )
    .unwrap();
    connect(&fd, &dst).unwrap();
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(common::IO_TIMEOUT)).unwrap();
    s
}

fn login(r: &Relay, addr: &str, pass: &str) -> Imap {
    let mut c = Imap::connect_tls_over(tcp_from(r.sock(993)));
    let resp = c.login(addr, pass);
    assert!(resp.ok(), "login {addr}: {resp:?}");
    c
}

fn msg(id: &str, body_len: usize) -> Vec<u8> {
    let mut m =
        format!("From: a@x\r\nTo: b@x\r\nMessage-ID: <{id}@backup.test>\r\nSubject: [...]\r\n\r\n")
            .into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\r\n";
    while m.len() < body_len {
        m.extend_from_slice(line);
    }
    m
}

/// Every mailbox of the logged-in user except `skip`: its UIDVALIDITY and
/// each message's UID, flags, internal date and full bytes.
fn dump(c: &mut Imap, skip: &str) -> BTreeMap<String, Vec<String>> {
    let list = c.cmd("LIST \"\" \"*\"");
    assert!(list.ok(), "{list:?}");
    let mut out = BTreeMap::new();
    for l in list.lines() {
        let Some(i) = l.rfind(" \"/\" ") else {
            continue;
        };
        let name = l[i + 5..].trim().trim_matches('"').to_string();
        if name == skip {
            continue;
        }
        let sel = c.cmd(&format!("EXAMINE {}", quote(&name)));
        assert!(sel.ok(), "{sel:?}");
        let validity = sel
            .lines()
            .into_iter()
            .find(|l| l.contains("UIDVALIDITY"))
            .unwrap_or_default();
        let f = c.cmd("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])");
        assert!(f.ok(), "{f:?}");
        let mut v = vec![validity];
        v.extend(
            f.untagged
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        );
        out.insert(name, v);
    }
    out
}

fn load_uids(c: &mut Imap) -> Vec<String> {
    let s = c.cmd("EXAMINE Load");
    assert!(s.ok(), "{s:?}");
    let r = c.cmd("UID SEARCH ALL");
    r.lines()
        .iter()
        .filter_map(|l| l.strip_prefix("* SEARCH"))
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn backup_cli(cfg: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "backup",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, err) = run_cli(&args, CLI);
    (code, err)
}

#[test]
fn round_trip_under_load_with_encryption_and_dkim() {
    let tmp = TempDir::new("backup-ca");
    let ca = TestCa::new(tmp.path());
    let dns = DnsServer::start("127.0.0.40", Zone::default());
    let mut a = start_named(41, "backup-a.test", &dns, &ca, true, "");
    let b = start_named(42, "backup-b.test", &dns, &ca, true, "");
    let alice = a.addr("alice");
    let bob = a.addr("bob");

    // State: folders, flags, keywords, inline and file bodies, a token.
    let mut c = login(&a.r, &alice, PASSWORD);
    for f in ["Archive", "Sent", "Deep/Nested"] {
        assert!(c.cmd(&format!("CREATE {}", quote(f))).ok());
    }
    let date = 1_700_000_000;
    assert!(c
        .append_dated("INBOX", "\\Seen", date, &msg("small-1", 300))
        .ok());
    assert!(c
        .append_dated(
            "INBOX",
            "\\Flagged $Label1",
            date + 60,
            &msg("small-2", 2000)
        )
        .ok());
    assert!(c
        .append_dated(
            "Archive",
            "\\Seen \\Answered",
            date + 120,
            &msg("big-1", 200_000)
        )
        .ok());
    assert!(c
        .append_dated("Deep/Nested", "", date + 180, &msg("big-2", 70_000))
        .ok());
    assert!(c
        .append_dated("Sent", "\\Seen $Forwarded", date + 240, &msg("sent-1", 500))
        .ok());
    c.select("INBOX");
    assert!(c.cmd("UID STORE 1 +FLAGS (\\Answered)").ok());
    c.set_device_token("token-alice-1");
    let mut cb = login(&a.r, &bob, PASSWORD);
    assert!(cb.cmd("CREATE Load").ok());
    assert!(cb.append("INBOX", "", &msg("bob-1", 100_000)).ok());
    let before_alice = dump(&mut c, "");
    let before_bob = dump(&mut cb, "Load");

    // Load: bob's client appends without pause until the backup is done.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU32::new(0));
    let load = {
        let (stop, acked) = (stop.clone(), acked.clone());
        let sock = a.r.sock(993);
        let bob = bob.clone();
        std::thread::spawn(move || {
            let mut c = Imap::connect_tls_over(tcp_from(sock));
            assert!(c.login(&bob, PASSWORD).ok());
            let t0 = Instant::now();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst)
                && i < 5000
                && t0.elapsed() < Duration::from_secs(120)
            {
                let size = if i % 5 == 0 { 80_000 } else { 1500 };
                let r = c.append("Load", "\\Seen", &msg(&format!("load-{i}"), size));
                assert!(r.ok(), "{r:?}");
                acked.fetch_add(1, Ordering::SeqCst);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let pass_file = tmp.path().join("pass");
    std::fs::write(&pass_file, "correct horse battery staple\n").unwrap();
    let archive = tmp.path().join("a.tar.age");
    let acked_before = acked.load(Ordering::SeqCst);
    let before_load = load_uids(&mut cb);
    assert!(before_load.len() as u32 >= acked_before);
    let (code, err) = backup_cli(
        &a.r.config_path(),
        &archive,
        &["--passphrase-file", pass_file.to_str().unwrap()],
    );
    let acked_during = acked.load(Ordering::SeqCst) - acked_before;
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    assert_eq!(
        code,
        Some(0),
        "backup failed: {err}\nrelay:\n{}",
        a.r.stderr()
    );
    assert!(a.r.stderr().contains("backup: "), "{}", a.r.stderr());
    eprintln!("appends acknowledged during the backup: {acked_during}");
    let raw = std::fs::read(&archive).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"), "not encrypted");

    // The relay keeps serving. A plaintext archive holds no client address.
    a.r.assert_serving();
    let plain = tmp.path().join("plain.tar");
    let (code, err) = backup_cli(&a.r.config_path(), &plain, &[]);
    assert_eq!(code, Some(0), "{err}");
    let bytes = std::fs::read(&plain).unwrap();
    assert!(contains(&bytes, b"chatrelay-backup/MANIFEST"));
    assert!(
        contains(&bytes, b"load-3@backup.test"),
        "messages are in it"
    );
    assert!(
        !contains(&bytes, CLIENT_IP.as_bytes()),
        "the archive holds the client address"
    );
    // Then the relay goes away (the card died).
    let key = std::fs::read(a.r.data_dir().join("dkim/opendkim.key")).unwrap();
    a.r.kill9();

    // Restore into a fresh folder (needs the passphrase) and start there.
    let dir = TempDir::new("backup-restored");
    let data = dir.path().join("data");
    let (code, out, err) = run_cli(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        CLI,
    );
    assert_eq!(code, Some(1), "restore without passphrase: {out} {err}");
    assert!(err.contains("passphrase"), "{err}");
    let (code, out, err) = run_cli(
        &[
            "restore",
            archive.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--passphrase-file",
            pass_file.to_str().unwrap(),
            "--config-out",
            dir.path().join("restored.ini").to_str().unwrap(),
        ],
        CLI,
    );
    assert_eq!(code, Some(0), "restore: {out} {err}");
    // The archive carried the config it was made with.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("restored.ini")).unwrap(),
        std::fs::read_to_string(a.r.config_path()).unwrap()
    );
    assert_eq!(std::fs::read(data.join("dkim/opendkim.key")).unwrap(), key);
    // No client address anywhere in what was restored.
    for f in walk(&data) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, CLIENT_IP.as_bytes()),
            "{} holds the client address",
            f.display()
        );
    }

    let a2 = Relay::start_in(41, dir, &a.r.extra);
    let mut c = login(&a2, &alice, PASSWORD);
    assert_eq!(dump(&mut c, ""), before_alice);
    assert_eq!(c.device_tokens().as_deref(), Some("token-alice-1"));
    let mut cb = login(&a2, &bob, PASSWORD);
    assert_eq!(dump(&mut cb, "Load"), before_bob);
    let after_load = load_uids(&mut cb);
    for u in &before_load {
        assert!(after_load.contains(u), "acknowledged UID {u} lost");
    }
    // The accounts are the old ones: a wrong password does not create anew.
    let mut w = Imap::connect_tls_over(tcp_from(a2.sock(993)));
    assert!(!w.login(&alice, "another-password-9").ok());

    // The restored relay signs with the old key: relay B checks the DKIM
    // signature against the record published for the original.
    let from = alice.clone();
    let to = b.addr("carol");
    let mut inbox = b.inbox("carol");
    let r = support::submit_as(
        a2.sock(465),
        &from,
        &[&to],
        &support::encrypted(&from, &to, "after-restore"),
    );
    assert_eq!(r.code, 250, "{r:?}");
    inbox
        .wait_for("<after-restore@chatrelay.test>", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("not delivered; A2:\n{}\nB:\n{}", a2.stderr(), b.r.stderr()));
    a2.assert_no_panic();
}

fn walk(d: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else if e.file_type().unwrap().is_file() {
            out.push(e.path());
        }
    }
    out
}
