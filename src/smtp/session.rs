//! One SMTP submission connection (RFC 5321, RFC 6409): the loop, the state
//! and dispatch to the stage files.

use std::rc::Rc;
use std::time::Duration;

use crate::net::{Line, Stream};
use crate::relay::{Ctx, IpSlot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 465 or 443-ALPN: TLS from the first byte.
    Submission,
    /// 587: STARTTLS required before AUTH.
    SubmissionStartTls,
    /// 25: inbound mail from other servers; STARTTLS required (spec §6.1).
    Mx,
}

/// Command lines (RFC 5321 §4.5.3.1.4 says 512; AUTH PLAIN lines can be longer).
pub const MAX_CMD_LINE: usize = 4096;
const MAX_ERRORS: u32 = 20;

pub struct Smtp {
    pub ctx: Rc<Ctx>,
    pub mode: Mode,
    pub s: Stream,
    pub tls: bool,
    pub helo: Option<String>,
    pub user: Option<String>,
    pub mail_from: Option<String>,
    pub rcpts: Vec<String>,
    /// The per-sender rate limit was passed for this transaction.
    pub rate_ok: bool,
    pub errors: u32,
    /// Counts against the client address until AUTH succeeds.
    pub ip: IpSlot,
    /// Failed logins on this connection (throttling, `relay::auth`).
    pub logins: crate::relay::auth::LoginConn,
}

pub enum Next {
    Continue,
    Close,
}

/// The caller holds the service's connection slot; `ip` is this
/// connection's per-address slot, released after AUTH.
pub async fn run(ctx: Rc<Ctx>, s: Stream, mode: Mode, ip: IpSlot) {
    let tls = mode == Mode::Submission || s.conn.is_tls();
    let mut sm = Smtp {
        ctx: ctx.clone(),
        mode,
        s,
        tls,
        helo: None,
        user: None,
        mail_from: None,
        rcpts: Vec::new(),
        rate_ok: false,
        errors: 0,
        ip,
        logins: crate::relay::auth::LoginConn::new(),
    };
    let greet = format!("220 {} ESMTP chatrelay\r\n", ctx.cfg.hostname());
    if sm.s.send(greet.as_bytes()).await.is_err() {
        return;
    }
    let _ = sm.serve().await;
}

impl Smtp {
    pub fn reply(&mut self, line: &str) {
        self.s.queue(line.as_bytes());
        self.s.queue(b"\r\n");
    }

    pub fn reset(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
        self.rate_ok = false;
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            self.s.command_done().await;
            // PIPELINING (RFC 2920): flush only when the client waits for us.
            if self.s.buffered() == 0 {
                self.s.flush().await?;
            }
            // RFC 5321 §4.5.3.2.7: at least 5 minutes (the default) between commands.
            self.s.set_deadline(Duration::from_secs(
                self.ctx.cfg.smtp_command_timeout.max(1),
            ));
            let line = match self.s.read_line(MAX_CMD_LINE).await {
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    let _ = self
                        .s
                        .send(b"421 4.4.2 Timeout, closing connection\r\n")
                        .await;
                    return Ok(());
                }
                l => l?,
            };
            let line = match line {
                Line::Eof => return Ok(()),
                Line::TooLong(_) => {
                    self.reply("500 5.5.2 Line too long");
                    self.errors += 1;
                    continue;
                }
                Line::Ok(l) => l,
            };
            let Ok(text) = String::from_utf8(line) else {
                self.reply("500 5.5.2 Invalid characters in command");
                self.errors += 1;
                continue;
            };
            if self.errors > MAX_ERRORS {
                self.s
                    .send(b"421 4.7.0 Too many errors, closing connection\r\n")
                    .await?;
                return Ok(());
            }
            match self.command(&text).await? {
                Next::Continue => {}
                Next::Close => {
                    self.s.flush().await?;
                    return Ok(());
                }
            }
        }
    }

    async fn command(&mut self, text: &str) -> std::io::Result<Next> {
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (text.trim().to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => self.ehlo(arg, true),
            "HELO" => self.ehlo(arg, false),
            "STARTTLS" => return self.starttls().await,
            "AUTH" if self.mode == Mode::Mx => {
                self.errors += 1;
                self.reply("503 5.5.1 Error: authentication not enabled on this port");
            }
            "AUTH" => return self.auth(arg).await,
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => return self.data().await,
            "RSET" => {
                self.reset();
                self.reply("250 2.0.0 Ok");
            }
            "NOOP" => self.reply("250 2.0.0 Ok"),
            // Spec §6.1: identical answer for every argument.
            "VRFY" => self.reply("252 2.0.0 Cannot VRFY user, but will accept message"),
            "HELP" => self.reply("214 2.0.0 See RFC 5321"),
            "QUIT" => {
                self.reply("221 2.0.0 Bye");
                return Ok(Next::Close);
            }
            "BDAT" | "EXPN" | "ETRN" | "TURN" => {
                self.errors += 1;
                self.reply("502 5.5.1 Command not implemented");
            }
            _ => {
                self.errors += 1;
                self.reply("500 5.5.2 Error: command not recognized");
            }
        }
        Ok(Next::Continue)
    }
}
