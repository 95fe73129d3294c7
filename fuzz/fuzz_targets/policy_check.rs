//! Fuzz the mail policy (spec §5.2, §6.2, §7) and header rewriting on arbitrary
//! bytes: none of them may panic. Seed corpus: `tests/fixtures/eml/*.eml`.
//!
//! cargo +nightly fuzz run policy_check ../tests/fixtures/eml
#![no_main]

use chatrelay::policy::{
    armor_ok, check_incoming, check_outgoing, openpgp_packets_ok, scrub_outgoing, strip_incoming,
    Direction,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rcpts = vec!["bob@example.org".to_string()];
    let _ = check_outgoing(data, "alice@example.org", &rcpts);
    let _ = check_incoming(data, "alice@example.org", &rcpts);
    // Rewriting is idempotent: a second pass finds nothing more to do.
    let scrubbed = scrub_outgoing(data);
    assert_eq!(scrub_outgoing(&scrubbed), scrubbed);
    let stripped = strip_incoming(data);
    assert_eq!(strip_incoming(&stripped), stripped);
    let _ = openpgp_packets_ok(data);
    let _ = armor_ok(data, Direction::Outgoing);
    let _ = armor_ok(data, Direction::Incoming);
});
