//! The routes of spec §12, and the HTTP side of our iroh relay.

use super::{Request, Response};
use crate::relay::invite::{dcaccount_url, dclogin_url, json_str, new_credentials};
use crate::relay::Ctx;

/// Port 80: everything redirects to HTTPS (ACME HTTP-01 comes with ACME support).
pub fn plain_http(ctx: &Ctx, req: &Request) -> Response {
    let mut r = Response::text(301, "");
    let port = if ctx.cfg.https_port == 443 {
        String::new()
    } else {
        format!(":{}", ctx.cfg.https_port)
    };
    r.headers.push((
        "Location",
        format!("https://{}{}{}", ctx.cfg.hostname(), port, req.path),
    ));
    r
}

pub fn route(ctx: &Ctx, req: &Request) -> Response {
    let cfg = &ctx.cfg;
    match req.path.as_str() {
        "/new" | "/cgi-bin/newemail.py" => new_account(ctx, req),
        "/.well-known/autoconfig/mail/config-v1.1.xml" | "/mail/config-v1.1.xml" => {
            Response::new(200, "application/xml", autoconfig(ctx))
        }
        "/.well-known/mta-sts.txt" => Response::text(
            200,
            &format!(
                "version: STSv1\nmode: enforce\nmx: {}\nmax_age: 2419200\n",
                cfg.mail_domain
            ),
        ),
        "/robots.txt" => Response::text(200, "User-agent: *\nDisallow: /\n"),
        "/" | "/index.html" => Response::new(200, "text/html; charset=utf-8", index_page(ctx)),
        _ => Response::text(404, "not found\n"),
    }
}

/// `/new` (spec §4.2): random credentials as JSON; nothing is created yet.
fn new_account(ctx: &Ctx, req: &Request) -> Response {
    let cfg = &ctx.cfg;
    let self_signed = cfg.self_signed();
    match req.method.as_str() {
        "POST" => {}
        "GET" if self_signed => {}
        "GET" => {
            let mut r = Response::text(301, "");
            r.headers.push((
                "Location",
                dcaccount_url(cfg).replacen("DCACCOUNT", "dcaccount", 1),
            ));
            return r;
        }
        _ => {
            return Response::new(
                405,
                "application/json",
                "{\"reason\": \"method not allowed\"}",
            )
        }
    }
    if cfg.nocreate || cfg.nocreate_file.exists() {
        return Response::new(
            403,
            "application/json",
            format!(
                "{{\"reason\": {}}}",
                json_str("account creation is disabled on this relay")
            ),
        );
    }
    let c = new_credentials(cfg);
    let mut body = format!(
        "{{\"email\": {}, \"password\": {}",
        json_str(&c.email),
        json_str(&c.password)
    );
    if self_signed {
        body.push_str(&format!(
            ", \"dclogin_url\": {}",
            json_str(&dclogin_url(cfg, &c))
        ));
    }
    body.push('}');
    Response::new(200, "application/json", body)
}

/// Mozilla autoconfig v1.1 (spec §12).
fn autoconfig(ctx: &Ctx) -> String {
    let c = &ctx.cfg;
    let d = &c.mail_domain;
    let h = c.hostname();
    let mut servers = String::new();
    let mut add = |kind: &str, ty: &str, port: u16, sock: &str| {
        if port != 0 {
            servers.push_str(&format!(
                "    <{kind} type=\"{ty}\">\n      <hostname>{h}</hostname>\n      <port>{port}</port>\n      <socketType>{sock}</socketType>\n      <authentication>password-cleartext</authentication>\n      <username>%EMAILADDRESS%</username>\n    </{kind}>\n"
            ));
        }
    };
    add("incomingServer", "imap", c.imaps_port, "SSL");
    add("incomingServer", "imap", c.imap_port, "STARTTLS");
    add("incomingServer", "imap", c.https_port, "SSL");
    add("outgoingServer", "smtp", c.submissions_port, "SSL");
    add("outgoingServer", "smtp", c.submission_port, "STARTTLS");
    add("outgoingServer", "smtp", c.https_port, "SSL");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{d} chatmail</displayName>\n    <displayShortName>{d}</displayShortName>\n{servers}  </emailProvider>\n</clientConfig>\n"
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn index_page(ctx: &Ctx) -> String {
    let cfg = &ctx.cfg;
    let link = crate::relay::invite::invitation(cfg);
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{d} chatmail relay</title></head><body>\n<h1>{d}</h1>\n<p>A chatmail relay for <a href=\"https://delta.chat\">Delta Chat</a>. Only end-to-end encrypted messages are accepted; messages are deleted after {days} days.</p>\n<p><a href=\"{l}\">Get a {d} chat profile</a></p>\n<pre>{l}</pre>\n</body></html>\n",
        d = html_escape(&cfg.mail_domain),
        days = cfg.delete_mails_after,
        l = html_escape(&link),
    )
}

// ---- the HTTP side of our iroh relay (iroh-relay 0.35 `server.rs`,
// `http.rs`): the upgrade request on `/relay` (legacy `/derp`) and the two
// probes clients use to measure the relay, `/ping` and `/generate_204`.
// Served on 443 and on the plain-HTTP ports when our relay is on
// (`Config::own_iroh_relay_url`).

/// The upgrade token of the relay protocol (iroh-relay `HTTP_UPGRADE_PROTOCOL`).
const UPGRADE: &[u8] = b"iroh derp http";
const CHALLENGE: &str = "x-tailscale-challenge";

pub enum Relay {
    /// Switch protocols: the relay service answers `101`.
    Upgrade,
    Answer(Response),
}

/// `None`: not a relay route (or our relay is off).
pub fn iroh_relay(ctx: &Ctx, req: &Request) -> Option<Relay> {
    ctx.cfg.own_iroh_relay_url()?;
    match req.path.as_str() {
        "/relay" | "/derp" => {
            let upgrade = req
                .header("upgrade")
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(UPGRADE));
            Some(if req.method == "GET" && upgrade {
                Relay::Upgrade
            } else {
                Relay::Answer(Response::text(
                    400,
                    "iroh relay: send GET with Upgrade: iroh derp http\n",
                ))
            })
        }
        "/ping" => {
            let mut r = Response::text(200, "");
            r.headers.push(("Access-Control-Allow-Origin", "*".into()));
            Some(Relay::Answer(r))
        }
        "/generate_204" => {
            let mut r = Response::text(204, "");
            r.headers.clear();
            if let Some(c) = req.header(CHALLENGE).filter(|c| challenge_ok(c)) {
                r.headers.push((
                    "X-Tailscale-Response",
                    format!("response {}", String::from_utf8_lossy(c)),
                ));
            }
            Some(Relay::Answer(r))
        }
        _ => None,
    }
}

/// Echoed only when short and made of `[A-Za-z0-9._-]`, as upstream does.
fn challenge_ok(c: &[u8]) -> bool {
    !c.is_empty()
        && c.len() < 64
        && c.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}
