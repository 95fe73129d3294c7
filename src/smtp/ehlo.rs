//! EHLO/HELO (RFC 5321 §4.1.1.1) and STARTTLS (RFC 3207).

use super::session::{Next, Smtp};
use crate::net::Stream;

impl Smtp {
    pub(super) fn ehlo(&mut self, arg: &str, extended: bool) {
        // Lenient about the name (spec §5.1): Delta Chat sends a fixed one.
        if arg.is_empty() {
            self.errors += 1;
            return self.reply("501 5.5.4 Syntax: EHLO hostname");
        }
        self.reset();
        self.helo = Some(arg.chars().take(255).collect());
        let host = self.ctx.cfg.hostname();
        if !extended {
            return self.reply(&format!("250 {host}"));
        }
        let mut lines = vec![
            host,
            "PIPELINING".into(),
            format!("SIZE {}", self.ctx.cfg.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if !self.tls {
            lines.push("STARTTLS".into());
        } else if self.mode != super::session::Mode::Mx {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let n = lines.len();
        for (i, l) in lines.into_iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            self.reply(&format!("250{sep}{l}"));
        }
    }

    pub(super) async fn starttls(&mut self) -> std::io::Result<Next> {
        if self.tls {
            self.errors += 1;
            self.reply("503 5.5.1 TLS already active");
            return Ok(Next::Continue);
        }
        if self.s.buffered() > 0 {
            // RFC 3207 §4.2 / CVE-2011-0411: no plaintext may be pipelined past STARTTLS.
            self.reply("503 5.5.1 Data after STARTTLS");
            return Ok(Next::Close);
        }
        self.s.send(b"220 2.0.0 Ready to start TLS\r\n").await?;
        let crate::net::Conn::Plain(tcp) = self.s.take_conn() else {
            return Ok(Next::Close);
        };
        // Inbound MX accepts TLS 1.2 (spec §14); submission TLS 1.3 only.
        let cfg = if self.mode == super::session::Mode::Mx {
            self.ctx.tls.mx.clone()
        } else {
            self.ctx.tls.tls13.clone()
        };
        match crate::tls::accept(cfg, tcp).await {
            Some(c) => {
                self.s = Stream::new(c);
                self.tls = true;
                // RFC 3207 §4.2: forget everything learned before TLS.
                self.helo = None;
                self.user = None;
                self.reset();
                Ok(Next::Continue)
            }
            None => Ok(Next::Close),
        }
    }
}
