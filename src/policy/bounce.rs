//! Mailer-daemon bounce exception on incoming mail (spec §6.2 step 4, path B;
//! §5.5: what a relay's own DSNs look like).

use super::from::from_address;
use mailparse::{MailHeaderMap, ParsedMail};

/// True if `Auto-Submitted` is present and non-empty, the `From` address starts
/// with `mailer-daemon@` (case-insensitive) and the top-level type is
/// `multipart/report`.
pub fn is_mailer_daemon_bounce(parsed: &ParsedMail) -> bool {
    let auto_submitted = parsed
        .headers
        .get_first_value("Auto-Submitted")
        .is_some_and(|v| !v.trim().is_empty());
    auto_submitted
        && parsed.ctype.mimetype == "multipart/report"
        && from_address(parsed).is_ok_and(|a| a.starts_with("mailer-daemon@"))
}
