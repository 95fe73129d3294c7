//! What the router told the relay (issue 13): its WAN address and the state
//! of every port mapping. The router service writes it; DDNS (the `myip`
//! of IPv4 updates), TURN (`turn_external_ip = auto`) and `chatrelay
//! doctor` (through the control socket) read it. Memory only.

use std::cell::{Cell, RefCell};
use std::net::Ipv4Addr;

use crate::doctor::address::{classify, AddressKind};

/// One port the relay wants mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortReport {
    /// `TCP` or `UDP`.
    pub proto: &'static str,
    pub port: u16,
    pub state: PortState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    /// Not asked yet (or no router answered).
    NotTried,
    /// Forwarded from `external` on the WAN side, by `by` (PCP, NAT-PMP,
    /// UPnP-IGD).
    Mapped { external: u16, by: &'static str },
    /// The router said no: its reason (e.g. `718 ConflictInMappingEntry`).
    Refused(String),
}

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
    /// [`parse_line`]: `method|wan|PROTO PORT STATE[ DETAIL];…`.
    pub fn line(&self) -> String {
        let wan = self.wan().map(|a| a.to_string()).unwrap_or("-".into());
        let ports: Vec<String> = self.ports.borrow().iter().map(report_text).collect();
        format!(
            "{}|{wan}|{}",
            self.method.borrow().replace(['|', '\n'], " "),
            ports.join(";")
        )
    }
}

fn report_text(r: &PortReport) -> String {
    match &r.state {
        PortState::NotTried => format!("{} {} not-tried", r.proto, r.port),
        PortState::Mapped { external, by } => {
            format!("{} {} mapped {external} {by}", r.proto, r.port)
        }
        PortState::Refused(why) => format!(
            "{} {} refused {}",
            r.proto,
            r.port,
            why.replace([';', '|', '\n'], " ")
        ),
    }
}

/// The control socket's `router` answer as data: (method, WAN, ports).
/// Unknown entries are skipped.
pub fn parse_line(line: &str) -> Option<(String, Option<Ipv4Addr>, Vec<PortReport>)> {
    let mut parts = line.splitn(3, '|');
    let method = parts.next()?.to_string();
    let wan = parts.next()?.parse().ok();
    let mut ports = Vec::new();
    for e in parts
        .next()?
        .split(';')
        .filter(|e| !e.is_empty())
        .take(70_000)
    {
        let mut w = e.splitn(4, ' ');
        let proto = match w.next() {
            Some("TCP") => "TCP",
            Some("UDP") => "UDP",
            _ => continue,
        };
        let Some(Ok(port)) = w.next().map(str::parse::<u16>) else {
            continue;
        };
        let kind = w.next();
        let rest = w.next().unwrap_or("");
        let state = match kind {
            Some("not-tried") => PortState::NotTried,
            Some("mapped") => {
                let (ext, by) = rest.split_once(' ').unwrap_or((rest, ""));
                PortState::Mapped {
                    external: ext.parse().unwrap_or(port),
                    by: match by {
                        "PCP" => "PCP",
                        "NAT-PMP" => "NAT-PMP",
                        _ => "UPnP-IGD",
                    },
                }
            }
            Some("refused") => PortState::Refused(rest.to_string()),
            _ => continue,
        };
        ports.push(PortReport { proto, port, state });
    }
    Some((method, wan, ports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trip() {
        let s = RouterState::default();
        s.set_wan("11.13.1.2".parse().unwrap());
        s.set_ports(
            "PCP",
            vec![
                PortReport {
                    proto: "TCP",
                    port: 25,
                    state: PortState::Refused("718 ConflictInMappingEntry".into()),
                },
                PortReport {
                    proto: "TCP",
                    port: 993,
                    state: PortState::Mapped {
                        external: 993,
                        by: "PCP",
                    },
                },
                PortReport {
                    proto: "UDP",
                    port: 3478,
                    state: PortState::NotTried,
                },
            ],
        );
        let (m, wan, ports) = parse_line(&s.line()).unwrap();
        assert_eq!(m, "PCP");
        assert_eq!(wan, Some("11.13.1.2".parse().unwrap()));
        assert_eq!(ports, s.ports());
        assert!(parse_line("garbage").is_none());
        assert_eq!(parse_line("x|-|TCP x y;;UDP 1 what").unwrap().2, vec![]);
    }

    #[test]
    fn public_wan_only() {
        let s = RouterState::default();
        s.set_wan("100.64.1.1".parse().unwrap());
        assert_eq!(s.public_wan(), None);
        s.set_wan("11.13.1.2".parse().unwrap());
        assert_eq!(s.public_wan(), Some("11.13.1.2".parse().unwrap()));
    }
}
