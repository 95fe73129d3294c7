//! Shared helpers for the integration tests: start the real `chatrelay`
//! binary on its own 127.0.0.N, a blocking TLS client that accepts the
//! self-signed certificate, a tiny IMAP client and raw HTTPS requests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Only a guard against hangs: debug-build Argon2 takes ~0.5 s per hash and
/// parallel tests contend for the CPU.
pub mod deflate;

pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub const PASSWORD: &str = "password123";

// ---------------------------------------------------------------- temp dirs

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "chatrelay-test-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- relay process

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chatrelay")
}

/// A running relay on `127.0.0.N` with IMAP 143/993 and HTTPS 443; SMTP off.
pub struct Relay {
    pub n: u8,
    pub dir: TempDir,
    pub extra: String,
    child: Option<Child>,
}

impl Relay {
    pub fn ip(&self) -> String {
        format!("127.0.0.{}", self.n)
    }
    pub fn domain(&self) -> String {
        format!("[127.0.0.{}]", self.n)
    }
    /// `local@[127.0.0.N]`
    pub fn addr(&self, local: &str) -> String {
        format!("{local}@{}", self.domain())
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("chatmail.ini")
    }
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }
    pub fn sock(&self, port: u16) -> SocketAddr {
        format!("{}:{port}", self.ip()).parse().unwrap()
    }

    /// Start with the default test config plus `extra` lines in `[params]`.
    pub fn start(n: u8) -> Relay {
        Self::start_with(n, "")
    }

    pub fn start_with(n: u8, extra: &str) -> Relay {
        let dir = TempDir::new(&format!("n{n}"));
        let mut r = Relay {
            n,
            dir,
            extra: extra.to_string(),
            child: None,
        };
        r.write_config();
        r.spawn();
        r
    }

    /// Start in an existing folder (its `data/` may hold a restored data
    /// folder), with the default test config plus `extra`.
    pub fn start_in(n: u8, dir: TempDir, extra: &str) -> Relay {
        let mut r = Relay {
            n,
            dir,
            extra: extra.to_string(),
            child: None,
        };
        r.write_config();
        r.spawn();
        r
    }

    pub fn config_text(&self) -> String {
        config_text(self.n, &self.data_dir(), &self.extra)
    }

    fn write_config(&self) {
        std::fs::write(self.config_path(), self.config_text()).unwrap();
    }

    fn spawn(&mut self) {
        // Truncate the log so readiness is detected for this run only.
        let log = std::fs::File::create(self.stderr_path()).unwrap();
        let child = Command::new(bin())
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn chatrelay");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.stderr().contains("chatrelay ready") {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("chatrelay exited early ({st}); stderr:\n{}", self.stderr());
            }
            if Instant::now() > deadline {
                panic!("chatrelay not ready in time; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the server (no clean shutdown).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill and start again on the same data dir and config.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The server's process id (for /proc readings in tests).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// (current RSS, peak RSS) of the server in KiB, from /proc.
    pub fn rss_kib(&self) -> (u64, u64) {
        let st = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| -> u64 {
            st.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The server process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    pub fn assert_no_panic(&self) {
        let e = self.stderr();
        assert!(!e.contains("panicked"), "server panicked; stderr:\n{e}");
    }

    /// Assert the server is alive and serves a fresh IMAPS connection.
    pub fn assert_serving(&mut self) {
        assert!(self.alive(), "server died; stderr:\n{}", self.stderr());
        let mut c = self.imaps();
        let r = c.cmd("NOOP");
        assert!(r.ok(), "{r:?}");
        let _ = c.cmd("LOGOUT");
        self.assert_no_panic();
    }

    pub fn imaps(&self) -> Imap {
        Imap::connect_tls(self.sock(993))
    }

    pub fn imap_plain(&self) -> Imap {
        Imap::connect_plain(self.sock(143))
    }

    /// IMAPS connection logged in as `local` with [`PASSWORD`].
    pub fn login(&self, local: &str) -> Imap {
        let mut c = self.imaps();
        let r = c.cmd(&format!("LOGIN {} {PASSWORD}", quote(&self.addr(local))));
        assert!(r.ok(), "login failed: {r:?}");
        c
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn config_text(n: u8, data_dir: &Path, extra: &str) -> String {
    format!(
        "[params]\nmail_domain = 127.0.0.{n}\nlisten_address = 127.0.0.{n}\ndata_dir = {}\n\
         smtp_port = 0\nsubmission_port = 0\nsubmissions_port = 0\nimap_port = 143\n\
         imaps_port = 993\nhttps_port = 443\nhttp_port = 0\n\
         nocreate_file = {}\n\
         max_load_1m = 1000\nmin_available_memory = 1M\nmin_free_disk_space = 1M\n\
         acme_directory = off\nself_check_interval = 0\n{extra}\n",
        data_dir.display(),
        data_dir.with_file_name("nocreate").display(),
    )
}

/// Run `chatrelay serve --config <text>` expecting it to exit by itself
/// within the deadline. Returns (exit code, stderr). Kills it on timeout
/// and returns `None` as the code.
pub fn run_expect_exit(dir: &Path, ini: &str, wait: Duration) -> (Option<i32>, String) {
    let cfg = dir.join("chatmail.ini");
    std::fs::write(&cfg, ini).unwrap();
    run_args_expect_exit(dir, &["serve", "--config", cfg.to_str().unwrap()], wait)
}

pub fn run_args_expect_exit(dir: &Path, args: &[&str], wait: Duration) -> (Option<i32>, String) {
    let errp = dir.join("exit-stderr.log");
    let log = std::fs::File::create(&errp).unwrap();
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + wait;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&errp).unwrap_or_default())
}

/// Poll `f` until it returns true or the deadline passes.
pub fn wait_until(d: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + d;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- TLS

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

pub fn tls_wrap(tcp: TcpStream, alpn: &[&[u8]]) -> Box<dyn ReadWrite> {
    let ip = tcp.peer_addr().unwrap().ip();
    let conn = rustls::ClientConnection::new(
        client_config(alpn),
        rustls::pki_types::ServerName::IpAddress(ip.into()),
    )
    .unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Drive the handshake now so errors surface here.
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .unwrap_or_else(|e| panic!("TLS handshake: {e}"));
    }
    Box::new(s)
}

pub fn tls_connect(addr: SocketAddr, alpn: &[&[u8]]) -> Box<dyn ReadWrite> {
    tls_wrap(tcp(addr), alpn)
}

// ---------------------------------------------------------------- IMAP

/// IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Response to one tagged command: untagged/continuation lines (each with any
/// literals inlined as `{n}\r\n<bytes>`), and the tagged completion line.
#[derive(Debug, Clone)]
pub struct Resp {
    pub untagged: Vec<Vec<u8>>,
    pub tagged: String,
}

impl Resp {
    pub fn status(&self) -> &str {
        self.tagged.split(' ').nth(1).unwrap_or("")
    }
    pub fn ok(&self) -> bool {
        self.status() == "OK"
    }
    pub fn no(&self) -> bool {
        self.status() == "NO"
    }
    pub fn bad(&self) -> bool {
        self.status() == "BAD"
    }
    pub fn lines(&self) -> Vec<String> {
        self.untagged
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
    /// All untagged text joined, for `contains` checks.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }
    pub fn has(&self, needle: &str) -> bool {
        self.untagged
            .iter()
            .any(|l| String::from_utf8_lossy(l).contains(needle))
    }
}

pub struct Imap {
    pub s: Box<dyn ReadWrite>,
    buf: Vec<u8>,
    tagn: u32,
    pub greeting: String,
    tcp_only: Option<TcpStream>,
    /// A handle on the socket under any TLS, to change timeouts.
    pub tcp: TcpStream,
}

impl Imap {
    /// Register a push token (`SETMETADATA INBOX (/private/devicetoken …)`).
    pub fn set_device_token(&mut self, tok: &str) {
        let r = self.cmd(&format!(
            "SETMETADATA INBOX (/private/devicetoken {})",
            quote(tok)
        ));
        assert!(r.ok(), "{r:?}");
    }

    /// Valid tokens as GETMETADATA returns them (space-separated), or None.
    pub fn device_tokens(&mut self) -> Option<String> {
        let r = self.cmd("GETMETADATA INBOX (/private/devicetoken)");
        assert!(r.ok(), "{r:?}");
        let t = r.text();
        if t.contains("/private/devicetoken NIL") {
            return None;
        }
        let i = t.find("}\r\n").expect("literal value");
        Some(t[i + 3..].trim_end_matches(')').to_string())
    }

    fn from_stream(s: Box<dyn ReadWrite>, tcp: TcpStream, tcp_only: Option<TcpStream>) -> Imap {
        let mut c = Imap {
            s,
            buf: Vec::new(),
            tagn: 0,
            greeting: String::new(),
            tcp_only,
            tcp,
        };
        c.greeting = String::from_utf8_lossy(&c.read_response_line()).into_owned();
        assert!(c.greeting.starts_with("* OK"), "greeting: {}", c.greeting);
        c
    }

    pub fn connect_tls(addr: SocketAddr) -> Imap {
        Self::connect_tls_alpn(addr, &[])
    }

    pub fn connect_tls_alpn(addr: SocketAddr, alpn: &[&[u8]]) -> Imap {
        let t = tcp(addr);
        let h = t.try_clone().unwrap();
        Self::from_stream(tls_wrap(t, alpn), h, None)
    }

    /// IMAPS over a TCP connection made by the caller (e.g. from another source address).
    pub fn connect_tls_over(t: TcpStream) -> Imap {
        t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let h = t.try_clone().unwrap();
        Self::from_stream(tls_wrap(t, &[]), h, None)
    }

    /// The underlying stream, for reading until the server closes.
    pub fn into_reader(self) -> Box<dyn ReadWrite> {
        self.s
    }

    pub fn connect_plain(addr: SocketAddr) -> Imap {
        let t = tcp(addr);
        let t2 = t.try_clone().unwrap();
        let h = t.try_clone().unwrap();
        Self::from_stream(Box::new(t), h, Some(t2))
    }

    /// STARTTLS on a plain connection; panics unless the server agrees.
    pub fn starttls(&mut self) {
        let r = self.cmd("STARTTLS");
        assert!(r.ok(), "{r:?}");
        assert!(self.buf.is_empty());
        let t = self.tcp_only.take().expect("plain connection");
        self.s = tls_wrap(t, &[]);
        // The server sends no greeting after STARTTLS.
    }

    pub fn next_tag(&mut self) -> String {
        self.tagn += 1;
        format!("a{:03}", self.tagn)
    }

    pub fn send_raw(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("send");
        self.s.flush().expect("flush");
    }

    /// Send bytes, ignoring errors (the server may already have closed).
    pub fn try_send_raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.s.write_all(b)?;
        self.s.flush()
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 16384];
        let n = self.s.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// One raw CRLF line without the CRLF; `Err` on EOF/timeout.
    pub fn try_read_line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn read_exact_buf(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One response (line plus any literals it announces); `Err` on EOF/timeout.
    pub fn try_read_response_line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let line = self.try_read_line()?;
            out.extend_from_slice(&line);
            match literal_len(&line) {
                Some(n) => {
                    out.extend_from_slice(b"\r\n");
                    let lit = self.read_exact_buf(n)?;
                    out.extend_from_slice(&lit);
                }
                None => return Ok(out),
            }
        }
    }

    pub fn read_response_line(&mut self) -> Vec<u8> {
        self.try_read_response_line()
            .unwrap_or_else(|e| panic!("reading IMAP response: {e}"))
    }

    /// Collect responses until the tagged line for `tag`.
    pub fn read_until_tagged(&mut self, tag: &str) -> Resp {
        self.try_read_until_tagged(tag)
            .unwrap_or_else(|e| panic!("waiting for {tag}: {e}"))
    }

    pub fn try_read_until_tagged(&mut self, tag: &str) -> std::io::Result<Resp> {
        let mut untagged = Vec::new();
        let prefix = format!("{tag} ");
        loop {
            let l = self.try_read_response_line()?;
            if l.starts_with(prefix.as_bytes()) {
                return Ok(Resp {
                    untagged,
                    tagged: String::from_utf8_lossy(&l).into_owned(),
                });
            }
            untagged.push(l);
        }
    }

    /// Send `TAG <cmd>` and read to the tagged reply.
    pub fn cmd(&mut self, cmd: &str) -> Resp {
        let tag = self.next_tag();
        self.send_raw(format!("{tag} {cmd}\r\n").as_bytes());
        self.read_until_tagged(&tag)
    }

    /// A command whose last argument is a synchronising literal.
    pub fn cmd_literal(&mut self, prefix: &str, data: &[u8]) -> Resp {
        let tag = self.next_tag();
        self.send_raw(format!("{tag} {prefix} {{{}}}\r\n", data.len()).as_bytes());
        let l = self.read_response_line();
        if !l.starts_with(b"+") {
            let mut r = Resp {
                untagged: vec![],
                tagged: String::from_utf8_lossy(&l).into_owned(),
            };
            if !r.tagged.starts_with(&tag) {
                r = self.read_until_tagged(&tag);
            }
            return r;
        }
        let mut d = data.to_vec();
        d.extend_from_slice(b"\r\n");
        self.send_raw(&d);
        self.read_until_tagged(&tag)
    }

    pub fn append(&mut self, mailbox: &str, flags: &str, msg: &[u8]) -> Resp {
        let fl = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({flags})")
        };
        self.cmd_literal(&format!("APPEND {}{fl}", quote(mailbox)), msg)
    }

    /// APPEND and return the new UID from `[APPENDUID v uid]`.
    pub fn append_uid(&mut self, mailbox: &str, flags: &str, msg: &[u8]) -> u32 {
        let r = self.append(mailbox, flags, msg);
        assert!(r.ok(), "{r:?}");
        let i = r
            .tagged
            .find("[APPENDUID ")
            .unwrap_or_else(|| panic!("no APPENDUID: {}", r.tagged));
        let rest = &r.tagged[i + 11..];
        let mut it = rest.split([' ', ']']);
        let _validity = it.next();
        it.next().unwrap().parse().unwrap()
    }

    pub fn login(&mut self, addr: &str, pass: &str) -> Resp {
        self.cmd(&format!("LOGIN {} {}", quote(addr), quote(pass)))
    }

    pub fn select(&mut self, mb: &str) -> Resp {
        let r = self.cmd(&format!("SELECT {}", quote(mb)));
        assert!(r.ok(), "{r:?}");
        r
    }

    /// Read one response (line + literals) within `d`; `None` on timeout/EOF.
    /// A timeout may leave a partial TLS record read; only use the
    /// connection further after a `Some`.
    pub fn read_response_within(&mut self, d: Duration) -> Option<Vec<u8>> {
        self.tcp.set_read_timeout(Some(d)).unwrap();
        let r = self.try_read_response_line().ok();
        self.tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        r
    }

    /// Read responses until one contains `needle` or `d` passes.
    pub fn wait_for(&mut self, needle: &str, d: Duration) -> Option<String> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let l = self.read_response_within(left.max(Duration::from_millis(1)))?;
            let l = String::from_utf8_lossy(&l).into_owned();
            if l.contains(needle) {
                return Some(l);
            }
        }
    }

    /// True once the server has closed the connection (EOF or reset) within `d`.
    pub fn closed_within(&mut self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        self.tcp
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        loop {
            match self.fill() {
                Ok(0) => return true,
                Ok(_) => self.buf.clear(),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() > deadline {
                        return false;
                    }
                }
                Err(_) => return true,
            }
        }
    }
}

/// `{n}` or `{n+}` at the end of a line.
pub fn literal_len(line: &[u8]) -> Option<usize> {
    if !line.ends_with(b"}") {
        return None;
    }
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = &line[open + 1..line.len() - 1];
    let inner = inner.strip_suffix(b"+").unwrap_or(inner);
    if inner.is_empty() || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// A small plain-text message.
pub fn msg(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{subject}@example.org>\r\n\
         \r\n{body}\r\n"
    )
    .into_bytes()
}

// ---------------------------------------------------------------- HTTPS

#[derive(Debug)]
pub struct HttpResp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResp {
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Send a raw request over TLS and read the response until the server
/// closes (send `Connection: close`) or Content-Length is satisfied.
pub fn https_raw(addr: SocketAddr, req: &[u8]) -> HttpResp {
    let mut s = tls_connect(addr, &[]);
    // The server may answer (and close) before reading all of an oversized
    // request: ignore write errors.
    let _ = s.write_all(req).and_then(|_| s.flush());
    let mut data = Vec::new();
    let mut tmp = [0u8; 16384];
    loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..i]).into_owned();
            let r = HttpResp {
                status: head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                head,
                body: Vec::new(),
            };
            if let Some(len) = r
                .header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
            {
                if data.len() >= i + 4 + len {
                    return HttpResp {
                        body: data[i + 4..i + 4 + len].to_vec(),
                        ..r
                    };
                }
            }
        }
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&tmp[..n]),
        }
    }
    let i = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&data)));
    let head = String::from_utf8_lossy(&data[..i]).into_owned();
    HttpResp {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head,
        body: data[i + 4..].to_vec(),
    }
}

pub fn https_get(addr: SocketAddr, host: &str, path: &str) -> HttpResp {
    https_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

pub fn https_post(addr: SocketAddr, host: &str, path: &str, body: &[u8]) -> HttpResp {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    https_raw(addr, &req)
}

/// Extract a JSON string value `"key": "value"` (no escapes needed here).
pub fn json_field(json: &str, key: &str) -> Option<String> {
    let k = format!("\"{key}\"");
    let i = json.find(&k)? + k.len();
    let rest = json[i..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

// ---------------------------------------------------------------- retention helpers

/// IMAP date-time (`"07-Feb-1994 21:52:25 +0000"`, quoted) for unix seconds.
/// Year, month, day and seconds of the day of Unix seconds (UTC), by Howard
/// Hinnant's civil-from-days; computed in the tests, not by the relay.
pub fn civil(unix: i64) -> (i64, i64, i64, i64) {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs)
}

pub fn imap_date(unix: i64) -> String {
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, secs) = civil(unix);
    format!(
        "\"{d:02}-{}-{y} {:02}:{:02}:{:02} +0000\"",
        MON[(m - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Imap {
    /// APPEND with an explicit internal date (unix seconds); returns the reply.
    pub fn append_dated(&mut self, mailbox: &str, flags: &str, date: i64, msg: &[u8]) -> Resp {
        self.cmd_literal(
            &format!("APPEND {} ({flags}) {}", quote(mailbox), imap_date(date)),
            msg,
        )
    }
}

/// Run `chatrelay <args>` to completion within `wait` (killed after).
/// Returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], wait: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatrelay");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + wait;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (code, t_out.join().unwrap(), t_err.join().unwrap())
}

impl Relay {
    /// SIGKILL the server and wait, leaving the data dir for a later `restart`.
    pub fn stop(&mut self) {
        self.kill9();
    }

    /// `chatrelay prune --config <this relay's config> <extra args>`; asserts
    /// success and returns the one-line report from stdout.
    pub fn prune(&self, extra: &[&str]) -> String {
        let cfg = self.config_path();
        let mut args = vec!["prune", "--config", cfg.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out, err) = run_cli(&args, Duration::from_secs(60));
        assert_eq!(code, Some(0), "chatrelay prune {extra:?} failed: {err}");
        out.trim().to_string()
    }
}
