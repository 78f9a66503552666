//! The main configuration file (`conf/ferroswitch.toml`): strict TOML into raw structs, then
//! validation into the typed settings, collecting every problem with its line and key.
//!
//! Reads no files itself except to check that the users directory exists and that the
//! registrations database can be written; never applies settings (binding sockets, setting
//! log levels, opening the database is the daemon's job).

use super::error::ConfigError;
use super::listen::{default_listen, ListenAddr};
use super::tls::{TlsSettings, TlsVersion};
use super::{
    CallsConfig, ControlConfig, LogConfig, LogLevel, MetricsConfig, RegistrarConfig, ServerConfig,
    StoreConfig, TcpConfig,
};
use crate::auth::Algorithm;
use crate::net::Transport;
use serde::Deserialize;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    registrar: RawRegistrar,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    calls: RawCalls,
    #[serde(default)]
    security: crate::security::SecurityConfig,
    #[serde(default)]
    tcp: RawTcp,
    #[serde(default)]
    media: super::media::RawMedia,
    tls: Option<Spanned<RawTls>>,
    #[serde(default)]
    control: RawControl,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    trace: super::trace::RawTrace,
    #[serde(default)]
    gateway: Vec<Spanned<super::gateway::RawGateway>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: Option<Spanned<String>>,
    private_key: Option<Spanned<String>>,
    min_version: Option<Spanned<String>>,
    verify_peers: Option<bool>,
    ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    idle_timeout: Option<Spanned<i64>>,
    untrusted_idle_timeout: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_ip: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCalls {
    auth_calls: Option<bool>,
    call_timeout: Option<Spanned<i64>>,
    max_calls: Option<Spanned<i64>>,
    cdr_file: Option<Spanned<String>>,
    session_expires: Option<Spanned<i64>>,
    min_se: Option<Spanned<i64>>,
    max_calls_per_user: Option<Spanned<i64>>,
    max_calls_per_source: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    domain: Option<Spanned<String>>,
    listen: Option<Spanned<Vec<Spanned<String>>>>,
    users: Option<Spanned<String>>,
    aliases: Option<Spanned<Vec<Spanned<String>>>>,
    user_agent: Option<Spanned<String>>,
    dialplan: Option<Spanned<String>>,
    drain_timeout: Option<Spanned<i64>>,
    node_id: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRegistrar {
    min_expires: Option<Spanned<i64>>,
    max_expires: Option<Spanned<i64>>,
    default_expires: Option<Spanned<i64>>,
    digest_algorithms: Option<Spanned<Vec<Spanned<String>>>>,
    nonce_lifetime: Option<Spanned<i64>>,
    auth_calls: Option<bool>,
    contact_allow: Option<Spanned<Vec<Spanned<String>>>>,
    contact_deny: Option<Spanned<Vec<Spanned<String>>>>,
    nonce_bind_source: Option<bool>,
    nat_keepalive: Option<Spanned<i64>>,
    store: Option<Spanned<String>>,
    trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    nonce_secret_file: Option<Spanned<String>>,
    redis_prefix: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<Spanned<String>>,
    sip_trace: Option<bool>,
}

/// The settings of the main file, and every problem found in it.
pub(crate) struct Parsed {
    pub server: ServerConfig,
    pub registrar: RegistrarConfig,
    pub log: LogConfig,
    pub calls: CallsConfig,
    pub security: crate::security::SecurityConfig,
    pub tcp: TcpConfig,
    pub media: crate::media::MediaConfig,
    pub tls: Option<TlsSettings>,
    pub control: ControlConfig,
    pub metrics: MetricsConfig,
    pub trace: crate::engine::TraceConfig,
    pub dialplan: Option<PathBuf>,
    pub gateways: Vec<super::GatewayConfig>,
    pub errors: Vec<ConfigError>,
}

/// Upper bound for any expiry: RFC 3261 allows 2^32-1, but a week is plenty and keeps
/// arithmetic on instants far from overflow.
const MAX_EXPIRES_LIMIT: i64 = 7 * 24 * 3600;

/// Collects problems with the line of the offending value.
pub(super) struct Problems<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Problems<'_> {
    pub(super) fn bad(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        let e = ConfigError::invalid(self.file, self.text, span, key, message);
        self.errors.push(e);
    }

    /// The same, for a line already known.
    pub(super) fn bad_at(&mut self, line: usize, key: &str, message: String) {
        self.errors.push(ConfigError::Invalid {
            file: self.file.to_path_buf(),
            line: Some(line),
            key: key.to_string(),
            message,
        });
    }

    pub(super) fn errors_len(&self) -> usize {
        self.errors.len()
    }

    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        super::error::line_of(self.text, span.start)
    }
}

pub(crate) fn parse(text: &str, file: &Path) -> Result<Parsed, ConfigError> {
    let mut raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::syntax(file, text, &e))?;
    let mut p = Problems {
        file,
        text,
        errors: Vec::new(),
    };
    let dialplan = dialplan(&mut p, raw.server.dialplan.take());
    let server = server(&mut p, raw.server);
    let registrar = registrar(&mut p, raw.registrar);
    let log = log(&mut p, raw.log);
    let mut calls = calls(&mut p, raw.calls, file);
    // `[registrar] auth_calls` is the older spelling; `[calls] auth_calls` wins.
    if calls.auth_calls.is_none() {
        calls.auth_calls = Some(registrar.auth_calls);
    }
    for e in raw.security.validate() {
        p.bad(None, "security", e.to_string());
    }
    let tcp = tcp(&mut p, raw.tcp);
    let media = super::media::media(&mut p, raw.media);
    let tls = tls(&mut p, raw.tls, &server.listen);
    let (control, metrics) = operations(&mut p, raw.control, raw.metrics, file);
    let trace = super::trace::trace(&mut p, raw.trace);
    let gateways = super::gateway::gateways(&mut p, raw.gateway);
    Ok(Parsed {
        dialplan,
        gateways,
        trace,
        control,
        metrics,
        server,
        registrar,
        log,
        calls,
        security: raw.security,
        tcp,
        media,
        tls,
        errors: p.errors,
    })
}

/// `[server] dialplan`: a file, relative to the config file's directory like `users`.
fn dialplan(p: &mut Problems<'_>, raw: Option<Spanned<String>>) -> Option<PathBuf> {
    let v = raw?;
    if v.get_ref().trim().is_empty() {
        let msg = "must not be empty (leave it out to route every number to the user of that \
                   name)";
        p.bad(Some(v.span()), "server.dialplan", msg.into());
        return None;
    }
    let path = p
        .file
        .parent()
        .unwrap_or(Path::new("."))
        .join(v.get_ref().trim());
    if !path.is_file() {
        let msg = format!(
            "{} is not a file; relative paths start at the config file's directory",
            path.display()
        );
        p.bad(Some(v.span()), "server.dialplan", msg);
    }
    Some(path)
}

fn server(p: &mut Problems<'_>, raw: RawServer) -> ServerConfig {
    let domain = raw.domain.and_then(|d| match bad_host(d.get_ref()) {
        Some(why) => {
            p.bad(
                Some(d.span()),
                "server.domain",
                format!("{:?} {why}", d.get_ref()),
            );
            None
        }
        None => Some(d.into_inner()),
    });
    let mut listen: Vec<ListenAddr> = Vec::new();
    match raw.listen {
        None => listen = default_listen(),
        Some(l) if l.get_ref().is_empty() => {
            let msg = "must list at least one address".to_string();
            p.bad(Some(l.span()), "server.listen", msg);
        }
        Some(l) => {
            for (i, entry) in l.into_inner().into_iter().enumerate() {
                let key = format!("server.listen[{i}]");
                match entry.get_ref().parse::<ListenAddr>() {
                    Ok(a) if listen.contains(&a) => {
                        p.bad(Some(entry.span()), &key, format!("{a} is listed twice"))
                    }
                    Ok(a) => listen.push(a),
                    Err(msg) => p.bad(Some(entry.span()), &key, msg),
                }
            }
        }
    }
    let base = p.file.parent().unwrap_or(Path::new("."));
    let (users_dir, users_span) = match raw.users {
        None => (base.join(ServerConfig::DEFAULT_USERS), None),
        Some(u) => (base.join(u.get_ref()), Some(u.span())),
    };
    if !users_dir.is_dir() {
        let what = if users_span.is_some() {
            ""
        } else {
            " (the default; set server.users)"
        };
        let msg = format!(
            "{} is not a directory{what}; relative paths start at the config file's directory",
            users_dir.display()
        );
        p.bad(users_span, "server.users", msg);
    }
    let mut aliases: Vec<String> = Vec::new();
    for (i, a) in raw
        .aliases
        .map(Spanned::into_inner)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let key = format!("server.aliases[{i}]");
        match bad_host(a.get_ref()) {
            Some(why) => p.bad(Some(a.span()), &key, format!("{:?} {why}", a.get_ref())),
            None => aliases.push(a.into_inner()),
        }
    }
    let user_agent = match raw.user_agent {
        None => ServerConfig::DEFAULT_USER_AGENT.to_string(),
        Some(ua) => {
            let bad = ua.get_ref().chars().any(|c| c.is_control()) || ua.get_ref().len() > 128;
            if bad {
                let msg = "must be at most 128 characters without control characters (\"\" for no Server/User-Agent header)".to_string();
                p.bad(Some(ua.span()), "server.user_agent", msg);
            }
            ua.into_inner().trim().to_string()
        }
    };
    // A day at most: longer is a typo, and systemd's TimeoutStopSec must exceed it anyway.
    let drain_timeout = ranged(p, raw.drain_timeout, "server.drain_timeout", 0..=86_400, 0);
    let node_id = raw.node_id.and_then(|n| {
        let v = n.get_ref();
        let ok = (1..=32).contains(&v.len())
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if !ok {
            let msg = format!("{v:?} must be 1 to 32 characters of A-Z a-z 0-9 . _ -");
            p.bad(Some(n.span()), "server.node_id", msg);
            return None;
        }
        Some(n.into_inner())
    });
    ServerConfig {
        domain,
        listen,
        users_dir,
        aliases,
        user_agent,
        drain_timeout: Duration::from_secs(drain_timeout),
        node_id,
    }
}

fn registrar(p: &mut Problems<'_>, r: RawRegistrar) -> RegistrarConfig {
    let d = RegistrarConfig::default();
    let min = expires(p, r.min_expires, "registrar.min_expires");
    let max = expires(p, r.max_expires, "registrar.max_expires");
    let def = expires(p, r.default_expires, "registrar.default_expires");
    let value = |v: &Option<Option<Spanned<u32>>>, default: u32| match v {
        Some(Some(s)) => *s.get_ref(),
        _ => default,
    };
    let (min_v, max_v, def_v) = (
        value(&min, d.min_expires),
        value(&max, d.max_expires),
        value(&def, d.default_expires),
    );
    // Relations are checked only between valid values, so one typo gives one message.
    if min.is_some() && max.is_some() && def.is_some() {
        let span = |v: &Option<Option<Spanned<u32>>>| {
            v.as_ref().and_then(|s| s.as_ref().map(|s| s.span()))
        };
        if min_v > max_v {
            let msg = format!("{max_v} is below min_expires ({min_v})");
            p.bad(span(&max), "registrar.max_expires", msg);
        } else if !(min_v..=max_v).contains(&def_v) {
            let msg = format!("{def_v} is outside min_expires..max_expires ({min_v}..{max_v})");
            p.bad(span(&def), "registrar.default_expires", msg);
        }
    }
    let mut algorithms = Vec::new();
    if let Some(list) = r.digest_algorithms {
        if list.get_ref().is_empty() {
            let msg = "must offer at least one algorithm".to_string();
            p.bad(Some(list.span()), "registrar.digest_algorithms", msg);
        }
        for (i, a) in list.into_inner().into_iter().enumerate() {
            let key = format!("registrar.digest_algorithms[{i}]");
            match Algorithm::parse(a.get_ref()) {
                Some(alg) if algorithms.contains(&alg) => {
                    p.bad(Some(a.span()), &key, format!("{alg} is listed twice"))
                }
                Some(alg) => algorithms.push(alg),
                None => {
                    let known: Vec<&str> =
                        Algorithm::ALL.iter().rev().map(|a| a.as_str()).collect();
                    let msg = format!(
                        "unknown algorithm {:?} (one of {})",
                        a.get_ref(),
                        known.join(", ")
                    );
                    p.bad(Some(a.span()), &key, msg);
                }
            }
        }
    }
    if algorithms.is_empty() {
        algorithms = d.digest_algorithms.clone();
    }
    let nonce_lifetime = match r.nonce_lifetime {
        None => d.nonce_lifetime,
        Some(v) if (10..=86_400).contains(v.get_ref()) => Duration::from_secs(*v.get_ref() as u64),
        Some(v) => {
            let msg = format!("{} is out of range (10 to 86400 seconds)", v.get_ref());
            p.bad(Some(v.span()), "registrar.nonce_lifetime", msg);
            d.nonce_lifetime
        }
    };
    // 0 turns pings off; under 10 s would flood phones, over an hour no router keeps a
    // UDP mapping that long anyway.
    let nat_keepalive = match r.nat_keepalive {
        None => d.nat_keepalive,
        Some(v) if *v.get_ref() == 0 || (10..=3600).contains(v.get_ref()) => {
            Duration::from_secs(*v.get_ref() as u64)
        }
        Some(v) => {
            let msg = format!(
                "{} is out of range (0 = off, or 10 to 3600 seconds)",
                v.get_ref()
            );
            p.bad(Some(v.span()), "registrar.nat_keepalive", msg);
            d.nat_keepalive
        }
    };
    let contact_allow = match r.contact_allow {
        None => d.contact_allow.clone(),
        Some(list) => networks(p, list.into_inner(), "registrar.contact_allow"),
    };
    let contact_deny = match r.contact_deny {
        None => d.contact_deny.clone(),
        Some(list) => networks(p, list.into_inner(), "registrar.contact_deny"),
    };
    let store = store(p, r.store, r.redis_prefix);
    let trusted_proxies = match r.trusted_proxies {
        None => d.trusted_proxies.clone(),
        Some(list) => networks(p, list.into_inner(), "registrar.trusted_proxies"),
    };
    let nonce_secret_file = r.nonce_secret_file.and_then(|f| {
        let base = p.file.parent().unwrap_or(Path::new("."));
        let path = base.join(f.get_ref().trim());
        match super::nonce_key::load(&path) {
            Ok(_) => Some(path),
            Err(msg) => {
                p.bad(Some(f.span()), "registrar.nonce_secret_file", msg);
                None
            }
        }
    });
    RegistrarConfig {
        trusted_proxies,
        nonce_secret_file,
        min_expires: min_v,
        max_expires: max_v,
        default_expires: def_v,
        digest_algorithms: algorithms,
        nonce_lifetime,
        auth_calls: r.auth_calls.unwrap_or(d.auth_calls),
        contact_allow,
        contact_deny,
        nonce_bind_source: r.nonce_bind_source.unwrap_or(d.nonce_bind_source),
        nat_keepalive,
        store,
    }
}

/// `[registrar] store`: `"memory"` or `"sqlite:PATH"`, the path relative to the config file's
/// directory. The database must be creatable or writable now: the daemon would refuse to
/// start later anyway, and `check-config` (run by the systemd unit) says why first.
fn store(
    p: &mut Problems<'_>,
    raw: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
) -> StoreConfig {
    const KEY: &str = "registrar.store";
    let redis = raw
        .as_ref()
        .is_some_and(|v| v.get_ref().trim().starts_with("redis"));
    if redis {
        return redis_store(p, raw, prefix);
    }
    if let Some(v) = &prefix {
        let msg = "only with a \"redis://…\" store".to_string();
        p.bad(Some(v.span()), "registrar.redis_prefix", msg);
    }
    let base = p.file.parent().unwrap_or(Path::new("."));
    let (value, span) = match &raw {
        None => (format!("sqlite:{}", StoreConfig::DEFAULT_FILE), None),
        Some(v) => (v.get_ref().trim().to_string(), Some(v.span())),
    };
    let config = if value == "memory" {
        StoreConfig::Memory
    } else if let Some(path) = value
        .strip_prefix("sqlite:")
        .filter(|p| !p.trim().is_empty())
    {
        StoreConfig::Sqlite(base.join(path.trim()))
    } else {
        let msg = format!("{value:?} is neither \"memory\", \"sqlite:PATH\" nor \"redis://HOST…\"");
        p.bad(span, KEY, msg);
        return StoreConfig::Memory;
    };
    if let StoreConfig::Sqlite(path) = &config {
        if let Err(why) = writable(path) {
            let what = if span.is_some() {
                ""
            } else {
                " (the default; set registrar.store)"
            };
            let msg = format!(
                "{}: {why}{what}; relative paths start at the config file's directory",
                path.display()
            );
            p.bad(span, KEY, msg);
        }
    }
    config
}

/// `[registrar] store = "redis://[:password@]host[:port][/db]"` and `redis_prefix`. The URL
/// is parsed here (a typo is a config error); whether Redis answers is not checked: a cluster
/// node must start while Redis is down and wait for it (see `crate::persist::RedisStore`).
fn redis_store(
    p: &mut Problems<'_>,
    raw: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
) -> StoreConfig {
    let (url, span) = match &raw {
        Some(v) => (v.get_ref().trim().to_string(), Some(v.span())),
        None => (String::new(), None),
    };
    let shown = crate::config::redact_password(&url);
    let problem = if !url.starts_with("redis://") {
        Some("only redis:// is supported (no TLS: keep Redis on a private network)".to_string())
    } else {
        redis::Client::open(url.as_str())
            .err()
            .map(|e| format!("not a Redis URL: {e}"))
    };
    if let Some(why) = problem {
        p.bad(span, "registrar.store", format!("{shown:?}: {why}"));
    }
    let prefix = match prefix {
        None => StoreConfig::DEFAULT_REDIS_PREFIX.to_string(),
        Some(v) => {
            let text = v.get_ref().trim().to_string();
            // The loader SCANs `<prefix>:loc:*`: no glob characters either.
            let bad = |c: char| c.is_whitespace() || ":*?[]\\".contains(c);
            if text.is_empty() || text.contains(bad) {
                let msg = format!("{text:?}: one word without spaces, ':' or glob characters");
                p.bad(Some(v.span()), "registrar.redis_prefix", msg);
            }
            text
        }
    };
    StoreConfig::Redis { url, prefix }
}

/// Whether the daemon can open `path` for writing, or create it: an existing file must open
/// read-write; else its directory must exist and allow creating files.
fn writable(path: &Path) -> Result<(), String> {
    if path.exists() {
        if path.is_dir() {
            return Err("is a directory".into());
        }
        return std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("cannot be opened for writing: {e}"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("directory {} does not exist", dir.display()));
    }
    if !dir_writable(dir) {
        return Err(format!("directory {} is not writable", dir.display()));
    }
    Ok(())
}

/// `access(2)` with the effective ids: may this process create files in `dir`?
#[cfg(unix)]
fn dir_writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; faccessat reads it and keeps nothing.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}

#[cfg(not(unix))]
fn dir_writable(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| !m.permissions().readonly())
}

/// A list of CIDR networks (`"10.0.0.0/8"`, `"2001:db8::/32"`, a bare address); host names
/// are an error, never a lookup.
fn networks(
    p: &mut Problems<'_>,
    list: Vec<Spanned<String>>,
    key: &str,
) -> Vec<crate::security::IpNet> {
    let mut out = Vec::new();
    for (i, n) in list.into_iter().enumerate() {
        match n.get_ref().parse::<crate::security::IpNet>() {
            Ok(net) => out.push(net),
            Err(e) => p.bad(Some(n.span()), &format!("{key}[{i}]"), e.to_string()),
        }
    }
    out
}

/// `None`: invalid (reported); `Some(None)`: absent, use the default; `Some(Some(v))`: valid.
fn expires(
    p: &mut Problems<'_>,
    v: Option<Spanned<i64>>,
    key: &str,
) -> Option<Option<Spanned<u32>>> {
    match v {
        None => Some(None),
        Some(v) if (1..=MAX_EXPIRES_LIMIT).contains(v.get_ref()) => {
            let n = *v.get_ref() as u32;
            Some(Some(Spanned::new(v.span(), n)))
        }
        Some(v) => {
            let msg = format!(
                "{} is out of range (1 to {MAX_EXPIRES_LIMIT} seconds)",
                v.get_ref()
            );
            p.bad(Some(v.span()), key, msg);
            None
        }
    }
}

fn tcp(p: &mut Problems<'_>, raw: RawTcp) -> TcpConfig {
    let d = TcpConfig::default();
    let untrusted_span = raw.untrusted_idle_timeout.as_ref().map(Spanned::span);
    let idle = ranged(
        p,
        raw.idle_timeout,
        "tcp.idle_timeout",
        10..=86_400,
        d.idle_timeout.as_secs(),
    );
    let untrusted = ranged(
        p,
        raw.untrusted_idle_timeout,
        "tcp.untrusted_idle_timeout",
        1..=86_400,
        d.untrusted_idle_timeout.as_secs(),
    );
    if untrusted > idle {
        let msg = format!("{untrusted} is longer than tcp.idle_timeout ({idle})");
        p.bad(untrusted_span, "tcp.untrusted_idle_timeout", msg);
    }
    let max_connections = ranged(
        p,
        raw.max_connections,
        "tcp.max_connections",
        1..=1_000_000,
        d.max_connections as u64,
    );
    let per_ip = ranged(
        p,
        raw.max_connections_per_ip,
        "tcp.max_connections_per_ip",
        1..=65_535,
        d.max_connections_per_ip as u64,
    );
    TcpConfig {
        idle_timeout: Duration::from_secs(idle),
        untrusted_idle_timeout: Duration::from_secs(untrusted.min(idle)),
        max_connections: max_connections as usize,
        max_connections_per_ip: per_ip as usize,
    }
}

/// `[tls]`: required (certificate and key) when a `tls:` listener is configured. The files are
/// loaded and checked here so a bad pair stops the daemon at start, not at the first phone.
fn tls(
    p: &mut Problems<'_>,
    raw: Option<Spanned<RawTls>>,
    listen: &[ListenAddr],
) -> Option<TlsSettings> {
    let wanted = listen.iter().any(|l| l.transport == Transport::Tls);
    let Some(raw) = raw else {
        if wanted {
            let msg = "a tls: listener needs [tls] certificate and private_key".to_string();
            p.bad(None, "tls", msg);
        }
        return None;
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let base = p.file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut path = |v: Option<Spanned<String>>, key: &str| -> Option<(PathBuf, Range<usize>)> {
        match v {
            Some(v) if !v.get_ref().trim().is_empty() => {
                Some((base.join(v.get_ref().trim()), v.span()))
            }
            Some(v) => {
                p.bad(Some(v.span()), key, "is empty".to_string());
                None
            }
            None => {
                p.bad(Some(span.clone()), key, "is missing".to_string());
                None
            }
        }
    };
    let certificate = path(raw.certificate, "tls.certificate");
    let private_key = path(raw.private_key, "tls.private_key");
    let ca_file = match raw.ca_file {
        Some(v) if !v.get_ref().trim().is_empty() => Some(base.join(v.get_ref().trim())),
        _ => None,
    };
    let min_version = match raw.min_version {
        None => TlsVersion::default(),
        Some(v) => v.get_ref().parse().unwrap_or_else(|msg| {
            p.bad(Some(v.span()), "tls.min_version", msg);
            TlsVersion::default()
        }),
    };
    let ((certificate, cert_span), (private_key, key_span)) = (certificate?, private_key?);
    let settings = TlsSettings {
        certificate,
        private_key,
        min_version,
        verify_peers: raw.verify_peers.unwrap_or(false),
        ca_file,
    };
    if let Err(e) = super::tls::load(&settings) {
        let span = if e.key == "tls.certificate" {
            cert_span
        } else {
            key_span
        };
        p.bad(Some(span), e.key, e.message);
    }
    if let Some(ca) = &settings.ca_file {
        if let Err(msg) = super::tls::read_certificates(ca) {
            p.bad(None, "tls.ca_file", msg);
        }
    }
    Some(settings)
}

/// `[control]` and `[metrics]`: where the control socket is (relative to the config file's
/// directory) and where the metrics endpoint listens (an IP address and port, no name).
fn operations(
    p: &mut Problems<'_>,
    control: RawControl,
    metrics: RawMetrics,
    file: &Path,
) -> (ControlConfig, MetricsConfig) {
    let socket = control.socket.and_then(|s| {
        if s.get_ref().trim().is_empty() {
            let msg = "must not be empty (leave it out for the default)".to_string();
            p.bad(Some(s.span()), "control.socket", msg);
            return None;
        }
        Some(file.parent().unwrap_or(Path::new(".")).join(s.get_ref()))
    });
    let listen = metrics
        .listen
        .and_then(|l| match l.get_ref().parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let msg = format!(
                    "{:?} is not an address and port (like \"127.0.0.1:9090\")",
                    l.get_ref()
                );
                p.bad(Some(l.span()), "metrics.listen", msg);
                None
            }
        });
    (ControlConfig { socket }, MetricsConfig { listen })
}

fn log(p: &mut Problems<'_>, raw: RawLog) -> LogConfig {
    let level = match raw.level {
        None => LogLevel::default(),
        Some(l) => l.get_ref().parse().unwrap_or_else(|msg| {
            p.bad(Some(l.span()), "log.level", msg);
            LogLevel::default()
        }),
    };
    LogConfig {
        level,
        sip_trace: raw.sip_trace.unwrap_or(false),
    }
}

/// Why `s` is not a host we can serve as a domain and realm, if it is not.
pub(super) fn bad_host(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("is empty (leave domain out to serve any local address)");
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .is_err()
            .then_some("is not an IPv6 reference");
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Some(
            "is an IPv6 address; write it in brackets like a SIP URI host ([2001:db8::1])",
        );
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    if s.contains(':') {
        return Some("must be a host without a port");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Some("is not a host name or IP address");
    }
    None
}

fn ranged(
    p: &mut Problems<'_>,
    v: Option<Spanned<i64>>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    default: u64,
) -> u64 {
    match v {
        None => default,
        Some(v) if range.contains(v.get_ref()) => *v.get_ref() as u64,
        Some(v) => {
            let msg = format!(
                "{} is out of range ({} to {})",
                v.get_ref(),
                range.start(),
                range.end()
            );
            p.bad(Some(v.span()), key, msg);
            default
        }
    }
}

fn calls(p: &mut Problems<'_>, raw: RawCalls, file: &Path) -> CallsConfig {
    let d = CallsConfig::default();
    let call_timeout = ranged(
        p,
        raw.call_timeout,
        "calls.call_timeout",
        1..=3600,
        d.call_timeout.as_secs(),
    );
    let max_calls = ranged(
        p,
        raw.max_calls,
        "calls.max_calls",
        1..=10_000_000,
        d.max_calls as u64,
    );
    let max_calls_per_user = ranged(
        p,
        raw.max_calls_per_user,
        "calls.max_calls_per_user",
        0..=1_000_000,
        d.max_calls_per_user as u64,
    );
    let max_calls_per_source = ranged(
        p,
        raw.max_calls_per_source,
        "calls.max_calls_per_source",
        0..=10_000_000,
        d.max_calls_per_source as u64,
    );
    let min_se = ranged(
        p,
        raw.min_se,
        "calls.min_se",
        90..=86_400,
        u64::from(d.min_se),
    );
    let session_expires = ranged(
        p,
        raw.session_expires,
        "calls.session_expires",
        90..=86_400,
        u64::from(d.session_expires),
    );
    if session_expires < min_se {
        p.bad(
            None,
            "calls.session_expires",
            format!("{session_expires} is below min_se ({min_se})"),
        );
    }
    let cdr_file = raw.cdr_file.and_then(|f| {
        if f.get_ref().trim().is_empty() {
            p.bad(
                Some(f.span()),
                "calls.cdr_file",
                "must not be empty (leave it out to write no CDRs)".into(),
            );
            return None;
        }
        let path = Path::new(f.get_ref());
        Some(if path.is_absolute() {
            path.to_path_buf()
        } else {
            file.parent().unwrap_or(Path::new(".")).join(path)
        })
    });
    CallsConfig {
        auth_calls: raw.auth_calls,
        call_timeout: Duration::from_secs(call_timeout),
        max_calls: max_calls as usize,
        cdr_file,
        session_expires: session_expires as u32,
        min_se: min_se as u32,
        max_calls_per_user: max_calls_per_user as usize,
        max_calls_per_source: max_calls_per_source as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrar_contact_networks_nonce_binding_and_aliases() {
        let text = r#"
[server]
aliases = ["203.0.113.10", "sip.example.org", "bad host"]
[registrar]
contact_allow = ["10.0.0.0/8", "2001:db8::/32"]
contact_deny = ["10.9.0.1", "gateway.example"]
nonce_bind_source = false
"#;
        let p = parse(text, Path::new("/nonexistent/ferroswitch.toml")).unwrap();
        assert_eq!(p.server.aliases, ["203.0.113.10", "sip.example.org"]);
        let allow: Vec<String> = p
            .registrar
            .contact_allow
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(allow, ["10.0.0.0/8", "2001:db8::/32"]);
        assert_eq!(p.registrar.contact_deny.len(), 1);
        assert!(!p.registrar.nonce_bind_source);
        let keys: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            keys.iter().any(|k| k.contains("server.aliases[2]")),
            "{keys:?}"
        );
        assert!(
            keys.iter().any(|k| k.contains("registrar.contact_deny[1]")),
            "{keys:?}"
        );
        // Defaults: everything allowed, nothing denied, nonces bound.
        let d = parse("", Path::new("/nonexistent/ferroswitch.toml")).unwrap();
        assert_eq!(d.registrar.contact_allow.len(), 2);
        assert!(d.registrar.contact_deny.is_empty() && d.registrar.nonce_bind_source);
        assert!(d.server.aliases.is_empty());
    }

    #[test]
    fn registrar_store_is_memory_or_a_writable_sqlite_path() {
        let dir =
            std::env::temp_dir().join(format!("ferroswitch-cfg-store-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let path = dir.join("ferroswitch.toml");
        let store = |text: &str| {
            let p = parse(text, &path).unwrap();
            let errors: Vec<String> = p
                .errors
                .iter()
                .map(|e| e.to_string())
                .filter(|e| e.contains("registrar.store"))
                .collect();
            (p.registrar.store, errors)
        };
        // Default: registrations.db beside the config file.
        let (s, errors) = store("");
        assert_eq!(s, StoreConfig::Sqlite(dir.join("registrations.db")));
        assert!(errors.is_empty(), "{errors:?}");
        let (s, errors) = store("[registrar]\nstore = \"memory\"\n");
        assert_eq!((s, errors.len()), (StoreConfig::Memory, 0));
        let (s, errors) = store("[registrar]\nstore = \"sqlite:state/r.db\"\n");
        assert_eq!(s, StoreConfig::Sqlite(dir.join("state/r.db")));
        assert!(errors.is_empty(), "{errors:?}");
        // Wrong scheme, empty path, missing directory, a directory: one error each, with the
        // line and the key.
        // Redis: parsed, not connected to; the prefix has a default.
        let (s, errors) = store("[registrar]\nstore = \"redis://:pw@127.0.0.1:6390/2\"\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.to_string(), "redis://:***@127.0.0.1:6390/2");
        assert_eq!(
            s,
            StoreConfig::Redis {
                url: "redis://:pw@127.0.0.1:6390/2".into(),
                prefix: "ferroswitch".into()
            }
        );
        let (s, _) = store("[registrar]\nstore = \"redis://r1\"\nredis_prefix = \"fs2\"\n");
        assert!(matches!(s, StoreConfig::Redis { prefix, .. } if prefix == "fs2"));
        for bad in ["", "a b", "a:b", "fs*"] {
            let text = format!("[registrar]\nstore = \"redis://r1\"\nredis_prefix = \"{bad}\"\n");
            let p = parse(&text, &path).unwrap();
            let errors: Vec<String> = p
                .errors
                .iter()
                .map(|e| e.to_string())
                .filter(|e| e.contains("registrar."))
                .collect();
            assert_eq!(errors.len(), 1, "{bad:?}: {errors:?}");
            assert!(
                errors[0].contains(":3: registrar.redis_prefix"),
                "{errors:?}"
            );
        }
        let p = parse(
            "[registrar]\nstore = \"memory\"\nredis_prefix = \"x\"\n",
            &path,
        )
        .unwrap();
        assert!(p
            .errors
            .iter()
            .any(|e| e.to_string().contains("only with a")));
        for (text, why) in [
            ("[registrar]\nstore = \"redis:x\"\n", "only redis://"),
            ("[registrar]\nstore = \"rediss://h\"\n", "only redis://"),
            (
                "[registrar]\nstore = \"redis://h:notaport\"\n",
                "not a Redis URL",
            ),
            ("[registrar]\nstore = \"mysql:x\"\n", "neither"),
            ("[registrar]\nstore = \"sqlite:\"\n", "neither"),
            (
                "[registrar]\nstore = \"sqlite:nope/r.db\"\n",
                "does not exist",
            ),
            ("[registrar]\nstore = \"sqlite:state\"\n", "is a directory"),
        ] {
            let (_, errors) = store(text);
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert!(errors[0].contains(":2: registrar.store"), "{errors:?}");
            assert!(errors[0].contains(why), "{text}: {errors:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn server_drain_timeout_is_0_by_default_and_at_most_a_day() {
        let path = Path::new("/nonexistent/ferroswitch.toml");
        assert_eq!(
            parse("", path).unwrap().server.drain_timeout,
            Duration::ZERO
        );
        let p = parse("[server]\ndrain_timeout = 300\n", path).unwrap();
        assert_eq!(p.server.drain_timeout, Duration::from_secs(300));
        for v in [-1, 86_401] {
            let p = parse(&format!("[server]\ndrain_timeout = {v}\n"), path).unwrap();
            let errors: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(":2: server.drain_timeout") && e.contains("out of range")),
                "{v}: {errors:?}"
            );
        }
    }

    #[test]
    fn registrar_nat_keepalive_is_0_or_10_to_3600_seconds() {
        let path = Path::new("/nonexistent/ferroswitch.toml");
        let d = parse("", path).unwrap();
        assert_eq!(d.registrar.nat_keepalive, Duration::from_secs(25));
        for (v, want) in [(0, 0), (10, 10), (25, 25), (3600, 3600)] {
            let p = parse(&format!("[registrar]\nnat_keepalive = {v}\n"), path).unwrap();
            let errors: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
            assert!(
                !errors.iter().any(|e| e.contains("registrar.nat_keepalive")),
                "{v}: {:?}",
                p.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            );
            assert_eq!(p.registrar.nat_keepalive, Duration::from_secs(want));
        }
        for v in [-1, 1, 9, 3601] {
            let p = parse(&format!("[registrar]\nnat_keepalive = {v}\n"), path).unwrap();
            let errors: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
            let errors: Vec<&String> = errors
                .iter()
                .filter(|e| e.contains("registrar.nat_keepalive"))
                .collect();
            assert!(
                errors.len() == 1
                    && errors[0].contains("registrar.nat_keepalive")
                    && errors[0].contains(":2:"),
                "{v}: {errors:?}"
            );
        }
        // Strict TOML: a string is a type error, not a silent default.
        assert!(parse("[registrar]\nnat_keepalive = \"30\"\n", path).is_err());
    }

    #[test]
    fn hosts() {
        for ok in [
            "192.168.4.4",
            "sip.example.org",
            "[::1]",
            "localhost",
            "example.org.",
        ] {
            assert_eq!(bad_host(ok), None, "{ok}");
        }
        for bad in [
            "",
            "example.org:5060",
            "::1",
            "[::1",
            "a b",
            "-x.org",
            "ex_ample.org",
        ] {
            assert!(bad_host(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn calls_per_user_and_per_source_limits() {
        let file = Path::new("/etc/ferroswitch/ferroswitch.toml");
        let Ok(d) = parse("", file) else {
            panic!("empty config parses");
        };
        assert_eq!(
            (d.calls.max_calls_per_user, d.calls.max_calls_per_source),
            (10, 50)
        );
        let text = "[calls]\nmax_calls_per_user = 0\nmax_calls_per_source = 7\n";
        let Ok(p) = parse(text, file) else {
            panic!("parses");
        };
        // (The users directory of this made-up path does not exist: that error aside.)
        assert!(!p.errors.iter().any(|e| e.to_string().contains("calls.")));
        assert_eq!(
            (p.calls.max_calls_per_user, p.calls.max_calls_per_source),
            (0, 7)
        );
        let Ok(bad) = parse("[calls]\nmax_calls_per_user = -1\n", file) else {
            panic!("parses");
        };
        let bad: Vec<_> = bad.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            bad.iter().any(|e| e.contains("calls.max_calls_per_user")),
            "{bad:?}"
        );
    }

    #[test]
    fn cluster_keys_trusted_proxies_node_id_and_nonce_secret_file() {
        let dir =
            std::env::temp_dir().join(format!("ferroswitch-cluster-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("nonce.key"), "ab".repeat(32) + "\n").unwrap();
        std::fs::write(dir.join("short.key"), "abc\n").unwrap();
        std::fs::create_dir_all(dir.join("users")).unwrap();
        let file = dir.join("ferroswitch.toml");
        let good = r#"
[server]
node_id = "fs-1.a_b"
[registrar]
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
nonce_secret_file = "nonce.key"
"#;
        let p = parse(good, &file).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.server.node_id.as_deref(), Some("fs-1.a_b"));
        let nets: Vec<String> = p
            .registrar
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(p.registrar.nonce_secret_file, Some(dir.join("nonce.key")));

        let bad = r#"
[server]
node_id = "fs 1"
[registrar]
trusted_proxies = ["10.0.0.0/33"]
nonce_secret_file = "short.key"
"#;
        let p = parse(bad, &file).unwrap();
        let errs: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        for key in [
            "server.node_id",
            "registrar.trusted_proxies[0]",
            "registrar.nonce_secret_file",
        ] {
            assert!(errs.iter().any(|e| e.contains(key)), "{key}: {errs:?}");
        }
        assert!(
            errs.iter().any(|e| e.contains("short.key")),
            "the path is named: {errs:?}"
        );
        let missing = "[registrar]\nnonce_secret_file = \"gone.key\"\n";
        let errs: Vec<String> = parse(missing, &file)
            .unwrap()
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert!(errs.iter().any(|e| e.contains("gone.key")), "{errs:?}");
        let long = format!("[server]\nnode_id = \"{}\"\n", "n".repeat(33));
        assert_eq!(parse(&long, &file).unwrap().errors.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
