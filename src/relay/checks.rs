//! Self-check results as the LAN status page shows them. `chatrelay
//! doctor`, the backup service and the page itself produce [`Check`]s; the
//! page renders whatever list it is given (`http::pages::status`).

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One self-check result: a short name and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, level: Level, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            level,
            detail: detail.into(),
        }
    }
}

/// The checks this branch knows of: the operator's privacy details.
pub fn builtin(cfg: &crate::config::Config) -> Vec<Check> {
    let missing = crate::config::missing_privacy_fields(cfg);
    vec![if missing.is_empty() {
        Check::new("privacy policy", Level::Ok, "all operator details set")
    } else {
        Check::new(
            "privacy policy",
            Level::Warn,
            format!("not set: {}", missing.join(", ")),
        )
    }]
}
