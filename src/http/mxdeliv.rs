//! `POST /mxdeliv` (spec §6.3): relay-to-relay delivery over HTTPS. The SMTP
//! envelope travels in `X-MAIL-FROM` / `X-MAIL-TO` headers, the raw message in
//! the body; the same incoming checks as port 25 apply.

use super::{Request, Response};
use crate::relay::Ctx;

pub async fn handle(ctx: &Ctx, req: &mut Request) -> Response {
    if req.method != "POST" {
        return Response::text(405, "405 Method Not Allowed");
    }
    let from = req
        .header("x-mail-from")
        .map(|v| {
            String::from_utf8_lossy(v)
                .trim()
                .trim_matches(['<', '>'])
                .to_lowercase()
        })
        .unwrap_or_default();
    let mut rcpts: Vec<String> = Vec::new();
    for (name, v) in &req.headers {
        if name.eq_ignore_ascii_case("x-mail-to") {
            let r = String::from_utf8_lossy(v)
                .trim()
                .trim_matches(['<', '>'])
                .to_lowercase();
            if r.is_empty() || crate::mail::split_addr(&r).is_none() {
                return Response::text(400, "501 5.1.3 Bad recipient address syntax");
            }
            if !rcpts.contains(&r) {
                rcpts.push(r);
            }
        }
    }
    if rcpts.is_empty() {
        return Response::text(400, "554 5.5.1 Error: no valid recipients");
    }
    if rcpts.len() > crate::relay::MAX_RECIPIENTS {
        return Response::text(400, "452 4.5.3 Error: too many recipients");
    }
    for r in &rcpts {
        let (_, domain) = crate::mail::split_addr(r).unwrap_or(("", ""));
        if !ctx.cfg.is_local_domain(domain) {
            return Response::text(400, &format!("554 5.7.1 <{r}>: Relay access denied"));
        }
        match ctx.store.get_account(r) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Response::text(
                    400,
                    &format!("550 5.1.1 <{r}>: Recipient address rejected: User unknown"),
                )
            }
            Err(_) => return Response::text(503, "451 4.3.0 Temporary lookup failure"),
        }
    }
    let body = std::mem::take(&mut req.body);
    match crate::relay::inbound::accept(ctx, body, &from, &rcpts).await {
        Ok(()) => Response::text(200, "250 OK"),
        Err(line) => {
            // 4xx SMTP replies are temporary: tell the sender to retry.
            let status = if line.starts_with('4') { 503 } else { 400 };
            Response::text(status, &line)
        }
    }
}
