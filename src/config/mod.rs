//! Configuration: `conf/ferroswitch.toml` plus a directory of user files, strict TOML
//! (unknown keys are errors), defaults in functions, addresses and durations in validated types.
//!
//! `Config::load(path)` reads the file and calls `Config::from_toml(text, path)`, which also
//! loads the users directory (relative to the config file). [`check`] is the `check-config`
//! entry point: every error and warning at once. Problems name the file, the line, the key and
//! what is wrong. This module never binds sockets, installs loggers or prints passwords.

pub mod error;
mod file;
pub mod gateway;
pub mod listen;
mod media;
pub mod nonce_key;
pub mod tls;
mod trace;
pub mod users;
pub mod weak;

pub use error::{ConfigError, ConfigErrors, Warning};
pub use gateway::GatewayConfig;
pub use listen::{default_listen, ListenAddr};
pub use users::{load_dir, parse_users_file, User, Users};
pub use weak::weak_password_reasons;

use crate::auth::{Algorithm, Secret};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from.
    pub file: PathBuf,
    pub server: ServerConfig,
    pub registrar: RegistrarConfig,
    pub log: LogConfig,
    pub calls: CallsConfig,
    /// `[security]`: bans after failed authentications, rate limit, scanner User-Agents.
    pub security: crate::security::SecurityConfig,
    /// `[tcp]`: connection limits and idle timeouts.
    pub tcp: TcpConfig,
    /// `[media]`: the RTP relay (the plain type the engine takes).
    pub media: crate::media::MediaConfig,
    /// `[tls]`: present when the file has the table (required by a `tls:` listener).
    pub tls: Option<tls::TlsSettings>,
    /// `[control]`: the control socket of `ferroswitch ctl`.
    pub control: ControlConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `[trace]`: the SIP of recent calls kept for `ctl trace`.
    pub trace: crate::engine::TraceConfig,
    /// `[server] dialplan`, resolved against the config file's directory; `None`: the
    /// builtin dialplan (every number is a user). Loaded by [`Config::load_dialplan`].
    pub dialplan: Option<PathBuf>,
    /// `[[gateway]]`: the trunks dialplan rules may send calls to.
    pub gateways: Vec<GatewayConfig>,
    pub users: Users,
}

/// `[control]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlConfig {
    /// Resolved against the config file's directory; `None`: the default
    /// (`$RUNTIME_DIRECTORY/ctl.sock` under systemd, else `ctl.sock` beside the config file).
    pub socket: Option<PathBuf>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served; `None`: no metrics endpoint.
    pub listen: Option<std::net::SocketAddr>,
}

/// `[calls]`: the B2BUA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallsConfig {
    /// Challenge calls from local users with 407 (FreeSWITCH's `auth-calls`). `None` only
    /// inside the parser; `[registrar] auth_calls` is accepted as an older spelling.
    pub auth_calls: Option<bool>,
    /// No answer after this long: CANCEL the callee, 480 to the caller.
    pub call_timeout: Duration,
    /// More concurrent calls get 503 with Retry-After.
    pub max_calls: usize,
    /// Where CDRs are appended (JSON lines), resolved against the config file's directory;
    /// `None`: no CDRs are written.
    pub cdr_file: Option<PathBuf>,
    /// RFC 4028 interval we ask for and cap requests at, in seconds.
    pub session_expires: u32,
    /// RFC 4028 Min-SE we accept, in seconds (at least 90).
    pub min_se: u32,
    /// Calls (ringing or up) one authenticated user may hold at once; more get 486. 0 = off.
    pub max_calls_per_user: usize,
    /// Calls one source address may hold at once; more get 503 with Retry-After. 0 = off.
    pub max_calls_per_source: usize,
}

impl Default for CallsConfig {
    fn default() -> CallsConfig {
        CallsConfig {
            auth_calls: None,
            call_timeout: Duration::from_secs(60),
            max_calls: 10_000,
            cdr_file: None,
            session_expires: 1800,
            min_se: 90,
            max_calls_per_user: 10,
            max_calls_per_source: 50,
        }
    }
}

impl CallsConfig {
    pub fn auth_calls(&self) -> bool {
        self.auth_calls.unwrap_or(true)
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The SIP domain served, also the digest realm. `None`: requests to any local address
    /// are served and the realm is the request URI's host (as FreeSWITCH does with its IP).
    pub domain: Option<String>,
    pub listen: Vec<ListenAddr>,
    /// Resolved against the config file's directory.
    pub users_dir: PathBuf,
    /// Extra host names and addresses that are ours besides the listen (or, for wildcard
    /// listeners, interface) addresses: a public IP behind 1:1 NAT, a DNS name.
    pub aliases: Vec<String>,
    /// The `Server`/`User-Agent` header value; empty: no such header at all.
    pub user_agent: String,
    /// On SIGTERM/SIGINT: how long calls in progress may go on by themselves (new calls get
    /// 503) before the rest are hung up. Zero (the default): hang up at once.
    pub drain_timeout: Duration,
    /// `node_id`: this node's name in a cluster (1–32 of `[A-Za-z0-9._-]`), put in every log
    /// line, in CDRs, in the branch of our Vias and in the Call-IDs of our b-legs.
    pub node_id: Option<String>,
}

impl ServerConfig {
    pub const DEFAULT_USERS: &'static str = "users";
    /// Without the version, which would tell a scanner which flaws to try.
    pub const DEFAULT_USER_AGENT: &'static str = "ferroswitch";
}

/// `[registrar]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shorter requested expiries get 423 Interval Too Brief with Min-Expires.
    pub min_expires: u32,
    /// Longer requested expiries are cut down to this.
    pub max_expires: u32,
    /// Used when a REGISTER names no expiry.
    pub default_expires: u32,
    /// Offered in 401/407 challenges, in this order (RFC 8760: the server's preference).
    /// Default MD5 only: some phones fail as soon as SHA-256 is offered (Debian's baresip
    /// 1.0 cannot register then).
    pub digest_algorithms: Vec<Algorithm>,
    /// How long a nonce stays valid before a `stale=true` re-challenge.
    pub nonce_lifetime: Duration,
    /// Challenge INVITEs from phones with 407 (FreeSWITCH's `auth-calls`).
    pub auth_calls: bool,
    /// Networks a registered Contact may send to (default: everything).
    pub contact_allow: Vec<crate::security::IpNet>,
    /// Networks a registered Contact may never send to (default: none).
    pub contact_deny: Vec<crate::security::IpNet>,
    /// Bind each nonce to the UDP source it was issued to (default on).
    pub nonce_bind_source: bool,
    /// OPTIONS to NAT'd UDP bindings this often, to keep the router's mapping open
    /// (default 30 s, like FreeSWITCH's `nat-options-ping`); zero: off.
    pub nat_keepalive: Duration,
    /// Where bindings are kept: `"sqlite:PATH"` (default `registrations.db` beside the
    /// config file), `"memory"`, or `"redis://…"` (shared by several nodes).
    pub store: StoreConfig,
    /// Edge proxies (addresses or networks) whose REGISTERs may carry an RFC 3327 Path, and
    /// that the security guard never bans or rate-limits (default: none).
    pub trusted_proxies: Vec<crate::security::IpNet>,
    /// The file holding the nonce secret shared by every node (`nonce_key`), resolved
    /// against the config file's directory; `None`: a random secret per process.
    pub nonce_secret_file: Option<PathBuf>,
}

/// `[registrar] store`: where registrations are kept (see `crate::persist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Only in the process: lost on restart.
    Memory,
    /// An SQLite database at this path (resolved against the config file's directory), the
    /// durable copy of the in-memory store.
    Sqlite(PathBuf),
    /// A Redis server shared by several nodes (`redis://[:password@]host[:port][/db]`): each
    /// node keeps a replica in memory, writes go to Redis (`crate::persist::RedisStore`).
    Redis {
        /// The URL as configured (it may hold a password: print it with `Display`).
        url: String,
        /// Start of every key and of the channel (`[registrar] redis_prefix`).
        prefix: String,
    },
}

impl StoreConfig {
    /// The default database file name, beside the config file.
    pub const DEFAULT_FILE: &'static str = "registrations.db";
    /// The default `[registrar] redis_prefix`.
    pub const DEFAULT_REDIS_PREFIX: &'static str = "ferroswitch";
}

/// `url` with the password of its userinfo (`redis://user:secret@host`) replaced by `***`,
/// for logs and `check-config`'s output.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl fmt::Display for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Memory => f.write_str("memory"),
            StoreConfig::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreConfig::Redis { url, .. } => f.write_str(&redact_password(url)),
        }
    }
}

impl Default for RegistrarConfig {
    fn default() -> RegistrarConfig {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            digest_algorithms: vec![Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            auth_calls: true,
            contact_allow: crate::registrar::register::allow_everything(),
            contact_deny: Vec::new(),
            nonce_bind_source: true,
            nat_keepalive: Duration::from_secs(25),
            store: StoreConfig::Sqlite(PathBuf::from(StoreConfig::DEFAULT_FILE)),
            trusted_proxies: Vec::new(),
            nonce_secret_file: None,
        }
    }
}

/// `[tcp]`: how long TCP connections may stay silent and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// A connection on which a request has passed digest authentication (a phone) is
    /// closed after this long with no traffic either way.
    pub idle_timeout: Duration,
    /// The same for a connection on which nothing has authenticated yet; CRLF keep-alives
    /// do not count as traffic on it, so idle scanners cannot hold the table. Never longer
    /// than `idle_timeout`.
    pub untrusted_idle_timeout: Duration,
    /// Open connections; beyond it the oldest unauthenticated one is closed to make room.
    pub max_connections: usize,
    /// Accepted connections one remote address may hold at once.
    pub max_connections_per_ip: usize,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            idle_timeout: Duration::from_secs(300),
            untrusted_idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_ip: 32,
        }
    }
}

/// `[log]`. The command line (`-v`, `-q`, `--log-level`) and `RUST_LOG` override `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogConfig {
    pub level: LogLevel,
    /// Log every SIP message sent and received on the `sip::wire` target.
    pub sip_trace: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<LogLevel, String> {
        [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Trace,
        ]
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("unknown level {s:?} (error, warn, info, debug or trace)"))
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Config {
    /// Reads and validates `path` and the users directory it names.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Validates `text` as if read from `file`: `file` names the source in messages and its
    /// directory is the base for the relative `users` directory, which is loaded from disk.
    pub fn from_toml(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
        let parsed = file::parse(text, file)?;
        let mut errors = parsed.errors;
        let users = if parsed.server.users_dir.is_dir() {
            match load_dir(&parsed.server.users_dir, parsed.server.domain.as_deref()) {
                Ok(u) => Some(u),
                Err(mut e) => {
                    errors.append(&mut e.0);
                    None
                }
            }
        } else {
            None // already reported as server.users
        };
        if let Some(users) = &users {
            errors.extend(weak::refuse_weak_passwords(
                users,
                &parsed.server.listen,
                parsed.security.allow_weak_passwords,
            ));
        }
        match users {
            Some(users) if errors.is_empty() => Ok(Config {
                file: file.to_path_buf(),
                server: parsed.server,
                registrar: parsed.registrar,
                log: parsed.log,
                calls: parsed.calls,
                security: parsed.security,
                tcp: parsed.tcp,
                media: parsed.media,
                tls: parsed.tls,
                control: parsed.control,
                metrics: parsed.metrics,
                trace: parsed.trace,
                dialplan: parsed.dialplan,
                gateways: parsed.gateways,
                users,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// Reads the users directory again, as at start-up (same checks, weak passwords
    /// included), for a reload: the caller keeps the old users when this fails.
    pub fn reload_users(&self) -> Result<Users, ConfigErrors> {
        let users = load_dir(&self.server.users_dir, self.server.domain.as_deref())?;
        let weak = weak::refuse_weak_passwords(
            &users,
            &self.server.listen,
            self.security.allow_weak_passwords,
        );
        if weak.is_empty() {
            Ok(users)
        } else {
            Err(ConfigErrors(weak))
        }
    }

    /// The dialplan: the builtin one when `[server] dialplan` is unset, else the file loaded
    /// and validated against this config's users and gateways. Also checks the users'
    /// forwards and contexts against it. Reusable for a reload: the caller keeps the old
    /// dialplan when this fails.
    pub fn load_dialplan(&self) -> Result<crate::routing::Dialplan, ConfigErrors> {
        self.load_dialplan_for(&self.users)
    }

    /// [`Config::load_dialplan`], validated against `users` instead of the users loaded at
    /// start: for a reload, with the users just read by [`Config::reload_users`].
    pub fn load_dialplan_for(
        &self,
        users: &Users,
    ) -> Result<crate::routing::Dialplan, ConfigErrors> {
        let dialplan = match &self.dialplan {
            None => crate::routing::Dialplan::builtin(),
            Some(path) => crate::routing::Dialplan::load(path)?,
        };
        let errors = dialplan.validate(users, &self.gateways);
        if errors.is_empty() {
            Ok(dialplan)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The digest realm for a request: the configured domain, else the request URI's host.
    pub fn realm_for<'a>(&'a self, request_host: &'a str) -> &'a str {
        self.server.domain.as_deref().unwrap_or(request_host)
    }

    /// Things that work but should be fixed; logged loudly at start-up.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        let main = |key: &str, message: String| Warning {
            file: self.file.clone(),
            line: None,
            key: key.to_string(),
            message,
        };
        if self.users.is_empty() {
            out.push(main(
                "server.users",
                format!(
                    "no users in {}: nobody can register",
                    self.server.users_dir.display()
                ),
            ));
        }
        // A disabled account cannot register, so its password is not a risk today.
        for u in self.users.iter().filter(|u| u.enabled) {
            for why in weak_password_reasons(&u.id, &u.secret) {
                out.push(Warning {
                    file: u.file.clone(),
                    line: Some(u.line),
                    key: format!("user {:?}", u.id),
                    message: format!("weak password: {why}"),
                });
            }
        }
        let ha1_users = self
            .users
            .iter()
            .filter(|u| matches!(u.secret, Secret::Ha1 { .. }))
            .count();
        if ha1_users > 0 && self.server.domain.is_none() {
            out.push(main(
                "server.domain",
                format!(
                    "{ha1_users} users have an ha1 but no domain is set; an HA1 only works for \
                     requests whose host is the realm it was computed for"
                ),
            ));
        }
        if let Some(t) = &self.tls {
            let domain = self.server.domain.as_deref();
            let now = std::time::SystemTime::now();
            if let Ok(m) = tls::load(t) {
                for message in tls::warnings(&m, domain, now) {
                    out.push(main("tls.certificate", message));
                }
            }
        }
        if let Some(path) = &self.registrar.nonce_secret_file {
            if let Ok((_, true)) = nonce_key::load(path) {
                out.push(main(
                    "registrar.nonce_secret_file",
                    format!(
                        "{} is readable by its group or others; chmod 600 it",
                        path.display()
                    ),
                ));
            }
        }
        let algs = &self.registrar.digest_algorithms;
        if ha1_users > 0 && algs.iter().any(|a| a.base() != Algorithm::Md5) {
            out.push(main(
                "registrar.digest_algorithms",
                format!(
                    "{ha1_users} users have only an MD5 ha1; phones that choose a SHA algorithm \
                     will be refused for them (store a password or offer MD5 only)"
                ),
            ));
        }
        out
    }
}

/// Everything `check-config` reports.
#[derive(Debug)]
pub struct Report {
    /// The configuration, when it loaded (`errors` may still hold its dialplan's).
    pub config: Option<Config>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates the configuration at `path` and reports every error and warning.
/// The dialplan (`[server] dialplan`) is loaded and validated too.
pub fn check(path: &Path) -> Report {
    match Config::load(path) {
        Ok(config) => Report {
            warnings: config.warnings(),
            errors: config
                .load_dialplan()
                .err()
                .map(|e| e.0)
                .unwrap_or_default(),
            config: Some(config),
        },
        Err(e) => Report {
            config: None,
            errors: e.0,
            warnings: Vec::new(),
        },
    }
}
