//! Fuzz the line framing every protocol reads with (`net::lines::Lines`):
//! the input is fed in pieces of fuzzer-chosen sizes and must give exactly
//! the lines the whole-input oracle (`net::lines::reference`) finds, while
//! never holding more than the limit plus one piece.
#![no_main]

use chatrelay::net::lines::{agrees, feed_in_pieces, reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max = data[0] as usize % 64;
    let pieces: Vec<usize> = data[1..3].iter().map(|b| (*b as usize % 97) + 1).collect();
    let input = &data[3..];
    let got = feed_in_pieces(input, max, &pieces);
    let want = reference(input, max);
    assert!(agrees(&got, &want), "max {max} pieces {pieces:?}: {got:?} vs {want:?}");
});
