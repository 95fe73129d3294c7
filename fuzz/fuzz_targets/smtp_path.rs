//! Fuzz the SMTP envelope path parser (`smtp::address::parse_path`, RFC 5321
//! §4.1.2) and `mail::split_addr`: no panic; an accepted path is lower-case,
//! bounded, and free of controls, spaces and angle brackets. (Unicode
//! lower-casing is not idempotent for every letter, so only ASCII case is
//! checked.)
#![no_main]

use chatrelay::smtp::address::{parse_path, split_addr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((path, params)) = parse_path(s) {
        assert!(path.len() <= 320);
        assert!(!path.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(!path.chars().any(|c| c.is_control() || c == ' ' || c == '<' || c == '>'));
        for (k, _) in params {
            assert!(!k.bytes().any(|b| b.is_ascii_lowercase()));
        }
        if let Some((l, d)) = split_addr(&path) {
            assert!(!l.is_empty() && !d.is_empty() && !d.contains('@'));
        }
    }
});
