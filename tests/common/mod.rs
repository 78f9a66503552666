//! Shared helpers for the daemon's integration tests: a configuration written to a unique
//! temporary directory, the real daemon started in-process on 127.0.0.1 port 0, and a small
//! SIP user agent (`ua::Ua`) that speaks UDP or TCP to it and answers digest challenges with
//! the crate's own client code.
//!
//! Every wait is bounded by [`WAIT`]; nothing here sleeps to let time pass. Each test gets its
//! own directory and ports, so tests run in parallel.
#![allow(dead_code)]

pub mod bin;
pub mod tls;
pub mod ua;

use ferroswitch::app::{self, Running};
use ferroswitch::config::Config;
use ferroswitch::engine::EngineStats;
use ferroswitch::net::Transport;
use ferroswitch::registrar::Binding;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for on loopback.
pub const WAIT: Duration = Duration::from_secs(5);

/// The users every test daemon knows: the seed's alice and bob (password 1234), extension
/// 1000 with a strong password, and a disabled carol.
pub const USERS_TOML: &str = r#"
[[user]]
id = "alice"
password = "1234"

[[user]]
id = "bob"
password = "1234"

[[user]]
id = "1000"
password = "Z2OG9aVSfDmCMEFyEOOQ"

[[user]]
id = "carol"
password = "carol-secret-99"
enabled = false
"#;

/// `[server]` and `[registrar]` for a daemon on 127.0.0.1, ports chosen by the system. No
/// domain: the realm is the request URI's host, as in the shipped configuration.
pub const CONFIG_TOML: &str = r#"
[server]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
users = "users"

[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
nonce_lifetime = 300

[log]
level = "warn"
"#;

/// A directory under the system's temp dir, unique to this process and call, removed on
/// drop (tempfile is not a dependency).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ferroswitch-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `rel` (parent directories created).
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&p, text).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `config` as `ferroswitch.toml` and `users` as `users/test.toml`; returns the
/// config file's path.
pub fn write_config(dir: &TempDir, config: &str, users: &str) -> PathBuf {
    dir.write("users/test.toml", users);
    dir.write("ferroswitch.toml", config)
}

/// The real daemon, running in this test's tokio runtime.
pub struct Daemon {
    running: Option<Running>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// The TLS listener, when the config has one.
    pub tls: Option<SocketAddr>,
    _dir: TempDir,
}

impl Daemon {
    /// Starts the daemon with [`CONFIG_TOML`] and [`USERS_TOML`]. Call inside a runtime.
    pub fn start() -> Daemon {
        Daemon::start_with(CONFIG_TOML, USERS_TOML)
    }

    pub fn start_with(config: &str, users: &str) -> Daemon {
        Daemon::start_in(TempDir::new("daemon"), config, users)
    }

    /// Starts with the config written into `dir` (which may already hold files it names,
    /// such as TLS certificates).
    pub fn start_in(dir: TempDir, config: &str, users: &str) -> Daemon {
        let path = write_config(&dir, config, users);
        let cfg = Config::load(&path).unwrap_or_else(|e| panic!("test config: {e}"));
        let sockets = app::bind(&cfg).expect("bind 127.0.0.1 port 0");
        let running = app::start(&cfg, sockets).expect("daemon starts");
        let udp = running.local_addr(Transport::Udp).expect("a UDP listener");
        let tcp = running.local_addr(Transport::Tcp).expect("a TCP listener");
        let tls = running.local_addr(Transport::Tls);
        Daemon {
            running: Some(running),
            udp,
            tcp,
            tls,
            _dir: dir,
        }
    }

    /// The directory holding this daemon's configuration (and files it writes, like CDRs).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("daemon running")
    }

    /// Live bindings of `aor` right now.
    pub fn bindings(&self, aor: &str) -> Vec<Binding> {
        self.running().store().lookup(aor, Instant::now())
    }

    /// (address-of-records, bindings) in the store.
    pub fn counts(&self) -> (usize, usize) {
        self.running().store().counts()
    }

    /// What SIGHUP does: reload the TLS certificate and key.
    pub fn reload_tls(&self) -> Result<(), String> {
        self.running().reload_tls()
    }

    pub fn transport_stats(&self) -> ferroswitch::transport::TransportStats {
        self.running().transport_stats()
    }

    /// The metrics endpoint, when the config has `[metrics] listen`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.running().metrics_addr()
    }

    pub fn stats(&self) -> EngineStats {
        self.running().engine_stats()
    }

    /// Waits (bounded) until the engine's published counters satisfy `cond`: the driver
    /// publishes them after flushing its sends, so a test may see a response first.
    pub async fn stats_until(&self, what: &str, cond: impl Fn(&EngineStats) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let s = self.stats();
            if cond(&s) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; stats {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops the daemon, bounded by [`WAIT`].
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            tokio::time::timeout(WAIT, r.shutdown())
                .await
                .expect("daemon shuts down in time");
        }
    }
}
