//! One IMAP connection: reading commands (with literals), the state machine
//! of RFC 3501 §3 and the any-state / not-authenticated commands (§6.1, §6.2).
//! Command groups live in their own files: `mailbox.rs`, `selected.rs`,
//! `fetch.rs`, `search.rs`, `metadata.rs`, `idle.rs`.

use std::rc::Rc;
use std::time::Duration;

use base64::Engine;

use super::parser::{parse_command, CommandBody, ParseError};
use super::wire::literal_at_end;
use crate::hub::Subscription;
use crate::net::{Conn, Line, Stream};
use crate::relay::auth::{AuthError, LoginConn};
use crate::relay::{Ctx, IpSlot};
use crate::store::{Flags, Mailbox};

/// Longest command line (RFC 7162 §4 recommends ≥ 8192 octets).
pub const MAX_LINE: usize = 64 * 1024;
/// Largest literal outside APPEND (SETMETADATA values, LOGIN, SEARCH strings).
pub const MAX_SMALL_LITERAL: u64 = 64 * 1024;
/// Before login: the longest literal (LOGIN with a literal password) and
/// command line a stranger can make us buffer.
pub const MAX_PRELOGIN_LITERAL: u64 = 4 * 1024;
const MAX_PRELOGIN_LINE: usize = 8 * 1024;
/// Before login a connection must send each command within this.
const PRELOGIN_IDLE: Duration = Duration::from_secs(60);
/// Continuation lines (AUTHENTICATE, after a literal) must come within this.
const CONTINUATION: Duration = Duration::from_secs(60);
/// Most literals in one command.
const MAX_LITERALS: usize = 64;
/// Commands per connection before the server asks the client to reconnect.
const MAX_COMMANDS: u64 = 10_000_000;
/// Bad commands in a row before the connection is closed.
const MAX_ERRORS: u32 = 20;

pub struct Selected {
    pub mb: Mailbox,
    pub read_only: bool,
    /// The session's view: UIDs in sequence order and their flags.
    pub uids: Vec<u32>,
    pub flags: Vec<Flags>,
    pub sub: Subscription,
}

pub struct Session {
    pub ctx: Rc<Ctx>,
    pub s: Stream,
    /// Plain port 143 before STARTTLS: LOGIN is disabled (RFC 3501 §6.2.3).
    pub starttls_pending: bool,
    pub user: Option<String>,
    pub sel: Option<Selected>,
    /// Counts against the client address until login.
    pub ip: IpSlot,
    /// Failed logins on this connection (throttling, `relay::auth`).
    pub logins: LoginConn,
}

pub enum Flow {
    Continue,
    Close,
}

/// Serve one IMAP connection. `plain` is true on port 143 before STARTTLS.
/// The caller holds the service's connection slot; `ip` is this
/// connection's per-address slot, released at login.
pub async fn run(ctx: Rc<Ctx>, s: Stream, plain: bool, ip: IpSlot) {
    let mut sess = Session {
        ctx,
        s,
        starttls_pending: plain,
        user: None,
        sel: None,
        ip,
        logins: LoginConn::new(),
    };
    let greeting = format!(
        "* OK [CAPABILITY {}] chatrelay ready\r\n",
        sess.capabilities()
    );
    if sess.s.send(greeting.as_bytes()).await.is_err() {
        return;
    }
    let _ = sess.serve().await;
}

enum ReadCmd {
    /// A command with its literals, and the permit that let a large
    /// literal be buffered (held until the command is done).
    Cmd(Vec<u8>, Option<async_lock::SemaphoreGuardArc>),
    /// Reply already queued (BAD); keep going.
    Rejected,
    Close,
}

impl Session {
    pub fn capabilities(&self) -> String {
        let mut c = String::from("IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ NAMESPACE UNSELECT UIDPLUS MOVE SPECIAL-USE QUOTA METADATA XCHATMAIL XDELTAPUSH");
        if self.ctx.cfg.imap_compress && !matches!(self.s.conn, Conn::Deflate(_)) {
            c.push_str(" COMPRESS=DEFLATE");
        }
        if self.starttls_pending {
            c.push_str(" STARTTLS LOGINDISABLED");
        } else if self.user.is_none() {
            c.push_str(" AUTH=PLAIN");
        }
        c
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let idle = Duration::from_secs(self.ctx.cfg.imap_idle_timeout.max(60));
        let mut errors = 0u32;
        for _ in 0..MAX_COMMANDS {
            self.s.command_done().await;
            self.s.set_deadline(if self.user.is_none() {
                PRELOGIN_IDLE
            } else {
                idle
            });
            let read = match self.read_command().await {
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    let _ = self
                        .s
                        .send(b"* BYE Autologout; idle for too long\r\n")
                        .await;
                    return Ok(());
                }
                // A COMPRESS bomb (net::deflate) or a broken stream.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    log::info!("IMAP connection closed: {e}");
                    let _ = self.s.send(format!("* BYE {e}\r\n").as_bytes()).await;
                    return Ok(());
                }
                r => r?,
            };
            let buf = match read {
                ReadCmd::Close => return Ok(()),
                ReadCmd::Rejected => {
                    errors += 1;
                    if errors > MAX_ERRORS {
                        self.s.send(b"* BYE Too many invalid commands\r\n").await?;
                        return Ok(());
                    }
                    self.s.flush().await?;
                    continue;
                }
                ReadCmd::Cmd(b, permit) => (b, permit),
            };
            let (buf, _permit) = buf;
            let cmd = match parse_command(&buf) {
                Ok(c) => c,
                Err(e) => {
                    errors += 1;
                    let line = match e {
                        ParseError::Bad { tag, msg } => format!("{tag} BAD {msg}\r\n"),
                        ParseError::NoTag(msg) => format!("* BAD {msg}\r\n"),
                    };
                    self.s.queue(line.as_bytes());
                    if errors > MAX_ERRORS {
                        self.s.send(b"* BYE Too many invalid commands\r\n").await?;
                        return Ok(());
                    }
                    self.s.flush().await?;
                    continue;
                }
            };
            errors = 0;
            match self.dispatch(cmd.tag, cmd.body).await? {
                Flow::Continue => self.s.flush().await?,
                Flow::Close => {
                    self.s.flush().await?;
                    return Ok(());
                }
            }
        }
        self.s
            .send(b"* BYE Connection used for too long, please reconnect\r\n")
            .await
    }

    /// Read a complete command: the line plus any literals (RFC 3501 §7.5,
    /// LITERAL+ RFC 7888), each bounded.
    async fn read_command(&mut self) -> std::io::Result<ReadCmd> {
        let mut buf = Vec::new();
        let mut literals = 0;
        let authenticated = self.user.is_some();
        let mut permit = None;
        let max_line = if authenticated {
            MAX_LINE
        } else {
            MAX_PRELOGIN_LINE
        };
        loop {
            let line = match self.s.read_line(max_line).await? {
                Line::Eof => return Ok(ReadCmd::Close),
                Line::TooLong(_) => {
                    self.s.queue(b"* BAD Command line too long\r\n");
                    return Ok(ReadCmd::Rejected);
                }
                Line::Ok(l) => l,
            };
            buf.extend_from_slice(&line);
            let Some((n, nonsync)) = literal_at_end(&line) else {
                if buf.is_empty() {
                    self.s.queue(b"* BAD Empty command line\r\n");
                    return Ok(ReadCmd::Rejected);
                }
                return Ok(ReadCmd::Cmd(buf, permit));
            };
            literals += 1;
            let is_append = buf
                .split(|&b| b == b' ')
                .nth(1)
                .map(|w| w.eq_ignore_ascii_case(b"APPEND"))
                .unwrap_or(false);
            let limit = if !authenticated {
                MAX_PRELOGIN_LITERAL
            } else if is_append {
                self.ctx.cfg.max_message_size
            } else {
                MAX_SMALL_LITERAL
            };
            let tag = String::from_utf8_lossy(buf.split(|&b| b == b' ').next().unwrap_or(b"*"))
                .into_owned();
            if n > limit
                || literals > MAX_LITERALS
                || buf.len() as u64 + n > limit + max_line as u64
            {
                if nonsync {
                    // RFC 7888 §4: the client already sends the data; we cannot
                    // resynchronise safely with an oversized literal, so close.
                    self.s
                        .queue(format!("{tag} NO [TOOBIG] Literal too large\r\n").as_bytes());
                    self.s.send(b"* BYE Literal too large\r\n").await?;
                    return Ok(ReadCmd::Close);
                }
                self.s
                    .queue(format!("{tag} NO [TOOBIG] Literal too large\r\n").as_bytes());
                return Ok(ReadCmd::Rejected);
            }
            if permit.is_none() && n > crate::relay::BIG_BODY as u64 {
                permit = Some(self.ctx.big_bodies.acquire_arc().await);
            }
            if !nonsync {
                self.s.send(b"+ Ready for literal data\r\n").await?;
            }
            buf.extend_from_slice(b"\r\n");
            // The literal and the rest of the command line must follow
            // at a bounded pace (a trickling upload holds no slot for long).
            self.s.set_deadline(crate::net::transfer_time(n));
            if !self.s.read_exact_into(n as usize, &mut buf).await? {
                return Ok(ReadCmd::Close);
            }
        }
    }

    pub fn ok(&mut self, tag: &str, text: &str) {
        self.s.queue(format!("{tag} OK {text}\r\n").as_bytes());
    }
    pub fn no(&mut self, tag: &str, text: &str) {
        self.s.queue(format!("{tag} NO {text}\r\n").as_bytes());
    }
    pub fn bad(&mut self, tag: &str, text: &str) {
        self.s.queue(format!("{tag} BAD {text}\r\n").as_bytes());
    }

    async fn dispatch(&mut self, tag: String, body: CommandBody) -> std::io::Result<Flow> {
        use CommandBody as C;
        let name = body.name();
        // Any state (RFC 3501 §6.1).
        match body {
            C::Capability => {
                let c = format!("* CAPABILITY {}\r\n", self.capabilities());
                self.s.queue(c.as_bytes());
                self.ok(&tag, "Capability completed.");
                Ok(Flow::Continue)
            }
            C::Noop => {
                self.sync_selected(true);
                self.ok(&tag, "NOOP completed.");
                Ok(Flow::Continue)
            }
            C::Logout => {
                self.s.queue(b"* BYE Logging out\r\n");
                self.ok(&tag, "Logout completed.");
                Ok(Flow::Close)
            }
            C::Id(_) => {
                self.s.queue(b"* ID (\"name\" \"chatrelay\")\r\n");
                self.ok(&tag, "ID completed.");
                Ok(Flow::Continue)
            }
            C::StartTls => return self.starttls(&tag).await,
            C::Login { user, pass } if self.user.is_none() => {
                Ok(self.login(&tag, &user, &pass).await)
            }
            C::Authenticate { mechanism, initial } if self.user.is_none() => {
                return self.authenticate(&tag, &mechanism, initial).await;
            }
            C::Login { .. } | C::Authenticate { .. } => {
                self.bad(&tag, "Already authenticated");
                Ok(Flow::Continue)
            }
            body => {
                let Some(user) = self.user.clone() else {
                    self.bad(&tag, &format!("{name} not allowed before login"));
                    return Ok(Flow::Continue);
                };
                self.authenticated(&tag, &user, body).await
            }
        }
    }

    async fn starttls(&mut self, tag: &str) -> std::io::Result<Flow> {
        if !self.starttls_pending {
            self.bad(tag, "TLS already active");
            return Ok(Flow::Continue);
        }
        if self.s.buffered() > 0 {
            // Data pipelined after STARTTLS could be injected plaintext (RFC 3207 §6 analogue).
            self.bad(tag, "Data after STARTTLS");
            return Ok(Flow::Close);
        }
        self.ok(tag, "Begin TLS negotiation now.");
        self.s.flush().await?;
        let conn = self.s.take_conn();
        let Conn::Plain(tcp) = conn else {
            return Ok(Flow::Close);
        };
        match crate::tls::accept(self.ctx.tls.tls13.clone(), tcp).await {
            Some(c) => {
                self.s = Stream::new(c);
                self.starttls_pending = false;
                Ok(Flow::Continue)
            }
            None => Ok(Flow::Close),
        }
    }

    /// COMPRESS DEFLATE (RFC 4978 §3): only when `imap_compress` is on (it
    /// costs ~256 KiB per connection); the OK goes out uncompressed.
    async fn compress(&mut self, tag: &str, mech: &str) -> std::io::Result<Flow> {
        if !self.ctx.cfg.imap_compress {
            self.no(tag, "COMPRESS is not enabled on this server");
            return Ok(Flow::Continue);
        }
        if matches!(self.s.conn, Conn::Deflate(_)) {
            self.no(tag, "[COMPRESSIONACTIVE] DEFLATE active already");
            return Ok(Flow::Continue);
        }
        if mech != "DEFLATE" {
            self.bad(tag, "Unknown compression mechanism");
            return Ok(Flow::Continue);
        }
        if self.s.buffered() > 0 {
            self.bad(tag, "Data after COMPRESS");
            return Ok(Flow::Close);
        }
        self.ok(tag, "DEFLATE active");
        self.s.flush().await?;
        let inner = self.s.take_conn();
        self.s = Stream::new(Conn::Deflate(Box::new(crate::net::Deflate::new(inner))));
        Ok(Flow::Continue)
    }

    async fn login(&mut self, tag: &str, user: &[u8], pass: &[u8]) -> Flow {
        if self.starttls_pending {
            self.no(tag, "[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS");
            return Flow::Continue;
        }
        let Ok(user) = std::str::from_utf8(user) else {
            self.no(tag, "[AUTHENTICATIONFAILED] Authentication failed.");
            return Flow::Continue;
        };
        match self.ctx.auth.login(&self.logins, user, pass, true).await {
            Ok(addr) => {
                self.user = Some(addr);
                self.ip.release();
                let t = format!("[CAPABILITY {}] Logged in", self.capabilities());
                self.ok(tag, &t);
            }
            Err(AuthError::Invalid) => {
                self.no(tag, "[AUTHENTICATIONFAILED] Authentication failed.")
            }
            Err(AuthError::CreationRefused(why)) => self.no(tag, &format!("[UNAVAILABLE] {why}")),
            Err(AuthError::Temporary(_)) => {
                self.no(tag, "[UNAVAILABLE] Temporary failure, try again later")
            }
            Err(AuthError::TooManyFailures) => {
                self.s.queue(b"* BYE Too many failed logins\r\n");
                self.no(tag, "[AUTHENTICATIONFAILED] Authentication failed.");
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    /// AUTHENTICATE PLAIN (RFC 4959 SASL-IR, RFC 4616).
    async fn authenticate(
        &mut self,
        tag: &str,
        mech: &str,
        initial: Option<Vec<u8>>,
    ) -> std::io::Result<Flow> {
        if mech != "PLAIN" {
            self.no(tag, "Unsupported authentication mechanism");
            return Ok(Flow::Continue);
        }
        if self.starttls_pending {
            self.no(
                tag,
                "[PRIVACYREQUIRED] Authentication is disabled before STARTTLS",
            );
            return Ok(Flow::Continue);
        }
        let b64 = match initial {
            Some(i) => i,
            None => {
                self.s.send(b"+ \r\n").await?;
                self.s.set_deadline(CONTINUATION);
                match self.s.read_line(MAX_PRELOGIN_LINE).await? {
                    Line::Ok(l) => l,
                    Line::TooLong(_) => {
                        self.bad(tag, "Response too long");
                        return Ok(Flow::Continue);
                    }
                    Line::Eof => return Ok(Flow::Close),
                }
            }
        };
        if b64 == b"*" {
            self.bad(tag, "Authentication cancelled");
            return Ok(Flow::Continue);
        }
        let decoded = if b64 == b"=" {
            Ok(Vec::new())
        } else {
            base64::engine::general_purpose::STANDARD.decode(&b64)
        };
        let Ok(decoded) = decoded else {
            self.bad(tag, "Invalid base64");
            return Ok(Flow::Continue);
        };
        let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
        if parts.len() != 3 {
            self.bad(tag, "Invalid PLAIN response");
            return Ok(Flow::Continue);
        }
        if !parts[0].is_empty() && parts[0] != parts[1] {
            self.no(
                tag,
                "[AUTHENTICATIONFAILED] Authorization identity must equal the login",
            );
            return Ok(Flow::Continue);
        }
        let (user, pass) = (parts[1].to_vec(), parts[2].to_vec());
        Ok(self.login(tag, &user, &pass).await)
    }

    async fn authenticated(
        &mut self,
        tag: &str,
        user: &str,
        body: CommandBody,
    ) -> std::io::Result<Flow> {
        use CommandBody as C;
        match body {
            C::Enable(_) => {
                // No ENABLE-able extension is advertised (RFC 5161 §3.1).
                self.s.queue(b"* ENABLED\r\n");
                self.ok(tag, "Enable completed.");
            }
            C::Namespace => {
                self.s.queue(b"* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
                self.ok(tag, "Namespace completed.");
            }
            C::Select { mailbox, .. } => self.select(tag, user, &mailbox.0, false),
            C::Examine { mailbox, .. } => self.select(tag, user, &mailbox.0, true),
            C::Create {
                mailbox,
                special_use,
            } => self.create(tag, user, &mailbox.0, special_use).await,
            C::Delete(m) => self.delete(tag, user, &m.0).await,
            C::Rename { from, to } => self.rename(tag, user, &from.0, &to.0).await,
            C::Subscribe(m) => self.subscribe(tag, user, &m.0, true).await,
            C::Unsubscribe(m) => self.subscribe(tag, user, &m.0, false).await,
            C::List {
                reference,
                patterns,
                select_special_use,
                return_special_use,
                return_subscribed,
                return_status,
            } => self.list(
                tag,
                user,
                &reference,
                &patterns,
                select_special_use,
                return_special_use || select_special_use,
                return_subscribed,
                &return_status,
                false,
            ),
            C::Lsub { reference, pattern } => self.list(
                tag,
                user,
                &reference,
                &[pattern],
                false,
                false,
                true,
                &[],
                true,
            ),
            C::Status { mailbox, items } => self.status(tag, user, &mailbox.0, &items),
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                self.append(tag, user, &mailbox.0, &flags, date, message)
                    .await
            }
            C::GetQuotaRoot(m) => self.getquotaroot(tag, user, &m.0),
            C::GetQuota(root) => self.getquota(tag, user, &root),
            C::GetMetadata {
                mailbox, entries, ..
            } => self.getmetadata(tag, user, &mailbox.0, &entries),
            C::SetMetadata { mailbox, entries } => {
                self.setmetadata(tag, user, &mailbox.0, &entries).await
            }
            C::Compress(mech) => return self.compress(tag, &mech).await,
            C::Idle => {
                self.s.send(b"+ idling\r\n").await?;
                return self.idle(tag).await;
            }
            body => {
                if self.sel.is_none() {
                    self.bad(tag, &format!("{} requires a selected mailbox", body.name()));
                } else {
                    self.selected(tag, user, body).await?;
                }
            }
        }
        Ok(Flow::Continue)
    }
}
