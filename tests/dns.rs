//! The DNS stub resolver against a tiny DNS server of the test's own on
//! loopback (std UDP/TCP threads answering from per-test closures). Packets
//! are built by hand here, independently of `chatrelay::dns::wire`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chatrelay::dns::{DnsError, MxResult, Resolver};

const A: u16 = 1;
const CNAME: u16 = 5;
const SOA: u16 = 6;
const MX: u16 = 15;
const TXT: u16 = 16;
const AAAA: u16 = 28;

#[derive(Clone, Debug)]
struct Query {
    id: u16,
    /// As sent (case preserved), without trailing dot.
    name: String,
    qtype: u16,
    tcp: bool,
    edns_payload: Option<u16>,
    question_wire: Vec<u8>,
}

enum Act {
    /// Send a reply (UDP datagram, or length-prefixed on TCP).
    Send(Vec<u8>),
    /// Send a datagram from another loopback address to the client.
    SendSpoofed(Vec<u8>),
    /// Raw bytes on TCP, no length prefix.
    Raw(Vec<u8>),
    Sleep(u64),
}

type Handler = dyn Fn(&Query) -> Vec<Act> + Send + Sync;

struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    queries: Arc<Mutex<Vec<Query>>>,
}

fn parse_query(buf: &[u8], tcp: bool) -> Option<Query> {
    let id = u16::from_be_bytes([buf[0], buf[1]]);
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let n = *buf.get(pos)? as usize;
        pos += 1;
        if n == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(buf.get(pos..pos + n)?).into_owned());
        pos += n;
    }
    let qtype = u16::from_be_bytes([*buf.get(pos)?, *buf.get(pos + 1)?]);
    let question_wire = buf.get(12..pos + 4)?.to_vec();
    pos += 4;
    // Expect exactly one additional record: the OPT.
    let edns_payload = (buf.get(pos..pos + 3)? == [0, 0, 41])
        .then(|| u16::from_be_bytes([buf[pos + 3], buf[pos + 4]]));
    Some(Query {
        id,
        name: labels.join("."),
        qtype,
        tcp,
        edns_payload,
        question_wire,
    })
}

fn start(ip: &str, handler: impl Fn(&Query) -> Vec<Act> + Send + Sync + 'static) -> Server {
    let handler: Arc<Handler> = Arc::new(handler);
    let hits = Arc::new(AtomicUsize::new(0));
    let queries = Arc::new(Mutex::new(Vec::new()));
    let (udp, tcp) = (0..50)
        .find_map(|_| {
            let udp = UdpSocket::bind((ip, 0)).ok()?;
            let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
            Some((udp, tcp))
        })
        .expect("bind test DNS server");
    let addr = udp.local_addr().unwrap();
    {
        let (handler, hits, queries) = (handler.clone(), hits.clone(), queries.clone());
        thread::spawn(move || {
            let spoofer = UdpSocket::bind("127.0.0.2:0").unwrap();
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let Some(q) = parse_query(&buf[..n], false) else {
                    continue;
                };
                hits.fetch_add(1, Ordering::SeqCst);
                queries.lock().unwrap().push(q.clone());
                for act in handler(&q) {
                    match act {
                        Act::Send(b) | Act::Raw(b) => {
                            let _ = udp.send_to(&b, from);
                        }
                        Act::SendSpoofed(b) => {
                            let _ = spoofer.send_to(&b, from);
                        }
                        Act::Sleep(ms) => thread::sleep(Duration::from_millis(ms)),
                    }
                }
            }
        });
    }
    {
        let (hits, queries) = (hits.clone(), queries.clone());
        thread::spawn(move || {
            for conn in tcp.incoming() {
                let Ok(mut s) = conn else { continue };
                let (handler, hits, queries) = (handler.clone(), hits.clone(), queries.clone());
                thread::spawn(move || {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                    if s.read_exact(&mut buf).is_err() {
                        return;
                    }
                    let Some(q) = parse_query(&buf, true) else {
                        return;
                    };
                    hits.fetch_add(1, Ordering::SeqCst);
                    queries.lock().unwrap().push(q.clone());
                    for act in handler(&q) {
                        match act {
                            Act::Send(b) => {
                                let mut framed = (b.len() as u16).to_be_bytes().to_vec();
                                framed.extend_from_slice(&b);
                                let _ = s.write_all(&framed);
                            }
                            Act::Raw(b) | Act::SendSpoofed(b) => {
                                let _ = s.write_all(&b);
                            }
                            Act::Sleep(ms) => thread::sleep(Duration::from_millis(ms)),
                        }
                    }
                });
            }
        });
    }
    Server {
        addr,
        hits,
        queries,
    }
}

// ---- hand-made DNS packets -------------------------------------------------

fn name_wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

struct Rr {
    name: String,
    rtype: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

fn rr(name: &str, rtype: u16, ttl: u32, rdata: Vec<u8>) -> Rr {
    Rr {
        name: name.into(),
        rtype,
        ttl,
        rdata,
    }
}
fn mx(pref: u16, host: &str) -> Vec<u8> {
    let mut v = pref.to_be_bytes().to_vec();
    v.extend(name_wire(host));
    v
}
fn a(ip: &str) -> Vec<u8> {
    ip.parse::<Ipv4Addr>().unwrap().octets().to_vec()
}
fn aaaa(ip: &str) -> Vec<u8> {
    ip.parse::<Ipv6Addr>().unwrap().octets().to_vec()
}
fn txt(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        v.push(p.len() as u8);
        v.extend_from_slice(p);
    }
    v
}
fn soa(minimum: u32) -> Vec<u8> {
    let mut v = name_wire("ns.example.org");
    v.extend(name_wire("hostmaster.example.org"));
    for x in [1u32, 3600, 600, 86400, minimum] {
        v.extend(x.to_be_bytes());
    }
    v
}

struct Reply {
    id: u16,
    flags: u16,
    question: Vec<u8>,
    an: Vec<Rr>,
    ns: Vec<Rr>,
}

impl Reply {
    fn to(q: &Query) -> Reply {
        Reply {
            id: q.id,
            flags: 0x8180, // QR RD RA
            question: q.question_wire.clone(),
            an: vec![],
            ns: vec![],
        }
    }
    fn rcode(mut self, rc: u16) -> Self {
        self.flags = (self.flags & !0xf) | rc;
        self
    }
    fn tc(mut self) -> Self {
        self.flags |= 0x0200;
        self
    }
    fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }
    fn an(mut self, r: Rr) -> Self {
        self.an.push(r);
        self
    }
    fn ns(mut self, r: Rr) -> Self {
        self.ns.push(r);
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(self.id.to_be_bytes());
        m.extend(self.flags.to_be_bytes());
        for n in [1, self.an.len(), self.ns.len(), 0] {
            m.extend((n as u16).to_be_bytes());
        }
        m.extend(&self.question);
        for r in self.an.iter().chain(&self.ns) {
            m.extend(name_wire(&r.name));
            m.extend(r.rtype.to_be_bytes());
            m.extend(1u16.to_be_bytes());
            m.extend(r.ttl.to_be_bytes());
            m.extend((r.rdata.len() as u16).to_be_bytes());
            m.extend(&r.rdata);
        }
        m
    }
}

fn resolver(servers: &[&Server]) -> Resolver {
    Resolver::with_timeouts(
        servers.iter().map(|s| s.addr).collect(),
        Duration::from_millis(300),
        Duration::from_millis(1500),
    )
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    // Every test is bounded: the resolver's own deadline plus this guard.
    let start = Instant::now();
    let out = futures_lite::future::block_on(f);
    assert!(start.elapsed() < Duration::from_secs(5), "took too long");
    out
}

fn key(q: &Query) -> (String, u16) {
    (q.name.to_ascii_lowercase(), q.qtype)
}

// ---- tests ------------------------------------------------------------------

#[test]
fn mx_sorted_case_insensitive_and_edns() {
    let s = start("127.0.0.1", |q| {
        assert_eq!(key(q), ("example.org".into(), MX));
        vec![Act::Send(
            Reply::to(q)
                .an(rr("EXAMPLE.org", MX, 300, mx(20, "Mx2.Example.ORG.")))
                .an(rr("example.ORG", MX, 300, mx(10, "mx1.example.org")))
                .an(rr("example.org", MX, 300, mx(30, "mx3.example.org")))
                .an(rr("other.org", MX, 300, mx(1, "evil.org")))
                .bytes(),
        )]
    });
    let r = resolver(&[&s]);
    let got = run(r.mx("ExAmple.Org.")).unwrap();
    assert_eq!(
        got,
        MxResult::Hosts(vec![
            (10, "mx1.example.org".into()),
            (20, "mx2.example.org".into()),
            (30, "mx3.example.org".into()),
        ])
    );
    let q = s.queries.lock().unwrap()[0].clone();
    assert_eq!(q.edns_payload, Some(1232));
    assert!(!q.tcp);
    // Cached: a second lookup asks nobody.
    assert_eq!(run(r.mx("example.org")).unwrap(), got);
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn null_mx_nodata_nxdomain() {
    let s = start("127.0.0.1", |q| {
        let reply = Reply::to(q);
        let reply = match key(q).0.as_str() {
            "null.example" => reply.an(rr("null.example", MX, 300, mx(0, "."))),
            "nodata.example" => reply.ns(rr("example", SOA, 300, soa(30))),
            "gone.example" => reply.rcode(3).ns(rr("example", SOA, 300, soa(30))),
            _ => reply.rcode(2),
        };
        vec![Act::Send(reply.bytes())]
    });
    let r = resolver(&[&s]);
    assert_eq!(run(r.mx("null.example")).unwrap(), MxResult::NullMx);
    assert_eq!(
        run(r.mx("NoData.example")).unwrap(),
        MxResult::Implicit("nodata.example".into())
    );
    assert_eq!(run(r.mx("gone.example")), Err(DnsError::NxDomain));
    assert_eq!(run(r.ipv4("gone.example")), Err(DnsError::NxDomain));
    assert_eq!(run(r.ipv4("nodata.example")), Ok(vec![]));
    let hits = s.hits.load(Ordering::SeqCst);
    // Negative answers are cached too.
    assert_eq!(run(r.mx("gone.example")), Err(DnsError::NxDomain));
    assert_eq!(
        run(r.mx("nodata.example")).unwrap(),
        MxResult::Implicit("nodata.example".into())
    );
    assert_eq!(s.hits.load(Ordering::SeqCst), hits);
    // SERVFAIL is reported as such, quickly.
    let t = Instant::now();
    assert!(matches!(
        run(r.mx("broken.example")),
        Err(DnsError::ServFail(_))
    ));
    assert!(t.elapsed() < Duration::from_millis(250));
}

#[test]
fn a_aaaa_txt() {
    let s = start("127.0.0.1", |q| {
        let reply = Reply::to(q);
        let reply = match key(q) {
            (n, A) if n == "host.example" => reply
                .an(rr("host.example", A, 60, a("192.0.2.1")))
                .an(rr("host.example", A, 60, a("192.0.2.2"))),
            (n, AAAA) if n == "host.example" => {
                reply.an(rr("host.example", AAAA, 60, aaaa("2001:db8::1")))
            }
            (n, TXT) if n == "sel._domainkey.example" => reply
                .an(rr(
                    &n,
                    TXT,
                    60,
                    txt(&[b"v=DKIM1; k=rsa; ", b"p=ABC", b"DEF"]),
                ))
                .an(rr(&n, TXT, 60, txt(&[b"second"]))),
            _ => reply.rcode(3),
        };
        vec![Act::Send(reply.bytes())]
    });
    let r = resolver(&[&s]);
    assert_eq!(
        run(r.ipv4("host.example")).unwrap(),
        vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
    );
    assert_eq!(
        run(r.ipv6("HOST.example")).unwrap(),
        vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(
        run(r.txt("sel._domainkey.example")).unwrap(),
        vec!["v=DKIM1; k=rsa; p=ABCDEF".to_string(), "second".to_string()]
    );
}

#[test]
fn huge_txt_over_tcp_after_tc() {
    let key_data: Vec<u8> = (0..3000).map(|i| b'A' + (i % 26) as u8).collect();
    let expect = String::from_utf8(key_data.clone()).unwrap();
    let s = start("127.0.0.1", move |q| {
        let parts: Vec<&[u8]> = key_data.chunks(255).collect();
        let full = Reply::to(q).an(rr(&q.name, TXT, 60, txt(&parts))).bytes();
        assert!(full.len() > 1232);
        if q.tcp {
            vec![Act::Send(full)]
        } else {
            vec![Act::Send(Reply::to(q).tc().bytes())]
        }
    });
    let r = resolver(&[&s]);
    assert_eq!(run(r.txt("big.example")).unwrap(), vec![expect]);
    let qs = s.queries.lock().unwrap().clone();
    assert_eq!(qs.iter().map(|q| q.tcp).collect::<Vec<_>>(), [false, true]);
}

#[test]
fn tc_forces_tcp_even_for_small_answers() {
    let s = start("127.0.0.1", |q| {
        if q.tcp {
            vec![Act::Send(
                Reply::to(q).an(rr(&q.name, A, 60, a("10.0.0.7"))).bytes(),
            )]
        } else {
            // Truncated UDP answer that even cuts a record in half.
            let mut b = Reply::to(q)
                .tc()
                .an(rr(&q.name, A, 60, a("1.1.1.1")))
                .bytes();
            b.truncate(b.len() - 3);
            vec![Act::Send(b)]
        }
    });
    let r = resolver(&[&s]);
    assert_eq!(
        run(r.ipv4("tcp.example")).unwrap(),
        vec![Ipv4Addr::new(10, 0, 0, 7)]
    );
}

#[test]
fn cname_chains() {
    let s = start("127.0.0.1", |q| {
        let reply = Reply::to(q);
        let reply = match key(q).0.as_str() {
            // Whole chain in one answer.
            "a.example" => reply
                .an(rr("a.example", CNAME, 300, name_wire("B.example")))
                .an(rr("b.example", CNAME, 100, name_wire("c.example")))
                .an(rr("c.example", A, 300, a("192.0.2.9"))),
            // Chain whose target the answer doesn't cover: ask again.
            "start.example" => reply.an(rr("start.example", CNAME, 300, name_wire("end.example"))),
            "end.example" => reply.an(rr("end.example", A, 300, a("192.0.2.10"))),
            // A loop.
            "loop1.example" => reply
                .an(rr("loop1.example", CNAME, 300, name_wire("loop2.example")))
                .an(rr("loop2.example", CNAME, 300, name_wire("loop1.example"))),
            // CNAME to a name with no MX → implicit MX of the asked domain.
            "alias.example" => reply
                .an(rr("alias.example", CNAME, 300, name_wire("real.example")))
                .ns(rr("example", SOA, 300, soa(60))),
            // CNAME to a non-existent name.
            "dangling.example" => reply
                .rcode(3)
                .an(rr(
                    "dangling.example",
                    CNAME,
                    300,
                    name_wire("nowhere.example"),
                ))
                .ns(rr("example", SOA, 300, soa(60))),
            _ => reply.rcode(3),
        };
        vec![Act::Send(reply.bytes())]
    });
    let r = resolver(&[&s]);
    assert_eq!(
        run(r.ipv4("a.example")).unwrap(),
        vec![Ipv4Addr::new(192, 0, 2, 9)]
    );
    assert_eq!(
        run(r.ipv4("start.example")).unwrap(),
        vec![Ipv4Addr::new(192, 0, 2, 10)]
    );
    assert!(matches!(
        run(r.ipv4("loop1.example")),
        Err(DnsError::Malformed(_))
    ));
    assert_eq!(
        run(r.mx("alias.example")).unwrap(),
        MxResult::Implicit("alias.example".into())
    );
    assert_eq!(run(r.ipv4("dangling.example")), Err(DnsError::NxDomain));
}

#[test]
fn stalled_server_times_out() {
    let s = start("127.0.0.1", |_| vec![]);
    let r = Resolver::with_timeouts(
        vec![s.addr],
        Duration::from_millis(200),
        Duration::from_millis(700),
    );
    let t = Instant::now();
    assert_eq!(run(r.mx("slow.example")), Err(DnsError::Timeout));
    let took = t.elapsed();
    // Three tries of 200 ms each, all within the 700 ms deadline.
    assert!(took >= Duration::from_millis(590), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
    // A deadline shorter than the tries cuts them off.
    let r = Resolver::with_timeouts(
        vec![s.addr],
        Duration::from_millis(200),
        Duration::from_millis(300),
    );
    let t = Instant::now();
    assert_eq!(run(r.mx("slow.example")), Err(DnsError::Timeout));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(700),
        "{took:?}"
    );
}

#[test]
fn stalled_tcp_after_tc_times_out() {
    let s = start("127.0.0.1", |q| {
        if q.tcp {
            vec![Act::Sleep(3000)]
        } else {
            vec![Act::Send(Reply::to(q).tc().bytes())]
        }
    });
    let r = Resolver::with_timeouts(
        vec![s.addr],
        Duration::from_millis(200),
        Duration::from_millis(700),
    );
    assert_eq!(run(r.ipv4("x.example")), Err(DnsError::Timeout));
}

#[test]
fn tcp_server_closing_early_is_an_error() {
    let s = start("127.0.0.1", |q| {
        if q.tcp {
            vec![Act::Raw(vec![0x01])] // half a length prefix, then close
        } else {
            vec![Act::Send(Reply::to(q).tc().bytes())]
        }
    });
    let r = resolver(&[&s]);
    assert!(matches!(run(r.ipv4("x.example")), Err(DnsError::Io(_))));
}

#[test]
fn failover_to_second_server() {
    let dead = start("127.0.0.1", |_| vec![]);
    let good = start("127.0.0.3", |q| {
        vec![Act::Send(
            Reply::to(q).an(rr(&q.name, A, 60, a("192.0.2.3"))).bytes(),
        )]
    });
    let r = resolver(&[&dead, &good]);
    assert_eq!(
        run(r.ipv4("x.example")).unwrap(),
        vec![Ipv4Addr::new(192, 0, 2, 3)]
    );
    // SERVFAIL from the first → the second is asked at once.
    let bad = start("127.0.0.1", |q| {
        vec![Act::Send(Reply::to(q).rcode(2).bytes())]
    });
    let r = resolver(&[&bad, &good]);
    let t = Instant::now();
    assert_eq!(
        run(r.ipv4("y.example")).unwrap(),
        vec![Ipv4Addr::new(192, 0, 2, 3)]
    );
    assert!(t.elapsed() < Duration::from_millis(250));
}

#[test]
fn mismatched_packets_are_ignored() {
    let s = start("127.0.0.1", |q| {
        let right = Reply::to(q).an(rr(&q.name, A, 60, a("192.0.2.1"))).bytes();
        let wrong_id = Reply::to(q)
            .id(q.id.wrapping_add(1))
            .an(rr(&q.name, A, 60, a("6.6.6.6")))
            .bytes();
        let mut other_q = q.clone();
        other_q.question_wire = name_wire("other.example");
        other_q.question_wire.extend([0, 1, 0, 1]);
        let wrong_question = Reply::to(&other_q)
            .an(rr("other.example", A, 60, a("6.6.6.7")))
            .bytes();
        let mut query_not_answer = right.clone();
        query_not_answer[2] &= 0x7f; // QR=0
        vec![
            Act::SendSpoofed(Reply::to(q).an(rr(&q.name, A, 60, a("6.6.6.8"))).bytes()),
            Act::Send(wrong_id),
            Act::Send(b"garbage".to_vec()),
            Act::Send(vec![]),
            Act::Send(wrong_question),
            Act::Send(query_not_answer),
            Act::Sleep(50),
            Act::Send(right),
        ]
    });
    let r = resolver(&[&s]);
    assert_eq!(
        run(r.ipv4("x.example")).unwrap(),
        vec![Ipv4Addr::new(192, 0, 2, 1)]
    );
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn malformed_answers_are_errors_not_panics() {
    fn cut(q: &Query, n: usize) -> Vec<u8> {
        let b = Reply::to(q)
            .an(rr(&q.name, MX, 60, mx(10, "mx.example")))
            .bytes();
        b[..b.len() - n].to_vec()
    }
    let s = start("127.0.0.1", |q| {
        let b = match key(q).0.as_str() {
            "cut.example" => cut(q, 4),
            "header.example" => cut(q, 0)[..12].to_vec(),
            "badlen.example" => {
                // rdlength larger than the rest of the packet
                let mut b = cut(q, 0);
                let n = b.len();
                b[n - 16] = 0xff;
                b
            }
            "loop.example" => {
                let mut b = Reply::to(q).bytes();
                b[7] = 1; // ANCOUNT
                let at = b.len();
                b.extend([0xc0, at as u8, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
                b
            }
            "bada.example" => Reply::to(q).an(rr(&q.name, MX, 60, vec![1, 2, 3])).bytes(),
            _ => vec![0xff; 3],
        };
        vec![Act::Send(b)]
    });
    let r = resolver(&[&s]);
    for name in [
        "cut.example",
        "header.example",
        "badlen.example",
        "loop.example",
        "bada.example",
    ] {
        let t = Instant::now();
        let got = run(r.mx(name));
        assert!(
            matches!(got, Err(DnsError::Malformed(_))),
            "{name}: {got:?}"
        );
        assert!(t.elapsed() < Duration::from_millis(250), "{name}");
    }
    // Pure garbage (too short for a header) is ignored → timeout.
    assert_eq!(run(r.mx("garbage.example")), Err(DnsError::Timeout));
}

#[test]
fn ttl_expiry_requeries() {
    let s = start("127.0.0.1", |q| {
        vec![Act::Send(
            Reply::to(q).an(rr(&q.name, A, 1, a("192.0.2.1"))).bytes(),
        )]
    });
    let r = resolver(&[&s]);
    run(r.ipv4("x.example")).unwrap();
    run(r.ipv4("x.example")).unwrap();
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
    thread::sleep(Duration::from_millis(1100));
    run(r.ipv4("x.example")).unwrap();
    assert_eq!(s.hits.load(Ordering::SeqCst), 2);
    // TTL 0 is never cached.
    let z = start("127.0.0.1", |q| {
        vec![Act::Send(
            Reply::to(q).an(rr(&q.name, A, 0, a("192.0.2.1"))).bytes(),
        )]
    });
    let r = resolver(&[&z]);
    run(r.ipv4("x.example")).unwrap();
    run(r.ipv4("x.example")).unwrap();
    assert_eq!(z.hits.load(Ordering::SeqCst), 2);
}

#[test]
fn concurrent_lookups_on_one_executor() {
    let s = start("127.0.0.1", |q| {
        let n: u8 = q
            .name
            .trim_start_matches('h')
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        vec![
            Act::Sleep(5),
            Act::Send(
                Reply::to(q)
                    .an(rr(&q.name, A, 60, vec![192, 0, 2, n]))
                    .bytes(),
            ),
        ]
    });
    let r = resolver(&[&s]);
    let ex = async_executor::LocalExecutor::new();
    let tasks: Vec<_> = (1..=20u8)
        .map(|i| {
            let r = r.clone();
            ex.spawn(async move { (i, r.ipv4(&format!("h{i}.example")).await) })
        })
        .collect();
    let results = run(ex.run(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    }));
    for (i, res) in results {
        assert_eq!(res.unwrap(), vec![Ipv4Addr::new(192, 0, 2, i)]);
    }
}
