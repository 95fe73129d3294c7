//! The TURN server state machine without I/O (RFC 8656 over UDP; STUN
//! Binding per RFC 8489 §7). One datagram in, at most one datagram out;
//! the cost of each is bounded (≤ 32 attributes, ≤ 8 peers per
//! CreatePermission, hash lookups). Relay sockets are opened and closed
//! through [`Sockets`], which the socket loop implements.

use std::net::{IpAddr, SocketAddr};

use super::alloc::{Ports, Table};
use super::attr;
use super::auth::{long_term_key, NonceKey};
use super::msg::{self, Builder, Class, Message};
use super::peer;

/// Allocation lifetimes, seconds (RFC 8656 §7.2: default 600, max ≥ 3600).
pub const DEFAULT_LIFETIME: i64 = 600;
pub const MAX_LIFETIME: i64 = 3600;
/// XOR-PEER-ADDRESS attributes read from one CreatePermission.
pub const MAX_PEERS_PER_REQUEST: usize = 8;
/// Software name sent in responses (RFC 8489 §14.14).
const SOFTWARE: &[u8] = b"chatrelay";

/// Limits of one server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Allocations per REST user name (486 beyond, RFC 8656 §7.2 item 10).
    pub per_user: usize,
    /// Allocations per client address (memory only), also 486.
    pub per_client_ip: usize,
    /// Relay loopback/private peers (tests only).
    pub allow_private_peers: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_user: 8,
            per_client_ip: 16,
            allow_private_peers: false,
        }
    }
}

/// Relay sockets, as the socket loop provides them.
pub trait Sockets {
    /// Bind a relay socket on `port` for `client`; the relayed address to
    /// hand out (the public one behind a NAT, `turn_external_ip`), or None.
    fn open(&mut self, port: u16, client: SocketAddr) -> Option<SocketAddr>;
    fn close(&mut self, port: u16);
}

/// What to do with a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// Send from the TURN port to a client.
    Client(SocketAddr, Vec<u8>),
    /// Send from relay port `port` to a peer.
    Peer {
        port: u16,
        peer: SocketAddr,
        data: Vec<u8>,
    },
}

/// Counters (no addresses).
#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub allocations: u64,
    pub to_peer_packets: u64,
    pub to_peer_bytes: u64,
    pub to_client_packets: u64,
    pub to_client_bytes: u64,
    pub dropped: u64,
    pub auth_failures: u64,
}

pub struct Turn {
    realm: String,
    secret: String,
    nonces: NonceKey,
    limits: Limits,
    ports: Ports,
    table: Table,
    pub stats: Stats,
}

/// A failed request: code and reason (RFC 8489 §14.8, RFC 8656 §19).
struct Fail(u16, &'static str);

impl Turn {
    pub fn new(realm: &str, secret: &str, ports: (u16, u16), limits: Limits) -> Turn {
        Turn {
            realm: realm.to_string(),
            secret: secret.to_string(),
            nonces: NonceKey::random(),
            limits,
            ports: Ports::new(ports.0, ports.1),
            table: Table::default(),
            stats: Stats::default(),
        }
    }

    pub fn allocations(&self) -> usize {
        self.table.len()
    }

    /// A datagram from a client on the TURN port.
    pub fn from_client(
        &mut self,
        now: i64,
        client: SocketAddr,
        data: &[u8],
        socks: &mut dyn Sockets,
    ) -> Option<Out> {
        if data.first().is_some_and(|b| b & 0xC0 == 0x40) {
            return self.channel_data(now, client, data);
        }
        let m = match Message::parse(data) {
            Ok(m) => m,
            Err(_) => {
                // Not STUN, or broken: there is no transaction to answer.
                self.stats.dropped += 1;
                return None;
            }
        };
        if m.fingerprint_ok() == Some(false) {
            self.stats.dropped += 1;
            return None;
        }
        match (m.class, m.method) {
            (Class::Request, msg::BINDING) => Some(Out::Client(client, binding(&m, client))),
            (
                Class::Request,
                msg::ALLOCATE | msg::REFRESH | msg::CREATE_PERMISSION | msg::CHANNEL_BIND,
            ) => Some(Out::Client(client, self.request(now, client, &m, socks))),
            (Class::Request, _) => {
                // RFC 8489 §6.3.1: an unknown method in a request gets 400.
                Some(Out::Client(client, error(&m, 400, "Unknown method", None)))
            }
            (Class::Indication, msg::SEND) => self.send_indication(now, client, &m),
            _ => {
                self.stats.dropped += 1;
                None
            }
        }
    }

    /// A datagram from a peer on relay port `port` (RFC 8656 §10.3, §12.6).
    pub fn from_peer(
        &mut self,
        now: i64,
        port: u16,
        from: SocketAddr,
        data: &[u8],
    ) -> Option<(SocketAddr, Vec<u8>)> {
        let client = self.table.client_of_port(port)?;
        let a = self.table.get(&client)?;
        if a.expires <= now || !a.permitted(from.ip(), now) {
            self.stats.dropped += 1;
            return None;
        }
        let out = match a.peer_channel(from, now) {
            Some(ch) => msg::channel_data(ch, data),
            None => {
                let mut tid = [0u8; 12];
                let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut tid);
                let mut b = Builder::new(msg::DATA, Class::Indication, &tid);
                b.xor_addr(attr::XOR_PEER_ADDRESS, from)
                    .attr(attr::DATA, data);
                b.finish()
            }
        };
        self.stats.to_client_packets += 1;
        self.stats.to_client_bytes += data.len() as u64;
        Some((client, out))
    }

    /// Remove expired allocations (the loop calls this on a timer while
    /// allocations exist); returns how many went.
    pub fn expire(&mut self, now: i64, socks: &mut dyn Sockets) -> usize {
        let gone = self.table.expired(now);
        for c in &gone {
            self.delete(c, socks);
        }
        gone.len()
    }

    fn delete(&mut self, client: &SocketAddr, socks: &mut dyn Sockets) {
        if let Some(port) = self.table.remove(client) {
            socks.close(port);
            self.ports.give(port);
        }
    }

    fn channel_data(&mut self, now: i64, client: SocketAddr, data: &[u8]) -> Option<Out> {
        let Some((ch, payload)) = msg::parse_channel_data(data) else {
            self.stats.dropped += 1;
            return None;
        };
        let Some(a) = self.table.get(&client) else {
            self.stats.dropped += 1;
            return None;
        };
        // RFC 8656 §12.6: data on an unbound channel is discarded.
        let Some(peer) = a.channel_peer(ch, now).filter(|p| a.permitted(p.ip(), now)) else {
            self.stats.dropped += 1;
            return None;
        };
        self.stats.to_peer_packets += 1;
        self.stats.to_peer_bytes += payload.len() as u64;
        Some(Out::Peer {
            port: a.relayed.port(),
            peer,
            data: payload.to_vec(),
        })
    }

    /// RFC 8656 §10.2: a Send indication needs an allocation and a
    /// permission; otherwise it is silently dropped.
    fn send_indication(&mut self, now: i64, client: SocketAddr, m: &Message) -> Option<Out> {
        let a = self.table.get(&client)?;
        let peer = m
            .get(attr::XOR_PEER_ADDRESS)
            .and_then(|v| attr::decode_xor_addr(v, &m.tid));
        let data = m.get(attr::DATA);
        match (peer, data) {
            (Some(p), Some(d)) if a.permitted(p.ip(), now) && m.unknown_required().is_empty() => {
                self.stats.to_peer_packets += 1;
                self.stats.to_peer_bytes += d.len() as u64;
                Some(Out::Peer {
                    port: a.relayed.port(),
                    peer: p,
                    data: d.to_vec(),
                })
            }
            _ => {
                self.stats.dropped += 1;
                None
            }
        }
    }

    /// Authenticated requests (RFC 8489 §9.2.4), then the method.
    fn request(
        &mut self,
        now: i64,
        client: SocketAddr,
        m: &Message,
        socks: &mut dyn Sockets,
    ) -> Vec<u8> {
        let (user, key) = match self.authenticate(now, m) {
            Ok(x) => x,
            Err(resp) => {
                self.stats.auth_failures += 1;
                return resp;
            }
        };
        let unknown = m.unknown_required();
        if !unknown.is_empty() {
            // RFC 8489 §6.3.1.1: 420 listing them in UNKNOWN-ATTRIBUTES.
            let mut b = Builder::new(m.method, Class::Error, &m.tid);
            b.error(420, "Unknown Attribute");
            let v: Vec<u8> = unknown.iter().flat_map(|t| t.to_be_bytes()).collect();
            b.attr(attr::UNKNOWN_ATTRIBUTES, &v)
                .attr(attr::SOFTWARE, SOFTWARE)
                .integrity(&key);
            return b.fingerprint();
        }
        // Requests on an existing allocation must use its credentials (RFC 8656 §5: 441).
        if m.method != msg::ALLOCATE {
            match self.table.get(&client) {
                None => return error(m, 437, "Allocation Mismatch", Some(&key)),
                Some(a) if a.user != user => return error(m, 441, "Wrong Credentials", Some(&key)),
                Some(_) => {}
            }
        }
        let r = match m.method {
            msg::ALLOCATE => self.allocate(now, client, m, user, key, socks),
            msg::REFRESH => self.refresh(now, client, m, socks),
            msg::CREATE_PERMISSION => self.create_permission(now, client, m),
            _ => self.channel_bind(now, client, m),
        };
        match r {
            Ok(b) => {
                let mut b = b;
                b.attr(attr::SOFTWARE, SOFTWARE).integrity(&key);
                b.fingerprint()
            }
            Err(Fail(code, why)) => error(m, code, why, Some(&key)),
        }
    }

    /// Long-term credentials with REST user names; Err is the answer.
    fn authenticate(&self, now: i64, m: &Message) -> Result<(String, [u8; 16]), Vec<u8>> {
        let challenge = |code: u16, why: &str| {
            let mut b = Builder::new(m.method, Class::Error, &m.tid);
            b.error(code, why)
                .attr(attr::REALM, self.realm.as_bytes())
                .attr(attr::NONCE, self.nonces.make(now).as_bytes());
            b.fingerprint()
        };
        if m.get(attr::MESSAGE_INTEGRITY).is_none() {
            return Err(challenge(401, "Unauthorized"));
        }
        let (Some(user), Some(_realm), Some(nonce)) = (
            m.get(attr::USERNAME),
            m.get(attr::REALM),
            m.get(attr::NONCE),
        ) else {
            return Err(error(m, 400, "Bad Request", None));
        };
        if !self.nonces.fresh(nonce, now) {
            return Err(challenge(438, "Stale Nonce"));
        }
        let Some(user) = std::str::from_utf8(user).ok().filter(|u| u.len() <= 128) else {
            return Err(challenge(401, "Unauthorized"));
        };
        // The REST user name carries its expiry (spec §11.2).
        match crate::relay::turn_secret::username_expiry(user) {
            Some(exp) if exp > now => {}
            _ => return Err(challenge(401, "Unauthorized")),
        }
        let pw = crate::relay::turn_secret::password(&self.secret, user);
        let key = long_term_key(user, &self.realm, &pw);
        if m.integrity_ok(&key) != Some(true) {
            return Err(challenge(401, "Unauthorized"));
        }
        Ok((user.to_string(), key))
    }

    /// RFC 8656 §7.2.
    fn allocate(
        &mut self,
        now: i64,
        client: SocketAddr,
        m: &Message,
        user: String,
        key: [u8; 16],
        socks: &mut dyn Sockets,
    ) -> Result<Builder, Fail> {
        if let Some(a) = self.table.get(&client) {
            if a.tid == m.tid {
                // A retransmission: the same answer again.
                let (relayed, left) = (a.relayed, a.expires - now);
                return Ok(allocate_ok(m, relayed, left, client));
            }
            return Err(Fail(437, "Allocation Mismatch"));
        }
        match m.get(attr::REQUESTED_TRANSPORT) {
            None => return Err(Fail(400, "REQUESTED-TRANSPORT missing")),
            Some(v) if v.len() != 4 || v[0] != 17 => {
                return Err(Fail(442, "Unsupported Transport Protocol"))
            }
            _ => {}
        }
        if let Some(f) = m.get(attr::REQUESTED_ADDRESS_FAMILY) {
            if f.first() != Some(&1) {
                return Err(Fail(440, "Address Family not Supported"));
            }
        }
        if m.get(attr::RESERVATION_TOKEN).is_some() {
            return Err(Fail(508, "Insufficient Capacity"));
        }
        if self.table.user_count(&user) >= self.limits.per_user
            || self.table.ip_count(client.ip()) >= self.limits.per_client_ip
        {
            return Err(Fail(486, "Allocation Quota Reached"));
        }
        let even = m.get(attr::EVEN_PORT).is_some();
        // A bounded number of tries: a port another program holds is skipped.
        let mut relayed = None;
        for _ in 0..self.ports.available().min(16) {
            let Some(p) = self.ports.take() else { break };
            if even && p % 2 == 1 {
                self.ports.give(p);
                continue;
            }
            match socks.open(p, client) {
                Some(a) => {
                    relayed = Some(a);
                    break;
                }
                None => self.ports.give(p),
            }
        }
        let Some(relayed) = relayed else {
            return Err(Fail(508, "Insufficient Capacity"));
        };
        let lifetime = clamp_lifetime(m);
        self.table
            .insert(client, user, key, relayed, now + lifetime, m.tid);
        self.stats.allocations += 1;
        Ok(allocate_ok(m, relayed, lifetime, client))
    }

    /// RFC 8656 §8: LIFETIME 0 deletes.
    fn refresh(
        &mut self,
        now: i64,
        client: SocketAddr,
        m: &Message,
        socks: &mut dyn Sockets,
    ) -> Result<Builder, Fail> {
        let asked = m.get(attr::LIFETIME).and_then(be_u32);
        let lifetime = if asked == Some(0) {
            0
        } else {
            clamp_lifetime(m)
        };
        if lifetime == 0 {
            self.delete(&client, socks);
        } else if let Some(a) = self.table.get_mut(&client) {
            a.expires = now + lifetime;
        }
        let mut b = Builder::new(m.method, Class::Success, &m.tid);
        b.u32(attr::LIFETIME, lifetime as u32);
        Ok(b)
    }

    /// RFC 8656 §9.2.
    fn create_permission(
        &mut self,
        now: i64,
        client: SocketAddr,
        m: &Message,
    ) -> Result<Builder, Fail> {
        let mut peers: Vec<IpAddr> = Vec::new();
        for (t, v) in m.attrs() {
            if t != attr::XOR_PEER_ADDRESS {
                continue;
            }
            if peers.len() == MAX_PEERS_PER_REQUEST {
                return Err(Fail(508, "Insufficient Capacity"));
            }
            let p = attr::decode_xor_addr(v, &m.tid).ok_or(Fail(400, "Bad XOR-PEER-ADDRESS"))?;
            peers.push(p.ip());
        }
        if peers.is_empty() {
            return Err(Fail(400, "XOR-PEER-ADDRESS missing"));
        }
        self.check_peers(&peers)?;
        let a = self
            .table
            .get_mut(&client)
            .ok_or(Fail(437, "Allocation Mismatch"))?;
        for ip in peers {
            if !a.permit(ip, now) {
                return Err(Fail(508, "Insufficient Capacity"));
            }
        }
        Ok(Builder::new(m.method, Class::Success, &m.tid))
    }

    /// RFC 8656 §11.2.
    fn channel_bind(&mut self, now: i64, client: SocketAddr, m: &Message) -> Result<Builder, Fail> {
        let ch = m
            .get(attr::CHANNEL_NUMBER)
            .filter(|v| v.len() == 4)
            .map(|v| u16::from_be_bytes([v[0], v[1]]))
            // RFC 5766 §11 allows 0x4000–0x7FFF (coturn's clients use it all);
            // RFC 8656 §12 narrows it to 0x4FFF. We take the wider one.
            .filter(|c| (0x4000..=0x7FFF).contains(c))
            .ok_or(Fail(400, "Bad CHANNEL-NUMBER"))?;
        let peer = m
            .get(attr::XOR_PEER_ADDRESS)
            .and_then(|v| attr::decode_xor_addr(v, &m.tid))
            .ok_or(Fail(400, "XOR-PEER-ADDRESS missing"))?;
        self.check_peers(&[peer.ip()])?;
        let a = self
            .table
            .get_mut(&client)
            .ok_or(Fail(437, "Allocation Mismatch"))?;
        a.bind(ch, peer, now).map_err(|why| Fail(400, why))?;
        if !a.permit(peer.ip(), now) {
            return Err(Fail(508, "Insufficient Capacity"));
        }
        Ok(Builder::new(m.method, Class::Success, &m.tid))
    }

    fn check_peers(&self, peers: &[IpAddr]) -> Result<(), Fail> {
        for ip in peers {
            if ip.is_ipv6() && ip.to_canonical().is_ipv6() {
                // Our relayed addresses are IPv4 (RFC 8656 §9.2: 443).
                return Err(Fail(443, "Peer Address Family Mismatch"));
            }
            if peer::forbidden(*ip, self.limits.allow_private_peers) {
                return Err(Fail(403, "Forbidden"));
            }
        }
        Ok(())
    }
}

fn be_u32(v: &[u8]) -> Option<u32> {
    (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

/// RFC 8656 §7.2: the default when less is asked, the maximum when more.
fn clamp_lifetime(m: &Message) -> i64 {
    let asked = m
        .get(attr::LIFETIME)
        .and_then(be_u32)
        .map(i64::from)
        .unwrap_or(DEFAULT_LIFETIME);
    asked.clamp(DEFAULT_LIFETIME, MAX_LIFETIME)
}

fn allocate_ok(m: &Message, relayed: SocketAddr, lifetime: i64, client: SocketAddr) -> Builder {
    let mut b = Builder::new(m.method, Class::Success, &m.tid);
    b.xor_addr(attr::XOR_RELAYED_ADDRESS, relayed)
        .u32(attr::LIFETIME, lifetime.max(0) as u32)
        .xor_addr(attr::XOR_MAPPED_ADDRESS, client);
    b
}

/// RFC 8489 §7.3.1: the reflexive address.
fn binding(m: &Message, client: SocketAddr) -> Vec<u8> {
    // Only XOR-MAPPED-ADDRESS and FINGERPRINT: an unauthenticated answer
    // stays at most twice the request's size (reflection). MAPPED-ADDRESS
    // would only serve RFC 3489 clients, whose requests lack the cookie and
    // are not answered anyway.
    let mut b = Builder::new(msg::BINDING, Class::Success, &m.tid);
    b.xor_addr(attr::XOR_MAPPED_ADDRESS, client);
    b.fingerprint()
}

fn error(m: &Message, code: u16, why: &str, key: Option<&[u8; 16]>) -> Vec<u8> {
    let mut b = Builder::new(m.method, Class::Error, &m.tid);
    b.error(code, why).attr(attr::SOFTWARE, SOFTWARE);
    if let Some(k) = key {
        b.integrity(k);
    }
    b.fingerprint()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::turn_secret::password;

    #[derive(Default)]
    struct Fake(Vec<u16>);
    impl Sockets for Fake {
        fn open(&mut self, port: u16, _: SocketAddr) -> Option<SocketAddr> {
            self.0.push(port);
            Some(SocketAddr::from(([203, 0, 113, 1], port)))
        }
        fn close(&mut self, port: u16) {
            self.0.retain(|p| *p != port);
        }
    }

    const T0: i64 = 1_700_000_000;

    fn answer(o: Option<Out>) -> Vec<u8> {
        match o {
            Some(Out::Client(_, b)) => b,
            o => panic!("{o:?}"),
        }
    }

    /// A signed Allocate with `nonce` (learned from a 401 first when None).
    fn allocate(
        t: &mut Turn,
        s: &mut Fake,
        now: i64,
        c: SocketAddr,
        nonce: Option<Vec<u8>>,
    ) -> (Vec<u8>, Vec<u8>) {
        let user = (T0 + 86_400).to_string();
        let nonce = nonce.unwrap_or_else(|| {
            let mut b = Builder::new(msg::ALLOCATE, Class::Request, &[1; 12]);
            b.u32(attr::REQUESTED_TRANSPORT, 17 << 24);
            let r = answer(t.from_client(now, c, &b.finish(), s));
            Message::parse(&r)
                .unwrap()
                .get(attr::NONCE)
                .unwrap()
                .to_vec()
        });
        let key = long_term_key(&user, "r", &password("sec", &user));
        let mut b = Builder::new(msg::ALLOCATE, Class::Request, &[2; 12]);
        b.u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .attr(attr::USERNAME, user.as_bytes())
            .attr(attr::REALM, b"r")
            .attr(attr::NONCE, &nonce)
            .integrity(&key);
        (answer(t.from_client(now, c, &b.fingerprint(), s)), nonce)
    }

    fn code(b: &[u8]) -> Option<u16> {
        Message::parse(b)
            .unwrap()
            .get(attr::ERROR_CODE)
            .map(|v| v[2] as u16 * 100 + v[3] as u16)
    }

    #[test]
    fn nonce_goes_stale_and_allocations_expire() {
        let mut t = Turn::new("r", "sec", (50000, 50001), Limits::default());
        let mut s = Fake::default();
        let c = SocketAddr::from(([198, 51, 100, 1], 1000));
        let (ok, nonce) = allocate(&mut t, &mut s, T0, c, None);
        assert_eq!(code(&ok), None);
        assert_eq!(s.0, [50000]);
        // The same nonce 10 minutes later is stale: 438 with a new one.
        let c2 = SocketAddr::from(([198, 51, 100, 1], 1001));
        let (st, _) = allocate(
            &mut t,
            &mut s,
            T0 + super::super::auth::NONCE_LIFETIME,
            c2,
            Some(nonce),
        );
        assert_eq!(code(&st), Some(438));
        assert!(Message::parse(&st).unwrap().get(attr::NONCE).is_some());
        // Default lifetime 600 s: the sweep frees the port afterwards.
        assert_eq!(t.expire(T0 + 599, &mut s), 0);
        assert_eq!(t.expire(T0 + 600, &mut s), 1);
        assert!(s.0.is_empty());
        assert_eq!(t.allocations(), 0);
        // Two ports, two allocations, then 508.
        for i in 0..3 {
            let ci = SocketAddr::from(([198, 51, 100, 2], 2000 + i));
            let (r, _) = allocate(&mut t, &mut s, T0 + 700, ci, None);
            assert_eq!(code(&r), if i < 2 { None } else { Some(508) });
        }
    }
}
