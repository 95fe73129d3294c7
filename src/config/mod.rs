//! `chatmail.ini` → [`Config`]. Same `[params]` keys and defaults as upstream
//! chatmail (spec §3), plus our own keys documented in the README.

pub mod appversions;
pub mod networks;
pub mod privacy;
pub mod url;

pub use privacy::missing_privacy_fields;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// How TLS certificates are obtained (spec §3 "Derived TLS mode").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// `_`-prefixed domain or IPv4 domain: a self-signed certificate kept in the data dir.
    SelfSigned,
    /// `tls_external_cert_and_key = "<cert> <key>"`.
    External { cert: PathBuf, key: PathBuf },
    /// ACME (RFC 8555, `src/acme`): self-signed until the first issuance.
    Acme,
}

/// Who may create an account (`registration`, our key; default `open` as upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// `/new` and create-on-first-login for any address that follows the rules.
    Open,
    /// Only with an invite token (`chatrelay invite new`).
    Invite,
    /// No new accounts at all.
    Closed,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The domain as used in addresses: `example.org`, `_test.local` or `[192.0.2.1]`.
    pub mail_domain: String,
    /// Set when `mail_domain` is an IPv4 literal.
    pub ip_literal: Option<Ipv4Addr>,
    pub max_user_send_per_minute: u32,
    pub max_user_send_burst_size: u32,
    /// Bytes.
    pub max_mailbox_size: u64,
    /// Most messages in one mailbox (deliveries, APPEND, COPY/MOVE refused beyond).
    pub max_messages_per_mailbox: u64,
    pub max_message_size: u64,
    pub delete_mails_after: u32,
    pub delete_large_after: u32,
    pub delete_inactive_users_after: u32,
    pub username_min_length: usize,
    pub username_max_length: usize,
    pub password_min_length: usize,
    pub max_load_1m: f64,
    pub min_available_memory: u64,
    pub min_free_disk_space: u64,
    pub max_imap_connections: usize,
    pub max_smtp_connections: usize,
    pub tls_mode: TlsMode,
    pub disable_ipv6: bool,
    pub acme_email: String,
    /// An external iroh relay to advertise (`iroh_relay = URL`); `None`
    /// when the key is absent or empty.
    pub iroh_relay: Option<String>,
    /// The key `iroh_relay` is absent: serve our own iroh relay and
    /// advertise it (upstream's default; an empty value advertises none).
    pub iroh_relay_serve: bool,
    pub imap_compress: bool,
    pub privacy_postal: String,
    pub privacy_mail: String,
    pub privacy_pdo: String,
    pub privacy_supervisor: String,
    // --- our own keys ---
    pub data_dir: PathBuf,
    pub listen_address: Option<IpAddr>,
    pub smtp_port: u16,
    pub submission_port: u16,
    pub submissions_port: u16,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub https_port: u16,
    pub http_port: u16,
    /// Refuse new accounts (same effect as the `nocreate` flag file).
    pub nocreate: bool,
    /// Path of the flag file that also disables account creation.
    pub nocreate_file: PathBuf,
    /// Seconds an idle IMAP connection may stay without any command (RFC 3501 §5.4: ≥ 30 min).
    pub imap_idle_timeout: u64,
    /// Seconds an SMTP session may wait for the next command (RFC 5321 §4.5.3.2.7).
    pub smtp_command_timeout: u64,
    /// File the event loop touches every second (liveness; `None`: off).
    pub heartbeat_file: Option<PathBuf>,
    /// Seconds a message may wait in the outbound queue before it bounces.
    pub max_queue_lifetime: u64,
    /// First retry delay in seconds (then ×5, ×15, ×30, ×60).
    pub queue_retry_min: u64,
    /// Ports used to reach other servers (tests move them).
    pub outbound_smtp_port: u16,
    pub outbound_https_port: u16,
    /// Extra CA certificates (PEM) trusted for outbound TLS.
    pub tls_extra_ca: Option<PathBuf>,
    /// DNS servers (`ip:port`, space-separated); empty = /etc/resolv.conf.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Where push notifications go (spec §9.6).
    pub notification_url: String,
    /// TURN server advertised over METADATA (`host`, `port`, shared secret); none when unset.
    pub turn: Option<(String, u16, String)>,
    /// UDP port of our own TURN server (issue 11), which runs when no
    /// external one is configured; 0 disables it.
    pub turn_port: u16,
    /// Relay ports of our own TURN server (inclusive range).
    pub turn_relay_ports: (u16, u16),
    /// Test only: relay to loopback and private peers.
    pub turn_allow_loopback_peers_for_tests: bool,
    /// The address handed out in XOR-RELAYED-ADDRESS (a relay behind NAT).
    pub turn_external_ip: TurnExternalIp,
    /// TURN allocations per REST user name and per client address.
    pub turn_user_quota: usize,
    pub turn_ip_quota: usize,
    /// Daily prune time, UTC (hour, minute).
    pub prune_time: (u32, u32),
    /// DKIM selector (upstream: `opendkim`).
    pub dkim_selector: String,
    /// Sign with Ed25519 (RFC 8463) instead of RSA-2048.
    pub dkim_ed25519: bool,
    /// Who may create accounts.
    pub registration: Registration,
    /// Peer ranges that may see `/status` (default: loopback and private ranges).
    pub status_networks: Vec<networks::Net>,
    /// The METADATA app-version index as one line of JSON; `None` = NIL
    /// (`appversions_file = off`).
    pub appversions: Option<String>,
    /// The relay's log is kept in RAM only (the appliance); stated on the privacy page.
    pub logs_in_ram: bool,
    /// ACME directory URL (`acme_directory`; `staging` = Let's Encrypt staging).
    pub acme_directory: String,
    /// Extra CA (PEM) trusted for the ACME directory's HTTPS (tests).
    pub acme_extra_ca: Option<PathBuf>,
    /// Which challenge ACME answers.
    pub acme_challenge: AcmeChallenge,
    /// Seconds before the first retry of a failed order (doubles up to a day).
    pub acme_retry_min: u64,
    /// IP-literal relay: order a publicly trusted short-lived certificate
    /// for its address (RFC 8738, profile `shortlived`); public addresses only.
    pub acme_ip: bool,
    /// Seconds between the background self-checks (`chatrelay doctor`
    /// inside the relay, shown on `/status`); 0: only when asked for there.
    pub self_check_interval: u64,
    /// ACME waits until this file exists (the appliance's NTP-synced mark).
    pub clock_synced_file: Option<PathBuf>,
    /// dyndns2 update URL (`https://…/nic/update`); `None`: no DDNS.
    pub ddns_url: Option<String>,
    pub ddns_user: String,
    pub ddns_password: String,
    /// Name to update (default `mail_domain`).
    pub ddns_hostname: String,
    /// Seconds before the first retry of a failed update (doubles to 6 h).
    pub ddns_retry_min: u64,
    /// Seconds between looks at the addresses.
    pub ddns_check_interval: u64,
    /// Where the box's IPv6 addresses are read (Linux procfs).
    pub ddns_if_inet6: PathBuf,
    /// Map the relay's ports on the router (NAT-PMP).
    pub port_mapping: bool,
    /// Lifetime asked for each mapping, seconds (renewed at half).
    pub port_mapping_lifetime: u64,
    /// The router to ask (default: the IPv4 default gateway).
    pub router_address: Option<Ipv4Addr>,
    /// Folder for `chatrelay backup` without `--out`/`--to-dir` (and the
    /// appliance's daily backup); empty: none configured.
    pub backup_dir: PathBuf,
    /// Archives kept in a backup folder (the oldest beyond this are removed).
    pub backup_keep: usize,
    /// Extra plain-HTTP port serving the iroh relay (0: none; port 80's
    /// listener serves it too).
    pub iroh_relay_http_port: u16,
    /// Most iroh relay clients at once (0 disables our relay).
    pub iroh_relay_max_clients: usize,
    /// Seconds without a frame before an iroh relay client is dropped.
    pub iroh_relay_idle_timeout: u64,
    /// Keys that were present but unknown (warned about at startup).
    pub unused_keys: Vec<String>,
}

pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// `turn_external_ip`: which address TURN allocations name as relayed
/// address (RFC 8656 §7.3 XOR-RELAYED-ADDRESS); the port is the relay port,
/// which the router forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnExternalIp {
    /// The router's WAN address when it reported a public one, else the
    /// local address.
    Auto,
    /// Always the local address the client reached.
    Off,
    Fixed(Ipv4Addr),
}

/// `acme_challenge`: RFC 8737 TLS-ALPN-01 on the HTTPS port, RFC 8555 §8.3
/// HTTP-01 on port 80, or `auto` (TLS-ALPN-01, HTTP-01 after a failed validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    Auto,
    TlsAlpn01,
    Http01,
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parse an INI text into `section -> key -> value` (only `[params]` is used).
fn parse_ini(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut section = String::new();
    let mut params = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(ConfigError(format!(
                    "line {}: bad section header {line:?}",
                    n + 1
                )));
            };
            section = name.trim().to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(ConfigError(format!(
                "line {}: expected key = value, got {line:?}",
                n + 1
            )));
        };
        if section == "params" {
            params.insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    Ok(params)
}

/// Upstream's size syntax: `500M`, `1G`, bare number = MB, trailing `B` ignored.
/// Returns bytes.
pub fn parse_size_mb(key: &str, v: &str) -> Result<u64, ConfigError> {
    let s = v.trim().trim_end_matches(['B', 'b']);
    let (num, mult) = match s.chars().last() {
        Some('G' | 'g') => (&s[..s.len() - 1], 1024u64 * 1024 * 1024),
        Some('M' | 'm') => (&s[..s.len() - 1], 1024 * 1024),
        Some('K' | 'k') => (&s[..s.len() - 1], 1024),
        _ => (s, 1024 * 1024),
    };
    let n: f64 = num.trim().parse().map_err(|_| {
        ConfigError(format!(
            "bad value for {key}: {v:?} (expected a size like 500M or 1G)"
        ))
    })?;
    // Also refuses NaN.
    if n.is_nan() || n < 0.0 {
        return Err(ConfigError(format!("bad value for {key}: {v:?}")));
    }
    Ok((n * mult as f64) as u64)
}

/// `2d`, `3h`, `10m`, `30s` or plain seconds.
pub fn parse_duration(key: &str, v: &str) -> Result<u64, ConfigError> {
    let s = v.trim();
    let (num, mult) = match s.chars().last() {
        Some('d') => (&s[..s.len() - 1], 86400),
        Some('h') => (&s[..s.len() - 1], 3600),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('s') => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().map(|n| n * mult).map_err(|_| {
        ConfigError(format!(
            "bad value for {key}: {v:?} (expected a duration like 2d, 3h, 600)"
        ))
    })
}

struct Params(BTreeMap<String, String>, Vec<&'static str>);

impl Params {
    fn raw(&mut self, key: &'static str) -> Option<String> {
        self.1.push(key);
        self.0.get(key).cloned()
    }
    fn string(&mut self, key: &'static str, default: &str) -> String {
        self.raw(key).unwrap_or_else(|| default.to_string())
    }
    fn num<T: std::str::FromStr>(
        &mut self,
        key: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError(format!("bad value for {key}: {v:?} (expected a number)"))
            }),
        }
    }
    fn boolean(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => match v.trim().to_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(ConfigError(format!(
                    "bad value for {key}: {v:?} (expected true or false)"
                ))),
            },
        }
    }
    fn size(&mut self, key: &'static str, default: &str) -> Result<u64, ConfigError> {
        let v = self.string(key, default);
        parse_size_mb(key, &v)
    }
}

/// Upstream keys that we read but have no effect here (ports of upstream's
/// internal daemons, paths of the Dovecot setup). Not warned about.
const ACCEPTED_UPSTREAM_KEYS: &[&str] = &[
    "filtermail_smtp_port",
    "filtermail_smtp_port_incoming",
    "filtermail_http_port_incoming",
    "filtermail_lmtp_port_transport",
    "postfix_reinject_port",
    "postfix_reinject_port_incoming",
    "turn_socket_path",
    "mailboxes_dir",
    "passdb_path",
    "www_folder",
    "mtail_address",
    "imap_rawlog",
];

impl Config {
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_ini(&text, None)
    }

    /// The embedded default: an IP-literal relay for the local network.
    pub fn lan_default(ip: Ipv4Addr) -> Config {
        Self::from_ini(&format!("[params]\nmail_domain = {ip}\n"), None)
            .expect("embedded default parses")
    }

    /// `fallback_ip` is used when `mail_domain` is missing (LAN mode).
    pub fn from_ini(text: &str, fallback_ip: Option<Ipv4Addr>) -> Result<Config, ConfigError> {
        let mut p = Params(parse_ini(text)?, Vec::new());
        let domain_raw = match p.raw("mail_domain") {
            Some(d) if !d.trim().is_empty() => d.trim().to_string(),
            _ => match fallback_ip {
                Some(ip) => ip.to_string(),
                None => return Err(ConfigError("mail_domain is required in [params]".into())),
            },
        };
        let domain_bare = domain_raw.trim_start_matches('[').trim_end_matches(']');
        let ip_literal: Option<Ipv4Addr> = domain_bare.parse().ok();
        let mail_domain = match ip_literal {
            Some(ip) => format!("[{ip}]"),
            None => {
                let d = domain_raw.to_lowercase();
                if d.is_empty()
                    || !d
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                {
                    return Err(ConfigError(format!(
                        "bad value for mail_domain: {domain_raw:?}"
                    )));
                }
                d
            }
        };
        let ext = p.string("tls_external_cert_and_key", "");
        let tls_mode = if !ext.trim().is_empty() {
            let parts: Vec<&str> = ext.split_whitespace().collect();
            if parts.len() != 2 {
                return Err(ConfigError(format!(
                    "bad value for tls_external_cert_and_key: {ext:?} (expected \"<cert path> <key path>\")"
                )));
            }
            TlsMode::External {
                cert: parts[0].into(),
                key: parts[1].into(),
            }
        } else if ip_literal.is_some() || mail_domain.starts_with('_') {
            TlsMode::SelfSigned
        } else {
            TlsMode::Acme
        };
        let port = |p: &mut Params, key: &'static str, default: u16| p.num::<u16>(key, default);
        let iroh = p.raw("iroh_relay");
        let cfg = Config {
            ip_literal,
            max_user_send_per_minute: p.num("max_user_send_per_minute", 60)?,
            max_user_send_burst_size: p.num("max_user_send_burst_size", 10)?,
            max_mailbox_size: p.size("max_mailbox_size", "500M")?,
            max_messages_per_mailbox: p.num("max_messages_per_mailbox", 50_000)?,
            max_message_size: p.num("max_message_size", 31_457_280)?,
            delete_mails_after: p.num("delete_mails_after", 20)?,
            delete_large_after: p.num("delete_large_after", 7)?,
            delete_inactive_users_after: p.num("delete_inactive_users_after", 90)?,
            username_min_length: p.num("username_min_length", 9)?,
            username_max_length: p.num("username_max_length", 9)?,
            password_min_length: p.num("password_min_length", 9)?,
            max_load_1m: p.num("max_load_1m", 5.0)?,
            min_available_memory: p.size("min_available_memory", "200M")?,
            min_free_disk_space: p.size("min_free_disk_space", "1G")?,
            max_imap_connections: p.num("max_imap_connections", 10_000)?,
            max_smtp_connections: p.num("max_smtp_connections", 1000)?,
            tls_mode,
            disable_ipv6: p.boolean("disable_ipv6", false)?,
            acme_email: p.string("acme_email", ""),
            iroh_relay_serve: iroh.is_none(),
            iroh_relay: match iroh {
                None => None,
                Some(v) if v.trim().is_empty() => None,
                Some(v) => Some(v.trim().to_string()),
            },
            imap_compress: p.boolean("imap_compress", false)?,
            privacy_postal: p.string("privacy_postal", ""),
            privacy_mail: p.string("privacy_mail", ""),
            privacy_pdo: p.string("privacy_pdo", ""),
            privacy_supervisor: p.string("privacy_supervisor", ""),
            data_dir: p.string("data_dir", "chatrelay-data").into(),
            listen_address: match p.raw("listen_address") {
                None => None,
                Some(v) if v.trim().is_empty() => None,
                Some(v) => Some(v.trim().parse().map_err(|_| {
                    ConfigError(format!(
                        "bad value for listen_address: {v:?} (expected an IP address)"
                    ))
                })?),
            },
            smtp_port: port(&mut p, "smtp_port", 25)?,
            submission_port: port(&mut p, "submission_port", 587)?,
            submissions_port: port(&mut p, "submissions_port", 465)?,
            imap_port: port(&mut p, "imap_port", 143)?,
            imaps_port: port(&mut p, "imaps_port", 993)?,
            https_port: port(&mut p, "https_port", 443)?,
            http_port: port(&mut p, "http_port", 80)?,
            nocreate: p.boolean("nocreate", false)?,
            nocreate_file: p.string("nocreate_file", "/etc/chatmail-nocreate").into(),
            imap_idle_timeout: p.num("imap_idle_timeout", 1800)?,
            smtp_command_timeout: p.num("smtp_command_timeout", 300)?,
            heartbeat_file: p
                .raw("heartbeat_file")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            max_queue_lifetime: parse_duration(
                "max_queue_lifetime",
                &p.string("max_queue_lifetime", "2d"),
            )?,
            queue_retry_min: parse_duration("queue_retry_min", &p.string("queue_retry_min", "60"))?
                .max(1),
            outbound_smtp_port: port(&mut p, "outbound_smtp_port", 25)?,
            outbound_https_port: port(&mut p, "outbound_https_port", 443)?,
            tls_extra_ca: match p.string("tls_extra_ca", "") {
                s if s.trim().is_empty() => None,
                s => Some(s.trim().into()),
            },
            dns_servers: {
                let v = p.string("dns_servers", "");
                let mut out = Vec::new();
                for a in v.split_whitespace() {
                    out.push(
                        a.parse()
                            .or_else(|_| {
                                a.parse::<IpAddr>()
                                    .map(|ip| std::net::SocketAddr::new(ip, 53))
                            })
                            .map_err(|_| {
                                ConfigError(format!(
                                    "bad value for dns_servers: {a:?} (expected ip or ip:port)"
                                ))
                            })?,
                    );
                }
                out
            },
            dkim_selector: p.string("dkim_selector", "opendkim"),
            dkim_ed25519: p.boolean("dkim_ed25519", false)?,
            notification_url: {
                let v = p.string(
                    "notification_url",
                    "https://notifications.delta.chat/notify",
                );
                if crate::config::url::parse_url(&v).is_none() {
                    return Err(ConfigError(format!(
                        "bad value for notification_url: {v:?} (expected https://host[:port]/path)"
                    )));
                }
                v
            },
            turn_port: port(&mut p, "turn_port", 3478)?,
            turn: {
                let host = p.string("turn_host", "");
                let port = port(&mut p, "turn_port", 3478)?;
                let secret = p.string("turn_secret", "");
                if host.trim().is_empty() || secret.is_empty() {
                    None
                } else {
                    Some((host.trim().to_string(), port, secret))
                }
            },
            turn_relay_ports: {
                let v = p.string("turn_relay_ports", "49152-49407");
                let bad = || {
                    ConfigError(format!(
                        "bad value for turn_relay_ports: {v:?} (expected LOW-HIGH, 1024 <= LOW <= HIGH <= 65535)"
                    ))
                };
                let (lo, hi) = v.trim().split_once('-').ok_or_else(bad)?;
                let (lo, hi): (u16, u16) = (
                    lo.trim().parse().map_err(|_| bad())?,
                    hi.trim().parse().map_err(|_| bad())?,
                );
                if lo < 1024 || lo > hi {
                    return Err(bad());
                }
                (lo, hi)
            },
            turn_external_ip: match p.string("turn_external_ip", "auto").trim() {
                "auto" | "" => TurnExternalIp::Auto,
                "off" => TurnExternalIp::Off,
                v => match v.parse::<Ipv4Addr>() {
                    Ok(ip) if !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()) => {
                        TurnExternalIp::Fixed(ip)
                    }
                    _ => {
                        return Err(ConfigError(format!(
                            "bad value for turn_external_ip: {v:?} (expected auto, off or the relay's public IPv4 address)"
                        )))
                    }
                },
            },
            turn_user_quota: p.num("turn_user_quota", 8)?,
            turn_ip_quota: p.num("turn_ip_quota", 16)?,
            turn_allow_loopback_peers_for_tests: p
                .boolean("turn_allow_loopback_peers_for_tests", false)?,
            prune_time: {
                let v = p.string("prune_time", "00:02");
                let bad =
                    || ConfigError(format!("bad value for prune_time: {v:?} (expected HH:MM)"));
                let (h, m) = v.trim().split_once(':').ok_or_else(bad)?;
                let (h, m): (u32, u32) =
                    (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
                if h > 23 || m > 59 {
                    return Err(bad());
                }
                (h, m)
            },
            registration: match p.string("registration", "open").trim().to_lowercase().as_str() {
                "open" => Registration::Open,
                "invite" => Registration::Invite,
                "closed" => Registration::Closed,
                other => {
                    return Err(ConfigError(format!(
                        "bad value for registration: {other:?} (expected open, invite or closed)"
                    )))
                }
            },
            status_networks: networks::parse_list(
                &p.string("status_networks", networks::DEFAULT_STATUS_NETWORKS),
            )
            .map_err(|bad| {
                ConfigError(format!(
                    "bad value in status_networks: {bad:?} (expected address/prefix, e.g. 192.168.0.0/16)"
                ))
            })?,
            appversions: appversions::load(p.raw("appversions_file").as_deref())
                .map_err(|e| ConfigError(format!("bad appversions_file: {e}")))?,
            logs_in_ram: p.boolean("logs_in_ram", false)?,
            acme_directory: match p.string("acme_directory", "").trim() {
                "" | "production" => LETS_ENCRYPT_PRODUCTION.to_string(),
                // No ACME: the self-signed certificate stays (tests, or a
                // relay behind something else that holds the certificate).
                "off" => String::new(),
                "staging" => LETS_ENCRYPT_STAGING.to_string(),
                v if v.starts_with("https://") && crate::config::url::parse_url(v).is_some() => {
                    v.to_string()
                }
                v => {
                    return Err(ConfigError(format!(
                        "bad value for acme_directory: {v:?} (expected staging, production, off or https://host[:port]/path)"
                    )))
                }
            },
            acme_extra_ca: match p.string("acme_extra_ca", "") {
                s if s.trim().is_empty() => None,
                s => Some(s.trim().into()),
            },
            acme_challenge: match p.string("acme_challenge", "auto").trim() {
                "auto" | "" => AcmeChallenge::Auto,
                "tls-alpn-01" => AcmeChallenge::TlsAlpn01,
                "http-01" => AcmeChallenge::Http01,
                v => {
                    return Err(ConfigError(format!(
                        "bad value for acme_challenge: {v:?} (expected auto, tls-alpn-01 or http-01)"
                    )))
                }
            },
            acme_retry_min: parse_duration("acme_retry_min", &p.string("acme_retry_min", "10m"))?
                .max(1),
            acme_ip: {
                let on = match p.string("acme_ip", "off").trim() {
                    "on" => true,
                    "off" | "" => false,
                    v => {
                        return Err(ConfigError(format!(
                            "bad value for acme_ip: {v:?} (expected on or off)"
                        )))
                    }
                };
                // Test-only: pebble on loopback validates 127.0.0.x.
                let allow_private = p.boolean("acme_ip_test_allow_private", false)?;
                match ip_literal {
                    _ if !on => false,
                    None => {
                        return Err(ConfigError(
                            "acme_ip = on needs an IP-literal mail_domain (a domain relay uses ACME anyway)".into(),
                        ))
                    }
                    Some(ip) if !networks::is_public_v4(ip) && !allow_private => {
                        return Err(ConfigError(format!(
                            "acme_ip = on needs a public address; {ip} is private, loopback or CGNAT: no CA can reach it"
                        )))
                    }
                    Some(_) => true,
                }
            },
            self_check_interval: match parse_duration(
                "self_check_interval",
                &p.string("self_check_interval", "1h"),
            )? {
                0 => 0,
                n if n < 60 => {
                    return Err(ConfigError(format!(
                        "bad value for self_check_interval: {n} s (0, or at least 60 s)"
                    )))
                }
                n => n,
            },
            clock_synced_file: match p.string("clock_synced_file", "") {
                s if s.trim().is_empty() => None,
                s => Some(s.trim().into()),
            },
            ddns_url: match p.string("ddns_url", "").trim() {
                "" => None,
                v if crate::config::url::parse_url(v).is_some() => Some(v.to_string()),
                v => {
                    return Err(ConfigError(format!(
                        "bad value for ddns_url: {v:?} (expected https://host[:port]/path)"
                    )))
                }
            },
            ddns_user: p.string("ddns_user", ""),
            ddns_password: p.string("ddns_password", ""),
            ddns_hostname: match p.string("ddns_hostname", "").trim() {
                "" => mail_domain.clone(),
                v => v.to_string(),
            },
            ddns_retry_min: parse_duration("ddns_retry_min", &p.string("ddns_retry_min", "10m"))?
                .max(1),
            ddns_check_interval: parse_duration(
                "ddns_check_interval",
                &p.string("ddns_check_interval", "5m"),
            )?
            .max(1),
            ddns_if_inet6: p.string("ddns_if_inet6", "/proc/net/if_inet6").into(),
            port_mapping: match p.string("port_mapping", "off").trim() {
                "auto" => true,
                "off" | "" => false,
                v => {
                    return Err(ConfigError(format!(
                        "bad value for port_mapping: {v:?} (expected auto or off)"
                    )))
                }
            },
            port_mapping_lifetime: parse_duration(
                "port_mapping_lifetime",
                &p.string("port_mapping_lifetime", "2h"),
            )?
            .clamp(2, 86_400),
            router_address: match p.string("router_address", "").trim() {
                "" => None,
                v => Some(v.parse().map_err(|_| {
                    ConfigError(format!("bad value for router_address: {v:?} (expected an IPv4 address)"))
                })?),
            },
            backup_dir: p.string("backup_dir", "").trim().into(),
            backup_keep: match p.num("backup_keep", 7usize)? {
                0 => {
                    return Err(ConfigError(
                        "bad value for backup_keep: 0 (keep at least 1)".into(),
                    ))
                }
                n => n,
            },
            iroh_relay_http_port: port(&mut p, "iroh_relay_http_port", 0)?,
            iroh_relay_max_clients: p.num("iroh_relay_max_clients", 1000)?,
            iroh_relay_idle_timeout: {
                let v = p.num("iroh_relay_idle_timeout", 60u64)?;
                if v < 3 {
                    return Err(ConfigError(format!(
                        "bad value for iroh_relay_idle_timeout: {v} (at least 3 seconds)"
                    )));
                }
                v
            },
            unused_keys: Vec::new(),
            mail_domain,
        };
        let Params(all, used) = p;
        let unused_keys = all
            .keys()
            .filter(|k| {
                !used.contains(&k.as_str()) && !ACCEPTED_UPSTREAM_KEYS.contains(&k.as_str())
            })
            .cloned()
            .collect();
        if cfg.iroh_relay_http_port != 0 && cfg.iroh_relay_http_port == cfg.http_port {
            return Err(ConfigError(format!(
                "bad value for iroh_relay_http_port: {} is http_port, which serves the relay already",
                cfg.iroh_relay_http_port
            )));
        }
        if cfg.username_min_length > cfg.username_max_length {
            return Err(ConfigError(format!(
                "bad value for username_min_length: {} is above username_max_length {}",
                cfg.username_min_length, cfg.username_max_length
            )));
        }
        Ok(Config { unused_keys, ..cfg })
    }

    /// Hostname clients connect to: the IP for IP-literal relays, else the domain.
    pub fn hostname(&self) -> String {
        match self.ip_literal {
            Some(ip) => ip.to_string(),
            None => self.mail_domain.clone(),
        }
    }

    /// Names of the ACME certificate: the domain, `mta-sts.` and `www.`
    /// (upstream's certificate has the same three).
    pub fn acme_names(&self) -> Vec<String> {
        if let Some(ip) = self.ip_literal {
            // RFC 8738: one `ip` identifier, the address itself.
            return vec![ip.to_string()];
        }
        let d = &self.mail_domain;
        vec![d.clone(), format!("mta-sts.{d}"), format!("www.{d}")]
    }

    /// The URL of our own iroh relay as clients must use it, or `None`
    /// when we serve none. Upstream advertises `https://<mail_domain>`
    /// (chatmaild `config.py`); iroh clients trust only publicly trusted
    /// certificates, so a self-signed relay names a plain-HTTP port it
    /// serves instead (`iroh_relay_http_port`, else `http_port`).
    pub fn own_iroh_relay_url(&self) -> Option<String> {
        if !self.iroh_relay_serve || self.iroh_relay_max_clients == 0 {
            return None;
        }
        let host = self.hostname();
        let with_port = |scheme: &str, port: u16, default: u16| {
            if port == default {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}:{port}")
            }
        };
        if self.self_signed() {
            match (self.iroh_relay_http_port, self.http_port) {
                (0, 0) => None,
                (0, p) | (p, _) => Some(with_port("http", p, 80)),
            }
        } else if self.https_port != 0 {
            Some(with_port("https", self.https_port, 443))
        } else {
            None
        }
    }

    /// The iroh relay METADATA `/shared/vendor/deltachat/irohrelay` names:
    /// a configured external one, else our own.
    pub fn advertised_iroh_relay(&self) -> Option<String> {
        self.iroh_relay
            .clone()
            .or_else(|| self.own_iroh_relay_url())
    }

    /// The ACME task orders certificates: domain relays (unless
    /// `tls_external_cert_and_key`), IP-literal relays with `acme_ip = on`.
    pub fn acme_wanted(&self) -> bool {
        self.tls_mode == TlsMode::Acme
            || (self.acme_ip && self.tls_mode == TlsMode::SelfSigned && self.ip_literal.is_some())
    }

    pub fn self_signed(&self) -> bool {
        !matches!(self.tls_mode, TlsMode::External { .. } | TlsMode::Acme)
    }

    /// `@domain` suffix of local addresses.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        domain.eq_ignore_ascii_case(&self.mail_domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_upstream() {
        let c = Config::from_ini("[params]\nmail_domain = chat.example.org\n", None).unwrap();
        assert_eq!(c.max_mailbox_size, 500 * 1024 * 1024);
        assert_eq!(c.max_message_size, 31_457_280);
        assert_eq!(c.delete_mails_after, 20);
        assert_eq!(c.username_max_length, 9);
        assert_eq!(c.tls_mode, TlsMode::Acme);
        assert_eq!(c.min_free_disk_space, 1024 * 1024 * 1024);
        assert!(c.unused_keys.is_empty());
    }

    #[test]
    fn ip_domain_and_unknown_keys() {
        let c = Config::from_ini(
            "[params]\nmail_domain = 10.0.0.5\nfoo = 1\nmailboxes_dir = /x\n",
            None,
        )
        .unwrap();
        assert_eq!(c.mail_domain, "[10.0.0.5]");
        assert_eq!(c.tls_mode, TlsMode::SelfSigned);
        assert_eq!(c.unused_keys, vec!["foo".to_string()]);
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let e =
            Config::from_ini("[params]\nmail_domain = a.b\nimap_port = 99999\n", None).unwrap_err();
        assert!(
            e.0.contains("imap_port") && e.0.contains("99999"),
            "{}",
            e.0
        );
        let e = Config::from_ini(
            "[params]\nmail_domain = a.b\nmax_mailbox_size = lots\n",
            None,
        )
        .unwrap_err();
        assert!(
            e.0.contains("max_mailbox_size") && e.0.contains("lots"),
            "{}",
            e.0
        );
        assert!(Config::from_ini("[params]\n", None).is_err());
        assert!(Config::from_ini("[params]\nmail_domain = a b\n", None).is_err());
    }

    #[test]
    fn iroh_relay_url() {
        let c = |extra: &str| {
            Config::from_ini(
                &format!("[params]\nmail_domain = chat.example.org\n{extra}"),
                None,
            )
            .unwrap()
        };
        assert_eq!(
            c("").advertised_iroh_relay().as_deref(),
            Some("https://chat.example.org")
        );
        assert_eq!(
            c("https_port = 8443\n").advertised_iroh_relay().as_deref(),
            Some("https://chat.example.org:8443")
        );
        assert_eq!(c("iroh_relay =\n").advertised_iroh_relay(), None);
        let ext = c("iroh_relay = https://iroh.example.net/\n");
        assert_eq!(
            ext.advertised_iroh_relay().as_deref(),
            Some("https://iroh.example.net/")
        );
        assert!(!ext.iroh_relay_serve);
        assert_eq!(
            c("iroh_relay_max_clients = 0\n").advertised_iroh_relay(),
            None
        );
        let ip = |extra: &str| {
            Config::from_ini(&format!("[params]\nmail_domain = 10.0.0.5\n{extra}"), None).unwrap()
        };
        assert_eq!(
            ip("").advertised_iroh_relay().as_deref(),
            Some("http://10.0.0.5")
        );
        assert_eq!(
            ip("iroh_relay_http_port = 3340\n")
                .advertised_iroh_relay()
                .as_deref(),
            Some("http://10.0.0.5:3340")
        );
        assert_eq!(
            ip("http_port = 8080\n").advertised_iroh_relay().as_deref(),
            Some("http://10.0.0.5:8080")
        );
        assert_eq!(ip("http_port = 0\n").advertised_iroh_relay(), None);
        assert!(Config::from_ini(
            "[params]\nmail_domain = a.b\niroh_relay_idle_timeout = 1\n",
            None
        )
        .is_err());
    }

    #[test]
    fn acme_ip_only_for_public_ip_literals() {
        let c = |text: &str| Config::from_ini(&format!("[params]\n{text}"), None);
        let on = c("mail_domain = 203.0.114.9\nacme_ip = on\n").unwrap();
        assert!(on.acme_ip && on.acme_wanted() && on.self_signed());
        assert_eq!(on.acme_names(), vec!["203.0.114.9".to_string()]);
        assert!(!c("mail_domain = 203.0.114.9\n").unwrap().acme_wanted());
        for private in ["192.168.1.5", "127.0.0.9", "100.64.1.1", "10.1.1.1"] {
            let e = c(&format!("mail_domain = {private}\nacme_ip = on\n")).unwrap_err();
            assert!(e.to_string().contains("public address"), "{e}");
            // The test-only key lets pebble on loopback validate.
            let t = c(&format!(
                "mail_domain = {private}\nacme_ip = on\nacme_ip_test_allow_private = true\n"
            ))
            .unwrap();
            assert!(t.acme_wanted());
        }
        assert!(c("mail_domain = chat.example\nacme_ip = on\n").is_err());
        assert!(c("mail_domain = 203.0.114.9\nacme_ip = maybe\n").is_err());
        assert_eq!(
            c("mail_domain = a.test\n").unwrap().self_check_interval,
            3600
        );
        assert_eq!(
            c("mail_domain = a.test\nself_check_interval = 0\n")
                .unwrap()
                .self_check_interval,
            0
        );
        assert!(c("mail_domain = a.test\nself_check_interval = 5s\n").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_mb("k", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size_mb("k", "200MB").unwrap(), 200 << 20);
        assert_eq!(parse_size_mb("k", "7").unwrap(), 7 << 20);
    }
}
