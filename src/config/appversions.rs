//! The app-version index served as METADATA
//! `/shared/vendor/deltachat/appversions` (spec §9.3): one line of JSON in
//! the schema Delta Chat core reads, `{"clients":[{"clientId",
//! "sources":[{"sourceId","versionInteger","versionString","downloadUrl"}]}]}`.
//!
//! Core deserialises it into typed structs and drops the whole value when
//! one field has the wrong type, while unknown or misspelt keys silently
//! become defaults; so a file is checked here, at startup, with the same
//! rules: exactly these keys, non-empty strings, `versionInteger` a u32,
//! no duplicate client or source ids, at least one of each.

use serde_json::Value;

/// The index shipped with chatrelay (`appversions_file` unset).
pub const DEFAULT: &str = include_str!("defaults/appversions.json");

/// The `appversions_file` value that turns the entry off (answered NIL).
pub const OFF: &str = "off";

/// Largest file accepted (a few clients with a few sources fit in 4 KiB).
pub const MAX_FILE: usize = 64 * 1024;

fn keys_are(v: &serde_json::Map<String, Value>, want: &[&str], what: &str) -> Result<(), String> {
    let mut have: Vec<&str> = v.keys().map(|k| k.as_str()).collect();
    have.sort_unstable();
    let mut w = want.to_vec();
    w.sort_unstable();
    if have != w {
        return Err(format!(
            "{what} must have exactly the keys {want:?}, has {have:?}"
        ));
    }
    Ok(())
}

fn nonempty_str<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{what} must be a non-empty string")),
    }
}

/// Check `text` against the schema and return it as one line of JSON.
pub fn single_line(text: &str) -> Result<String, String> {
    if text.len() > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let top = v.as_object().ok_or("the top level must be an object")?;
    keys_are(top, &["clients"], "the top level")?;
    let clients = top["clients"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or("\"clients\" must be a non-empty array")?;
    let mut client_ids = Vec::new();
    for c in clients {
        let c = c.as_object().ok_or("each client must be an object")?;
        keys_are(c, &["clientId", "sources"], "a client")?;
        let id = nonempty_str(&c["clientId"], "clientId")?;
        if client_ids.contains(&id) {
            return Err(format!("clientId {id:?} appears twice"));
        }
        client_ids.push(id);
        let sources = c["sources"]
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or("\"sources\" must be a non-empty array")?;
        let mut source_ids = Vec::new();
        for s in sources {
            let s = s.as_object().ok_or("each source must be an object")?;
            keys_are(
                s,
                &["sourceId", "versionInteger", "versionString", "downloadUrl"],
                "a source",
            )?;
            let sid = nonempty_str(&s["sourceId"], "sourceId")?;
            if source_ids.contains(&sid) {
                return Err(format!("sourceId {sid:?} appears twice in client {id:?}"));
            }
            source_ids.push(sid);
            // A JSON integer 0..2^32 (core parses a u32); 754.0, "754", true are refused.
            match s["versionInteger"].as_u64() {
                Some(n) if n < 1 << 32 => {}
                _ => return Err("versionInteger must be an integer from 0 to 4294967295".into()),
            }
            nonempty_str(&s["versionString"], "versionString")?;
            nonempty_str(&s["downloadUrl"], "downloadUrl")?;
        }
    }
    // serde_json's compact form escapes control characters: one line.
    Ok(v.to_string())
}

/// The value for `appversions_file`: unset or empty = the shipped index,
/// `off` = none (NIL), else the file at that path.
pub fn load(setting: Option<&str>) -> Result<Option<String>, String> {
    match setting.map(str::trim) {
        None | Some("") => single_line(DEFAULT).map(Some),
        Some(v) if v.eq_ignore_ascii_case(OFF) => Ok(None),
        Some(path) => {
            let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            if meta.len() > MAX_FILE as u64 {
                return Err(format!("{path}: larger than {MAX_FILE} bytes"));
            }
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            single_line(&text)
                .map(Some)
                .map_err(|e| format!("{path}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_passes_and_is_one_line() {
        let s = single_line(DEFAULT).unwrap();
        assert!(!s.contains('\n') && !s.contains('\r'));
        assert!(s.starts_with("{\"clients\":[{"), "{s}");
    }

    #[test]
    fn refuses_what_core_would_drop() {
        let good: Value = serde_json::from_str(DEFAULT).unwrap();
        let bad_int = [
            Value::Bool(true),
            serde_json::json!(-1),
            serde_json::json!(1u64 << 32),
            serde_json::json!("754"),
            serde_json::json!(754.0),
            Value::Null,
        ];
        for b in bad_int {
            let mut v = good.clone();
            v["clients"][0]["sources"][0]["versionInteger"] = b.clone();
            assert!(single_line(&v.to_string()).is_err(), "{b}");
        }
        for key in ["clientId", "sources"] {
            let mut v = good.clone();
            let c = v["clients"][0].as_object_mut().unwrap();
            let x = c.remove(key).unwrap();
            c.insert(format!("{key}s"), x);
            assert!(single_line(&v.to_string()).is_err(), "{key}");
        }
        let mut v = good.clone();
        let s0 = v["clients"][0]["sources"][0].clone();
        v["clients"][0]["sources"].as_array_mut().unwrap().push(s0);
        assert!(single_line(&v.to_string()).unwrap_err().contains("twice"));
        assert!(single_line("{\"clients\":[]}").is_err());
        assert!(single_line("bad json").is_err());
        assert!(single_line("[1]").is_err());
    }

    #[test]
    fn newlines_in_values_stay_escaped() {
        let t = "{\"clients\":[{\"clientId\":\"one\\ntwo\",\"sources\":[{\"sourceId\":\"a\",\
                 \"versionInteger\":1,\"versionString\":\"1\",\"downloadUrl\":\"https://x\"}]}]}";
        let s = single_line(t).unwrap();
        assert!(s.contains("one\\ntwo") && !s.contains('\n'), "{s}");
    }

    #[test]
    fn off_and_default() {
        assert_eq!(load(Some("off")).unwrap(), None);
        assert_eq!(load(Some(" OFF ")).unwrap(), None);
        assert!(load(None).unwrap().is_some());
        assert!(load(Some("")).unwrap().is_some());
        assert!(load(Some("/nonexistent/appversions.json")).is_err());
    }
}
