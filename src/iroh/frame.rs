//! The iroh relay protocol v3 frame codec (iroh-relay 0.35, what Delta Chat
//! core 2.x speaks), without I/O.
//!
//! Wire form (iroh-relay `protos/relay.rs`): one type byte, a big-endian
//! `u32` payload length, the payload. The payload per type:
//!
//! | type | name          | payload                                          |
//! |------|---------------|--------------------------------------------------|
//! | 2    | ClientInfo    | magic `RELAY🔑`, 32 B key, 64 B signature, message |
//! | 4    | SendPacket    | 32 B destination key, data (≤ 64 KiB)            |
//! | 5    | RecvPacket    | 32 B source key, data (≤ 64 KiB)                 |
//! | 6    | KeepAlive     | empty                                            |
//! | 7    | NotePreferred | 1 B, 0 or 1                                      |
//! | 8    | PeerGone      | 32 B key                                         |
//! | 12   | Ping          | 8 B                                              |
//! | 13   | Pong          | 8 B                                              |
//! | 14   | Health        | problem text                                     |
//! | 15   | Restarting    | two big-endian `u32` (ms)                        |
//!
//! Upstream allows frames up to 1 MiB; no frame a client legitimately sends
//! is larger than a SendPacket of 64 KiB, so [`MAX_FRAME_LEN`] is that and a
//! longer length is refused from the header alone, before any payload is
//! buffered.

/// Frame header: type byte + u32 length.
pub const HEADER_LEN: usize = 5;
/// Largest packet a SendPacket/RecvPacket carries (iroh `MAX_PACKET_SIZE`).
pub const MAX_PACKET: usize = 64 * 1024;
/// Public keys are ed25519 keys (32 bytes).
pub const KEY_LEN: usize = 32;
/// ed25519 signatures.
pub const SIG_LEN: usize = 64;
/// Largest payload we accept or send: a SendPacket of the largest packet.
pub const MAX_FRAME_LEN: usize = KEY_LEN + MAX_PACKET;
/// The ClientInfo magic (UTF-8 of `RELAY🔑`, 9 bytes).
pub const MAGIC: &[u8] = "RELAY🔑".as_bytes();
/// Largest ClientInfo message (postcard `{version: usize}` is 1–10 bytes).
pub const MAX_CLIENT_INFO_MSG: usize = 64;
/// Largest ClientInfo payload.
pub const MAX_CLIENT_INFO_LEN: usize = 9 + KEY_LEN + SIG_LEN + MAX_CLIENT_INFO_MSG;

pub const CLIENT_INFO: u8 = 2;
pub const SEND_PACKET: u8 = 4;
pub const RECV_PACKET: u8 = 5;
pub const KEEP_ALIVE: u8 = 6;
pub const NOTE_PREFERRED: u8 = 7;
pub const PEER_GONE: u8 = 8;
pub const PING: u8 = 12;
pub const PONG: u8 = 13;
pub const HEALTH: u8 = 14;
pub const RESTARTING: u8 = 15;

pub type Key = [u8; KEY_LEN];

/// One decoded frame; data borrows from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    ClientInfo {
        key: &'a Key,
        signature: &'a [u8; SIG_LEN],
        message: &'a [u8],
    },
    SendPacket {
        dst: &'a Key,
        data: &'a [u8],
    },
    RecvPacket {
        src: &'a Key,
        data: &'a [u8],
    },
    KeepAlive,
    NotePreferred(bool),
    PeerGone(&'a Key),
    Ping([u8; 8]),
    Pong([u8; 8]),
    Health(&'a [u8]),
    Restarting {
        reconnect_in_ms: u32,
        try_for_ms: u32,
    },
}

/// Why bytes are not a frame. `Display` is the text sent back in a Health
/// frame before the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header announces more than [`MAX_FRAME_LEN`].
    TooLarge(u32),
    /// A type byte the protocol does not define.
    UnknownType(u8),
    /// The payload does not fit the type (wrong length, bad magic, ...).
    Malformed(u8, &'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes is over the limit of {MAX_FRAME_LEN}")
            }
            FrameError::UnknownType(t) => write!(f, "unknown frame type {t}"),
            FrameError::Malformed(t, why) => write!(f, "invalid frame of type {t}: {why}"),
        }
    }
}

/// Read a header: (type, payload length). Refuses a length over the limit.
pub fn header(h: &[u8; HEADER_LEN]) -> Result<(u8, usize), FrameError> {
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
    if len as usize > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok((h[0], len as usize))
}

fn key(b: &[u8]) -> &Key {
    b[..KEY_LEN].try_into().expect("length checked")
}

/// Decode a payload of type `typ` (the header already read).
pub fn body(typ: u8, p: &[u8]) -> Result<Frame<'_>, FrameError> {
    let bad = |why| Err(FrameError::Malformed(typ, why));
    let exact = |n: usize| p.len() == n;
    Ok(match typ {
        CLIENT_INFO => {
            let fixed = MAGIC.len() + KEY_LEN + SIG_LEN;
            if p.len() < fixed {
                return bad("too short");
            }
            if &p[..MAGIC.len()] != MAGIC {
                return bad("wrong magic");
            }
            if p.len() - fixed > MAX_CLIENT_INFO_MSG {
                return bad("client info message too long");
            }
            let k = &p[MAGIC.len()..];
            Frame::ClientInfo {
                key: key(k),
                signature: k[KEY_LEN..KEY_LEN + SIG_LEN]
                    .try_into()
                    .expect("length checked"),
                message: &p[fixed..],
            }
        }
        SEND_PACKET | RECV_PACKET => {
            if p.len() < KEY_LEN {
                return bad("shorter than a key");
            }
            if p.len() - KEY_LEN > MAX_PACKET {
                return bad("packet over 64 KiB");
            }
            let (k, data) = (key(p), &p[KEY_LEN..]);
            if typ == SEND_PACKET {
                Frame::SendPacket { dst: k, data }
            } else {
                Frame::RecvPacket { src: k, data }
            }
        }
        KEEP_ALIVE if exact(0) => Frame::KeepAlive,
        NOTE_PREFERRED if exact(1) => match p[0] {
            0 => Frame::NotePreferred(false),
            1 => Frame::NotePreferred(true),
            _ => return bad("preferred flag is neither 0 nor 1"),
        },
        PEER_GONE if exact(KEY_LEN) => Frame::PeerGone(key(p)),
        PING if exact(8) => Frame::Ping(p.try_into().expect("length checked")),
        PONG if exact(8) => Frame::Pong(p.try_into().expect("length checked")),
        HEALTH => Frame::Health(p),
        RESTARTING if exact(8) => Frame::Restarting {
            reconnect_in_ms: u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
            try_for_ms: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        },
        KEEP_ALIVE | NOTE_PREFERRED | PEER_GONE | PING | PONG | RESTARTING => {
            return bad("wrong length")
        }
        t => return Err(FrameError::UnknownType(t)),
    })
}

/// Decode the first frame of `buf`: `Ok(None)` while it is incomplete,
/// else the frame and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let (typ, len) = header(h.try_into().expect("5 bytes"))?;
    let Some(p) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    Ok(Some((body(typ, p)?, HEADER_LEN + len)))
}

fn put_header(out: &mut Vec<u8>, typ: u8, len: usize) {
    out.push(typ);
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// Append the wire form of `f` to `out`.
pub fn encode(f: &Frame<'_>, out: &mut Vec<u8>) {
    match f {
        Frame::ClientInfo {
            key,
            signature,
            message,
        } => {
            put_header(
                out,
                CLIENT_INFO,
                MAGIC.len() + KEY_LEN + SIG_LEN + message.len(),
            );
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&key[..]);
            out.extend_from_slice(&signature[..]);
            out.extend_from_slice(message);
        }
        Frame::SendPacket { dst: k, data } | Frame::RecvPacket { src: k, data } => {
            let typ = if matches!(f, Frame::SendPacket { .. }) {
                SEND_PACKET
            } else {
                RECV_PACKET
            };
            put_header(out, typ, KEY_LEN + data.len());
            out.extend_from_slice(&k[..]);
            out.extend_from_slice(data);
        }
        Frame::KeepAlive => put_header(out, KEEP_ALIVE, 0),
        Frame::NotePreferred(p) => {
            put_header(out, NOTE_PREFERRED, 1);
            out.push(u8::from(*p));
        }
        Frame::PeerGone(k) => {
            put_header(out, PEER_GONE, KEY_LEN);
            out.extend_from_slice(&k[..]);
        }
        Frame::Ping(d) | Frame::Pong(d) => {
            let typ = if matches!(f, Frame::Ping(_)) {
                PING
            } else {
                PONG
            };
            put_header(out, typ, 8);
            out.extend_from_slice(d);
        }
        Frame::Health(t) => {
            put_header(out, HEALTH, t.len());
            out.extend_from_slice(t);
        }
        Frame::Restarting {
            reconnect_in_ms,
            try_for_ms,
        } => {
            put_header(out, RESTARTING, 8);
            out.extend_from_slice(&reconnect_in_ms.to_be_bytes());
            out.extend_from_slice(&try_for_ms.to_be_bytes());
        }
    }
}

/// The wire form of `f` as a new buffer.
pub fn to_vec(f: &Frame<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    encode(f, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_is_nine_bytes() {
        assert_eq!(MAGIC, b"RELAY\xf0\x9f\x94\x91");
    }

    #[test]
    fn round_trip_every_type() {
        let k = [7u8; 32];
        let s = [9u8; 64];
        let frames = [
            Frame::ClientInfo {
                key: &k,
                signature: &s,
                message: &[3],
            },
            Frame::SendPacket {
                dst: &k,
                data: b"hello",
            },
            Frame::RecvPacket { src: &k, data: b"" },
            Frame::KeepAlive,
            Frame::NotePreferred(true),
            Frame::PeerGone(&k),
            Frame::Ping(*b"12345678"),
            Frame::Pong(*b"87654321"),
            Frame::Health(b"bad"),
            Frame::Restarting {
                reconnect_in_ms: 1,
                try_for_ms: 2,
            },
        ];
        for f in &frames {
            let v = to_vec(f);
            for cut in 0..v.len() {
                assert_eq!(decode(&v[..cut]), Ok(None), "{f:?} cut at {cut}");
            }
            let (g, n) = decode(&v).unwrap().unwrap();
            assert_eq!((&g, n), (f, v.len()));
        }
    }

    #[test]
    fn limits_from_the_header() {
        let mut v = vec![SEND_PACKET];
        v.extend_from_slice(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
        assert_eq!(
            decode(&v),
            Err(FrameError::TooLarge(MAX_FRAME_LEN as u32 + 1))
        );
        assert!(header(&[SEND_PACKET, 0, 1, 0, 32]).is_ok());
    }

    #[test]
    fn malformed_payloads() {
        assert!(matches!(
            body(CLIENT_INFO, &[0u8; 200]),
            Err(FrameError::Malformed(2, "wrong magic"))
        ));
        assert!(body(SEND_PACKET, &[0u8; 31]).is_err());
        assert!(body(PING, &[0u8; 7]).is_err());
        assert!(body(NOTE_PREFERRED, &[2]).is_err());
        assert!(body(KEEP_ALIVE, &[0]).is_err());
        assert_eq!(body(99, &[]), Err(FrameError::UnknownType(99)));
        let mut ci = MAGIC.to_vec();
        ci.extend_from_slice(&[0u8; 96 + MAX_CLIENT_INFO_MSG + 1]);
        assert!(body(CLIENT_INFO, &ci).is_err());
    }
}
