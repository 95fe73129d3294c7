//! Startup with a bad chatmail.ini or a bad data folder: a clear message and a
//! non-zero exit, never a panic; unknown keys only warn.
mod common;
use common::*;
use std::time::Duration;

const EXIT_WAIT: Duration = Duration::from_secs(20);

fn assert_clean_failure(code: Option<i32>, err: &str, needles: &[&str]) {
    assert!(code.is_some(), "server did not exit; stderr:\n{err}");
    assert_ne!(code, Some(0), "stderr:\n{err}");
    assert!(
        !err.contains("panicked"),
        "panic instead of a message:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}:\n{err}");
    }
}

#[test]
fn unknown_key_warns_and_starts() {
    let r = Relay::start_with(140, "frobnicate_level = 7");
    let err = r.stderr();
    assert!(
        err.contains("frobnicate_level"),
        "no warning naming the key:\n{err}"
    );
    assert!(err.to_lowercase().contains("unknown"), "{err}");
    let mut c = r.imaps();
    assert!(c.cmd("NOOP").ok());
}

#[test]
fn bad_values_name_key_and_value() {
    let d = TempDir::new("cfgbad");
    let data = d.path().join("data");
    for (line, key, val) in [
        ("imap_port = 99999", "imap_port", "99999"),
        ("max_mailbox_size = lots", "max_mailbox_size", "lots"),
        ("password_min_length = -3", "password_min_length", "-3"),
        ("nocreate = maybe", "nocreate", "maybe"),
        ("listen_address = not-an-ip", "listen_address", "not-an-ip"),
        ("max_message_size = 10MB", "max_message_size", "10MB"),
    ] {
        let ini = config_text(141, &data, line);
        let (code, err) = run_expect_exit(d.path(), &ini, EXIT_WAIT);
        assert_clean_failure(code, &err, &[key, val]);
    }
}

#[test]
fn malformed_ini_and_missing_domain() {
    let d = TempDir::new("cfgmal");
    let (code, err) = run_expect_exit(d.path(), "[params\nmail_domain = 127.0.0.142\n", EXIT_WAIT);
    assert_clean_failure(code, &err, &["line 1"]);
    let (code, err) = run_expect_exit(d.path(), "[params]\njust some words\n", EXIT_WAIT);
    assert_clean_failure(code, &err, &["line 2"]);
    let (code, err) = run_expect_exit(d.path(), "[params]\nmail_domain = bad domain!\n", EXIT_WAIT);
    assert_clean_failure(code, &err, &["mail_domain"]);
}

#[test]
fn missing_config_file() {
    let d = TempDir::new("cfgmiss");
    let missing = d.path().join("nope.ini");
    let (code, err) = run_args_expect_exit(
        d.path(),
        &["serve", "--config", missing.to_str().unwrap()],
        EXIT_WAIT,
    );
    assert_clean_failure(code, &err, &["nope.ini"]);
    let (code, err) = run_args_expect_exit(d.path(), &["serve", "--bogus"], EXIT_WAIT);
    assert_clean_failure(code, &err, &["--bogus"]);
}

#[test]
fn data_dir_is_a_regular_file() {
    let d = TempDir::new("ddfile");
    let data = d.path().join("data");
    std::fs::write(&data, b"not a directory").unwrap();
    let (code, err) = run_expect_exit(d.path(), &config_text(143, &data, ""), EXIT_WAIT);
    assert_clean_failure(code, &err, &["data"]);
}

#[test]
fn data_dir_unwritable() {
    // Root ignores permission bits; /proc refuses mkdir for everyone.
    let d = TempDir::new("ddproc");
    let data = std::path::Path::new("/proc/chatrelay-test-data");
    let (code, err) = run_expect_exit(d.path(), &config_text(144, data, ""), EXIT_WAIT);
    assert_clean_failure(code, &err, &["/proc/chatrelay-test-data"]);
}

#[test]
fn corrupt_index() {
    let d = TempDir::new("ddcorrupt");
    let data = d.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("index.redb"), vec![0x5a; 64 * 1024]).unwrap();
    let (code, err) = run_expect_exit(d.path(), &config_text(145, &data, ""), EXIT_WAIT);
    assert_clean_failure(code, &err, &["store"]);
}

#[test]
fn port_in_use() {
    let r = Relay::start(146);
    let d = TempDir::new("portuse");
    let data = d.path().join("data");
    let (code, err) = run_expect_exit(d.path(), &config_text(146, &data, ""), EXIT_WAIT);
    assert_clean_failure(code, &err, &["993"]);
    drop(r);
}
