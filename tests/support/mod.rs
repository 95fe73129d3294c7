//! Test world for the federation tests: a blocking SMTP client, submission
//! and INBOX polling helpers, a small authoritative DNS server on loopback
//! and a test CA (rcgen). Used as `#[path = "support/mod.rs"] mod support;`
//! next to `mod common;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{self, Imap, ReadWrite, Relay, PASSWORD};

// ------------------------------------------------------------------ messages

/// The real-gpg encrypted fixture with From/To/Message-ID replaced.
pub fn encrypted(from: &str, to: &str, id: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml/encrypted.eml");
    let t = std::fs::read_to_string(p).unwrap();
    let t = t
        .replace("<encrypted@example.org>", &format!("<{id}@chatrelay.test>"))
        .replace("alice@example.org", from)
        .replace("bob@example.org", to)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    t.into_bytes()
}

/// A PGP/MIME message (the real fixture's structure) whose encrypted part is
/// one SEIPD packet of `payload` bytes, so it passes the relay's policy.
pub fn big_encrypted(from: &str, to: &str, id: &str, payload: usize) -> Vec<u8> {
    use base64::Engine;
    let text = String::from_utf8(encrypted(from, to, id)).unwrap();
    let begin = "-----BEGIN PGP MESSAGE-----\r\n\r\n";
    let i = text.find(begin).unwrap() + begin.len();
    let j = text.find("-----END PGP MESSAGE-----").unwrap();
    let mut bin = vec![0xD2u8, 0xFF];
    bin.extend_from_slice(&(payload as u32).to_be_bytes());
    bin.push(1);
    let mut x: u32 = 0x1234_5678;
    for _ in 1..payload {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bin.push((x >> 24) as u8);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bin);
    let mut armored = String::new();
    for chunk in b64.as_bytes().chunks(64) {
        armored.push_str(std::str::from_utf8(chunk).unwrap());
        armored.push_str("\r\n");
    }
    format!("{}{armored}{}", &text[..i], &text[j..]).into_bytes()
}

/// A plain, unencrypted message.
pub fn plaintext(from: &str, to: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: hello\r\nMessage-ID: <{id}@chatrelay.test>\r\n\
         Date: Tue, 01 Apr 2025 10:00:00 +0000\r\n\r\nplain text\r\n"
    )
    .into_bytes()
}

// ------------------------------------------------------------------ SMTP client

pub struct Smtp {
    pub s: Box<dyn ReadWrite>,
    plain: Option<TcpStream>,
    pub tcp: TcpStream,
    buf: Vec<u8>,
    pub greeting: String,
}

/// One reply: code and all lines joined by `\n`.
#[derive(Debug, Clone)]
pub struct SmtpReply {
    pub code: u16,
    pub text: String,
}

impl SmtpReply {
    pub fn line(&self) -> String {
        self.text.lines().last().unwrap_or("").to_string()
    }
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> Smtp {
        let t = common::tcp(addr);
        let h = t.try_clone().unwrap();
        let p = t.try_clone().unwrap();
        let mut c = Smtp {
            s: Box::new(t),
            plain: Some(p),
            tcp: h,
            buf: Vec::new(),
            greeting: String::new(),
        };
        let g = c.read();
        assert_eq!(g.code, 220, "greeting {g:?}");
        c.greeting = g.text;
        c
    }

    /// Implicit TLS (port 465), any certificate accepted.
    pub fn connect_tls(addr: SocketAddr) -> Smtp {
        let t = common::tcp(addr);
        let h = t.try_clone().unwrap();
        let mut c = Smtp {
            s: common::tls_wrap(t, &[]),
            plain: None,
            tcp: h,
            buf: Vec::new(),
            greeting: String::new(),
        };
        let g = c.read();
        assert_eq!(g.code, 220, "greeting {g:?}");
        c.greeting = g.text;
        c
    }

    /// The underlying stream, for reading until the server closes.
    pub fn into_reader(self) -> Box<dyn ReadWrite> {
        self.s
    }

    pub fn try_read(&mut self) -> std::io::Result<SmtpReply> {
        let mut lines = Vec::new();
        loop {
            let line = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    let l: Vec<u8> = self.buf.drain(..i + 2).collect();
                    break String::from_utf8_lossy(&l[..i]).into_owned();
                }
                let mut tmp = [0u8; 8192];
                let n = self.s.read(&mut tmp)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                self.buf.extend_from_slice(&tmp[..n]);
            };
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                break;
            }
        }
        let code = lines
            .last()
            .and_then(|l| l.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok(SmtpReply {
            code,
            text: lines.join("\n"),
        })
    }

    pub fn read(&mut self) -> SmtpReply {
        self.try_read()
            .unwrap_or_else(|e| panic!("reading SMTP reply: {e}"))
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("send");
        self.s.flush().expect("flush");
    }

    pub fn try_send(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.s.write_all(b)?;
        self.s.flush()
    }

    pub fn cmd(&mut self, line: &str) -> SmtpReply {
        self.send(format!("{line}\r\n").as_bytes());
        self.read()
    }

    pub fn starttls(&mut self) {
        let r = self.cmd("STARTTLS");
        assert_eq!(r.code, 220, "{r:?}");
        let t = self.plain.take().expect("plain connection");
        self.s = common::tls_wrap(t, &[]);
    }

    /// EHLO, STARTTLS, EHLO.
    pub fn mx_ready(addr: SocketAddr) -> Smtp {
        let mut c = Smtp::connect(addr);
        let r = c.cmd("EHLO peer.test");
        assert_eq!(r.code, 250, "{r:?}");
        assert!(r.text.contains("STARTTLS"), "{r:?}");
        c.starttls();
        let r = c.cmd("EHLO peer.test");
        assert_eq!(r.code, 250, "{r:?}");
        c
    }

    /// DATA with dot-stuffing; returns the final reply (or the 354-less one).
    pub fn data(&mut self, msg: &[u8]) -> SmtpReply {
        let r = self.cmd("DATA");
        if r.code != 354 {
            return r;
        }
        let mut out = Vec::new();
        for line in msg.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.send(&out);
        self.read()
    }

    /// A whole transaction; returns the first non-2xx reply or the DATA reply.
    pub fn transaction(&mut self, from: &str, rcpts: &[&str], msg: &[u8]) -> SmtpReply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        if r.code != 250 {
            return r;
        }
        for rc in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rc}>"));
            if r.code != 250 {
                let _ = self.cmd("RSET");
                return r;
            }
        }
        self.data(msg)
    }
}

/// Submit `msg` as `local@relay` over port 465 (AUTH PLAIN).
pub fn submit(r: &Relay, local: &str, rcpts: &[&str], msg: &[u8]) -> SmtpReply {
    let from = r.addr(local);
    submit_as(r.sock(465), &from, rcpts, msg)
}

pub fn submit_as(addr: SocketAddr, from: &str, rcpts: &[&str], msg: &[u8]) -> SmtpReply {
    use base64::Engine;
    let mut c = Smtp::connect_tls(addr);
    let r = c.cmd("EHLO client.test");
    assert_eq!(r.code, 250, "{r:?}");
    let tok = base64::engine::general_purpose::STANDARD.encode(format!("\0{from}\0{PASSWORD}"));
    let r = c.cmd(&format!("AUTH PLAIN {tok}"));
    assert_eq!(r.code, 235, "{r:?}");
    let r = c.transaction(from, rcpts, msg);
    let _ = c.cmd("QUIT");
    r
}

/// Create the account `local` (first login creates it) and log out.
pub fn create_account(r: &Relay, local: &str) {
    let mut c = r.login(local);
    let _ = c.cmd("LOGOUT");
}

// ------------------------------------------------------------------ INBOX

/// The full text of every message in `local`'s INBOX (one IMAP session).
pub struct Inbox {
    c: Imap,
}

impl Inbox {
    pub fn open(r: &Relay, local: &str) -> Inbox {
        Inbox { c: r.login(local) }
    }

    /// Log in with a full address (named-domain relays); creates the account.
    pub fn open_addr(r: &Relay, addr: &str) -> Inbox {
        let mut c = r.imaps();
        let resp = c.login(addr, PASSWORD);
        assert!(resp.ok(), "login {addr}: {resp:?}");
        Inbox { c }
    }

    pub fn messages(&mut self) -> Vec<String> {
        let r = self.c.select("INBOX");
        let exists = r
            .lines()
            .iter()
            .find_map(|l| {
                l.strip_prefix("* ")?
                    .strip_suffix(" EXISTS")?
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or(0);
        if exists == 0 {
            return Vec::new();
        }
        let r = self.c.cmd("FETCH 1:* (BODY.PEEK[])");
        assert!(r.ok(), "{r:?}");
        r.lines()
    }

    /// Poll until a message contains `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, d: Duration) -> Option<String> {
        let deadline = Instant::now() + d;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| m.contains(needle)) {
                return Some(m);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn count(&mut self, needle: &str) -> usize {
        self.messages()
            .iter()
            .filter(|m| m.contains(needle))
            .count()
    }
}

// ------------------------------------------------------------------ DNS server

pub const A: u16 = 1;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;

/// Records by (lower-case name, type); names with any record exist, all other
/// names are NXDOMAIN.
#[derive(Default)]
pub struct Zone {
    recs: HashMap<(String, u16), Vec<Vec<u8>>>,
}

pub fn name_wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

impl Zone {
    pub fn add(&mut self, name: &str, rtype: u16, rdata: Vec<u8>) {
        self.recs
            .entry((name.to_ascii_lowercase(), rtype))
            .or_default()
            .push(rdata);
    }
    pub fn mx(&mut self, name: &str, pref: u16, host: &str) {
        let mut v = pref.to_be_bytes().to_vec();
        v.extend(name_wire(host));
        self.add(name, MX, v);
    }
    /// RFC 7505 null MX: `0 .`
    pub fn null_mx(&mut self, name: &str) {
        self.add(name, MX, vec![0, 0, 0]);
    }
    pub fn a(&mut self, name: &str, ip: &str) {
        self.add(name, A, ip.parse::<Ipv4Addr>().unwrap().octets().to_vec());
    }
    /// One TXT record split into 255-byte character-strings.
    pub fn txt(&mut self, name: &str, text: &str) {
        let mut v = Vec::new();
        for c in text.as_bytes().chunks(255) {
            v.push(c.len() as u8);
            v.extend_from_slice(c);
        }
        self.add(name, TXT, v);
    }
    pub fn remove(&mut self, name: &str, rtype: u16) {
        self.recs.remove(&(name.to_ascii_lowercase(), rtype));
    }
    /// Every record `chatrelay dns` asks a relay for `domain` to publish
    /// (spec §10): A (at `ip`, also for `mta-sts.` and `www.`), MX at `mx`,
    /// the DKIM key `dkim` (the TXT value), SPF and a strict DMARC policy.
    pub fn relay(domain: &str, ip: &str, mx: &str, dkim: &str) -> Zone {
        let mut z = Zone::default();
        z.a(domain, ip);
        z.mx(domain, 10, mx);
        z.txt(&format!("opendkim._domainkey.{domain}"), dkim);
        z.txt(domain, "v=spf1 a ~all");
        z.txt(
            &format!("_dmarc.{domain}"),
            "v=DMARC1;p=reject;adkim=s;aspf=s",
        );
        z.a(&format!("mta-sts.{domain}"), ip);
        z.a(&format!("www.{domain}"), ip);
        z
    }
    fn exists(&self, name: &str) -> bool {
        self.recs.keys().any(|(n, _)| n == name)
    }
}

pub struct DnsServer {
    pub addr: SocketAddr,
    pub zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    /// UDP queries received so far.
    pub queries: Arc<std::sync::atomic::AtomicUsize>,
    /// Each UDP answer is sent this long after its query (a slow resolver).
    pub delay: Arc<Mutex<Duration>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn answer(zone: &Zone, q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let n = *q.get(pos)? as usize;
        pos += 1;
        if n == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(pos..pos + n)?).to_ascii_lowercase());
        pos += n;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    let question = q.get(12..pos + 4)?;
    let name = labels.join(".");
    let mut m = Vec::new();
    m.extend_from_slice(&q[0..2]);
    let rcode: u16 = if zone.exists(&name) { 0 } else { 3 };
    m.extend((0x8580u16 | rcode).to_be_bytes()); // QR AA RD RA
    let recs = zone.recs.get(&(name.clone(), qtype));
    let an = recs.map_or(0, |v| v.len());
    for n in [1, an, 0, 0] {
        m.extend((n as u16).to_be_bytes());
    }
    m.extend_from_slice(question);
    for rd in recs.into_iter().flatten() {
        m.extend([0xc0, 12]); // pointer to the question name
        m.extend(qtype.to_be_bytes());
        m.extend(1u16.to_be_bytes());
        m.extend(5u32.to_be_bytes()); // short TTL
        m.extend((rd.len() as u16).to_be_bytes());
        m.extend(rd);
    }
    Some(m)
}

impl DnsServer {
    /// Serve UDP and TCP on `ip:port` (port 0 = any).
    pub fn start(ip: &str, zone: Zone) -> DnsServer {
        let zone = Arc::new(Mutex::new(zone));
        let stop = Arc::new(AtomicBool::new(false));
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind((ip, 0)).ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("bind test DNS server");
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        {
            let (zone, stop) = (zone.clone(), stop.clone());
            let (queries, delay) = (queries.clone(), delay.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    queries.fetch_add(1, Ordering::SeqCst);
                    let Some(a) = answer(&zone.lock().unwrap(), &buf[..n]) else {
                        continue;
                    };
                    let wait = *delay.lock().unwrap();
                    if wait.is_zero() {
                        let _ = udp.send_to(&a, from);
                    } else if let Ok(u) = udp.try_clone() {
                        thread::spawn(move || {
                            thread::sleep(wait);
                            let _ = u.send_to(&a, from);
                        });
                    }
                }
            });
        }
        {
            let (zone, stop) = (zone.clone(), stop.clone());
            tcp.set_nonblocking(true).unwrap();
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((mut s, _)) = tcp.accept() else {
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    let zone = zone.clone();
                    thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).is_err() {
                            return;
                        }
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        if s.read_exact(&mut q).is_err() {
                            return;
                        }
                        let Some(a) = answer(&zone.lock().unwrap(), &q) else {
                            return;
                        };
                        let mut framed = (a.len() as u16).to_be_bytes().to_vec();
                        framed.extend(a);
                        let _ = s.write_all(&framed);
                    });
                }
            });
        }
        DnsServer {
            addr,
            zone,
            stop,
            queries,
            delay,
        }
    }
}

/// Generate (or load) the relay's DKIM key in `data_dir` the way the server
/// does on first start, and return the TXT record text.
pub fn dkim_record(data_dir: &Path, selector: &str) -> String {
    std::fs::create_dir_all(data_dir).unwrap();
    chatrelay::dkim::SigningKey::load_or_generate(data_dir, selector, false)
        .expect("DKIM key")
        .dns_record()
}

// ------------------------------------------------------------------ test CA

pub struct TestCa {
    pub dir: PathBuf,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "chatrelay federation test CA");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        TestCa {
            dir: dir.to_path_buf(),
            cert,
            key,
        }
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issue a server certificate for `host`; returns (cert path, key path).
    pub fn issue(&self, host: &str) -> (PathBuf, PathBuf) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![host.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, host);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let cp = self.dir.join(format!("{host}.crt"));
        let kp = self.dir.join(format!("{host}.key"));
        std::fs::write(&cp, cert.pem()).unwrap();
        std::fs::write(&kp, key.serialize_pem()).unwrap();
        (cp, kp)
    }
}

// ------------------------------------------------------------------ named relays

/// A relay with a DNS name, its records published on a [`DnsServer`].
pub struct Named {
    pub r: Relay,
    pub domain: String,
}

impl Named {
    pub fn addr(&self, local: &str) -> String {
        format!("{local}@{}", self.domain)
    }
    pub fn inbox(&self, local: &str) -> Inbox {
        Inbox::open_addr(&self.r, &self.addr(local))
    }
    pub fn submit(&self, local: &str, to: &str, id: &str) {
        let from = self.addr(local);
        let r = submit_as(self.r.sock(465), &from, &[to], &encrypted(&from, to, id));
        assert_eq!(r.code, 250, "{r:?}");
    }
}

/// Start `domain` on 127.0.0.`n` (MX 25, submissions 465, HTTPS 443) using
/// `dns`, trusting `ca`; with `cert` a certificate from `ca`, else the
/// server's own (self-signed) one. Publishes MX, A and the DKIM key.
pub fn start_named(
    n: u8,
    domain: &str,
    dns: &DnsServer,
    ca: &TestCa,
    cert: bool,
    extra: &str,
) -> Named {
    let tls = if cert {
        let (c, k) = ca.issue(domain);
        format!(
            "tls_external_cert_and_key = {} {}\n",
            c.display(),
            k.display()
        )
    } else {
        String::new()
    };
    let r = Relay::start_with(
        n,
        &format!(
            "mail_domain = {domain}\nsmtp_port = 25\nsubmissions_port = 465\n\
             queue_retry_min = 1\nusername_min_length = 3\nusername_max_length = 20\n\
             max_load_1m = 1000\nmin_available_memory = 0\nmin_free_disk_space = 0\n\
             dns_servers = {}\ntls_extra_ca = {}\n{tls}{extra}",
            dns.addr,
            ca.ca_path().display()
        ),
    );
    // The key was generated at first start; publish it with the A and MX.
    let record = dkim_record(&r.data_dir(), "opendkim");
    {
        let mut z = dns.zone.lock().unwrap();
        z.mx(domain, 10, domain);
        z.a(domain, &r.ip());
        z.txt(&format!("opendkim._domainkey.{domain}"), &record);
    }
    Named {
        r,
        domain: domain.into(),
    }
}
