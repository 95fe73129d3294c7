//! The connected relay clients by node key, each with its bounded send
//! queue, and the forwarding between them (iroh-relay `server/clients.rs`
//! semantics: a packet for a key that is not connected is dropped; when a
//! client leaves, every peer it sent to gets PeerGone).
//!
//! Memory only, for as long as a connection lives; keys are never logged.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::frame::{self, Frame, Key};
use crate::relay::stats::{add, Realtime};

/// Bytes of frames waiting for one client. Beyond it packets are dropped,
/// never buffered (a client that does not read costs at most this plus the
/// one batch being written).
pub const QUEUE_BYTES: usize = 256 * 1024;
/// Peers one client's PeerGone list remembers (more are not tracked).
pub const MAX_SENT_TO: usize = 1024;

/// The frames waiting to be written to one client, as one wire buffer.
pub struct Outbox {
    buf: RefCell<Vec<u8>>,
    /// Set when the connection must end after the queue is written; the
    /// text went out as a Health frame.
    closing: Cell<bool>,
    wake_tx: async_channel::Sender<()>,
    wake_rx: async_channel::Receiver<()>,
}

impl Default for Outbox {
    fn default() -> Outbox {
        let (wake_tx, wake_rx) = async_channel::bounded(1);
        Outbox {
            buf: RefCell::new(Vec::new()),
            closing: Cell::new(false),
            wake_tx,
            wake_rx,
        }
    }
}

impl Outbox {
    /// Queue a frame unless that would pass [`QUEUE_BYTES`]; false = dropped.
    pub fn push(&self, f: &Frame<'_>) -> bool {
        if self.closing.get() {
            return false;
        }
        let mut b = self.buf.borrow_mut();
        let len = frame::HEADER_LEN
            + match f {
                Frame::RecvPacket { data, .. } => frame::KEY_LEN + data.len(),
                _ => 64,
            };
        if b.len() + len > QUEUE_BYTES {
            return false;
        }
        frame::encode(f, &mut b);
        drop(b);
        let _ = self.wake_tx.try_send(());
        true
    }

    /// Queue a Health frame with `problem` (past the byte limit: it is
    /// small and the last one) and end the connection once it is written.
    pub fn close_with(&self, problem: &str) {
        if self.closing.replace(true) {
            return;
        }
        frame::encode(
            &Frame::Health(problem.as_bytes()),
            &mut self.buf.borrow_mut(),
        );
        let _ = self.wake_tx.try_send(());
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// Everything queued so far (the queue is empty afterwards).
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.buf.borrow_mut())
    }

    pub fn is_empty(&self) -> bool {
        self.buf.borrow().is_empty()
    }

    /// Wait until something was queued or the connection is closing.
    pub async fn wait(&self) {
        if self.is_empty() && !self.closing.get() {
            let _ = self.wake_rx.recv().await;
        }
    }
}

struct Entry {
    id: u64,
    outbox: Rc<Outbox>,
    /// Keys this client sent packets to (told PeerGone when it leaves).
    sent_to: HashSet<Key>,
}

/// What happened to a SendPacket.
#[derive(Debug, PartialEq, Eq)]
pub enum Forward {
    Sent,
    QueueFull,
    Unknown,
}

#[derive(Default)]
pub struct Registry {
    clients: RefCell<HashMap<Key, Entry>>,
    next_id: Cell<u64>,
}

impl Registry {
    /// Register a verified key. A connection that already holds the key is
    /// told so and closed (one connection per node key, as upstream).
    pub fn register(&self, key: Key) -> (u64, Rc<Outbox>) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let outbox = Rc::new(Outbox::default());
        let old = self.clients.borrow_mut().insert(
            key,
            Entry {
                id,
                outbox: outbox.clone(),
                sent_to: HashSet::new(),
            },
        );
        if let Some(old) = old {
            old.outbox
                .close_with("another connection with this node key replaced this one");
        }
        (id, outbox)
    }

    /// The connection `id` of `key` ended: forget it and tell the peers it
    /// sent to that it is gone.
    pub fn unregister(&self, key: &Key, id: u64) {
        let mut clients = self.clients.borrow_mut();
        if clients.get(key).map(|e| e.id) != Some(id) {
            return; // replaced by a newer connection
        }
        let gone = clients.remove(key).expect("present");
        for peer in &gone.sent_to {
            if let Some(p) = clients.get(peer) {
                p.outbox.push(&Frame::PeerGone(key));
            }
        }
    }

    /// Forward `data` from `src` to `dst` as a RecvPacket.
    pub fn forward(&self, stats: &Realtime, src: &Key, dst: &Key, data: &[u8]) -> Forward {
        let mut clients = self.clients.borrow_mut();
        let Some(to) = clients.get(dst) else {
            add(&stats.iroh_dropped_unknown, 1);
            return Forward::Unknown;
        };
        if !to.outbox.push(&Frame::RecvPacket { src, data }) {
            add(&stats.iroh_dropped_full, 1);
            return Forward::QueueFull;
        }
        add(&stats.iroh_packets, 1);
        add(&stats.iroh_bytes, data.len() as u64);
        if let Some(from) = clients.get_mut(src) {
            if from.sent_to.len() < MAX_SENT_TO && from.sent_to.insert(*dst) {
                add(&stats.iroh_pairs, 1);
            }
        }
        Forward::Sent
    }

    pub fn len(&self) -> usize {
        self.clients.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((f, n)) = frame::decode(b).unwrap() {
            out.push(frame::to_vec(&f));
            b = &b[n..];
        }
        assert!(b.is_empty());
        out
    }

    #[test]
    fn forward_drop_and_peer_gone() {
        let s = Realtime::default();
        let r = Registry::default();
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let (ida, qa) = r.register(a);
        let (_, qb) = r.register(b);
        assert_eq!(r.forward(&s, &a, &b, b"hi"), Forward::Sent);
        assert_eq!(r.forward(&s, &a, &b, b"again"), Forward::Sent);
        assert_eq!(r.forward(&s, &a, &c, b"nobody"), Forward::Unknown);
        assert_eq!(
            frames(&qb.take()),
            vec![
                frame::to_vec(&Frame::RecvPacket {
                    src: &a,
                    data: b"hi"
                }),
                frame::to_vec(&Frame::RecvPacket {
                    src: &a,
                    data: b"again"
                }),
            ]
        );
        assert_eq!(
            (s.iroh_packets.get(), s.iroh_bytes.get(), s.iroh_pairs.get()),
            (2, 7, 1)
        );
        r.unregister(&a, ida);
        assert_eq!(
            frames(&qb.take()),
            vec![frame::to_vec(&Frame::PeerGone(&a))]
        );
        assert!(qa.is_empty());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn queue_is_bounded() {
        let s = Realtime::default();
        let r = Registry::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        r.register(a);
        let (_, qb) = r.register(b);
        let data = vec![0u8; 60_000];
        let sent = (0..100)
            .filter(|_| r.forward(&s, &a, &b, &data) == Forward::Sent)
            .count();
        assert_eq!(sent, QUEUE_BYTES / (60_000 + 37));
        assert!(qb.take().len() <= QUEUE_BYTES);
        assert_eq!(s.iroh_dropped_full.get(), 100 - sent as u64);
    }

    #[test]
    fn same_key_replaces_old_connection() {
        let r = Registry::default();
        let k = [5u8; 32];
        let (id1, q1) = r.register(k);
        let (id2, q2) = r.register(k);
        assert!(q1.is_closing() && !q2.is_closing());
        r.unregister(&k, id1); // the old one ending removes nothing
        assert_eq!(r.len(), 1);
        r.unregister(&k, id2);
        assert!(r.is_empty());
    }
}
