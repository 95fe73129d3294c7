//! `/status`, for the local network only: the appliance's first-boot
//! screen as a web page — invitation, address, storage, certificate and
//! the self-check results.

use super::html::{escape, fill};
use super::strings::Strings;
use super::{frame, human_bytes, invite_block};
use crate::config::{Config, Registration};
use crate::relay::checks::{Check, Level};

/// What the status page shows beside the config.
pub struct Facts {
    pub used_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub accounts: Option<u64>,
    /// The first-boot admin invitation, while it is still unused.
    pub first_invite: Option<String>,
    /// An invitation made by this very request (POST /status/invite).
    pub new_invite: Option<String>,
}

/// Bytes used by the data folder's file system and bytes free for us.
pub fn disk(cfg: &Config) -> (Option<u64>, Option<u64>) {
    match rustix::fs::statvfs(&cfg.data_dir) {
        Ok(st) => {
            let total = st.f_blocks.saturating_mul(st.f_frsize);
            let free = st.f_bfree.saturating_mul(st.f_frsize);
            let avail = st.f_bavail.saturating_mul(st.f_frsize);
            (Some(total.saturating_sub(free)), Some(avail))
        }
        Err(_) => (None, None),
    }
}

/// Render the self-check results; the coordinator plugs `chatrelay
/// doctor` and backup results into `checks`.
pub fn checks_html(s: &Strings, checks: &[Check]) -> String {
    if checks.is_empty() {
        return format!("<p>{}</p>\n", s.status_checks_none);
    }
    let mut out = String::from("<ul>\n");
    for c in checks {
        let (class, mark) = match c.level {
            Level::Ok => ("ok", "✔"),
            Level::Warn => ("warn", "!"),
            Level::Fail => ("bad", "✘"),
        };
        out.push_str(&format!(
            "<li><span class=\"{class}\">{mark} {}</span>: {}</li>\n",
            escape(&c.name),
            escape(&c.detail)
        ));
    }
    out.push_str("</ul>\n");
    out
}

pub fn page(s: &Strings, cfg: &Config, facts: &Facts, checks: &[Check]) -> String {
    let unknown = "?".to_string();
    let mut b = format!("<p class=\"card\">{}</p>\n", s.status_lan_only);
    b.push_str("<dl>\n");
    b.push_str(&format!(
        "<dt>{}</dt><dd>{}</dd>\n",
        s.status_address,
        escape(&cfg.mail_domain)
    ));
    let reg = match cfg.registration {
        Registration::Open => s.status_reg_open,
        Registration::Invite => s.status_reg_invite,
        Registration::Closed => s.status_reg_closed,
    };
    b.push_str(&format!(
        "<dt>{}</dt><dd>{reg}</dd>\n",
        s.status_registration
    ));
    b.push_str(&format!(
        "<dt>{}</dt><dd>{}</dd>\n",
        s.status_accounts,
        facts
            .accounts
            .map(|n| n.to_string())
            .unwrap_or(unknown.clone())
    ));
    let used = facts.used_bytes.map(human_bytes).unwrap_or(unknown.clone());
    let free = facts.free_bytes.map(human_bytes).unwrap_or(unknown);
    b.push_str(&format!(
        "<dt>{}</dt><dd>{}</dd>\n",
        s.status_storage,
        fill(s.status_storage_line, &[("used", &used), ("free", &free)])
    ));
    b.push_str(&format!(
        "<dt>{}</dt><dd>{}</dd>\n",
        s.status_certificate,
        super::certificate_line(s, cfg)
    ));
    b.push_str("</dl>\n");
    let missing = crate::config::missing_privacy_fields(cfg);
    if missing.is_empty() {
        b.push_str(&format!("<p class=\"ok\">{}</p>\n", s.status_privacy_ok));
    } else {
        b.push_str(&format!(
            "<p class=\"warn\">{}</p>\n",
            fill(s.status_privacy_warning, &[("fields", &missing.join(", "))])
        ));
    }
    b.push_str(&format!("<h2>{}</h2>\n", s.status_invite_head));
    match cfg.registration {
        Registration::Open => b.push_str(&invite_block(
            s,
            cfg,
            &crate::relay::invite::invitation(cfg),
        )),
        Registration::Invite => {
            if let Some(link) = &facts.new_invite {
                b.push_str(&format!("<p>{}</p>\n", s.status_new_invite_done));
                b.push_str(&invite_block(s, cfg, link));
            } else if let Some(link) = &facts.first_invite {
                b.push_str(&format!("<p>{}</p>\n", s.status_first_invite));
                b.push_str(&invite_block(s, cfg, link));
            } else {
                b.push_str(&format!("<p>{}</p>\n", s.status_no_invite));
            }
            b.push_str(&format!(
                "<form method=\"post\" action=\"/status/invite\"><button type=\"submit\">{}</button></form>\n",
                s.status_new_invite_button
            ));
        }
        Registration::Closed => b.push_str(&format!("<p>{}</p>\n", s.status_reg_closed)),
    }
    b.push_str(&format!("<h2>{}</h2>\n", s.status_checks_head));
    b.push_str(&checks_html(s, checks));
    frame(cfg, s, s.status_title, &b)
}
