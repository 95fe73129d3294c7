//! The routes of spec §12, and the HTTP side of our iroh relay.

use super::pages::{self, strings};
use super::query::Query;
use super::{Request, Response};
use crate::config::Registration;
use crate::relay::invite::{dcaccount_url, dclogin_url, json_str, new_credentials};
use crate::relay::{registration, Ctx};
use crate::store::invites::Refusal;

/// Port 80: everything redirects to HTTPS (ACME HTTP-01 comes with ACME support).
pub fn plain_http(ctx: &Ctx, req: &Request) -> Response {
    // RFC 8555 §8.3: the key authorization of a pending HTTP-01 challenge.
    if let Some(token) = req.path.strip_prefix("/.well-known/acme-challenge/") {
        return match ctx.tls.resolver.http_challenge(token) {
            Some(ka) => Response::new(200, "application/octet-stream", ka),
            None => Response::text(404, "no such challenge\n"),
        };
    }
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

/// JSON `{"reason": ...}` with `status`.
fn json_reason(status: u16, reason: &str) -> Response {
    Response::new(
        status,
        "application/json",
        format!("{{\"reason\": {}}}", json_str(reason)),
    )
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = Response::text(405, "method not allowed\n");
    r.headers.push(("Allow", allow.to_string()));
    r
}

/// Headers of every HTML page: nothing may load from elsewhere, no script
/// runs, forms post only here, no referrer leaves.
fn html(body: String, cache: bool) -> Response {
    let mut r = Response::new(200, "text/html; charset=utf-8", body);
    r.headers.push((
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
            .to_string(),
    ));
    r.headers
        .push(("X-Content-Type-Options", "nosniff".to_string()));
    r.headers
        .push(("Referrer-Policy", "no-referrer".to_string()));
    r.headers.push((
        "Cache-Control",
        if cache { "max-age=300" } else { "no-store" }.to_string(),
    ));
    r
}

/// The self-check `/status` shows: the background run's cached result
/// (`crate::doctor::cache`); a page load never starts a run.
pub fn status_checks(ctx: &Ctx, note: Option<String>) -> pages::status::SelfCheckView {
    pages::status::SelfCheckView {
        last: ctx.selfcheck.last(),
        running: ctx.selfcheck.running(),
        on_demand_only: ctx.cfg.self_check_interval == 0,
        note,
    }
}

fn status_facts(ctx: &Ctx, new_invite: Option<String>) -> pages::status::Facts {
    let (used_bytes, free_bytes) = pages::status::disk(&ctx.cfg);
    let accounts = ctx.store.account_count().ok();
    let served = ctx.tls.resolver.current();
    pages::status::Facts {
        used_bytes,
        free_bytes,
        accounts,
        // Shown until the first account exists (which that invite makes).
        first_invite: ctx
            .first_invite
            .borrow()
            .clone()
            .filter(|_| accounts == Some(0)),
        new_invite,
        cert: served
            .cert
            .first()
            .and_then(|c| crate::tls::store::leaf_details(c).ok()),
        now: crate::clock::now_secs(),
    }
}

/// A form posted from another site (a LAN browser visiting a hostile page)
/// carries a foreign `Origin`: refused.
fn foreign_origin(req: &Request) -> bool {
    match req.header("origin") {
        None => false,
        Some(origin) => {
            let host = req.header("host").unwrap_or_default();
            !origin
                .strip_prefix(b"https://")
                .is_some_and(|o| !host.is_empty() && o == host)
        }
    }
}

/// POST `/status/selfcheck` (LAN only): start a self-check now, at most one
/// a minute (`doctor::cache::MIN_GAP`); the page comes back at once.
fn status_selfcheck(ctx: &Ctx, req: &Request) -> Response {
    if foreign_origin(req) {
        return Response::text(403, "cross-site request refused\n");
    }
    let s = strings::for_language(req.header("accept-language"));
    use crate::doctor::cache::Refused;
    let note = match ctx.selfcheck.request() {
        Ok(()) => s.status_checks_started.to_string(),
        Err(Refused::Running) => s.status_checks_busy.to_string(),
        Err(Refused::TooSoon(secs)) => {
            pages::html::fill(s.status_checks_too_soon, &[("secs", &secs.to_string())])
        }
    };
    html(
        pages::status::page(
            s,
            &ctx.cfg,
            &status_facts(ctx, None),
            &status_checks(ctx, Some(note)),
        ),
        false,
    )
}

/// `lan`: the peer's address is in `status_networks`.
pub async fn route(ctx: &Ctx, req: &Request, lan: bool) -> Response {
    let cfg = &ctx.cfg;
    let query = match Query::parse(&req.query) {
        Ok(q) => q,
        Err(e) => return Response::text(400, &format!("{}\n", e.reason())),
    };
    let path = req.path.as_str();
    if matches!(path, "/new" | "/cgi-bin/newemail.py") {
        return new_account(ctx, req, &query).await;
    }
    if path == "/status/invite" {
        if !lan {
            return Response::text(403, &format!("{}\n", strings::EN.status_forbidden));
        }
        if req.method != "POST" {
            return method_not_allowed("POST");
        }
        return status_invite(ctx, req).await;
    }
    if path == "/status/selfcheck" {
        if !lan {
            return Response::text(403, &format!("{}\n", strings::EN.status_forbidden));
        }
        if req.method != "POST" {
            return method_not_allowed("POST");
        }
        return status_selfcheck(ctx, req);
    }
    let known = matches!(
        path,
        "/.well-known/autoconfig/mail/config-v1.1.xml"
            | "/mail/config-v1.1.xml"
            | "/.well-known/mta-sts.txt"
            | "/robots.txt"
            | "/"
            | "/index.html"
            | "/privacy.html"
            | "/info.html"
            | "/status"
    );
    if !known {
        return Response::text(404, "not found\n");
    }
    if req.method != "GET" && req.method != "HEAD" {
        return method_not_allowed("GET, HEAD");
    }
    let s = strings::for_language(req.header("accept-language"));
    match path {
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
        // The invitation of a self-signed relay is fresh on every load.
        "/" | "/index.html" => html(pages::index(s, cfg), false),
        "/privacy.html" => html(pages::privacy(s, cfg), true),
        "/info.html" => html(pages::info(s, cfg), true),
        "/status" if lan => html(
            pages::status::page(s, cfg, &status_facts(ctx, None), &status_checks(ctx, None)),
            false,
        ),
        "/status" => Response::text(403, &format!("{}\n", s.status_forbidden)),
        _ => Response::text(404, "not found\n"),
    }
}

/// POST `/status/invite` (LAN only): a new single-use invite, shown once.
/// A form posted from another site (a LAN browser visiting a hostile page)
/// carries a foreign `Origin` and is refused.
async fn status_invite(ctx: &Ctx, req: &Request) -> Response {
    let cfg = ctx.cfg.clone();
    if foreign_origin(req) {
        return Response::text(403, "cross-site request refused\n");
    }
    if cfg.registration != Registration::Invite {
        return Response::text(409, "this relay is not in invite mode\n");
    }
    let c: crate::config::Config = (*cfg).clone();
    let r = ctx
        .writer
        .run(move |store| {
            crate::relay::registration::create(
                store,
                &c,
                1,
                crate::relay::registration::STATUS_PAGE_TTL,
                crate::clock::now_secs(),
                false,
            )
        })
        .await;
    match r {
        Ok((id, link)) => {
            log::info!("invite {id} made on the status page");
            let s = strings::for_language(req.header("accept-language"));
            html(
                pages::status::page(
                    s,
                    &cfg,
                    &status_facts(ctx, Some(link)),
                    &status_checks(ctx, None),
                ),
                false,
            )
        }
        Err(e) => Response::text(500, &format!("{e}\n")),
    }
}

/// `/new` (spec §4.2): random credentials as JSON. `open`: nothing is
/// created yet (the first login does it). `invite`: only with a valid
/// token (`?t=`), and the account is created at once. `closed`: refused.
async fn new_account(ctx: &Ctx, req: &Request, query: &Query) -> Response {
    let cfg = &ctx.cfg;
    let self_signed = cfg.self_signed();
    match req.method.as_str() {
        "POST" => {}
        // A GET may come from a link preview or a prefetch: it never spends
        // an invite.
        "GET" if self_signed && cfg.registration == Registration::Invite => {
            return json_reason(405, "an invite code is redeemed with POST")
        }
        "GET" if self_signed => {}
        "GET" => {
            let mut r = Response::text(301, "");
            let mut loc = dcaccount_url(cfg).replacen("DCACCOUNT", "dcaccount", 1);
            if !req.query.is_empty() {
                loc.push('?');
                loc.push_str(&req.query);
            }
            r.headers.push(("Location", loc));
            return r;
        }
        _ => return json_reason(405, "method not allowed"),
    }
    if cfg.nocreate || cfg.nocreate_file.exists() {
        return json_reason(403, "account creation is disabled on this relay");
    }
    let c = new_credentials(cfg);
    match cfg.registration {
        Registration::Open => {}
        Registration::Closed => return json_reason(403, "this relay does not create new accounts"),
        Registration::Invite => {
            let Some(token) = query.get("t").or_else(|| query.get("token")) else {
                return json_reason(403, "this relay needs an invite code to create an account");
            };
            let th = registration::token_hash(token);
            let now = crate::clock::now_secs();
            // Refuse bad tokens before any hashing.
            match ctx.store.get_invite(&th) {
                Ok(None) => return json_reason(403, Refusal::Unknown.reason()),
                Ok(Some(inv)) => {
                    if let Err(r) = inv.check(now) {
                        return json_reason(403, r.reason());
                    }
                }
                Err(e) => return json_reason(503, &format!("try again later ({e})")),
            }
            if let Err(why) = crate::relay::auth::check_resources(cfg) {
                return json_reason(503, &why);
            }
            let hash = match ctx.auth.hash_new(c.password.as_bytes()).await {
                Ok(h) => h,
                Err(_) => return json_reason(503, "busy, try again later"),
            };
            let addr = c.email.clone();
            let r = ctx
                .writer
                .run(move |s| s.redeem_invite(&th, now, &addr, &hash, crate::clock::today()))
                .await;
            match r {
                Ok(Ok(_)) => log::info!("created a new account with an invite"),
                Ok(Err(refusal)) => return json_reason(403, refusal.reason()),
                Err(e) => return json_reason(503, &format!("try again later ({e})")),
            }
        }
    }
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
