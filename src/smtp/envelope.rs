//! MAIL FROM and RCPT TO (RFC 5321 §4.1.1.2–3) with the submission rules of
//! spec §4.5 and §5.2: sender = login (553 at RCPT), per-sender rate limit
//! (450 at RCPT), local recipients must exist, at most 1000 recipients.

use super::address::{parse_path, split_addr, Params};
use super::session::{Mode, Smtp};
use crate::relay::MAX_RECIPIENTS;

impl Smtp {
    /// Parse `FROM:<addr> params` / `TO:<addr>`; on error reply and count it.
    fn path_arg(
        &mut self,
        arg: &str,
        prefix: &str,
        syntax: &str,
        bad: &str,
    ) -> Option<(String, Params)> {
        let rest = arg
            .get(..prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(prefix))
            .map(|_| &arg[prefix.len()..]);
        let Some(rest) = rest else {
            self.errors += 1;
            self.reply(syntax);
            return None;
        };
        match parse_path(rest) {
            Ok(p) => Some(p),
            Err(e) => {
                self.errors += 1;
                self.reply(&format!("{bad} {e}"));
                None
            }
        }
    }

    pub(super) fn mail(&mut self, arg: &str) {
        if self.helo.is_none() {
            return self.reply("503 5.5.1 Error: send HELO/EHLO first");
        }
        if self.mode == Mode::Mx {
            if !self.tls {
                return self.reply("530 5.7.0 Must issue a STARTTLS command first");
            }
        } else if self.user.is_none() {
            return self.reply("530 5.7.0 Authentication required");
        }
        if self.mail_from.is_some() {
            return self.reply("503 5.5.1 Error: nested MAIL command");
        }
        let (addr, params) = match self.path_arg(
            arg,
            "FROM:",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
            "501 5.1.7",
        ) {
            Some(p) => p,
            None => return,
        };
        if !addr.is_empty() && split_addr(&addr).is_none() {
            return self.reply(&format!("500 Invalid from address <{addr}>"));
        }
        for (k, v) in &params {
            match k.as_str() {
                "SIZE" => {
                    let Some(n) = v.as_deref().and_then(|v| v.parse::<u64>().ok()) else {
                        return self.reply("501 5.5.4 Bad SIZE parameter");
                    };
                    if n > self.ctx.cfg.max_message_size {
                        return self.reply("552 5.3.4 Message size exceeds fixed limit");
                    }
                }
                "BODY" | "SMTPUTF8" | "AUTH" => {}
                _ => return self.reply("555 5.5.4 Unsupported MAIL FROM parameter"),
            }
        }
        self.mail_from = Some(addr);
        self.reply("250 2.1.0 Ok");
    }

    pub(super) fn rcpt(&mut self, arg: &str) {
        let Some(from) = self.mail_from.clone() else {
            return self.reply("503 5.5.1 Error: need MAIL command");
        };
        let (rcpt, _) = match self.path_arg(
            arg,
            "TO:",
            "501 5.5.4 Syntax: RCPT TO:<address>",
            "501 5.1.3",
        ) {
            Some(p) => p,
            None => return,
        };
        let Some((_, domain)) = split_addr(&rcpt) else {
            return self.reply(&format!("501 5.1.3 <{rcpt}>: Bad recipient address syntax"));
        };
        if self.mode == Mode::Mx {
            let domain = domain.to_string();
            return self.rcpt_mx(rcpt, domain);
        }
        let login = self.user.clone().unwrap_or_default();
        // Spec §4.5: the envelope sender must be the login (reported at RCPT, as Postfix does).
        if from != login {
            return self.reply(&format!(
                "553 5.7.1 <{from}>: Sender address rejected: not owned by user {login}"
            ));
        }
        if !self.rate_ok {
            let now = crate::clock::now_secs_f64();
            let ok = self.ctx.ratelimit.borrow_mut().check(&from, now);
            if ok.is_err() {
                return self.reply(&format!("450 4.7.1: Too much mail from {from}"));
            }
            self.rate_ok = true;
        }
        if self.rcpts.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 Error: too many recipients");
        }
        if self.ctx.cfg.is_local_domain(domain) {
            match self.ctx.store.get_account(&rcpt) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return self.reply(&format!(
                        "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
                    ))
                }
                Err(_) => return self.reply("451 4.3.0 Temporary lookup failure"),
            }
        } else if !valid_remote_domain(domain) {
            return self.reply(&format!("501 5.1.3 <{rcpt}>: Bad recipient address syntax"));
        }
        if !self.rcpts.contains(&rcpt) {
            self.rcpts.push(rcpt);
        }
        self.reply("250 2.1.5 Ok");
    }

    /// Inbound RCPT (spec §6.1): only our own domain, only existing accounts.
    fn rcpt_mx(&mut self, rcpt: String, domain: String) {
        if !self.ctx.cfg.is_local_domain(&domain) {
            return self.reply(&format!("554 5.7.1 <{rcpt}>: Relay access denied"));
        }
        if self.rcpts.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 Error: too many recipients");
        }
        match self.ctx.store.get_account(&rcpt) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return self.reply(&format!(
                    "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"
                ))
            }
            Err(_) => return self.reply("451 4.3.0 Temporary lookup failure"),
        }
        if !self.rcpts.contains(&rcpt) {
            self.rcpts.push(rcpt);
        }
        self.reply("250 2.1.5 Ok");
    }
}

/// A domain we could route to: a DNS name or an address literal.
fn valid_remote_domain(d: &str) -> bool {
    if let Some(lit) = d.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return lit.parse::<std::net::IpAddr>().is_ok()
            || lit
                .strip_prefix("IPv6:")
                .map(|v| v.parse::<std::net::Ipv6Addr>().is_ok())
                .unwrap_or(false);
    }
    d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
