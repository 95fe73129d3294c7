//! STUN message codec without I/O (RFC 8489 §5, §14; RFC 8656 §12 for
//! ChannelData). Parsing never allocates per attribute: a [`Message`] is a
//! view over the datagram with the attribute offsets found in one linear
//! pass, bounded by [`MAX_ATTRS`].

use super::attr;

/// The magic cookie (RFC 8489 §5).
pub const MAGIC: u32 = 0x2112_A442;
/// The header is 20 bytes (RFC 8489 §5).
pub const HEADER: usize = 20;
/// At most this many attributes are read from one message; more is a 400.
pub const MAX_ATTRS: usize = 32;

/// Methods we implement (RFC 8489 §18.2, RFC 8656 §17).
pub const BINDING: u16 = 0x001;
pub const ALLOCATE: u16 = 0x003;
pub const REFRESH: u16 = 0x004;
pub const SEND: u16 = 0x006;
pub const DATA: u16 = 0x007;
pub const CREATE_PERMISSION: u16 = 0x008;
pub const CHANNEL_BIND: u16 = 0x009;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// Message type = method and class interleaved (RFC 8489 §5, figure 3).
pub fn encode_type(method: u16, class: Class) -> u16 {
    let c: u16 = match class {
        Class::Request => 0,
        Class::Indication => 1,
        Class::Success => 2,
        Class::Error => 3,
    };
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 1) << 4)
        | ((c & 2) << 7)
}

pub fn decode_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (method, class)
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than 20 bytes, a length that disagrees with the datagram, a
    /// length not a multiple of 4, or a truncated attribute.
    Truncated,
    /// The first two bits are not zero or the cookie is wrong: not STUN.
    NotStun,
    /// More than [`MAX_ATTRS`] attributes.
    TooManyAttributes,
}

/// A parsed STUN message: a view over the bytes.
#[derive(Debug)]
pub struct Message<'a> {
    pub raw: &'a [u8],
    pub method: u16,
    pub class: Class,
    pub tid: [u8; 12],
    /// (type, value offset, value length) in wire order.
    attrs: [(u16, u16, u16); MAX_ATTRS],
    n_attrs: usize,
}

impl<'a> Message<'a> {
    /// Parse one datagram (RFC 8489 §5, §14: attributes are TLV, padded to 4).
    pub fn parse(raw: &'a [u8]) -> Result<Message<'a>, ParseError> {
        if raw.len() < HEADER {
            return Err(ParseError::Truncated);
        }
        if raw[0] & 0xC0 != 0 || u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) != MAGIC {
            return Err(ParseError::NotStun);
        }
        let t = u16::from_be_bytes([raw[0], raw[1]]);
        let len = u16::from_be_bytes([raw[2], raw[3]]) as usize;
        if !len.is_multiple_of(4) || HEADER + len != raw.len() {
            return Err(ParseError::Truncated);
        }
        let (method, class) = decode_type(t);
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&raw[8..20]);
        let mut m = Message {
            raw,
            method,
            class,
            tid,
            attrs: [(0, 0, 0); MAX_ATTRS],
            n_attrs: 0,
        };
        let mut off = HEADER;
        while off < raw.len() {
            if off + 4 > raw.len() {
                return Err(ParseError::Truncated);
            }
            let at = u16::from_be_bytes([raw[off], raw[off + 1]]);
            let al = u16::from_be_bytes([raw[off + 2], raw[off + 3]]) as usize;
            let v = off + 4;
            if v + al > raw.len() {
                return Err(ParseError::Truncated);
            }
            if m.n_attrs == MAX_ATTRS {
                return Err(ParseError::TooManyAttributes);
            }
            m.attrs[m.n_attrs] = (at, v as u16, al as u16);
            m.n_attrs += 1;
            off = v + al.div_ceil(4) * 4;
        }
        if off != raw.len() {
            return Err(ParseError::Truncated);
        }
        Ok(m)
    }

    /// The attributes in wire order: (type, value).
    pub fn attrs(&self) -> impl Iterator<Item = (u16, &'a [u8])> + '_ {
        self.attrs[..self.n_attrs]
            .iter()
            .map(|&(t, o, l)| (t, &self.raw[o as usize..o as usize + l as usize]))
    }

    /// The first attribute of a type (RFC 8489 §14: later duplicates are ignored).
    pub fn get(&self, t: u16) -> Option<&'a [u8]> {
        self.attrs().find(|(x, _)| *x == t).map(|(_, v)| v)
    }

    /// Index of the first attribute of a type.
    fn index(&self, t: u16) -> Option<usize> {
        self.attrs[..self.n_attrs].iter().position(|a| a.0 == t)
    }

    /// Comprehension-required attributes (type < 0x8000) we do not know
    /// (RFC 8489 §14: answered with 420 and UNKNOWN-ATTRIBUTES).
    pub fn unknown_required(&self) -> Vec<u16> {
        let mut v: Vec<u16> = Vec::new();
        for (t, _) in self.attrs() {
            if t < 0x8000 && !attr::KNOWN_REQUIRED.contains(&t) && !v.contains(&t) {
                v.push(t);
            }
        }
        v
    }

    /// Is FINGERPRINT present, last, and right (RFC 8489 §14.7)?
    /// `None` when absent.
    pub fn fingerprint_ok(&self) -> Option<bool> {
        let i = self.index(attr::FINGERPRINT)?;
        if i + 1 != self.n_attrs {
            return Some(false);
        }
        let (_, o, l) = self.attrs[i];
        if l != 4 {
            return Some(false);
        }
        let o = o as usize;
        let got = u32::from_be_bytes([
            self.raw[o],
            self.raw[o + 1],
            self.raw[o + 2],
            self.raw[o + 3],
        ]);
        Some(got == fingerprint(&self.raw[..o - 4]))
    }

    /// Check MESSAGE-INTEGRITY with `key` (RFC 8489 §14.5): HMAC-SHA1 over
    /// the message up to the attribute, with the header length covering it.
    /// `None` when absent; only FINGERPRINT may follow it.
    pub fn integrity_ok(&self, key: &[u8]) -> Option<bool> {
        let i = self.index(attr::MESSAGE_INTEGRITY)?;
        let (_, o, l) = self.attrs[i];
        if l != 20 {
            return Some(false);
        }
        if self.attrs[i + 1..self.n_attrs]
            .iter()
            .any(|a| a.0 != attr::FINGERPRINT)
        {
            return Some(false);
        }
        let o = o as usize;
        let tag = integrity(key, &self.raw[..o - 4], (o + 20 - HEADER) as u16);
        Some(ct_eq(&tag, &self.raw[o..o + 20]))
    }
}

/// Equality without an early exit (MAC comparison).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// CRC-32 of the message so far XOR 0x5354554e (RFC 8489 §14.7).
pub fn fingerprint(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    // The length field must already count the FINGERPRINT attribute.
    h.update(bytes);
    h.finalize() ^ 0x5354_554E
}

/// HMAC-SHA1 over `bytes` with the header length field set to `len`.
fn integrity(key: &[u8], bytes: &[u8], len: u16) -> [u8; 20] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(&bytes[..2]);
    ctx.update(&len.to_be_bytes());
    ctx.update(&bytes[4..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Builds one message; the header length is kept right after every attribute.
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    pub fn new(method: u16, class: Class, tid: &[u8; 12]) -> Builder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&encode_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC.to_be_bytes());
        buf.extend_from_slice(tid);
        Builder { buf }
    }

    fn set_len(&mut self, extra: usize) {
        let len = (self.buf.len() - HEADER + extra) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn attr(&mut self, t: u16, v: &[u8]) -> &mut Builder {
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf.extend_from_slice(&(v.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(v);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self.set_len(0);
        self
    }

    pub fn u32(&mut self, t: u16, v: u32) -> &mut Builder {
        self.attr(t, &v.to_be_bytes())
    }

    /// ERROR-CODE (RFC 8489 §14.8).
    pub fn error(&mut self, code: u16, reason: &str) -> &mut Builder {
        let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        v.extend_from_slice(reason.as_bytes());
        self.attr(attr::ERROR_CODE, &v)
    }

    /// An XOR-*-ADDRESS attribute (RFC 8489 §14.2).
    pub fn xor_addr(&mut self, t: u16, a: std::net::SocketAddr) -> &mut Builder {
        let v = attr::encode_xor_addr(a, &self.tid());
        self.attr(t, &v)
    }

    fn tid(&self) -> [u8; 12] {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.buf[8..20]);
        t
    }

    /// MESSAGE-INTEGRITY (RFC 8489 §14.5).
    pub fn integrity(&mut self, key: &[u8]) -> &mut Builder {
        let tag = integrity(key, &self.buf, (self.buf.len() + 24 - HEADER) as u16);
        self.attr(attr::MESSAGE_INTEGRITY, &tag)
    }

    /// FINGERPRINT, last (RFC 8489 §14.7).
    pub fn fingerprint(mut self) -> Vec<u8> {
        self.set_len(8);
        let f = fingerprint(&self.buf);
        self.u32(attr::FINGERPRINT, f);
        self.buf
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// A ChannelData message (RFC 8656 §12.4): channel, length, data; over UDP
/// the padding is optional, so a datagram longer than 4 + length is fine.
pub fn parse_channel_data(raw: &[u8]) -> Option<(u16, &[u8])> {
    if raw.len() < 4 {
        return None;
    }
    let ch = u16::from_be_bytes([raw[0], raw[1]]);
    let len = u16::from_be_bytes([raw[2], raw[3]]) as usize;
    if !(0x4000..=0x7FFF).contains(&ch) || raw.len() < 4 + len {
        return None;
    }
    Some((ch, &raw[4..4 + len]))
}

pub fn channel_data(ch: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + data.len() + 3);
    v.extend_from_slice(&ch.to_be_bytes());
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_roundtrip() {
        // RFC 8489 §5: Binding request 0x0001, success 0x0101, error 0x0111.
        assert_eq!(encode_type(BINDING, Class::Request), 0x0001);
        assert_eq!(encode_type(BINDING, Class::Success), 0x0101);
        assert_eq!(encode_type(BINDING, Class::Error), 0x0111);
        assert_eq!(encode_type(SEND, Class::Indication), 0x0016);
        assert_eq!(encode_type(DATA, Class::Indication), 0x0017);
        for m in 0..0x1000u16 {
            for c in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                assert_eq!(decode_type(encode_type(m, c)), (m, c));
            }
        }
    }

    #[test]
    fn rfc5769_request_vector() {
        // RFC 5769 §2.1: sample request with short-term integrity, key "VOkJxbRl1RmTxUk/WvJxBt".
        let hex = "000100582112a442b7e7a701bc34d686fa87dfae\
                   802200105354554e207465737420636c69656e74\
                   002400046e0001ff80290008932ff9b151263b36\
                   000600096576746a3a683676592020200008001\
                   49aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2\
                   80280004e57a3bcf";
        let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
        let raw: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.method, BINDING);
        assert_eq!(m.class, Class::Request);
        assert_eq!(m.get(attr::USERNAME), Some(&b"evtj:h6vY"[..]));
        assert_eq!(m.fingerprint_ok(), Some(true));
        assert_eq!(m.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBt"), Some(true));
        assert_eq!(m.integrity_ok(b"wrong"), Some(false));
    }

    #[test]
    fn builder_roundtrip_and_truncation() {
        let tid = [7u8; 12];
        let mut b = Builder::new(ALLOCATE, Class::Request, &tid);
        b.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .attr(attr::USERNAME, b"abc")
            .integrity(b"k");
        let raw = b.fingerprint();
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.integrity_ok(b"k"), Some(true));
        assert_eq!(m.fingerprint_ok(), Some(true));
        for n in 0..raw.len() {
            assert!(Message::parse(&raw[..n]).is_err(), "prefix {n}");
        }
        let mut bad = raw.clone();
        bad[4] ^= 1;
        assert_eq!(Message::parse(&bad).unwrap_err(), ParseError::NotStun);
    }
}
