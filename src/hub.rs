//! In-process change notifications: a delivery, expunge or flag change in a
//! mailbox wakes every session that has it selected (IMAP IDLE), without polling.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// mailbox id -> (subscription id, wake-up sender)
type Subscribers = HashMap<u64, Vec<(u64, async_channel::Sender<()>)>>;

#[derive(Default)]
pub struct Hub {
    subs: RefCell<Subscribers>,
    next: Cell<u64>,
}

/// A session's interest in one mailbox; unsubscribes on drop.
pub struct Subscription {
    hub: Rc<Hub>,
    mailbox: u64,
    id: u64,
    pub rx: async_channel::Receiver<()>,
}

impl Hub {
    pub fn subscribe(self: &Rc<Self>, mailbox: u64) -> Subscription {
        let id = self.next.get() + 1;
        self.next.set(id);
        // Capacity 1: several changes before the session looks coalesce into one wake-up.
        let (tx, rx) = async_channel::bounded(1);
        self.subs
            .borrow_mut()
            .entry(mailbox)
            .or_default()
            .push((id, tx));
        Subscription {
            hub: self.clone(),
            mailbox,
            id,
            rx,
        }
    }

    /// Wake every subscriber of `mailbox` except `except` (the session that made the change).
    pub fn notify(&self, mailbox: u64, except: Option<u64>) {
        if let Some(v) = self.subs.borrow().get(&mailbox) {
            for (id, tx) in v {
                if Some(*id) != except {
                    let _ = tx.try_send(());
                }
            }
        }
    }

    pub fn subscribers(&self) -> usize {
        self.subs.borrow().values().map(|v| v.len()).sum()
    }
}

impl Subscription {
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn mailbox(&self) -> u64 {
        self.mailbox
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self.hub.subs.borrow_mut();
        if let Some(v) = subs.get_mut(&self.mailbox) {
            v.retain(|(id, _)| *id != self.id);
            if v.is_empty() {
                subs.remove(&self.mailbox);
            }
        }
    }
}
