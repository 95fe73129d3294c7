//! Fuzz DKIM verification (RFC 6376) on arbitrary bytes: signature parsing,
//! key record parsing, canonicalization and verification may fail but must
//! never panic.
//!
//! Input: `<key record>\n<message>`; the record part is also tried as is.
//!
//! cargo +nightly fuzz run dkim_verify
#![no_main]

use chatrelay::dkim::{check_aligned, parse_key_record, signatures, verify_with_key_at};
use libfuzzer_sys::fuzz_target;

/// A well-formed Ed25519 record so that deep verification paths are reached
/// even when the fuzzer's own record does not parse.
const ED_RECORD: &str = "v=DKIM1;k=ed25519;p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

fuzz_target!(|data: &[u8]| {
    let (record, msg) = match data.iter().position(|&b| b == b'\n') {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &data[..0]),
    };
    let record = String::from_utf8_lossy(record);
    let _ = parse_key_record(&record);
    for sig in signatures(msg) {
        let _ = sig.domain();
        let _ = verify_with_key_at(msg, &sig, &record, Some(1_700_000_000));
        let _ = verify_with_key_at(msg, &sig, ED_RECORD, None);
    }
    let _ = check_aligned(msg, "example.org", |_, _| Some(record.to_string()));
    let _ = signatures(data);
});
