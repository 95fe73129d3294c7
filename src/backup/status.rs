//! The last backup's outcome, for the status screen and the `/status` page:
//! `<data_dir>/backup-status`, a few `key value` lines written atomically
//! after every `chatrelay backup` to a file or folder. Read it with
//! [`read`]; it holds no address of any kind, only time, size and file.

use std::path::Path;

pub const STATUS_FILE: &str = "backup-status";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Unix seconds when the backup finished (or failed).
    pub time: i64,
    /// Archive size in bytes (0 on failure).
    pub size: u64,
    /// Archive file name (without folder).
    pub file: String,
    /// `None`: succeeded; else the error.
    pub error: Option<String>,
}

impl Status {
    pub fn encode(&self) -> String {
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        format!(
            "time {}\nsize {}\nfile {}\nresult {}\n",
            self.time,
            self.size,
            one_line(&self.file),
            match &self.error {
                None => "ok".to_string(),
                Some(e) => format!("error {}", one_line(e)),
            }
        )
    }

    pub fn parse(t: &str) -> Option<Status> {
        let mut s = Status::default();
        let mut result = false;
        for l in t.lines() {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            match k {
                "time" => s.time = v.parse().ok()?,
                "size" => s.size = v.parse().ok()?,
                "file" => s.file = v.to_string(),
                "result" => {
                    result = true;
                    s.error = match v {
                        "ok" => None,
                        e => Some(e.strip_prefix("error ").unwrap_or(e).to_string()),
                    }
                }
                _ => {}
            }
        }
        result.then_some(s)
    }

    /// One line for a screen: `2026-12-01 03:30 UTC, 12.3 MB, ok`.
    pub fn summary(&self) -> String {
        let days = self.time.div_euclid(86400);
        let (y, m, d) = crate::clock::civil_from_days(days);
        let secs = self.time.rem_euclid(86400);
        let when = format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
            secs / 3600,
            secs / 60 % 60
        );
        match &self.error {
            None => format!("{when}, {:.1} MB, {}", self.size as f64 / 1e6, self.file),
            Some(e) => format!("{when}, FAILED: {e}"),
        }
    }
}

/// The last backup's status, if any backup has run on this data folder.
pub fn read(data_dir: &Path) -> Option<Status> {
    Status::parse(&std::fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?)
}

/// Write the status durably (tmp, fsync, rename, fsync folder).
pub fn write(data_dir: &Path, s: &Status) -> std::io::Result<()> {
    let dst = data_dir.join(STATUS_FILE);
    crate::store::write_durable(
        &data_dir.join("backup-status.tmp"),
        &dst,
        s.encode().as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_summary() {
        let s = Status {
            time: 86400 + 3600 + 120,
            size: 2_500_000,
            file: "a.tar".into(),
            error: None,
        };
        assert_eq!(Status::parse(&s.encode()), Some(s.clone()));
        assert_eq!(s.summary(), "1970-01-02 01:02 UTC, 2.5 MB, a.tar");
        let f = Status {
            error: Some("disk\nfull".into()),
            ..s
        };
        let p = Status::parse(&f.encode()).unwrap();
        assert_eq!(p.error.as_deref(), Some("disk full"));
        assert!(Status::parse("time x\n").is_none());
    }
}
