//! The self-check and certificate sections of the LAN `/status` page
//! (issue 12 `/status`, issue 13 item 4): the relay's background run of
//! `chatrelay doctor` against a test DNS server, shown with ok / problem /
//! what to do and its age; the served certificate's names, issuer and
//! expiry; HTML-escaped DNS answers; the page stays fast while a slow
//! self-check runs and asking again is rate limited. Addresses 127.0.0.170–173.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use support::{DnsServer, Zone};

const PUBLIC: &str = "93.184.216.34";

/// `/status` once the first self-check has finished.
fn status_after_check(r: &Relay, host: &str) -> String {
    let mut body = String::new();
    let done = wait_until(Duration::from_secs(60), || {
        let resp = https_get(r.sock(443), host, "/status");
        assert_eq!(resp.status, 200, "{resp:?}");
        body = resp.body_str();
        body.contains("Checked ")
    });
    assert!(done, "no self-check result on /status:\n{body}");
    body
}

/// The `<li>` of check `id`.
fn item<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<li id=\"check-{id}\">"))
        .unwrap_or_else(|| panic!("no check {id} on the page:\n{page}"));
    let len = page[start..].find("</li>").unwrap();
    &page[start..start + len]
}

fn state<'a>(page: &'a str, id: &str) -> &'a str {
    let i = item(page, id);
    ["ok", "problem", "unknown"]
        .into_iter()
        .find(|w| i.contains(&format!(" {w}</span>")))
        .unwrap_or_else(|| panic!("no state in {i}"))
}

/// `2124-01-01T00:00:00Z` from Unix seconds (computed here, not by the relay).
fn utc(t: i64) -> String {
    let (y, m, d, s) = civil(t);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// (SAN names, not_after) of the first certificate in a PEM file.
fn cert_facts(pem_path: &std::path::Path) -> (Vec<String>, i64) {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(pem_path).unwrap();
    let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
    let mut names = Vec::new();
    for n in &c
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
    {
        if let x509_parser::extensions::GeneralName::DNSName(d) = n {
            names.push(d.to_string());
        }
    }
    (names, c.validity().not_after.timestamp())
}

fn doctor_last(r: &Relay) -> String {
    let out = Command::new(bin())
        .args([
            "doctor",
            "--last",
            "--config",
            r.config_path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn setup_problems_are_shown_with_advice() {
    let d = "status170.test";
    let dns = DnsServer::start("127.0.0.170", Zone::default());
    {
        // An MX answer carrying markup: it must come out escaped.
        let mut z = Zone::default();
        z.mx(d, 10, "<script>x.evil");
        *dns.zone.lock().unwrap() = z;
    }
    let r = Relay::start_with(
        170,
        &format!(
            "mail_domain = {d}\ndns_servers = {}\nself_check_interval = 1h\n",
            dns.addr
        ),
    );
    let page = status_after_check(&r, d);
    assert!(page.contains("Checked just now"), "{page}");
    assert!(page.contains("problem(s) found"), "{page}");
    for (id, want) in [
        ("dns.a", "publish the records `chatrelay dns` prints"),
        (
            "dns.mx",
            "set the MX record of status170.test to `10 status170.test.`",
        ),
        ("dns.dkim", "add the TXT record `chatrelay dns` prints"),
        ("dns.spf", "v=spf1 a ~all"),
        ("dns.dmarc", "_dmarc.status170.test."),
        ("dns.mta-sts", "CNAME status170.test."),
        (
            "certificate",
            "port 443 must be reachable from the Internet",
        ),
        ("privacy", "set them in chatmail.ini"),
    ] {
        assert_eq!(state(&page, id), "problem", "{id}: {}", item(&page, id));
        let it = item(&page, id);
        assert!(it.contains("What to do:"), "{it}");
        assert!(
            it.contains(&want.replace('"', "&quot;")),
            "{id} lacks {want:?}: {it}"
        );
    }
    assert!(item(&page, "privacy").contains("privacy_postal, privacy_mail"));
    assert!(item(&page, "certificate").contains("no ACME certificate yet"));
    assert_eq!(state(&page, "ports"), "ok", "{}", item(&page, "ports"));
    assert_eq!(state(&page, "clock"), "ok");
    // The hostile MX name is shown, escaped.
    assert!(
        item(&page, "dns.mx").contains("&lt;script&gt;x.evil"),
        "{}",
        item(&page, "dns.mx")
    );
    assert!(!page.contains("<script"), "unescaped markup on the page");

    // The certificate served (self-signed until ACME succeeds), as in its file.
    let (names, not_after) = cert_facts(&r.data_dir().join("tls/cert.pem"));
    assert_eq!(names.len(), 3);
    assert!(
        page.contains(&format!("for {}", names.join(", "))),
        "{page}"
    );
    assert!(page.contains("issued by itself (self-signed)"), "{page}");
    assert!(
        page.contains(&format!("valid until {}", utc(not_after))),
        "{} not on the page:\n{page}",
        utc(not_after)
    );

    // The status screen's summary: the same problems, one line each.
    let screen = doctor_last(&r);
    assert!(screen.starts_with("self-check (just now): "), "{screen}");
    assert!(screen.contains("problems"), "{screen}");
    assert!(screen.contains("✘ dns.mx: "), "{screen}");
    assert!(
        screen.contains("→ set the MX record of status170.test"),
        "{screen}"
    );
    assert!(
        screen.contains("✘ privacy: unset: privacy_postal"),
        "{screen}"
    );
    assert!(
        !screen.contains("ports"),
        "ok checks are not listed: {screen}"
    );
    r.assert_no_panic();
}

#[test]
fn healthy_relay_shows_ok_and_its_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let d = "status171.test";
    let dir = TempDir::new("n171");
    // A CA of this test and a leaf valid until a known date.
    let ca_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    cp.distinguished_name
        .push(DnType::CommonName, "chatrelay status test CA");
    let ca = cp.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let names = vec![d.to_string(), format!("www.{d}"), format!("mta-sts.{d}")];
    let mut lp = CertificateParams::new(names.clone()).unwrap();
    lp.distinguished_name.push(DnType::CommonName, d);
    lp.not_before = rcgen::date_time_ymd(2025, 1, 1);
    lp.not_after = rcgen::date_time_ymd(2031, 5, 17);
    let leaf = lp.signed_by(&key, &ca, &ca_key).unwrap();
    let (cert_path, key_path) = (dir.path().join("leaf.crt"), dir.path().join("leaf.key"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    // Every record published before the relay's first self-check.
    let dkim = support::dkim_record(&dir.path().join("data"), "opendkim");
    let dns = DnsServer::start("127.0.0.171", Zone::relay(d, PUBLIC, d, &dkim));
    let r = Relay::start_in(
        171,
        dir,
        &format!(
            "mail_domain = {d}\ndns_servers = {}\nself_check_interval = 1h\n\
             tls_external_cert_and_key = {} {}\n\
             privacy_postal = Street 1\nprivacy_mail = a@b.example\nprivacy_pdo = P\n\
             privacy_supervisor = S\n",
            dns.addr,
            cert_path.display(),
            key_path.display()
        ),
    );
    let page = status_after_check(&r, d);
    for id in [
        "clock",
        "dns.a",
        "dns.mx",
        "dns.dkim",
        "dns.spf",
        "dns.dmarc",
        "dns.mta-sts",
        "dns.www",
        "certificate",
        "wan",
        "ports",
        "privacy",
    ] {
        assert_eq!(state(&page, id), "ok", "{id}: {}", item(&page, id));
        assert!(!item(&page, id).contains("What to do"), "{id}");
    }
    // port_mapping is off: the router was not asked, no ports mapped.
    assert_eq!(state(&page, "router"), "unknown");
    assert_eq!(state(&page, "mapping"), "unknown");
    assert!(page.contains("No problems found."), "{page}");
    assert!(item(&page, "wan").contains(PUBLIC));

    let (file_names, not_after) = cert_facts(&cert_path);
    assert_eq!(file_names, names);
    assert_eq!(utc(not_after), "2031-05-17T00:00:00Z");
    assert!(
        page.contains(&format!("for {}", names.join(", "))),
        "{page}"
    );
    assert!(
        page.contains("issued by CN=chatrelay status test CA"),
        "{page}"
    );
    assert!(page.contains("valid until 2031-05-17T00:00:00Z"), "{page}");
    assert!(
        item(&page, "certificate").contains("valid until 2031-05-17"),
        "{}",
        item(&page, "certificate")
    );
    assert!(doctor_last(&r).contains("no problems (14 checks)"));
    r.assert_no_panic();
}

/// A resolver that answers each query after 1.5 s makes the self-check take
/// well over ten seconds; meanwhile other clients' pages and an IMAP
/// client's NOOPs answer at once,
/// and asking for more self-checks starts none while one runs or within a
/// minute of the last.
#[test]
fn pages_stay_fast_while_a_slow_self_check_runs() {
    let d = "status172.test";
    let dns = DnsServer::start("127.0.0.172", Zone::default());
    *dns.delay.lock().unwrap() = Duration::from_millis(1500);
    let r = Relay::start_with(
        172,
        &format!(
            "mail_domain = {d}\ndns_servers = {}\nself_check_interval = 1h\n",
            dns.addr
        ),
    );
    assert!(
        wait_until(Duration::from_secs(5), || dns
            .queries
            .load(Ordering::SeqCst)
            > 0),
        "the self-check did not start"
    );
    let mut imap = r.imaps();
    let mut slowest = Duration::ZERO;
    for i in 0..8 {
        // An IMAP client's NOOP meanwhile.
        let t = Instant::now();
        assert!(imap.cmd("NOOP").ok());
        slowest = slowest.max(t.elapsed());
        let path = if i % 2 == 0 { "/" } else { "/status" };
        let t = Instant::now();
        let resp = https_get(r.sock(443), d, path);
        slowest = slowest.max(t.elapsed());
        assert_eq!(resp.status, 200);
        if path == "/status" {
            assert!(
                resp.body_str().contains("The first self-check is running"),
                "{}",
                resp.body_str()
            );
        }
        // A second client asks for another self-check: it runs already.
        let again = https_post(r.sock(443), d, "/status/selfcheck", b"");
        assert_eq!(again.status, 200);
        assert!(again
            .body_str()
            .contains("A self-check is already running."));
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a page or NOOP took {slowest:?} while the self-check ran"
    );
    let page = status_after_check(&r, d);
    assert_eq!(state(&page, "dns.a"), "problem");
    let after_one_run = dns.queries.load(Ordering::SeqCst);
    // Within the minute after a run: refused, nothing is looked up.
    let again = https_post(r.sock(443), d, "/status/selfcheck", b"");
    assert!(
        again.body_str().contains("less than a minute ago"),
        "{}",
        again.body_str()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(dns.queries.load(Ordering::SeqCst), after_one_run);
    eprintln!("slow self-check: slowest page or NOOP {slowest:?}, {after_one_run} DNS queries for one run");
    r.assert_no_panic();
}

#[test]
fn selfcheck_request_only_from_the_lan_and_by_post() {
    let r = Relay::start_with(173, "status_networks = 10.0.0.0/8\n");
    let host = r.ip();
    let post = https_post(r.sock(443), &host, "/status/selfcheck", b"");
    assert_eq!(post.status, 403, "{post:?}");
    let r2 = Relay::start(174);
    let host2 = r2.ip();
    let get = https_get(r2.sock(443), &host2, "/status/selfcheck");
    assert_eq!(get.status, 405, "{get:?}");
    // self_check_interval = 0 (the test default): nothing ran, it says so.
    let page = https_get(r2.sock(443), &host2, "/status").body_str();
    assert!(page.contains("runs only when asked for"), "{page}");
    // Asked once from the LAN: it runs (IP-literal relay: no DNS needed).
    let post = https_post(r2.sock(443), &host2, "/status/selfcheck", b"");
    assert!(post.body_str().contains("A new self-check has started"));
    let page = status_after_check(&r2, &host2);
    assert_eq!(state(&page, "dns.a"), "ok");
    assert_eq!(state(&page, "certificate"), "ok");
    r.assert_no_panic();
    r2.assert_no_panic();
}
