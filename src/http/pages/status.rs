//! `/status`, for the local network only: the appliance's first-boot
//! screen as a web page — invitation, address, storage, certificate and
//! the self-check results.

use super::html::{escape, fill};
use super::strings::Strings;
use super::{frame, human_bytes, invite_block};
use crate::clock::format_utc;
use crate::config::{Config, Registration};
use crate::doctor::cache::{ago, Report};
use crate::doctor::{Check, State};
use crate::tls::store::CertDetails;

/// What the status page shows beside the config.
pub struct Facts {
    pub used_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub accounts: Option<u64>,
    /// The first-boot admin invitation, while it is still unused.
    pub first_invite: Option<String>,
    /// An invitation made by this very request (POST /status/invite).
    pub new_invite: Option<String>,
    /// The leaf of the certificate every listener serves now.
    pub cert: Option<CertDetails>,
    /// Unix seconds of this request.
    pub now: i64,
}

/// The self-check part of the page: the cached result, whether a run is
/// going on, the answer to a "check again" request.
pub struct SelfCheckView {
    pub last: Option<std::rc::Rc<Report>>,
    pub running: bool,
    /// `self_check_interval = 0`.
    pub on_demand_only: bool,
    /// What POST /status/selfcheck did (a sentence of `Strings`, filled).
    pub note: Option<String>,
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

fn label(s: &Strings, id: &str) -> String {
    s.check_labels
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, l)| l.to_string())
        .unwrap_or_else(|| escape(id))
}

/// The self-check list: each condition ok / problem / unknown, what was
/// found, what to do. Every text from a check is escaped (it may hold DNS
/// answers or config values).
pub fn checks_html(s: &Strings, checks: &[Check]) -> String {
    if checks.is_empty() {
        return format!("<p>{}</p>\n", s.status_checks_none);
    }
    let mut out = String::from("<ul class=\"checks\">\n");
    for c in checks {
        let (class, mark) = match c.state {
            State::Ok => ("ok", "✔"),
            State::Unknown => ("warn", "?"),
            State::Problem => ("bad", "✘"),
        };
        out.push_str(&format!(
            "<li id=\"check-{}\"><span class=\"{class}\">{mark} {}</span> <b>{}</b>: {}",
            escape(c.id),
            c.state.word(),
            label(s, c.id),
            escape(&c.detail)
        ));
        if !c.todo.is_empty() {
            out.push_str(&format!(
                "<br><small>{} {}</small>",
                s.status_checks_todo,
                escape(&c.todo)
            ));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    out
}

fn selfcheck_html(s: &Strings, view: &SelfCheckView, now: i64) -> String {
    let mut b = String::new();
    if let Some(note) = &view.note {
        b.push_str(&format!("<p class=\"card\">{note}</p>\n"));
    }
    match &view.last {
        None if view.on_demand_only && !view.running => {
            b.push_str(&format!("<p>{}</p>\n", s.status_checks_on_demand))
        }
        None => b.push_str(&format!("<p>{}</p>\n", s.status_checks_first)),
        Some(r) => {
            b.push_str(&format!(
                "<p>{} ",
                fill(
                    s.status_checks_age,
                    &[("ago", &ago(now - r.at)), ("time", &format_utc(r.at))]
                )
            ));
            match r.problems() {
                0 => b.push_str(&format!(
                    "<span class=\"ok\">{}</span>",
                    s.status_checks_ok_all
                )),
                n => b.push_str(&format!(
                    "<span class=\"bad\">{}</span>",
                    fill(s.status_checks_problems, &[("n", &n.to_string())])
                )),
            }
            b.push_str("</p>\n");
            if view.running && view.note.is_none() {
                b.push_str(&format!("<p>{}</p>\n", s.status_checks_running_now));
            }
            b.push_str(&checks_html(s, &r.checks));
        }
    }
    b.push_str(&format!(
        "<form method=\"post\" action=\"/status/selfcheck\"><button type=\"submit\">{}</button></form>\n",
        s.status_checks_button
    ));
    b
}

/// The served certificate: names, issuer, expiry.
fn cert_html(s: &Strings, cert: &CertDetails, now: i64) -> String {
    let mut names = cert.names.clone();
    if names.is_empty() {
        names.extend(cert.subject_cn.clone());
    }
    let issuer = if cert.self_issued {
        s.status_cert_self_issued.to_string()
    } else {
        fill(s.status_cert_issuer, &[("issuer", &cert.issuer)])
    };
    let left = if cert.not_after < now {
        format!("<span class=\"bad\">{}</span>", s.status_cert_expired)
    } else {
        fill(
            s.status_cert_days_left,
            &[("days", &((cert.not_after - now) / 86400).to_string())],
        )
    };
    format!(
        "<dt>{}</dt><dd>{}; {}; {} ({left})</dd>\n",
        s.status_cert_served,
        fill(s.status_cert_names, &[("names", &names.join(", "))]),
        issuer,
        fill(
            s.status_cert_valid_until,
            &[("date", &format_utc(cert.not_after))]
        ),
    )
}

pub fn page(s: &Strings, cfg: &Config, facts: &Facts, checks: &SelfCheckView) -> String {
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
    if let Some(c) = &facts.cert {
        b.push_str(&cert_html(s, c, facts.now));
    }
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
    b.push_str(&selfcheck_html(s, checks, facts.now));
    frame(cfg, s, s.status_title, &b)
}
