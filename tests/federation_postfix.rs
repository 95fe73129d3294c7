//! Interop with a classic server: Debian's Postfix + OpenDKIM as
//! `classic.test` on 127.0.0.227 (tests/postfix/start.sh), our relay
//! `ours.test` on 127.0.0.228, the test DNS server on 127.0.0.229. Postfix
//! routes `ours.test` by `transport_maps` (no DNS) with verified TLS against
//! the test CA; we find `classic.test` and its DKIM key through the test DNS.
//! Needs `tests/postfix/install.sh` to have run.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use support::{encrypted, plaintext, start_named, DnsServer, Smtp, TestCa, Zone};

const PF_IP: &str = "127.0.0.227";
const DELIVERY: Duration = Duration::from_secs(20);

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/postfix")
        .join(name)
}

/// Run a helper script with a deadline; panics on failure or timeout.
fn run(name: &str, args: &[&str], wait: Duration) {
    let mut child = Command::new("sh")
        .arg(script(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let deadline = Instant::now() + wait;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(
                st.success(),
                "{name} failed ({st}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish within {wait:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Postfix + OpenDKIM peer; stopped on drop.
struct Postfix {
    dir: PathBuf,
    opendkim: Option<std::process::Child>,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if let Some(mut c) = self.opendkim.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let d = self.dir.to_str().unwrap().to_string();
        let _ = std::panic::catch_unwind(|| run("stop.sh", &[&d], Duration::from_secs(20)));
    }
}

impl Postfix {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// The DKIM TXT record opendkim-genkey wrote (its quoted strings joined).
    fn dkim_record(&self) -> String {
        let t = std::fs::read_to_string(self.dir.join("dkim/mail.txt")).unwrap();
        t.split('"').skip(1).step_by(2).collect()
    }

    /// Every message in pat's Maildir.
    fn mailbox(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.dir.join("mail/pat").join(sub)) {
                for e in rd.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    fn wait_mailbox(&self, needle: &str, d: Duration) -> String {
        let deadline = Instant::now() + d;
        loop {
            if let Some(m) = self.mailbox().into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            if Instant::now() > deadline {
                panic!(
                    "{needle:?} not in pat's mailbox; Postfix log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Hand a message to Postfix (from the test, as a trusted client).
    fn inject(&self, mail_from: &str, rcpt: &str, msg: &[u8]) {
        let mut c = Smtp::connect(format!("{PF_IP}:25").parse().unwrap());
        assert_eq!(c.cmd("EHLO client.test").code, 250);
        let r = c.transaction(mail_from, &[rcpt], msg);
        assert_eq!(r.code, 250, "Postfix refused: {r:?}");
        let _ = c.cmd("QUIT");
    }
}

fn bounce_shaped(from_domain: &str, to: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@{from_domain}>\r\nTo: <{to}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}@chatrelay.test>\r\n\
         Date: Tue, 01 Apr 2025 10:00:00 +0000\r\nAuto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {from_domain}\r\n\r\n\
         Final-Recipient: rfc822; x@{from_domain}\r\nAction: failed\r\nStatus: 5.0.0\r\n\r\n--B--\r\n"
    )
    .into_bytes()
}

#[test]
fn postfix_peer_both_ways() {
    let t0 = Instant::now();
    assert!(
        Path::new("/usr/sbin/postfix").exists() && Path::new("/usr/sbin/opendkim").exists(),
        "Postfix/OpenDKIM missing: run tests/postfix/install.sh"
    );
    let tmp = TempDir::new("fed-postfix");
    let ca = TestCa::new(&tmp.path().join("ca"));
    let dns = DnsServer::start("127.0.0.229", Zone::default());
    let ours = start_named(228, "ours.test", &dns, &ca, true, "");
    let mut alice = ours.inbox("alice");

    let (pf_cert, pf_key) = ca.issue("classic.test");
    let mut pf = Postfix {
        dir: tmp.path().join("postfix"),
        opendkim: None,
    };
    run(
        "start.sh",
        &[
            pf.dir.to_str().unwrap(),
            PF_IP,
            "classic.test",
            "ours.test",
            &ours.r.ip(),
            ca.ca_path().to_str().unwrap(),
            pf_cert.to_str().unwrap(),
            pf_key.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    pf.opendkim = Some(
        Command::new("opendkim")
            .arg("-f")
            .arg("-x")
            .arg(pf.dir.join("opendkim.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("opendkim"),
    );
    assert!(
        common::wait_until(Duration::from_secs(15), || std::net::TcpStream::connect((
            PF_IP, 8891
        ))
        .is_ok()),
        "OpenDKIM not listening"
    );
    {
        let mut z = dns.zone.lock().unwrap();
        z.mx("classic.test", 10, "classic.test");
        z.a("classic.test", PF_IP);
        z.txt("mail._domainkey.classic.test", &pf.dkim_record());
    }
    // Postfix is up once its port answers.
    assert!(
        common::wait_until(Duration::from_secs(15), || std::net::TcpStream::connect((
            PF_IP, 25
        ))
        .is_ok()),
        "Postfix not listening; log:\n{}",
        pf.log()
    );

    // Ours → Postfix: no /mxdeliv there, so SMTP with verified STARTTLS.
    ours.submit("alice", "pat@classic.test", "pf-out");
    let m = pf.wait_mailbox("<pf-out@chatrelay.test>", DELIVERY);
    assert!(m.contains("-----BEGIN PGP MESSAGE-----"), "{m}");
    assert!(m.contains("d=ours.test"), "not DKIM-signed by us: {m}");
    assert!(
        m.contains("(using TLSv1."),
        "not received over TLS by Postfix: {m}"
    );
    assert!(
        pf.log().contains("Trusted TLS connection established from")
            || pf.log().contains("TLS connection established from"),
        "{}",
        pf.log()
    );

    // Postfix → ours, DKIM-signed by OpenDKIM, encrypted: accepted.
    let alice_addr = ours.addr("alice");
    pf.inject(
        "pat@classic.test",
        &alice_addr,
        &encrypted("pat@classic.test", &alice_addr, "pf-signed"),
    );
    let m = alice
        .wait_for("<pf-signed@chatrelay.test>", DELIVERY)
        .unwrap_or_else(|| {
            panic!(
                "not delivered; Postfix log:\n{}\nrelay:\n{}",
                pf.log(),
                ours.r.stderr()
            )
        });
    assert!(!m.to_ascii_lowercase().contains("dkim-signature"), "{m}");
    assert!(!m.contains("Received:"), "{m}");
    assert!(
        pf.log().contains("Verified TLS connection established to"),
        "Postfix did not verify our certificate:\n{}",
        pf.log()
    );

    // Unsigned (From domain OpenDKIM does not sign for): 554, bounced by
    // Postfix to pat.
    pf.inject(
        "pat@classic.test",
        &alice_addr,
        &encrypted("someone@unsigned.test", &alice_addr, "pf-unsigned"),
    );
    let dsn = pf.wait_mailbox("No DKIM signature found", DELIVERY);
    assert!(dsn.contains("554 5.7.1"), "{dsn}");
    assert!(dsn.contains("pf-unsigned"), "{dsn}");

    // Signed plaintext: 523.
    pf.inject(
        "pat@classic.test",
        &alice_addr,
        &plaintext("pat@classic.test", &alice_addr, "pf-plain"),
    );
    let dsn = pf.wait_mailbox("Encryption Needed", DELIVERY);
    assert!(dsn.contains("523"), "{dsn}");
    assert!(dsn.contains("pf-plain"), "{dsn}");

    // A bounce from Postfix's mailer-daemon (null sender), signed: accepted.
    pf.inject(
        "",
        &alice_addr,
        &bounce_shaped("classic.test", &alice_addr, "pf-bounce"),
    );
    alice
        .wait_for("<pf-bounce@chatrelay.test>", DELIVERY)
        .unwrap_or_else(|| panic!("bounce not accepted; Postfix log:\n{}", pf.log()));

    for id in ["pf-unsigned", "pf-plain"] {
        assert_eq!(alice.count(id), 0, "{id} stored");
    }
    assert_eq!(alice.count("<pf-signed@chatrelay.test>"), 1);
    assert_eq!(
        pf.mailbox()
            .iter()
            .filter(|m| m.contains("<pf-out@"))
            .count(),
        1
    );
    let mut ours = ours;
    ours.r.assert_serving();
    assert!(
        t0.elapsed() < Duration::from_secs(55),
        "took {:?}",
        t0.elapsed()
    );
}
