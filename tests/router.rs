//! Router port mapping (issue 13 item 2): PCP, NAT-PMP, UPnP-IGD.
//!
//! The real case: Debian's `miniupnpd` (UPnP-IGD + NAT-PMP + PCP) is the
//! router in network namespaces this test creates — `routerNl` (the relay's
//! LAN side, 10.213.N.2), `routerNr` (the router: LAN 10.213.N.1, WAN
//! 11.13.N.2 on a veth to `routerNw`). No interface of these namespaces
//! reaches the host or any network: every packet stays inside them.
//! `upnpc -l` (miniupnpc) on the LAN side shows what the router holds.
//!
//! The fault cases use a fake PCP/NAT-PMP router (`tests/router_support`)
//! on 127.0.0.166 and a relay on 127.0.0.165, one test at a time.

mod common;
#[path = "router_support/mod.rs"]
mod router_support;

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::TempDir;

fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

struct Net {
    n: u8,
}

impl Net {
    fn ns(&self, side: char) -> String {
        format!("router{}{side}", self.n)
    }
    fn lan_ip(&self) -> String {
        format!("10.213.{}.2", self.n)
    }
    /// LAN, router and WAN namespaces with veth pairs, the router's nft
    /// chains for miniupnpd.
    fn create(n: u8) -> Net {
        let net = Net { n };
        net.destroy();
        let (l, r, w) = (net.ns('l'), net.ns('r'), net.ns('w'));
        for ns in [&l, &r, &w] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let (l0, l1) = (format!("router{n}l0"), format!("router{n}l1"));
        let (w0, w1) = (format!("router{n}w0"), format!("router{n}w1"));
        sh(&[
            "ip", "link", "add", &l0, "type", "veth", "peer", "name", &l1,
        ]);
        sh(&["ip", "link", "set", &l0, "netns", &r]);
        sh(&["ip", "link", "set", &l1, "netns", &l]);
        sh(&[
            "ip", "link", "add", &w0, "type", "veth", "peer", "name", &w1,
        ]);
        sh(&["ip", "link", "set", &w0, "netns", &r]);
        sh(&["ip", "link", "set", &w1, "netns", &w]);
        sh(&[
            "ip",
            "-n",
            &r,
            "addr",
            "add",
            &format!("10.213.{n}.1/24"),
            "dev",
            &l0,
        ]);
        sh(&[
            "ip",
            "-n",
            &l,
            "addr",
            "add",
            &format!("10.213.{n}.2/24"),
            "dev",
            &l1,
        ]);
        sh(&[
            "ip",
            "-n",
            &r,
            "addr",
            "add",
            &format!("11.13.{n}.2/24"),
            "dev",
            &w0,
        ]);
        sh(&[
            "ip",
            "-n",
            &w,
            "addr",
            "add",
            &format!("11.13.{n}.1/24"),
            "dev",
            &w1,
        ]);
        // The router forwards between its LAN and WAN sides.
        sh(&[
            "ip",
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        for (ns, dev) in [(&r, &l0), (&r, &w0), (&l, &l1), (&w, &w1)] {
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        sh(&[
            "ip",
            "-n",
            &l,
            "route",
            "add",
            "default",
            "via",
            &format!("10.213.{n}.1"),
        ]);
        sh(&[
            "ip",
            "-n",
            &r,
            "route",
            "add",
            "default",
            "via",
            &format!("11.13.{n}.1"),
        ]);
        let mut c = Command::new("ip")
            .args(["netns", "exec", &r, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(
            b"table inet filter {\n chain forward {\n type filter hook forward priority 0; policy accept;\n jump miniupnpd\n }\n chain miniupnpd {\n }\n chain prerouting {\n type nat hook prerouting priority -100;\n jump prerouting_miniupnpd\n }\n chain postrouting {\n type nat hook postrouting priority 100;\n jump postrouting_miniupnpd\n }\n chain prerouting_miniupnpd {\n }\n chain postrouting_miniupnpd {\n }\n}\n",
        ).unwrap();
        assert!(c.wait().unwrap().success(), "nft");
        net
    }
    fn destroy(&self) {
        for s in ['l', 'r', 'w'] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(s)])
                .output();
        }
    }
    /// `upnpc` on the LAN side; tried again (5 times at most) while it finds
    /// no IGD: a busy machine can make miniupnpd slow to answer SSDP.
    fn upnpc(&self, args: &[&str]) -> String {
        let ns = self.ns('l');
        // The router's description URL: no SSDP search (seconds) per call.
        let url = format!("http://10.213.{}.1:5000/rootDesc.xml", self.n);
        let mut cmd = vec![
            "ip", "netns", "exec", &ns, "timeout", "15", "upnpc", "-u", &url,
        ];
        cmd.extend_from_slice(args);
        let mut out = String::new();
        for _ in 0..5 {
            out = sh(&cmd);
            if !out.contains("No IGD UPnP Device") && !out.contains("No valid UPNP") {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        out
    }
    fn upnpc_list(&self) -> String {
        self.upnpc(&["-l"])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.destroy();
    }
}

struct Router {
    child: Child,
}

impl Router {
    fn start(net: &Net, dir: &std::path::Path) -> Router {
        Self::start_with(net, dir, true)
    }
    /// `natpmp = false`: a UPnP-only router (and `secure_mode=no`, so a test
    /// can map a port to another LAN address first). `enable_natpmp` turns
    /// on NAT-PMP and PCP together in miniupnpd 2.3; `min_lifetime` (PCP,
    /// default 120 s) is lowered so the test sees renewals;
    /// `system_uptime=no` makes the epoch start again at a restart, as a
    /// rebooted router's does.
    fn start_with(net: &Net, dir: &std::path::Path, natpmp: bool) -> Router {
        let n = net.n;
        let (np, secure) = if natpmp { ("yes", "yes") } else { ("no", "no") };
        let conf = dir.join("miniupnpd.conf");
        std::fs::write(
            &conf,
            format!(
                "ext_ifname=router{n}w0\nlistening_ip=router{n}l0\nhttp_port=5000\nenable_natpmp={np}\n\
                 enable_upnp=yes\nsecure_mode={secure}\nsystem_uptime=no\nmin_lifetime=2\n\
                 uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d0{n:02}\n\
                 lease_file={}\n\
                 allow 1-65535 10.213.{n}.0/24 1-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
                dir.join("leases").display()
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.ns('r'),
                "miniupnpd",
                "-f",
                conf.to_str().unwrap(),
                "-d",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("miniupnpd.log")).unwrap())
            .spawn()
            .expect("miniupnpd (apt install miniupnpd miniupnpc)");
        let log = dir.join("miniupnpd.log");
        assert!(
            common::wait_until(Duration::from_secs(15), || std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("HTTP listening on port")),
            "miniupnpd did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Router { child }
    }
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop();
    }
}

struct NsRelay {
    child: Child,
    log: std::path::PathBuf,
}

impl NsRelay {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn count(&self, s: &str) -> usize {
        self.log().matches(s).count()
    }
}

impl Drop for NsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay_ini(dir: &std::path::Path, domain: &str, listen: &str, extra: &str) -> std::path::PathBuf {
    relay_ini_lifetime(dir, domain, listen, extra, 4)
}

fn relay_ini_lifetime(
    dir: &std::path::Path,
    domain: &str,
    listen: &str,
    extra: &str,
    lifetime: u64,
) -> std::path::PathBuf {
    let ini = dir.join("chatmail.ini");
    std::fs::write(
        &ini,
        format!(
            "[params]\nmail_domain = {domain}\nlisten_address = {listen}\ndata_dir = {}\n\
             nocreate_file = {}\ndkim_ed25519 = true\nmax_load_1m = 1000\nmin_available_memory = 1M\n\
             min_free_disk_space = 1M\nacme_directory = https://{listen}:14009/dir\nacme_retry_min = 1h\n\
             port_mapping = auto\nport_mapping_lifetime = {lifetime}\nturn_relay_ports = 49152-49155\n{extra}\n",
            dir.join("data").display(),
            dir.join("nocreate").display()
        ),
    )
    .unwrap();
    ini
}

fn start_relay(prefix: &[&str], ini: &std::path::Path, dir: &std::path::Path) -> NsRelay {
    let log = dir.join("relay.log");
    let mut cmd = Command::new(prefix.first().copied().unwrap_or(common::bin()));
    for a in prefix.iter().skip(1) {
        cmd.arg(a);
    }
    if !prefix.is_empty() {
        cmd.arg(common::bin());
    }
    let child = cmd
        .args(["serve", "--config", ini.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let r = NsRelay { child, log };
    assert!(
        common::wait_until(Duration::from_secs(30), || r
            .log()
            .contains("chatrelay ready")),
        "{}",
        r.log()
    );
    r
}

/// What the relay maps in the namespace tests: 7 TCP services, UDP 3478
/// (TURN) and the 4 TURN relay ports of `relay_ini`.
const PORTS: [(&str, u16); 12] = [
    ("TCP", 25),
    ("TCP", 80),
    ("TCP", 443),
    ("TCP", 465),
    ("TCP", 587),
    ("TCP", 143),
    ("TCP", 993),
    ("UDP", 3478),
    ("UDP", 49152),
    ("UDP", 49153),
    ("UDP", 49154),
    ("UDP", 49155),
];

/// The miniupnpd tests run one at a time (two routers starting together on
/// a busy machine made SSDP answers miss `upnpc`'s window); so do the fake
/// router tests (one relay address, one fake address).
static ROUTERS: Mutex<()> = Mutex::new(());
static FAKES: Mutex<()> = Mutex::new(());

fn one_router_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ROUTERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn one_fake_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    FAKES.lock().unwrap_or_else(|e| e.into_inner())
}

fn mapped(list: &str, lan: &str, proto: &str, p: u16) -> bool {
    list.contains(&format!("{proto} {:>5}->{lan}:{p} ", p))
}

fn all_mapped(list: &str, lan: &str) -> bool {
    PORTS.iter().all(|(proto, p)| mapped(list, lan, proto, *p))
}

fn flush_router_rules(net: &Net) {
    for chain in ["prerouting_miniupnpd", "postrouting_miniupnpd", "miniupnpd"] {
        sh(&[
            "ip",
            "netns",
            "exec",
            &net.ns('r'),
            "nft",
            "flush",
            "chain",
            "inet",
            "filter",
            chain,
        ]);
    }
}

#[test]
fn pcp_mappings_in_miniupnpd_renewed_restored_after_a_restart_and_deleted() {
    let _one = one_router_at_a_time();
    let net = Net::create(1);
    let dir = TempDir::new("router");
    let mut router = Router::start(&net, dir.path());
    let ini = relay_ini_lifetime(dir.path(), "router1.test", &net.lan_ip(), "", 20);
    let ns = net.ns('l');
    let relay = start_relay(&["ip", "netns", "exec", &ns], &ini, dir.path());
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("router: mapped 12 of 12 ports by PCP")),
        "{}",
        relay.log()
    );
    let log = relay.log();
    assert!(
        log.contains(&format!("router: WAN address 11.13.{}.2 (public)", net.n)),
        "the WAN address comes from the PCP answers: {log}"
    );
    let mlog = std::fs::read_to_string(dir.path().join("miniupnpd.log")).unwrap_or_default();
    assert!(mlog.contains("PCP MAP: added mapping"), "{mlog}");
    let list = net.upnpc_list();
    assert!(all_mapped(&list, &net.lan_ip()), "{list}");
    // TURN from the Internet side (the WAN namespace), through the
    // router's mapping of UDP 3478: the relayed address is the WAN address
    // (`turn_external_ip = auto`) with a mapped relay port.
    let secret = std::fs::read_to_string(dir.path().join("data/turn.secret")).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/router_support/turn_allocate.py"
    );
    let wan_ip = format!("11.13.{}.2", net.n);
    let out = sh(&[
        "ip",
        "netns",
        "exec",
        &net.ns('w'),
        "timeout",
        "20",
        "python3",
        script,
        &wan_ip,
        "3478",
        secret.trim(),
    ]);
    let relayed = out
        .trim()
        .strip_prefix("0x0103 ")
        .unwrap_or_else(|| panic!("Allocate failed: {out}\n{}", relay.log()));
    let (ip, port) = relayed.split_once(':').unwrap();
    assert_eq!(ip, wan_ip, "{out}");
    assert!(
        PORTS
            .iter()
            .any(|(p, n)| *p == "UDP" && n.to_string() == port && *n != 3478),
        "{out}"
    );
    // Renewed at half the 20 s lifetime (miniupnpd grants what was asked).
    let before = relay.count("router: mapped 12 of 12 ports by PCP");
    std::thread::sleep(Duration::from_secs(11));
    assert!(
        relay.count("router: mapped 12 of 12 ports by PCP") > before,
        "{}",
        relay.log()
    );
    let list = net.upnpc_list();
    assert!(all_mapped(&list, &net.lan_ip()), "{list}\n{}", relay.log());
    // The router restarts and forgets everything: no lease file to reload,
    // no rules left. Its ANNOUNCE or the epoch check of the next answer
    // tells the relay, which maps again.
    router.stop();
    let _ = std::fs::remove_file(dir.path().join("leases"));
    flush_router_rules(&net);
    assert!(!mapped(&net.upnpc_list(), &net.lan_ip(), "TCP", 993));
    let _router2 = Router::start(&net, dir.path());
    let t0 = Instant::now();
    assert!(
        common::wait_until(Duration::from_secs(30), || all_mapped(
            &net.upnpc_list(),
            &net.lan_ip()
        )),
        "mappings not restored: {}\n{}",
        net.upnpc_list(),
        relay.log()
    );
    eprintln!("restored after {:?}", t0.elapsed());
    assert!(
        common::wait_until(Duration::from_secs(15), || {
            let l = relay.log();
            l.contains("the router restarted (PCP epoch") || l.contains("PCP ANNOUNCE")
        }),
        "the restart was not noticed: {}",
        relay.log()
    );
    // Clean shutdown: SIGTERM deletes them (lifetime 0, same nonce).
    // The relay is the child of `ip netns exec` (which execs it): same pid.
    sh(&["kill", "-TERM", &relay.child.id().to_string()]);
    assert!(
        common::wait_until(Duration::from_secs(10), || relay
            .log()
            .contains("router: removed 12 of 12 port mappings")),
        "{}",
        relay.log()
    );
    let list = net.upnpc_list();
    assert!(!list.contains(&format!("->{}:", net.lan_ip())), "{list}");
}

#[test]
fn upnp_igd_when_the_router_has_no_pcp_or_nat_pmp_with_a_718_conflict() {
    let _one = one_router_at_a_time();
    let net = Net::create(3);
    let dir = TempDir::new("router");
    let _router = Router::start_with(&net, dir.path(), false);
    // Another device on the LAN already holds external port 25.
    let other = net.upnpc(&["-e", "other", "-a", "10.213.3.3", "25", "25", "TCP"]);
    assert!(
        other.contains("is redirected to internal 10.213.3.3:25"),
        "{other}"
    );
    let ini = relay_ini_lifetime(dir.path(), "router3.test", &net.lan_ip(), "", 60);
    let ns = net.ns('l');
    let relay = start_relay(&["ip", "netns", "exec", &ns], &ini, dir.path());
    assert!(
        common::wait_until(Duration::from_secs(40), || relay
            .log()
            .contains("router: mapped 11 of 12 ports by UPnP-IGD")),
        "{}",
        relay.log()
    );
    let log = relay.log();
    assert!(
        log.contains("using UPnP-IGD urn:schemas-upnp-org:service:WANIPConnection:2"),
        "{log}"
    );
    assert!(
        log.contains("port 25 not mapped: 718 ConflictInMappingEntry"),
        "{log}"
    );
    assert!(
        log.contains("router: WAN address 11.13.3.2 (public)"),
        "{log}"
    );
    let list = net.upnpc_list();
    for (proto, p) in &PORTS[1..] {
        assert!(mapped(&list, "10.213.3.2", proto, *p), "{p}: {list}");
    }
    assert!(list.contains("->10.213.3.3:25 "), "{list}");
    sh(&["kill", "-TERM", &relay.child.id().to_string()]);
    assert!(
        common::wait_until(Duration::from_secs(10), || relay
            .log()
            .contains("router: removed 11 of 11 port mappings")),
        "{}",
        relay.log()
    );
    let list = net.upnpc_list();
    assert!(!list.contains("->10.213.3.2:"), "{list}");
    assert!(
        list.contains("->10.213.3.3:25 "),
        "the other device's mapping stays: {list}"
    );
}

#[test]
fn no_router_answer_is_reported_and_the_relay_serves_on() {
    let net = Net::create(2);
    let dir = TempDir::new("router");
    let ini = relay_ini(dir.path(), "router2.test", &net.lan_ip(), "");
    let ns = net.ns('l');
    let relay = start_relay(&["ip", "netns", "exec", &ns], &ini, dir.path());
    // PCP 3.75 s, NAT-PMP 3.75 s, SSDP 3 s.
    assert!(
        common::wait_until(Duration::from_secs(30), || relay
            .log()
            .contains("no answer to PCP, NAT-PMP or UPnP-IGD")),
        "{}",
        relay.log()
    );
    assert!(relay.log().contains("forward the ports by hand"));
    // Backoff, not a loop: no second round within 5 s (30 s minimum wait).
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        relay.count("no answer to PCP, NAT-PMP or UPnP-IGD"),
        1,
        "{}",
        relay.log()
    );
}

// ------------------------------------------------------------ fake routers

use router_support::{pcp_map_reply, pcp_map_request, Fake};

const RELAY_N: u8 = 165;
const FAKE_IP: &str = "127.0.0.166";

/// A relay on 127.0.0.165 mapping TCP 143 993 443, UDP 3478 49160 49161,
/// asking the fake router on 127.0.0.166.
fn local_relay(dir: &std::path::Path, lifetime: u64) -> NsRelay {
    let ip = format!("127.0.0.{RELAY_N}");
    let ini = relay_ini_lifetime(
        dir,
        "router165.test",
        &ip,
        &format!(
            "router_address = {FAKE_IP}\nsmtp_port = 0\nsubmission_port = 0\nsubmissions_port = 0\n\
             imap_port = 143\nimaps_port = 993\nhttps_port = 443\nhttp_port = 0\n"
        ),
        lifetime,
    );
    // The relay range of the fake tests: 2 ports.
    let text = std::fs::read_to_string(&ini).unwrap().replace(
        "turn_relay_ports = 49152-49155",
        "turn_relay_ports = 49160-49161",
    );
    std::fs::write(&ini, text).unwrap();
    start_relay(&[], &ini, dir)
}

#[test]
fn garbage_replies_are_rejected_without_a_crash() {
    let _one = one_fake_at_a_time();
    let fake = Fake::start(FAKE_IP, "11.22.33.44".parse().unwrap(), |_, _| {
        vec![b"HTTP/1.1 200 OK\r\n\r\nnot PCP at all".to_vec()]
    });
    let dir = TempDir::new("router");
    let relay = local_relay(dir.path(), 4);
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("no answer to PCP, NAT-PMP")),
        "{}",
        relay.log()
    );
    let log = relay.log();
    assert!(log.contains("malformed PCP reply"), "{log}");
    assert!(log.contains("malformed NAT-PMP reply"), "{log}");
    // 4 PCP and 4 NAT-PMP retransmissions, then a wait of at least 30 s.
    std::thread::sleep(Duration::from_secs(3));
    assert!(fake.count() <= 8, "{}", fake.count());
    assert!(!relay.log().contains("panicked"));
}

#[test]
fn nat_pmp_router_fallback_cgnat_wan_address_and_refusals_are_named() {
    let _one = one_fake_at_a_time();
    // A NAT-PMP-only router (RFC 6887 §9): PCP gets "unsupported version";
    // external address 100.64.7.8; every mapping refused with result 2.
    let _fake = Fake::start(FAKE_IP, "100.64.7.8".parse().unwrap(), |req, ctx| {
        match (req.first(), req.get(1)) {
            (Some(0), Some(0)) => vec![router_support::natpmp_external(ctx.wan, ctx.epoch)],
            (Some(0), Some(&op)) => {
                let mut v = vec![0, 128 + op, 0, 2];
                v.extend(ctx.epoch.to_be_bytes());
                v.extend_from_slice(req.get(4..8).unwrap_or(&[0; 4]));
                v.extend([0, 0, 0, 0]);
                vec![v]
            }
            _ => vec![router_support::natpmp_unsupported_version(req, ctx.epoch)],
        }
    });
    let dir = TempDir::new("router");
    let relay = local_relay(dir.path(), 4);
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("router: mapped 0 of 6 ports by NAT-PMP")),
        "{}",
        relay.log()
    );
    let log = relay.log();
    assert!(
        log.contains("WAN address 100.64.7.8 is carrier-grade NAT"),
        "{log}"
    );
    assert!(
        log.contains("connections from the Internet cannot reach this relay"),
        "{log}"
    );
    assert!(
        log.contains("6 ports not mapped: not authorized / refused"),
        "{log}"
    );
}

/// PCP answers from a hostile or broken router: a success with another
/// nonce before every real answer (ignored), refusals with result codes.
#[test]
fn pcp_wrong_nonce_answers_are_ignored_and_result_codes_named() {
    let _one = one_fake_at_a_time();
    let fake = Fake::start(FAKE_IP, "11.22.33.44".parse().unwrap(), |req, ctx| {
        let Some((_, _, _, port)) = pcp_map_request(req) else {
            return vec![];
        };
        // Another mapping's answer: the same port, external port 9999.
        let mut stray = pcp_map_reply(req, 0, ctx.epoch, ctx.wan, 9999);
        stray[24] ^= 0xff;
        let real = match port {
            993 => pcp_map_reply(req, 2, ctx.epoch, ctx.wan, 0),
            443 => pcp_map_reply(req, 11, ctx.epoch, ctx.wan, 0),
            p => pcp_map_reply(req, 0, ctx.epoch, ctx.wan, p),
        };
        vec![stray, b"\x02\x81garbage".to_vec(), real]
    });
    let dir = TempDir::new("router");
    let relay = local_relay(dir.path(), 60);
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("router: mapped 4 of 6 ports by PCP")),
        "{}",
        relay.log()
    );
    let log = relay.log();
    assert!(
        log.contains("router: WAN address 11.22.33.44 (public)"),
        "{log}"
    );
    assert!(
        log.contains("port 993 not mapped: 2 NOT_AUTHORIZED"),
        "{log}"
    );
    assert!(
        log.contains("port 443 not mapped: 11 CANNOT_PROVIDE_EXTERNAL"),
        "{log}"
    );
    assert!(!log.contains("9999"), "a stray answer was taken: {log}");
    // Every mapping has its own nonce.
    let maps: Vec<_> = fake
        .reqs()
        .iter()
        .filter_map(|r| pcp_map_request(r))
        .collect();
    let mut nonces: Vec<[u8; 12]> = maps.iter().map(|m| m.1).collect();
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 6, "{maps:?}");
    // SIGTERM: the 4 mappings are deleted with lifetime 0 and their nonce.
    sh(&["kill", "-TERM", &relay.child.id().to_string()]);
    assert!(
        common::wait_until(Duration::from_secs(10), || relay
            .log()
            .contains("router: removed 4 of 4 port mappings")),
        "{}",
        relay.log()
    );
    let maps: Vec<_> = fake
        .reqs()
        .iter()
        .filter_map(|r| pcp_map_request(r))
        .collect();
    for port in [143, 3478, 49160, 49161] {
        let first = maps.iter().find(|m| m.3 == port).unwrap();
        assert!(
            maps.iter()
                .any(|m| m.3 == port && m.0 == 0 && m.1 == first.1),
            "no deletion of {port} with its nonce: {maps:?}"
        );
    }
    assert!(
        !maps.iter().any(|m| m.3 == 993 && m.0 == 0),
        "993 was never mapped"
    );
}

/// A router that went away before the relay stops: SIGTERM still ends the
/// relay within seconds (the first unanswered deletion ends the round; all
/// of them within 10 s at most), the mappings expire with their lifetime.
#[test]
fn shutdown_with_a_vanished_router_is_bounded() {
    let _one = one_fake_at_a_time();
    let fake = Fake::start(
        FAKE_IP,
        "11.22.33.44".parse().unwrap(),
        router_support::pcp_ok,
    );
    let dir = TempDir::new("router");
    let mut relay = local_relay(dir.path(), 3600);
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("router: mapped 6 of 6 ports by PCP")),
        "{}",
        relay.log()
    );
    drop(fake);
    let t0 = Instant::now();
    sh(&["kill", "-TERM", &relay.child.id().to_string()]);
    assert!(
        common::wait_until(Duration::from_secs(15), || relay
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "still running after SIGTERM: {}",
        relay.log()
    );
    assert!(t0.elapsed() < Duration::from_secs(12), "{:?}", t0.elapsed());
    assert!(
        relay.log().contains("router: removed 0 of 6 port mappings"),
        "{}",
        relay.log()
    );
}
