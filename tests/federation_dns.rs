//! Federation between named-domain relays (spec §5.3–5.5, §6.2, §13, §14):
//! a test DNS server on 127.0.0.225 publishes MX, A and the DKIM key records,
//! a test CA issues the certificates of `relay1.test` and `relay2.test`
//! (trusted through `tls_extra_ca`: the verified TLS path), `_relay3.test`
//! is self-signed (the relaxed path) and `relay4.test` has a certificate
//! nobody trusts. Addresses 127.0.0.222–226.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::TempDir;
use support::{encrypted, plaintext, start_named as start, DnsServer, Smtp, TestCa, Zone};

const DELIVERY: Duration = Duration::from_secs(20);

#[test]
fn named_relays_with_dns_dkim_and_verified_tls() {
    let t0 = Instant::now();
    let tmp = TempDir::new("fed-ca");
    let ca = TestCa::new(tmp.path());
    let mut zone = Zone::default();
    zone.null_mx("nullmx.test");
    zone.a("nullmx.test", "127.0.0.226");
    let dns = DnsServer::start("127.0.0.225", zone);

    // relay1: HTTPS off, so mail to it takes SMTP + verified STARTTLS.
    let r1 = start(
        222,
        "relay1.test",
        &dns,
        &ca,
        true,
        "https_port = 0\nmax_queue_lifetime = 6\n",
    );
    let r2 = start(223, "relay2.test", &dns, &ca, true, "");
    let r3 = start(224, "_relay3.test", &dns, &ca, false, "");
    let r4 = start(226, "relay4.test", &dns, &ca, false, "");
    let mut alice = r1.inbox("alice");
    let mut bob = r2.inbox("bob");
    let mut carol = r3.inbox("carol");
    let mut dave = r4.inbox("dave");

    // relay1 → relay2 (HTTPS /mxdeliv, verified), relay2 → relay1 (SMTP,
    // verified STARTTLS), relay1 ↔ _relay3 (relaxed).
    r1.submit("alice", &r2.addr("bob"), "dns-12");
    r2.submit("bob", &r1.addr("alice"), "dns-21");
    r1.submit("alice", &r3.addr("carol"), "dns-13");
    r3.submit("carol", &r1.addr("alice"), "dns-31");
    let got = [
        (&mut bob, "dns-12", &r1),
        (&mut alice, "dns-21", &r2),
        (&mut carol, "dns-13", &r1),
    ];
    for (inbox, id, sender) in got {
        let m = inbox
            .wait_for(&format!("<{id}@chatrelay.test>"), DELIVERY)
            .unwrap_or_else(|| panic!("{id} not delivered; sender stderr:\n{}", sender.r.stderr()));
        assert!(m.contains("-----BEGIN PGP MESSAGE-----"), "{m}");
        // Signed by the sender (the receiver refuses unsigned mail from a
        // named domain), verified, then stripped before storage.
        assert!(!m.to_ascii_lowercase().contains("dkim-signature"), "{m}");
        assert!(!m.contains("Authentication-Results"), "{m}");
    }
    alice
        .wait_for("<dns-31@chatrelay.test>", DELIVERY)
        .unwrap_or_else(|| panic!("dns-31 not delivered; stderr:\n{}", r3.r.stderr()));

    // Null MX and NXDOMAIN bounce at once; relay4's untrusted certificate
    // is never accepted: retried, then expired.
    r1.submit("alice", "x@nullmx.test", "dns-null");
    r1.submit("alice", "y@nx.test", "dns-nx");
    r1.submit("alice", &r4.addr("dave"), "dns-untrusted");
    let dsn = alice
        .wait_for("<x@nullmx.test>", DELIVERY)
        .expect("null MX bounce");
    assert!(dsn.contains("null MX"), "{dsn}");
    assert!(dsn.contains("MAILER-DAEMON@relay1.test"), "{dsn}");
    assert!(dsn.contains("Auto-Submitted: auto-replied"), "{dsn}");
    let dsn = alice
        .wait_for("<y@nx.test>", DELIVERY)
        .expect("NXDOMAIN bounce");
    assert!(dsn.contains("does not exist"), "{dsn}");
    let dsn = alice
        .wait_for("<dave@relay4.test>", DELIVERY)
        .unwrap_or_else(|| panic!("no bounce for relay4; stderr:\n{}", r1.r.stderr()));
    assert!(dsn.contains("expired after"), "{dsn}");
    assert!(dsn.contains("UnknownIssuer"), "{dsn}");
    assert_eq!(dave.messages().len(), 0, "delivered over unverified TLS");

    // Port 25 of relay2, as a peer claiming relay1.test.
    let from = r1.addr("mallory");
    let to = r2.addr("bob");
    let key =
        chatrelay::dkim::SigningKey::load_or_generate(&r1.r.data_dir(), "opendkim", false).unwrap();
    let sign = |m: &[u8]| -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut out = chatrelay::dkim::sign(m, "relay1.test", "opendkim", &key, now)
            .unwrap()
            .into_bytes();
        out.extend_from_slice(m);
        out
    };
    let mut c = Smtp::mx_ready(r2.r.sock(25));
    let r = c.transaction(&from, &[&to], &encrypted(&from, &to, "dns-unsigned"));
    assert_eq!(r.line(), "554 5.7.1 No DKIM signature found", "{r:?}");
    let signed = sign(&encrypted(&from, &to, "dns-tampered"));
    let tampered = String::from_utf8(signed)
        .unwrap()
        .replace("Subject: [...]", "Subject: [..!]");
    let r = c.transaction(&from, &[&to], tampered.as_bytes());
    assert_eq!(r.line(), "554 5.7.1 No valid DKIM signature found", "{r:?}");
    // Plaintext is refused before DKIM matters.
    let r = c.transaction(&from, &[&to], &sign(&plaintext(&from, &to, "dns-plain")));
    assert!(r.line().starts_with("523 "), "{r:?}");
    // Correctly signed by relay1's key → accepted, signature stripped.
    let r = c.transaction(&from, &[&to], &sign(&encrypted(&from, &to, "dns-signed25")));
    assert_eq!(r.code, 250, "{r:?}");
    let _ = c.cmd("QUIT");
    let m = bob
        .wait_for("<dns-signed25@chatrelay.test>", Duration::from_secs(5))
        .expect("signed message stored");
    assert!(!m.to_ascii_lowercase().contains("dkim-signature"), "{m}");
    for id in ["dns-unsigned", "dns-tampered", "dns-plain"] {
        assert_eq!(bob.count(id), 0, "{id} stored");
    }
    // Everything arrived exactly once.
    assert_eq!(bob.count("<dns-12@chatrelay.test>"), 1);
    assert_eq!(alice.count("<dns-21@chatrelay.test>"), 1);
    for mut r in [r1, r2, r3, r4] {
        r.r.assert_serving();
    }
    assert!(
        t0.elapsed() < Duration::from_secs(55),
        "took {:?}",
        t0.elapsed()
    );
}
