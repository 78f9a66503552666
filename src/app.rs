//! The daemon shell: binds the sockets, runs the engine under tokio, shuts down cleanly.
//!
//! `start` takes already-bound sockets (mini-redis style) so tests can bind port 0 and run the
//! real daemon in-process. The driver task is the only owner of the engine: no locks on the
//! hot path. Wall time and monotonic time are read here and nowhere below.
//!
//! Two ways to stop: `Running::shutdown` (at once: the transport flushes what is queued and
//! closes) and `Running::graceful_shutdown` (SIGTERM: new INVITEs get 503 at once, calls in
//! progress may end by themselves for up to `[server] drain_timeout`, then the engine ends the
//! rest with BYE and the driver runs on until the BYEs are answered or the grace period is
//! over). `ferroswitch ctl drain` is the first half without the stop (`engine::shutdown`).
//!
//! Operations (issue 13): the control socket (`control`) and the metrics endpoint
//! (`metrics`) run as tasks beside the driver; what they ask reaches the engine only through
//! the driver's control channel, which the driver serves between two transport batches.

use crate::config::Config;
use crate::dialog::SessionTimerConfig;
use crate::engine::{CallSettings, Engine, EngineConfig, EngineStats};
use crate::net::{Transport, TransportError, TransportEvent};
use crate::registrar::{LocationStore, RegistrarConfig, StoreError};
use crate::transaction::TransactionConfig;
use crate::transport::{Sockets, TlsSetup, TransportConfig, TransportHandle, TransportStats};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How many queued transport events the driver handles before flushing its output.
const BATCH: usize = 64;

/// What the driver is asked to do about stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Refuse new calls, let those in progress end by themselves for up to this long, end
    /// the rest, then stop once drained or after the engine's grace period.
    Drain(Duration),
    Now,
}

/// A running daemon.
pub struct Running {
    transport: TransportHandle,
    shutdown: watch::Sender<Stop>,
    driver: JoinHandle<bool>,
    store: Arc<dyn LocationStore>,
    stats: Arc<Mutex<EngineStats>>,
    /// `[tls]` as started with: what SIGHUP reloads.
    tls: Option<crate::config::tls::TlsSettings>,
    // --- operations (issue 13) ---
    control: crate::control::ControlHandle,
    control_server: Option<crate::control::ControlServer>,
    metrics: Option<crate::metrics::MetricsServer>,
    // --- end operations ---
    /// `[server] drain_timeout`: how long `graceful_shutdown` lets calls end by themselves.
    drain_timeout: Duration,
}

impl Running {
    /// Reads the certificate and key again (SIGHUP, after a renewal) and serves them to new
    /// TLS connections; open ones keep theirs. On any error the old pair stays in service.
    pub fn reload_tls(&self) -> Result<(), String> {
        let Some(settings) = &self.tls else {
            return Err("no [tls] configured".to_string());
        };
        let m = crate::config::tls::load(settings).map_err(|e| e.to_string())?;
        self.transport
            .reload_tls(m.chain, m.key)
            .map_err(|e| e.to_string())
    }

    // --- operations (issue 13) ---
    /// Asks the driver for what `ferroswitch ctl` shows and does; also reloads.
    pub fn control(&self) -> &crate::control::ControlHandle {
        &self.control
    }

    /// The control socket, when it could be bound.
    pub fn control_socket(&self) -> Option<&std::path::Path> {
        self.control_server.as_ref().map(|s| s.path())
    }

    /// The metrics endpoint's address, when `[metrics] listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }
    // --- end operations ---

    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.transport.local_addrs()
    }

    pub fn local_addr(&self, t: Transport) -> Option<SocketAddr> {
        self.transport.local_addr(t)
    }

    pub fn store(&self) -> &Arc<dyn LocationStore> {
        &self.store
    }

    pub fn engine_stats(&self) -> EngineStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn transport_stats(&self) -> TransportStats {
        self.transport.stats()
    }

    /// Stops the engine, then the transport; returns when every task has ended.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(Stop::Now);
        let _ = self.driver.await;
        self.transport.shutdown().await;
    }

    /// Refuses new calls with 503 (OPTIONS too), lets the calls in progress end by themselves
    /// for up to `[server] drain_timeout`, then ends the rest (BYE on both legs, CANCEL for
    /// those ringing; see `Engine::begin_shutdown_after`), writes their CDRs, waits until the
    /// BYEs are answered or the engine's grace period (at most 5 s) is over, then stops the
    /// transport. If `abort` completes first (a second signal), stops at once. Returns true
    /// when every call was cleared in time.
    pub async fn graceful_shutdown(mut self, abort: impl std::future::Future<Output = ()>) -> bool {
        let _ = self.shutdown.send(Stop::Drain(self.drain_timeout));
        let drained = tokio::select! {
            r = &mut self.driver => r.unwrap_or(false),
            _ = abort => {
                tracing::warn!("stopping at once: calls still in progress are not cleared");
                let _ = self.shutdown.send(Stop::Now);
                let _ = (&mut self.driver).await;
                false
            }
        };
        self.transport.shutdown().await;
        drained
    }
}

/// Binds the configured listeners.
pub fn bind(config: &Config) -> Result<Sockets, TransportError> {
    let listen: Vec<_> = config
        .server
        .listen
        .iter()
        .map(|l| (l.transport, l.addr))
        .collect();
    Sockets::bind(&listen)
}

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The registrations database cannot be opened or read (never started empty instead).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The dialplan does not load or does not validate against the users and gateways.
    #[error("{0}")]
    Dialplan(crate::config::ConfigErrors),
    /// `[registrar] nonce_secret_file` is missing, unreadable or too short.
    #[error("registrar.nonce_secret_file: {0}")]
    NonceSecret(String),
}

/// Starts the daemon on already-bound sockets. Must be called inside a tokio runtime.
pub fn start(config: &Config, sockets: Sockets) -> Result<Running, StartError> {
    start_with(config, sockets, transport_config(config))
}

/// The transport's limits and timers: `[tcp]` over the library defaults.
pub fn transport_config(config: &Config) -> TransportConfig {
    TransportConfig {
        idle_timeout: config.tcp.idle_timeout,
        untrusted_idle_timeout: config.tcp.untrusted_idle_timeout,
        max_connections: config.tcp.max_connections,
        max_connections_per_ip: config.tcp.max_connections_per_ip,
        ..TransportConfig::default()
    }
}

/// `start` with the transport's limits and timers given (tests use small ones).
pub fn start_with(
    config: &Config,
    sockets: Sockets,
    transport_config: TransportConfig,
) -> Result<Running, StartError> {
    // Before anything listens: a database that cannot be read stops the start.
    let store = crate::persist::open(&config.registrar.store, Instant::now(), SystemTime::now())?;
    start_with_store(config, sockets, transport_config, store)
}

/// `start_with` on a location store opened by the caller (tests watch what it is asked).
pub fn start_with_store(
    config: &Config,
    sockets: Sockets,
    transport_config: TransportConfig,
    store: Arc<dyn LocationStore>,
) -> Result<Running, StartError> {
    let cdr = match &config.calls.cdr_file {
        Some(path) => match CdrWriter::open(path) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(
                    "cannot open the CDR file {}: {e}; no CDRs will be written",
                    path.display()
                );
                None
            }
        },
        None => None,
    };
    let mut ecfg = engine_config(config);
    if let Some(path) = &config.registrar.nonce_secret_file {
        let (secret, shared) =
            crate::config::nonce_key::load(path).map_err(StartError::NonceSecret)?;
        if shared {
            tracing::warn!(
                "{} is readable by its group or others; chmod 600 it",
                path.display()
            );
        }
        ecfg.nonce_secret = Some(secret);
    }
    let mut engine = Engine::new(ecfg, config.users.clone(), store.clone());
    engine.set_dialplan(Arc::new(
        config.load_dialplan().map_err(StartError::Dialplan)?,
    ));
    // Bindings a persistent store brought back get their NAT keep-alives again.
    engine.resume_keepalives(Instant::now());
    let media_wake = start_media(config, &mut engine);
    let tls = match &config.tls {
        Some(settings) => Some(tls_setup(settings).map_err(|e| {
            tracing::error!("{e}");
            TransportError::NoTls
        })?),
        None => None,
    };
    let (transport, events) = TransportHandle::start_with_tls(sockets, transport_config, tls)?;
    // Trunks: resolved off the driver (RFC 3263), handed in as they come, again every few
    // minutes (a provider's DNS changes).
    let gw_routes = spawn_gateway_resolver(
        engine.gateway_specs().cloned().collect(),
        transport.local_addrs(),
    );
    let (shutdown, shutdown_rx) = watch::channel(Stop::Run);
    let stats = Arc::new(Mutex::new(EngineStats::default()));
    // --- operations (issue 13) ---
    let (ctl_tx, ctl_rx) = mpsc::channel(64);
    let control = crate::control::ControlHandle::new(ctl_tx, Arc::new(config.clone()));
    let (control_server, metrics) = start_operations(config, &control);
    // --- end operations ---
    let driver = tokio::spawn(drive(
        engine,
        store.clone(),
        transport.clone(),
        events,
        shutdown_rx,
        stats.clone(),
        cdr,
        media_wake,
        ctl_rx,
        gw_routes,
    ));
    Ok(Running {
        transport,
        shutdown,
        driver,
        store,
        stats,
        tls: config.tls.clone(),
        control,
        control_server,
        metrics,
        drain_timeout: config.server.drain_timeout,
    })
}

/// The transport's TLS set-up from `[tls]`: the files read again (they were checked when the
/// config loaded, but may have changed since).
pub fn tls_setup(s: &crate::config::tls::TlsSettings) -> Result<TlsSetup, String> {
    let m = crate::config::tls::load(s).map_err(|e| e.to_string())?;
    let extra_roots = match &s.ca_file {
        Some(ca) => {
            crate::config::tls::read_certificates(ca).map_err(|e| format!("tls.ca_file: {e}"))?
        }
        None => Vec::new(),
    };
    Ok(TlsSetup {
        chain: m.chain,
        key: m.key,
        tls13_only: s.min_version == crate::config::tls::TlsVersion::V1_3,
        verify_peers: s.verify_peers,
        extra_roots,
    })
}

/// `[media] mode = "relay"`: starts the relay's worker threads and hands the relay to the
/// engine; returns what the relay pokes when it has events (media timeouts) for the driver.
/// A relay that cannot start (no threads, no epoll) is logged and calls go unanchored.
fn start_media(config: &Config, engine: &mut Engine) -> Option<Arc<tokio::sync::Notify>> {
    if config.media.mode != crate::media::MediaMode::Relay {
        return None;
    }
    match crate::transport::MediaRelay::start(config.media.clone()) {
        Ok(relay) => {
            let wake = Arc::new(tokio::sync::Notify::new());
            let w = wake.clone();
            relay.on_event(move || w.notify_one());
            tracing::info!(
                ports = %config.media.rtp_ports,
                "media relay started: RTP anchored ([media] mode = \"relay\")"
            );
            engine.set_media(Box::new(relay));
            Some(wake)
        }
        Err(e) => {
            tracing::error!("cannot start the media relay: {e}; SDP passes untouched");
            None
        }
    }
}

// --- operations (issue 13) ---
/// The control socket and, when configured, the metrics endpoint. Either failing is logged
/// and the daemon serves SIP without it.
fn start_operations(
    config: &Config,
    control: &crate::control::ControlHandle,
) -> (
    Option<crate::control::ControlServer>,
    Option<crate::metrics::MetricsServer>,
) {
    let path = crate::control::socket_path(config.control.socket.as_deref(), &config.file);
    let server = match crate::control::ControlServer::start(&path, control.clone()) {
        Ok(s) => {
            tracing::info!("control socket {}", path.display());
            Some(s)
        }
        Err(e) => {
            tracing::error!("no control socket at {}: {e}", path.display());
            None
        }
    };
    let metrics =
        config.metrics.listen.and_then(|addr| {
            match crate::metrics::MetricsServer::start(addr, control.clone()) {
                Ok(m) => {
                    tracing::info!("metrics on http://{}/metrics", m.local_addr());
                    Some(m)
                }
                Err(e) => {
                    tracing::error!("no metrics endpoint on {addr}: {e}");
                    None
                }
            }
        });
    (server, metrics)
}
// --- end operations ---

/// What the engine needs from the configuration file: the engine does not know the file's
/// types, the shell maps them here.
pub fn engine_config(c: &Config) -> EngineConfig {
    EngineConfig {
        domain: c.server.domain.clone(),
        registrar: RegistrarConfig {
            min_expires: c.registrar.min_expires,
            max_expires: c.registrar.max_expires,
            default_expires: c.registrar.default_expires,
            served: served_hosts(c),
            contact_allow: c.registrar.contact_allow.clone(),
            contact_deny: c.registrar.contact_deny.clone(),
            nonce_bind_source: c.registrar.nonce_bind_source,
            nat_keepalive: c.registrar.nat_keepalive,
            trusted_proxies: c.registrar.trusted_proxies.clone(),
            ..RegistrarConfig::default()
        },
        digest_algorithms: c.registrar.digest_algorithms.clone(),
        nonce_lifetime: c.registrar.nonce_lifetime,
        transactions: TransactionConfig {
            // Finished transactions linger 32 s (Timers J, L); at thousands of requests
            // per second the library default would turn callers away with 503.
            max_transactions: 1_000_000,
            ..TransactionConfig::default()
        },
        calls: CallSettings {
            auth_calls: c.calls.auth_calls(),
            call_timeout: c.calls.call_timeout,
            max_calls: c.calls.max_calls,
            session: SessionTimerConfig::new(c.calls.session_expires, c.calls.min_se)
                .unwrap_or_default(),
            cdrs: c.calls.cdr_file.is_some(),
            max_calls_per_user: c.calls.max_calls_per_user,
            max_calls_per_source: c.calls.max_calls_per_source,
        },
        security: c.security.clone(),
        user_agent: c.server.user_agent.clone(),
        node_id: c.server.node_id.clone(),
        // Read by `start_with_store`, which can refuse to start.
        nonce_secret: None,
        trace: c.trace,
        gateways: c
            .gateways
            .iter()
            .map(|g| crate::engine::GatewaySpec {
                name: g.name.clone(),
                host: g.host.clone(),
                port: g.port,
                transport: g.transport,
                username: g.username.clone(),
                password: g.password.clone(),
                realm: g.realm.clone(),
                register: g.register,
                expires: g.expires,
                from_user: g.from_user.clone(),
                caller_id_in_from: g.caller_id_in_from,
                ping: g.ping,
            })
            .collect(),
    }
}

/// Our hosts (issue 17.3): the listen addresses, the interfaces behind wildcard ones (read
/// once, here), `[server] aliases` and the domain.
fn served_hosts(c: &Config) -> crate::registrar::ServedHosts {
    let listen: Vec<std::net::SocketAddr> = c.server.listen.iter().map(|l| l.addr).collect();
    let wildcard = listen.iter().any(|a| a.ip().is_unspecified());
    let interfaces = if wildcard {
        crate::registrar::interface_addrs()
    } else {
        Vec::new()
    };
    let names = c.server.aliases.iter().chain(&c.server.domain).cloned();
    crate::registrar::ServedHosts::from_listen(&listen, &interfaces, names)
}

/// Runs the engine until told to stop; true when it stopped drained (see `Stop::Drain`).
#[allow(clippy::too_many_arguments)] // the driver owns each channel it selects on
async fn drive(
    mut engine: Engine,
    store: Arc<dyn LocationStore>,
    transport: TransportHandle,
    mut events: mpsc::Receiver<TransportEvent>,
    mut shutdown: watch::Receiver<Stop>,
    stats: Arc<Mutex<EngineStats>>,
    mut cdr: Option<CdrWriter>,
    media_wake: Option<Arc<tokio::sync::Notify>>,
    mut ctl: mpsc::Receiver<crate::control::DriverRequest>,
    mut gw_routes: mpsc::Receiver<(String, crate::engine::GatewayRoute)>,
) -> bool {
    // --- operations (issue 13) ---
    let started = Instant::now();
    let mut rate = crate::control::CallRate::default();
    // --- end operations ---
    // Set once stopping: when the driver gives up waiting for the calls and BYEs.
    let mut give_up: Option<Instant> = None;
    // The guard's ban list as last handed to the transport.
    let mut bans_seen = 0;
    // Set while store flushes fail (logged once per failing spell, not per batch): whether
    // this loop logged it (a store that declares itself unwritable logs its own state).
    let mut store_failing: Option<bool> = None;
    loop {
        let deadline = [engine.poll_timeout(), give_up].into_iter().flatten().min();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            r = shutdown.changed() => {
                let stop = if r.is_ok() { *shutdown.borrow_and_update() } else { Stop::Now };
                match stop {
                    Stop::Run => {}
                    Stop::Now => break,
                    Stop::Drain(_) if give_up.is_some() => {}
                    Stop::Drain(wait) => {
                        let (now, wall) = (Instant::now(), SystemTime::now());
                        engine.begin_shutdown_after(now, wall, wait);
                        give_up = Some(now + wait + engine.shutdown_grace());
                    }
                }
            }
            // --- operations (issue 13): before the transport, so a busy switch still answers ---
            Some(req) = ctl.recv() => {
                let info = crate::control::DriverInfo { started, rate: &rate };
                control_request(&mut engine, &info, &mut cdr, req);
            }
            // --- end operations ---
            Some((name, route)) = gw_routes.recv() => {
                engine.set_gateway_route(Instant::now(), &name, route);
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                let (now, wall) = (Instant::now(), SystemTime::now());
                handle_event(&mut engine, now, wall, ev);
                for _ in 1..BATCH {
                    match events.try_recv() {
                        Ok(ev) => handle_event(&mut engine, now, wall, ev),
                        Err(_) => break,
                    }
                }
            }
            _ = sleep => engine.handle_timeout(Instant::now(), SystemTime::now()),
            _ = async {
                match &media_wake {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            } => engine.handle_media(Instant::now(), SystemTime::now()),
        }
        // Group commit: the bindings this batch wrote become durable before any of its
        // responses leaves, so a 200 OK that was sent survives a kill of the daemon.
        // Awaited, not blocking: a store across the network (Redis) bounds its own wait.
        match store.flush_async().await {
            Ok(()) => {
                if store_failing.take() == Some(true) {
                    tracing::warn!("location store writes again; bindings are durable again");
                }
            }
            Err(e) if store_failing.is_none() => {
                // A store that declared itself unwritable logged that itself, once.
                let log = store.writable();
                store_failing = Some(log);
                if log {
                    // Calls and registrations go on from memory; the writes are kept and
                    // retried at every batch, but bindings made meanwhile die with the
                    // process.
                    tracing::error!("{e}; serving from memory until a write succeeds");
                }
            }
            Err(_) => {}
        }
        flush(&mut engine, &transport);
        while let Some(rec) = engine.poll_cdr() {
            if let Some(w) = &mut cdr {
                w.write(&rec);
            }
        }
        let (generation, bans) = engine.bans();
        if generation != bans_seen {
            bans_seen = generation;
            transport.set_banned(bans);
        }
        // Published after the bans, so whoever sees these stats sees the bans in force.
        *stats.lock().unwrap_or_else(|e| e.into_inner()) = engine.stats();
        rate.sample(Instant::now(), engine.calls_started()); // operations (issue 13)
        if let Some(at) = give_up {
            if engine.is_drained() {
                tracing::info!("every call cleared");
                return true;
            }
            if Instant::now() >= at {
                tracing::warn!(
                    calls = engine.active_calls(),
                    "grace period over: stopping with calls or BYEs still unanswered"
                );
                return false;
            }
        }
    }
    false
}

/// How often a gateway's addresses are looked up again; sooner after a failed lookup.
const GATEWAY_RESOLVE_EVERY: std::time::Duration = std::time::Duration::from_secs(300);
const GATEWAY_RESOLVE_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Resolves every gateway now and then again every `GATEWAY_RESOLVE_EVERY`, sending each
/// result to the driver (only when it changed). An IP literal never touches DNS.
fn spawn_gateway_resolver(
    specs: Vec<crate::engine::GatewaySpec>,
    locals: Vec<(Transport, SocketAddr)>,
) -> mpsc::Receiver<(String, crate::engine::GatewayRoute)> {
    let (tx, rx) = mpsc::channel(16);
    if specs.is_empty() {
        return rx;
    }
    tokio::spawn(async move {
        let resolver = crate::transport::Resolver::system();
        let mut last: std::collections::HashMap<String, Vec<(SocketAddr, Transport)>> =
            Default::default();
        loop {
            let mut failed = false;
            for g in &specs {
                let host = g.host.trim_start_matches('[').trim_end_matches(']');
                let targets = match resolver.resolve(host, g.port, g.transport).await {
                    Ok(t) if !t.is_empty() => t,
                    Ok(_) => {
                        failed = true;
                        tracing::warn!(target: "ferroswitch::gateway", gateway = %g.name, host = %g.host, "the gateway's name has no address; retrying");
                        continue;
                    }
                    Err(e) => {
                        failed = true;
                        tracing::warn!(target: "ferroswitch::gateway", gateway = %g.name, host = %g.host, error = %e, "cannot resolve the gateway's address; retrying");
                        continue;
                    }
                };
                if last.get(&g.name) == Some(&targets) {
                    continue;
                }
                let Some(advertised) = advertised_toward(targets[0].0, g.transport, &locals) else {
                    failed = true;
                    tracing::warn!(target: "ferroswitch::gateway", gateway = %g.name, transport = g.transport.as_str(), "no local socket of the gateway's transport and address family");
                    continue;
                };
                tracing::info!(target: "ferroswitch::gateway", gateway = %g.name, target = %targets[0].0, %advertised, "gateway resolved");
                last.insert(g.name.clone(), targets.clone());
                let route = crate::engine::GatewayRoute {
                    targets,
                    advertised,
                };
                if tx.send((g.name.clone(), route)).await.is_err() {
                    return;
                }
            }
            let wait = if failed {
                GATEWAY_RESOLVE_RETRY
            } else {
                GATEWAY_RESOLVE_EVERY
            };
            tokio::time::sleep(wait).await;
        }
    });
    rx
}

/// Our `host:port` as seen from `target`: the listening socket of `transport` in its address
/// family, with the source address the kernel would use toward `target` when that socket is
/// bound to a wildcard address.
fn advertised_toward(
    target: SocketAddr,
    transport: Transport,
    locals: &[(Transport, SocketAddr)],
) -> Option<String> {
    let local = locals
        .iter()
        .find(|(t, a)| *t == transport && a.is_ipv4() == target.is_ipv4())?
        .1;
    let ip = if local.ip().is_unspecified() {
        let probe = std::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0)).ok()?;
        probe.connect(target).ok()?;
        probe.local_addr().ok()?.ip()
    } else {
        local.ip()
    };
    Some(SocketAddr::new(ip, local.port()).to_string())
}

// --- operations (issue 13) ---
/// One control request, answered in the driver (the engine's owner); what it makes the
/// engine send is flushed by the loop as usual.
fn control_request(
    engine: &mut Engine,
    info: &crate::control::DriverInfo<'_>,
    cdr: &mut Option<CdrWriter>,
    req: crate::control::DriverRequest,
) {
    use crate::control::DriverRequest;
    let (now, wall) = (Instant::now(), SystemTime::now());
    match req {
        DriverRequest::Query(q, reply) => {
            let _ = reply.send(crate::control::answer(engine, info, now, wall, q));
        }
        DriverRequest::Reload(r, reply) => {
            let _ = reply.send(Ok(crate::control::apply_reload(engine, now, *r, cdr)));
        }
        DriverRequest::Snapshot(reply) => {
            let _ = reply.send(engine.snapshot());
        }
    }
}
// --- end operations ---

fn handle_event(engine: &mut Engine, now: Instant, wall: SystemTime, ev: TransportEvent) {
    match ev {
        TransportEvent::Inbound(inbound) => engine.handle_inbound(now, wall, inbound),
        TransportEvent::SendFailed(f) => engine.handle_send_failure(now, wall, &f),
        TransportEvent::ConnectionClosed { id, .. } => engine.handle_connection_closed(id),
    }
}

fn flush(engine: &mut Engine, transport: &TransportHandle) {
    while let Some(conn) = engine.poll_trusted() {
        transport.mark_trusted(conn);
    }
    while let Some(t) = engine.poll_transmit() {
        if let Err(e) = transport.send(t.to, t.bytes) {
            tracing::debug!(target: "ferroswitch::engine", to = %t.to, %e, "send refused");
            if let Some(key) = t.key {
                engine.handle_send_error(Instant::now(), SystemTime::now(), &key);
            }
        }
    }
}

/// Appends CDRs to a file (opened for append), one JSON line each. The driver writes each
/// record in the turn of its loop in which the call ended, with one `write_all` straight to
/// the kernel: nothing waits in a buffer of ours (`File` has none; its `flush` is a no-op).
/// What that promises: once written, a record survives a crash or kill of the daemon. Nothing
/// is fsync'd, so a power loss or kernel crash can lose the records the kernel had not yet
/// written to disk; a write that fails (disk full) is logged and that record is lost.
pub(crate) struct CdrWriter {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl CdrWriter {
    pub(crate) fn open(path: &std::path::Path) -> std::io::Result<CdrWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(CdrWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    fn write(&mut self, rec: &crate::cdr::CdrRecord) {
        use std::io::Write;
        let line = rec.to_json_line();
        if let Err(e) = self
            .file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
        {
            tracing::error!("writing CDR to {}: {e}", self.path.display());
        }
    }
}
