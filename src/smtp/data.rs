//! DATA (RFC 5321 §4.1.1.4, §4.5.2 transparency): read the message with a
//! size cap (reading continues to the end but nothing past the cap is kept),
//! strict CRLF line endings, then the outgoing policy, header scrubbing and
//! durable local delivery before the `250`.

use super::session::{Next, Smtp};
use super::transparency::{Body, Step, READ_LIMIT};

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
        let mut body = Body::new(max);
        // Only a few large bodies are buffered at once, whoever sends them.
        let mut _big_permit = None;
        loop {
            if _big_permit.is_none() && body.len() > crate::relay::BIG_BODY {
                _big_permit = Some(self.ctx.big_bodies.acquire_arc().await);
            }
            // What a session buffers stays one line long, whatever the peer
            // sends (issue 10, memory per connection).
            let line = self.s.read_line(READ_LIMIT).await?;
            match body.line(line, self.s.last_crlf) {
                Step::More => {}
                Step::End => break,
                // Disconnect mid-DATA: nothing is stored.
                Step::Eof => return Ok(Next::Close),
            }
        }
        let reply = match body.finish() {
            Err(p) => p.reply().to_string(),
            Ok(msg) if self.mode == super::session::Mode::Mx => {
                let from = self.mail_from.clone().unwrap_or_default();
                let rcpts = self.rcpts.clone();
                match crate::relay::inbound::accept(&self.ctx, msg, &from, &rcpts).await {
                    Ok(()) => "250 2.0.0 Ok: queued".to_string(),
                    Err(r) => r,
                }
            }
            Ok(msg) => self.accept_message(msg).await,
        };
        self.reset();
        self.reply(&reply);
        Ok(Next::Continue)
    }

    /// Policy, scrub, DKIM signature (when a recipient is remote), deliver;
    /// returns the reply line. The CPU stages of a big message run on the
    /// cpu thread (`relay::offload`).
    async fn accept_message(&mut self, raw: Vec<u8>) -> String {
        let from = self.mail_from.clone().unwrap_or_default();
        let rcpts = self.rcpts.clone();
        let remote = rcpts.iter().any(|r| {
            !r.rsplit_once('@')
                .map(|(_, d)| self.ctx.cfg.is_local_domain(d))
                .unwrap_or(true)
        });
        let key = self.ctx.dkim_key.clone().filter(|_| remote);
        let (domain, selector) = (
            self.ctx.cfg.mail_domain.clone(),
            self.ctx.cfg.dkim_selector.clone(),
        );
        let (f, r) = (from.clone(), rcpts.clone());
        let prepared = crate::relay::offload(raw.len(), move || {
            let kind = crate::policy::check_outgoing(&raw, &f, &r)?;
            let clean = crate::policy::scrub_outgoing(&raw);
            let clean = match &key {
                Some(k) => crate::relay::inbound::sign_with(k, &domain, &selector, clean),
                None => clean,
            };
            Ok::<_, crate::policy::Reply>((kind, clean))
        })
        .await;
        let clean = match prepared {
            Ok((kind, clean)) => {
                log::debug!("outgoing: accepted ({kind:?})");
                clean
            }
            Err(r) => {
                log::info!("outgoing: rejected with {}", r.code);
                return r.line();
            }
        };
        match crate::relay::delivery::local_and_remote(&self.ctx, &clean, &from, &rcpts).await {
            Ok(()) => "250 2.0.0 Ok: queued".to_string(),
            Err(r) => r,
        }
    }
}
