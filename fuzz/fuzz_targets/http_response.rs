//! Fuzz the HTTP response parser of our HTTPS client
//! (`https_client::parse_response`, RFC 9112 through httparse plus
//! Content-Length / chunked / read-to-close bodies; the ACME request layer
//! reads every CA answer with it): no panic; the input split at any point
//! and parsed again with more bytes gives the same answer once complete;
//! a body is never longer than the input; a complete parse never changes
//! when the connection is then said to be closed.
#![no_main]

use chatrelay::https_client::parse_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (flags, raw) = match data.split_first() {
        Some((f, r)) => (*f, r),
        None => return,
    };
    let head_only = flags & 1 == 1;
    let whole = parse_response(raw, head_only, true);
    if let Ok(Some(r)) = &whole {
        assert!(r.body.len() <= raw.len());
        assert!((100..=999).contains(&r.status));
    }
    if let Ok(Some(open)) = parse_response(raw, head_only, false) {
        // Complete without the close: the close changes nothing.
        assert_eq!(Ok(Some(open)), whole);
    }
    // Fed in two pieces: an early complete answer is the same one.
    let cut = (flags as usize >> 1) % (raw.len() + 1);
    if let Ok(Some(early)) = parse_response(&raw[..cut], head_only, false) {
        // A response that is complete at `cut` is complete at the end,
        // with the same head; bytes after it belong to nothing.
        let late = parse_response(raw, head_only, false).expect("more bytes stay valid");
        let late = late.expect("complete earlier, complete later");
        assert_eq!(early.status, late.status);
        assert_eq!(early.headers, late.headers);
    }
});
