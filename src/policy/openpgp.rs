//! ASCII armor and OpenPGP packet-header walk (spec §7.2).
//!
//! We never decrypt and never parse packet bodies: we only check that the
//! payload is shaped like an encrypted message, i.e. zero or more PKESK (tag 1)
//! / SKESK (tag 3) packets followed by exactly one SEIPD (tag 18) packet that
//! ends the data. Packet headers follow RFC 4880 §4.2 (old and new format,
//! partial body lengths).

/// Which filter variant applies (the armor `Version:` header rule differs, §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Submission by a local user (spec §5.2).
    Outgoing,
    /// From another server via port 25 or `/mxdeliv` (spec §6.2).
    Incoming,
}

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const END: &[u8] = b"-----END PGP MESSAGE-----";

/// RFC 4880 §5.1 Public-Key Encrypted Session Key packet.
const TAG_PKESK: u8 = 1;
/// RFC 4880 §5.3 Symmetric-Key Encrypted Session Key packet.
const TAG_SKESK: u8 = 3;
/// RFC 4880 §5.13 Symmetrically Encrypted Integrity Protected Data packet.
const TAG_SEIPD: u8 = 18;

/// How a packet body's length is given (RFC 4880 §4.2.2 / §4.2.1).
enum BodyLen {
    /// A definite length; the packet ends after this many octets.
    Definite(usize),
    /// A partial body length chunk (new format, 224..=254); another length follows.
    Partial(usize),
    /// Old-format length type 3: the packet extends to the end of the data.
    Indeterminate,
}

/// Reads one new-format length (RFC 4880 §4.2.2) at `data[*i..]`, advancing `*i`.
fn new_format_len(data: &[u8], i: &mut usize) -> Option<BodyLen> {
    let b0 = *data.get(*i)?;
    match b0 {
        0..=191 => {
            *i += 1;
            Some(BodyLen::Definite(usize::from(b0)))
        }
        192..=223 => {
            let b1 = *data.get(*i + 1)?;
            *i += 2;
            Some(BodyLen::Definite(
                ((usize::from(b0) - 192) << 8) + usize::from(b1) + 192,
            ))
        }
        224..=254 => {
            *i += 1;
            Some(BodyLen::Partial(1usize << (b0 & 0x1F)))
        }
        255 => {
            let b = data.get(*i + 1..*i + 5)?;
            *i += 5;
            let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            Some(BodyLen::Definite(usize::try_from(n).ok()?))
        }
    }
}

/// Reads an old-format length (RFC 4880 §4.2.1) of length type `lt`.
fn old_format_len(data: &[u8], i: &mut usize, lt: u8) -> Option<BodyLen> {
    let n = match lt {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => return Some(BodyLen::Indeterminate),
    };
    let b = data.get(*i..*i + n)?;
    *i += n;
    let len = b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    Some(BodyLen::Definite(usize::try_from(len).ok()?))
}

/// Advances `*i` past `n` body octets; `None` if that runs past the data.
fn skip(data: &[u8], i: &mut usize, n: usize) -> Option<()> {
    let end = i.checked_add(n)?;
    if end > data.len() {
        return None;
    }
    *i = end;
    Some(())
}

/// Walks one packet starting at `*i`; returns its tag and leaves `*i` after it.
/// `None` on a malformed or truncated header or body.
fn next_packet(data: &[u8], i: &mut usize) -> Option<u8> {
    let ctb = *data.get(*i)?;
    *i += 1;
    if ctb & 0x80 == 0 {
        return None; // bit 7 must always be set (RFC 4880 §4.2)
    }
    if ctb & 0x40 != 0 {
        // New format: tag in bits 5..0, possibly a chain of partial lengths.
        loop {
            match new_format_len(data, i)? {
                BodyLen::Definite(n) => {
                    skip(data, i, n)?;
                    return Some(ctb & 0x3F);
                }
                BodyLen::Partial(n) => skip(data, i, n)?,
                BodyLen::Indeterminate => return None,
            }
        }
    } else {
        // Old format: tag in bits 5..2, length type in bits 1..0.
        match old_format_len(data, i, ctb & 0x03)? {
            BodyLen::Definite(n) => skip(data, i, n)?,
            BodyLen::Indeterminate => *i = data.len(),
            BodyLen::Partial(_) => return None,
        }
        Some((ctb >> 2) & 0x0F)
    }
}

/// True if `binary` is zero or more PKESK/SKESK packets followed by exactly one
/// SEIPD packet that ends exactly at the end of the data (spec §7.2).
/// Anything else — literal data, compression, signatures, marker, AEAD (tag 20),
/// truncation, trailing bytes — is not an encrypted message.
pub fn openpgp_packets_ok(binary: &[u8]) -> bool {
    let mut i = 0;
    while i < binary.len() {
        let Some(tag) = next_packet(binary, &mut i) else {
            return false;
        };
        if i == binary.len() {
            return tag == TAG_SEIPD;
        }
        if tag != TAG_PKESK && tag != TAG_SKESK {
            return false;
        }
    }
    false // empty data
}

/// Splits on LF, dropping one trailing CR per line (tolerates bare-LF bodies).
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// True for an armor checksum line: `=` and four base64 characters (RFC 4880 §6.2).
fn is_crc_line(line: &[u8]) -> bool {
    line.len() == 5
        && line[0] == b'='
        && line[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// The armor rules of spec §7.2, then base64 decoding, then [`openpgp_packets_ok`].
///
/// `body` is the transfer-decoded body of PGP/MIME part 2. The first line must be
/// `-----BEGIN PGP MESSAGE-----`, the last non-empty line `-----END PGP MESSAGE-----`.
/// A `Version: ` armor header is refused on outgoing mail (Delta Chat never writes
/// one) and skipped on incoming mail. No other armor header is understood; such a
/// line then fails base64 decoding, as upstream.
pub fn armor_ok(body: &[u8], dir: Direction) -> bool {
    let mut all: Vec<&[u8]> = lines(body).collect();
    // Trailing empty lines (trailing CRLFs) are ignored.
    while all.last().is_some_and(|l| l.is_empty()) {
        all.pop();
    }
    let [first, inner @ .., last] = all.as_slice() else {
        return false;
    };
    if *first != BEGIN || *last != END {
        return false;
    }
    let mut inner = inner;
    if let [hdr, rest @ ..] = inner {
        if hdr.starts_with(b"Version: ") {
            if dir == Direction::Outgoing {
                return false;
            }
            inner = rest;
        }
    }
    // Leading empty lines (the blank line after the armor headers) are skipped.
    while let [l, rest @ ..] = inner {
        if !l.is_empty() {
            break;
        }
        inner = rest;
    }
    // Cut the CRC24 line and anything after it.
    if let Some(pos) = inner.iter().rposition(|l| is_crc_line(l)) {
        inner = &inner[..pos];
    }
    let mut b64 = Vec::with_capacity(body.len());
    for l in inner {
        b64.extend_from_slice(l);
    }
    match STANDARD.decode(&b64) {
        Ok(binary) => openpgp_packets_ok(&binary),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_hdr(tag: u8, n: usize) -> Vec<u8> {
        let mut v = vec![0xC0 | tag];
        if n < 192 {
            v.push(n as u8);
        } else if n < 8384 {
            let m = n - 192;
            v.push((m >> 8) as u8 + 192);
            v.push((m & 0xFF) as u8);
        } else {
            v.push(255);
            v.extend_from_slice(&(n as u32).to_be_bytes());
        }
        v
    }

    fn pkt(tag: u8, n: usize) -> Vec<u8> {
        let mut v = new_hdr(tag, n);
        v.extend(std::iter::repeat_n(0xAB, n));
        v
    }

    #[test]
    fn minimal_shapes() {
        assert!(openpgp_packets_ok(&pkt(18, 0)));
        assert!(openpgp_packets_ok(&[pkt(1, 10), pkt(18, 5)].concat()));
        assert!(openpgp_packets_ok(
            &[pkt(3, 10), pkt(1, 3), pkt(18, 5)].concat()
        ));
        assert!(!openpgp_packets_ok(&[]));
        assert!(!openpgp_packets_ok(&pkt(1, 10)));
        assert!(!openpgp_packets_ok(&[pkt(18, 3), pkt(18, 3)].concat()));
        assert!(!openpgp_packets_ok(&[pkt(10, 3), pkt(18, 3)].concat())); // marker
        assert!(!openpgp_packets_ok(&[pkt(1, 3), pkt(20, 3)].concat())); // AEAD
        assert!(!openpgp_packets_ok(&pkt(11, 3))); // literal
        assert!(!openpgp_packets_ok(&[pkt(18, 3), vec![0]].concat()));
    }

    #[test]
    fn length_boundaries() {
        for n in [0, 1, 191, 192, 193, 8383, 8384, 70000] {
            let p = [pkt(1, 2), pkt(18, n)].concat();
            assert!(openpgp_packets_ok(&p), "len {n}");
            assert!(!openpgp_packets_ok(&p[..p.len() - 1]), "truncated {n}");
        }
        // Two-octet length: ((b0-192)<<8)+b1+192.
        assert_eq!(new_hdr(18, 192), vec![0xD2, 192, 0]);
        assert_eq!(new_hdr(18, 8383), vec![0xD2, 223, 255]);
        // Five-octet length may also encode small lengths.
        let mut p = vec![0xD2, 255, 0, 0, 0, 3];
        p.extend_from_slice(b"abc");
        assert!(openpgp_packets_ok(&p));
        // Five-octet length larger than the data.
        assert!(!openpgp_packets_ok(&[0xD2, 255, 0xFF, 0xFF, 0xFF, 0xFF, 1]));
    }

    #[test]
    fn truncated_headers() {
        assert!(!openpgp_packets_ok(&[0xD2])); // no length octet
        assert!(!openpgp_packets_ok(&[0xD2, 200])); // two-octet length cut
        assert!(!openpgp_packets_ok(&[0xD2, 255, 0, 0])); // five-octet length cut
        assert!(!openpgp_packets_ok(&[0x85, 0])); // old two-octet length cut
        assert!(!openpgp_packets_ok(&[0x86, 0, 0, 0])); // old four-octet length cut
        assert!(!openpgp_packets_ok(&[0x00, 0])); // bit 7 clear
        assert!(!openpgp_packets_ok(&[0x7F, 0]));
    }

    #[test]
    fn partial_lengths() {
        // 0xE1 = partial chunk of 2 octets, 0xE0 = 1 octet, then a final 1-octet length.
        let mut p = vec![0xD2, 0xE1, 1, 2, 0xE0, 3, 2, 4, 5];
        assert!(openpgp_packets_ok(&p));
        p.pop();
        assert!(!openpgp_packets_ok(&p)); // final chunk truncated
        assert!(!openpgp_packets_ok(&[0xD2, 0xE1, 1, 2])); // chain never terminated
        assert!(!openpgp_packets_ok(&[0xD2, 0xE1, 1])); // chunk truncated
                                                        // Largest partial chunk (2^30) must not overflow or allocate.
        assert!(!openpgp_packets_ok(&[0xD2, 0xFE, 0, 0]));
        // PKESK with partial lengths followed by SEIPD.
        assert!(openpgp_packets_ok(&[0xC1, 0xE0, 9, 1, 7, 0xD2, 0]));
    }

    #[test]
    fn old_format_headers() {
        // Old-format PKESK with 1-, 2- and 4-octet lengths, then new-format SEIPD.
        for hdr in [vec![0x84, 2], vec![0x85, 0, 2], vec![0x86, 0, 0, 0, 2]] {
            let p = [hdr, vec![9, 9], pkt(18, 4)].concat();
            assert!(openpgp_packets_ok(&p));
        }
        // Old-format SKESK (tag 3 -> 0x8C).
        assert!(openpgp_packets_ok(&[0x8C, 1, 0, 0xD2, 0]));
        // Indeterminate length runs to the end; tags < 16 can't be SEIPD.
        assert!(!openpgp_packets_ok(&[0x87, 1, 2, 3]));
        assert!(!openpgp_packets_ok(&[0x84, 1, 0, 0xA3, 1, 2]));
        // Old-format literal packet.
        assert!(!openpgp_packets_ok(&[0xAC, 1, 0]));
    }

    fn armored(binary: &[u8], headers: &str) -> String {
        let b64 = STANDARD.encode(binary);
        let mut s = format!("-----BEGIN PGP MESSAGE-----\r\n{headers}\r\n");
        for chunk in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            s.push_str("\r\n");
        }
        s.push_str("=abcd\r\n-----END PGP MESSAGE-----\r\n\r\n");
        s
    }

    #[test]
    fn armor_rules() {
        let bin = [pkt(1, 100), pkt(18, 300)].concat();
        let ok = armored(&bin, "");
        assert!(armor_ok(ok.as_bytes(), Direction::Outgoing));
        assert!(armor_ok(ok.as_bytes(), Direction::Incoming));
        assert!(armor_ok(
            ok.replace("\r\n", "\n").as_bytes(),
            Direction::Outgoing
        ));
        let ver = armored(&bin, "Version: GnuPG v2\r\n");
        assert!(!armor_ok(ver.as_bytes(), Direction::Outgoing));
        assert!(armor_ok(ver.as_bytes(), Direction::Incoming));
        let comment = armored(&bin, "Comment: hello\r\n");
        assert!(!armor_ok(comment.as_bytes(), Direction::Incoming));
        // Without a CRC line.
        let no_crc = ok.replace("=abcd\r\n", "");
        assert!(armor_ok(no_crc.as_bytes(), Direction::Outgoing));
        assert!(!armor_ok(&ok.as_bytes()[1..], Direction::Outgoing));
        assert!(!armor_ok(
            ok.replace("-----END PGP MESSAGE-----", "").as_bytes(),
            Direction::Outgoing
        ));
        assert!(!armor_ok(
            ok.replace("MESSAGE", "SIGNATURE").as_bytes(),
            Direction::Outgoing
        ));
        assert!(!armor_ok(format!("x{ok}").as_bytes(), Direction::Outgoing));
        assert!(!armor_ok(
            format!("{ok}trailer\r\n").as_bytes(),
            Direction::Outgoing
        ));
        assert!(!armor_ok(b"", Direction::Incoming));
        assert!(!armor_ok(
            b"-----BEGIN PGP MESSAGE-----",
            Direction::Incoming
        ));
        assert!(!armor_ok(
            b"-----BEGIN PGP MESSAGE-----\r\n-----END PGP MESSAGE-----",
            Direction::Incoming
        ));
        let bad_b64 = ok.replacen("\r\n\r\n", "\r\n\r\n!!!!", 1);
        assert!(!armor_ok(bad_b64.as_bytes(), Direction::Incoming));
        let literal = armored(&pkt(11, 30), "");
        assert!(!armor_ok(literal.as_bytes(), Direction::Incoming));
    }
}
