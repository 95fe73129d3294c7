//! Self-sent Autocrypt Setup Message (spec §5.2 step 5; Autocrypt Level 1 §4.4).
//!
//! The ASM carries a passphrase-encrypted key backup inside a cleartext
//! `multipart/mixed`; it is allowed only when a user sends it to themself.

use super::structure::Entity;

/// True if there is exactly one recipient, equal (case-insensitively) to
/// `mail_from`, there is one `Subject`, `Autocrypt Setup Message`, and the
/// message has the Autocrypt Level 1 §4.4 shape: `multipart/mixed` with a
/// `text/plain` description and the `application/autocrypt-setup` part, and
/// nothing else (a fuzz finding of `policy_mime_diff`: a 19-part "ASM" that
/// mail-parser read differently was accepted). The caller has already checked
/// that `mail_from` equals the `From` header.
pub fn is_autocrypt_setup(msg: &Entity, mail_from: &str, rcpts: &[String]) -> bool {
    let [rcpt] = rcpts else {
        return false;
    };
    rcpt.eq_ignore_ascii_case(mail_from)
        && !mail_from.is_empty()
        && msg.single("Subject") == Some(&b"Autocrypt Setup Message"[..])
        && msg.mime_type == "multipart/mixed"
        && matches!(msg.parts.as_slice(), [text, setup]
            if text.mime_type == "text/plain" && setup.mime_type == "application/autocrypt-setup")
}
