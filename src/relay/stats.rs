//! Counters of the realtime services (the iroh relay). Numbers only: no
//! key, no address, nothing stored; the control socket's `stats` command
//! prints them (`Realtime::line`).

use std::cell::Cell;
use std::rc::Rc;

#[derive(Default)]
pub struct Realtime {
    /// iroh relay clients connected now (also the slot counter for
    /// `iroh_relay_max_clients`).
    pub iroh_clients: Rc<Cell<usize>>,
    /// Handshakes whose ClientInfo verified (client keys accepted).
    pub iroh_accepted: Cell<u64>,
    /// Upgraded connections closed for a bad handshake.
    pub iroh_refused: Cell<u64>,
    /// SendPacket frames forwarded as RecvPacket, and their data bytes.
    pub iroh_packets: Cell<u64>,
    pub iroh_bytes: Cell<u64>,
    /// Packets dropped: destination's queue full / destination not connected.
    pub iroh_dropped_full: Cell<u64>,
    pub iroh_dropped_unknown: Cell<u64>,
    /// Distinct (sender, receiver) key pairs that had a packet forwarded,
    /// counted when a pair is first seen during the sender's connection.
    pub iroh_pairs: Cell<u64>,
}

pub fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get().saturating_add(n));
}

impl Realtime {
    /// `key=value` pairs on one line.
    pub fn line(&self) -> String {
        format!(
            "iroh_clients={} iroh_accepted={} iroh_refused={} iroh_packets={} iroh_bytes={} \
             iroh_dropped_full={} iroh_dropped_unknown={} iroh_pairs={}",
            self.iroh_clients.get(),
            self.iroh_accepted.get(),
            self.iroh_refused.get(),
            self.iroh_packets.get(),
            self.iroh_bytes.get(),
            self.iroh_dropped_full.get(),
            self.iroh_dropped_unknown.get(),
            self.iroh_pairs.get(),
        )
    }
}
