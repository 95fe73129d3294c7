//! Dynamic DNS (issue 13 item 3): the relay's dyndns2 requests against a
//! local HTTPS endpoint (certificate from a test CA the relay trusts) that
//! answers each documented return code. The box's IPv6 addresses are read
//! from a file in procfs format (`ddns_if_inet6`), which the tests rewrite
//! to change the address.
//!
//! Relays: 127.0.0.130, 132–137; endpoints on 127.0.0.131 (any port). The
//! WAN address from the router: relay 127.0.0.165, fake PCP router
//! 127.0.0.166, endpoint 127.0.0.167.

mod common;
#[path = "router_support/mod.rs"]
mod router_support;
#[path = "support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Relay, TempDir};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const IP: &str = "127.0.0.131";

struct Endpoint {
    port: u16,
    ca: std::path::PathBuf,
    /// Request heads received.
    reqs: Arc<Mutex<Vec<String>>>,
    answer: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    _dir: TempDir,
}

impl Endpoint {
    /// `answer`: the body; `None`: accept and never answer (a timeout).
    fn start(answer: Option<&str>) -> Endpoint {
        Self::start_on(IP, answer)
    }
    fn start_on(ip: &str, answer: Option<&str>) -> Endpoint {
        let dir = TempDir::new("ddns");
        let ca = support::TestCa::new(dir.path());
        let (cert, key) = ca.issue(ip);
        let cfg = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_file(&cert).unwrap()],
                PrivateKeyDer::from_pem_file(&key).unwrap(),
            )
            .unwrap(),
        );
        let l = TcpListener::bind(format!("{ip}:0")).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let ans = Arc::new(Mutex::new(answer.unwrap_or("").to_string()));
        let silent = answer.is_none();
        let stop = Arc::new(AtomicBool::new(false));
        let (r2, a2, st) = (reqs.clone(), ans.clone(), stop.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(120);
            let mut held = Vec::new();
            while !st.load(Ordering::SeqCst) && Instant::now() < until {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                if silent {
                    r2.lock().unwrap().push("(connection)".to_string());
                    held.push(s);
                    continue;
                }
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
                r2.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&data).into_owned());
                let body = a2.lock().unwrap().clone();
                let _ = write!(
                    t,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = t.flush();
                t.conn.send_close_notify();
                let _ = t.conn.complete_io(&mut t.sock);
            }
        });
        Endpoint {
            port,
            ca: ca.ca_path(),
            reqs,
            answer: ans,
            stop,
            _dir: dir,
        }
    }
    fn reqs(&self) -> Vec<String> {
        self.reqs.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.reqs.lock().unwrap().len()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn write_v6(path: &std::path::Path, hex: &str) {
    std::fs::write(
        path,
        format!(
            "{hex} 02 40 00 80     eth0\nfe800000000000000000000000000001 02 40 20 80     eth0\n"
        ),
    )
    .unwrap();
}

fn relay(n: u8, ep: &Endpoint, inet6: &std::path::Path) -> Relay {
    Relay::start_with(
        n,
        &format!(
            "mail_domain = ddns{n}.test\ndkim_ed25519 = true\n\
             acme_directory = https://127.0.0.{n}:14009/dir\nacme_retry_min = 1h\n\
             ddns_url = https://{IP}:{}/nic/update\nddns_user = relay@example.org\nddns_password = s3cret:pw\n\
             tls_extra_ca = {}\nddns_retry_min = 1\nddns_check_interval = 1\nddns_if_inet6 = {}\n",
            ep.port,
            ep.ca.display(),
            inet6.display()
        ),
    )
}

fn wait(d: Duration, f: impl FnMut() -> bool) -> bool {
    common::wait_until(d, f)
}

#[test]
fn good_updates_once_per_address_change() {
    let ep = Endpoint::start(Some("good 2a01::2"));
    let dir = TempDir::new("inet6");
    let f = dir.path().join("if_inet6");
    write_v6(&f, "2a010000000000000000000000000002");
    let r = relay(130, &ep, &f);
    assert!(
        wait(Duration::from_secs(20), || ep.count() >= 1),
        "{}",
        r.stderr()
    );
    let first = &ep.reqs()[0];
    assert!(
        first.starts_with("GET /nic/update?hostname=ddns130.test&myip=2a01%3A%3A2 HTTP/1.1\r\n"),
        "{first}"
    );
    // Basic base64("relay@example.org:s3cret:pw")
    assert!(
        first.contains("Authorization: Basic cmVsYXlAZXhhbXBsZS5vcmc6czNjcmV0OnB3\r\n"),
        "{first}"
    );
    assert!(
        first.contains("User-Agent: chatrelay chatrelay/"),
        "{first}"
    );
    assert!(wait(Duration::from_secs(10), || r
        .stderr()
        .contains("now points to 2a01::2")));
    // Unchanged for several check intervals: no repeat (nochg would be abuse).
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(ep.count(), 1);
    // The address changes: exactly one new update with the new address.
    *ep.answer.lock().unwrap() = "good 2a01::3".into();
    write_v6(&f, "2a010000000000000000000000000003");
    assert!(wait(Duration::from_secs(10), || ep.count() >= 2));
    assert!(
        ep.reqs()[1].contains("myip=2a01%3A%3A3 "),
        "{}",
        ep.reqs()[1]
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ep.count(), 2);
    // No IPv6 at all: no myip, the provider takes the source address.
    *ep.answer.lock().unwrap() = "good 198.51.100.7".into();
    std::fs::write(&f, "").unwrap();
    assert!(wait(Duration::from_secs(10), || ep.count() >= 3));
    assert!(
        ep.reqs()[2].starts_with("GET /nic/update?hostname=ddns130.test HTTP/1.1"),
        "{}",
        ep.reqs()[2]
    );
    assert!(
        !r.stderr().contains("s3cret"),
        "the password is never logged"
    );
    r.assert_no_panic();
}

#[test]
fn nochg_is_accepted_once_and_not_repeated() {
    let ep = Endpoint::start(Some("nochg 2a01::2"));
    let dir = TempDir::new("inet6");
    let f = dir.path().join("if_inet6");
    write_v6(&f, "2a010000000000000000000000000002");
    let r = relay(132, &ep, &f);
    assert!(
        wait(Duration::from_secs(20), || r
            .stderr()
            .contains("already points to 2a01::2")),
        "{}",
        r.stderr()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(ep.count(), 1);
}

#[test]
fn account_and_host_errors_stop_all_updates() {
    let dir = TempDir::new("inet6");
    let f = dir.path().join("if_inet6");
    for code in [
        "badauth", "notfqdn", "nohost", "abuse", "!donator", "badagent",
    ] {
        let ep = Endpoint::start(Some(code));
        write_v6(&f, "2a010000000000000000000000000002");
        let r = relay(133, &ep, &f);
        assert!(
            wait(Duration::from_secs(20), || r
                .stderr()
                .contains("no more updates")),
            "{code}: {}",
            r.stderr()
        );
        assert!(
            r.stderr().contains(&format!("answered {code}")),
            "{}",
            r.stderr()
        );
        // Even a new address sends nothing more.
        write_v6(&f, "2a010000000000000000000000000005");
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(ep.count(), 1, "{code}");
        drop(r);
    }
}

/// `911` / `dnserr`: 3 × the retry minimum, doubling (3 s, 6 s …).
fn provider_trouble(n: u8, code: &str) {
    let ep = Endpoint::start(Some(code));
    let dir = TempDir::new("inet6");
    let f = dir.path().join("if_inet6");
    write_v6(&f, "2a010000000000000000000000000002");
    let r = relay(n, &ep, &f);
    assert!(wait(Duration::from_secs(20), || ep.count() >= 1));
    let t0 = Instant::now();
    assert!(
        wait(Duration::from_secs(10), || r
            .stderr()
            .contains("next attempt in 3 s")),
        "{}",
        r.stderr()
    );
    assert!(
        wait(Duration::from_secs(10), || ep.count() >= 2),
        "retried after the wait"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    // The next wait is 6 s: no third request within 4 s of the second.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(ep.count(), 2, "{}", r.stderr());
    assert!(r.stderr().contains("next attempt in 6 s"), "{}", r.stderr());
}

#[test]
fn server_trouble_911_waits() {
    provider_trouble(134, "911");
}

#[test]
fn dns_error_dnserr_waits() {
    provider_trouble(135, "dnserr");
}

#[test]
fn a_silent_endpoint_times_out_and_backs_off() {
    let ep = Endpoint::start(None);
    let dir = TempDir::new("inet6");
    let f = dir.path().join("if_inet6");
    write_v6(&f, "2a010000000000000000000000000002");
    let r = relay(136, &ep, &f);
    // The request deadline is 30 s; then 1 s and the next try.
    assert!(
        wait(Duration::from_secs(45), || r
            .stderr()
            .contains("DDNS: timeout")
            || r.stderr().contains("DDNS: TLS timeout")),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains("next attempt in 1 s"), "{}", r.stderr());
    assert!(
        ep.count() <= 2,
        "one connection per 30 s deadline: {}",
        ep.count()
    );
    r.assert_no_panic();
}

#[test]
fn garbage_answers_back_off() {
    let ep = Endpoint::start(Some("<html>oops</html>"));
    let dir = TempDir::new("inet6");
    let f = dir.path().join("if_inet6");
    write_v6(&f, "2a010000000000000000000000000002");
    let r = relay(137, &ep, &f);
    assert!(wait(Duration::from_secs(20), || ep.count() >= 1));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    // 1 + 2 + 4 s of backoff: at most 3 more tries in 6 s.
    let n = ep.count();
    assert!(
        (2..=4).contains(&n),
        "{n} requests in {:?}: {}",
        t0.elapsed(),
        r.stderr()
    );
    assert!(r.stderr().contains("unexpected answer"), "{}", r.stderr());
}

/// IPv4 updates carry the WAN address the router reported (PCP here) as
/// `myip`, and a new one is sent when the router reports a change.
#[test]
fn ipv4_myip_is_the_routers_wan_address_and_follows_its_changes() {
    let ep = Endpoint::start_on("127.0.0.167", Some("good 11.22.33.44"));
    let fake = router_support::Fake::start(
        "127.0.0.166",
        "11.22.33.44".parse().unwrap(),
        router_support::pcp_ok,
    );
    let dir = TempDir::new("inet6");
    let f = dir.path().join("if_inet6");
    write_v6(&f, "2a010000000000000000000000000002");
    let r = Relay::start_with(
        165,
        &format!(
            "mail_domain = ddns165.test\ndkim_ed25519 = true\n\
             acme_directory = https://127.0.0.165:14009/dir\nacme_retry_min = 1h\n\
             ddns_url = https://127.0.0.167:{}/nic/update\nddns_user = u\nddns_password = p\n\
             tls_extra_ca = {}\nddns_retry_min = 1\nddns_check_interval = 1h\nddns_if_inet6 = {}\n\
             port_mapping = auto\nport_mapping_lifetime = 4\nrouter_address = 127.0.0.166\n\
             turn_relay_ports = 49160-49161\n",
            ep.port,
            ep.ca.display(),
            f.display()
        ),
    );
    assert!(
        wait(Duration::from_secs(20), || ep.count() >= 1),
        "{}",
        r.stderr()
    );
    let first = &ep.reqs()[0];
    assert!(
        first.starts_with(
            "GET /nic/update?hostname=ddns165.test&myip=11.22.33.44%2C2a01%3A%3A2 HTTP/1.1\r\n"
        ),
        "one update, with the router's address: {first}\n{}",
        r.stderr()
    );
    assert!(fake.count() >= 1);
    // The router reports a new WAN address at a renewal (every 2 s): one
    // update with it, long before the hourly look.
    *ep.answer.lock().unwrap() = "good 11.22.33.55".into();
    *fake.wan.lock().unwrap() = "11.22.33.55".parse().unwrap();
    assert!(
        wait(Duration::from_secs(15), || ep.count() >= 2),
        "{}",
        r.stderr()
    );
    assert!(
        ep.reqs()[1].contains("myip=11.22.33.55%2C2a01%3A%3A2 "),
        "{}",
        ep.reqs()[1]
    );
    // Renewals that report the same address send nothing more.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(ep.count(), 2, "{}", r.stderr());
    // A CGNAT WAN address is no use in DNS: no IPv4 myip (the provider
    // takes the source address).
    *ep.answer.lock().unwrap() = "good 2a01::2".into();
    *fake.wan.lock().unwrap() = "100.64.1.2".parse().unwrap();
    assert!(wait(Duration::from_secs(15), || ep.count() >= 3));
    assert!(
        ep.reqs()[2].starts_with("GET /nic/update?hostname=ddns165.test&myip=2a01%3A%3A2 HTTP/1.1"),
        "{}",
        ep.reqs()[2]
    );
    r.assert_no_panic();
}
