//! The engine: the sans-IO heart of the daemon. Transport events and the clock go in
//! (`handle_*`), datagrams to send and the next deadline come out (`poll_*`); the tokio driver
//! in `app` only moves them. In the middle sit the transaction layer and the services on top
//! of it (registrar with digest authentication, OPTIONS; the B2BUA joins them here).
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
mod call_dialog;
mod call_events;
mod call_refresh;
mod call_reinvite;
pub(crate) mod call_setup;
mod keepalive;
mod message;
mod register;
mod respond;
mod shutdown;

use crate::auth::{NonceManager, NonceSecret, Verifier};
use crate::b2bua::Calls;
use crate::cdr::CdrRecord;
use crate::config::Users;
use crate::dialog::SessionTimerConfig;
use crate::net::{
    route_response, stamp_received, ConnectionId, Inbound, Origin, Payload, Peer, ResponseRoute,
    RouteError, SendFailure, Transport,
};
use crate::registrar::{LocationStore, RegistrarConfig};
use crate::sip::validate::{validate_request, Policy};
use crate::sip::{
    make_echo_safe, parse, response_to_bad, set_to_tag, HeaderName, Message, Method, Request,
    Response,
};
use crate::transaction::{
    TransactionConfig, TransactionEvent, TransactionKey, TransactionLayer, Transmit,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use respond::{ALLOW, SUPPORTED};

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
}

/// The B2BUA's settings (`[calls]`).
#[derive(Debug, Clone, Copy)]
pub struct CallSettings {
    pub auth_calls: bool,
    pub call_timeout: Duration,
    pub max_calls: usize,
    pub session: SessionTimerConfig,
    /// Build a CDR for every call (`poll_cdr`); off when no CDR file is configured.
    pub cdrs: bool,
    /// Calls (and pending MESSAGEs) per authenticated user / per source address; 0 = off.
    pub max_calls_per_user: usize,
    pub max_calls_per_source: usize,
}

impl Default for CallSettings {
    fn default() -> CallSettings {
        CallSettings {
            auth_calls: true,
            call_timeout: Duration::from_secs(60),
            max_calls: 10_000,
            session: SessionTimerConfig::default(),
            cdrs: true,
            max_calls_per_user: 10,
            max_calls_per_source: 50,
        }
    }
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
}

pub struct Engine {
    cfg: EngineConfig,
    users: Users,
    txl: TransactionLayer,
    verifier: Verifier,
    store: Arc<dyn LocationStore>,
    /// Stateless sends of our own (not through a transaction).
    out: VecDeque<Transmit>,
    /// Origin of the message being handled: events drained right after `handle_request`
    /// belong to it (the transaction layer only knows the response destination).
    current: Option<Origin>,
    rng: StdRng,
    stats: EngineStats,
    guard: crate::security::Guard,
    calls: Calls,
    /// INVITE client transactions of b-legs whose call has ended after they answered: a
    /// repeated 2xx from them only needs an ACK (bounded, oldest forgotten first).
    ended_b: crate::FastSet<TransactionKey>,
    ended_b_order: VecDeque<TransactionKey>,
    messages: message::Messages,
    cdrs: VecDeque<CdrRecord>,
    /// Distinguishes this run's call ids in CDRs.
    run_id: u64,
    /// Key of the stateless To tags (`stateless_tag`).
    tag_key: respond::TagKey,
    /// Set by `begin_shutdown`: new calls are refused (see `shutdown`).
    draining: bool,
    /// TCP connections on which a digest-authenticated request was accepted (`poll_trusted`).
    trusted: VecDeque<ConnectionId>,
    /// Those connections, while open: a ban of their address does not cut them off
    /// (issue 17.11); bounded by the transport's connection table, emptied on close.
    trusted_conns: crate::FastSet<ConnectionId>,
    /// `max_calls_per_user` / `max_calls_per_source` for calls and for pending MESSAGEs.
    call_limits: crate::b2bua::Limits,
    message_limits: crate::b2bua::Limits,
    /// The admission of the INVITE/MESSAGE being handed to the transaction layer.
    admitted: Option<admit::Admitted>,
    /// NAT keep-alive pings of registered phones (`keepalive`).
    keepalives: keepalive::KeepAlives,
}

impl Engine {
    pub fn new(cfg: EngineConfig, users: Users, store: Arc<dyn LocationStore>) -> Engine {
        let mut engine = Engine::with_secret(
            cfg,
            users,
            store,
            NonceSecret::random(),
            StdRng::from_entropy(),
        );
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
        let verifier = Verifier::new(
            NonceManager::new(secret, cfg.nonce_lifetime),
            &cfg.digest_algorithms,
            nonce_rng,
        );
        let (per_user, per_source) = (cfg.calls.max_calls_per_user, cfg.calls.max_calls_per_source);
        let call_limits = crate::b2bua::Limits::new(per_user, per_source);
        let message_limits = crate::b2bua::Limits::new(per_user, per_source);
        Engine {
            guard: crate::security::Guard::new(cfg.security.clone()),
            txl: TransactionLayer::new(cfg.transactions),
            cfg,
            users,
            verifier,
            store,
            out: VecDeque::new(),
            current: None,
            run_id,
            tag_key,
            rng,
            stats: EngineStats::default(),
            calls: Calls::new(),
            ended_b: Default::default(),
            ended_b_order: VecDeque::new(),
            messages: message::Messages::default(),
            cdrs: VecDeque::new(),
            draining: false,
            trusted: VecDeque::new(),
            trusted_conns: Default::default(),
            call_limits,
            message_limits,
            admitted: None,
            keepalives: keepalive::KeepAlives::default(),
        }
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            active_calls: self.calls.len() as u64,
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
        self.calls.len()
    }

    /// (calls, dialogs, relayed requests) in the call table: all zero once every call ended.
    pub fn call_table_sizes(&self) -> (usize, usize, usize) {
        self.calls.table_sizes()
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
        self.out.pop_front().or_else(|| self.txl.poll_transmit())
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.txl.poll_timeout(),
            self.store.next_expiry(),
            self.calls.poll_timeout(),
            self.guard.poll_timeout(),
            self.keepalives.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.txl.handle_timeout(now);
        self.guard.handle_timeout(now);
        self.drain_events(now, wall);
        self.handle_call_timers(now, wall);
        for (aor, b) in self.store.remove_expired(now) {
            self.stats.expired_bindings += 1;
            tracing::info!(target: "ferroswitch::registrar", aor = %crate::security::log_escape(&aor), contact = %crate::security::log_escape(&b.contact), "binding expired");
        }
        self.handle_keepalive_timers(now);
        self.drain_events(now, wall);
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
        self.drain_events(now, wall);
    }

    pub fn handle_inbound(&mut self, now: Instant, wall: SystemTime, inbound: Inbound) {
        let origin = inbound.origin;
        // Banned sources, floods and scanners are dropped before anything else, silently.
        let src = origin.source.ip();
        let ua = match &inbound.payload {
            Payload::Message(Message::Request(r)) => r.headers.get_str(&HeaderName::UserAgent),
            // Responses are not dropped for a ban (issue 17.11): they only matter to a
            // transaction we created, and the transaction layer drops the rest. Dropping
            // them let spoofed failures silence a banned callee's 180/200.
            Payload::Message(Message::Response(_)) => None,
            Payload::Malformed { .. } => None,
        };
        let is_request = !matches!(&inbound.payload, Payload::Message(Message::Response(_)));
        if is_request {
            // A TCP connection that has authenticated keeps working when its address is
            // banned (issue 17.11): spoofed UDP failures must not cut off a phone's
            // established connection. Floods and scanners on it are still dropped.
            let authenticated_connection = origin
                .connection
                .is_some_and(|c| self.trusted_conns.contains(&c));
            match self.guard.check_request(now, src, ua) {
                crate::security::Verdict::Drop(crate::security::DropReason::Banned)
                    if authenticated_connection => {}
                crate::security::Verdict::Drop(_) => {
                    self.stats.dropped += 1;
                    return;
                }
                crate::security::Verdict::Allow => {}
            }
        }
        match inbound.payload {
            Payload::Malformed { raw, error } => self.handle_malformed(&origin, &raw, &error),
            Payload::Message(Message::Request(req)) => {
                self.stats.requests += 1;
                self.handle_request(now, wall, origin, req);
            }
            Payload::Message(Message::Response(resp)) => {
                self.stats.responses += 1;
                if let Err(e) = self.txl.handle_response(now, resp, origin.peer()) {
                    tracing::debug!(target: "ferroswitch::engine", e = %crate::security::log_escape(&e), "response dropped");
                }
                self.drain_events(now, wall);
            }
        }
    }

    fn handle_malformed(&mut self, origin: &Origin, raw: &bytes::Bytes, error: &parse::ParseError) {
        // Answer 400 when the headers still read as a request we can address, even if its
        // start line or Content-Length is what broke (RFC 4475 §3.1.2.3, §3.1.2.7); drop the
        // rest (responses, garbage) silently as RFC 3261 §18.3 allows.
        if let Some(mut req) = parse::request_head_for_reply(raw) {
            if req.method != Method::Ack && req.headers.core().is_ok() && make_echo_safe(&mut req) {
                // The transport stamps only requests that parsed; without received/rport
                // this 400 would go to the sent-by address, unreachable behind NAT.
                let _ = stamp_received(&mut req.headers, origin.source);
                if let Some(to) = response_peer(&req, origin) {
                    let mut resp = response_to_bad(&req, 400, error.reason_phrase());
                    set_to_tag(&mut resp, &self.stateless_tag(&req));
                    self.finish_response(&mut resp);
                    self.send_stateless(to, &resp);
                    self.stats.malformed_answered += 1;
                    return;
                }
            }
        }
        self.stats.malformed_dropped += 1;
        tracing::debug!(target: "ferroswitch::engine", source = %origin.source, error = %crate::security::log_escape(error), "malformed message dropped");
    }

    fn handle_request(&mut self, now: Instant, wall: SystemTime, origin: Origin, mut req: Request) {
        let policy = Policy {
            supported: respond::SUPPORTED_TAGS,
            proxy: false,
            accepted_bodies: None,
        };
        // A control octet in what an answer copies (a bare CR in From would inject a header
        // for parsers that end lines at CR): nothing safe can be said, drop it (§18.3); in a
        // display name it only costs the display name.
        if !make_echo_safe(&mut req) {
            self.stats.malformed_dropped += 1;
            tracing::debug!(target: "ferroswitch::engine", source = %origin.source, "request with control octets in Via/From/To/Call-ID/CSeq dropped");
            return;
        }
        if let Err(rej) = validate_request(&req, &policy) {
            self.stats.rejected += 1;
            // An ACK is never answered (RFC 3261 §17.2.1 / §12.2.2); nor a request whose
            // Via leads nowhere (port 0, §18.2.2).
            if let (true, Some(to)) = (req.method != Method::Ack, response_peer(&req, &origin)) {
                let tag = self.stateless_tag(&req);
                let mut resp = rej.response_to(&req, &policy, Some(&tag));
                self.finish_response(&mut resp);
                self.send_stateless(to, &resp);
            }
            return;
        }
        let Some(dest) = response_peer(&req, &origin) else {
            self.stats.malformed_dropped += 1;
            return;
        };
        self.current = Some(origin);
        // A REGISTER without credentials is challenged statelessly, as Kamailio's registrar
        // does: no transaction lingers for Timer J, and a lost 401 is recovered by the
        // phone's retransmission, which simply gets a fresh challenge.
        if req.method == Method::Register && req.headers.get(&HeaderName::Authorization).is_none() {
            let mut resp = self.handle_register(now, wall, &req, dest);
            self.use_stateless_tag(&req, &mut resp);
            self.send_stateless(dest, &resp);
            self.current = None;
            return;
        }
        // A new INVITE or MESSAGE is admitted (or refused: 407, 403, 483 …) statelessly too:
        // one datagram in, at most one out, so a spoofed source cannot use us as a
        // reflector (admit.rs).
        if self.admit_statelessly(now, wall, &req, dest) {
            self.current = None;
            return;
        }
        // A full table answers 503 statelessly (the request is still ours to answer).
        if self.txl.len() >= self.cfg.transactions.max_transactions && req.method != Method::Ack {
            let mut resp = crate::sip::response_to(&req, 503, "Service Unavailable");
            set_to_tag(&mut resp, &self.stateless_tag(&req));
            resp.headers.push(HeaderName::RetryAfter, "5");
            self.finish_response(&mut resp);
            self.send_stateless(dest, &resp);
            self.admitted = None;
            self.current = None;
            return;
        }
        if let Err(e) = self.txl.handle_request(now, req, dest) {
            tracing::debug!(target: "ferroswitch::engine", e = %crate::security::log_escape(&e), "request not taken by the transaction layer");
        }
        self.drain_events(now, wall);
        self.admitted = None;
        self.current = None;
    }

    fn drain_events(&mut self, now: Instant, wall: SystemTime) {
        while let Some(ev) = self.txl.poll_event() {
            match ev {
                TransactionEvent::Request { key, request, from } => {
                    self.on_request(now, wall, key, request, from)
                }
                TransactionEvent::Cancel {
                    key,
                    request,
                    invite,
                    ..
                } => self.on_cancel(now, wall, key, &request, invite),
                TransactionEvent::Ack {
                    invite, request, ..
                } => self.on_ack(invite, &request),
                TransactionEvent::Response { key, response } => {
                    self.on_client_response(now, wall, key, response)
                }
                TransactionEvent::StrayResponse { response, .. } => {
                    self.on_stray_response(now, wall, response)
                }
                TransactionEvent::Timeout { key, .. } => {
                    self.on_client_failure(now, wall, &key, 408)
                }
                TransactionEvent::TransportError { key } => {
                    self.on_client_failure(now, wall, &key, 503)
                }
                TransactionEvent::Terminated { .. } => {}
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
    ) {
        let resp = match req.method {
            Method::Register => self.handle_register(now, wall, &req, from),
            Method::Options => self.options_response(&req),
            Method::Ack | Method::Cancel => return,
            _ if req.headers.to_tag().is_some() => {
                return self.handle_in_dialog(now, wall, key, req);
            }
            Method::Invite if self.draining => return self.refuse_while_draining(now, &key, &req),
            Method::Invite => return self.handle_invite(now, wall, key, req, from),
            Method::Message => return self.handle_message(now, wall, key, req),
            Method::Bye | Method::Update | Method::Info | Method::Prack => {
                // Outside a dialog these name none we know.
                self.response(&req, 481, "Call/Transaction Does Not Exist")
            }
            Method::Subscribe | Method::Notify | Method::Refer | Method::Publish => {
                let mut r = self.response(&req, 501, "Not Implemented");
                r.headers.push(HeaderName::Allow, ALLOW);
                r
            }
            Method::Other(_) => {
                let mut r = self.response(&req, 501, "Not Implemented");
                r.headers.push(HeaderName::Allow, ALLOW);
                r
            }
        };
        self.send_response(now, &key, resp);
    }

    fn on_cancel(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        cancel: &Request,
        invite: Option<TransactionKey>,
    ) {
        if let Some(id) = invite.as_ref().and_then(|k| self.calls.by_a_invite(k)) {
            let resp = self.response(cancel, 200, "OK");
            self.send_response(now, &key, resp);
            return self.on_a_cancel(now, wall, id);
        }
        let (code, phrase) = if invite.is_some() {
            (200, "OK")
        } else {
            (481, "Call/Transaction Does Not Exist")
        };
        let resp = self.response(cancel, code, phrase);
        self.send_response(now, &key, resp);
        if let Some(inv) = invite {
            if let Some(invite_req) = self.txl.request(&inv).cloned() {
                let resp = self.response(&invite_req, 487, "Request Terminated");
                self.send_response(now, &inv, resp);
            }
        }
    }

    /// A response on one of our client transactions.
    fn on_client_response(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        resp: Response,
    ) {
        if let Some((id, leg)) = self.calls.by_b_invite(&key) {
            return self.on_b_response(now, wall, id, leg, resp);
        }
        if self.on_message_answer(now, &key, resp.status) {
            return;
        }
        // Any answer to a keep-alive, even 404 or 501, proves the phone is there.
        if resp.status < 200 && self.is_keepalive(&key) {
            return;
        }
        if self.on_keepalive_end(now, &key, true) {
            return;
        }
        if self.on_refresh_response(now, wall, &key, Some(&resp)) {
            return;
        }
        if self.calls.peek_relay(&key).is_some() {
            return self.on_relay_response(now, &key, resp);
        }
        // A 2xx to an INVITE: a retransmission in a live call, or a call that is gone.
        if (200..300).contains(&resp.status)
            && resp
                .headers
                .cseq()
                .is_some_and(|c| c.method == Method::Invite)
        {
            self.unclaimed_2xx(now, wall, Some(&key), resp);
        }
    }

    /// A response no transaction claims: a retransmitted 2xx in a call (re-ACK it).
    fn on_stray_response(&mut self, now: Instant, wall: SystemTime, resp: Response) {
        if (200..300).contains(&resp.status)
            && resp
                .headers
                .cseq()
                .is_some_and(|c| c.method == Method::Invite)
        {
            self.unclaimed_2xx(now, wall, None, resp);
        }
    }

    fn send_response(&mut self, now: Instant, key: &TransactionKey, resp: Response) {
        if let Err(e) = self.txl.send_response(now, key, resp) {
            tracing::debug!(target: "ferroswitch::engine", e = %crate::security::log_escape(&e), key = %crate::security::log_escape(key), "response not sent");
        }
    }

    fn send_stateless(&mut self, to: Peer, resp: &Response) {
        self.out.push_back(Transmit {
            to,
            bytes: resp.to_bytes(),
            key: None,
        });
    }
}

/// Where responses to `req` go: its connection for TCP, RFC 3261 §18.2.2 / RFC 3581 for UDP.
/// A UDP Via that cannot be read is answered at the packet's source; `None` when the Via
/// leads to port 0 (no rport to go by): nowhere to answer (§18.2.2), the request is dropped.
fn response_peer(req: &Request, origin: &Origin) -> Option<Peer> {
    if origin.transport == Transport::Udp {
        match req.headers.top_via().map(|v| route_response(&v, origin)) {
            Some(Ok(ResponseRoute {
                addr: Some(addr), ..
            })) => return Some(Peer::new(Transport::Udp, addr)),
            Some(Err(RouteError::PortZero)) => return None,
            _ => {}
        }
    }
    Some(origin.peer())
}

impl Engine {
    /// `send` refused a transmit at once (no route, queue full): the transaction that sent it
    /// learns of it as a transport error (503).
    pub fn handle_send_error(&mut self, now: Instant, wall: SystemTime, key: &TransactionKey) {
        self.txl.handle_transport_error(now, key);
        self.drain_events(now, wall);
    }
}

#[cfg(test)]
mod tests;
