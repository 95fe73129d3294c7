//! Fuzz the IMAP MIME code (`imap::mime`: sections, ENVELOPE,
//! BODYSTRUCTURE) on arbitrary messages, the way FETCH reaches it: only
//! messages that pass `mail::structure_within_limits` are parsed. Nothing
//! may panic, ENVELOPE/BODYSTRUCTURE must be parenthesised, and a section
//! is at most twice the message (bare LF lines come back as CRLF).
#![no_main]

use chatrelay::imap::mime::{bodystructure, envelope, header_fields, section_bytes};
use chatrelay::imap::parser::{parse_command, CommandBody};
use chatrelay::imap::types::{FetchAtt, Section};
use libfuzzer_sys::fuzz_target;

fn sections() -> Vec<Section> {
    let cmd = b"a FETCH 1 (BODY[] BODY[TEXT] BODY[HEADER] BODY[1] BODY[1.MIME] BODY[2.1.TEXT] \
BODY[1.HEADER.FIELDS (FROM TO)] BODY[HEADER.FIELDS.NOT (SUBJECT)] BODY[3.2.1])";
    match parse_command(cmd).expect("fixed FETCH parses").body {
        CommandBody::Fetch { items, .. } => items
            .into_iter()
            .filter_map(|i| match i {
                FetchAtt::BodySection { section, .. } => Some(section),
                _ => None,
            })
            .collect(),
        _ => unreachable!(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (h, _) = chatrelay::mail::split_header(data);
    let _ = header_fields(h, &["From".to_string(), "Subject".to_string()], false);
    let _ = header_fields(h, &["Received".to_string()], true);
    if !chatrelay::mail::structure_within_limits(data) {
        return;
    }
    let Ok(parsed) = mailparse::parse_mail(data) else {
        return;
    };
    let env = envelope(&parsed);
    assert!(env.starts_with(b"(") && env.ends_with(b")"));
    for ext in [false, true] {
        let bs = bodystructure(&parsed, ext);
        assert!(bs.starts_with(b"(") && bs.ends_with(b")"));
    }
    for s in sections() {
        if let Some(b) = section_bytes(data, Some(&parsed), &s) {
            let bound = 2 * data.len() + 4;
            assert!(b.len() <= bound, "section {} larger than twice the message", s.spec());
        }
    }
});
