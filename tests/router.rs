//! Router port mapping (issue 13 item 2) with NAT-PMP.
//!
//! The real case: Debian's `miniupnpd` (UPnP-IGD + NAT-PMP) is the router in
//! network namespaces this test creates — `acmeNl` (the relay's LAN side,
//! 10.213.N.2), `acmeNr` (the router: LAN 10.213.N.1, WAN 11.13.N.2 on a
//! veth to `acmeNw`). No interface of these namespaces reaches the host or
//! any network: every packet stays inside them. `upnpc -l` (miniupnpc) on
//! the LAN side shows what the router holds.
//!
//! The fault cases use a small fake NAT-PMP responder on 127.0.0.13x.

mod common;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
        format!("acme{}{side}", self.n)
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
        let (l0, l1) = (format!("acme{n}l0"), format!("acme{n}l1"));
        let (w0, w1) = (format!("acme{n}w0"), format!("acme{n}w1"));
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
        let mut cmd = vec!["ip", "netns", "exec", &ns, "timeout", "15", "upnpc"];
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
    /// can map a port to another LAN address first).
    fn start_with(net: &Net, dir: &std::path::Path, natpmp: bool) -> Router {
        let n = net.n;
        let (np, secure) = if natpmp { ("yes", "yes") } else { ("no", "no") };
        let conf = dir.join("miniupnpd.conf");
        std::fs::write(
            &conf,
            format!(
                "ext_ifname=acme{n}w0\nlistening_ip=acme{n}l0\nhttp_port=5000\nenable_natpmp={np}\n\
                 enable_upnp=yes\nsecure_mode={secure}\nsystem_uptime=yes\n\
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
             port_mapping = auto\nport_mapping_lifetime = {lifetime}\n{extra}\n",
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

const PORTS: [u16; 7] = [25, 80, 443, 465, 587, 143, 993];

/// The miniupnpd tests run one at a time (two routers starting together on
/// a busy machine made SSDP answers miss `upnpc`'s window).
static ROUTERS: Mutex<()> = Mutex::new(());

fn one_router_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ROUTERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn all_mapped(list: &str, lan: &str) -> bool {
    PORTS
        .iter()
        .all(|p| list.contains(&format!("TCP {:>5}->{lan}:{p} ", p)))
}

#[test]
fn miniupnpd_holds_renews_restores_and_drops_the_mappings() {
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
            .contains("router: mapped 7 of 7 ports")),
        "{}",
        relay.log()
    );
    assert!(
        relay
            .log()
            .contains(&format!("router: WAN address 11.13.{}.2 (public)", net.n)),
        "{}",
        relay.log()
    );
    let list = net.upnpc_list();
    assert!(all_mapped(&list, &net.lan_ip()), "{list}");
    // Renewed at half the 20 s lifetime.
    let before = relay.count("router: mapped 7 of 7");
    std::thread::sleep(Duration::from_secs(11));
    assert!(
        relay.count("router: mapped 7 of 7") > before,
        "{}",
        relay.log()
    );
    let list = net.upnpc_list();
    assert!(all_mapped(&list, &net.lan_ip()), "{list}\n{}", relay.log());
    // The router restarts and forgets everything: the mappings come back.
    router.stop();
    // Forgets for real: no lease file to reload from.
    let _ = std::fs::remove_file(dir.path().join("leases"));
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
        "prerouting_miniupnpd",
    ]);
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
        "miniupnpd",
    ]);
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
    // Clean shutdown: SIGTERM removes them.
    let pid = relay.child.id().to_string();
    // The relay is the child of `ip netns exec` (which execs it): same pid.
    sh(&["kill", "-TERM", &pid]);
    assert!(
        common::wait_until(Duration::from_secs(10), || relay
            .log()
            .contains("router: removed 7 of 7 port mappings")),
        "{}",
        relay.log()
    );
    let list = net.upnpc_list();
    assert!(!list.contains(&format!("->{}:", net.lan_ip())), "{list}");
}

#[test]
fn upnp_igd_when_the_router_has_no_nat_pmp_with_a_718_conflict() {
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
            .contains("router: mapped 6 of 7 ports by UPnP")),
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
    for p in [80, 443, 465, 587, 143, 993] {
        assert!(list.contains(&format!("->10.213.3.2:{p} ")), "{p}: {list}");
    }
    assert!(list.contains("->10.213.3.3:25 "), "{list}");
    sh(&["kill", "-TERM", &relay.child.id().to_string()]);
    assert!(
        common::wait_until(Duration::from_secs(10), || relay
            .log()
            .contains("router: removed 6 of 6 port mappings")),
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
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("no NAT-PMP answer from the router")),
        "{}",
        relay.log()
    );
    assert!(relay.log().contains("forward the ports by hand"));
    // Backoff, not a loop: one more try at most in 10 s (30 s minimum wait).
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(relay.count("no NAT-PMP answer"), 1, "{}", relay.log());
}

// ------------------------------------------------------------ fake NAT-PMP

/// Answers NAT-PMP requests on `ip:5351` with `reply(request)`; records them.
struct Fake {
    reqs: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start(ip: &str, reply: fn(&[u8]) -> Option<Vec<u8>>) -> Fake {
        let s = UdpSocket::bind((ip, 5351)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let reqs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (reqs.clone(), stop.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(120);
            let mut b = [0u8; 1500];
            while !st.load(Ordering::SeqCst) && Instant::now() < until {
                let Ok((n, from)) = s.recv_from(&mut b) else {
                    continue;
                };
                r.lock().unwrap().push(b[..n].to_vec());
                if let Some(a) = reply(&b[..n]) {
                    let _ = s.send_to(&a, from);
                }
            }
        });
        Fake { reqs, stop }
    }
    fn count(&self) -> usize {
        self.reqs.lock().unwrap().len()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn ext_reply(ip: [u8; 4]) -> Vec<u8> {
    let mut v = vec![0, 128, 0, 0, 0, 0, 0, 5];
    v.extend(ip);
    v
}

fn local_relay(n: u8, dir: &std::path::Path) -> NsRelay {
    let ip = format!("127.0.0.{n}");
    // Router at .n+1 (the fake); SMTP/HTTP off keeps the port list short.
    let ini = relay_ini(
        dir,
        &format!("router{n}.test"),
        &ip,
        &format!(
            "router_address = 127.0.0.{}\nsmtp_port = 0\nsubmission_port = 0\nsubmissions_port = 0\n\
             imap_port = 143\nimaps_port = 993\nhttps_port = 443\nhttp_port = 0\n",
            n + 1
        ),
    );
    start_relay(&[], &ini, dir)
}

#[test]
fn garbage_replies_are_rejected_without_a_crash() {
    let fake = Fake::start("127.0.0.133", |_| {
        Some(b"HTTP/1.1 200 OK\r\n\r\nnot NAT-PMP at all".to_vec())
    });
    let dir = TempDir::new("router");
    let relay = local_relay(132, dir.path());
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("malformed NAT-PMP reply")),
        "{}",
        relay.log()
    );
    // 4 retransmissions, then a wait of at least 30 s.
    std::thread::sleep(Duration::from_secs(3));
    assert!(fake.count() <= 4, "{}", fake.count());
    assert!(!relay.log().contains("panicked"));
}

#[test]
fn cgnat_wan_address_is_called_out_and_refusals_are_named() {
    // External address 100.64.7.8; every mapping refused with result 2.
    let _fake = Fake::start("127.0.0.135", |req| match req.get(1) {
        Some(0) => Some(ext_reply([100, 64, 7, 8])),
        Some(&op) => {
            let mut v = vec![0, 128 + op, 0, 2, 0, 0, 0, 5];
            v.extend_from_slice(req.get(4..8).unwrap_or(&[0; 4]));
            v.extend([0, 0, 0, 0]);
            Some(v)
        }
        None => None,
    });
    let dir = TempDir::new("router");
    let relay = local_relay(134, dir.path());
    assert!(
        common::wait_until(Duration::from_secs(20), || relay
            .log()
            .contains("router: mapped 0 of 3 ports")),
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
    assert!(log.contains("port 993 not mapped: not authorized"), "{log}");
}
