//! Fuzz the iroh relay frame codec (`iroh::frame`) and the ClientInfo check
//! (`iroh::handshake`): no panic on any byte stream; every frame decoded
//! re-encodes to exactly the bytes it came from; no decoded frame is over
//! the size limits; an incomplete frame stays incomplete until its bytes
//! arrive; a ClientInfo that verifies is version 3.
#![no_main]

use chatrelay::iroh::frame::{self, Frame, HEADER_LEN, MAX_FRAME_LEN, MAX_PACKET};
use chatrelay::iroh::handshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut first = true;
    loop {
        match frame::decode(rest) {
            Ok(None) => {
                // Incomplete: every shorter prefix is incomplete too.
                if rest.len() >= HEADER_LEN {
                    let (_, len) = frame::header(rest[..HEADER_LEN].try_into().unwrap()).unwrap();
                    assert!(rest.len() < HEADER_LEN + len);
                }
                break;
            }
            Err(_) => break,
            Ok(Some((f, n))) => {
                assert!(n >= HEADER_LEN && n - HEADER_LEN <= MAX_FRAME_LEN && n <= rest.len());
                assert_eq!(frame::to_vec(&f), &rest[..n], "re-encoding differs");
                if let Frame::SendPacket { data, .. } | Frame::RecvPacket { data, .. } = &f {
                    assert!(data.len() <= MAX_PACKET);
                }
                if first {
                    if handshake::verify(&f).is_ok() {
                        let Frame::ClientInfo { message, .. } = &f else {
                            panic!("verified a frame that is not a ClientInfo")
                        };
                        assert_eq!(handshake::varint(message), Some(3));
                    }
                    first = false;
                }
                rest = &rest[n..];
            }
        }
    }
});
