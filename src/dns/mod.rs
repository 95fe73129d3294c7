//! A small async DNS stub resolver (spec §5.4 MX resolution, DKIM key TXT
//! lookups, A/AAAA for delivery).
//!
//! UDP first from a fresh socket on a random port with a random 16-bit id and
//! an EDNS0 payload of 1232 bytes; answers must come from the server's
//! address and echo our id and question, anything else is ignored until the
//! per-try timeout. TC=1 → the same question over TCP. Retries go round the
//! configured servers until the overall deadline. CNAME chains in answers are
//! followed (bounded). Results are cached by TTL in a bounded cache; NXDOMAIN
//! and NODATA are cached for the SOA minimum, at most 60 s.
//!
//! Single-threaded: [`Resolver`] is a cheap `Rc` handle, not `Send`.

pub mod wire;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_net::{TcpStream, UdpSocket};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use ring::rand::{SecureRandom, SystemRandom};

use wire::{Message, RData};

/// Per-try timeout used by [`Resolver::new`].
pub const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// Overall deadline of one lookup used by [`Resolver::new`].
pub const OVERALL_TIMEOUT: Duration = Duration::from_secs(6);
/// Cache capacity (entries) used by [`Resolver::new`].
pub const CACHE_ENTRIES: usize = 4096;
/// Longest CNAME chain we follow.
pub const MAX_CNAME_HOPS: usize = 8;
const MAX_NEGATIVE_TTL: u32 = 60;
const MAX_POSITIVE_TTL: u32 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxResult {
    /// Exchange host names (lower-case, no trailing dot), by ascending
    /// preference; equal preferences in random order (RFC 5321 §5.1).
    Hosts(Vec<(u16, String)>),
    /// RFC 7505 null MX: the domain accepts no mail.
    NullMx,
    /// No MX records (NOERROR/NODATA): deliver to the domain itself.
    Implicit(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    NxDomain,
    Timeout,
    /// SERVFAIL, REFUSED and other error rcodes, with the server's address.
    ServFail(String),
    /// An answer that doesn't parse, a CNAME loop, or an invalid name asked for.
    Malformed(String),
    Io(String),
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NxDomain => write!(f, "domain does not exist"),
            DnsError::Timeout => write!(f, "DNS timeout"),
            DnsError::ServFail(s) => write!(f, "DNS server failure: {s}"),
            DnsError::Malformed(s) => write!(f, "malformed DNS answer: {s}"),
            DnsError::Io(s) => write!(f, "DNS I/O error: {s}"),
        }
    }
}

impl std::error::Error for DnsError {}

/// Parse a DNS response (for fuzzing and tests); see [`wire::parse_message`].
pub fn parse_response(msg: &[u8]) -> Result<Message, DnsError> {
    wire::parse_message(msg).map_err(DnsError::Malformed)
}

/// `nameserver` lines of a resolv.conf text, port 53. IPv6 zone ids are
/// accepted when numeric; names like `%eth0` are skipped.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        let (ip, zone) = match addr.split_once('%') {
            Some((ip, zone)) => (ip, Some(zone)),
            None => (addr, None),
        };
        match (ip.parse::<IpAddr>(), zone) {
            (Ok(ip), None) => out.push(SocketAddr::new(ip, 53)),
            (Ok(IpAddr::V6(ip)), Some(zone)) => {
                if let Ok(scope) = zone.parse::<u32>() {
                    out.push(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope)));
                }
            }
            _ => {}
        }
    }
    out
}

#[derive(Clone)]
enum Cached {
    /// Records of the asked type at the end of the CNAME chain; empty = NODATA.
    Records(Vec<RData>),
    NxDomain,
}

struct Entry {
    expires: Instant,
    value: Cached,
}

struct Cache {
    map: HashMap<(String, u16), Entry>,
    cap: usize,
}

impl Cache {
    fn get(&mut self, key: &(String, u16), now: Instant) -> Option<Cached> {
        match self.map.get(key) {
            Some(e) if e.expires > now => Some(e.value.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: (String, u16), value: Cached, ttl: u32, now: Instant) {
        if ttl == 0 || self.cap == 0 {
            return;
        }
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.map.retain(|_, e| e.expires > now);
            if self.map.len() >= self.cap {
                // Drop the eighth that expires soonest.
                let mut exp: Vec<Instant> = self.map.values().map(|e| e.expires).collect();
                let k = (self.cap / 8).max(1).min(exp.len()) - 1;
                let (_, &mut cut, _) = exp.select_nth_unstable(k);
                self.map.retain(|_, e| e.expires > cut);
            }
        }
        let expires = now + Duration::from_secs(ttl.into());
        self.map.insert(key, Entry { expires, value });
    }
}

struct Inner {
    servers: Vec<SocketAddr>,
    try_timeout: Duration,
    overall: Duration,
    cache: RefCell<Cache>,
    rng: SystemRandom,
}

/// The stub resolver; clone it freely (an `Rc` handle sharing the cache).
#[derive(Clone)]
pub struct Resolver {
    inner: Rc<Inner>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("servers", &self.inner.servers)
            .finish_non_exhaustive()
    }
}

fn min_ttl(a: u32, b: u32) -> u32 {
    a.min(b)
}

/// Negative-caching TTL from the SOA in the authority section (RFC 2308):
/// min(SOA TTL, SOA minimum, 60 s); no SOA → not cached.
fn negative_ttl(msg: &Message) -> u32 {
    msg.authority
        .iter()
        .find_map(|r| match r.data {
            RData::Soa { minimum, .. } => Some(r.ttl.min(minimum)),
            _ => None,
        })
        .unwrap_or(0)
        .min(MAX_NEGATIVE_TTL)
}

async fn before<T>(deadline: Instant, f: impl Future<Output = T>) -> Result<T, DnsError> {
    futures_lite::future::or(async { Ok(f.await) }, async {
        Timer::at(deadline).await;
        Err(DnsError::Timeout)
    })
    .await
}

fn io(e: std::io::Error) -> DnsError {
    DnsError::Io(e.to_string())
}

fn rcode_name(rcode: u16) -> String {
    match rcode {
        wire::RCODE_FORMERR => "FORMERR".into(),
        wire::RCODE_SERVFAIL => "SERVFAIL".into(),
        wire::RCODE_NOTIMP => "NOTIMP".into(),
        wire::RCODE_REFUSED => "REFUSED".into(),
        n => format!("rcode {n}"),
    }
}

impl Resolver {
    /// Nameservers from `/etc/resolv.conf`; `127.0.0.1:53` if it lists none.
    pub fn from_resolv_conf() -> Resolver {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut servers = parse_resolv_conf(&text);
        if servers.is_empty() {
            servers.push(SocketAddr::from((Ipv4Addr::LOCALHOST, 53)));
        }
        Resolver::new(servers)
    }

    /// Explicit nameservers (e.g. the `dns_server` config key), tried in order.
    pub fn new(servers: Vec<SocketAddr>) -> Resolver {
        Resolver::with_timeouts(servers, TRY_TIMEOUT, OVERALL_TIMEOUT)
    }

    /// Like [`Resolver::new`] with other timeouts (tests use short ones).
    pub fn with_timeouts(
        servers: Vec<SocketAddr>,
        try_timeout: Duration,
        overall: Duration,
    ) -> Resolver {
        Resolver {
            inner: Rc::new(Inner {
                servers,
                try_timeout,
                overall,
                cache: RefCell::new(Cache {
                    map: HashMap::new(),
                    cap: CACHE_ENTRIES,
                }),
                rng: SystemRandom::new(),
            }),
        }
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.inner.servers
    }

    /// Forget everything cached.
    pub fn clear_cache(&self) {
        self.inner.cache.borrow_mut().map.clear();
    }

    /// Number of cache entries (including expired ones not yet evicted).
    pub fn cache_len(&self) -> usize {
        self.inner.cache.borrow().map.len()
    }

    /// MX lookup per spec §5.4.
    pub async fn mx(&self, domain: &str) -> Result<MxResult, DnsError> {
        let name = wire::canonical_name(domain).map_err(DnsError::Malformed)?;
        let records = self.lookup(&name, wire::TYPE_MX).await?;
        let mut hosts: Vec<(u16, String)> = records
            .into_iter()
            .filter_map(|r| match r {
                RData::Mx {
                    preference,
                    exchange,
                } => Some((preference, exchange)),
                _ => None,
            })
            .collect();
        if hosts.is_empty() {
            return Ok(MxResult::Implicit(name));
        }
        if hosts.iter().all(|(_, h)| h.is_empty()) {
            return Ok(MxResult::NullMx);
        }
        // A "." next to real exchanges is a misconfiguration; use the real ones.
        hosts.retain(|(_, h)| !h.is_empty());
        hosts.sort_by_key(|&(p, _)| p);
        self.shuffle_ties(&mut hosts);
        Ok(MxResult::Hosts(hosts))
    }

    /// TXT records, each record's character-strings concatenated (lossy UTF-8).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let name = wire::canonical_name(name).map_err(DnsError::Malformed)?;
        let records = self.lookup(&name, wire::TYPE_TXT).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::Txt(parts) => Some(String::from_utf8_lossy(&parts.concat()).into_owned()),
                _ => None,
            })
            .collect())
    }

    /// A records; NODATA → empty.
    pub async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let name = wire::canonical_name(name).map_err(DnsError::Malformed)?;
        let records = self.lookup(&name, wire::TYPE_A).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    /// AAAA records; NODATA → empty.
    pub async fn ipv6(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        let name = wire::canonical_name(name).map_err(DnsError::Malformed)?;
        let records = self.lookup(&name, wire::TYPE_AAAA).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::Aaaa(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    fn random_u16(&self) -> Result<u16, DnsError> {
        let mut b = [0u8; 2];
        self.inner
            .rng
            .fill(&mut b)
            .map_err(|_| DnsError::Io("no randomness".into()))?;
        Ok(u16::from_be_bytes(b))
    }

    fn shuffle_ties(&self, hosts: &mut [(u16, String)]) {
        let mut i = 0;
        while i < hosts.len() {
            let j = i + hosts[i..].iter().take_while(|h| h.0 == hosts[i].0).count();
            let group = &mut hosts[i..j];
            for k in (1..group.len()).rev() {
                let r = self.random_u16().unwrap_or(0) as usize % (k + 1);
                group.swap(k, r);
            }
            i = j;
        }
    }

    /// Records of `qtype` for canonical `name` after following CNAMEs;
    /// `Ok(vec![])` for NODATA.
    async fn lookup(&self, name: &str, qtype: u16) -> Result<Vec<RData>, DnsError> {
        let key = (name.to_string(), qtype);
        let cached = self.inner.cache.borrow_mut().get(&key, Instant::now());
        match cached {
            Some(Cached::Records(r)) => return Ok(r),
            Some(Cached::NxDomain) => return Err(DnsError::NxDomain),
            None => {}
        }
        let (value, ttl) = self.resolve_chain(name, qtype).await?;
        self.inner
            .cache
            .borrow_mut()
            .insert(key, value.clone(), ttl, Instant::now());
        match value {
            Cached::Records(r) => Ok(r),
            Cached::NxDomain => Err(DnsError::NxDomain),
        }
    }

    async fn resolve_chain(&self, name: &str, qtype: u16) -> Result<(Cached, u32), DnsError> {
        let mut current = name.to_string();
        let mut hops = 0;
        let mut ttl = MAX_POSITIVE_TTL;
        loop {
            let msg = self.query(&current, qtype).await?;
            let asked = current.clone();
            loop {
                let found: Vec<&wire::Record> = msg
                    .answers
                    .iter()
                    .filter(|r| r.name == current && r.rtype == qtype && r.class == wire::CLASS_IN)
                    .collect();
                if !found.is_empty() {
                    for r in &found {
                        ttl = min_ttl(ttl, r.ttl);
                    }
                    return Ok((
                        Cached::Records(found.into_iter().map(|r| r.data.clone()).collect()),
                        ttl,
                    ));
                }
                let cname = msg.answers.iter().find_map(|r| match &r.data {
                    RData::Cname(target) if r.name == current && r.class == wire::CLASS_IN => {
                        Some((target.clone(), r.ttl))
                    }
                    _ => None,
                });
                let Some((target, t)) = cname else { break };
                hops += 1;
                if hops > MAX_CNAME_HOPS {
                    return Err(DnsError::Malformed(format!(
                        "CNAME chain from {name} longer than {MAX_CNAME_HOPS}"
                    )));
                }
                ttl = min_ttl(ttl, t);
                current = target;
            }
            let neg = min_ttl(negative_ttl(&msg), ttl);
            if msg.header.rcode == wire::RCODE_NXDOMAIN {
                return Ok((Cached::NxDomain, neg));
            }
            // The answer ended in a CNAME whose target it says nothing about
            // (no SOA either): ask for the target itself.
            let has_soa = msg
                .authority
                .iter()
                .any(|r| matches!(r.data, RData::Soa { .. }));
            if current != asked && !has_soa {
                continue;
            }
            return Ok((Cached::Records(Vec::new()), neg));
        }
    }

    /// One question, retried across servers until an answer with NOERROR or
    /// NXDOMAIN, or the overall deadline.
    async fn query(&self, name: &str, qtype: u16) -> Result<Message, DnsError> {
        let servers = &self.inner.servers;
        if servers.is_empty() {
            return Err(DnsError::Io("no nameservers configured".into()));
        }
        let deadline = Instant::now() + self.inner.overall;
        let mut last = DnsError::Timeout;
        let mut dead = vec![false; servers.len()];
        // Each server gets up to three tries, round robin, within the deadline.
        for attempt in 0..servers.len() * 3 {
            let i = attempt % servers.len();
            if dead[i] {
                if dead.iter().all(|&d| d) {
                    break;
                }
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let try_deadline = deadline.min(now + self.inner.try_timeout);
            let result = self
                .exchange(servers[i], name, qtype, try_deadline, deadline)
                .await;
            let err = match result {
                Ok(msg) => match msg.header.rcode {
                    wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN => return Ok(msg),
                    rc => DnsError::ServFail(format!("{} from {}", rcode_name(rc), servers[i])),
                },
                Err(e) => e,
            };
            log::debug!("dns: {name} type {qtype} via {}: {err}", servers[i]);
            if err != DnsError::Timeout {
                dead[i] = true;
                last = err;
            }
        }
        Err(last)
    }

    fn matches(msg: &Message, id: u16, name: &str, qtype: u16) -> bool {
        if msg.header.id != id || !msg.header.qr {
            return false;
        }
        match msg.questions.as_slice() {
            [q] => q.name == name && q.qtype == qtype && q.qclass == wire::CLASS_IN,
            // Some servers omit the question in error responses.
            [] => !matches!(msg.header.rcode, wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN),
            _ => false,
        }
    }

    async fn exchange(
        &self,
        server: SocketAddr,
        name: &str,
        qtype: u16,
        try_deadline: Instant,
        deadline: Instant,
    ) -> Result<Message, DnsError> {
        let id = self.random_u16()?;
        let query = wire::build_query(id, name, qtype).map_err(DnsError::Malformed)?;
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await.map_err(io)?;
        // Connected: the kernel drops datagrams from other addresses and
        // reports ICMP port unreachable as an error.
        sock.connect(server).await.map_err(io)?;
        sock.send(&query).await.map_err(io)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let (len, from) = before(try_deadline, sock.recv_from(&mut buf))
                .await?
                .map_err(io)?;
            if from != server {
                continue;
            }
            let packet = &buf[..len];
            let Some(h) = wire::parse_header(packet) else {
                continue;
            };
            if h.id != id || !h.qr {
                continue;
            }
            if h.tc {
                let tcp_deadline = deadline.min(Instant::now() + self.inner.try_timeout);
                return self
                    .exchange_tcp(server, name, qtype, &query, id, tcp_deadline)
                    .await;
            }
            let msg = parse_response(packet)?;
            if Self::matches(&msg, id, name, qtype) {
                return Ok(msg);
            }
        }
    }

    async fn exchange_tcp(
        &self,
        server: SocketAddr,
        name: &str,
        qtype: u16,
        query: &[u8],
        id: u16,
        deadline: Instant,
    ) -> Result<Message, DnsError> {
        let answer = before(deadline, async {
            let mut s = TcpStream::connect(server).await.map_err(io)?;
            let mut framed = Vec::with_capacity(query.len() + 2);
            framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
            framed.extend_from_slice(query);
            s.write_all(&framed).await.map_err(io)?;
            s.flush().await.map_err(io)?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.map_err(io)?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf).await.map_err(io)?;
            Ok::<_, DnsError>(buf)
        })
        .await??;
        let msg = parse_response(&answer)?;
        if !Self::matches(&msg, id, name, qtype) {
            return Err(DnsError::Malformed(
                "TCP answer doesn't match the question".into(),
            ));
        }
        if msg.header.tc {
            return Err(DnsError::Malformed("truncated answer over TCP".into()));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let text = "# comment\nsearch example.org\nnameserver 127.0.0.53\n\
                    nameserver ::1\nnameserver fe80::1%2\nnameserver fe80::2%eth0\n\
                    nameserver bogus\n  nameserver 9.9.9.9 # trailing\noptions edns0\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 2)),
                "9.9.9.9:53".parse().unwrap(),
            ]
        );
        assert!(parse_resolv_conf("").is_empty());
    }

    #[test]
    fn cache_bounds_and_expiry() {
        let mut c = Cache {
            map: HashMap::new(),
            cap: 16,
        };
        let now = Instant::now();
        for i in 0..100u32 {
            c.insert((format!("n{i}"), 1), Cached::NxDomain, 1 + i, now);
            assert!(c.map.len() <= 16);
        }
        // The longest-lived entries survive.
        assert!(c.get(&("n99".into(), 1), now).is_some());
        assert!(c.get(&("n0".into(), 1), now).is_none());
        assert!(c
            .get(&("n99".into(), 1), now + Duration::from_secs(101))
            .is_none());
        c.insert(("zero".into(), 1), Cached::NxDomain, 0, now);
        assert!(c.get(&("zero".into(), 1), now).is_none());
    }

    #[test]
    fn negative_ttl_from_soa() {
        let soa = |ttl, minimum| wire::Record {
            name: "org".into(),
            rtype: wire::TYPE_SOA,
            class: 1,
            ttl,
            data: RData::Soa {
                mname: "a".into(),
                rname: "b".into(),
                serial: 1,
                refresh: 1,
                retry: 1,
                expire: 1,
                minimum,
            },
        };
        let mut m = parse_response(&wire::build_query(1, "x.org", 1).unwrap()).unwrap();
        assert_eq!(negative_ttl(&m), 0);
        m.authority.push(soa(3600, 30));
        assert_eq!(negative_ttl(&m), 30);
        m.authority[0] = soa(10, 3600);
        assert_eq!(negative_ttl(&m), 10);
        m.authority[0] = soa(3600, 3600);
        assert_eq!(negative_ttl(&m), 60);
    }

    #[test]
    fn mx_ties_are_shuffled_within_groups_only() {
        let r = Resolver::new(vec![]);
        let mut seen_first = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut h = vec![
                (10, "a".to_string()),
                (10, "b".to_string()),
                (10, "c".to_string()),
                (20, "d".to_string()),
            ];
            r.shuffle_ties(&mut h);
            assert_eq!(h[3].1, "d");
            seen_first.insert(h[0].1.clone());
        }
        assert_eq!(seen_first.len(), 3);
    }

    #[test]
    fn no_servers_is_an_error_not_a_hang() {
        let r = Resolver::new(vec![]);
        let e = futures_lite::future::block_on(r.ipv4("example.org")).unwrap_err();
        assert!(matches!(e, DnsError::Io(_)));
        let e = futures_lite::future::block_on(r.mx("bad..name")).unwrap_err();
        assert!(matches!(e, DnsError::Malformed(_)));
    }
}
