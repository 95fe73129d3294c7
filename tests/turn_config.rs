//! TURN configuration (issue 11): `turn_relay_ports` validation, the secret
//! file (0600, kept across restarts), `turn_port = 0` (no UDP socket, no
//! secret), and `chatrelay dns` listing the UDP ports to open.
//!
//! `turn_external_ip`: the relayed address a relay behind NAT hands out.
//!
//! Relay 127.0.0.119; `turn_external_ip`: relay 127.0.0.168, client
//! 127.0.0.169.

mod common;
mod turn_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{config_text, run_expect_exit, Relay, TempDir};

#[test]
fn bad_relay_port_ranges_are_refused() {
    let d = TempDir::new("turncfg");
    for v in ["49407-49152", "80-90", "x-1", "49152", "49152-70000"] {
        let ini = config_text(
            119,
            &d.path().join("data"),
            &format!("turn_relay_ports = {v}\n"),
        );
        let (code, err) = run_expect_exit(d.path(), &ini, Duration::from_secs(20));
        assert!(matches!(code, Some(c) if c != 0), "{v}: {code:?} {err}");
        assert!(err.contains("turn_relay_ports"), "{v}: {err}");
    }
}

#[test]
fn secret_file_is_private_and_stable() {
    let mut r = Relay::start(119);
    let p = r.data_dir().join("turn.secret");
    let s1 = std::fs::read_to_string(&p).unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    r.restart();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), s1, "made once, kept");
    assert!(!r.data_dir().join("turn.secret.tmp").exists());

    // `chatrelay turn-probe` (what the image test runs inside the appliance).
    let out = Command::new(common::bin())
        .args(["turn-probe", "--config"])
        .arg(r.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("answered by 127.0.0.119:3478"));
    drop(r);

    // turn_port = 0: no TURN socket and no secret.
    let r = Relay::start_with(119, "turn_port = 0\n");
    assert!(!r.data_dir().join("turn.secret").exists());
    let s = std::net::UdpSocket::bind("127.0.0.119:3478").expect("3478 free with turn_port = 0");
    drop(s);
    r.assert_no_panic();
}

#[test]
fn dns_lists_the_udp_ports() {
    let d = TempDir::new("turndns");
    let ini = d.path().join("chatmail.ini");
    let run = |extra: &str| {
        std::fs::write(
            &ini,
            format!(
                "[params]\nmail_domain = chat.example.org\ndkim_ed25519 = true\ndata_dir = {}\n{extra}",
                d.path().join("data").display()
            ),
        )
        .unwrap();
        let out = Command::new(common::bin())
            .args(["dns", "--config"])
            .arg(&ini)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let t = run("turn_relay_ports = 50000-50099\n");
    assert!(
        t.contains("UDP 3478 (TURN/STUN for calls) and UDP 50000-50099"),
        "{t}"
    );
    let t = run("turn_port = 0\n");
    assert!(!t.contains("UDP"), "{t}");
}

#[test]
fn bad_turn_external_ip_is_refused() {
    let d = TempDir::new("turncfg");
    for v in [
        "nonsense",
        "0.0.0.0",
        "224.0.0.1",
        "2001:db8::1",
        "203.0.113.7:3478",
    ] {
        let ini = config_text(
            168,
            &d.path().join("data"),
            &format!("turn_external_ip = {v}\n"),
        );
        let (code, err) = run_expect_exit(d.path(), &ini, Duration::from_secs(20));
        assert!(matches!(code, Some(c) if c != 0), "{v}: {code:?} {err}");
        assert!(err.contains("bad value for turn_external_ip"), "{v}: {err}");
    }
}

/// RFC 8656 §7.3: the Allocate answer names `turn_external_ip` with the
/// relay port; data still flows through the local relay socket.
#[test]
fn allocate_names_the_external_ip() {
    use turn_support::*;
    let r = Relay::start_with(
        168,
        "turn_external_ip = 203.0.113.7\nturn_relay_ports = 49170-49171\n",
    );
    let secret = std::fs::read_to_string(r.data_dir().join("turn.secret")).unwrap();
    let user = format!("{}:test", common::now_unix() + 3600);
    let server: std::net::SocketAddr = "127.0.0.168:3478".parse().unwrap();
    let mut c = Client::new(
        "127.0.0.169",
        server,
        &user,
        &rest_password(secret.trim(), &user),
    );
    let a = c.allocate(None);
    assert_eq!(a.class, 2, "{a:?}");
    let relayed = parse_xor_addr(a.get(0x0016).unwrap());
    assert_eq!(relayed.ip().to_string(), "203.0.113.7");
    assert!((49170..=49171).contains(&relayed.port()), "{relayed}");
    // The relay socket itself is local: a peer on loopback reaches it at
    // 127.0.0.168 with the same port.
    assert!(
        std::net::UdpSocket::bind(("127.0.0.168", relayed.port())).is_err(),
        "the relay port is bound locally"
    );
    assert!(r
        .stderr()
        .contains("TURN: relayed addresses name 203.0.113.7"));
    r.assert_no_panic();
}
