//! The incoming pipeline shared by port 25 and `POST /mxdeliv` (spec §6.2–6.4):
//! encryption policy, origin check (DKIM), sender reset, header stripping,
//! durable local delivery.

use crate::server::Ctx;

/// Accept `raw` from another server for local `rcpts`. `Err` is the SMTP
/// reply line to send (or to put in the `/mxdeliv` 400 body).
pub async fn accept(
    ctx: &Ctx,
    raw: &[u8],
    mail_from: &str,
    rcpts: &[String],
) -> Result<(), String> {
    let ok = match crate::policy::check_incoming(raw, mail_from, rcpts) {
        Ok(ok) => ok,
        Err(r) => {
            log::info!("incoming: rejected with {}", r.code);
            return Err(r.line());
        }
    };
    // Origin: strict DKIM alignment for named domains; IP-literal senders are
    // exempt (spec §6.2 step 5).
    if !ok.from_domain.starts_with('[') {
        crate::inbound::verify_origin(ctx, raw, &ok.from_domain).await?;
    }
    // The envelope sender is not stored (we keep no Return-Path); with
    // reset_sender a bounce would go nowhere, which is the point (§6.2 step 3).
    let _ = ok.reset_sender;
    let clean = crate::policy::strip_incoming(raw);
    crate::deliver::local(ctx, &clean, rcpts).await
}

/// DKIM verification (filled in by the DKIM module).
pub async fn verify_origin(_ctx: &Ctx, _raw: &[u8], _from_domain: &str) -> Result<(), String> {
    Err("554 5.7.1 No DKIM signature found".into())
}
