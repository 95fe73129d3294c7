//! AUTH PLAIN (RFC 4616) and LOGIN, via the shared account logic (create on
//! first login included). RFC 4954.

use base64::Engine;

use super::session::{Next, Smtp, MAX_CMD_LINE};
use crate::net::Line;
use crate::relay::auth::AuthError;

fn b64(s: &[u8]) -> Option<Vec<u8>> {
    if s == b"=" {
        return Some(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

impl Smtp {
    async fn challenge(&mut self, prompt: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.s.send(format!("334 {prompt}\r\n").as_bytes()).await?;
        // RFC 4954 gives no time; a minute is plenty for a client's answer.
        self.s.set_deadline(std::time::Duration::from_secs(60));
        match self.s.read_line(MAX_CMD_LINE).await? {
            Line::Ok(l) if l == b"*" => {
                self.reply("501 5.7.0 Authentication cancelled");
                Ok(None)
            }
            Line::Ok(l) => match b64(&l) {
                Some(v) => Ok(Some(v)),
                None => {
                    self.reply("501 5.5.2 Invalid base64 data");
                    Ok(None)
                }
            },
            _ => {
                self.reply("500 5.5.2 Line too long");
                Ok(None)
            }
        }
    }

    pub(super) async fn auth(&mut self, arg: &str) -> std::io::Result<Next> {
        if !self.tls {
            self.reply("530 5.7.0 Must issue a STARTTLS command first");
            return Ok(Next::Continue);
        }
        if self.helo.is_none() {
            self.reply("503 5.5.1 Error: send EHLO first");
            return Ok(Next::Continue);
        }
        if self.user.is_some() {
            self.reply("503 5.5.1 Error: already authenticated");
            return Ok(Next::Continue);
        }
        if self.mail_from.is_some() {
            self.reply("503 5.5.1 Error: MAIL transaction in progress");
            return Ok(Next::Continue);
        }
        let mut parts = arg.split_whitespace();
        let mech = parts.next().unwrap_or("").to_ascii_uppercase();
        let initial = parts.next();
        let (user, pass) = match mech.as_str() {
            "PLAIN" => {
                let data = match initial {
                    Some(i) => match b64(i.as_bytes()) {
                        Some(d) => d,
                        None => {
                            self.errors += 1;
                            self.reply("501 5.5.2 Invalid base64 data");
                            return Ok(Next::Continue);
                        }
                    },
                    None => match self.challenge("").await? {
                        Some(d) => d,
                        None => return Ok(Next::Continue),
                    },
                };
                let f: Vec<&[u8]> = data.split(|&b| b == 0).collect();
                if f.len() != 3 || (!f[0].is_empty() && f[0] != f[1]) {
                    self.errors += 1;
                    self.reply("501 5.5.2 Invalid PLAIN response");
                    return Ok(Next::Continue);
                }
                (f[1].to_vec(), f[2].to_vec())
            }
            "LOGIN" => {
                let user = match initial {
                    Some(i) => b64(i.as_bytes()),
                    None => self.challenge("VXNlcm5hbWU6").await?,
                };
                let Some(user) = user else {
                    return Ok(Next::Continue);
                };
                let Some(pass) = self.challenge("UGFzc3dvcmQ6").await? else {
                    return Ok(Next::Continue);
                };
                (user, pass)
            }
            _ => {
                self.errors += 1;
                self.reply("504 5.5.4 Unrecognized authentication type");
                return Ok(Next::Continue);
            }
        };
        let Ok(user) = String::from_utf8(user) else {
            self.reply("535 5.7.8 Authentication credentials invalid");
            return Ok(Next::Continue);
        };
        match self.ctx.auth.login(&self.logins, &user, &pass, false).await {
            Ok(addr) => {
                self.user = Some(addr);
                self.ip.release();
                self.reply("235 2.7.0 Authentication successful");
            }
            Err(AuthError::Invalid) => {
                self.errors += 1;
                self.reply("535 5.7.8 Authentication credentials invalid");
            }
            Err(AuthError::CreationRefused(why)) => self.reply(&format!("535 5.7.8 {why}")),
            Err(AuthError::Temporary(_)) => {
                self.reply("454 4.7.0 Temporary authentication failure")
            }
            Err(AuthError::TooManyFailures) => {
                self.reply("421 4.7.0 Too many failed logins, closing connection");
                return Ok(Next::Close);
            }
        }
        Ok(Next::Continue)
    }
}
