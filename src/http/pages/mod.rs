//! The relay's web pages (issue 12): `/` (what this is, the invitation),
//! `/privacy.html` (the privacy policy filled from config), `/info.html`
//! (joining, apps, limits, federation, DNS) and the LAN-only `/status`.
//!
//! Pages are rendered from the config and a few live facts; every config
//! value goes through `html::fill`/`html::escape`. Sentences live in
//! `strings`.

pub mod html;
pub mod status;
pub mod strings;

use crate::config::{Config, Registration, TlsMode};
use html::{escape, fill};
use strings::Strings;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `1.5 GiB`, `500 MiB`, `30 KiB`, `12 B` (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `2 days`, `5 hours`, `90 minutes`, `30 seconds`.
pub fn human_duration(secs: u64) -> String {
    let (n, unit) = if secs.is_multiple_of(86400) && secs > 0 {
        (secs / 86400, "day")
    } else if secs.is_multiple_of(3600) && secs > 0 {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) && secs > 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The live values every page may use, as (marker, text) pairs.
pub fn values(cfg: &Config) -> Vec<(&'static str, String)> {
    let notification_host = crate::config::url::parse_url(&cfg.notification_url)
        .map(|(host, _, _)| host)
        .unwrap_or_else(|| cfg.notification_url.clone());
    vec![
        ("domain", cfg.mail_domain.clone()),
        ("version", VERSION.to_string()),
        ("mail_days", cfg.delete_mails_after.to_string()),
        ("large_days", cfg.delete_large_after.to_string()),
        ("inactive_days", cfg.delete_inactive_users_after.to_string()),
        ("mailbox_size", human_bytes(cfg.max_mailbox_size)),
        ("max_messages", cfg.max_messages_per_mailbox.to_string()),
        ("message_size", human_bytes(cfg.max_message_size)),
        ("queue_time", human_duration(cfg.max_queue_lifetime)),
        ("per_minute", cfg.max_user_send_per_minute.to_string()),
        ("burst", cfg.max_user_send_burst_size.to_string()),
        ("imap_conns", cfg.max_imap_connections.to_string()),
        ("smtp_conns", cfg.max_smtp_connections.to_string()),
        ("notification_host", notification_host),
        ("selector", cfg.dkim_selector.clone()),
        ("mail", cfg.privacy_mail.clone()),
        ("supervisor", cfg.privacy_supervisor.clone()),
    ]
}

/// `fill` with [`values`] plus `extra`.
pub fn fill_with(cfg: &Config, template: &str, extra: &[(&str, &str)]) -> String {
    let vals = values(cfg);
    let mut all: Vec<(&str, &str)> = vals.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    fill(template, &all)
}

fn nav(s: &Strings) -> String {
    format!(
        "<a href=\"/\">{}</a><a href=\"/info.html\">{}</a><a href=\"/privacy.html\">{}</a>",
        s.nav_home, s.nav_info, s.nav_privacy
    )
}

pub(crate) fn frame(cfg: &Config, s: &Strings, title: &str, body: &str) -> String {
    html::page(
        s.lang,
        &fill_with(cfg, title, &[]),
        &nav(s),
        body,
        &fill_with(cfg, s.footer, &[]),
    )
}

fn p(cfg: &Config, t: &str) -> String {
    format!("<p>{}</p>\n", fill_with(cfg, t, &[]))
}

fn list(cfg: &Config, items: &[&str]) -> String {
    let mut out = String::from("<ul>\n");
    for i in items {
        out.push_str(&format!("<li>{}</li>\n", fill_with(cfg, i, &[])));
    }
    out.push_str("</ul>\n");
    out
}

/// The invitation block: QR code, tappable link, and the link as text.
pub fn invite_block(s: &Strings, cfg: &Config, link: &str) -> String {
    format!(
        "{}<a class=\"link\" href=\"{}\">{}</a>\n<p class=\"raw\">{}</p>\n",
        html::qr_svg(link),
        escape(link),
        fill_with(cfg, s.index_link, &[]),
        escape(link)
    )
}

/// `/`.
pub fn index(s: &Strings, cfg: &Config) -> String {
    let mut b = p(cfg, s.index_intro);
    match cfg.registration {
        Registration::Open => {
            b.push_str(&p(cfg, s.index_open));
            b.push_str(&invite_block(
                s,
                cfg,
                &crate::relay::invite::invitation(cfg),
            ));
        }
        Registration::Invite => b.push_str(&format!(
            "<p class=\"card\">{}</p>\n",
            fill_with(cfg, s.index_invite_only, &[])
        )),
        Registration::Closed => b.push_str(&format!(
            "<p class=\"card\">{}</p>\n",
            fill_with(cfg, s.index_closed, &[])
        )),
    }
    b.push_str(&p(cfg, s.index_retention));
    b.push_str(&format!(
        "<p>{} <a href=\"/info.html\">{}</a> · <a href=\"/privacy.html\">{}</a></p>\n",
        s.index_more, s.nav_info, s.nav_privacy
    ));
    frame(cfg, s, s.index_title, &b)
}

fn detail(s: &Strings, label: &str, value: &str) -> String {
    let v = if value.trim().is_empty() {
        format!("<span class=\"missing\">{}</span>", s.privacy_missing)
    } else {
        // Postal addresses may span lines in the config (`\n` not possible
        // in INI); a `;` or `,` stays as written.
        escape(value.trim())
    };
    format!("<dt>{label}</dt><dd>{v}</dd>\n")
}

/// The realtime relay paragraph's live facts.
fn realtime(s: &Strings, cfg: &Config) -> String {
    let mut b = p(cfg, s.privacy_realtime_promise);
    let mut any = false;
    if let Some(iroh) = &cfg.iroh_relay {
        b.push_str(&format!(
            "<p>{}</p>\n",
            fill_with(cfg, s.privacy_realtime_iroh, &[("iroh", iroh)])
        ));
        any = true;
    }
    if let Some((host, port, _)) = &cfg.turn {
        let t = format!("{host}:{port}");
        b.push_str(&format!(
            "<p>{}</p>\n",
            fill_with(cfg, s.privacy_realtime_turn, &[("turn", &t)])
        ));
        any = true;
    }
    if !any {
        b.push_str(&p(cfg, s.privacy_realtime_none));
    }
    b
}

/// `/privacy.html`.
pub fn privacy(s: &Strings, cfg: &Config) -> String {
    let mut b = p(cfg, s.privacy_intro);
    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_unlike_head));
    b.push_str(&list(cfg, &s.privacy_unlike));

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_who_head));
    b.push_str(&p(cfg, s.privacy_who_intro));
    b.push_str("<dl>\n");
    b.push_str(&detail(s, s.privacy_postal, &cfg.privacy_postal));
    b.push_str(&detail(s, s.privacy_mail, &cfg.privacy_mail));
    b.push_str(&detail(s, s.privacy_pdo, &cfg.privacy_pdo));
    b.push_str(&detail(s, s.privacy_supervisor, &cfg.privacy_supervisor));
    b.push_str("</dl>\n");

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_data_head));
    b.push_str(&p(cfg, s.privacy_data_intro));
    b.push_str(&list(cfg, &s.privacy_data));

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_realtime_head));
    b.push_str(&realtime(s, cfg));

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_accounts_head));
    b.push_str(&p(
        cfg,
        match cfg.registration {
            Registration::Open => s.privacy_accounts_open,
            Registration::Invite => s.privacy_accounts_invite,
            Registration::Closed => s.privacy_accounts_closed,
        },
    ));
    b.push_str(&p(cfg, s.privacy_accounts_basis));

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_ops_head));
    b.push_str(&p(cfg, s.privacy_ops_intro));
    b.push_str(&p(
        cfg,
        if cfg.logs_in_ram {
            s.privacy_logs_ram
        } else {
            s.privacy_logs_host
        },
    ));
    b.push_str(&p(cfg, s.privacy_limits_intro));
    b.push_str(&list(cfg, &s.privacy_limits));
    b.push_str(&p(cfg, s.privacy_ops_basis));

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_web_head));
    b.push_str(&p(cfg, s.privacy_web));

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_share_head));
    b.push_str(&p(cfg, s.privacy_share_intro));
    b.push_str(&list(cfg, &s.privacy_share));

    b.push_str(&format!("<h2>{}</h2>\n", s.privacy_rights_head));
    b.push_str(&p(cfg, s.privacy_rights));
    // These two markers take HTML built here from escaped parts.
    let missing = format!("<span class=\"missing\">{}</span>", s.privacy_missing);
    let mail = if cfg.privacy_mail.trim().is_empty() {
        missing.clone()
    } else {
        let m = escape(cfg.privacy_mail.trim());
        format!("<a href=\"mailto:{m}\">{m}</a>")
    };
    let sup = if cfg.privacy_supervisor.trim().is_empty() {
        missing
    } else {
        escape(cfg.privacy_supervisor.trim())
    };
    b.push_str(&format!(
        "<p>{}</p>\n",
        s.privacy_contact.replace("{{mail_html}}", &mail)
    ));
    b.push_str(&format!(
        "<p>{}</p>\n",
        s.privacy_complain.replace("{{supervisor_html}}", &sup)
    ));
    b.push_str(&p(cfg, s.privacy_version));
    frame(cfg, s, s.privacy_title, &b)
}

/// `/info.html`.
pub fn info(s: &Strings, cfg: &Config) -> String {
    let mut b = format!("<h2>{}</h2>\n", s.info_join_head);
    b.push_str(&p(
        cfg,
        match cfg.registration {
            Registration::Open => s.info_join_open,
            Registration::Invite => s.info_join_invite,
            Registration::Closed => s.info_join_closed,
        },
    ));
    b.push_str(&format!("<h2>{}</h2>\n", s.info_apps_head));
    b.push_str(&p(cfg, s.info_apps));
    b.push_str(&format!("<h2>{}</h2>\n", s.info_limits_head));
    b.push_str(&list(cfg, &s.info_limits));
    b.push_str(&format!("<h2>{}</h2>\n", s.info_fed_head));
    let ip = cfg.ip_literal.is_some();
    b.push_str(&p(cfg, if ip { s.info_fed_ip } else { s.info_fed_domain }));
    b.push_str(&format!("<h2>{}</h2>\n", s.info_dns_head));
    b.push_str(&p(cfg, if ip { s.info_dns_ip } else { s.info_dns_domain }));
    frame(cfg, s, s.info_title, &b)
}

/// How the certificate is obtained, for `/status`.
pub fn certificate_line(s: &Strings, cfg: &Config) -> String {
    match &cfg.tls_mode {
        TlsMode::SelfSigned if cfg.acme_wanted() => s.status_cert_acme.to_string(),
        TlsMode::SelfSigned => {
            let (c, _) = crate::tls::self_signed_paths(&cfg.data_dir);
            fill(
                s.status_cert_self_signed,
                &[("path", &c.display().to_string())],
            )
        }
        TlsMode::External { cert, .. } => fill(
            s.status_cert_external,
            &[("path", &cert.display().to_string())],
        ),
        TlsMode::Acme => s.status_cert_acme.to_string(),
    }
}
