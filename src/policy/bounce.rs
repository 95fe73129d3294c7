//! Mailer-daemon bounce exception on incoming mail (spec §6.2 step 4, path B;
//! §5.5: what a relay's own DSNs look like), narrowed to real delivery status
//! notifications (RFC 3464, RFC 6522): the exemption must not carry a
//! cleartext message (HTML or otherwise) past the encryption rule.

use super::from::from_address;
use super::mime::is_encrypted;
use super::openpgp::Direction;
use super::structure::{self, Entity};

/// True if all of these hold:
/// * exactly one `Auto-Submitted`, non-empty;
/// * the `From` address starts with `mailer-daemon@` (case-insensitive);
/// * the top-level type is `multipart/report; report-type=delivery-status`;
/// * its parts are leaves: `text/plain` (the human-readable notice), then
///   `message/delivery-status`, then optionally the returned original as
///   `text/rfc822-headers` or `message/rfc822` — holding headers only, or
///   for `message/rfc822` an original that is itself encrypted (what a remote
///   MTA returns of our users' mail). No `text/html` or other part anywhere.
///
/// The sender's domain is checked by the incoming pipeline afterwards (strict
/// DKIM alignment for named domains, `relay::inbound::verify_origin`), for
/// bounces as for every other accepted message.
pub fn is_mailer_daemon_bounce(msg: &Entity) -> bool {
    let auto_submitted = msg.single("Auto-Submitted").is_some_and(|v| !v.is_empty());
    auto_submitted
        && msg.mime_type == "multipart/report"
        && msg
            .param("report-type")
            .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
        && from_address(msg).is_ok_and(|a| a.starts_with("mailer-daemon@"))
        && parts_ok(&msg.parts)
}

fn parts_ok(parts: &[Entity]) -> bool {
    let (text, status, original) = match parts {
        [t, s] => (t, s, None),
        [t, s, o] => (t, s, Some(o)),
        _ => return false,
    };
    text.mime_type == "text/plain"
        && status.mime_type == "message/delivery-status"
        && original.is_none_or(original_ok)
}

fn original_ok(part: &Entity) -> bool {
    match part.mime_type.as_str() {
        "text/rfc822-headers" => part.decoded_body().is_some_and(|b| headers_only(&b)),
        "message/rfc822" => {
            headers_only(part.body)
                || structure::read(part.body).is_ok_and(|m| {
                    is_encrypted(&m, Direction::Incoming)
                        && structure::agrees_with_mailparse(&m, part.body)
                })
        }
        _ => false,
    }
}

/// A header block and nothing (but blank lines) after it.
fn headers_only(body: &[u8]) -> bool {
    structure::read_header_block(body)
        .is_ok_and(|(_, rest)| rest.iter().all(|b| b.is_ascii_whitespace()))
}
