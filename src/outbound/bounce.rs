//! Delivery status notifications (RFC 3464) for recipients that failed
//! permanently or expired, delivered to the local sender's INBOX
//! (`From: MAILER-DAEMON@<domain>`, `Auto-Submitted: auto-replied`, spec §5.5).

use crate::relay::Ctx;
use crate::store::QueueEntry;

/// Build the DSN for `failed` recipients of the message `original`.
pub fn build(
    domain: &str,
    sender: &str,
    original: &[u8],
    failed: &[(String, String)],
    now: i64,
    id: u64,
) -> Vec<u8> {
    let boundary = format!("dsn-{id:x}-{now:x}");
    let date = crate::clock::rfc5322_date(now);
    let headers_end = crate::mail::split_header(original).0;
    let mut text = format!(
        "This is the mail delivery system at {domain}.\r\n\r\nYour message could not be delivered to the following recipient(s):\r\n\r\n"
    );
    let mut status = format!("Reporting-MTA: dns; {domain}\r\n");
    for (r, why) in failed {
        text.push_str(&format!("<{r}>: {why}\r\n"));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; {why}\r\n"
        ));
    }
    let mut out = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{domain}>\r\nTo: <{sender}>\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: {date}\r\nMessage-ID: <dsn.{id:x}.{now:x}@{domain}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(headers_end);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Deliver a DSN to the (local) sender; bounces of bounces are dropped.
pub async fn send(ctx: &Ctx, e: &QueueEntry, original: &[u8], failed: &[(String, String)]) {
    if e.mail_from.is_empty() {
        return;
    }
    let domain = &ctx.cfg.mail_domain;
    let dsn = build(
        domain,
        &e.mail_from,
        original,
        failed,
        crate::clock::now_secs(),
        e.id,
    );
    let dsn = crate::relay::inbound::dkim_sign(ctx, dsn);
    if let Err(r) =
        crate::relay::delivery::local(ctx, &dsn, "", std::slice::from_ref(&e.mail_from)).await
    {
        log::warn!("bounce could not be delivered: {r}");
    }
}
