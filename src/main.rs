//! `chatrelay` command line: serve, invite, version.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use chatrelay::config::Config;

const USAGE: &str = "usage:
  chatrelay serve  [--config chatmail.ini] [--data-dir DIR] [--heartbeat-file PATH] [--logs-in-ram]
                   [--clock-synced-file PATH] [--port-mapping auto|off]
                   run the relay (the event loop touches PATH every second;
                   --logs-in-ram: as logs_in_ram = true;
                   ACME waits until the clock-synced file exists)
  chatrelay invite [--config chatmail.ini] [--data-dir DIR]   print an invitation link and QR code
                   (invite mode: the first-start invitation while no account exists)
  chatrelay invite new [--uses N] [--expires 7d]   make an invite token (registration = invite)
  chatrelay invite list                            list invites (id, state, uses, expiry)
  chatrelay invite revoke ID                       revoke an invite
  chatrelay dns    [--config chatmail.ini] [--data-dir DIR]   print the DNS records to publish (zone file lines)
  chatrelay prune  [--config chatmail.ini] [--data-dir DIR] [--dry-run] [--days N]
                   apply the retention rules now (as if N days later); works
                   whether the relay runs (control socket) or not
  chatrelay turn-probe [--config chatmail.ini]   check that our TURN server answers STUN Binding
  chatrelay doctor [--config chatmail.ini] [--data-dir DIR]   check clock, DNS, certificate, address, ports
  chatrelay doctor --last   the running relay's last background self-check, problems only (status screen)
  chatrelay backup [--config chatmail.ini] [--data-dir DIR] [--out FILE|- | --to-dir DIR [--keep N]]
                   [--without-messages] [--passphrase-file FILE]
                   write a consistent archive (relay running or not); --to-dir keeps the
                   newest N (default: backup_keep) dated archives in DIR
  chatrelay restore FILE|- [--config chatmail.ini] [--data-dir DIR] [--force]
                   [--passphrase-file FILE] [--config-out PATH]
                   verify the archive, then replace the (empty) data folder with it
  chatrelay import-upstream MAILBOXES_DIR [--config chatmail.ini] [--data-dir DIR]
                   [--dkim-key FILE] [--tls-dir DIR]
                   import an upstream chatmail relay's accounts, mail, DKIM key, certificate
  chatrelay version

Without --config, chatrelay runs as a relay for the local network: the
host's IPv4 address as an IP-literal domain with a self-signed certificate.";

struct Args {
    cmd: String,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    heartbeat_file: Option<PathBuf>,
    clock_synced_file: Option<PathBuf>,
    port_mapping: Option<bool>,
    dry_run: bool,
    days: i64,
    logs_in_ram: bool,
    /// Words after the command (`invite new`, `invite revoke 3`).
    words: Vec<String>,
    uses: u32,
    /// Seconds.
    expires: i64,
    /// backup / restore / import-upstream options and positional arguments
    opt: std::collections::HashMap<&'static str, String>,
    flags: Vec<&'static str>,
    rest: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or_else(|| USAGE.to_string())?;
    let mut a = Args {
        cmd,
        config: None,
        data_dir: None,
        heartbeat_file: None,
        clock_synced_file: None,
        port_mapping: None,
        dry_run: false,
        days: 0,
        logs_in_ram: false,
        words: Vec::new(),
        uses: 1,
        expires: 7 * 86400,
        opt: Default::default(),
        flags: Vec::new(),
        rest: Vec::new(),
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" | "-c" => a.config = Some(it.next().ok_or("--config needs a path")?.into()),
            "--data-dir" => a.data_dir = Some(it.next().ok_or("--data-dir needs a path")?.into()),
            "--heartbeat-file" => {
                a.heartbeat_file = Some(it.next().ok_or("--heartbeat-file needs a path")?.into())
            }
            "--clock-synced-file" => {
                a.clock_synced_file =
                    Some(it.next().ok_or("--clock-synced-file needs a path")?.into())
            }
            "--port-mapping" => {
                a.port_mapping = Some(match it.next().as_deref() {
                    Some("auto") => true,
                    Some("off") => false,
                    _ => return Err("--port-mapping needs auto or off".into()),
                })
            }
            "--dry-run" => a.dry_run = true,
            "--logs-in-ram" => a.logs_in_ram = true,
            "--days" => {
                a.days = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--days needs a whole number")?;
            }
            "--uses" => {
                a.uses = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--uses needs a whole number above 0")?;
            }
            "--expires" => {
                let v = it
                    .next()
                    .ok_or("--expires needs a duration like 7d or 12h")?;
                a.expires = chatrelay::config::parse_duration("--expires", &v)
                    .map_err(|e| e.to_string())? as i64;
            }
            "--out" | "--to-dir" | "--keep" | "--passphrase-file" | "--config-out"
            | "--dkim-key" | "--tls-dir" => {
                let k: &'static str = [
                    "--out",
                    "--to-dir",
                    "--keep",
                    "--passphrase-file",
                    "--config-out",
                    "--dkim-key",
                    "--tls-dir",
                ]
                .into_iter()
                .find(|k| *k == arg)
                .expect("listed");
                a.opt
                    .insert(k, it.next().ok_or(format!("{k} needs a value"))?);
            }
            "--without-messages" => a.flags.push("--without-messages"),
            "--force" => a.flags.push("--force"),
            "--last" => a.flags.push("--last"),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other if !other.starts_with('-') || other == "-" => {
                // `invite new` words and backup/restore/import positionals.
                if other != "-" {
                    a.words.push(other.to_string());
                }
                a.rest.push(other.to_string());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// The host's primary IPv4: the source address the kernel would pick for a
/// route to TEST-NET-1. `connect` on UDP only consults the routing table;
/// no packet is sent.
fn primary_ipv4() -> Ipv4Addr {
    let probe = || -> Option<Ipv4Addr> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        s.connect("192.0.2.1:9").ok()?;
        match s.local_addr().ok()?.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
            _ => None,
        }
    };
    probe()
        .or_else(first_local_ipv4)
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// Without a default route (an isolated LAN, a VM without router): the first
/// non-loopback local address from the kernel's FIB (`/proc/net/fib_trie`
/// lists local addresses as `|-- a.b.c.d` followed by `/32 host LOCAL`).
fn first_local_ipv4() -> Option<Ipv4Addr> {
    let text = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start_matches([' ', '|', '+', '-']).trim();
        if let Ok(ip) = t.parse::<Ipv4Addr>() {
            last = Some(ip);
        } else if t.contains("/32 host LOCAL") {
            if let Some(ip) = last {
                if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() {
                    return Some(ip);
                }
            }
        }
    }
    None
}

fn load_config(a: &Args) -> Result<Config, String> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            Config::from_ini(&text, Some(primary_ipv4()))
                .map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => {
            let mut c = Config::lan_default(primary_ipv4());
            if !rustix::process::geteuid().is_root() {
                // Unprivileged: move every port above 1024.
                c.smtp_port = 2525;
                c.submission_port = 1587;
                c.submissions_port = 1465;
                c.imap_port = 1143;
                c.imaps_port = 1993;
                c.https_port = 1443;
                c.http_port = 1080;
            }
            c
        }
    };
    if let Some(d) = &a.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(h) = &a.heartbeat_file {
        cfg.heartbeat_file = Some(h.clone());
    }
    if a.logs_in_ram {
        cfg.logs_in_ram = true;
    }
    if let Some(m) = a.port_mapping {
        cfg.port_mapping = m;
    }
    if let Some(h) = &a.clock_synced_file {
        cfg.clock_synced_file = Some(h.clone());
    }
    for k in &cfg.unused_keys {
        log::warn!("config: unknown key {k:?} ignored");
    }
    Ok(cfg)
}

fn print_invitation(cfg: &Config) {
    let link = chatrelay::relay::invite::invitation(cfg);
    println!(
        "\nScan this with Delta Chat to create a profile on {}:\n",
        cfg.mail_domain
    );
    println!("{}", chatrelay::relay::invite::terminal_qr(&link));
    println!("{link}\n");
    println!(
        "ports: IMAP {} (TLS) / {} (STARTTLS), SMTP {} (TLS) / {} (STARTTLS), HTTPS {}, MX {}\n",
        cfg.imaps_port,
        cfg.imap_port,
        cfg.submissions_port,
        cfg.submission_port,
        cfg.https_port,
        cfg.smtp_port
    );
}

/// The records of spec §13 as zone-file lines (TTL 3600).
/// The TURN ports to open or forward (issue 11): UDP, beside the TCP ones.
fn print_turn_ports(cfg: &Config) {
    if cfg.turn.is_none() && cfg.turn_port != 0 {
        let (lo, hi) = cfg.turn_relay_ports;
        println!("; ports: UDP {} (TURN/STUN for calls) and UDP {lo}-{hi} (TURN relay ports), beside TCP 25 80 443 465 587 993 143", cfg.turn_port);
    }
}

fn print_dns(cfg: &Config) -> Result<(), String> {
    if cfg.ip_literal.is_some() {
        println!(
            "; {} is an IP-literal relay: no DNS records are needed.",
            cfg.mail_domain
        );
        print_turn_ports(cfg);
        return Ok(());
    }
    let d = &cfg.mail_domain;
    let key = chatrelay::dkim::SigningKey::load_or_generate(
        &cfg.data_dir,
        &cfg.dkim_selector,
        cfg.dkim_ed25519,
    )?;
    let txt = key.dns_record();
    // TXT character-strings are at most 255 bytes (RFC 1035 §3.3).
    let chunks: Vec<String> = txt
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    println!("; required");
    println!("{d}.  3600 IN A     <your public IPv4>");
    println!("{d}.  3600 IN AAAA  <your public IPv6, if any>");
    println!("{d}.  3600 IN MX    10 {d}.");
    println!("mta-sts.{d}.  3600 IN CNAME {d}.");
    println!("www.{d}.  3600 IN CNAME {d}.");
    println!(
        "{}._domainkey.{d}.  3600 IN TXT ( {} )",
        cfg.dkim_selector,
        chunks.join(" ")
    );
    println!("; recommended");
    println!("{d}.  3600 IN TXT \"v=spf1 a ~all\"");
    println!("_dmarc.{d}.  3600 IN TXT \"v=DMARC1;p=reject;adkim=s;aspf=s\"");
    println!("_adsp._domainkey.{d}.  3600 IN TXT \"dkim=discardable\"");
    println!("_submission._tcp.{d}.  3600 IN SRV 0 1 587 {d}.");
    println!("_submissions._tcp.{d}.  3600 IN SRV 0 1 465 {d}.");
    println!("_imap._tcp.{d}.  3600 IN SRV 0 1 143 {d}.");
    println!("_imaps._tcp.{d}.  3600 IN SRV 0 1 993 {d}.");
    print_turn_ports(cfg);
    Ok(())
}

/// `chatrelay doctor --last`: the running relay's cached self-check
/// (control socket), one line per problem; nothing is looked up here.
fn doctor_last(cfg: &Config) -> Result<(), String> {
    match control(cfg, "selfcheck") {
        Some(Ok(text)) => {
            print!(
                "{}",
                chatrelay::doctor::cache::summary(&text, chatrelay::clock::now_secs())
            );
            Ok(())
        }
        Some(Err(e)) => Err(e),
        None => {
            println!("self-check: the relay is not running");
            Ok(())
        }
    }
}

/// `chatrelay doctor`: exit status 1 when a problem was found.
fn doctor(cfg: &Config) -> Result<(), String> {
    let resolver = if cfg.dns_servers.is_empty() {
        chatrelay::dns::Resolver::from_resolv_conf()
    } else {
        chatrelay::dns::Resolver::new(cfg.dns_servers.clone())
    };
    // The running relay's port mappings, when it answers on its socket.
    let router = control(cfg, "router").and_then(|r| r.ok());
    let checks = async_io::block_on(chatrelay::doctor::run_with(
        cfg,
        &resolver,
        chatrelay::clock::now_secs(),
        router,
    ));
    print!("{}", chatrelay::doctor::render(&checks));
    if checks
        .iter()
        .any(|c| c.state == chatrelay::doctor::State::Problem)
    {
        return Err("problems found".into());
    }
    Ok(())
}

/// `chatrelay prune`: through the running relay's control socket, or on the
/// store directly when the relay is stopped.
fn prune(cfg: &Config, days: i64, dry_run: bool) -> Result<(), String> {
    use std::io::{BufRead, Write};
    let sock = chatrelay::prune::control::path(cfg);
    if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) {
        writeln!(s, "prune {days} {}", u8::from(dry_run)).map_err(|e| e.to_string())?;
        let mut line = String::new();
        std::io::BufReader::new(s)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let line = line.trim();
        return match line.strip_prefix("ok ") {
            Some(r) => {
                println!("{r}{}", if dry_run { " (dry run)" } else { "" });
                Ok(())
            }
            None => Err(line.to_string()),
        };
    }
    let store = chatrelay::store::Store::open(&cfg.data_dir)
        .map_err(|e| format!("cannot open the store in {}: {e}", cfg.data_dir.display()))?;
    let now = chatrelay::clock::now_secs() + days * 86400;
    let r = futures_lite::future::block_on(chatrelay::prune::run(
        &store, None, None, cfg, now, dry_run,
    ))?;
    println!("{r}{}", if dry_run { " (dry run)" } else { "" });
    Ok(())
}

/// One command over the running relay's control socket; `None` when no
/// relay answers there (then the store is opened directly).
fn control(cfg: &Config, line: &str) -> Option<Result<String, String>> {
    use std::io::{Read, Write};
    let sock = chatrelay::prune::control::path(cfg);
    let mut s = std::os::unix::net::UnixStream::connect(&sock).ok()?;
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    if let Err(e) = writeln!(s, "{line}") {
        return Some(Err(e.to_string()));
    }
    let mut reply = String::new();
    if let Err(e) = s.read_to_string(&mut reply) {
        return Some(Err(e.to_string()));
    }
    let reply = reply.trim_end();
    Some(match reply.strip_prefix("ok") {
        Some(r) => Ok(r.trim_start_matches(' ').to_string()),
        None => Err(reply.strip_prefix("error ").unwrap_or(reply).to_string()),
    })
}

fn open_store(cfg: &Config) -> Result<chatrelay::store::Store, String> {
    chatrelay::store::Store::open(&cfg.data_dir)
        .map_err(|e| format!("cannot open the store in {}: {e}", cfg.data_dir.display()))
}

fn print_link(cfg: &Config, what: &str, link: &str) {
    println!("\n{what} for {}:\n", cfg.mail_domain);
    println!("{}", chatrelay::relay::invite::terminal_qr(link));
    println!("{link}\n");
}

/// `chatrelay invite [new|list|revoke ID]`.
fn invite(cfg: &Config, a: &Args) -> Result<(), String> {
    use chatrelay::config::Registration;
    use chatrelay::relay::registration;
    let words: Vec<&str> = a.words.iter().map(|w| w.as_str()).collect();
    let now = chatrelay::clock::now_secs();
    match words.as_slice() {
        [] if cfg.registration == Registration::Open => {
            print_invitation(cfg);
            Ok(())
        }
        [] if cfg.registration == Registration::Closed => {
            println!(
                "{} takes no new accounts (registration = closed).",
                cfg.mail_domain
            );
            Ok(())
        }
        [] => {
            let first = match control(cfg, "invite-first") {
                Some(r) => r?,
                None => String::new(),
            };
            if first.is_empty() {
                println!(
                    "{} is invite-only: make an invitation with 'chatrelay invite new' or on the \
                     status page (https://<this box>/status on the local network).",
                    cfg.mail_domain
                );
            } else {
                print_link(cfg, "First invitation (single use)", &first);
            }
            Ok(())
        }
        ["new"] => {
            if cfg.registration != Registration::Invite {
                eprintln!("note: registration is not 'invite' in this config; the token works only in invite mode");
            }
            let (id, link) = match control(cfg, &format!("invite-new {} {}", a.uses, a.expires)) {
                Some(r) => {
                    let r = r?;
                    let (id, link) = r.split_once(' ').ok_or("bad reply from the relay")?;
                    (id.to_string(), link.to_string())
                }
                None => {
                    let store = open_store(cfg)?;
                    let (id, l) = registration::create(&store, cfg, a.uses, a.expires, now, false)?;
                    (id.to_string(), l)
                }
            };
            print_link(
                cfg,
                &format!(
                    "Invite {id} ({} use{}, valid {})",
                    a.uses,
                    if a.uses == 1 { "" } else { "s" },
                    chatrelay::http::pages::human_duration(a.expires as u64)
                ),
                &link,
            );
            Ok(())
        }
        ["list"] => {
            let text = match control(cfg, "invite-list") {
                Some(r) => r?,
                None => open_store(cfg)?
                    .list_invites()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .map(|i| registration::describe(i, now))
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            let text = text.trim_start_matches('\n');
            if text.is_empty() {
                println!("no invites");
            } else {
                println!("  id  state    uses      expiry       kind\n{text}");
            }
            Ok(())
        }
        ["revoke", id] => {
            let id: u64 = id.parse().map_err(|_| format!("bad invite id {id:?}"))?;
            match control(cfg, &format!("invite-revoke {id}")) {
                Some(r) => println!("{}", r?),
                None => {
                    if open_store(cfg)?
                        .revoke_invite(id)
                        .map_err(|e| e.to_string())?
                    {
                        println!("invite {id} revoked");
                    } else {
                        return Err(format!("no invite {id}"));
                    }
                }
            }
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

/// `chatrelay backup`.
fn backup(cfg: &Config, a: &Args) -> Result<(), String> {
    use chatrelay::backup::command::{BackupArgs, Target};
    let keep = match a.opt.get("--keep") {
        Some(k) => k.parse().map_err(|_| "--keep needs a whole number")?,
        None => cfg.backup_keep,
    };
    let target = match (a.opt.get("--out"), a.opt.get("--to-dir")) {
        (Some(_), Some(_)) => return Err("give --out or --to-dir, not both".into()),
        (Some(o), None) if o == "-" => Target::Stdout,
        (Some(o), None) => Target::File(o.into()),
        (None, Some(d)) => Target::Dir(d.into(), keep),
        (None, None) if !cfg.backup_dir.as_os_str().is_empty() => {
            Target::Dir(cfg.backup_dir.clone(), keep)
        }
        (None, None) => return Err("give --out FILE|- or --to-dir DIR (or set backup_dir)".into()),
    };
    let args = BackupArgs {
        target,
        without_messages: a.flags.contains(&"--without-messages"),
        config: a.config.clone(),
        passphrase: chatrelay::backup::crypt::passphrase(
            a.opt.get("--passphrase-file").map(std::path::Path::new),
        )?,
    };
    let r = chatrelay::backup::command::backup(cfg, &args)?;
    eprintln!("{r}");
    Ok(())
}

/// `chatrelay restore`.
fn restore(cfg: &Config, a: &Args) -> Result<(), String> {
    let [file] = a.rest.as_slice() else {
        return Err("usage: chatrelay restore FILE|- [options]".into());
    };
    let opts = chatrelay::backup::restore::Options {
        force: a.flags.contains(&"--force"),
        config_out: a.opt.get("--config-out").map(PathBuf::from),
    };
    let pass = chatrelay::backup::crypt::passphrase(
        a.opt.get("--passphrase-file").map(std::path::Path::new),
    )?;
    println!(
        "{}",
        chatrelay::backup::command::restore(&cfg.data_dir, file, pass, &opts)?
    );
    Ok(())
}

/// `chatrelay import-upstream`.
fn import_upstream(cfg: &Config, a: &Args) -> Result<(), String> {
    let [dir] = a.rest.as_slice() else {
        return Err("usage: chatrelay import-upstream MAILBOXES_DIR [options]".into());
    };
    let opts = chatrelay::upstream::Options {
        mailboxes_dir: dir.into(),
        dkim_key: a.opt.get("--dkim-key").map(PathBuf::from),
        tls_dir: a.opt.get("--tls-dir").map(PathBuf::from),
    };
    let report = chatrelay::upstream::import(cfg, &opts)?;
    print!("{report}");
    Ok(())
}

fn serve(cfg: Config) -> Result<(), String> {
    let (ctx, queues) = chatrelay::relay::Ctx::open(cfg)?;
    use chatrelay::config::Registration;
    match ctx.cfg.registration {
        Registration::Open if ctx.cfg.self_signed() => print_invitation(&ctx.cfg),
        Registration::Invite => {
            // Only to a terminal: where stdout is a log (the appliance's
            // syslog), the secret stays out of it; `chatrelay invite` and
            // /status show it there.
            use std::io::IsTerminal;
            if let Some(l) = ctx.first_invite.borrow().as_deref() {
                if std::io::stdout().is_terminal() {
                    print_link(&ctx.cfg, "First invitation (single use, 30 days)", l);
                }
            }
        }
        _ => {}
    }
    let ex = Rc::new(async_executor::LocalExecutor::new());
    let ex2 = ex.clone();
    futures_lite::future::block_on(ex.run(chatrelay::server::run(ex2, Rc::new(ctx), queues)))
}

fn main() -> ExitCode {
    chatrelay::logger::init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.cmd.as_str() {
        "serve" => load_config(&args).and_then(serve),
        "invite" => load_config(&args).and_then(|c| invite(&c, &args)),
        "dns" => load_config(&args).and_then(|c| print_dns(&c)),
        "doctor" if args.flags.contains(&"--last") => {
            load_config(&args).and_then(|c| doctor_last(&c))
        }
        "doctor" => load_config(&args).and_then(|c| doctor(&c)),
        "prune" => load_config(&args).and_then(|c| prune(&c, args.days, args.dry_run)),
        "turn-probe" => load_config(&args).and_then(|c| {
            let ip = c
                .listen_address
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
            let a = std::net::SocketAddr::new(ip, c.turn_port);
            chatrelay::turn::probe(a).map(|()| println!("turn-probe: STUN Binding answered by {a}"))
        }),
        "backup" => load_config(&args).and_then(|c| backup(&c, &args)),
        "restore" => load_config(&args).and_then(|c| restore(&c, &args)),
        "import-upstream" => load_config(&args).and_then(|c| import_upstream(&c, &args)),
        "version" | "--version" => {
            println!("chatrelay {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatrelay: {e}");
            ExitCode::from(1)
        }
    }
}
