//! Registration policy (issue 12): `registration = invite | closed`, invite
//! tokens from `chatrelay invite new/list/revoke` (through the running
//! relay's control socket) and from the LAN status page, `/new?t=` and the
//! `dclogin:` path of self-signed relays, used / expired / revoked / forged
//! tokens, two concurrent redemptions of one single-use token, tokens kept
//! only as hashes. Addresses 127.0.0.26–29.
mod common;
#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use common::*;

/// `chatrelay invite <args> --config <relay's>`: (success, stdout, stderr).
fn cli(r: &Relay, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("invite")
        .args(args)
        .arg("--config")
        .arg(r.config_path())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn link_in(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("dclogin:") || l.starts_with("DCACCOUNT:"))
        .unwrap_or_else(|| panic!("no link in {out}"))
        .to_string()
}

fn new_invite(r: &Relay, args: &[&str]) -> String {
    let mut a = vec!["new"];
    a.extend_from_slice(args);
    let (ok, out, err) = cli(r, &a);
    assert!(ok, "invite new failed: {err}");
    link_in(&out)
}

/// (address, password) of a `dclogin:` link.
fn dclogin_parts(link: &str) -> (String, String) {
    let rest = link.strip_prefix("dclogin:").unwrap();
    let (addr, q) = rest.split_once('?').unwrap();
    let p = q.split('&').find_map(|kv| kv.strip_prefix("p=")).unwrap();
    assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()), "{p}");
    (addr.to_string(), p.to_string())
}

fn token_of(link: &str) -> String {
    if link.starts_with("dclogin:") {
        dclogin_parts(link).1
    } else {
        link.split_once("?t=").unwrap().1.to_string()
    }
}

fn redeem(r: &Relay, host: &str, token: &str) -> HttpResp {
    https_post(r.sock(443), host, &format!("/new?t={token}"), b"")
}

fn refused(resp: &HttpResp, why: &str) {
    assert_eq!(resp.status, 403, "{resp:?}");
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json"),
        "{resp:?}"
    );
    let reason = json_field(&resp.body_str(), "reason").unwrap_or_default();
    assert!(reason.contains(why), "reason {reason:?} lacks {why:?}");
}

fn login(r: &Relay, addr: &str, pass: &str) -> Resp {
    let mut c = r.imaps();
    c.login(addr, pass)
}

#[test]
fn invite_mode_on_an_ip_relay() {
    let mut r = Relay::start_with(26, "registration = invite\n");
    let host = r.ip();
    refused(
        &https_post(r.sock(443), &host, "/new", b""),
        "needs an invite code",
    );
    // Create-on-first-login is off for unknown addresses.
    assert!(login(&r, &r.addr("strangers"), "some-password-1").no());

    // The first-start invitation, shown while there is no account.
    let (ok, out, err) = cli(&r, &[]);
    assert!(ok, "{err}");
    assert!(out.contains("First invitation"), "{out}");
    let first = link_in(&out);
    assert!(first.ends_with("&ic=3"), "{first}");
    let status = https_get(r.sock(443), &host, "/status").body_str();
    assert!(
        status.contains(&html_attr(&first)),
        "status page lacks the first invite"
    );
    let (addr, token) = dclogin_parts(&first);
    let l = login(&r, &addr, &token);
    assert!(l.ok(), "dclogin invite did not create the account: {l:?}");
    assert!(
        login(&r, &addr, &token).ok(),
        "second login of that account"
    );
    // Used: the same token opens no other address.
    assert!(login(&r, &r.addr("otheruser"), &token).no());
    let (_, out, _) = cli(&r, &[]);
    assert!(out.contains("invite-only"), "{out}");
    assert!(!https_get(r.sock(443), &host, "/status")
        .body_str()
        .contains(&html_attr(&first)));

    // An invite through /new: the account exists at once.
    let t2 = token_of(&new_invite(&r, &[]));
    let ok = redeem(&r, &host, &t2);
    assert_eq!(ok.status, 200, "{ok:?}");
    let email = json_field(&ok.body_str(), "email").unwrap();
    let password = json_field(&ok.body_str(), "password").unwrap();
    assert!(json_field(&ok.body_str(), "dclogin_url")
        .unwrap()
        .starts_with("dclogin:"));
    assert!(login(&r, &email, &password).ok());
    refused(&redeem(&r, &host, &t2), "already been used");
    assert!(login(&r, &r.addr("thirduser"), &t2).no());
    // A GET (link preview, prefetch) never spends an invite.
    let t3 = token_of(&new_invite(&r, &[]));
    let g = https_get(r.sock(443), &host, &format!("/new?t={t3}"));
    assert_eq!(g.status, 405, "{g:?}");
    assert_eq!(redeem(&r, &host, &t3).status, 200);

    refused(&redeem(&r, &host, "forgedtokenforgedtoken00"), "not valid");
    refused(&redeem(&r, &host, "x"), "not valid");

    let revoke_link = new_invite(&r, &["--expires", "2d"]);
    let (_, list, _) = cli(&r, &["list"]);
    let id = list
        .lines()
        .rfind(|l| l.contains("valid"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let (ok, out, err) = cli(&r, &["revoke", &id]);
    assert!(ok && out.contains("revoked"), "{out}{err}");
    refused(&redeem(&r, &host, &token_of(&revoke_link)), "revoked");
    assert!(!cli(&r, &["revoke", "9999"]).0);

    let short = token_of(&new_invite(&r, &["--expires", "1s"]));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    refused(&redeem(&r, &host, &short), "expired");

    // dclogin: links name one account: N-use refused with the reason.
    let (ok, _, err) = cli(&r, &["new", "--uses", "3"]);
    assert!(!ok && err.contains("single-use"), "{err}");
    assert!(!cli(&r, &["new", "--uses", "0"]).0);

    let (_, list, _) = cli(&r, &["list"]);
    for state in ["used", "revoked", "expired"] {
        assert!(list.contains(state), "{list}");
    }

    // Only hashes are stored: no token appears in any file of the data dir.
    let mut files = vec![r.data_dir()];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(b) = std::fs::read(&p) {
            seen += 1;
            for t in [&token, &t2, &short] {
                assert!(
                    !b.windows(t.len()).any(|w| w == t.as_bytes()),
                    "token in {}",
                    p.display()
                );
            }
        }
    }
    assert!(seen > 0);

    // Invites survive a restart (the store is durable).
    r.restart();
    let (_, list2, _) = cli(&r, &["list"]);
    assert_eq!(list2.lines().count(), list.lines().count(), "{list2}");
    refused(&redeem(&r, &host, &t2), "already been used");
    r.assert_no_panic();
}

/// The status page's attribute form of a link (`&` escaped).
fn html_attr(link: &str) -> String {
    link.replace('&', "&amp;")
}

#[test]
fn status_page_makes_invites_same_site_only() {
    let r = Relay::start_with(27, "registration = invite\n");
    let host = r.ip();
    let resp = https_post(r.sock(443), &host, "/status/invite", b"");
    assert_eq!(resp.status, 200, "{resp:?}");
    let body = resp.body_str();
    assert!(
        body.contains("<svg") && body.contains("New single-use invitation"),
        "{body}"
    );
    let i = body.find("href=\"dclogin:").unwrap() + 6;
    let link = body[i..i + body[i..].find('"').unwrap()].replace("&amp;", "&");
    let (addr, token) = dclogin_parts(&link);
    assert!(login(&r, &addr, &token).ok());
    // A form posted from another site is refused.
    let cross = https_raw(
        r.sock(443),
        format!(
            "POST /status/invite HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(cross.status, 403, "{cross:?}");
    let same = https_raw(
        r.sock(443),
        format!(
            "POST /status/invite HTTP/1.1\r\nHost: {host}\r\nOrigin: https://{host}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(same.status, 200, "{same:?}");
}

#[test]
fn concurrent_redemptions_of_a_single_use_token() {
    let r = Relay::start_with(27 + 1, "registration = invite\n");
    let host = r.ip();
    for round in 0..4 {
        let token = token_of(&new_invite(&r, &[]));
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<HttpResp> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        redeem(&r, &host, &token)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins = results.iter().filter(|x| x.status == 200).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        let loser = results.iter().find(|x| x.status != 200).unwrap();
        refused(loser, "already been used");
    }
    r.assert_no_panic();
}

#[test]
fn closed_and_n_use_on_a_domain_relay() {
    // Closed: nothing is created anywhere.
    {
        let r = Relay::start_with(29, "registration = closed\n");
        refused(
            &https_post(r.sock(443), &r.ip(), "/new", b""),
            "does not create",
        );
        assert!(login(&r, &r.addr("closeduser"), "some-password-1").no());
        let (ok, out, _) = cli(&r, &[]);
        assert!(ok && out.contains("closed"), "{out}");
    }
    // A domain relay with a real certificate: DCACCOUNT links, N-use.
    let tmp = TempDir::new("reg-ca");
    let ca = support::TestCa::new(tmp.path());
    let (c, k) = ca.issue("chat.example");
    let r = Relay::start_with(
        29,
        &format!(
            "mail_domain = chat.example\ntls_external_cert_and_key = {} {}\ndkim_ed25519 = true\n\
             registration = invite\n",
            c.display(),
            k.display()
        ),
    );
    let link = new_invite(&r, &["--uses", "2", "--expires", "7d"]);
    assert!(
        link.starts_with("DCACCOUNT:https://chat.example/new?t="),
        "{link}"
    );
    let token = token_of(&link);
    let mut made = Vec::new();
    for _ in 0..2 {
        let ok = redeem(&r, "chat.example", &token);
        assert_eq!(ok.status, 200, "{ok:?}");
        let email = json_field(&ok.body_str(), "email").unwrap();
        assert!(email.ends_with("@chat.example"), "{email}");
        assert!(json_field(&ok.body_str(), "dclogin_url").is_none());
        let password = json_field(&ok.body_str(), "password").unwrap();
        assert!(login(&r, &email, &password).ok());
        made.push(email);
    }
    assert_ne!(made[0], made[1]);
    refused(&redeem(&r, "chat.example", &token), "already been used");
    // GET keeps the token on its way to the app.
    let g = https_get(r.sock(443), "chat.example", &format!("/new?t={token}"));
    assert_eq!(g.status, 301);
    assert_eq!(
        g.header("location").unwrap(),
        format!("dcaccount:https://chat.example/new?t={token}")
    );
    // A live DCACCOUNT token is no password: an unknown address cannot log
    // in with it, and no use is spent.
    let live = token_of(&new_invite(&r, &[]));
    assert!(login(&r, "someoneels@chat.example", &live).no());
    assert_eq!(redeem(&r, "chat.example", &live).status, 200);
}
