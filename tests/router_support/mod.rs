//! A fake router for the port-mapping tests: answers PCP (RFC 6887) and
//! NAT-PMP (RFC 6886) datagrams on `ip:5351` with what a test's reply
//! function says, records every request. Built from the RFCs' layouts, not
//! from the relay's code. Used as `#[path = "router_support/mod.rs"] mod
//! router_support;`.
#![allow(dead_code)]

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the fake makes of one request: the datagrams to send back, in order.
pub type Reply = fn(&[u8], &Ctx) -> Vec<Vec<u8>>;

/// What a reply function may look at.
pub struct Ctx {
    /// The WAN address to report.
    pub wan: Ipv4Addr,
    /// Seconds since the fake started (its epoch time).
    pub epoch: u32,
}

pub struct Fake {
    reqs: Arc<Mutex<Vec<Vec<u8>>>>,
    pub wan: Arc<Mutex<Ipv4Addr>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    pub fn start(ip: &str, wan: Ipv4Addr, reply: Reply) -> Fake {
        let s = UdpSocket::bind((ip, 5351)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let wan = Arc::new(Mutex::new(wan));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, w, st) = (reqs.clone(), wan.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let until = t0 + Duration::from_secs(180);
            let mut b = [0u8; 1500];
            while !st.load(Ordering::SeqCst) && Instant::now() < until {
                let Ok((n, from)) = s.recv_from(&mut b) else {
                    continue;
                };
                r.lock().unwrap().push(b[..n].to_vec());
                let ctx = Ctx {
                    wan: *w.lock().unwrap(),
                    epoch: t0.elapsed().as_secs() as u32,
                };
                for a in reply(&b[..n], &ctx) {
                    let _ = s.send_to(&a, from);
                }
            }
        });
        Fake {
            reqs,
            wan,
            stop,
            thread: Some(thread),
        }
    }
    pub fn count(&self) -> usize {
        self.reqs.lock().unwrap().len()
    }
    pub fn reqs(&self) -> Vec<Vec<u8>> {
        self.reqs.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The next test binds the same address at once.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A PCP MAP request's fields (RFC 6887 §11.1): (lifetime, nonce, protocol,
/// internal port); None for anything else.
pub fn pcp_map_request(req: &[u8]) -> Option<(u32, [u8; 12], u8, u16)> {
    if req.len() < 60 || req[0] != 2 || req[1] != 1 {
        return None;
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&req[24..36]);
    Some((
        u32::from_be_bytes(req[4..8].try_into().unwrap()),
        nonce,
        req[36],
        u16::from_be_bytes([req[40], req[41]]),
    ))
}

/// The MAP response (§11.2) to `req` with `result`, external address
/// `ext` and port `ext_port`, the request's own lifetime and nonce.
pub fn pcp_map_reply(req: &[u8], result: u8, epoch: u32, ext: Ipv4Addr, ext_port: u16) -> Vec<u8> {
    let (lifetime, nonce, proto, port) = pcp_map_request(req).unwrap();
    let mut b = vec![2, 0x81, 0, result];
    b.extend(if result == 0 { lifetime } else { 0 }.to_be_bytes());
    b.extend(epoch.to_be_bytes());
    b.extend([0; 12]);
    b.extend(nonce);
    b.extend([proto, 0, 0, 0]);
    b.extend(port.to_be_bytes());
    b.extend(ext_port.to_be_bytes());
    b.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    b.extend(ext.octets());
    b
}

/// A router that maps everything by PCP and reports `ctx.wan`.
pub fn pcp_ok(req: &[u8], ctx: &Ctx) -> Vec<Vec<u8>> {
    match pcp_map_request(req) {
        Some((_, _, _, port)) => vec![pcp_map_reply(req, 0, ctx.epoch, ctx.wan, port)],
        None => vec![],
    }
}

/// RFC 6886 §3.5: a NAT-PMP-only router answers a request of another
/// version with "unsupported version" (result 1).
pub fn natpmp_unsupported_version(req: &[u8], epoch: u32) -> Vec<u8> {
    let mut v = vec![0, 128 + req.get(1).copied().unwrap_or(0), 0, 1];
    v.extend(epoch.to_be_bytes());
    v
}

/// NAT-PMP §3.2 external address reply.
pub fn natpmp_external(ip: Ipv4Addr, epoch: u32) -> Vec<u8> {
    let mut v = vec![0, 128, 0, 0];
    v.extend(epoch.to_be_bytes());
    v.extend(ip.octets());
    v
}
