//! coturn's own test clients against our TURN server (issue 11, done-when):
//! `turnutils_uclient` allocates, binds channels (and, with `-s`, uses Send
//! indications) and exchanges messages with `turnutils_peer` through our
//! relay, with REST credentials taken from IMAP METADATA; wrong
//! credentials cannot allocate. Needs Debian's `coturn` package
//! (scripts/install-test-deps.sh installs it without starting its daemon).
//!
//! Relay 127.0.0.115 (with `turn_allow_loopback_peers_for_tests`), peer
//! 127.0.0.116:3480, clients from 127.0.0.117.

mod common;
mod turn_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Relay;

struct Peer(Child);
impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run uclient (bounded by `timeout`); (exit code, stdout+stderr).
fn uclient(args: &[&str]) -> (i32, String) {
    let out = Command::new("timeout")
        .arg("60")
        .arg("turnutils_uclient")
        .args(args)
        .output()
        .expect("turnutils_uclient (Debian package coturn) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn totals(out: &str) -> (u32, u32) {
    let l = out
        .lines()
        .rev()
        .find(|l| l.contains("tot_send_msgs="))
        .unwrap_or_else(|| panic!("no totals in:\n{out}"));
    let num = |k: &str| -> u32 {
        let i = l.find(k).unwrap() + k.len();
        l[i..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (num("tot_send_msgs="), num("tot_recv_msgs="))
}

#[test]
fn coturn_uclient_relays_through_our_server() {
    let r = Relay::start_with(115, "turn_allow_loopback_peers_for_tests = true\n");
    let mut imap = r.login("coturnus1");
    let (host, port, user, pw) =
        turn_support::parse_turn_metadata(&imap.cmd(turn_support::TURN_METADATA).text())
            .expect("TURN credentials");
    let port = port.to_string();
    let peer = Peer(
        Command::new("turnutils_peer")
            .args(["-L", "127.0.0.116", "-p", "3480"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnutils_peer (Debian package coturn)"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let base = [
        "-u",
        &user,
        "-w",
        &pw,
        "-p",
        &port,
        "-e",
        "127.0.0.116",
        "-r",
        "3480",
        "-L",
        "127.0.0.117",
    ];

    // Channels (ChannelBind + ChannelData), one client, 20 messages.
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["-n", "20", "-m", "1", "-c", &host]);
    let (code, out) = uclient(&a);
    assert_eq!(totals(&out), (20, 20), "exit {code}:\n{out}");
    assert!(out.contains("Total lost packets 0"), "{out}");

    // Send/Data indications (-s), two clients, 20 messages each.
    let mut a: Vec<&str> = base.to_vec();
    a.extend(["-n", "20", "-m", "2", "-c", "-s", &host]);
    let (code, out) = uclient(&a);
    assert_eq!(totals(&out), (40, 40), "exit {code}:\n{out}");

    // Wrong password: no allocation, nothing relayed.
    let a = [
        "-u",
        &user,
        "-w",
        "wrong",
        "-p",
        &port,
        "-e",
        "127.0.0.116",
        "-r",
        "3480",
        "-L",
        "127.0.0.117",
        "-n",
        "5",
        "-m",
        "1",
        "-c",
        &host,
    ];
    let (code, out) = uclient(&a);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Cannot complete Allocation"), "{out}");
    drop(peer);
    r.assert_no_panic();
}
