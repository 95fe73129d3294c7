//! `chatrelay import-upstream` against data written by a real Dovecot
//! (Debian's dovecot-imapd; tests/dovecot/install.sh), laid out as
//! upstream chatmail lays it out (`mail_location = maildir:<dir>/%u`,
//! `zlib_save = gz`, a `password` file per address with a hash from
//! `doveadm pw -s SHA512-CRYPT`, opendkim-genkey's key): messages saved
//! with `doveadm save` and IMAP APPEND, folders and flags set over IMAP.
//! Python's imaplib then lists both servers' accounts the same way.
//! Dovecot on 127.0.0.45 (a private instance, stopped at the end); the
//! relay on 127.0.0.46.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{quote, run_cli, Imap, Relay, TempDir};

const DOMAIN: &str = "_import.test";
const DOVECOT_IP: &str = "127.0.0.45";
const DOVECOT_PORT: u16 = 11143;

struct Dovecot {
    child: Child,
    conf: PathBuf,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn doveadm(conf: &Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    use std::io::Write;
    let mut c = Command::new("doveadm")
        .arg("-c")
        .arg(conf)
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doveadm (apt dovecot-core; scripts/install-test-deps.sh)");
    let mut i = c.stdin.take().unwrap();
    if let Some(b) = stdin {
        i.write_all(b).unwrap();
    }
    drop(i);
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "doveadm {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn start_dovecot(t: &Path, users: &[(&str, &str)]) -> Dovecot {
    let mail = t.join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::create_dir_all(t.join("run")).unwrap();
    let conf = t.join("dovecot.conf");
    let passwd = t.join("users");
    // Only doveadm pw here: it needs no config of ours.
    let mut lines = String::new();
    let mut hashes = Vec::new();
    for (addr, pw) in users {
        let o = Command::new("doveadm")
            .args(["pw", "-s", "SHA512-CRYPT", "-p", pw])
            .output()
            .expect("doveadm");
        assert!(o.status.success());
        let h = String::from_utf8(o.stdout).unwrap().trim().to_string();
        assert!(h.starts_with("{SHA512-CRYPT}$6$"), "{h}");
        lines.push_str(&format!("{addr}:{h}\n"));
        hashes.push(h);
    }
    std::fs::write(&passwd, lines).unwrap();
    std::fs::write(
        &conf,
        format!(
            "protocols = imap\nlisten = {DOVECOT_IP}\nbase_dir = {run}\nstate_dir = {run}\n\
             log_path = {t}/dovecot.log\nssl = no\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain\nmail_location = maildir:{mail}/%u\n\
             mail_plugins = zlib\nplugin {{\n  zlib_save = gz\n}}\n\
             namespace inbox {{\n  inbox = yes\n}}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=SHA512-CRYPT username_format=%u {passwd}\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={mail}/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = {DOVECOT_IP}\n    port = {DOVECOT_PORT}\n  }}\n\
               inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service lmtp {{\n  unix_listener lmtp {{\n    mode = 0600\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = 0\n  }}\n}}\n\
             service submission-login {{\n  inet_listener submission {{\n    port = 0\n  }}\n}}\n",
            run = t.join("run").display(),
            t = t.display(),
            mail = mail.display(),
            passwd = passwd.display(),
        ),
    )
    .unwrap();
    // upstream's layout: the hash in <mailboxes_dir>/<addr>/password
    for ((addr, _), h) in users.iter().zip(hashes) {
        let dir = mail.join(addr);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("password"), h).unwrap();
    }
    Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(&mail)
        .status()
        .unwrap();
    let child = Command::new("dovecot")
        .args(["-F", "-c"])
        .arg(&conf)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dovecot (apt dovecot-imapd; scripts/install-test-deps.sh)");
    let d = Dovecot { child, conf };
    let ok = common::wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect((DOVECOT_IP, DOVECOT_PORT)).is_ok()
    });
    assert!(
        ok,
        "dovecot did not listen; log:\n{}",
        std::fs::read_to_string(t.join("dovecot.log")).unwrap_or_default()
    );
    d
}

fn msg(id: &str, len: usize) -> Vec<u8> {
    // LF line ends, as mail arrives at Dovecot through LMTP / doveadm.
    let mut m = format!(
        "From: x@{DOMAIN}\nTo: y@{DOMAIN}\nMessage-ID: <{id}@import.test>\nSubject: [...]\n\n"
    )
    .into_bytes();
    while m.len() < len {
        m.extend_from_slice(b"-----BEGIN PGP MESSAGE----- stand-in line of an encrypted body\n");
    }
    m
}

fn imap_dump(port: u16, ip: &str, tls: bool, user: &str, pass: &str) -> String {
    let o = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/dovecot/imap_dump.py"
        ))
        .args([
            ip,
            &port.to_string(),
            if tls { "tls" } else { "plain" },
            user,
            pass,
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "imap_dump {ip}:{port} {user}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn dovecot_maildirs_import_with_passwords_folders_and_flags() {
    let t = TempDir::new("upstream");
    let users = [
        ("alice01@_import.test", "alice-password-1"),
        ("bobby02@_import.test", "bobby-password-2"),
        ("x@_import.test", "short-name-pass"),
    ];
    let dove = start_dovecot(t.path(), &users);
    let dp = DOVECOT_PORT;
    // alice: doveadm save, APPEND into folders, STORE flags and keywords.
    doveadm(
        &dove.conf,
        &["save", "-u", users[0].0, "-m", "INBOX"],
        Some(&msg("saved-1", 400)),
    );
    let mut c = Imap::connect_plain(format!("{DOVECOT_IP}:{dp}").parse().unwrap());
    assert!(c.login(users[0].0, users[0].1).ok());
    for f in ["Archive", "Deep", "Deep.Nested", "Sent"] {
        let r = c.cmd(&format!("CREATE {}", quote(f)));
        assert!(r.ok(), "{r:?}");
    }
    assert!(c.append("INBOX", "\\Seen", &msg("a-1", 1000)).ok());
    assert!(c.append("INBOX", "", &msg("a-2", 120_000)).ok());
    assert!(c
        .append("Archive", "\\Seen \\Answered", &msg("a-3", 3000))
        .ok());
    assert!(c.append("Deep.Nested", "\\Draft", &msg("a-4", 500)).ok());
    assert!(c.append("Sent", "\\Seen", &msg("a-5", 500)).ok());
    assert!(c.append("INBOX", "", &msg("too-big", 300_000)).ok());
    c.select("INBOX");
    assert!(c.cmd("UID STORE 2 +FLAGS (\\Flagged $Label1 Work)").ok());
    assert!(c.cmd("UID STORE 3 +FLAGS ($Forwarded)").ok());
    let _ = c.cmd("LOGOUT");
    let mut c = Imap::connect_plain(format!("{DOVECOT_IP}:{dp}").parse().unwrap());
    assert!(c.login(users[1].0, users[1].1).ok());
    assert!(c.append("INBOX", "\\Seen \\Flagged", &msg("b-1", 800)).ok());
    let _ = c.cmd("LOGOUT");
    doveadm(
        &dove.conf,
        &["save", "-u", users[2].0, "-m", "INBOX"],
        Some(&msg("x-1", 400)),
    );
    let before: Vec<String> = users[..2]
        .iter()
        .map(|(u, p)| imap_dump(dp, DOVECOT_IP, false, u, p))
        .collect();
    drop(dove); // stopped before its files are read, as on a real migration

    let mail = t.path().join("mail");
    let amail = mail.join(users[0].0);
    // Dovecot compressed what it stored (zlib_save = gz), like upstream.
    let cur = amail.join("cur");
    let any = std::fs::read_dir(&cur)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        &std::fs::read(&any).unwrap()[..2],
        &[0x1f, 0x8b],
        "not gzip"
    );
    // Odd names: no info part, a hidden file, a name that is not UTF-8,
    // a Maildir folder name with an empty part; a device token.
    std::fs::write(cur.join("odd name without info"), msg("odd-1", 300)).unwrap();
    std::fs::write(cur.join(".hidden"), msg("hidden", 300)).unwrap();
    {
        use std::os::unix::ffi::OsStrExt;
        let n = std::ffi::OsStr::from_bytes(b"bad-\xff-name:2,S");
        std::fs::write(cur.join(n), msg("nonutf8", 300)).unwrap();
    }
    std::fs::create_dir_all(amail.join(".a..b/cur")).unwrap();
    std::fs::write(
        amail.join("metadata.json"),
        format!(
            r#"{{"devicetoken": {{"tok-alice": {}}}}}"#,
            common::now_unix() - 3600
        ),
    )
    .unwrap();
    let k = opendkim_key(t.path());
    let dkim = t.path().join("opendkim.private");

    // Import into a fresh data folder, then start the relay on it.
    let rdir = TempDir::new("upstream-relay");
    let extra = format!(
        "mail_domain = {DOMAIN}\nusername_min_length = 3\nusername_max_length = 20\nmax_message_size = 200000\n"
    );
    let cfgp = rdir.path().join("import.ini");
    std::fs::write(
        &cfgp,
        common::config_text(46, &rdir.path().join("data"), &extra),
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &[
            "import-upstream",
            mail.to_str().unwrap(),
            "--config",
            cfgp.to_str().unwrap(),
            "--dkim-key",
            dkim.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    eprintln!("{out}");
    assert!(out.contains("imported 2 accounts"), "{out}");
    assert!(
        out.contains("x@_import.test: account skipped (user name must be 3..20"),
        "{out}"
    );
    assert!(
        out.contains("too-big") || out.contains("larger than max_message_size"),
        "{out}"
    );
    assert!(out.contains(".a..b"), "{out}");
    assert!(out.contains("1 device tokens"), "{out}");
    assert_eq!(
        std::fs::read(rdir.path().join("data/dkim/opendkim.key")).unwrap(),
        k
    );

    let r = Relay::start_in(46, rdir, &extra);
    let after: Vec<String> = users[..2]
        .iter()
        .map(|(u, p)| imap_dump(993, "127.0.0.46", true, u, p))
        .collect();
    // bob: identical. alice: identical but for the refused big message
    // and the odd-named one (imported without flags).
    assert_eq!(after[1], before[1]);
    let hash = |m: &[u8]| -> String {
        ring_sha256(&crlf(m))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let (odd_hash, bad_hash) = (hash(&msg("odd-1", 300)), hash(&msg("nonutf8", 300)));
    let too_big_hash = hash(&msg("too-big", 300_000));
    let want: Vec<&str> = before[0]
        .lines()
        .filter(|l| !l.contains(&too_big_hash))
        .collect();
    let got: Vec<&str> = after[0]
        .lines()
        .filter(|l| !l.contains(&odd_hash) && !l.contains(&bad_hash))
        .collect();
    assert_eq!(got, want, "before:\n{}\nafter:\n{}", before[0], after[0]);
    assert!(
        after[0]
            .lines()
            .any(|l| l.starts_with(&format!("INBOX\t{odd_hash}\t\t"))),
        "{}",
        after[0]
    );
    // The name that is not UTF-8 still carries its flags.
    assert!(
        after[0]
            .lines()
            .any(|l| l.starts_with(&format!("INBOX\t{bad_hash}\t\\Seen\t"))),
        "{}",
        after[0]
    );
    assert!(
        before[0].contains("Deep/Nested") && before[0].contains("$Label1"),
        "{}",
        before[0]
    );
    // The token arrived; a wrong password does not get in.
    let mut c = r.imaps();
    assert!(c.login(users[0].0, users[0].1).ok());
    assert_eq!(c.device_tokens().as_deref(), Some("tok-alice"));
    let mut w = r.imaps();
    assert!(!w.login(users[1].0, "not-the-password").ok());
    r.assert_no_panic();
}

fn crlf(b: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    for &c in b {
        if c == b'\n' {
            o.push(b'\r');
        }
        o.push(c);
    }
    o
}

fn ring_sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

/// The key upstream publishes: `opendkim-genkey -s opendkim` (PEM),
/// as cmdeploy's opendkim deployer runs it.
fn opendkim_key(dir: &Path) -> Vec<u8> {
    let st = Command::new("opendkim-genkey")
        .arg("-D")
        .arg(dir)
        .args(["-d", DOMAIN, "-s", "opendkim"])
        .status()
        .expect("opendkim-genkey (apt opendkim-tools)");
    assert!(st.success());
    let k = std::fs::read(dir.join("opendkim.private")).unwrap();
    // PKCS#1 from older OpenSSL, PKCS#8 from OpenSSL 3 (Debian 12).
    assert!(
        k.starts_with(b"-----BEGIN RSA PRIVATE KEY-----")
            || k.starts_with(b"-----BEGIN PRIVATE KEY-----")
    );
    k
}
