//! The engine: the sans-IO dispatcher at the heart of the daemon. Transport events and the
//! clock go in, datagrams to send, CDRs and the next deadline come out; the tokio driver in
//! `app` only moves them. Inside sit the transaction layer, the registrar with digest
//! authentication, NAT keep-alives, admission and routing of new calls, and the call core
//! (`b2bua::B2bua`), which owns every call: the engine hands it events and carries out the
//! `Command`s it returns (`run_commands`), and holds no per-call state of its own.
//!
//! Calling contract (what `app::drive` does, and every test harness):
//! - `handle_inbound(now, wall, inbound)` for each received message, `handle_send_failure`
//!   for each failed send, `handle_send_error` when `send` refused a transmit at once,
//!   `handle_connection_closed` for each closed TCP connection;
//! - `handle_timeout(now, wall)` whenever `poll_timeout()` has passed (calling it early is
//!   harmless);
//! - after any of these: drain `poll_transmit()` (send each), `poll_cdr()` (append each),
//!   `poll_trusted()` (tell the transport), and read `bans()` when its counter changed;
//! - an operator's requests (`control`: `hang_up`, `unregister`, `unban`, `replace_users`,
//!   and the read-only `registrations`, `calls`, `snapshot`) are inputs like the others:
//!   drain the same outputs after them;
//! - to stop: `begin_shutdown` (or `begin_shutdown_after` to let calls end first), keep
//!   driving until `is_drained()` or the timeout plus `shutdown_grace()`; `drain`/`resume`
//!   only stop and restart taking new calls.
//!   `now` never goes backwards; the engine never reads a clock itself.
//!
//! Never panics on what a peer sends: malformed requests get a stateless 400, responses that
//! match nothing are dropped, and every table is bounded by its layer.
//!
//! It imports no tokio module and nothing of `crate::transport` (the tokio sockets): what it
//! needs from the network (received messages with their `Origin`, send failures, Via stamping,
//! response routing) comes from the sans-IO `crate::net`. Nor does it know the config file's
//! types: `app::engine_config` maps a `Config` onto `EngineConfig`; only the users directory
//! (`config::Users`) is handed in as it is. `tests/layering.rs` checks the imports.

mod admit;
mod auth;
mod calls;
mod control;
mod gateways;
mod inbound;
mod keepalive;
mod register;
mod respond;
mod routing;
mod shutdown;
pub mod sim;
pub mod trace;
mod traffic;

use crate::auth::{NonceManager, NonceSecret, Verifier};
use crate::b2bua::{Admitted, B2bua, B2buaConfig, Command, Reject};
use crate::cdr::CdrRecord;
use crate::config::Users;
use crate::net::{ConnectionId, Origin, Peer, SendFailure, Transport};
use crate::registrar::{LocationStore, RegistrarConfig};
use crate::sip::{Method, Request, Response};
use crate::transaction::{
    TransactionConfig, TransactionEvent, TransactionKey, TransactionLayer, Transmit,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use crate::b2bua::{CallSettings, ALLOW, SUPPORTED};
pub use control::{ControlError, EngineSnapshot, RegistrationInfo};
pub use gateways::{GatewayRoute, GatewaySpec, GatewayStatus};
pub use trace::{CallTrace, Direction, TraceConfig, TraceRecord, Traced};
pub use traffic::{TrafficStats, METHODS};

/// Everything the engine needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The SIP domain (= digest realm); `None`: the request URI's host is the realm.
    pub domain: Option<String>,
    pub registrar: RegistrarConfig,
    pub digest_algorithms: Vec<crate::auth::Algorithm>,
    pub nonce_lifetime: Duration,
    pub transactions: TransactionConfig,
    pub calls: CallSettings,
    pub security: crate::security::SecurityConfig,
    /// The `Server`/`User-Agent` value we put on messages; empty: none (`push_user_agent`).
    pub user_agent: String,
    /// `[trace]`: the SIP of recent calls kept for `ctl trace` (`trace`).
    pub trace: TraceConfig,
    /// `[[gateway]]`: trunks to providers (`gateways`).
    pub gateways: Vec<GatewaySpec>,
    /// `[server] node_id`: in branches, b-leg Call-IDs, CDRs and nonces (`node`).
    pub node_id: Option<String>,
    /// The nonce secret shared by the nodes of a cluster (`[registrar] nonce_secret_file`);
    /// `None`: a random one for this process.
    pub nonce_secret: Option<NonceSecret>,
}

/// Counters the driver may publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub requests: u64,
    pub responses: u64,
    pub malformed_answered: u64,
    pub malformed_dropped: u64,
    pub rejected: u64,
    pub registrations: u64,
    pub unregistrations: u64,
    pub auth_challenges: u64,
    pub auth_failures: u64,
    pub expired_bindings: u64,
    /// Bindings removed because their NAT keep-alive went unanswered (`keepalive`).
    pub keepalive_removed: u64,
    pub calls_ended: u64,
    /// Packets dropped by the security guard (bans, floods, scanners).
    pub dropped: u64,
    /// Calls in progress when the stats were taken.
    pub active_calls: u64,
    /// Media relay sessions open (two port pairs per relayed stream each): back to 0 once
    /// every anchored call has ended.
    pub media_sessions: u64,
    /// Requests by method, responses by class (`traffic`).
    pub traffic: TrafficStats,
}

pub struct Engine {
    cfg: EngineConfig,
    users: Users,
    txl: TransactionLayer,
    verifier: Verifier,
    store: Arc<dyn LocationStore>,
    /// Stateless sends of our own (not through a transaction).
    out: VecDeque<Transmit>,
    /// Origin of the request being handled (`handle_request` until it returns): the
    /// registrar and digest checks read where it came from. Never read for calls, which get
    /// their `Arrival` as an argument.
    current: Option<Origin>,
    rng: StdRng,
    stats: EngineStats,
    guard: crate::security::Guard,
    /// Every call and MESSAGE in flight: the engine routes events to it and carries out the
    /// commands it returns (`run_commands`).
    pub(crate) b2bua: B2bua,
    /// CDRs the call core wrote, until the driver takes them (`poll_cdr`).
    cdrs: VecDeque<crate::cdr::CdrRecord>,
    /// Key of the stateless To tags (`stateless_tag`).
    tag_key: respond::TagKey,
    /// Draining and stopping: new calls refused, calls hung up (see `shutdown`).
    drain: shutdown::DrainState,
    /// TCP connections on which a digest-authenticated request was accepted (`poll_trusted`).
    trusted: VecDeque<ConnectionId>,
    /// Those connections, while open: a ban of their address does not cut them off
    /// (issue 17.11); bounded by the transport's connection table, emptied on close.
    trusted_conns: crate::FastSet<ConnectionId>,
    /// NAT keep-alive pings of registered phones (`keepalive`).
    keepalives: keepalive::KeepAlives,
    /// The SIP of recent calls (`trace`): fed in `handle_inbound` and `poll_transmit`.
    trace: trace::Tracer,
    /// Where calls go (`routing`): the builtin plan (every number is a user) unless a
    /// dialplan file is configured.
    dialplan: Arc<crate::routing::Dialplan>,
    /// Trunks: where they are, whether they are up (`gateways`).
    gateways: gateways::Gateways,
}

/// The guard's settings: `[security]`, with the trusted edge proxies allow-listed. Every
/// phone behind an edge proxy shares its address, so a ban or a rate limit of that address
/// would cut all of them off; the proxy's own flood and scan protection (Kamailio's `pike`
/// and `ratelimit`) sees the phones' real addresses and guards them instead.
fn guard_config(cfg: &EngineConfig) -> crate::security::SecurityConfig {
    let mut sec = cfg.security.clone();
    for n in &cfg.registrar.trusted_proxies {
        if !sec.allow.contains(n) {
            sec.allow.push(*n);
        }
    }
    sec
}

/// A request handed to the transaction layer, with what the engine learnt of it before:
/// where it came from and, for a new INVITE or MESSAGE, its admission.
struct Handled {
    origin: Origin,
    admitted: Option<Admitted>,
}

impl Engine {
    pub fn new(cfg: EngineConfig, users: Users, store: Arc<dyn LocationStore>) -> Engine {
        let secret = cfg.nonce_secret.clone().unwrap_or_else(NonceSecret::random);
        let mut engine = Engine::with_secret(cfg, users, store, secret, StdRng::from_entropy());
        engine.tag_key = respond::TagKey::random();
        engine
    }

    /// A deterministic engine for tests: fixed nonce secret and random seed.
    pub fn with_secret(
        cfg: EngineConfig,
        users: Users,
        store: Arc<dyn LocationStore>,
        secret: NonceSecret,
        mut rng: StdRng,
    ) -> Engine {
        let run_id = rng.clone().gen::<u32>().into();
        // From a clone: the engine's own draws stay as they were before tags were keyed.
        let tag_key = respond::TagKey::from_rng(&mut rng.clone());
        // Nonces draw from their own generator, seeded from the engine's, so a seeded engine
        // issues the same nonces every run.
        let nonce_rng = StdRng::from_seed(rng.gen());
        // This run's nonces verify only here (see `auth::nonce`): another node, or this one
        // after a restart, answers them with stale=true.
        let nonce_run = crate::auth::run_id(cfg.node_id.as_deref(), rng.clone().gen::<u64>());
        let verifier = Verifier::new(
            NonceManager::with_run(secret, cfg.nonce_lifetime, nonce_run),
            &cfg.digest_algorithms,
            nonce_rng,
        );
        let cfg_gateways = cfg.gateways.clone();
        let b2bua = B2bua::new(
            B2buaConfig {
                calls: cfg.calls,
                timers: cfg.transactions.timers,
                user_agent: cfg.user_agent.clone(),
                node_id: cfg.node_id.clone(),
            },
            StdRng::from_seed(rng.gen()),
            run_id,
        );
        Engine {
            guard: crate::security::Guard::new(guard_config(&cfg)),
            trace: trace::Tracer::new(cfg.trace),
            txl: TransactionLayer::new(cfg.transactions),
            cfg,
            users,
            verifier,
            store,
            out: VecDeque::new(),
            current: None,
            tag_key,
            rng,
            stats: EngineStats::default(),
            b2bua,
            cdrs: VecDeque::new(),
            drain: Default::default(),
            trusted: VecDeque::new(),
            trusted_conns: Default::default(),
            keepalives: keepalive::KeepAlives::default(),
            dialplan: Arc::new(crate::routing::Dialplan::builtin()),
            gateways: gateways::Gateways::new(&cfg_gateways),
        }
    }

    /// The dialplan new calls are routed by (at start and on reload; calls in progress keep
    /// the decisions already taken).
    pub fn set_dialplan(&mut self, dialplan: Arc<crate::routing::Dialplan>) {
        self.dialplan = dialplan;
    }

    /// The driver resolved gateway `name` (RFC 3263): where its requests go and our address
    /// as it reaches us. False for an unknown name.
    /// Its registration and keep-alive start (or go on with our new Contact) at once: drain
    /// `poll_transmit` after this as after any input.
    pub fn set_gateway_route(&mut self, now: Instant, name: &str, route: GatewayRoute) -> bool {
        let Some(g) = self.gateways.get_mut(name) else {
            return false;
        };
        g.set_targets(
            route
                .targets
                .iter()
                .map(|&(addr, transport)| Peer::new(transport, addr))
                .collect(),
        );
        g.advertised = Some(route.advertised);
        if let Some(i) = self.gateways.list.iter().position(|g| g.spec.name == name) {
            self.gateway_resolved(i);
        }
        if !self.drain.stopping {
            self.poll_gateways(now);
        }
        true
    }

    /// The configured gateways (what the driver resolves).
    pub fn gateway_specs(&self) -> impl Iterator<Item = &GatewaySpec> {
        self.gateways.list.iter().map(|g| &g.spec)
    }

    /// Anchors the media of new calls in `relay` (`[media] mode = "relay"`; without it SDP
    /// passes untouched).
    pub fn set_media(&mut self, relay: crate::b2bua::RelayHandle) {
        self.b2bua.set_media(relay);
    }

    /// The media relay has something to report (a media timeout): the driver calls this when
    /// the relay wakes it, besides `handle_timeout`.
    pub fn handle_media(&mut self, now: Instant, wall: SystemTime) {
        self.trace.tick(now, wall);
        self.b2bua.handle_media(now, wall);
        self.run_commands(now, wall);
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            active_calls: self.b2bua.len() as u64,
            calls_ended: self.b2bua.stats().calls_ended,
            media_sessions: self.b2bua.media_sessions() as u64,
            ..self.stats
        }
    }

    pub fn transactions(&self) -> &TransactionLayer {
        &self.txl
    }

    pub fn store(&self) -> &Arc<dyn LocationStore> {
        &self.store
    }

    /// Calls in progress (a-leg + b-legs each).
    pub fn active_calls(&self) -> usize {
        self.b2bua.len()
    }

    /// (calls, dialogs, relayed requests) in the call table: all zero once every call ended.
    pub fn call_table_sizes(&self) -> (usize, usize, usize) {
        self.b2bua.table_sizes()
    }

    /// The next finished call's record, to append to the CDR file.
    pub fn poll_cdr(&mut self) -> Option<CdrRecord> {
        self.cdrs.pop_front()
    }

    /// The next TCP connection that carried a digest-authenticated request: the driver
    /// tells the transport (`TransportHandle::mark_trusted`) so it may stay idle long.
    pub fn poll_trusted(&mut self) -> Option<ConnectionId> {
        self.trusted.pop_front()
    }

    /// A TCP connection has closed: it is no longer an authenticated one.
    pub fn handle_connection_closed(&mut self, id: ConnectionId) {
        self.trusted_conns.remove(&id);
    }

    /// Addresses the security guard has banned, with when each ban ends, and a number that
    /// changes whenever that list does: the driver mirrors the list into the transport so
    /// banned sources are refused at TCP accept.
    pub fn bans(&self) -> (u64, impl Iterator<Item = (std::net::IpAddr, Instant)> + '_) {
        let s = self.guard.stats();
        (s.bans + s.unbans, self.guard.bans())
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.out.pop_front().or_else(|| self.txl.poll_transmit())?;
        self.trace_transmit(&t);
        Some(t)
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txl.poll_timeout(),
            self.store.next_expiry(),
            self.b2bua.poll_timeout(),
            self.b2bua.media_timeout_at(),
            self.guard.poll_timeout(),
            self.keepalives.poll_timeout(),
            self.gateways_timeout(),
            self.drain_timeout_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.trace.tick(now, wall);
        self.txl.handle_timeout(now);
        self.guard.handle_timeout(now);
        self.drain_events(now, wall, None);
        self.b2bua.handle_timeout(now, wall);
        self.b2bua.handle_media(now, wall);
        self.run_commands(now, wall);
        for (aor, b) in self.store.remove_expired(now) {
            self.stats.expired_bindings += 1;
            tracing::info!(target: "ferroswitch::registrar", aor = %crate::security::log_escape(&aor), contact = %crate::security::log_escape(&b.contact), "binding expired");
        }
        self.handle_keepalive_timers(now);
        if !self.drain.stopping {
            self.poll_gateways(now);
        }
        self.drain_events(now, wall, None);
        self.check_drain(now, wall);
    }

    /// A send accepted earlier failed: the transaction it belonged to learns of it (503).
    /// Over UDP (an ICMP error, RFC 3261 §18.4) only the client transaction whose datagram
    /// bounced fails; the requests the peer sent us are still ours to answer.
    pub fn handle_send_failure(&mut self, now: Instant, wall: SystemTime, f: &SendFailure) {
        if f.peer.transport == Transport::Udp {
            self.txl.handle_peer_unreachable(now, f.peer, &f.data);
        } else {
            self.txl.handle_peer_failure(now, f.peer);
        }
        self.drain_events(now, wall, None);
    }

    /// Hands every event of the transaction layer to its owner: the registrar and OPTIONS
    /// here, keep-alives (`keepalive`), everything of calls and MESSAGEs to the call core,
    /// whose commands are carried out after each event (`run_commands`). `handled`: the
    /// request just given to the transaction layer, if any.
    fn drain_events(&mut self, now: Instant, wall: SystemTime, mut handled: Option<Handled>) {
        while let Some(ev) = self.txl.poll_event() {
            match ev {
                TransactionEvent::Request { key, request, from } => {
                    self.on_request(now, wall, key, request, from, handled.take())
                }
                TransactionEvent::Cancel {
                    key,
                    request,
                    invite,
                    ..
                } => self
                    .b2bua
                    .handle_cancel(wall, &self.txl, &key, &request, invite),
                TransactionEvent::Ack {
                    invite, request, ..
                } => self.b2bua.handle_ack(now, invite, &request),
                TransactionEvent::Response { key, response } => {
                    self.on_client_response(now, wall, key, response)
                }
                TransactionEvent::StrayResponse { response, .. } => {
                    self.b2bua.handle_stray_response(now, wall, response)
                }
                TransactionEvent::Timeout { key, .. } => {
                    self.on_client_failure(now, wall, &key, 408)
                }
                TransactionEvent::TransportError { key } => {
                    self.on_client_failure(now, wall, &key, 503)
                }
                TransactionEvent::Terminated { .. } => {}
            }
            self.run_commands(now, wall);
        }
    }

    /// Carries out what the call core asked for, in order. A request the transaction layer
    /// refuses (table full) fails its transaction at once, as a transport error would (503),
    /// which may queue more commands: they run in the same loop.
    pub(crate) fn run_commands(&mut self, now: Instant, wall: SystemTime) {
        while let Some(cmd) = self.b2bua.poll_command() {
            match cmd {
                Command::SendRequest { key, request, to } => {
                    let method = request.method.clone();
                    if let Err(e) = self.txl.send_request(now, request, to) {
                        tracing::debug!(target: "ferroswitch::engine", %method, e = %crate::security::log_escape(&e), "request not sent");
                        self.b2bua.handle_client_failure(now, wall, &key, 503);
                    }
                }
                Command::Respond { key, response } => self.send_response(now, &key, response),
                Command::Resend2xx {
                    key,
                    response,
                    fallback,
                } => {
                    let bytes = fallback.map(|to| (to, response.to_bytes()));
                    if self.txl.send_response(now, &key, response).is_err() {
                        if let Some((to, bytes)) = bytes {
                            self.out.push_back(Transmit {
                                to,
                                bytes,
                                key: None,
                            });
                        }
                    }
                }
                Command::Cancel { key } => {
                    if let Err(e) = self.txl.send_cancel(now, &key) {
                        tracing::debug!(target: "ferroswitch::engine", e = %crate::security::log_escape(&e), "CANCEL not sent");
                    }
                }
                Command::Transmit { to, bytes } => self.out.push_back(Transmit {
                    to,
                    bytes,
                    key: None,
                }),
                Command::Cdr(rec) => self.cdrs.push_back(*rec),
                Command::Route(lookup) => {
                    let route = self.route_lookup(now, &lookup);
                    self.b2bua.continue_call(now, wall, lookup.call, route);
                }
            }
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        req: Request,
        from: Peer,
        handled: Option<Handled>,
    ) {
        let resp = match req.method {
            Method::Register => self.handle_register(now, wall, &req, from),
            Method::Options => match self.options_while_draining(&req) {
                Some(r503) => r503,
                None => self.options_response(&req),
            },
            Method::Ack | Method::Cancel => return,
            _ if req.headers.to_tag().is_some() => {
                // The call core asks where a transfer's Refer-To leads (`b2bua::RouteQuery`):
                // through the dialplan, in the transferring user's context.
                let view = routing::RoutingView {
                    dialplan: &self.dialplan,
                    users: &self.users,
                    store: &*self.store,
                    gateways: &self.gateways,
                };
                let mut router = |q: crate::b2bua::RouteQuery<'_>| {
                    let context = view.context_of(q.by);
                    view.route_dial(now, context, q.dialled, q.domain, 0)
                };
                return self
                    .b2bua
                    .handle_dialog_request(now, wall, key, req, &mut router);
            }
            Method::Invite if self.drain.refusing => {
                return self.refuse_while_draining(now, &key, &req)
            }
            Method::Invite | Method::Message => {
                return self.new_call_or_message(now, wall, key, req, from, handled)
            }
            Method::Bye | Method::Update | Method::Info | Method::Prack => {
                // Outside a dialog these name none we know.
                self.reject_response(&req, Reject::NoSuchDialog)
            }
            Method::Subscribe
            | Method::Notify
            | Method::Refer
            | Method::Publish
            | Method::Other(_) => self.reject_response(&req, Reject::NotImplemented),
        };
        self.send_response(now, &key, resp);
    }

    /// A response on one of our client transactions: a keep-alive's, else the call core's.
    fn on_client_response(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        resp: Response,
    ) {
        if self.on_gateway_response(now, &key, &resp) {
            return;
        }
        // Any answer to a keep-alive, even 404 or 501, proves the phone is there.
        if self.is_keepalive(&key) {
            if resp.status >= 200 {
                self.on_keepalive_end(now, &key, true);
            }
            return;
        }
        self.b2bua
            .handle_client_response(now, wall, &self.txl, &key, resp);
    }

    /// A client transaction of ours timed out (408) or could not be sent (503).
    fn on_client_failure(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: &TransactionKey,
        status: u16,
    ) {
        if self.on_keepalive_end(now, key, false) || self.on_gateway_failure(now, key, status) {
            return;
        }
        self.b2bua.handle_client_failure(now, wall, key, status);
    }

    /// A refusal as its response (`Reject` names the status, phrase and extra headers).
    fn reject_response(&mut self, req: &Request, rej: Reject) -> Response {
        let mut r = self.response(req, rej.status(), rej.phrase());
        rej.add_headers(&mut r.headers);
        r
    }

    fn send_response(&mut self, now: Instant, key: &TransactionKey, resp: Response) {
        let status = resp.status;
        if let Err(e) = self.txl.send_response(now, key, resp) {
            tracing::debug!(target: "ferroswitch::engine", e = %crate::security::log_escape(&e), key = %crate::security::log_escape(key), "response not sent");
            return;
        }
        self.stats.traffic.response(status);
    }

    fn send_stateless(&mut self, to: Peer, resp: &Response) {
        self.stats.traffic.response(resp.status);
        self.out.push_back(Transmit {
            to,
            bytes: resp.to_bytes(),
            key: None,
        });
    }
}

impl Engine {
    /// `send` refused a transmit at once (no route, queue full): the transaction that sent it
    /// learns of it as a transport error (503).
    pub fn handle_send_error(&mut self, now: Instant, wall: SystemTime, key: &TransactionKey) {
        self.txl.handle_transport_error(now, key);
        self.drain_events(now, wall, None);
    }
}

#[cfg(test)]
mod tests;
