//! `chatrelay dns`: the zone records of spec §13, with the DKIM key made on
//! first use (RSA-2048 by default, Ed25519 with `dkim_ed25519 = true`).

use std::process::Command;

fn dns_output(extra: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "chatrelay-dnscli-{}-{}",
        std::process::id(),
        extra.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ini = dir.join("chatmail.ini");
    std::fs::write(
        &ini,
        format!(
            "[params]\nmail_domain = chat.example.org\ndata_dir = {}\n{extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chatrelay"))
        .args(["dns", "--config"])
        .arg(&ini)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Same key on a second run (kept in the data folder).
    let again = Command::new(env!("CARGO_BIN_EXE_chatrelay"))
        .args(["dns", "--config"])
        .arg(&ini)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
    let _ = std::fs::remove_dir_all(&dir);
    text
}

#[test]
fn rsa_record_and_zone_lines() {
    let t = dns_output("");
    assert!(
        t.contains("chat.example.org.  3600 IN MX    10 chat.example.org."),
        "{t}"
    );
    assert!(t.contains("opendkim._domainkey.chat.example.org."), "{t}");
    assert!(t.contains("v=DKIM1;k=rsa;p=MII"), "{t}");
    assert!(t.contains("_dmarc.chat.example.org."), "{t}");
    // TXT strings are split at 255 bytes.
    assert!(
        t.lines().all(|l| l.split('"').all(|s| s.len() <= 255)),
        "{t}"
    );
}

#[test]
fn ed25519_record_when_configured() {
    let t = dns_output("dkim_ed25519 = true\ndkim_selector = ed\n");
    assert!(t.contains("ed._domainkey.chat.example.org."), "{t}");
    assert!(t.contains("k=ed25519;p="), "{t}");
}

#[test]
fn ip_literal_needs_no_records() {
    let dir = std::env::temp_dir().join(format!("chatrelay-dnscli-ip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ini = dir.join("c.ini");
    std::fs::write(
        &ini,
        format!(
            "[params]\nmail_domain = 192.0.2.7\ndata_dir = {}\n",
            dir.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chatrelay"))
        .args(["dns", "--config"])
        .arg(&ini)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no DNS records are needed"));
    let _ = std::fs::remove_dir_all(&dir);
}
