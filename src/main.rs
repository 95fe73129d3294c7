//! `chatrelay` command line: serve, invite, version.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use chatrelay::config::Config;

const USAGE: &str = "usage:
  chatrelay serve  [--config chatmail.ini] [--data-dir DIR] [--heartbeat-file PATH]
                   run the relay (the event loop touches PATH every second)
  chatrelay invite [--config chatmail.ini] [--data-dir DIR]   print an invitation link and QR code
  chatrelay dns    [--config chatmail.ini] [--data-dir DIR]   print the DNS records to publish (zone file lines)
  chatrelay prune  [--config chatmail.ini] [--data-dir DIR] [--dry-run] [--days N]
                   apply the retention rules now (as if N days later); works
                   whether the relay runs (control socket) or not
  chatrelay version

Without --config, chatrelay runs as a relay for the local network: the
host's IPv4 address as an IP-literal domain with a self-signed certificate.";

struct Args {
    cmd: String,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    heartbeat_file: Option<PathBuf>,
    dry_run: bool,
    days: i64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or_else(|| USAGE.to_string())?;
    let mut a = Args {
        cmd,
        config: None,
        data_dir: None,
        heartbeat_file: None,
        dry_run: false,
        days: 0,
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" | "-c" => a.config = Some(it.next().ok_or("--config needs a path")?.into()),
            "--data-dir" => a.data_dir = Some(it.next().ok_or("--data-dir needs a path")?.into()),
            "--heartbeat-file" => {
                a.heartbeat_file = Some(it.next().ok_or("--heartbeat-file needs a path")?.into())
            }
            "--dry-run" => a.dry_run = true,
            "--days" => {
                a.days = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--days needs a whole number")?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
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
fn print_dns(cfg: &Config) -> Result<(), String> {
    if cfg.ip_literal.is_some() {
        println!(
            "; {} is an IP-literal relay: no DNS records are needed.",
            cfg.mail_domain
        );
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
    let r = futures_lite::future::block_on(chatrelay::prune::run(&store, None, None, cfg, now, dry_run))?;
    println!("{r}{}", if dry_run { " (dry run)" } else { "" });
    Ok(())
}

fn serve(cfg: Config) -> Result<(), String> {
    let (ctx, queues) = chatrelay::relay::Ctx::open(cfg)?;
    if ctx.cfg.self_signed() {
        print_invitation(&ctx.cfg);
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
        "invite" => load_config(&args).map(|c| print_invitation(&c)),
        "dns" => load_config(&args).and_then(|c| print_dns(&c)),
        "prune" => load_config(&args).and_then(|c| prune(&c, args.days, args.dry_run)),
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
