//! The two text members of a backup archive (README "Backup archive
//! format"): `chatrelay-backup/FORMAT`, the first member, says which format
//! the archive has, so a newer one is refused before anything is read;
//! `chatrelay-backup/MANIFEST`, the last member, lists every other member
//! with its size and SHA-256, so a truncated or altered archive is refused
//! before anything is replaced. Parsing is pure (fuzz target `backup_manifest`).

/// The archive format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
pub const FORMAT_PATH: &str = "chatrelay-backup/FORMAT";
pub const MANIFEST_PATH: &str = "chatrelay-backup/MANIFEST";
/// Members under this prefix are the data folder's files.
pub const DATA_PREFIX: &str = "data/";
/// The configuration file, when the backup was made with `--config`.
pub const CONFIG_PATH: &str = "config/chatmail.ini";
/// A manifest line is at most this long; members' paths are shorter still.
const MAX_LINE: usize = 512;
/// Most members one archive may list (a relay with a million body files
/// still fits; the bound keeps a hostile manifest from growing memory).
pub const MAX_ENTRIES: usize = 4_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub version: u32,
    /// Unix seconds.
    pub created: i64,
    pub messages: bool,
}

impl Format {
    pub fn encode(&self) -> String {
        format!(
            "chatrelay-backup\nversion {}\ncreated {}\nmessages {}\n",
            self.version,
            self.created,
            if self.messages { "yes" } else { "no" }
        )
    }

    pub fn parse(b: &[u8]) -> Result<Format, String> {
        let t = std::str::from_utf8(b).map_err(|_| "FORMAT is not text".to_string())?;
        let mut lines = t.lines();
        if lines.next() != Some("chatrelay-backup") {
            return Err("not a chatrelay backup".into());
        }
        let mut f = Format {
            version: 0,
            created: 0,
            messages: true,
        };
        for l in lines {
            match l.split_once(' ') {
                Some(("version", v)) => {
                    f.version = v.parse().map_err(|_| format!("bad version {v:?}"))?
                }
                Some(("created", v)) => {
                    f.created = v.parse().map_err(|_| format!("bad time {v:?}"))?
                }
                Some(("messages", v)) => f.messages = v == "yes",
                // Later minor additions are ignored by design.
                _ => {}
            }
        }
        if f.version == 0 {
            return Err("FORMAT has no version".into());
        }
        if f.version > FORMAT_VERSION {
            return Err(format!(
                "archive format {} is newer than this chatrelay understands ({FORMAT_VERSION}); \
                 restore it with a newer chatrelay",
                f.version
            ));
        }
        Ok(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// `sha256 <64 hex> <size> <path>` per member, then `end <count>`.
pub fn encode(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        s.push_str(&format!(
            "sha256 {} {} {}\n",
            hex(&e.sha256),
            e.size,
            e.path
        ));
    }
    s.push_str(&format!("end {}\n", entries.len()));
    s
}

pub fn parse(b: &[u8]) -> Result<Vec<Entry>, String> {
    let t = std::str::from_utf8(b).map_err(|_| "MANIFEST is not text".to_string())?;
    let mut out = Vec::new();
    for l in t.split_terminator('\n') {
        if l.len() > MAX_LINE {
            return Err("MANIFEST line too long".into());
        }
        if let Some(n) = l.strip_prefix("end ") {
            let n: usize = n.parse().map_err(|_| "bad MANIFEST end line".to_string())?;
            if n != out.len() {
                return Err("MANIFEST count does not match".into());
            }
            return Ok(out);
        }
        let mut p = l.splitn(4, ' ');
        let (Some("sha256"), Some(h), Some(size), Some(path)) =
            (p.next(), p.next(), p.next(), p.next())
        else {
            return Err(format!("bad MANIFEST line {:?}", truncate(l)));
        };
        let sha256 = unhex(h).ok_or_else(|| "bad checksum in MANIFEST".to_string())?;
        let size = size
            .parse()
            .map_err(|_| "bad size in MANIFEST".to_string())?;
        check_path(path)?;
        if out.len() >= MAX_ENTRIES {
            return Err("MANIFEST lists too many members".into());
        }
        out.push(Entry {
            path: path.to_string(),
            size,
            sha256,
        });
    }
    Err("MANIFEST has no end line (truncated)".into())
}

/// A member path we accept: relative, `/`-separated normal components of
/// printable ASCII without spaces, under `data/` or the config path.
pub fn check_path(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 255
        && p.bytes().all(|b| b.is_ascii_graphic())
        && (p.starts_with(DATA_PREFIX) || p == CONFIG_PATH)
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(format!("unsafe member path {:?}", truncate(p)))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(h: &str) -> Option<[u8; 32]> {
    if h.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip() {
        let e = vec![
            Entry {
                path: "data/index.redb".into(),
                size: 7,
                sha256: [1; 32],
            },
            Entry {
                path: "data/bodies/01/0000000000000001".into(),
                size: 0,
                sha256: [0xab; 32],
            },
            Entry {
                path: CONFIG_PATH.into(),
                size: 3,
                sha256: [0; 32],
            },
        ];
        assert_eq!(parse(encode(&e).as_bytes()).unwrap(), e);
    }

    #[test]
    fn truncated_or_hostile_manifests_are_refused() {
        let e = vec![Entry {
            path: "data/x".into(),
            size: 1,
            sha256: [2; 32],
        }];
        let s = encode(&e);
        assert!(parse(&s.as_bytes()[..s.len() - 4]).is_err());
        assert!(parse(s.replace("end 1", "end 2").as_bytes()).is_err());
        for bad in [
            "data/../etc/passwd",
            "/etc/passwd",
            "data//x",
            "data/./x",
            "other/x",
            "data/a b",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
            let l = format!("sha256 {} 1 {bad}\nend 1\n", hex(&[0; 32]));
            assert!(parse(l.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse(b"sha256 zz 1 data/x\nend 1\n").is_err());
    }

    #[test]
    fn format_versions() {
        let f = Format {
            version: 1,
            created: 5,
            messages: false,
        };
        assert_eq!(Format::parse(f.encode().as_bytes()).unwrap(), f);
        let newer = Format {
            version: FORMAT_VERSION + 1,
            ..f.clone()
        };
        let e = Format::parse(newer.encode().as_bytes()).unwrap_err();
        assert!(e.contains("newer"), "{e}");
        assert!(Format::parse(b"tar\nversion 1\n").is_err());
        assert!(Format::parse(b"chatrelay-backup\n").is_err());
    }
}
