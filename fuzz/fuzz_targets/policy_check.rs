//! Fuzz the mail policy (spec §5.2, §6.2, §7) and header rewriting on arbitrary
//! bytes: none of them may panic, and whatever the policy accepts was read by
//! the strict MIME reader into the same tree as mailparse's. Seed corpus:
//! `fuzz/corpus/policy_check/` (the `tests/fixtures/eml/*.eml`).
//!
//! cargo +nightly fuzz run policy_check corpus/policy_check -- -max_len=262144 -timeout=2
#![no_main]

use chatrelay::policy::{
    armor_ok, check_incoming, check_outgoing, openpgp_packets_ok, scrub_outgoing, strip_incoming,
    structure, Direction,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rcpts = vec!["bob@example.org".to_string()];
    let out = check_outgoing(data, "alice@example.org", &rcpts);
    let inc = check_incoming(data, "alice@example.org", &rcpts);
    if out.is_ok() || inc.is_ok() {
        let ours = structure::read(data).expect("accepted without a strict reading");
        let theirs = mailparse::parse_mail(data).expect("accepted without mailparse");
        assert_eq!(ours.tree(), structure::mailparse_tree(&theirs));
    }
    // Rewriting is idempotent: a second pass finds nothing more to do.
    let scrubbed = scrub_outgoing(data);
    assert_eq!(scrub_outgoing(&scrubbed), scrubbed);
    let stripped = strip_incoming(data);
    assert_eq!(strip_incoming(&stripped), stripped);
    let _ = openpgp_packets_ok(data);
    let _ = armor_ok(data, Direction::Outgoing);
    let _ = armor_ok(data, Direction::Incoming);
});
