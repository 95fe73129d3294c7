//! Fuzz the IMAP framing helper and command parser on arbitrary bytes:
//! neither may panic, and a successfully parsed command must have a
//! non-empty tag without `+`.
#![no_main]

use chatrelay::imap::parser::{literal_at_end, parse_command, ParseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = literal_at_end(data);
    for line in data.split(|&b| b == b'\n') {
        let _ = literal_at_end(line);
    }
    match parse_command(data) {
        Ok(cmd) => {
            assert!(!cmd.tag.is_empty() && !cmd.tag.contains('+'));
            let _ = cmd.body.name();
        }
        Err(ParseError::Bad { tag, msg }) => {
            assert!(!tag.is_empty());
            assert!(!msg.is_empty());
        }
        Err(ParseError::NoTag(msg)) => assert!(!msg.is_empty()),
    }
});
