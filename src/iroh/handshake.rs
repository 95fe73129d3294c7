//! The ClientInfo check of the iroh relay protocol v3, without I/O.
//!
//! The client's first frame proves it holds the secret key of the node id it
//! claims: an ed25519 signature (RFC 8032) over the message, which is the
//! postcard encoding of `ClientInfo { version: usize }` — a single
//! varint (7 bits per byte, least significant first, high bit = more).
//! iroh-relay 0.35 speaks version 3 and refuses every other.

use super::frame::{Frame, Key};

pub const PROTOCOL_VERSION: u64 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// The first frame was not a ClientInfo.
    NotClientInfo,
    BadSignature,
    BadMessage,
    Version(u64),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::NotClientInfo => f.write_str("expected a ClientInfo frame first"),
            HandshakeError::BadSignature => f.write_str("client info signature does not verify"),
            HandshakeError::BadMessage => f.write_str("client info message is not a version"),
            HandshakeError::Version(v) => write!(
                f,
                "unsupported relay protocol version {v}, this relay speaks {PROTOCOL_VERSION}"
            ),
        }
    }
}

/// A postcard `usize` varint at the start of `b` (trailing bytes ignored,
/// as postcard's `from_bytes` does).
pub fn varint(b: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return None; // over 64 bits
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Check the client's first frame; on success the node key it proved.
pub fn verify(first: &Frame<'_>) -> Result<Key, HandshakeError> {
    let Frame::ClientInfo {
        key,
        signature,
        message,
    } = first
    else {
        return Err(HandshakeError::NotClientInfo);
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key[..])
        .verify(message, &signature[..])
        .map_err(|_| HandshakeError::BadSignature)?;
    match varint(message) {
        None => Err(HandshakeError::BadMessage),
        Some(PROTOCOL_VERSION) => Ok(**key),
        Some(v) => Err(HandshakeError::Version(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn pair() -> Ed25519KeyPair {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn check(kp: &Ed25519KeyPair, signed: &[u8], sent: &[u8]) -> Result<Key, HandshakeError> {
        let key: Key = kp.public_key().as_ref().try_into().unwrap();
        let sig: [u8; 64] = kp.sign(signed).as_ref().try_into().unwrap();
        verify(&Frame::ClientInfo {
            key: &key,
            signature: &sig,
            message: sent,
        })
    }

    #[test]
    fn version_three_signed() {
        let kp = pair();
        let want: Key = kp.public_key().as_ref().try_into().unwrap();
        assert_eq!(check(&kp, &[3], &[3]), Ok(want));
        assert_eq!(check(&kp, &[3], &[4]), Err(HandshakeError::BadSignature));
        assert_eq!(check(&kp, &[2], &[2]), Err(HandshakeError::Version(2)));
        assert_eq!(
            check(&kp, &[0x80, 0x01], &[0x80, 0x01]),
            Err(HandshakeError::Version(128))
        );
        assert_eq!(check(&kp, &[], &[]), Err(HandshakeError::BadMessage));
        assert_eq!(
            verify(&Frame::KeepAlive),
            Err(HandshakeError::NotClientInfo)
        );
    }

    #[test]
    fn varints() {
        assert_eq!(varint(&[3]), Some(3));
        assert_eq!(varint(&[0xff, 0x01]), Some(255));
        assert_eq!(varint(&[0x80; 11]), None);
        assert_eq!(
            varint(&[0xff; 9].iter().chain(&[0x01]).copied().collect::<Vec<_>>()),
            Some(u64::MAX)
        );
        assert_eq!(
            varint(&[0xff; 9].iter().chain(&[0x02]).copied().collect::<Vec<_>>()),
            None
        );
    }
}
