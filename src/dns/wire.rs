//! DNS message encoding and decoding (RFC 1035, EDNS0 OPT of RFC 6891), no I/O.
//!
//! Names are kept in a canonical presentation form: ASCII lower-cased, no
//! trailing dot, the root is the empty string, and any byte outside
//! `0x21..=0x7e` as well as `.` and `\` inside a label is written as `\DDD`.
//! [`canonical_name`] produces the same form from user input, so names from
//! the wire and names we asked for compare with `==`.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u16 = 0;
pub const RCODE_FORMERR: u16 = 1;
pub const RCODE_SERVFAIL: u16 = 2;
pub const RCODE_NXDOMAIN: u16 = 3;
pub const RCODE_NOTIMP: u16 = 4;
pub const RCODE_REFUSED: u16 = 5;

/// UDP payload size we advertise in EDNS0 (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

const MAX_NAME_WIRE: usize = 255;
const MAX_POINTER_HOPS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    /// Full response code: the 4 header bits plus the EDNS0 extended bits.
    pub rcode: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Mx {
        preference: u16,
        exchange: String,
    },
    /// The character-strings of one TXT record, in order.
    Txt(Vec<Vec<u8>>),
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    /// EDNS0 pseudo-record; the record's `class` holds the UDP payload size.
    Opt(Vec<u8>),
    Other(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

/// Validate and canonicalise a domain name given by a user or config:
/// lower-case, one trailing dot removed, labels 1..=63 bytes of printable
/// ASCII other than `\`, at most 255 bytes on the wire.
pub fn canonical_name(name: &str) -> Result<String, String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() {
        return Ok(String::new());
    }
    let mut wire = 1;
    for label in n.split('.') {
        if label.is_empty() {
            return Err(format!("empty label in {name:?}"));
        }
        if label.len() > 63 {
            return Err(format!("label longer than 63 bytes in {name:?}"));
        }
        if !label
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
        {
            return Err(format!("invalid character in {name:?}"));
        }
        wire += label.len() + 1;
    }
    if wire > MAX_NAME_WIRE {
        return Err(format!("name longer than 255 bytes: {name:?}"));
    }
    Ok(n.to_ascii_lowercase())
}

fn put_name(out: &mut Vec<u8>, canonical: &str) {
    if !canonical.is_empty() {
        for label in canonical.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
}

/// A recursive query (RD=1) for `name`/`qtype` class IN with an EDNS0 OPT
/// record advertising [`EDNS_PAYLOAD`].
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let name = canonical_name(name)?;
    let mut out = Vec::with_capacity(name.len() + 2 + 16 + 11);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // ANCOUNT
    out.extend_from_slice(&0u16.to_be_bytes()); // NSCOUNT
    out.extend_from_slice(&1u16.to_be_bytes()); // ARCOUNT (OPT)
    put_name(&mut out, &name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root name, type 41, class = payload size, TTL = ext-rcode/version/flags, no options.
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    Ok(out)
}

/// Just the header, for deciding about a packet before parsing it fully.
pub fn parse_header(msg: &[u8]) -> Option<Header> {
    let h = msg.get(..12)?;
    let flags = u16::from_be_bytes([h[2], h[3]]);
    Some(Header {
        id: u16::from_be_bytes([h[0], h[1]]),
        qr: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        rcode: flags & 0xf,
    })
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self
            .msg
            .get(self.pos..end)
            .ok_or_else(|| format!("message truncated at offset {}", self.pos))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn name(&mut self) -> Result<String, String> {
        let (name, end) = read_name(self.msg, self.pos)?;
        self.pos = end;
        Ok(name)
    }
}

fn push_label(out: &mut String, label: &[u8]) {
    if !out.is_empty() {
        out.push('.');
    }
    for &b in label {
        if (0x21..=0x7e).contains(&b) && b != b'.' && b != b'\\' {
            out.push(b.to_ascii_lowercase() as char);
        } else {
            out.push_str(&format!("\\{b:03}"));
        }
    }
}

/// Read a possibly compressed name starting at `pos`; returns the canonical
/// name and the offset just after it in the original position.
pub fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut end = None;
    let mut hops = 0;
    let mut wire = 0usize;
    loop {
        let len = *msg.get(pos).ok_or("name runs past the end")? as usize;
        match len & 0xc0 {
            0x00 => {
                wire += len + 1;
                if wire > MAX_NAME_WIRE {
                    return Err("name longer than 255 bytes".into());
                }
                if len == 0 {
                    pos += 1;
                    break;
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or("label runs past the end")?;
                push_label(&mut out, label);
                pos += 1 + len;
            }
            0xc0 => {
                let lo = *msg.get(pos + 1).ok_or("pointer runs past the end")? as usize;
                let target = ((len & 0x3f) << 8) | lo;
                if target >= pos {
                    return Err("forward compression pointer".into());
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err("compression pointer loop".into());
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(format!("unsupported label type {len:#x}")),
        }
    }
    Ok((out, end.unwrap_or(pos)))
}

fn read_record(r: &mut Reader<'_>) -> Result<Record, String> {
    let name = r.name()?;
    let rtype = r.u16()?;
    let class = r.u16()?;
    let ttl = r.u32()?;
    let rdlen = r.u16()? as usize;
    let start = r.pos;
    let rdata = r.bytes(rdlen)?;
    let end = r.pos;
    // Names inside RDATA may point anywhere before them in the message, so
    // parse them with a reader over the whole message, then check the bounds.
    let mut rr = Reader {
        msg: &r.msg[..end],
        pos: start,
    };
    let data = match rtype {
        TYPE_A => RData::A(Ipv4Addr::from(
            <[u8; 4]>::try_from(rdata).map_err(|_| "A record not 4 bytes")?,
        )),
        TYPE_AAAA => RData::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).map_err(|_| "AAAA record not 16 bytes")?,
        )),
        TYPE_CNAME => RData::Cname(rr.name()?),
        TYPE_MX => {
            let preference = rr.u16()?;
            let exchange = rr.name()?;
            RData::Mx {
                preference,
                exchange,
            }
        }
        TYPE_TXT => {
            let mut strings = Vec::new();
            while rr.pos < end {
                let n = rr.u8()? as usize;
                strings.push(rr.bytes(n)?.to_vec());
            }
            RData::Txt(strings)
        }
        TYPE_SOA => RData::Soa {
            mname: rr.name()?,
            rname: rr.name()?,
            serial: rr.u32()?,
            refresh: rr.u32()?,
            retry: rr.u32()?,
            expire: rr.u32()?,
            minimum: rr.u32()?,
        },
        TYPE_OPT => RData::Opt(rdata.to_vec()),
        _ => RData::Other(rdata.to_vec()),
    };
    let known = matches!(rtype, TYPE_CNAME | TYPE_MX | TYPE_TXT | TYPE_SOA);
    if known && rr.pos != end {
        return Err(format!("type {rtype} RDATA length mismatch"));
    }
    Ok(Record {
        name,
        rtype,
        class,
        ttl,
        data,
    })
}

/// Parse a complete DNS message. Never panics; any inconsistency is an `Err`.
pub fn parse_message(msg: &[u8]) -> Result<Message, String> {
    let mut header = parse_header(msg).ok_or("message shorter than the header")?;
    let mut r = Reader { msg, pos: 12 };
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]) as usize;
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
    let mut questions = Vec::with_capacity(qd.min(4));
    for _ in 0..qd {
        questions.push(Question {
            name: r.name()?,
            qtype: r.u16()?,
            qclass: r.u16()?,
        });
    }
    let mut section = |n: usize| -> Result<Vec<Record>, String> {
        // Each record takes at least 11 bytes; don't pre-allocate for lies.
        let mut v = Vec::with_capacity(n.min((msg.len() - r.pos.min(msg.len())) / 11));
        for _ in 0..n {
            v.push(read_record(&mut r)?);
        }
        Ok(v)
    };
    let answers = section(an)?;
    let authority = section(ns)?;
    let additional = section(ar)?;
    let opts: Vec<&Record> = additional.iter().filter(|r| r.rtype == TYPE_OPT).collect();
    match opts.as_slice() {
        [] => {}
        [opt] => {
            if !opt.name.is_empty() {
                return Err("OPT record with a non-root name".into());
            }
            header.rcode |= ((opt.ttl >> 24) as u16) << 4;
        }
        _ => return Err("more than one OPT record".into()),
    }
    Ok(Message {
        header,
        questions,
        answers,
        authority,
        additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("Example.ORG.").unwrap(), "example.org");
        assert_eq!(canonical_name(".").unwrap(), "");
        assert_eq!(canonical_name("").unwrap(), "");
        assert!(canonical_name("a..b").is_err());
        assert!(canonical_name("a b.org").is_err());
        assert!(canonical_name("a\\b.org").is_err());
        assert!(canonical_name("[1.2.3.4]").is_ok()); // printable, caller checks literals
        assert!(canonical_name(&"a".repeat(64)).is_err());
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(canonical_name(&long).is_err()); // 4*64+1 = 257 bytes
        let ok = vec!["a".repeat(62); 4].join(".");
        assert!(canonical_name(&ok).is_ok()); // 4*63+1 = 253
        assert!(canonical_name("ü.org").is_err());
    }

    #[test]
    fn query_layout() {
        let q = build_query(0xabcd, "Mail.Example.org", TYPE_MX).unwrap();
        let m = parse_message(&q).unwrap();
        assert_eq!(m.header.id, 0xabcd);
        assert!(m.header.rd && !m.header.qr);
        assert_eq!(
            m.questions,
            vec![Question {
                name: "mail.example.org".into(),
                qtype: TYPE_MX,
                qclass: CLASS_IN
            }]
        );
        assert_eq!(m.additional.len(), 1);
        assert_eq!(m.additional[0].rtype, TYPE_OPT);
        assert_eq!(m.additional[0].class, EDNS_PAYLOAD);
        assert!(build_query(1, "bad..name", TYPE_A).is_err());
    }

    fn header(an: u8) -> Vec<u8> {
        let mut m: Vec<u8> = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, an, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x03org\x00\x00\x0f\x00\x01");
        m
    }

    #[test]
    fn compressed_mx_answer() {
        let mut m = header(1);
        // name = pointer to 12, MX pref 10, exchange "mx" + pointer to 12.
        m.extend_from_slice(&[0xc0, 12, 0, 15, 0, 1, 0, 0, 1, 0, 0, 7, 0, 10]);
        m.extend_from_slice(&[2, b'M', b'X', 0xc0, 12]);
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.answers[0].name, "example.org");
        assert_eq!(msg.answers[0].ttl, 256);
        assert_eq!(
            msg.answers[0].data,
            RData::Mx {
                preference: 10,
                exchange: "mx.example.org".into()
            }
        );
    }

    #[test]
    fn pointer_loops_and_forward_pointers_fail() {
        let mut m = header(1);
        let at = m.len();
        m.extend_from_slice(&[0xc0, at as u8]); // points at itself
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        assert!(parse_message(&m).unwrap_err().contains("pointer"));
        let mut m = header(1);
        m.extend_from_slice(&[0xc0, 0xff]);
        assert!(parse_message(&m).is_err());
        // label + pointer back to the label start: grows until the 255 limit.
        let mut m = header(1);
        let at = m.len();
        m.extend_from_slice(&[1, b'a', 0xc0, at as u8]);
        assert!(parse_message(&m).is_err());
    }

    #[test]
    fn escaped_labels_and_rdata_checks() {
        let mut m = header(2);
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6]);
        m.extend_from_slice(&[4, b'a', b'.', b' ', 0xff, 0]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3]);
        assert!(parse_message(&m).unwrap_err().contains("A record"));
        m.truncate(m.len() - 15);
        let mut m2 = m.clone();
        m2[7] = 1;
        let msg = parse_message(&m2).unwrap();
        assert_eq!(msg.answers[0].data, RData::Cname("a\\046\\032\\255".into()));
    }

    #[test]
    fn extended_rcode_and_txt() {
        let mut m = header(1);
        m[11] = 1; // ARCOUNT
        m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 7]);
        m.extend_from_slice(&[2, b'h', b'i', 0, 2, b'y', b'o']);
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 1, 0, 0, 0, 0, 0]);
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.header.rcode, 16); // BADVERS via OPT
        assert_eq!(
            msg.answers[0].data,
            RData::Txt(vec![b"hi".to_vec(), vec![], b"yo".to_vec()])
        );
    }

    #[test]
    fn every_truncation_of_a_valid_message_fails_cleanly() {
        let mut m = header(1);
        m.extend_from_slice(&[0xc0, 12, 0, 15, 0, 1, 0, 0, 1, 0, 0, 7, 0, 10]);
        m.extend_from_slice(&[2, b'm', b'x', 0xc0, 12]);
        for n in 0..m.len() {
            assert!(parse_message(&m[..n]).is_err(), "prefix {n} parsed");
        }
        // Pseudo-random mutations: no panics.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            let mut c = m.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % c.len();
                c[i] = (x >> 8) as u8;
            }
            let _ = parse_message(&c);
        }
    }
}
