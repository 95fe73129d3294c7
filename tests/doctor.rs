//! `chatrelay doctor` (issue 13 item 4): each problem it reports, against a
//! test DNS server (`dns_servers`) and a running relay on 127.0.0.139.
//! Every DNS answer is a record in the test zone; nothing leaves loopback.
//! The port mapping lines: relay 127.0.0.165, fake PCP router 127.0.0.166,
//! DNS 127.0.0.167.

mod common;
#[path = "router_support/mod.rs"]
mod router_support;
#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use common::Relay;
use support::{DnsServer, Zone};

const D: &str = "doctor139.test";
const PUBLIC: &str = "93.184.216.34";

/// `chatrelay doctor` for the relay's config (optionally under faketime).
fn doctor(r: &Relay, faketime: Option<&str>) -> (i32, String) {
    let mut c = match faketime {
        // libfaketime must not freeze the monotonic clock: the relay's
        // timers (DNS and router timeouts) run on it. `timeout` bounds the
        // run whatever happens.
        Some(t) => {
            let mut c = Command::new("timeout");
            c.args(["120", "faketime", "-f", t])
                .arg(common::bin())
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
            c
        }
        None => {
            let mut c = Command::new("timeout");
            c.args(["120"]).arg(common::bin());
            c
        }
    };
    let out = c
        .args(["doctor", "--config", r.config_path().to_str().unwrap()])
        .output()
        .expect("run doctor");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// The line of check `id`.
fn line<'a>(out: &'a str, id: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("no {id} line in:\n{out}"))
}

fn state<'a>(out: &'a str, id: &str) -> &'a str {
    line(out, id).split_whitespace().next().unwrap()
}

/// The DKIM TXT value `chatrelay dns` prints for this relay.
fn dkim_txt(r: &Relay) -> String {
    let out = Command::new(common::bin())
        .args(["dns", "--config", r.config_path().to_str().unwrap()])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    let l = t
        .lines()
        .find(|l| l.contains("_domainkey"))
        .unwrap()
        .to_string();
    let inner = &l[l.find('(').unwrap() + 1..l.rfind(')').unwrap()];
    inner
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect()
}

fn good_zone(dkim: &str) -> Zone {
    zone(PUBLIC, D, dkim)
}

fn zone(a: &str, mx: &str, dkim: &str) -> Zone {
    let mut z = Zone::relay(D, PUBLIC, mx, dkim);
    // The relay's own A record as given (mta-sts. and www. stay public).
    z.remove(D, support::A);
    z.a(D, a);
    z
}

/// An ACME certificate file as the relay stores it, valid [from, until].
fn store_cert(r: &Relay, from: (i32, u8, u8), until: (i32, u8, u8)) {
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(vec![
        D.to_string(),
        format!("mta-sts.{D}"),
        format!("www.{D}"),
    ])
    .unwrap();
    p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    p.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
    let c = p.self_signed(&k).unwrap();
    let dir = r.data_dir().join("acme");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("certificate.pem"),
        format!(
            "# acme directory: https://acme-v02.api.letsencrypt.org/directory\n{}\n{}",
            k.serialize_pem(),
            c.pem()
        ),
    )
    .unwrap();
}

#[test]
fn doctor_reports_each_problem() {
    let dns = DnsServer::start("127.0.0.139", Zone::default());
    // The relay orders nothing during the test: its ACME directory is a
    // closed port on its own address, and it waits an hour between tries.
    let r = Relay::start_with(
        139,
        &format!(
            "mail_domain = {D}\ndkim_ed25519 = true\ndns_servers = {}\n\
             acme_directory = https://127.0.0.139:14009/dir\nacme_retry_min = 1h\n\
             privacy_postal = Street 1\nprivacy_mail = a@b.example\nprivacy_pdo = P\nprivacy_supervisor = S\n",
            dns.addr
        ),
    );
    *dns.zone.lock().unwrap() = good_zone(&dkim_txt(&r));
    store_cert(&r, (2026, 1, 1), (2099, 1, 1));

    // Everything in order: only the router is unknown.
    let (code, out) = doctor(&r, None);
    for id in [
        "clock",
        "dns.a",
        "dns.mx",
        "dns.dkim",
        "dns.spf",
        "dns.dmarc",
        "dns.mta-sts",
        "dns.www",
        "certificate",
        "wan",
        "ports",
        "privacy",
    ] {
        assert_eq!(state(&out, id), "ok", "{id}:\n{out}");
    }
    assert_eq!(state(&out, "router"), "unknown");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no problems found"));

    // Wrong MX.
    *dns.zone.lock().unwrap() = zone(PUBLIC, "mx.elsewhere.example", &dkim_txt(&r));
    let (code, out) = doctor(&r, None);
    assert_eq!(code, 1);
    assert_eq!(state(&out, "dns.mx"), "problem", "{out}");
    assert!(
        line(&out, "dns.mx").contains("mx.elsewhere.example"),
        "{out}"
    );
    assert!(
        out.contains(&format!("set the MX record of {D} to `10 {D}.`")),
        "{out}"
    );

    // Missing DKIM TXT.
    {
        let mut z = Zone::default();
        z.a(D, PUBLIC);
        z.mx(D, 10, D);
        z.txt(D, "v=spf1 a ~all");
        z.txt(&format!("_dmarc.{D}"), "v=DMARC1;p=reject");
        *dns.zone.lock().unwrap() = z;
    }
    let (_, out) = doctor(&r, None);
    assert_eq!(state(&out, "dns.dkim"), "problem", "{out}");
    assert!(
        line(&out, "dns.dkim").contains("no DKIM TXT record"),
        "{out}"
    );
    assert_eq!(state(&out, "dns.mx"), "ok", "{out}");
    assert_eq!(state(&out, "dns.mta-sts"), "problem", "{out}");

    // A DKIM record of another key.
    *dns.zone.lock().unwrap() = good_zone("v=DKIM1;k=ed25519;p=AAAAotherkey");
    let (_, out) = doctor(&r, None);
    assert!(line(&out, "dns.dkim").contains("another key"), "{out}");

    // Expired certificate.
    *dns.zone.lock().unwrap() = good_zone(&dkim_txt(&r));
    store_cert(&r, (2026, 1, 1), (2026, 2, 1));
    let (code, out) = doctor(&r, None);
    assert_eq!(code, 1);
    assert_eq!(state(&out, "certificate"), "problem", "{out}");
    assert!(
        line(&out, "certificate").contains("expired 2026-02-01"),
        "{out}"
    );
    store_cert(&r, (2026, 1, 1), (2099, 1, 1));

    // CGNAT address published.
    *dns.zone.lock().unwrap() = zone("100.72.1.2", D, &dkim_txt(&r));
    let (_, out) = doctor(&r, None);
    assert_eq!(state(&out, "wan"), "problem", "{out}");
    assert!(line(&out, "wan").contains("carrier-grade NAT"), "{out}");
    assert!(out.contains("public IPv4 address"), "{out}");

    // The router's WAN address (NAT-PMP, a fake router on 127.0.0.138)
    // is CGNAT although the published A record is public.
    *dns.zone.lock().unwrap() = good_zone(&dkim_txt(&r));
    let udp = std::net::UdpSocket::bind("127.0.0.138:5351").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let fake = std::thread::spawn(move || {
        let mut b = [0u8; 64];
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !st.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < until {
            if let Ok((n, from)) = udp.recv_from(&mut b) {
                if n == 2 && b[..2] == [0, 0] {
                    let _ = udp.send_to(&[0, 128, 0, 0, 0, 0, 0, 5, 100, 64, 9, 9], from);
                }
            }
        }
    });
    let with_router = |router: &str| {
        let p = r.dir.path().join(format!("router-{router}.ini"));
        std::fs::write(
            &p,
            format!("{}router_address = {router}\n", r.config_text()),
        )
        .unwrap();
        let o = Command::new(common::bin())
            .args(["doctor", "--config", p.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = with_router("127.0.0.138");
    assert_eq!(state(&out, "router"), "ok", "{out}");
    assert!(
        line(&out, "router").contains("WAN address 100.64.9.9"),
        "{out}"
    );
    assert_eq!(state(&out, "wan"), "problem", "{out}");
    assert!(
        line(&out, "wan").contains("100.64.9.9 is a carrier-grade NAT"),
        "{out}"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    fake.join().unwrap();
    // No NAT-PMP router there at all.
    let out = with_router("127.0.0.137");
    assert_eq!(state(&out, "router"), "problem", "{out}");
    assert!(
        line(&out, "router").contains("does not answer NAT-PMP"),
        "{out}"
    );

    // Clock unset: the real binary with its clock in 2000 (libfaketime).
    *dns.zone.lock().unwrap() = good_zone(&dkim_txt(&r));
    let (code, out) = doctor(&r, Some("@2000-01-01 00:00:00"));
    assert_eq!(code, 1);
    assert_eq!(state(&out, "clock"), "problem", "{out}");
    assert!(line(&out, "clock").contains("2000-01-01"), "{out}");

    // Relay stopped: its ports are reported; privacy fields unset.
    drop(r);
    let r = Relay::start_with(139, &format!("mail_domain = {D}\ndkim_ed25519 = true\ndns_servers = {}\nacme_directory = https://127.0.0.139:14009/dir\nacme_retry_min = 1h\n", dns.addr));
    let cfg = r.config_path();
    let mut r = r;
    r.kill9();
    let out = Command::new(common::bin())
        .args(["doctor", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(state(&out, "ports"), "problem", "{out}");
    assert!(line(&out, "ports").contains("993"), "{out}");
    assert_eq!(state(&out, "privacy"), "problem", "{out}");
    assert!(line(&out, "privacy").contains("privacy_postal"), "{out}");
}

/// The `mapping` lines: each port the running relay asked the router for,
/// mapped / refused with the router's reason / not tried; the relay range
/// of TURN as one line.
#[test]
fn doctor_shows_which_ports_the_router_maps() {
    let dns = DnsServer::start("127.0.0.167", Zone::default());
    let fake =
        router_support::Fake::start("127.0.0.166", "11.22.33.44".parse().unwrap(), |req, ctx| {
            let Some((_, _, _, port)) = router_support::pcp_map_request(req) else {
                return vec![];
            };
            let result = match port {
                993 => 2,
                143 => 11,
                _ => 0,
            };
            vec![router_support::pcp_map_reply(
                req, result, ctx.epoch, ctx.wan, port,
            )]
        });
    let extra = format!(
        "mail_domain = {D}\ndkim_ed25519 = true\ndns_servers = {}\n\
         acme_directory = https://127.0.0.165:14009/dir\nacme_retry_min = 1h\n\
         port_mapping = auto\nport_mapping_lifetime = 1h\nturn_relay_ports = 49160-49163\n",
        dns.addr
    );
    let r = Relay::start_with(165, &format!("{extra}router_address = 127.0.0.166\n"));
    *dns.zone.lock().unwrap() = good_zone(&dkim_txt(&r));
    assert!(
        common::wait_until(std::time::Duration::from_secs(20), || r
            .stderr()
            .contains("router: mapped 6 of 8 ports by PCP")),
        "{}",
        r.stderr()
    );
    let (code, out) = doctor(&r, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        line(&out, "router").contains("the relay maps ports by PCP; WAN address 11.22.33.44"),
        "{out}"
    );
    let mapping: Vec<&str> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("mapping"))
        .collect();
    let has = |state: &str, text: &str| {
        mapping
            .iter()
            .any(|l| l.starts_with(state) && l.contains(text))
    };
    assert_eq!(mapping.len(), 5, "{out}");
    assert!(has("ok", "TCP 443: mapped by PCP"), "{out}");
    assert!(
        has(
            "problem",
            "TCP 993: refused by the router (2 NOT_AUTHORIZED"
        ),
        "{out}"
    );
    assert!(
        has(
            "problem",
            "TCP 143: refused by the router (11 CANNOT_PROVIDE_EXTERNAL"
        ),
        "{out}"
    );
    assert!(
        out.contains("another device holds this port on the router"),
        "{out}"
    );
    assert!(has("ok", "UDP 3478: mapped by PCP"), "{out}");
    assert!(has("ok", "UDP 49160-49163: mapped by PCP"), "{out}");
    drop(r);
    drop(fake);

    // A router that does not answer (nothing on 127.0.0.166 now): while
    // the relay waits for it, every port is "not tried".
    let r = Relay::start_with(165, &format!("{extra}router_address = 127.0.0.166\n"));
    let (_, out) = doctor(&r, None);
    assert_eq!(state(&out, "router"), "unknown", "{out}");
    assert!(
        line(&out, "router").contains("has not answered yet"),
        "{out}"
    );
    // After the first round (PCP 3.75 s, NAT-PMP 3.75 s): a problem.
    assert!(
        common::wait_until(std::time::Duration::from_secs(20), || r
            .stderr()
            .contains("no answer to PCP, NAT-PMP")),
        "{}",
        r.stderr()
    );
    let (_, out) = doctor(&r, None);
    assert_eq!(state(&out, "router"), "problem", "{out}");
    assert!(
        line(&out, "router").contains("no answer from the router"),
        "{out}"
    );
    let not_tried = out
        .lines()
        .filter(|l| l.starts_with("unknown") && l.contains("not tried (the router did not answer)"))
        .count();
    assert_eq!(
        not_tried, 5,
        "TCP 443 143 993, UDP 3478, UDP 49160-49163:\n{out}"
    );
    // The relay stopped: what the router maps is not known.
    let cfg = r.config_path();
    let mut r = r;
    r.kill9();
    let o = Command::new(common::bin())
        .args(["doctor", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(state(&out, "mapping"), "unknown", "{out}");
    assert!(
        line(&out, "mapping").contains("the relay is not running"),
        "{out}"
    );
}
