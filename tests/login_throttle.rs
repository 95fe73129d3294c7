//! Login throttling under a flood of wrong passwords (issue 10, item 6):
//! first logins of new accounts and cached logins are not queued behind the
//! flood, flooding connections are slowed and closed, other sessions keep
//! answering. Real server, real TLS.
//!
//! Relays: 127.0.0.60, 127.0.0.61.
mod common;
use common::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLOOD_CONNS: usize = 20;
const FLOOD_PER_CONN: usize = 30;

/// What one flooding connection saw.
#[derive(Debug, Default)]
struct Flood {
    no: usize,
    unavailable: usize,
    ok: usize,
    bye: bool,
    closed: bool,
    secs: f64,
}

/// Pipeline `n` wrong LOGINs for `addr` in one write, then read until the
/// server closes the connection (or the client's read timeout).
fn flood(sock: std::net::SocketAddr, addr: &str, n: usize) -> Flood {
    let mut c = Imap::connect_tls(sock);
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&format!(
            "f{i:03} LOGIN {} \"wrong-password\"\r\n",
            quote(addr)
        ));
    }
    let t = Instant::now();
    let mut f = Flood::default();
    if c.try_send_raw(out.as_bytes()).is_err() {
        f.closed = true;
        return f;
    }
    loop {
        match c.try_read_response_line() {
            Ok(l) => {
                let l = String::from_utf8_lossy(&l).into_owned();
                if l.starts_with("* BYE") {
                    f.bye = true;
                } else if l.contains(" NO ") {
                    f.no += 1;
                    if l.contains("[UNAVAILABLE]") {
                        f.unavailable += 1;
                    }
                } else if l.contains(" OK ") {
                    f.ok += 1;
                }
            }
            Err(_) => {
                f.closed = true;
                break;
            }
        }
    }
    f.secs = t.elapsed().as_secs_f64();
    f
}

fn timed_login(r: &Relay, addr: &str) -> (Resp, f64) {
    let mut c = r.imaps();
    let t = Instant::now();
    let l = c.login(addr, PASSWORD);
    (l, t.elapsed().as_secs_f64())
}

#[test]
fn wrong_password_flood_does_not_delay_other_logins() {
    let r = Relay::start(60);
    // Baseline without load: one Argon2 hash.
    let (l, base) = timed_login(&r, &r.addr("baseline1"));
    assert!(l.ok(), "{l:?}");
    // Accounts under attack, each already failing once (known-failing).
    let victims: Vec<String> = (0..FLOOD_CONNS)
        .map(|i| r.addr(&format!("victim{i:03}")))
        .collect();
    for v in &victims {
        assert!(r.imaps().login(v, PASSWORD).ok());
        assert!(r.imaps().login(v, "wrong-password").no());
    }
    // An existing account with a cached login, and an idle logged-in session.
    let repeat = r.addr("repeater1");
    assert!(r.imaps().login(&repeat, PASSWORD).ok());
    let mut idle = r.login("noopuser1");

    let sock = r.sock(993);
    let floods: Vec<_> = victims
        .iter()
        .cloned()
        .map(|v| std::thread::spawn(move || flood(sock, &v, FLOOD_PER_CONN)))
        .collect();
    // NOOPs every 50 ms while the flood runs.
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let noops = std::thread::spawn(move || {
        let mut worst = 0f64;
        let mut n = 0;
        while !st.load(Ordering::SeqCst) {
            let t = Instant::now();
            let r = idle.cmd("NOOP");
            assert!(r.ok(), "{r:?}");
            worst = worst.max(t.elapsed().as_secs_f64());
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        (n, worst)
    });
    std::thread::sleep(Duration::from_millis(300));
    let (newl, t_new) = timed_login(&r, &r.addr("newcomer1"));
    let (rep, t_rep) = timed_login(&r, &repeat);
    std::thread::sleep(Duration::from_millis(1000));
    let (newl2, t_new2) = timed_login(&r, &r.addr("newcomer2"));
    let results: Vec<Flood> = floods.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    let (noop_n, noop_worst) = noops.join().unwrap();

    let total_no: usize = results.iter().map(|f| f.no).sum();
    let total_unavail: usize = results.iter().map(|f| f.unavailable).sum();
    let slowest = results.iter().map(|f| f.secs).fold(0f64, f64::max);
    println!(
        "baseline first login {:.0} ms; during a flood of {FLOOD_CONNS}x{FLOOD_PER_CONN} wrong \
         logins: first login {:.0} ms, cached repeat login {:.0} ms, first login 1.3 s in {:.0} ms; \
         {noop_n} NOOPs, slowest {:.0} ms; flood: {total_no} NO replies ({total_unavail} \
         [UNAVAILABLE]) of {} attempts, connections closed after at most {slowest:.1} s",
        base * 1e3,
        t_new * 1e3,
        t_rep * 1e3,
        t_new2 * 1e3,
        noop_worst * 1e3,
        FLOOD_CONNS * FLOOD_PER_CONN,
    );
    assert!(newl.ok(), "{newl:?}");
    assert!(rep.ok(), "{rep:?}");
    assert!(newl2.ok(), "{newl2:?}");
    // Generous for a loaded CI machine; without throttling this took
    // hundreds of hashes (seconds).
    assert!(t_new < 1.5, "first login took {t_new:.3} s");
    assert!(t_new2 < 1.5, "first login took {t_new2:.3} s");
    assert!(t_rep < 0.5, "cached login took {t_rep:.3} s");
    assert!(noop_worst < 0.5, "NOOP took {noop_worst:.3} s");
    for f in &results {
        assert!(f.closed && f.bye, "flooding connection not closed: {f:?}");
        assert_eq!(f.ok, 0, "{f:?}");
        assert!(f.no <= 10, "connection answered too many attempts: {f:?}");
        // Slowed: ten failures take seconds, not milliseconds.
        assert!(f.secs > 2.0, "{f:?}");
    }
    // The victims' right password still works (after the per-account delay).
    let mut c = r.imaps();
    let t = Instant::now();
    let l = c.login(&victims[0], PASSWORD);
    println!(
        "victim's own login after the flood: {:?} in {:.0} ms",
        l.tagged,
        t.elapsed().as_secs_f64() * 1e3
    );
    assert!(l.ok() || l.tagged.contains("[UNAVAILABLE]"), "{l:?}");
    r.assert_no_panic();
}

#[test]
fn failures_on_one_connection_slow_down_and_close_it() {
    let r = Relay::start(61);
    let addr = r.addr("target001");
    assert!(r.imaps().login(&addr, PASSWORD).ok());
    let mut c = r.imaps();
    let mut times = Vec::new();
    let mut closed_after = None;
    for i in 0..15 {
        let t = Instant::now();
        let tag = c.next_tag();
        if c.try_send_raw(format!("{tag} LOGIN {} \"nope-nope-nope\"\r\n", quote(&addr)).as_bytes())
            .is_err()
        {
            closed_after = Some(i);
            break;
        }
        match c.try_read_until_tagged(&tag) {
            Ok(l) => {
                assert!(l.no(), "{l:?}");
                times.push(t.elapsed().as_secs_f64());
                if l.has("* BYE") {
                    assert!(c.closed_within(Duration::from_secs(5)));
                    closed_after = Some(i + 1);
                    break;
                }
            }
            Err(_) => {
                closed_after = Some(i);
                break;
            }
        }
    }
    println!("failure reply times (s): {times:.2?}; closed after {closed_after:?}");
    assert_eq!(closed_after, Some(10), "{times:?}");
    // Increasing delays.
    assert!(times[5] > times[0] + 0.3, "{times:?}");
    // An unknown-but-invalid address also counts (no hash spent on it).
    let mut c = r.imaps();
    for _ in 0..3 {
        assert!(c.login("Not-Valid@nowhere", "x12345678").no());
    }
    // A fresh connection with the right password works (cached login).
    let mut c = r.imaps();
    assert!(c.login(&addr, PASSWORD).ok());
    r.assert_no_panic();
}

/// SMTP AUTH shares the throttling: `421` after too many failures.
#[test]
fn smtp_auth_failures_close_the_connection() {
    let r = Relay::start_with(62, "submissions_port = 465");
    let addr = r.addr("smtpuser1");
    assert!(r.imaps().login(&addr, PASSWORD).ok());
    let mut s = tls_connect(r.sock(465), &[]);
    let mut buf = Vec::new();
    let read = |s: &mut Box<dyn ReadWrite>, buf: &mut Vec<u8>| -> Option<String> {
        use std::io::Read;
        loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                let l: Vec<u8> = buf.drain(..i + 2).collect();
                return Some(String::from_utf8_lossy(&l[..i]).into_owned());
            }
            let mut t = [0u8; 4096];
            match s.read(&mut t) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&t[..n]),
            }
        }
    };
    use std::io::Write;
    assert!(read(&mut s, &mut buf).unwrap().starts_with("220"));
    s.write_all(b"EHLO client.test\r\n").unwrap();
    while let Some(l) = read(&mut s, &mut buf) {
        if l.starts_with("250 ") {
            break;
        }
    }
    use base64::Engine;
    let bad = base64::engine::general_purpose::STANDARD.encode(format!("\0{addr}\0wrong-password"));
    let mut codes = Vec::new();
    for _ in 0..12 {
        if s.write_all(format!("AUTH PLAIN {bad}\r\n").as_bytes())
            .is_err()
        {
            break;
        }
        match read(&mut s, &mut buf) {
            Some(l) => codes.push(l[..3].to_string()),
            None => break,
        }
        if codes.last().map(String::as_str) == Some("421") {
            break;
        }
    }
    println!("SMTP AUTH replies: {codes:?}");
    assert_eq!(codes.last().map(String::as_str), Some("421"), "{codes:?}");
    assert!(codes.len() <= 10, "{codes:?}");
    r.assert_no_panic();
}
