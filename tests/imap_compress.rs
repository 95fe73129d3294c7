//! COMPRESS=DEFLATE (RFC 4978): only offered with `imap_compress = true`;
//! after it, commands and responses travel as raw DEFLATE with sync flushes.
mod common;

use common::deflate::Deflated;
use common::*;

#[test]
fn deflate_round_trip_when_enabled() {
    let mut r = Relay::start_with(186, "imap_compress = true");
    let mut z = Deflated::login(&r, "compress1");
    z.send(b"c CAPABILITY\r\n");
    let caps = z.until_tag("c");
    assert!(
        caps.contains("c OK") && !caps.contains("COMPRESS=DEFLATE"),
        "{caps}"
    );
    z.send(b"d COMPRESS DEFLATE\r\n");
    assert!(z.until_tag("d").contains("d NO [COMPRESSIONACTIVE]"));
    let body = "Subject: z\r\n\r\n".to_string() + &"compressible line\r\n".repeat(2000);
    z.send(format!("e APPEND INBOX {{{}+}}\r\n{body}\r\n", body.len()).as_bytes());
    assert!(z.until_tag("e").contains("e OK [APPENDUID"));
    z.send(b"f SELECT INBOX\r\n");
    assert!(z.until_tag("f").contains("* 1 EXISTS"));
    z.send(b"g FETCH 1 BODY.PEEK[]\r\n");
    let f = z.until_tag("g");
    assert!(f.contains(&body), "fetched body differs");
    r.assert_serving();
}

#[test]
fn compress_refused_by_default() {
    let r = Relay::start(187);
    let mut c = r.login("compress2");
    let caps = c.cmd("CAPABILITY");
    assert!(!caps.text().contains("COMPRESS"), "{caps:?}");
    let resp = c.cmd("COMPRESS DEFLATE");
    assert!(resp.tagged.contains(" NO "), "{resp:?}");
    let ok = c.cmd("NOOP");
    assert!(ok.ok(), "{ok:?}");
}
