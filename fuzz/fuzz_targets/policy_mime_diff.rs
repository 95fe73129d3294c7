//! Differential fuzzing of the policy's strict MIME reader against an
//! independent parser, the `mail-parser` crate: when both read a message and
//! their part trees differ, the policy must refuse it (in both directions and
//! for the bounce envelope). Seed corpus: `fuzz/corpus/policy_mime_diff/`.
//!
//! cargo +nightly fuzz run policy_mime_diff corpus/policy_mime_diff -- -max_len=262144 -timeout=2
#![no_main]

use chatrelay::policy::{check_incoming, check_outgoing, structure};
use libfuzzer_sys::fuzz_target;
use mail_parser::{Message, MessageParser, MimeHeaders};

/// mail-parser's view in the notation of `structure::Entity::tree`. Its part
/// ids can be shared between parents (fuzz finding: an exponential walk that
/// timed out), so the walk stops after `budget` parts with a `…` (which then
/// differs from our tree, whose part count is capped at 64).
fn tree(msg: &Message, id: u32, in_digest: bool, budget: &mut usize, out: &mut String) {
    if *budget == 0 {
        out.push('…');
        return;
    }
    *budget -= 1;
    let Some(part) = msg.part(id) else {
        out.push('?');
        return;
    };
    let mime = match part.content_type() {
        Some(ct) => format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase(),
        None if in_digest => "message/rfc822".to_string(),
        None => "text/plain".to_string(),
    };
    out.push_str(&mime);
    if let Some(subs) = part.sub_parts() {
        out.push('(');
        for (i, &s) in subs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            tree(msg, s, mime == "multipart/digest", budget, out);
        }
        out.push(')');
    } else if mime.starts_with("multipart/") {
        out.push_str("()");
    }
}

/// mail-parser itself panics on some inputs (fuzz finding, its bug: "Invalid
/// part ID, could not find multipart." in parsers/message.rs). Such a panic
/// means "mail-parser cannot read it" here; every other panic still aborts,
/// as libfuzzer-sys's own hook does.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let theirs = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !theirs {
                eprintln!("{info}");
                std::process::abort();
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    install_panic_hook();
    let Ok(ours) = structure::read(data) else {
        return;
    };
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(data));
    let Ok(Some(msg)) = parsed else {
        return;
    };
    let mut theirs = String::new();
    tree(&msg, 0, false, &mut 256, &mut theirs);
    if ours.tree() != theirs {
        let bob = vec!["bob@example.org".to_string()];
        let alice = vec!["alice@example.org".to_string()];
        for (from, rcpts) in [("alice@example.org", &bob), ("alice@example.org", &alice)] {
            assert!(
                check_outgoing(data, from, rcpts).is_err(),
                "outgoing accepted; ours {} mail-parser {theirs}",
                ours.tree()
            );
        }
        for from in ["alice@example.org", ""] {
            assert!(
                check_incoming(data, from, &bob).is_err(),
                "incoming accepted; ours {} mail-parser {theirs}",
                ours.tree()
            );
        }
    }
});
