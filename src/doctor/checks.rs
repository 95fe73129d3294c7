//! The individual checks of `chatrelay doctor`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::address::{classify, AddressKind};
use super::Check;
use crate::clock::{format_utc, CLOCK_FLOOR};
use crate::config::{Config, TlsMode};
use crate::dns::{DnsError, MxResult, Resolver};

pub fn clock(cfg: &Config, now: i64) -> Check {
    if now < CLOCK_FLOOR {
        return Check::problem(
            "clock",
            format!("the clock says {}: not set", format_utc(now)),
            "let the box reach an NTP server (UDP 123); certificates and DKIM need true time",
        );
    }
    match &cfg.clock_synced_file {
        Some(p) if !p.exists() => Check::problem(
            "clock",
            format!(
                "{}, but not synchronised yet ({} missing)",
                format_utc(now),
                p.display()
            ),
            "let the box reach an NTP server (UDP 123)",
        ),
        _ => Check::ok("clock", format_utc(now)),
    }
}

fn dns_err(e: &DnsError) -> String {
    match e {
        DnsError::NxDomain => "the name does not exist".into(),
        DnsError::Timeout => "no answer from the resolver".into(),
        other => format!("{other:?}"),
    }
}

/// DNS records as `chatrelay dns` prints them; returns the A addresses.
pub async fn dns(cfg: &Config, r: &Resolver, out: &mut Vec<Check>) -> Vec<IpAddr> {
    if cfg.ip_literal.is_some() || cfg.mail_domain.starts_with('_') {
        out.push(Check::ok(
            "dns.a",
            "no DNS needed (IP-literal or `_` domain)",
        ));
        return cfg.ip_literal.map(IpAddr::V4).into_iter().collect();
    }
    let d = cfg.mail_domain.clone();
    let publish = "publish the records `chatrelay dns` prints";
    let mut addrs: Vec<IpAddr> = Vec::new();
    match r.ipv4(&d).await {
        Ok(v) if !v.is_empty() => {
            addrs.extend(v.iter().map(|a| IpAddr::V4(*a)));
            let list: Vec<String> = v.iter().map(|a| a.to_string()).collect();
            out.push(Check::ok("dns.a", format!("{d} A {}", list.join(" "))));
        }
        Ok(_) => out.push(Check::problem(
            "dns.a",
            format!("{d} has no A record"),
            publish,
        )),
        Err(e) => out.push(Check::problem(
            "dns.a",
            format!("{d} A: {}", dns_err(&e)),
            publish,
        )),
    }
    if let Ok(v6) = r.ipv6(&d).await {
        addrs.extend(v6.iter().map(|a| IpAddr::V6(*a)));
    }
    out.push(match r.mx(&d).await {
        Ok(MxResult::Hosts(h)) if h.iter().any(|(_, n)| n.eq_ignore_ascii_case(&d)) => {
            Check::ok("dns.mx", format!("{d} MX {d}"))
        }
        Ok(MxResult::Hosts(h)) => Check::problem(
            "dns.mx",
            format!(
                "{d} MX points to {} instead of {d}",
                h.iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("set the MX record of {d} to `10 {d}.`"),
        ),
        Ok(_) => Check::problem(
            "dns.mx",
            format!("{d} has no MX record"),
            format!("add `{d}. MX 10 {d}.`"),
        ),
        Err(e) => Check::problem("dns.mx", format!("{d} MX: {}", dns_err(&e)), publish),
    });
    let dkim_name = format!("{}._domainkey.{d}", cfg.dkim_selector);
    let (dir, sel, ed) = (
        cfg.data_dir.clone(),
        cfg.dkim_selector.clone(),
        cfg.dkim_ed25519,
    );
    let want = blocking::unblock(move || {
        crate::dkim::SigningKey::load_or_generate(&dir, &sel, ed)
            .map(|k| k.dns_record())
            .map_err(|e| e.to_string())
    })
    .await;
    let have = r.txt(&dkim_name).await;
    out.push(match (&want, &have) {
        (Err(e), _) => Check::problem("dns.dkim", format!("DKIM key: {e}"), "check data_dir"),
        (Ok(w), Ok(txts)) if txts.iter().any(|t| same_dkim(t, w)) => {
            Check::ok("dns.dkim", format!("{dkim_name} TXT matches the key"))
        }
        (Ok(_), Ok(txts)) if txts.iter().any(|t| t.contains("v=DKIM1")) => Check::problem(
            "dns.dkim",
            format!("{dkim_name} TXT holds another key"),
            "replace it with the TXT record `chatrelay dns` prints",
        ),
        (Ok(_), res) => Check::problem(
            "dns.dkim",
            format!(
                "{dkim_name} has no DKIM TXT record{}",
                match res {
                    Err(e) => format!(" ({})", dns_err(e)),
                    _ => String::new(),
                }
            ),
            "add the TXT record `chatrelay dns` prints (other servers reject unsigned mail)",
        ),
    });
    out.push(
        txt_check(
            r,
            "dns.spf",
            &d,
            "v=spf1",
            &format!("add `{d}. TXT \"v=spf1 a ~all\"`"),
        )
        .await,
    );
    out.push(
        txt_check(
            r,
            "dns.dmarc",
            &format!("_dmarc.{d}"),
            "v=DMARC1",
            &format!("add `_dmarc.{d}. TXT \"v=DMARC1;p=reject;adkim=s;aspf=s\"`"),
        )
        .await,
    );
    for (id, sub) in [("dns.mta-sts", "mta-sts"), ("dns.www", "www")] {
        let name = format!("{sub}.{d}");
        out.push(match r.ipv4(&name).await {
            Ok(v) if !v.is_empty() => Check::ok(id, format!("{name} resolves")),
            Ok(_) => Check::problem(
                id,
                format!("{name} has no address"),
                format!("add `{name}. CNAME {d}.`"),
            ),
            Err(e) => Check::problem(
                id,
                format!("{name}: {}", dns_err(&e)),
                format!("add `{name}. CNAME {d}.`"),
            ),
        });
    }
    addrs
}

/// Same DKIM key: the `p=` tags are equal (spaces ignored, RFC 6376 §3.6.1).
fn same_dkim(have: &str, want: &str) -> bool {
    let p = |s: &str| -> Option<String> {
        s.split(';')
            .map(|t| t.trim())
            .find_map(|t| t.strip_prefix("p="))
            .map(|v| v.chars().filter(|c| !c.is_whitespace()).collect())
    };
    p(have).is_some() && p(have) == p(want)
}

async fn txt_check(r: &Resolver, id: &'static str, name: &str, prefix: &str, todo: &str) -> Check {
    match r.txt(name).await {
        Ok(v) if v.iter().any(|t| t.trim_start().starts_with(prefix)) => {
            Check::ok(id, format!("{name} TXT {prefix}…"))
        }
        Ok(_) => Check::problem(id, format!("{name} has no {prefix} TXT record"), todo),
        Err(e) => Check::problem(id, format!("{name}: {}", dns_err(&e)), todo),
    }
}

pub fn certificate(cfg: &Config, now: i64) -> Check {
    let facts = match &cfg.tls_mode {
        TlsMode::SelfSigned if !cfg.acme_wanted() => {
            return Check::ok("certificate", "self-signed (IP-literal or `_` domain: clients accept it)")
        }
        TlsMode::External { cert, .. } => std::fs::read(cert)
            .map_err(|e| format!("cannot read {}: {e}", cert.display()))
            .and_then(|pem| {
                use rustls::pki_types::pem::PemObject;
                let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem)
                    .map_err(|e| format!("{}: {e}", cert.display()))?;
                crate::tls::store::leaf_facts(&der).map_err(|e| e.to_string())
            }),
        TlsMode::SelfSigned | TlsMode::Acme => match crate::tls::store::load_issued(&cfg.data_dir) {
            Ok(Some(i)) => Ok((i.not_before, i.not_after, i.names)),
            Ok(None) => {
                return Check::problem(
                    "certificate",
                    "no ACME certificate yet (the self-signed one serves meanwhile)",
                    "port 443 must be reachable from the Internet and every name must point here; see the relay's log for ACME errors",
                )
            }
            Err(e) => Err(e.to_string()),
        },
    };
    match facts {
        Err(e) => Check::problem(
            "certificate",
            e,
            "the relay orders a new one by itself (ACME) or fix the files",
        ),
        Ok((_, na, names)) if now > na => Check::problem(
            "certificate",
            format!("expired {} ({})", format_utc(na), names.join(", ")),
            "renewal failed: see the relay's log for ACME errors",
        ),
        Ok((nb, _, _)) if now < nb => Check::problem(
            "certificate",
            format!("not valid before {}", format_utc(nb)),
            "check the clock",
        ),
        Ok((_, na, names)) => Check::ok(
            "certificate",
            format!(
                "valid until {} ({} days) for {}",
                format_utc(na),
                (na - now) / 86400,
                names.join(", ")
            ),
        ),
    }
}

/// The router (NAT-PMP, RFC 6886 §3.2), asked only when port mapping is on
/// or `router_address` is set: whether it answers, and its WAN address.
pub async fn router(cfg: &Config) -> (Check, Option<std::net::Ipv4Addr>) {
    let by_hand = "forward TCP 25 80 443 465 587 143 993 on the router to this box by hand";
    let gw = match (cfg.port_mapping, cfg.router_address) {
        (_, Some(r)) => r,
        (true, None) => match crate::natpmp::gateway::default_gateway() {
            Some(g) => g,
            None => {
                return (
                    Check::problem("router", "no default gateway", "check the network"),
                    None,
                )
            }
        },
        (false, None) => {
            return (
                Check::unknown(
                    "router",
                    "port_mapping is off: the router was not asked",
                    by_hand,
                ),
                None,
            )
        }
    };
    match crate::natpmp::external_address(gw).await {
        Ok((_, wan)) => (
            Check::ok(
                "router",
                format!("the router {gw} answers NAT-PMP; WAN address {wan}"),
            ),
            Some(wan),
        ),
        Err(e) => (
            Check::problem(
                "router",
                format!("the router {gw} does not answer NAT-PMP ({e})"),
                format!("enable NAT-PMP/UPnP on the router, or {by_hand}"),
            ),
            None,
        ),
    }
}

/// The router as the running relay reached it (its control socket).
pub fn router_from_relay(
    method: &str,
    wan: Option<std::net::Ipv4Addr>,
) -> (Check, Option<std::net::Ipv4Addr>) {
    let wan_text = wan
        .map(|w| format!("; WAN address {w}"))
        .unwrap_or_default();
    match method {
        "PCP" | "NAT-PMP" | "UPnP-IGD" => (
            Check::ok("router", format!("the relay maps ports by {method}{wan_text}")),
            wan,
        ),
        // The first round is still under way (up to ~11 s after start).
        "no answer from the router yet" | "not asked yet" => (
            Check::unknown(
                "router",
                "the router has not answered yet (the relay just started)",
                "run doctor again in a minute",
            ),
            wan,
        ),
        other => (
            Check::problem(
                "router",
                format!("the relay got no port mapping from the router: {other}{wan_text}"),
                "enable UPnP-IGD, NAT-PMP or PCP on the router, or forward the ports `chatrelay dns` lists by hand",
            ),
            wan,
        ),
    }
}

/// Which ports the router maps for the relay, from the running relay:
/// mapped / refused (with the router's reason) / not tried, one line per
/// port or per run of neighbouring ports in the same state (the TURN relay
/// range).
pub fn mapping(cfg: &Config, ports: Option<&[super::mapping::PortReport]>) -> Vec<Check> {
    use super::mapping::PortState;
    if !cfg.port_mapping {
        return vec![Check::unknown(
            "mapping",
            "port_mapping is off: the relay maps no ports",
            "forward the ports `chatrelay dns` lists by hand, or set port_mapping = auto",
        )];
    }
    let Some(ports) = ports else {
        return vec![Check::unknown(
            "mapping",
            "the relay is not running: which ports the router maps is not known",
            "start the relay (chatrelay serve), then run doctor again",
        )];
    };
    // Runs of neighbouring ports with the same state.
    let mut runs: Vec<(&str, u16, u16, &PortState)> = Vec::new();
    for p in ports {
        // Mapped ports join a run only when they keep their own number.
        let same = |s: &PortState, lo: u16| match (s, &p.state) {
            (
                PortState::Mapped { external: a, by: x },
                PortState::Mapped { external: b, by: y },
            ) => x == y && *a == lo && *b == p.port,
            (a, b) => a == b,
        };
        match runs.last_mut() {
            Some(r) if r.0 == p.proto && r.2.checked_add(1) == Some(p.port) && same(r.3, r.1) => {
                r.2 = p.port
            }
            _ => runs.push((p.proto, p.port, p.port, &p.state)),
        }
    }
    runs.into_iter()
        .map(|(proto, lo, hi, state)| {
            let what = match lo == hi {
                true => format!("{proto} {lo}"),
                false => format!("{proto} {lo}-{hi}"),
            };
            match state {
                PortState::Mapped { external, by } if *external == lo => {
                    Check::ok("mapping", format!("{what}: mapped by {by}"))
                }
                PortState::Mapped { external, by } => Check::problem(
                    "mapping",
                    format!("{what}: mapped by {by} from external port {external}, not {lo}"),
                    format!("the router holds {proto} {lo} for another device: free it there (clients and servers use the standard port)"),
                ),
                PortState::Refused(why) => Check::problem(
                    "mapping",
                    format!("{what}: refused by the router ({why})"),
                    if why.contains("718") || why.contains("CANNOT_PROVIDE_EXTERNAL") {
                        "another device holds this port on the router: free it there, or forward it by hand"
                    } else {
                        "allow port mapping for this box on the router, or forward the port by hand"
                    },
                ),
                PortState::NotTried => Check::unknown(
                    "mapping",
                    format!("{what}: not tried (the router did not answer)"),
                    "enable UPnP-IGD, NAT-PMP or PCP on the router, or forward the port by hand",
                ),
            }
        })
        .collect()
}

/// The address the world reaches the relay at: the router's WAN address
/// when it told us, and the domain's A/AAAA (or the IP literal).
pub fn wan(cfg: &Config, published: &[IpAddr], router_wan: Option<std::net::Ipv4Addr>) -> Check {
    if cfg.mail_domain.starts_with('_') {
        return Check::ok("wan", "`_` domain: local network only");
    }
    let mut addrs: Vec<IpAddr> = router_wan.map(IpAddr::V4).into_iter().collect();
    for a in published {
        if !addrs.contains(a) {
            addrs.push(*a);
        }
    }
    if addrs.is_empty() {
        return Check::unknown("wan", "no address published", "publish the A record first");
    }
    let mut bad = Vec::new();
    for &a in &addrs {
        match classify(a) {
            AddressKind::Public => {}
            AddressKind::Private => bad.push(format!("{a} is a private address")),
            AddressKind::Cgnat => bad.push(format!(
                "{a} is a carrier-grade NAT address (100.64.0.0/10)"
            )),
        }
    }
    if bad.is_empty() {
        let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        return Check::ok("wan", format!("public: {}", list.join(" ")));
    }
    let cgnat = bad.iter().any(|b| b.contains("carrier-grade"));
    Check::problem(
        "wan",
        format!(
            "{}: connections from the Internet cannot reach it",
            bad.join("; ")
        ),
        if cgnat {
            "ask the provider for a public IPv4 address (or IPv6 with inbound), or run the relay on a rented server"
        } else {
            "publish the router's public address, not the LAN address"
        },
    )
}

/// Every configured port accepts a connection on the listen address.
pub async fn ports(cfg: &Config) -> Check {
    let ip = cfg
        .listen_address
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let list = [
        cfg.smtp_port,
        cfg.submission_port,
        cfg.submissions_port,
        cfg.imap_port,
        cfg.imaps_port,
        cfg.https_port,
        cfg.http_port,
    ];
    let mut closed = Vec::new();
    let mut open = Vec::new();
    for p in list.into_iter().filter(|p| *p != 0) {
        let c = async_net::TcpStream::connect(SocketAddr::new(ip, p));
        match crate::net::timeout(Duration::from_secs(2), c).await {
            Some(Ok(_)) => open.push(p.to_string()),
            _ => closed.push(p.to_string()),
        }
    }
    if closed.is_empty() {
        Check::ok("ports", format!("listening on {}", open.join(" ")))
    } else {
        Check::problem(
            "ports",
            format!("nothing listens on {} at {ip}", closed.join(" ")),
            "start the relay (chatrelay serve); another program may hold the port",
        )
    }
}

pub fn privacy(cfg: &Config) -> Check {
    let missing: Vec<&str> = [
        ("privacy_postal", &cfg.privacy_postal),
        ("privacy_mail", &cfg.privacy_mail),
        ("privacy_pdo", &cfg.privacy_pdo),
        ("privacy_supervisor", &cfg.privacy_supervisor),
    ]
    .into_iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(k, _)| k)
    .collect();
    if missing.is_empty() {
        Check::ok("privacy", "operator contact for the privacy policy is set")
    } else {
        Check::problem(
            "privacy",
            format!("unset: {}", missing.join(", ")),
            "set them in chatmail.ini: the privacy policy names who runs the relay",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::mapping::{PortReport, PortState};
    use super::super::State;

    fn cfg() -> crate::config::Config {
        crate::config::Config::from_ini(
            "[params]\nmail_domain = example.org\nport_mapping = auto\n",
            None,
        )
        .unwrap()
    }

    fn p(proto: &'static str, port: u16, state: PortState) -> PortReport {
        PortReport { proto, port, state }
    }

    #[test]
    fn mapping_lines_group_runs_of_relay_ports() {
        let m = |ext| PortState::Mapped {
            external: ext,
            by: "PCP",
        };
        let ports = vec![
            p(
                "TCP",
                25,
                PortState::Refused("718 ConflictInMappingEntry".into()),
            ),
            p("TCP", 993, m(993)),
            p("TCP", 587, m(2587)),
            p("UDP", 3478, PortState::NotTried),
            p("UDP", 49152, m(49152)),
            p("UDP", 49153, m(49153)),
            p("UDP", 49154, m(49154)),
            p("UDP", 49155, PortState::Refused("8 NO_RESOURCES".into())),
            p("UDP", 49156, PortState::Refused("8 NO_RESOURCES".into())),
        ];
        let c = super::mapping(&cfg(), Some(&ports));
        let lines: Vec<(State, &str)> = c.iter().map(|c| (c.state, c.detail.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (
                    State::Problem,
                    "TCP 25: refused by the router (718 ConflictInMappingEntry)"
                ),
                (State::Ok, "TCP 993: mapped by PCP"),
                (
                    State::Problem,
                    "TCP 587: mapped by PCP from external port 2587, not 587"
                ),
                (
                    State::Unknown,
                    "UDP 3478: not tried (the router did not answer)"
                ),
                (State::Ok, "UDP 49152-49154: mapped by PCP"),
                (
                    State::Problem,
                    "UDP 49155-49156: refused by the router (8 NO_RESOURCES)"
                ),
            ]
        );
        assert!(c[0].todo.contains("another device holds this port"));
        assert_eq!(super::mapping(&cfg(), None)[0].state, State::Unknown);
    }
}
