//! The prune service's clock and its local control socket: prune at
//! startup and daily at `prune_time` (UTC), and `chatrelay prune` from the
//! command line runs the prune inside the server through `control.sock`.

use std::rc::Rc;
use std::time::Duration;

use crate::config::Config;
use crate::net::timeout;
use crate::relay::Ctx;

/// Prune at startup, then daily at `prune_time` (UTC): a real deadline timer,
/// no polling.
pub async fn daily(ctx: Rc<Ctx>) {
    loop {
        if let Err(e) = prune_now(&ctx, crate::clock::now_secs(), false).await {
            log::error!("prune failed: {e}");
        }
        let (h, m) = ctx.cfg.prune_time;
        let wait = super::until_next(crate::clock::now_secs(), h, m);
        async_io::Timer::after(Duration::from_secs(wait.max(1) as u64)).await;
    }
}

/// One prune inside the server as if the time were `now`; the report is
/// logged and returned.
async fn prune_now(ctx: &Ctx, now: i64, dry: bool) -> Result<String, String> {
    let r = super::run(
        &ctx.store,
        Some(&ctx.writer),
        Some(&ctx.hub),
        &ctx.cfg,
        now,
        dry,
    )
    .await
    .map_err(|e| e.to_string())?;
    log::info!("{r}");
    Ok(r.to_string())
}

/// `invite-new <uses> <seconds>`: `ok <id> <link>`.
async fn invite_new(ctx: &Ctx, uses: &str, secs: &str) -> String {
    let (Ok(uses), Ok(secs)) = (uses.parse::<u32>(), secs.parse::<i64>()) else {
        return "error bad uses or validity".to_string();
    };
    let cfg: Config = (*ctx.cfg).clone();
    let now = crate::clock::now_secs();
    match ctx
        .writer
        .run(move |s| crate::relay::registration::create(s, &cfg, uses, secs, now, false))
        .await
    {
        Ok((id, link)) => {
            log::info!("invite {id} made on the command line");
            format!("ok {id} {link}")
        }
        Err(e) => format!("error {e}"),
    }
}

/// `invite-list`: `ok` then one line per invite.
fn invite_list(ctx: &Ctx) -> String {
    match ctx.store.list_invites() {
        Ok(list) => {
            let now = crate::clock::now_secs();
            let mut out = String::from("ok");
            for i in &list {
                out.push('\n');
                out.push_str(&crate::relay::registration::describe(i, now));
            }
            out
        }
        Err(e) => format!("error {e}"),
    }
}

pub fn path(cfg: &Config) -> std::path::PathBuf {
    cfg.data_dir.join("control.sock")
}

pub fn listener(cfg: &Config) -> std::io::Result<async_net::unix::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let p = path(cfg);
    let _ = std::fs::remove_file(&p);
    let l = async_net::unix::UnixListener::bind(&p)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// The local control socket: one command line per connection, one reply line.
/// `prune <days ahead> <dry 0|1>` runs the prune inside the server, so IDLE
/// sessions see the expunges. `stats` prints the realtime counters,
/// `router` the port mapping state (`chatrelay doctor`).
pub async fn serve(ctx: Rc<Ctx>, l: async_net::unix::UnixListener) {
    use futures_lite::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    loop {
        let Ok((mut conn, _)) = l.accept().await else {
            continue;
        };
        let mut line = String::new();
        let mut r = BufReader::new(conn.clone().take(256));
        if timeout(Duration::from_secs(5), r.read_line(&mut line))
            .await
            .is_none()
        {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.first() == Some(&"backup") {
            // `chatrelay backup`: the archive streams on this connection.
            drop(r);
            crate::backup::control::serve(ctx.store.clone(), conn, &parts[1..]).await;
            continue;
        }
        let reply = match parts.as_slice() {
            ["prune", days, dry] => match days.parse::<i64>() {
                Ok(d) => {
                    let now = crate::clock::now_secs() + d * 86400;
                    match prune_now(&ctx, now, *dry == "1").await {
                        Ok(r) => format!("ok {r}"),
                        Err(e) => format!("error {e}"),
                    }
                }
                Err(_) => "error bad day count".to_string(),
            },
            ["invite-new", uses, secs] => invite_new(&ctx, uses, secs).await,
            ["invite-list"] => invite_list(&ctx),
            ["invite-revoke", id] => match id.parse::<u64>() {
                Ok(id) => match ctx.writer.run(move |s| s.revoke_invite(id)).await {
                    Ok(true) => format!("ok invite {id} revoked"),
                    Ok(false) => format!("error no invite {id}"),
                    Err(e) => format!("error {e}"),
                },
                Err(_) => "error bad invite id".to_string(),
            },
            ["invite-first"] => match ctx.first_invite.borrow().clone() {
                Some(l) if ctx.store.account_count().ok() == Some(0) => format!("ok {l}"),
                _ => "ok".to_string(),
            },
            // Counters of the realtime services (numbers only).
            ["stats"] => format!("ok {}", ctx.realtime.line()),
            // The router's WAN address and each port's mapping (doctor).
            ["router"] => format!("ok {}", ctx.router.line()),
            // The background self-check's cached result (never a new run).
            ["selfcheck"] => match ctx.selfcheck.last() {
                Some(r) => format!("ok {}", r.encode()),
                None => "ok".to_string(),
            },
            _ => "error unknown command".to_string(),
        };
        let _ = conn.write_all(format!("{reply}\n").as_bytes()).await;
    }
}
