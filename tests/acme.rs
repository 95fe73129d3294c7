//! ACME (issue 13 item 1) against Debian's `pebble` with validation on:
//! `pebble-challtestsrv` is pebble's DNS and answers every name with the
//! relay's 127.0.0.x, pebble's httpPort/tlsPort are the relay's 80/443, so
//! pebble really connects to the relay and checks the TLS-ALPN-01
//! certificate or the HTTP-01 key authorization. Clients then trust only
//! pebble's root and verify the chain and the name.
//!
//! Addresses: relays 127.0.0.130/132/134/136/138, pebbles 131/133/135/137,
//! a fake CA at 139.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Relay, TempDir};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(pem: &[u8]) -> rustls::RootCertStore {
    let mut r = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem) {
        r.add(c.unwrap()).unwrap();
    }
    r
}

/// TLS client with full verification (chain to `root_pem`, name `name`).
fn verified(
    addr: &str,
    name: &str,
    root_pem: &[u8],
    alpn: &[&[u8]],
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(root_pem))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let conn = rustls::ClientConnection::new(
        Arc::new(cfg),
        ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
    }
    Ok(s)
}

fn read_some(s: &mut impl Read) -> String {
    let mut b = [0u8; 4096];
    let n = s.read(&mut b).unwrap_or(0);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// One GET over HTTPS trusting `ca_pem`, body returned.
fn https_get(addr: &str, host: &str, path: &str, ca_pem: &[u8]) -> String {
    let mut s = verified(addr, host, ca_pem, &[b"http/1.1"]).expect("https");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let t = String::from_utf8_lossy(&out).into_owned();
    t.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

// ------------------------------------------------------------------ pebble

struct Pebble {
    ip: String,
    dir: TempDir,
    ca: support::TestCa,
    procs: Vec<Child>,
}

impl Pebble {
    /// pebble on `ip`:14000 (management 15000), its DNS answering every A
    /// query with `dns_answer`; `env` adds pebble's test knobs.
    fn start(ip: &str, dns_answer: &str, validity_secs: u64, env: &[(&str, &str)]) -> Pebble {
        let dir = TempDir::new("pebble");
        let ca = support::TestCa::new(&dir.path().join("ca"));
        let (cert, key) = ca.issue(ip);
        let conf = dir.path().join("pebble.json");
        std::fs::write(
            &conf,
            format!(
                r#"{{"pebble":{{"listenAddress":"{ip}:14000","managementListenAddress":"{ip}:15000",
"certificate":"{}","privateKey":"{}","httpPort":80,"tlsPort":443,"ocspResponderURL":"",
"externalAccountBindingRequired":false,"certificateValidityPeriod":{validity_secs}}}}}"#,
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let log = |n: &str| std::fs::File::create(dir.path().join(n)).unwrap();
        let dns = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("{ip}:8053"),
                "-http01",
                "",
                "-https01",
                "",
            ])
            .args(["-tlsalpn01", "", "-doh", ""])
            .args(["-management", &format!("{ip}:8055")])
            .args(["-defaultIPv4", dns_answer, "-defaultIPv6", ""])
            .stdout(log("dns.log"))
            .stderr(Stdio::null())
            .spawn();
        // Older challtestsrv builds have no -doh flag: start without it.
        let dns = match dns {
            Ok(mut c) => {
                std::thread::sleep(Duration::from_millis(300));
                if c.try_wait().unwrap().is_some() {
                    Command::new("pebble-challtestsrv")
                        .args([
                            "-dns01",
                            &format!("{ip}:8053"),
                            "-http01",
                            "",
                            "-https01",
                            "",
                        ])
                        .args(["-tlsalpn01", ""])
                        .args(["-management", &format!("{ip}:8055")])
                        .args(["-defaultIPv4", dns_answer, "-defaultIPv6", ""])
                        .stdout(log("dns.log"))
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("pebble-challtestsrv (apt install pebble)")
                } else {
                    c
                }
            }
            Err(e) => panic!("pebble-challtestsrv: {e} (scripts/install-test-deps.sh installs it)"),
        };
        let mut cmd = Command::new("pebble");
        cmd.args([
            "-config",
            conf.to_str().unwrap(),
            "-dnsserver",
            &format!("{ip}:8053"),
        ])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(log("pebble.log"))
        .stderr(log("pebble.err"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let pebble = cmd.spawn().expect("pebble (apt install pebble)");
        let p = Pebble {
            ip: ip.to_string(),
            dir,
            ca,
            procs: vec![dns, pebble],
        };
        assert!(
            common::wait_until(Duration::from_secs(20), || {
                TcpStream::connect(format!("{ip}:14000")).is_ok()
                    && TcpStream::connect(format!("{ip}:15000")).is_ok()
            }),
            "pebble did not start: {}",
            p.log()
        );
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// pebble's root (made anew at each start).
    fn root(&self) -> Vec<u8> {
        let ca = std::fs::read(self.ca.ca_path()).unwrap();
        https_get(&format!("{}:15000", self.ip), &self.ip, "/roots/0", &ca).into_bytes()
    }

    /// Relay config lines for this CA.
    fn relay_config(&self) -> String {
        format!(
            "acme_directory = https://{}:14000/dir\nacme_extra_ca = {}\nacme_retry_min = 1\n",
            self.ip,
            self.ca.ca_path().display()
        )
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn domain_config(domain: &str, extra: &str) -> String {
    format!(
        "mail_domain = {domain}\ndkim_ed25519 = true\nsubmissions_port = 465\nacme_email = admin@example.org\n{extra}"
    )
}

fn count(r: &Relay, needle: &str) -> usize {
    r.stderr().matches(needle).count()
}

fn wait_log(r: &Relay, needle: &str, n: usize, d: Duration) {
    assert!(
        common::wait_until(d, || count(r, needle) >= n),
        "expected {n}× {needle:?} within {d:?}; relay log:\n{}",
        r.stderr()
    );
}

/// The leaf the relay serves on `port` for `name`, verified against `root`.
fn served_leaf(r: &Relay, port: u16, name: &str, root: &[u8], alpn: &[&[u8]]) -> Vec<u8> {
    let s = verified(&format!("{}:{port}", r.ip()), name, root, alpn)
        .unwrap_or_else(|e| panic!("port {port} ({name}): {e}\n{}", r.stderr()));
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

/// IMAPS 993, SMTPS 465 and HTTPS 443 (plain, ALPN imap, ALPN smtp) all
/// verify against pebble's root and serve the same leaf; returns it.
fn check_all_listeners(r: &Relay, domain: &str, root: &[u8]) -> Vec<u8> {
    let mut s = verified(&format!("{}:993", r.ip()), domain, root, &[]).unwrap();
    assert!(read_some(&mut s).starts_with("* OK"));
    let leaf = s.conn.peer_certificates().unwrap()[0].to_vec();
    let mut s = verified(&format!("{}:465", r.ip()), domain, root, &[]).unwrap();
    assert!(read_some(&mut s).starts_with("220"));
    assert_eq!(s.conn.peer_certificates().unwrap()[0].as_ref(), &leaf[..]);
    for (name, alpn) in [
        (format!("mta-sts.{domain}"), &b"http/1.1"[..]),
        (format!("www.{domain}"), b"http/1.1"),
        (domain.to_string(), b"imap"),
        (domain.to_string(), b"smtp"),
    ] {
        assert_eq!(served_leaf(r, 443, &name, root, &[alpn]), leaf, "{name}");
    }
    let body = https_get(
        &format!("{}:443", r.ip()),
        &format!("mta-sts.{domain}"),
        "/.well-known/mta-sts.txt",
        root,
    );
    assert!(body.contains("STSv1"), "{body}");
    leaf
}

#[test]
fn tls_alpn_01_issues_serves_everywhere_and_renews_without_restart() {
    let domain = "acme130.test";
    // 40 s certificates: renewal after ~27 s.
    let pebble = Pebble::start("127.0.0.131", "127.0.0.130", 40, &[]);
    let r = Relay::start_with(
        130,
        &domain_config(
            domain,
            &format!("{}acme_challenge = tls-alpn-01\n", pebble.relay_config()),
        ),
    );
    // Before issuance the self-signed certificate serves (no pebble chain).
    wait_log(&r, "ACME: certificate issued", 1, Duration::from_secs(90));
    let root = pebble.root();
    let first = check_all_listeners(&r, domain, &root);
    // pebble validated by connecting to the relay, not by fiat.
    assert!(
        pebble.log().contains("set VALID by completed challenge"),
        "{}",
        pebble.log()
    );
    let files = std::fs::read_to_string(r.data_dir().join("acme/certificate.pem")).unwrap();
    assert!(files.contains("BEGIN CERTIFICATE") && files.contains("PRIVATE KEY"));
    assert!(r.data_dir().join("acme/account.pem").exists());
    // Renewal from the certificate's own dates, same process.
    let pid = r.pid();
    wait_log(&r, "ACME: certificate issued", 2, Duration::from_secs(90));
    assert_eq!(r.pid(), pid);
    let second = check_all_listeners(&r, domain, &root);
    assert_ne!(first, second, "a new certificate after renewal");
    assert_eq!(count(&r, "by TlsAlpn01"), count(&r, "ACME: ordering"));
    // No tight loop: two 40 s certificates need at most a few orders.
    assert!(count(&r, "ACME: ordering") <= 4, "{}", r.stderr());
    r.assert_no_panic();
}

#[test]
fn http_01_issues_and_a_corrupt_stored_certificate_is_replaced() {
    let domain = "acme132.test";
    let pebble = Pebble::start("127.0.0.133", "127.0.0.132", 3600, &[]);
    let mut r = Relay::start_with(
        132,
        &domain_config(
            domain,
            &format!(
                "{}acme_challenge = http-01\nhttp_port = 80\n",
                pebble.relay_config()
            ),
        ),
    );
    wait_log(&r, "ACME: certificate issued", 1, Duration::from_secs(90));
    assert!(r.stderr().contains("by Http01"));
    assert!(
        pebble.log().contains("set VALID by completed challenge"),
        "{}",
        pebble.log()
    );
    let root = pebble.root();
    let first = check_all_listeners(&r, domain, &root);
    // A restart keeps the stored certificate: no new order.
    r.restart();
    assert_eq!(served_leaf(&r, 993, domain, &root, &[]), first);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&r, "ACME: ordering"), 0, "{}", r.stderr());
    // A damaged file: said clearly, self-signed meanwhile, a new order.
    let p = r.data_dir().join("acme/certificate.pem");
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, t.replacen("MII", "MIX", 2)).unwrap();
    r.restart();
    assert!(
        r.stderr().contains("stored certificate unusable"),
        "{}",
        r.stderr()
    );
    wait_log(&r, "ACME: certificate issued", 1, Duration::from_secs(90));
    let second = check_all_listeners(&r, domain, &root);
    assert_ne!(first, second);
    r.assert_no_panic();
}

#[test]
fn bad_nonces_are_sent_again() {
    let domain = "acme134.test";
    let pebble = Pebble::start(
        "127.0.0.135",
        "127.0.0.134",
        3600,
        &[("PEBBLE_WFE_NONCEREJECT", "30")],
    );
    let r = Relay::start_with(134, &domain_config(domain, &pebble.relay_config()));
    wait_log(&r, "ACME: certificate issued", 1, Duration::from_secs(120));
    assert!(
        r.stderr().contains("badNonce, sending again"),
        "{}",
        r.stderr()
    );
    check_all_listeners(&r, domain, &pebble.root());
}

#[test]
fn a_challenge_the_ca_cannot_validate_backs_off_and_alternates() {
    let domain = "acme136.test";
    // Pebble's DNS sends the validation to 127.0.0.137 (pebble itself,
    // nothing on 80/443): every authorization turns invalid.
    let pebble = Pebble::start("127.0.0.137", "127.0.0.137", 3600, &[]);
    let r = Relay::start_with(
        136,
        &domain_config(
            domain,
            &format!("{}http_port = 80\n", pebble.relay_config()),
        ),
    );
    let t0 = Instant::now();
    wait_log(&r, "ACME: order failed", 2, Duration::from_secs(60));
    let log = r.stderr();
    assert!(log.contains("authorization Invalid"), "{log}");
    assert!(log.contains("A record points to this relay"), "{log}");
    // auto: TLS-ALPN-01 first, HTTP-01 after the failed validation.
    let first_alpn = log.find("by TlsAlpn01").unwrap();
    let first_http = log
        .find("by Http01")
        .expect("HTTP-01 after a failed TLS-ALPN-01");
    assert!(first_alpn < first_http);
    // Backoff 1, 2, 4, 8 s: in 12 s at most 4 orders, never a tight loop.
    std::thread::sleep(Duration::from_secs(12).saturating_sub(t0.elapsed()));
    let n = count(&r, "ACME: ordering");
    assert!((2..=4).contains(&n), "{n} orders in 12 s:\n{}", r.stderr());
    // Still serving the self-signed certificate meanwhile.
    let mut c = common::tls_connect(r.sock(993), &[]);
    let mut b = [0u8; 64];
    let k = c.read(&mut b).unwrap();
    assert!(b[..k].starts_with(b"* OK"));
    r.assert_no_panic();
}

// ------------------------------------------------------------------ fake CA

/// A CA that answers every new-account request with `rateLimited`
/// (RFC 8555 §6.7); counts requests per path.
struct RateLimitedCa {
    ca: support::TestCa,
    _dir: TempDir,
    hits: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
}

impl RateLimitedCa {
    fn start(ip: &'static str) -> RateLimitedCa {
        let dir = TempDir::new("fakeca");
        let ca = support::TestCa::new(dir.path());
        let (cert, key) = ca.issue(ip);
        let cfg = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from_pem_file(&cert).unwrap()],
                    PrivateKeyDer::from_pem_file(&key).unwrap(),
                )
                .unwrap(),
        );
        let l = TcpListener::bind(format!("{ip}:14000")).unwrap();
        l.set_nonblocking(true).unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, st) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(300);
            while !st.load(Ordering::SeqCst) && Instant::now() < until {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut t = rustls::StreamOwned::new(
                    rustls::ServerConnection::new(cfg.clone()).unwrap(),
                    s,
                );
                let mut data = Vec::new();
                let mut b = [0u8; 4096];
                while !data.windows(4).any(|w| w == b"\r\n\r\n") && data.len() < 65536 {
                    match t.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => data.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&data).into_owned();
                let line = head.lines().next().unwrap_or("").to_string();
                h.lock().unwrap().push((Instant::now(), line.clone()));
                let base = format!("https://{ip}:14000");
                let (status, extra, body) = if line.starts_with("GET /dir") {
                    (
                        "200 OK",
                        String::new(),
                        format!(
                            r#"{{"newNonce":"{base}/nonce","newAccount":"{base}/acct","newOrder":"{base}/order"}}"#
                        ),
                    )
                } else if line.contains("/nonce") {
                    (
                        "200 OK",
                        "Replay-Nonce: bm9uY2U\r\n".to_string(),
                        String::new(),
                    )
                } else {
                    ("429 Too Many Requests", "Retry-After: 3600\r\n".to_string(),
                     r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many certificates"}"#.to_string())
                };
                let _ = write!(
                    t,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = t.flush();
                t.conn.send_close_notify();
                let _ = t.conn.complete_io(&mut t.sock);
            }
        });
        RateLimitedCa {
            ca,
            _dir: dir,
            hits,
            stop,
        }
    }
    fn account_requests(&self) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.contains("/acct"))
            .count()
    }
    fn total(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

impl Drop for RateLimitedCa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The NTP mark, an unreachable directory, a rate-limit answer and a clock
/// far in the past, one after the other on 127.0.0.138 (the fake CA on .139).
#[test]
fn unreachable_rate_limited_and_clock_in_the_past() {
    let domain = "acme138.test";
    // 1. The appliance's NTP mark is missing: no order. Then nothing
    // listens at the directory: an error, backoff, self-signed meanwhile.
    let marks = TempDir::new("marker");
    let mark = marks.path().join("ntp.synced");
    let r = Relay::start_with(
        138,
        &domain_config(
            domain,
            &format!(
                "acme_directory = https://127.0.0.139:14001/dir\nacme_retry_min = 1\nclock_synced_file = {}\n",
                mark.display()
            ),
        ),
    );
    wait_log(
        &r,
        "waiting for the clock to be synchronised",
        1,
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&r, "ACME: ordering"), 0);
    std::fs::write(&mark, "").unwrap();
    wait_log(&r, "the clock is set", 1, Duration::from_secs(20));
    let t0 = Instant::now();
    wait_log(
        &r,
        "ACME: order failed: directory",
        2,
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(t0.elapsed()));
    let n = count(&r, "ACME: ordering");
    assert!((2..=4).contains(&n), "{n} orders in 10 s:\n{}", r.stderr());
    r.assert_no_panic();
    drop(r);

    // 2. rateLimited: one attempt, then a wait of 12 × the retry minimum.
    let ca = RateLimitedCa::start("127.0.0.139");
    let cfg = format!(
        "acme_directory = https://127.0.0.139:14000/dir\nacme_extra_ca = {}\nacme_retry_min = 1\n",
        ca.ca.ca_path().display()
    );
    let r = Relay::start_with(138, &domain_config(domain, &cfg));
    wait_log(&r, "the CA's rate limit", 1, Duration::from_secs(30));
    assert!(
        r.stderr().contains("next attempt in 12 s"),
        "{}",
        r.stderr()
    );
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(ca.account_requests(), 1, "{}", r.stderr());
    assert_eq!(count(&r, "ACME: ordering"), 1);
    drop(r);

    // 3. The clock in 2000 (libfaketime, the real binary): no order at all.
    let before = ca.total();
    let dir = TempDir::new("clock");
    let ini = dir.path().join("chatmail.ini");
    std::fs::write(
        &ini,
        common::config_text(138, &dir.path().join("data"), &domain_config(domain, &cfg)),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    // libfaketime preloaded into the relay itself (the `faketime` wrapper
    // would fork, and killing it would leave the relay running).
    let lib = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("libfaketime (apt install faketime)");
    let mut child = Command::new(common::bin())
        .args(["serve", "--config", ini.to_str().unwrap()])
        .env("LD_PRELOAD", lib)
        .env("FAKETIME", "@2000-01-01 00:00:00")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let ok = common::wait_until(Duration::from_secs(30), || {
        text().contains("waiting for the clock to be set")
    });
    std::thread::sleep(Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{}", text());
    assert!(text().contains("the clock says 2000-01-01"), "{}", text());
    assert!(!text().contains("ACME: ordering"), "{}", text());
    assert_eq!(
        ca.total(),
        before,
        "no request to the CA with a clock in 2000"
    );
}

// ------------------------------------------------------------------ IP addresses

/// An IP-literal relay with `acme_ip = on` (the test-only key admits its
/// loopback address): pebble validates the `ip` identifier (RFC 8738) by
/// connecting to the address itself, the certificate carries it as an
/// iPAddress SAN, and IMAPS, SMTPS and HTTPS verify against the address
/// with pebble's root.
fn ip_relay_gets_a_trusted_certificate(
    relay: u8,
    pebble_ip: &str,
    challenge: &str,
    validity_secs: u64,
) -> (Relay, Pebble, Vec<u8>) {
    let ip = format!("127.0.0.{relay}");
    let pebble = Pebble::start(pebble_ip, &ip, validity_secs, &[]);
    let r = Relay::start_with(
        relay,
        &format!(
            "acme_ip = on\nacme_ip_test_allow_private = true\nacme_challenge = {challenge}\n\
             http_port = 80\nsubmissions_port = 465\n{}",
            pebble.relay_config()
        ),
    );
    wait_log(&r, "ACME: certificate issued", 1, Duration::from_secs(90));
    assert!(r
        .stderr()
        .contains(&format!("ordering a certificate for {ip} ")));
    assert!(
        pebble.log().contains("set VALID by completed challenge"),
        "{}",
        pebble.log()
    );
    let root = pebble.root();
    let mut s = verified(&format!("{ip}:993"), &ip, &root, &[]).unwrap();
    assert!(read_some(&mut s).starts_with("* OK"));
    let leaf = s.conn.peer_certificates().unwrap()[0].to_vec();
    let mut s = verified(&format!("{ip}:465"), &ip, &root, &[]).unwrap();
    assert!(read_some(&mut s).starts_with("220"));
    assert_eq!(s.conn.peer_certificates().unwrap()[0].as_ref(), &leaf[..]);
    assert_eq!(served_leaf(&r, 443, &ip, &root, &[b"http/1.1"]), leaf);
    let body = https_get(&format!("{ip}:443"), &ip, "/", &root);
    assert!(body.contains("<!doctype html>"), "{body}");
    // The leaf names the address and nothing else.
    let (_, c) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let san = c.subject_alternative_name().unwrap().unwrap();
    let ipb: Vec<u8> = ip.parse::<std::net::Ipv4Addr>().unwrap().octets().to_vec();
    assert!(
        matches!(&san.value.general_names[..], [x509_parser::extensions::GeneralName::IPAddress(b)] if *b == &ipb[..]),
        "{:?}",
        san.value.general_names
    );
    // The stored certificate is used after a restart (no new order).
    let mut r = r;
    r.restart();
    assert_eq!(served_leaf(&r, 993, &ip, &root, &[]), leaf);
    assert_eq!(count(&r, "ACME: ordering"), 0, "{}", r.stderr());
    r.assert_no_panic();
    (r, pebble, leaf)
}

#[test]
fn ip_address_certificate_by_http_01() {
    ip_relay_gets_a_trusted_certificate(175, "127.0.0.176", "http-01", 3600);
}

/// With 30-second certificates (a short-lived profile in miniature) the
/// restarted relay renews from the stored certificate's own dates, a third
/// of the lifetime before expiry, without another restart.
#[test]
fn ip_address_certificate_by_tls_alpn_01_and_its_renewal() {
    let (r, pebble, first) =
        ip_relay_gets_a_trusted_certificate(177, "127.0.0.178", "tls-alpn-01", 30);
    let pid = r.pid();
    wait_log(&r, "ACME: certificate issued", 1, Duration::from_secs(60));
    assert_eq!(r.pid(), pid);
    let second = served_leaf(&r, 993, "127.0.0.177", &pebble.root(), &[]);
    assert_ne!(first, second, "a new certificate after renewal");
    let (_, c) = x509_parser::parse_x509_certificate(&second).unwrap();
    let v = c.validity();
    let life = v.not_after.timestamp() - v.not_before.timestamp();
    assert!(life <= 31, "{life} s");
    r.assert_no_panic();
}
