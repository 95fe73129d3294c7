//! Fuzz the two hand-written parsers of the web pages: query strings
//! (`http::query::Query::parse`, RFC 3986 §3.4) and address ranges
//! (`config::networks::Net::parse`, the `status_networks` key). No panic;
//! an accepted query is bounded and its values carry no control characters;
//! an accepted range contains its own address.
#![no_main]

use chatrelay::config::networks::Net;
use chatrelay::http::query::{Query, MAX_PARAMS, MAX_QUERY};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = Query::parse(s) {
        assert!(s.len() <= MAX_QUERY);
        let mut n = 0;
        for k in ["t", "token", "lang", "a", "x"] {
            if let Some(v) = q.get(k) {
                assert!(!v.chars().any(|c| c.is_control()));
            }
        }
        for part in s.split('&').filter(|p| !p.is_empty()) {
            let _ = part;
            n += 1;
        }
        assert!(n <= MAX_PARAMS);
    }
    if let Some(net) = Net::parse(s) {
        let addr = s.split('/').next().unwrap().parse().unwrap();
        assert!(net.contains(addr));
    }
});
