//! Push notifications (spec §9.5, §9.6; issue 6 item 4) against a local HTTPS
//! notification server whose certificate comes from a test CA the relay is
//! told to trust (`tls_extra_ca`). The server records every request.
//!
//! Relays: 127.0.0.239–242; notification servers: 127.0.0.245–248.

mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Relay, TempDir};

// ------------------------------------------------------------------ server

#[derive(Debug, Clone)]
struct Req {
    at: Instant,
    method: String,
    path: String,
    /// Lower-cased header names with values, in order.
    headers: Vec<(String, String)>,
    /// The whole request head as received (request line + headers).
    head: String,
    body: Vec<u8>,
}

impl Req {
    fn token(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct Shared {
    reqs: Mutex<Vec<Req>>,
    /// Per token: statuses to answer, in order; 200 once empty.
    script: Mutex<HashMap<String, VecDeque<u16>>>,
}

struct NotifyServer {
    addr: SocketAddr,
    ca: std::path::PathBuf,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    _dir: TempDir,
}

impl NotifyServer {
    fn start(ip: &str) -> NotifyServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = TempDir::new("notify");
        let ca = support::TestCa::new(dir.path());
        let (cert, key) = ca.issue(ip);
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_file(&cert).unwrap()],
            PrivateKeyDer::from_pem_file(&key).unwrap(),
        )
        .unwrap();
        let cfg = Arc::new(cfg);
        let l = TcpListener::bind(format!("{ip}:0")).unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        thread::spawn(move || {
            // Bounded by the stop flag (set on drop) and a hard 5-minute cap.
            let until = Instant::now() + Duration::from_secs(300);
            while !st.load(Ordering::SeqCst) && Instant::now() < until {
                match l.accept() {
                    Ok((s, _)) => {
                        let (cfg, sh) = (cfg.clone(), sh.clone());
                        thread::spawn(move || serve_one(s, cfg, &sh));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        NotifyServer {
            addr,
            ca: ca.ca_path(),
            shared,
            stop,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/notify", self.addr)
    }

    /// Relay config lines pointing at this server.
    fn config(&self) -> String {
        format!(
            "notification_url = {}\ntls_extra_ca = {}\n",
            self.url(),
            self.ca.display()
        )
    }

    fn script(&self, token: &str, statuses: &[u16]) {
        self.shared
            .script
            .lock()
            .unwrap()
            .insert(token.to_string(), statuses.iter().copied().collect());
    }

    fn reqs(&self) -> Vec<Req> {
        self.shared.reqs.lock().unwrap().clone()
    }

    fn count(&self, token: &str) -> usize {
        self.reqs().iter().filter(|r| r.token() == token).count()
    }

    /// Wait (bounded) until `n` requests have been recorded.
    fn wait_total(&self, n: usize, d: Duration) -> Vec<Req> {
        assert!(
            common::wait_until(d, || self.reqs().len() >= n),
            "expected {n} requests within {d:?}, got {:?}",
            self.reqs()
        );
        self.reqs()
    }
}

impl Drop for NotifyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_one(s: TcpStream, cfg: Arc<rustls::ServerConfig>, sh: &Shared) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ServerConnection::new(cfg).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, s);
    let mut data = Vec::new();
    let mut tmp = [0u8; 4096];
    let (head_end, len) = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..i]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= i + 4 + len {
                break (i, len);
            }
        }
        if data.len() > 65536 {
            return;
        }
        match tls.read(&mut tmp) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&tmp[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut rl = lines.next().unwrap_or("").split(' ');
    let (method, path) = (
        rl.next().unwrap_or("").to_string(),
        rl.next().unwrap_or("").to_string(),
    );
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let req = Req {
        at: Instant::now(),
        method,
        path,
        headers,
        head: head.clone(),
        body: data[head_end + 4..head_end + 4 + len].to_vec(),
    };
    let status = sh
        .script
        .lock()
        .unwrap()
        .get_mut(&req.token())
        .and_then(|q| q.pop_front())
        .unwrap_or(200);
    sh.reqs.lock().unwrap().push(req);
    let reason = match status {
        200 => "OK",
        410 => "Gone",
        _ => "Internal Server Error",
    };
    let _ = tls.write_all(
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
}

// ------------------------------------------------------------------ helpers

fn start_relay(n: u8, ns: &NotifyServer) -> Relay {
    Relay::start_with(
        n,
        &format!(
            "submissions_port = 465\nmax_user_send_per_minute = 1000\n\
             max_user_send_burst_size = 1000\n{}",
            ns.config()
        ),
    )
}

/// Submit an encrypted message `from_local` → `to_locals`; expects 250.
fn send(r: &Relay, from_local: &str, to_locals: &[&str], id: &str) {
    let from = r.addr(from_local);
    let to: Vec<String> = to_locals.iter().map(|l| r.addr(l)).collect();
    let to_refs: Vec<&str> = to.iter().map(|s| s.as_str()).collect();
    let m = support::encrypted(&from, &to[0], id);
    let rep = support::submit(r, from_local, &to_refs, &m);
    assert_eq!(rep.code, 250, "{rep:?}");
}

// ------------------------------------------------------------------ tests

/// One POST per valid token of the owner per message; none for a message
/// the owner sent to themselves; body = exactly the token; no address, no
/// content, nothing identifying in path, headers or body.
#[test]
fn token_posted_once_per_message_and_nothing_else() {
    let ns = NotifyServer::start("127.0.0.245");
    let r = start_relay(239, &ns);
    let mut a = r.login("pushali01");
    let mut b = r.login("pushbob01");
    a.set_device_token("tok-ali-phone");
    b.set_device_token("tok-bob-phone");
    b.set_device_token("tok-bob-tablet");
    assert_eq!(
        b.device_tokens().as_deref(),
        Some("tok-bob-phone tok-bob-tablet")
    );

    // To herself: no push.
    send(&r, "pushali01", &["pushali01"], "selfnote");
    // To bob, twice: each of bob's tokens once per message.
    send(&r, "pushali01", &["pushbob01"], "firstmsg");
    ns.wait_total(2, Duration::from_secs(10));
    send(&r, "pushali01", &["pushbob01"], "secondmsg");
    ns.wait_total(4, Duration::from_secs(10));
    // Alice to herself and bob in one message: only bob's copy pushes.
    send(&r, "pushali01", &["pushbob01", "pushali01"], "bothmsg");
    ns.wait_total(6, Duration::from_secs(10));
    // Bob to alice: alice's token works (so its absence above means something).
    send(&r, "pushbob01", &["pushali01"], "replymsg");
    ns.wait_total(7, Duration::from_secs(10));
    // Nothing more arrives.
    thread::sleep(Duration::from_millis(1500));
    let reqs = ns.reqs();
    assert_eq!(reqs.len(), 7, "{reqs:#?}");
    assert_eq!(ns.count("tok-bob-phone"), 3);
    assert_eq!(ns.count("tok-bob-tablet"), 3);
    assert_eq!(ns.count("tok-ali-phone"), 1);

    // Delivered for real (the push is not instead of the message).
    let mut inbox = support::Inbox::open(&r, "pushbob01");
    assert_eq!(inbox.count("firstmsg@chatrelay.test"), 1);

    let forbidden = [
        "pushali01",
        "pushbob01",
        "127.0.0.239",
        "chatrelay.test",
        "firstmsg",
        "PGP",
        "hF4DLwbcUEXP",
        "Autocrypt",
        "Subject",
    ];
    let allowed_headers = [
        "host",
        "content-length",
        "connection",
        "content-type",
        "user-agent",
        "accept",
    ];
    println!(
        "first request as received:\n{}\r\n\r\n{}",
        reqs[0].head,
        reqs[0].token()
    );
    for q in &reqs {
        assert_eq!(q.method, "POST", "{q:?}");
        assert_eq!(q.path, "/notify", "{q:?}");
        assert!(
            q.token().starts_with("tok-"),
            "body is exactly the token: {q:?}"
        );
        assert_eq!(
            q.headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map(|(_, v)| v.as_str()),
            Some(q.body.len().to_string().as_str())
        );
        let whole = format!("{}\r\n\r\n{}", q.head, q.token());
        for f in forbidden {
            assert!(
                !whole.to_lowercase().contains(&f.to_lowercase()),
                "{f:?} in request:\n{whole}"
            );
        }
        for (k, _) in &q.headers {
            assert!(allowed_headers.contains(&k.as_str()), "header {k}: {q:?}");
        }
    }
    r.assert_no_panic();
    let log = r.stderr();
    assert!(!log.contains("pushbob01") && !log.contains("tok-"), "{log}");
}

/// `410 Gone` removes that token from the account (GETMETADATA no longer
/// lists it) and it is not used again; other tokens are unaffected.
#[test]
fn gone_410_removes_token() {
    let ns = NotifyServer::start("127.0.0.246");
    let r = start_relay(240, &ns);
    support::create_account(&r, "pushali02");
    let mut b = r.login("pushbob02");
    b.set_device_token("tok-dead");
    b.set_device_token("tok-live");
    ns.script("tok-dead", &[410]);

    send(&r, "pushali02", &["pushbob02"], "m410a");
    ns.wait_total(2, Duration::from_secs(10));
    assert!(
        common::wait_until(Duration::from_secs(5), || b.device_tokens().as_deref()
            == Some("tok-live")),
        "token not removed: {:?}",
        b.device_tokens()
    );

    send(&r, "pushali02", &["pushbob02"], "m410b");
    ns.wait_total(3, Duration::from_secs(10));
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(ns.count("tok-dead"), 1);
    assert_eq!(ns.count("tok-live"), 2);
    // A 410 is final: not retried.
    assert_eq!(ns.reqs().len(), 3);
    r.assert_no_panic();
}

/// `500` then `200`: retried once, after the first back-off step (8 s).
#[test]
fn error_500_is_retried_after_8s() {
    let ns = NotifyServer::start("127.0.0.247");
    let r = start_relay(241, &ns);
    support::create_account(&r, "pushali03");
    let mut b = r.login("pushbob03");
    b.set_device_token("tok-retry");
    ns.script("tok-retry", &[500]);

    send(&r, "pushali03", &["pushbob03"], "mretry");
    let reqs = ns.wait_total(2, Duration::from_secs(20));
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_millis(6500) && gap <= Duration::from_secs(15),
        "retry after {gap:?}"
    );
    assert_eq!(reqs[1].token(), "tok-retry");
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(ns.reqs().len(), 2, "no more tries after 200");
    // The token stays registered after a 5xx.
    assert_eq!(b.device_tokens().as_deref(), Some("tok-retry"));
    r.assert_no_panic();
}

/// The pending notification is on disk: a relay killed (-9) after the
/// failed first try still sends the retry after restarting, on schedule.
#[test]
fn retry_survives_restart() {
    let ns = NotifyServer::start("127.0.0.248");
    let mut r = start_relay(242, &ns);
    support::create_account(&r, "pushali04");
    {
        let mut b = r.login("pushbob04");
        b.set_device_token("tok-restart");
    }
    ns.script("tok-restart", &[500]);

    send(&r, "pushali04", &["pushbob04"], "mrestart");
    let first = ns.wait_total(1, Duration::from_secs(10))[0].at;
    // Let the relay record the failure (a store write right after reading
    // the response), then kill it hard.
    thread::sleep(Duration::from_millis(2500));
    r.restart();
    let reqs = ns.wait_total(2, Duration::from_secs(20).saturating_sub(first.elapsed()));
    let gap = reqs[1].at - first;
    assert!(
        gap >= Duration::from_millis(6000),
        "retried too early ({gap:?}): schedule not kept"
    );
    assert_eq!(reqs[1].token(), "tok-restart");
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(ns.reqs().len(), 2);
    r.assert_no_panic();
}
