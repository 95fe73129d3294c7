//! What the router told the relay (issue 13): its WAN address and the state
//! of every port mapping. The router service writes it; DDNS (the `myip`
//! of IPv4 updates), TURN (`turn_external_ip = auto`) and `chatrelay
//! doctor` (through the control socket) read it. Memory only.

use std::cell::{Cell, RefCell};
use std::net::Ipv4Addr;

use crate::doctor::address::{classify, AddressKind};
pub use crate::doctor::mapping::{PortReport, PortState};

pub struct RouterState {
    wan: Cell<Option<Ipv4Addr>>,
    changed_tx: async_channel::Sender<()>,
    changed_rx: async_channel::Receiver<()>,
    ports: RefCell<Vec<PortReport>>,
    /// How the router was reached (`PCP`, `NAT-PMP`, `UPnP-IGD`), or why
    /// not.
    method: RefCell<String>,
}

impl Default for RouterState {
    fn default() -> RouterState {
        let (changed_tx, changed_rx) = async_channel::bounded(1);
        RouterState {
            wan: Cell::new(None),
            changed_tx,
            changed_rx,
            ports: RefCell::new(Vec::new()),
            method: RefCell::new("not asked yet".into()),
        }
    }
}

impl RouterState {
    /// The WAN address the router reported last.
    pub fn wan(&self) -> Option<Ipv4Addr> {
        self.wan.get()
    }

    /// The WAN address when it is public (reachable from the Internet).
    pub fn public_wan(&self) -> Option<Ipv4Addr> {
        self.wan
            .get()
            .filter(|a| classify((*a).into()) == AddressKind::Public)
    }

    /// A new report; wakes [`RouterState::changed`] when the address moved.
    pub fn set_wan(&self, wan: Ipv4Addr) {
        if self.wan.replace(Some(wan)) != Some(wan) {
            let _ = self.changed_tx.try_send(());
        }
    }

    /// Resolves after the WAN address changed (one waiter: DDNS).
    pub async fn changed(&self) {
        let _ = self.changed_rx.recv().await;
    }

    pub fn set_ports(&self, method: &str, ports: Vec<PortReport>) {
        *self.method.borrow_mut() = method.to_string();
        *self.ports.borrow_mut() = ports;
    }

    pub fn set_method(&self, method: &str) {
        *self.method.borrow_mut() = method.to_string();
    }

    pub fn ports(&self) -> Vec<PortReport> {
        self.ports.borrow().clone()
    }

    /// One line for the control socket (`router` command), read back by
    /// `chatrelay doctor` ([`crate::doctor::mapping::parse_line`]).
    pub fn line(&self) -> String {
        crate::doctor::mapping::line(&self.method.borrow(), self.wan(), &self.ports.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_wan_only() {
        let s = RouterState::default();
        s.set_wan("100.64.1.1".parse().unwrap());
        assert_eq!(s.public_wan(), None);
        s.set_wan("11.13.1.2".parse().unwrap());
        assert_eq!(s.public_wan(), Some("11.13.1.2".parse().unwrap()));
    }
}
