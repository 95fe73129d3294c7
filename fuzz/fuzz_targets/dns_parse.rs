//! Fuzz the DNS response parser (`chatrelay::dns::parse_response`): arbitrary
//! bytes must give `Ok` or `Err`, never a panic or a hang; every name it
//! returns without `\DDD` escapes must be valid, canonical query input.
//!
//! cargo +nightly fuzz run dns_parse
#![no_main]

use chatrelay::dns::{parse_response, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::parse_header(data);
    if let Ok(msg) = parse_response(data) {
        let names = msg
            .questions
            .iter()
            .map(|q| &q.name)
            .chain(msg.answers.iter().map(|r| &r.name))
            .chain(msg.authority.iter().map(|r| &r.name));
        for name in names.filter(|n| !n.contains('\\')) {
            // Parsed names are canonical: canonicalising again is a no-op.
            let canon = wire::canonical_name(name).expect("parsed name is valid");
            assert_eq!(&canon, name);
            assert!(wire::build_query(0, name, wire::TYPE_A).is_ok());
        }
    }
});
