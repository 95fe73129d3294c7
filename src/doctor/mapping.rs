//! The port mapping state as the running relay reports it over the control
//! socket (`router` command) and `chatrelay doctor` reads it back: one
//! line `method|WAN address|PROTO PORT STATE[ DETAIL];…`, no I/O. The
//! router service fills it (`crate::relay::router_state`).

use std::net::Ipv4Addr;

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

/// The control socket line for the router's state.
pub fn line(method: &str, wan: Option<Ipv4Addr>, ports: &[PortReport]) -> String {
    let wan = wan.map(|a| a.to_string()).unwrap_or("-".into());
    let ports: Vec<String> = ports.iter().map(report_text).collect();
    format!(
        "{}|{wan}|{}",
        method.replace(['|', '\n'], " "),
        ports.join(";")
    )
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
        let ports = vec![
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
        ];
        let text = line("PCP", Some("11.13.1.2".parse().unwrap()), &ports);
        let (m, wan, back) = parse_line(&text).unwrap();
        assert_eq!(m, "PCP");
        assert_eq!(wan, Some("11.13.1.2".parse().unwrap()));
        assert_eq!(back, ports);
        assert!(parse_line("garbage").is_none());
        assert_eq!(parse_line("x|-|TCP x y;;UDP 1 what").unwrap().2, vec![]);
    }
}
