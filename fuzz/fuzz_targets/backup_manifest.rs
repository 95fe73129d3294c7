//! Fuzz the hand-written text parsers of issue 14: a backup archive's
//! FORMAT and MANIFEST members (`backup::manifest`), the backup status file
//! (`backup::status`) and Maildir file / folder names and
//! `dovecot-keywords` (`upstream::maildir`). No panic; an accepted manifest
//! re-encodes to the same entries and lists only safe member paths.
#![no_main]

use chatrelay::backup::{manifest, status};
use chatrelay::upstream::maildir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = manifest::Format::parse(data);
    if let Ok(entries) = manifest::parse(data) {
        for e in &entries {
            assert!(manifest::check_path(&e.path).is_ok());
            assert!(!e.path.split('/').any(|c| c == ".."));
        }
        assert_eq!(manifest::parse(manifest::encode(&entries).as_bytes()).unwrap(), entries);
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(st) = status::Status::parse(s) {
        let _ = st.summary();
        assert_eq!(status::Status::parse(&st.encode()).map(|x| x.time), Some(st.time));
    }
    let kw = maildir::parse_keywords(s);
    assert_eq!(kw.len(), 26);
    let f = maildir::flags_of(s, &kw);
    assert!(f.keywords.len() <= 27);
    let _ = maildir::size_of(s);
    if let Some(n) = maildir::folder_name(s) {
        assert!(!n.is_empty() && !n.split('/').any(|p| p.is_empty()));
    }
});
