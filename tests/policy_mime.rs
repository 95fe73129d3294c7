//! The strict MIME reader of the policy against boundary tricks, limits and
//! an independent reader (issue 10, "Hardening"): every trick message is
//! refused, our own DSNs pass, and every message the policy accepts is read
//! into the same part tree by Python's stdlib `email` package
//! (`tests/support/policy_oracle.py`).

use chatrelay::policy::{check_incoming, check_outgoing, structure, Accepted};
use std::path::PathBuf;
use std::process::Command;

const ALICE: &str = "alice@example.org";
const BOB: &str = "bob@example.org";
const E2EE: &str = "523 Encryption Needed: Invalid Unencrypted Mail";

fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/eml", name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `encrypted.eml` with `find` replaced by `with` (exactly once).
fn enc_with(find: &str, with: &str) -> String {
    let e = fixture("encrypted.eml");
    assert_eq!(e.matches(find).count(), 1, "{find:?}");
    e.replacen(find, with, 1)
}

const CLOSE: &str = "--XBOUNDARY--";
const HTML: &str = "Content-Type: text/html\r\n\r\n<b>cleartext for the MUA</b>\r\n";

fn nested(depth: usize) -> String {
    let mut m = String::from("From: alice@example.org\r\nTo: bob@example.org\r\n");
    for i in 0..depth {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    m.push_str("Content-Type: text/plain\r\n\r\nhi\r\n");
    for i in (0..depth).rev() {
        m.push_str(&format!("--b{i}--\r\n"));
    }
    m
}

fn many_parts(n: usize) -> String {
    let mut m = String::from(
        "From: alice@example.org\r\nTo: bob@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
    );
    for _ in 0..n {
        m.push_str("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    }
    m.push_str("--b--\r\n");
    m
}

fn sj_with(find: &str, with: &str) -> String {
    let s = fixture("securejoin-vc.eml");
    assert_eq!(s.matches(find).count(), 1, "{find:?}");
    s.replacen(find, with, 1)
}

fn bounce_with(find: &str, with: &str) -> String {
    let s = fixture("mailer-daemon.eml");
    assert_eq!(s.matches(find).count(), 1, "{find:?}");
    s.replacen(find, with, 1)
}

/// Trick messages: name, message, the reply line both checks must give
/// (incoming with the matching envelope).
fn tricks() -> Vec<(&'static str, String, &'static str)> {
    let inner = "-----BEGIN PGP MESSAGE-----";
    vec![
        (
            "fake-delimiter-suffix",
            enc_with(CLOSE, &format!("--XBOUNDARYX\r\n{HTML}{CLOSE}")),
            E2EE,
        ),
        (
            "fake-delimiter-trailing-text",
            enc_with(CLOSE, &format!("--XBOUNDARY trailing-text\r\n{HTML}{CLOSE}")),
            E2EE,
        ),
        (
            "second-close-then-part",
            enc_with(CLOSE, &format!("{CLOSE}\r\n--XBOUNDARY\r\n{HTML}{CLOSE}")),
            E2EE,
        ),
        (
            "close-with-text-then-part",
            enc_with(CLOSE, &format!("--XBOUNDARY--x\r\n--XBOUNDARY\r\n{HTML}{CLOSE}")),
            E2EE,
        ),
        (
            "part-in-epilogue",
            enc_with(CLOSE, &format!("{CLOSE}\r\n{HTML}")),
            E2EE,
        ),
        (
            "part-in-preamble",
            enc_with(
                "\"XBOUNDARY\"\r\n\r\n--XBOUNDARY\r\n",
                &format!("\"XBOUNDARY\"\r\n\r\n--XBOUNDARY-preamble\r\n{HTML}--XBOUNDARY\r\n"),
            ),
            E2EE,
        ),
        (
            "nested-mixed-in-encrypted",
            enc_with(
                "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n",
                "Content-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\nContent-Type: application/octet-stream\r\n\r\n",
            )
            .replacen(CLOSE, &format!("--IN\r\n{HTML}--IN--\r\n{CLOSE}"), 1),
            E2EE,
        ),
        (
            "duplicate-content-type",
            enc_with(
                "MIME-Version: 1.0\r\n",
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"OTHER\"\r\n",
            )
            .replacen(CLOSE, &format!("{CLOSE}\r\n--OTHER\r\n{HTML}--OTHER--\r\n"), 1),
            E2EE,
        ),
        (
            "boundary-other-case",
            enc_with(CLOSE, &format!("--xboundary\r\n{HTML}{CLOSE}")),
            E2EE,
        ),
        (
            "boundary-quoted-pair",
            enc_with("boundary=\"XBOUNDARY\"", "boundary=\"XBOUND\\ARY\""),
            E2EE,
        ),
        (
            "boundary-rfc2231",
            enc_with("boundary=\"XBOUNDARY\"", "boundary*=''XBOUNDARY"),
            E2EE,
        ),
        (
            "boundary-twice",
            enc_with("boundary=\"XBOUNDARY\"", "boundary=\"XBOUNDARY\"; boundary=\"Y\""),
            E2EE,
        ),
        (
            "boundary-comment",
            enc_with("boundary=\"XBOUNDARY\"", "boundary=\"XBOUNDARY\" (x)"),
            E2EE,
        ),
        (
            "boundary-single-quotes",
            enc_with("boundary=\"XBOUNDARY\"", "boundary='XBOUNDARY'"),
            E2EE,
        ),
        (
            "missing-close-delimiter",
            enc_with(CLOSE, ""),
            E2EE,
        ),
        (
            "bare-lf-delimiter",
            enc_with("\r\n--XBOUNDARY\r\nContent-Type: application/octet-stream", "\r\n--XBOUNDARY\nContent-Type: application/octet-stream"),
            "500 Failed to parse message: mixed line endings",
        ),
        (
            "header-name-with-blank",
            enc_with("MIME-Version: 1.0\r\n", "MIME-Version: 1.0\r\nContent-Type : text/html\r\n"),
            "500 Failed to parse message: header line is not a field",
        ),
        (
            "base64-multipart",
            enc_with("MIME-Version: 1.0\r\n", "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n"),
            E2EE,
        ),
        (
            "armor-in-html-third-part",
            enc_with(CLOSE, &format!("--XBOUNDARY\r\nContent-Type: text/html\r\n\r\n{inner}\r\n{CLOSE}")),
            E2EE,
        ),
        ("nested-9-deep", nested(9), "500 Failed to parse message: multiparts nested too deeply"),
        ("parts-100", many_parts(100), "500 Failed to parse message: too many body parts"),
        (
            "securejoin-extra-html",
            sj_with("--SJ--", &format!("--SJ\r\n{HTML}--SJ--")),
            E2EE,
        ),
        (
            "securejoin-hidden-html",
            sj_with("--SJ--", &format!("--SJ--x\r\n--SJ\r\n{HTML}--SJ--")),
            E2EE,
        ),
        (
            "securejoin-fake-delimiter-html",
            sj_with("--SJ--", &format!("--SJ-\r\n{HTML}--SJ--")),
            E2EE,
        ),
        (
            "bounce-html-part",
            bounce_with("--DSN--", &format!("--DSN\r\n{HTML}--DSN--")),
            E2EE,
        ),
        (
            "bounce-html-first",
            bounce_with(
                "Content-Type: text/plain; charset=us-ascii",
                "Content-Type: text/html; charset=us-ascii",
            ),
            E2EE,
        ),
        (
            "bounce-alternative",
            bounce_with(
                "Content-Type: text/plain; charset=us-ascii\r\n",
                &format!("Content-Type: multipart/alternative; boundary=ALT\r\n\r\n--ALT\r\nContent-Type: text/plain\r\n\r\nx\r\n--ALT\r\n{HTML}--ALT--\r\n"),
            ),
            E2EE,
        ),
        (
            "bounce-cleartext-original",
            bounce_with(
                "--DSN--",
                &format!("--DSN\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@example.org\r\n{HTML}--DSN--"),
            ),
            E2EE,
        ),
        (
            "boundary-mid-line-bounce",
            bounce_with("--DSN--", &format!("\0\x04--DSN\r\n{HTML}--DSN--")),
            E2EE,
        ),
        (
            "boundary-mid-line-encrypted",
            enc_with(CLOSE, &format!("x--XBOUNDARY\r\n{HTML}{CLOSE}")),
            E2EE,
        ),
        (
            "bounce-no-report-type",
            bounce_with("report-type=delivery-status;", ""),
            E2EE,
        ),
    ]
}

fn envelope(raw: &str) -> (&'static str, Vec<String>) {
    if raw.contains("MAILER-DAEMON") {
        ("", vec![BOB.to_string()])
    } else {
        (ALICE, vec![BOB.to_string()])
    }
}

#[test]
fn boundary_tricks_are_refused() {
    let mut failures = Vec::new();
    for (name, raw, want) in tricks() {
        let (from, rcpts) = envelope(&raw);
        let inc = check_incoming(raw.as_bytes(), from, &rcpts).map(|ok| ok.accepted);
        match &inc {
            Err(r) if r.line() == want => {}
            _ => failures.push(format!("{name}: incoming {inc:?}, want {want}")),
        }
        if from == ALICE {
            let out = check_outgoing(raw.as_bytes(), from, &rcpts);
            match &out {
                Err(r) if r.line() == want => {}
                _ => failures.push(format!("{name}: outgoing {out:?}, want {want}")),
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn limits_leave_room_for_real_mail() {
    // 8 nested multiparts and 64 parts are still read (and refused as cleartext).
    let m = nested(8);
    assert!(structure::read(m.as_bytes()).is_ok());
    assert_eq!(
        check_incoming(m.as_bytes(), ALICE, &[]).unwrap_err().line(),
        E2EE
    );
    let m = many_parts(64);
    assert_eq!(structure::read(m.as_bytes()).unwrap().parts.len(), 64);
}

#[test]
fn big_nested_body_is_cheap() {
    // 8 nested multiparts around a 16 MiB body: linear (about 0.2 s for the
    // strict reader on an idle 2-core machine); generous bounds for a shared one.
    let mut m = nested(8);
    let big = "A".repeat(76) + "\r\n";
    let body: String = big.repeat(16 * 1024 * 1024 / 78);
    m = m.replacen("hi\r\n", &body, 1);
    let t = std::time::Instant::now();
    let _ = check_incoming(m.as_bytes(), ALICE, &[]);
    assert!(t.elapsed().as_secs_f64() < 3.0, "{:?}", t.elapsed());
    // 9 deep: refused by the reader before mailparse sees it.
    let mut m = nested(9);
    m = m.replacen("hi\r\n", &body, 1);
    let t = std::time::Instant::now();
    assert!(check_incoming(m.as_bytes(), ALICE, &[]).is_err());
    assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
}

#[test]
fn own_dsn_passes_incoming() {
    let original = fixture("encrypted.eml");
    let failed = vec![(
        "bob@example.net".to_string(),
        "550 5.1.1 no such user".to_string(),
    )];
    let dsn = chatrelay::outbound::bounce::build(
        "example.org",
        ALICE,
        original.as_bytes(),
        &failed,
        1_743_501_600,
        42,
    );
    let ok = check_incoming(&dsn, "", &[ALICE.to_string()]).expect("own DSN accepted");
    assert_eq!(ok.accepted, Accepted::MailerDaemonBounce);
    assert_eq!(ok.from_domain, "example.org");
    let tree = structure::read(&dsn).unwrap().tree();
    assert_eq!(
        tree,
        "multipart/report(text/plain,message/delivery-status,text/rfc822-headers)"
    );
}

#[test]
fn returned_encrypted_original_passes() {
    // What a remote Postfix returns of our users' mail: the whole (encrypted) original.
    let original = fixture("encrypted.eml");
    let raw = bounce_with(
        "--DSN--",
        &format!("--DSN\r\nContent-Type: message/rfc822\r\n\r\n{original}\r\n--DSN--"),
    );
    let ok = check_incoming(raw.as_bytes(), "", &[BOB.to_string()]).expect("accepted");
    assert_eq!(ok.accepted, Accepted::MailerDaemonBounce);
    // Headers only is fine too.
    let raw = bounce_with(
        "--DSN--",
        "--DSN\r\nContent-Type: message/rfc822\r\n\r\nFrom: alice@example.org\r\nSubject: [...]\r\n\r\n--DSN--",
    );
    assert!(check_incoming(raw.as_bytes(), "", &[BOB.to_string()]).is_ok());
}

/// Python's view of each message: (tree, defects).
fn python_trees(files: &[PathBuf]) -> Vec<(String, String)> {
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/support/policy_oracle.py"]
        .iter()
        .collect();
    let out = Command::new("python3")
        .arg(&script)
        .args(files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (t, d) = l.split_once('\t').expect("tab");
            (t.to_string(), d.to_string())
        })
        .collect();
    assert_eq!(lines.len(), files.len());
    lines
}

fn accepted_somehow(raw: &[u8]) -> bool {
    let bob = vec![BOB.to_string()];
    let alice = vec![ALICE.to_string()];
    check_outgoing(raw, ALICE, &bob).is_ok()
        || check_outgoing(raw, ALICE, &alice).is_ok()
        || check_incoming(raw, ALICE, &bob).is_ok()
        || check_incoming(raw, "", &bob).is_ok()
}

#[test]
fn python_email_agrees_on_everything_accepted() {
    let dir = std::env::temp_dir().join(format!("policy-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let fixtures: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/eml"]
        .iter()
        .collect();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    files.extend(names);
    // POLICY_TRICKS_OUT=<dir> also writes the trick messages there (fuzz seeds).
    let dump = std::env::var_os("POLICY_TRICKS_OUT").map(PathBuf::from);
    for (name, raw, _) in tricks() {
        let p = dir.join(format!("trick-{name}.eml"));
        std::fs::write(&p, &raw).unwrap();
        if let Some(d) = &dump {
            std::fs::write(d.join(format!("trick-{name}.eml")), &raw).unwrap();
        }
        files.push(p);
    }
    let py = python_trees(&files);
    let mut failures = Vec::new();
    let mut compared = 0;
    for (path, (py_tree, py_defects)) in files.iter().zip(&py) {
        let raw = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let ours = structure::read(&raw).map(|e| e.tree());
        let accepted = accepted_somehow(&raw);
        if let Ok(tree) = &ours {
            compared += 1;
            if tree != py_tree && accepted {
                failures.push(format!("{name}: accepted, ours {tree}, python {py_tree}"));
            }
        }
        if accepted && py_defects != "-" {
            failures.push(format!("{name}: accepted but python notes {py_defects}"));
        }
        if accepted && ours.is_err() {
            failures.push(format!("{name}: accepted without a strict reading"));
        }
        // Every well-formed fixture reads the same in both.
        let fixture = path.starts_with(&fixtures);
        if fixture && name != "broken-mime.eml" {
            match &ours {
                Ok(tree) if tree == py_tree => {}
                _ => failures.push(format!("fixture {name}: ours {ours:?}, python {py_tree}")),
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(compared > 40, "{compared}");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Inputs the fuzz targets found (`tests/fixtures/fuzz/`): every one is
/// checked in well under a second, and those named `refuse-*` are refused.
#[test]
fn fuzz_findings() {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/fuzz"]
        .iter()
        .collect();
    let bob = vec![BOB.to_string()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&path).unwrap();
        let t = std::time::Instant::now();
        let results = [
            check_incoming(&raw, ALICE, &bob).is_ok(),
            check_incoming(&raw, "", &bob).is_ok(),
            check_outgoing(&raw, ALICE, &bob).is_ok(),
            // self-sent: where the Autocrypt Setup Message exemption applies
            check_outgoing(&raw, ALICE, &[ALICE.to_string()]).is_ok(),
        ];
        assert!(t.elapsed().as_secs_f64() < 0.5, "{name}: {:?}", t.elapsed());
        if name.starts_with("refuse-") {
            assert_eq!(results, [false; 4], "{name}");
        }
    }
}
