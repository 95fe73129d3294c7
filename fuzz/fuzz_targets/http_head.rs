//! Fuzz the HTTP request-head parser (`http::parse_head`, RFC 9112 through
//! httparse plus our body rules): no panic; an accepted head has a token
//! method, a path without spaces, and a body length that its only
//! Content-Length value(s) spell in digits.
#![no_main]

use chatrelay::http::parse_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((r, len)) = parse_head(data) else {
        return;
    };
    assert!(!r.method.is_empty());
    assert!(r.method.bytes().all(|b| b.is_ascii_graphic()));
    assert!(!r.path.contains(' ') && !r.query.contains(' '));
    assert!(r.header("transfer-encoding").is_none());
    let cls: Vec<&Vec<u8>> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v)
        .collect();
    match cls.first() {
        None => assert_eq!(len, 0),
        Some(v) => {
            let v = std::str::from_utf8(v.trim_ascii()).expect("digits");
            assert!(v.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(v.parse::<u64>().ok(), Some(len));
        }
    }
});
