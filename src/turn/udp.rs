//! The TURN socket loop: the listening UDP socket, one relay socket per
//! allocation, and an expiry timer that runs only while allocations exist.
//! Everything runs on the one thread; sends are non-blocking (a full
//! socket buffer drops the datagram, as UDP may), and every receiving loop
//! yields after [`BATCH`] datagrams so a flood cannot starve other tasks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use async_executor::{LocalExecutor, Task};
use async_io::{Async, Timer};

use super::proto::{Out, Sockets, Turn};
use crate::clock::now_secs;

/// Datagrams handled before a receiving loop yields.
const BATCH: usize = 16;
/// Largest datagram read; longer ones are truncated by the kernel and fail
/// to parse (STUN) or are relayed cut (never over the buffer).
const BUF: usize = 4096;
/// How often expired allocations are swept while any exist.
const SWEEP: Duration = Duration::from_secs(10);

/// The public address to name in XOR-RELAYED-ADDRESS instead of the local
/// one (`turn_external_ip`), asked at each Allocate (the router's WAN
/// address can change).
pub type External = Box<dyn Fn() -> Option<Ipv4Addr>>;

/// One relay port's socket and the task receiving on it (none until the
/// task is started).
type RelaySocket = (Rc<Async<UdpSocket>>, Option<Task<()>>);

struct RelaySockets {
    bind_ip: Option<IpAddr>,
    external: External,
    socks: HashMap<u16, RelaySocket>,
    /// Opened during the last call, waiting for their receiving task.
    fresh: Vec<u16>,
}

impl Sockets for RelaySockets {
    fn open(&mut self, port: u16, client: SocketAddr) -> Option<SocketAddr> {
        // The relayed address is the local address the client reached us on
        // (found by routing a connected socket towards the client).
        let ip = match self.bind_ip {
            Some(ip) => ip,
            None => {
                let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
                probe.connect(client).ok()?;
                probe.local_addr().ok()?.ip()
            }
        };
        let s = Async::<UdpSocket>::bind(SocketAddr::new(ip, port)).ok()?;
        let addr = s.get_ref().local_addr().ok()?;
        self.socks.insert(port, (Rc::new(s), None));
        self.fresh.push(port);
        // Behind a NAT: the WAN address, the same port (the router maps
        // the relay ports one to one).
        match (self.external)() {
            Some(wan) if addr.is_ipv4() => Some(SocketAddr::new(IpAddr::V4(wan), addr.port())),
            _ => Some(addr),
        }
    }

    fn close(&mut self, port: u16) {
        // Dropping the task cancels it; the socket goes with the last Rc.
        self.socks.remove(&port);
    }
}

struct State {
    turn: Turn,
    socks: RelaySockets,
}

/// Serve TURN on `listen` until the process ends.
pub async fn run(
    ex: Rc<LocalExecutor<'static>>,
    listen: Async<UdpSocket>,
    turn: Turn,
    bind_ip: Option<IpAddr>,
    external: External,
) {
    let listen = Rc::new(listen);
    let state = Rc::new(RefCell::new(State {
        turn,
        socks: RelaySockets {
            bind_ip,
            external,
            socks: HashMap::new(),
            fresh: Vec::new(),
        },
    }));
    let (wake_tx, wake_rx) = async_channel::bounded::<()>(1);
    ex.spawn(sweeper(state.clone(), wake_rx)).detach();
    let mut buf = vec![0u8; BUF];
    let mut n_batch = 0;
    loop {
        let Ok((n, from)) = listen.recv_from(&mut buf).await else {
            Timer::after(Duration::from_millis(10)).await;
            continue;
        };
        {
            let mut st = state.borrow_mut();
            let State { turn, socks } = &mut *st;
            let had = turn.allocations();
            let out = turn.from_client(now_secs(), from, &buf[..n], socks);
            match out {
                Some(Out::Client(to, bytes)) => {
                    let _ = listen.get_ref().send_to(&bytes, to);
                }
                Some(Out::Peer { port, peer, data }) => {
                    if let Some((s, _)) = socks.socks.get(&port) {
                        let _ = s.get_ref().send_to(&data, peer);
                    }
                }
                None => {}
            }
            for port in std::mem::take(&mut socks.fresh) {
                if let Some(entry) = socks.socks.get_mut(&port) {
                    let t = ex.spawn(relay_loop(
                        state.clone(),
                        listen.clone(),
                        entry.0.clone(),
                        port,
                    ));
                    entry.1 = Some(t);
                }
            }
            if had == 0 && turn.allocations() > 0 {
                let _ = wake_tx.try_send(());
            }
        }
        n_batch += 1;
        if n_batch == BATCH {
            n_batch = 0;
            futures_lite::future::yield_now().await;
        }
    }
}

/// Datagrams from peers on one relay port go to the allocation's client.
async fn relay_loop(
    state: Rc<RefCell<State>>,
    listen: Rc<Async<UdpSocket>>,
    sock: Rc<Async<UdpSocket>>,
    port: u16,
) {
    let mut buf = vec![0u8; BUF];
    let mut n_batch = 0;
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            Timer::after(Duration::from_millis(10)).await;
            continue;
        };
        let out = state
            .borrow_mut()
            .turn
            .from_peer(now_secs(), port, from, &buf[..n]);
        if let Some((client, bytes)) = out {
            let _ = listen.get_ref().send_to(&bytes, client);
        }
        n_batch += 1;
        if n_batch == BATCH {
            n_batch = 0;
            futures_lite::future::yield_now().await;
        }
    }
}

/// Sleeps while there are no allocations; sweeps every [`SWEEP`] otherwise.
async fn sweeper(state: Rc<RefCell<State>>, wake: async_channel::Receiver<()>) {
    loop {
        if state.borrow().turn.allocations() == 0 && wake.recv().await.is_err() {
            return;
        }
        Timer::after(SWEEP).await;
        let mut st = state.borrow_mut();
        let State { turn, socks } = &mut *st;
        let n = turn.expire(now_secs(), socks);
        if n > 0 {
            log::debug!("turn: {n} allocations expired, {} live", turn.allocations());
        }
    }
}
