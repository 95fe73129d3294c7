//! Mail policy: which messages a chatmail relay accepts, and header rewriting.
//!
//! Pure functions over bytes (design principle 2 and 6): the SMTP server and
//! `/mxdeliv` call [`check_outgoing`] / [`check_incoming`] on the spooled
//! message and then [`scrub_outgoing`] / [`strip_incoming`]. Each check is an
//! ordered list of small stages, each usable and tested on its own.
//!
//! Spec: `chatmail-relay.md` §5.2 (outgoing), §6.2 (incoming), §7 (what counts
//! as encrypted), §8 (reply texts).
//!
//! Deliberate differences from upstream filtermail (all stricter or more robust,
//! none changes what Delta Chat sends):
//! * PGP/MIME part 2 must exist (the spec recommends it).
//! * Armor lines may end in bare LF as well as CRLF; only a real CRC24 line
//!   (`=` + 4 base64 chars) is cut, so base64 padding survives when the
//!   optional checksum is absent (RFC 9580 makes it optional).
//! * Old-format packet headers (RFC 4880 §4.2.1) are walked, including the
//!   indeterminate length (which can only end the data, and never as SEIPD).
//! * More than one `From` header, or one with several addresses or a group, is
//!   `500 Invalid FROM header` (a classic DKIM/display spoofing shape).
//! * MIME structure comes from our own strict reader ([`structure`]), which
//!   refuses every boundary trick, caps depth, part count and header size, and
//!   runs before mailparse; a message that mailparse reads into a different
//!   part tree is refused (`523`): any message two parsers read differently.
//! * More than 1000 lines starting with `--` (`mail::MAX_BOUNDARY_LINES`) is
//!   `500 Failed to parse message: too many MIME boundaries` (stack bound for
//!   mailparse, whatever structure our reader saw).
//! * The mailer-daemon exemption only covers real delivery status reports
//!   ([`is_mailer_daemon_bounce`]).

mod asm;
mod bounce;
mod from;
mod headers;
mod mime;
mod openpgp;
mod securejoin;
pub mod structure;

pub use asm::is_autocrypt_setup;
pub use bounce::is_mailer_daemon_bounce;
use from::from_address;
pub use headers::{scrub_outgoing, strip_incoming};
pub use mime::is_encrypted;
pub use openpgp::{armor_ok, openpgp_packets_ok, Direction};
pub use securejoin::is_securejoin_request;

use structure::{Entity, Refusal};

/// An SMTP-style reply the caller sends as-is, e.g. 523 "Encryption Needed: Invalid Unencrypted Mail".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    fn new(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            text: text.into(),
        }
    }

    /// The reply line without CRLF, e.g. `523 Encryption Needed: Invalid Unencrypted Mail`.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text)
    }
}

/// Why a message was accepted (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// PGP/MIME with an encrypted OpenPGP payload (§7.1, §7.2).
    Encrypted,
    /// Cleartext Secure-Join `vc-request` / `vg-request` (§7.3).
    SecureJoin,
    /// Self-sent Autocrypt Setup Message (outgoing only, §5.2 step 5).
    AutocryptSetup,
    /// Cleartext bounce from a mailer daemon (incoming only, §6.2 step 4 B).
    MailerDaemonBounce,
}

/// Result of a successful [`check_incoming`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingOk {
    pub accepted: Accepted,
    /// MAIL FROM differs from the `From` address (case-insensitive): the caller
    /// must reinject/deliver with `MAIL FROM:<>` so no bounce reaches a spoofed
    /// envelope sender (§6.2 step 3).
    pub reset_sender: bool,
    /// Lower-cased domain of the `From` address (a name or an `[ip]` literal),
    /// for DKIM alignment (§6.2 step 5).
    pub from_domain: String,
}

/// `523 Encryption Needed: Invalid Unencrypted Mail` (§8).
pub fn encryption_needed() -> Reply {
    Reply::new(523, "Encryption Needed: Invalid Unencrypted Mail")
}

/// Stage 1: read the MIME structure strictly, then cross-check it with
/// mailparse. Limits and unreadable header blocks are
/// `500 Failed to parse message: …`; an ambiguous structure, or one that
/// mailparse reads differently, is `523` (it cannot count as encrypted).
fn parse(raw: &[u8]) -> Result<Entity<'_>, Reply> {
    let entity = structure::read(raw).map_err(|r| match r {
        Refusal::Limit(why) | Refusal::Syntax(why) => {
            Reply::new(500, format!("Failed to parse message: {why}"))
        }
        Refusal::Ambiguous(why) => {
            log::info!("policy: ambiguous MIME structure: {why}");
            encryption_needed()
        }
    })?;
    // mailparse recurses per nesting level *as it reads it*, which need not be
    // ours: bound its recursion whatever our reader saw (at most 1000 lines
    // starting with `--`, for the stack of our one thread), and its work,
    // about depth × size (crate::mail).
    if !crate::mail::structure_within_limits(raw) {
        return Err(Reply::new(
            500,
            "Failed to parse message: too many MIME boundaries",
        ));
    }
    let parsed = mailparse::parse_mail(raw)
        .map_err(|e| Reply::new(500, format!("Failed to parse message: {e}")))?;
    if structure::mailparse_tree(&parsed) != entity.tree() {
        log::info!("policy: mailparse reads another MIME structure");
        return Err(encryption_needed());
    }
    Ok(entity)
}

/// What each acceptance stage sees.
struct Ctx<'a, 'm> {
    parsed: &'a Entity<'m>,
    mail_from: &'a str,
    rcpts: &'a [String],
}

/// An acceptance stage: `Some` accepts the message, `None` passes it on.
type Stage = fn(&Ctx) -> Option<Accepted>;

fn encrypted_outgoing(c: &Ctx) -> Option<Accepted> {
    is_encrypted(c.parsed, Direction::Outgoing).then_some(Accepted::Encrypted)
}

fn encrypted_incoming(c: &Ctx) -> Option<Accepted> {
    is_encrypted(c.parsed, Direction::Incoming).then_some(Accepted::Encrypted)
}

fn securejoin(c: &Ctx) -> Option<Accepted> {
    is_securejoin_request(c.parsed).then_some(Accepted::SecureJoin)
}

fn autocrypt_setup(c: &Ctx) -> Option<Accepted> {
    is_autocrypt_setup(c.parsed, c.mail_from, c.rcpts).then_some(Accepted::AutocryptSetup)
}

fn bounce(c: &Ctx) -> Option<Accepted> {
    is_mailer_daemon_bounce(c.parsed).then_some(Accepted::MailerDaemonBounce)
}

/// §5.2 steps 4–5, in order.
const OUTGOING_STAGES: [Stage; 3] = [encrypted_outgoing, securejoin, autocrypt_setup];
/// §6.2 step 4, paths A and B, in order.
const INCOMING_STAGES: [Stage; 3] = [encrypted_incoming, securejoin, bounce];

fn first_accepting(stages: &[Stage], ctx: &Ctx) -> Option<Accepted> {
    stages.iter().find_map(|stage| stage(ctx))
}

/// Outgoing (submission) checks of spec §5.2 steps 2–7, in order: parse MIME,
/// `From` header parses, `From` == MAIL FROM (case-insensitive), then encrypted
/// (outgoing variant) | Secure-Join request | self-sent ASM, else 523.
///
/// `mail_from` is the envelope sender as given (already checked against the
/// login by the caller); `rcpts` the envelope recipients.
pub fn check_outgoing(raw: &[u8], mail_from: &str, rcpts: &[String]) -> Result<Accepted, Reply> {
    let parsed = parse(raw)?;
    let from = from_address(&parsed)
        .map_err(|value| Reply::new(500, format!("Invalid FROM header: {value}")))?;
    if !from.eq_ignore_ascii_case(mail_from) {
        return Err(Reply::new(
            500,
            format!("Invalid FROM <{from}> for <{mail_from}>"),
        ));
    }
    let ctx = Ctx {
        parsed: &parsed,
        mail_from,
        rcpts,
    };
    first_accepting(&OUTGOING_STAGES, &ctx).ok_or_else(encryption_needed)
}

/// Incoming (MX / `/mxdeliv`) checks of spec §6.2 steps 1–4 (DKIM, step 5, is
/// the caller's): parse MIME, `From` header parses, then encrypted (incoming
/// variant) | Secure-Join request | mailer-daemon bounce, else 523.
///
/// Path C of §6.2 (recipients without the `enforceE2EEincoming` marker) needs
/// account state and is left to the caller; chatmail accounts always have it.
pub fn check_incoming(raw: &[u8], mail_from: &str, rcpts: &[String]) -> Result<IncomingOk, Reply> {
    let parsed = parse(raw)?;
    let from = from_address(&parsed)
        .map_err(|value| Reply::new(500, format!("Invalid FROM header: {value}")))?;
    let reset_sender = !from.eq_ignore_ascii_case(mail_from);
    let from_domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let ctx = Ctx {
        parsed: &parsed,
        mail_from,
        rcpts,
    };
    let accepted = first_accepting(&INCOMING_STAGES, &ctx).ok_or_else(encryption_needed)?;
    Ok(IncomingOk {
        accepted,
        reset_sender,
        from_domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const PLAIN: &str = "From: {from}\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

    fn plain(from: &str) -> Vec<u8> {
        PLAIN.replace("{from}", from).into_bytes()
    }

    #[test]
    fn from_mismatch_texts() {
        let r = rcpts(&["bob@example.org"]);
        let err =
            check_outgoing(&plain("mallory@example.org"), "alice@example.org", &r).unwrap_err();
        assert_eq!(
            err.line(),
            "500 Invalid FROM <mallory@example.org> for <alice@example.org>"
        );
        // Same domain, different user.
        let err = check_outgoing(&plain("Carol <carol@example.org>"), "alice@example.org", &r)
            .unwrap_err();
        assert_eq!(
            err.text,
            "Invalid FROM <carol@example.org> for <alice@example.org>"
        );
        // Case-insensitive match with display name: passes to the encryption check.
        let err = check_outgoing(
            &plain("\"Alice, A.\" <ALICE@example.ORG>"),
            "alice@example.org",
            &r,
        )
        .unwrap_err();
        assert_eq!(err, encryption_needed());
        assert_eq!(
            err.line(),
            "523 Encryption Needed: Invalid Unencrypted Mail"
        );
    }

    #[test]
    fn invalid_from_header_texts() {
        let r = rcpts(&["bob@example.org"]);
        let err =
            check_outgoing(b"To: bob@example.org\r\n\r\nx", "alice@example.org", &r).unwrap_err();
        assert_eq!(err.line(), "500 Invalid FROM header: ");
        for bad in [
            "Alice",
            "<>",
            "a@b@c",
            "@example.org",
            "alice@",
            "undisclosed:;",
        ] {
            let err = check_outgoing(&plain(bad), "alice@example.org", &r).unwrap_err();
            assert_eq!(err.code, 500, "{bad}");
            assert!(
                err.text.starts_with("Invalid FROM header: "),
                "{bad}: {err:?}"
            );
            assert!(check_incoming(&plain(bad), "alice@example.org", &r).is_err());
        }
        let two = b"From: alice@example.org\r\nFrom: mallory@example.org\r\n\r\nx";
        let err = check_outgoing(two, "alice@example.org", &r).unwrap_err();
        assert_eq!(err.text, "Invalid FROM header: alice@example.org");
        let several = plain("alice@example.org, mallory@example.org");
        assert_eq!(
            check_outgoing(&several, "alice@example.org", &r)
                .unwrap_err()
                .code,
            500
        );
    }

    #[test]
    fn parse_failure_text() {
        let err = check_outgoing(b" x\r\n\r\n", "a@b", &[]).unwrap_err();
        assert_eq!(err.code, 500);
        assert!(err.text.starts_with("Failed to parse message: "), "{err:?}");
        let err = check_incoming(b"From: a@b\r\n\rx", "a@b", &[]).unwrap_err();
        assert!(err.line().starts_with("500 Failed to parse message: "));
    }

    #[test]
    fn incoming_reset_sender_and_domain() {
        let msg = b"From: MAILER-DAEMON@Example.ORG\r\nAuto-Submitted: auto-replied\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; example.org\r\n--b--\r\n";
        let ok = check_incoming(msg, "", &rcpts(&["bob@example.org"])).unwrap();
        assert_eq!(ok.accepted, Accepted::MailerDaemonBounce);
        assert!(ok.reset_sender);
        assert_eq!(ok.from_domain, "example.org");
        let ok = check_incoming(msg, "mailer-daemon@example.org", &[]).unwrap();
        assert!(!ok.reset_sender);
        // Plain text is refused whatever the envelope says.
        let err =
            check_incoming(&plain("alice@example.org"), "other@example.net", &[]).unwrap_err();
        assert_eq!(err, encryption_needed());
        // Domain literal.
        let msg = msg.replace_str("MAILER-DAEMON@Example.ORG", "mailer-daemon@[192.0.2.1]");
        let ok = check_incoming(&msg, "", &[]).unwrap();
        assert_eq!(ok.from_domain, "[192.0.2.1]");
    }

    trait ReplaceStr {
        fn replace_str(&self, a: &str, b: &str) -> Vec<u8>;
    }
    impl ReplaceStr for [u8] {
        fn replace_str(&self, a: &str, b: &str) -> Vec<u8> {
            String::from_utf8_lossy(self).replace(a, b).into_bytes()
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // 100 000 nested multiparts: refused by the reader's depth limit
        // before mailparse recurses.
        let mut msg = b"From: alice@example.org\r\n".to_vec();
        for _ in 0..100_000 {
            msg.extend_from_slice(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n");
        }
        let err = check_incoming(&msg, "alice@example.org", &[]).unwrap_err();
        // (All levels share boundary `b`, so the top level sees too many parts.)
        assert!(
            err.line()
                .starts_with("500 Failed to parse message: too many"),
            "{err:?}"
        );
    }

    #[test]
    fn delimiter_lines_bound_mailparse() {
        // A leaf for our reader, but more `--` lines than mailparse may see.
        let mut msg = b"From: alice@example.org\r\n\r\n".to_vec();
        for _ in 0..=crate::mail::MAX_BOUNDARY_LINES {
            msg.extend_from_slice(b"--x\r\n");
        }
        let err = check_incoming(&msg, "alice@example.org", &[]).unwrap_err();
        assert_eq!(
            err.line(),
            "500 Failed to parse message: too many MIME boundaries"
        );
    }
}
