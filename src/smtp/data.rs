//! DATA (RFC 5321 §4.1.1.4, §4.5.2 transparency): read the message with a
//! size cap (reading continues to the end but nothing past the cap is kept),
//! strict CRLF line endings, then the outgoing policy, header scrubbing and
//! durable local delivery before the `250`.

use super::session::{Next, Smtp};
use crate::net::Line;

/// RFC 5321 §4.5.3.1.6: 998 octets plus CRLF.
const MAX_DATA_LINE: usize = 998;

enum Problem {
    TooBig,
    LongLine,
    BareLf,
}

impl Smtp {
    pub(super) async fn data(&mut self) -> std::io::Result<Next> {
        if self.mail_from.is_none() {
            self.reply("503 5.5.1 Error: need MAIL command");
            return Ok(Next::Continue);
        }
        if self.rcpts.is_empty() {
            self.reply("554 5.5.1 Error: no valid recipients");
            return Ok(Next::Continue);
        }
        self.s
            .send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            .await?;
        let max = self.ctx.cfg.max_message_size as usize;
        // The whole message must arrive at a bounded pace (RFC 5321
        // §4.5.3.2.5 allows 3 minutes per data block; we bound the total).
        self.s
            .set_deadline(crate::net::transfer_time(self.ctx.cfg.max_message_size));
        let mut msg: Vec<u8> = Vec::new();
        let mut problem = None;
        // Only a few large bodies are buffered at once, whoever sends them.
        let mut _big_permit = None;
        loop {
            if _big_permit.is_none() && msg.len() > crate::relay::BIG_BODY {
                _big_permit = Some(self.ctx.big_bodies.acquire_arc().await);
            }
            // A line may be 998 octets plus a transparency dot; a longer one
            // is refused, so it is consumed to its end without being kept:
            // what a session buffers stays one line long, whatever the peer
            // sends (issue 10, memory per connection).
            let line = match self.s.read_line(MAX_DATA_LINE + 1).await? {
                Line::Eof => {
                    // Disconnect mid-DATA: nothing is stored.
                    return Ok(Next::Close);
                }
                Line::TooLong(n) => {
                    // Counted against the size, so an over-long line in an
                    // over-large message still gets the size reply.
                    if problem.is_none() && msg.len().saturating_add(n) > max {
                        problem = Some(Problem::TooBig);
                        msg = Vec::new();
                    }
                    problem.get_or_insert(Problem::LongLine);
                    continue;
                }
                Line::Ok(l) => l,
            };
            if !self.s.last_crlf {
                problem.get_or_insert(Problem::BareLf);
            }
            if line == b"." && self.s.last_crlf {
                break;
            }
            let line = if line.first() == Some(&b'.') {
                &line[1..]
            } else {
                &line[..]
            };
            if line.len() > MAX_DATA_LINE {
                problem.get_or_insert(Problem::LongLine);
            }
            if problem.is_none() {
                if msg.len() + line.len() + 2 > max {
                    problem = Some(Problem::TooBig);
                    msg = Vec::new();
                } else {
                    msg.extend_from_slice(line);
                    msg.extend_from_slice(b"\r\n");
                }
            }
        }
        let reply = match problem {
            Some(Problem::TooBig) => "552 5.3.4 Message size exceeds fixed limit".to_string(),
            Some(Problem::LongLine) => {
                "500 5.5.2 Line too long (RFC 5321 allows 998 octets)".to_string()
            }
            Some(Problem::BareLf) => "500 5.5.2 Bare LF line endings are not allowed".to_string(),
            None if self.mode == super::session::Mode::Mx => {
                let from = self.mail_from.clone().unwrap_or_default();
                let rcpts = self.rcpts.clone();
                match crate::relay::inbound::accept(&self.ctx, &msg, &from, &rcpts).await {
                    Ok(()) => "250 2.0.0 Ok: queued".to_string(),
                    Err(r) => r,
                }
            }
            None => self.accept_message(&msg).await,
        };
        self.reset();
        self.reply(&reply);
        Ok(Next::Continue)
    }

    /// Policy, scrub, deliver; returns the reply line.
    async fn accept_message(&mut self, raw: &[u8]) -> String {
        let from = self.mail_from.clone().unwrap_or_default();
        let rcpts = self.rcpts.clone();
        match crate::policy::check_outgoing(raw, &from, &rcpts) {
            Ok(kind) => log::debug!("outgoing: accepted ({kind:?})"),
            Err(r) => {
                log::info!("outgoing: rejected with {}", r.code);
                return r.line();
            }
        }
        let mut clean = crate::policy::scrub_outgoing(raw);
        if rcpts.iter().any(|r| {
            !r.rsplit_once('@')
                .map(|(_, d)| self.ctx.cfg.is_local_domain(d))
                .unwrap_or(true)
        }) {
            clean = crate::relay::inbound::dkim_sign(&self.ctx, clean);
        }
        match crate::relay::delivery::local_and_remote(&self.ctx, &clean, &from, &rcpts).await {
            Ok(()) => "250 2.0.0 Ok: queued".to_string(),
            Err(r) => r,
        }
    }
}
