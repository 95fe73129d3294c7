//! METADATA `/shared/vendor/deltachat/appversions` (issue 12): the shipped
//! index as one line of JSON in Delta Chat core's schema, an operator's
//! file (`appversions_file`) instead, NIL only with `appversions_file =
//! off`, and a file outside the schema refused at start-up with a clear
//! message. Relays 127.0.0.24, 127.0.0.25.

mod common;

use common::{run_expect_exit, Relay, TempDir};
use serde_json::Value;

const KEY: &str = "/shared/vendor/deltachat/appversions";

/// The value of one server entry (`None` for NIL).
fn server_entry(c: &mut common::Imap, key: &str) -> Option<String> {
    let r = c.cmd(&format!("GETMETADATA \"\" ({key})"));
    assert!(r.ok(), "{r:?}");
    let line = r.lines()[0].clone();
    let rest = &line[line.find(key).unwrap() + key.len() + 1..];
    if rest.starts_with("NIL") {
        return None;
    }
    assert!(rest.starts_with('{'), "value as literal: {rest:?}");
    let close = rest.find("}\r\n").unwrap();
    let n: usize = rest[1..close].parse().unwrap();
    Some(rest[close + 3..close + 3 + n].to_string())
}

/// The schema check as core reads it (written here from the upstream
/// test's rules): exact keys, non-empty strings, u32 versionInteger,
/// unique ids, official download locations for the shipped file.
fn check_schema(v: &Value, official: bool) {
    let top = v.as_object().unwrap();
    assert_eq!(top.keys().collect::<Vec<_>>(), ["clients"]);
    let clients = top["clients"].as_array().unwrap();
    assert!(!clients.is_empty());
    let mut ids = Vec::new();
    for c in clients {
        let c = c.as_object().unwrap();
        let mut keys: Vec<&String> = c.keys().collect();
        keys.sort();
        assert_eq!(keys, ["clientId", "sources"]);
        let id = c["clientId"].as_str().unwrap();
        assert!(!id.is_empty() && !ids.contains(&id));
        ids.push(id);
        let sources = c["sources"].as_array().unwrap();
        assert!(!sources.is_empty());
        let mut sids = Vec::new();
        for s in sources {
            let s = s.as_object().unwrap();
            let mut keys: Vec<&String> = s.keys().collect();
            keys.sort();
            assert_eq!(
                keys,
                ["downloadUrl", "sourceId", "versionInteger", "versionString"]
            );
            let sid = s["sourceId"].as_str().unwrap();
            assert!(!sid.is_empty() && !sids.contains(&sid));
            sids.push(sid);
            let n = &s["versionInteger"];
            assert!(n.is_u64() && n.as_u64().unwrap() < 1 << 32, "{n}");
            assert!(!s["versionString"].as_str().unwrap().is_empty());
            let url = s["downloadUrl"].as_str().unwrap();
            assert!(!url.is_empty());
            if official {
                assert!(
                    url.starts_with("https://github.com/deltachat/")
                        || url.starts_with("https://download.delta.chat/"),
                    "{url}"
                );
            }
        }
    }
}

#[test]
fn shipped_index_operator_file_and_off() {
    let r = Relay::start(24);
    let mut c = r.login("appversn1");
    let v = server_entry(&mut c, KEY).expect("appversions served by default");
    assert!(
        !v.contains('\n') && !v.contains('\r'),
        "not one line: {v:?}"
    );
    check_schema(&serde_json::from_str(&v).unwrap(), true);
    drop(c);
    drop(r);

    let tmp = TempDir::new("appvers");
    let file = tmp.path().join("appversions.json");
    std::fs::write(
        &file,
        "{\n  \"clients\": [ { \"clientId\": \"deltachat\", \"sources\": [\n    \
         { \"sourceId\": \"fdroid\", \"versionInteger\": 800, \"versionString\": \"2.60.0\",\n      \
         \"downloadUrl\": \"https://example.org/line\\nbreak.apk\" } ] } ]\n}\n",
    )
    .unwrap();
    let r = Relay::start_with(25, &format!("appversions_file = {}\n", file.display()));
    let mut c = r.login("appversn2");
    let v = server_entry(&mut c, KEY).expect("operator file served");
    assert!(!v.contains('\n'), "{v:?}");
    assert!(
        v.contains("\"versionInteger\":800") && v.contains("line\\nbreak"),
        "{v}"
    );
    check_schema(&serde_json::from_str(&v).unwrap(), false);
    drop(c);
    drop(r);

    let r = Relay::start_with(25, "appversions_file = off\n");
    let mut c = r.login("appversn3");
    assert_eq!(server_entry(&mut c, KEY), None);
    // Other entries unaffected.
    assert_eq!(
        server_entry(&mut c, "/shared/vendor/deltachat/maxsmtprecipients").as_deref(),
        Some("1000")
    );
}

#[test]
fn file_outside_the_schema_stops_startup() {
    let tmp = TempDir::new("appvers-bad");
    let bad = tmp.path().join("bad.json");
    let data = tmp.path().join("data");
    for (content, want) in [
        ("{\"clients\":[{\"clientId\":\"x\",\"sources\":[{\"sourceId\":\"a\",\"versionInteger\":\"7\",\"versionString\":\"1\",\"downloadUrl\":\"https://x\"}]}]}", "versionInteger"),
        ("{\"clients\":[{\"clientIds\":\"x\",\"sources\":[]}]}", "exactly the keys"),
        ("not json", "not JSON"),
    ] {
        std::fs::write(&bad, content).unwrap();
        let ini = format!(
            "[params]\nmail_domain = 127.0.0.25\nlisten_address = 127.0.0.25\ndata_dir = {}\n\
             appversions_file = {}\n",
            data.display(),
            bad.display()
        );
        let (code, err) = run_expect_exit(tmp.path(), &ini, std::time::Duration::from_secs(20));
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("appversions_file") && err.contains(want), "{err}");
    }
}
