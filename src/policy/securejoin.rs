//! Secure-Join request exception (spec §7.3): the first message of a
//! Secure-Join handshake is sent before keys are known, so it is cleartext.

use mailparse::{MailHeaderMap, ParsedMail};

const KINDS: [&str; 2] = ["vc-request", "vg-request"];

/// True for a genuine `vc-request` / `vg-request`: header `Secure-Join` is exactly
/// one of those, and the message is a multipart with exactly one non-multipart
/// `text/plain` part whose trimmed, lower-cased body is `secure-join: <kind>`.
/// Anything extra (more text, a second part) makes it an ordinary cleartext mail.
pub fn is_securejoin_request(parsed: &ParsedMail) -> bool {
    let Some(value) = parsed.headers.get_first_value("Secure-Join") else {
        return false;
    };
    if !KINDS.contains(&value.trim()) {
        return false;
    }
    if !parsed.ctype.mimetype.starts_with("multipart/") {
        return false;
    }
    let [part] = parsed.subparts.as_slice() else {
        return false;
    };
    if !part.subparts.is_empty() || part.ctype.mimetype != "text/plain" {
        return false;
    }
    let Ok(body) = part.get_body_raw() else {
        return false;
    };
    let body = body.trim_ascii().to_ascii_lowercase();
    KINDS
        .iter()
        .any(|kind| body == format!("secure-join: {kind}").as_bytes())
}
