//! Trunks (`[[gateway]]`), the engine's part: where each one is (addresses the driver
//! resolved, RFC 3263, and our address as it reaches us), whether it is up, the b-leg toward
//! it for a dialled number, and recognising the requests it sends us.

use super::Engine;
use crate::auth::uac::UacCredentials;
use crate::b2bua::{GatewayLeg, LegTarget};
use crate::gateway::{PingConfig, Pinger, RegState, Registration, RegistrationConfig};
use crate::net::{Peer, Transport};
use crate::sip::{Response, Uri};
use crate::transaction::TransactionKey;
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One `[[gateway]]`, as the engine needs it (`app::engine_config` maps the config onto it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    pub name: String,
    /// The provider's host: the domain of our URIs toward it, and what the driver resolves.
    pub host: String,
    /// An explicit port (no SRV lookup then).
    pub port: Option<u16>,
    pub transport: Transport,
    pub username: String,
    pub password: String,
    /// Answer only this realm's challenges.
    pub realm: Option<String>,
    pub register: bool,
    pub expires: u32,
    pub from_user: Option<String>,
    pub caller_id_in_from: bool,
    /// OPTIONS keep-alive interval in seconds; 0: never pinged, always taken as up.
    pub ping: u32,
}

impl GatewaySpec {
    /// The host as it goes into a URI (an IPv6 literal in brackets).
    pub fn host_for_uri(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `host[:port]` as it goes into URIs.
    pub fn hostport(&self) -> String {
        let host = self.host_for_uri();
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

#[derive(Debug)]
pub(super) struct GatewayRt {
    pub spec: GatewaySpec,
    /// Where requests go, best first (resolved by the driver); empty until resolved.
    pub targets: Vec<Peer>,
    /// Index in `targets` of the one REGISTERs, pings and new calls go to now (RFC 3263
    /// §4.3: the next one after a failure); 0 again when the driver resolves another list.
    pub active: usize,
    /// Registration and ping transactions failed in a row (each moving `active` on): while
    /// it is below the number of targets, the next target is tried at once.
    pub failed: usize,
    /// Our `host:port` as the provider reaches us (Via, Contact).
    pub advertised: Option<String>,
    /// The registration we keep with it (`register = true`), once it is resolved.
    pub reg: Option<Registration>,
    /// Its OPTIONS keep-alive (`ping` > 0), once it is resolved.
    pub pinger: Option<Pinger>,
}

impl GatewayRt {
    /// False while its OPTIONS keep-alive goes unanswered (by every target in turn).
    pub fn is_up(&self) -> bool {
        self.pinger.as_ref().is_none_or(Pinger::is_up)
    }

    /// The target requests go to now.
    pub fn active_target(&self) -> Option<Peer> {
        self.targets
            .get(self.active)
            .or_else(|| self.targets.first())
            .copied()
    }

    /// Every target, the active one first and the others in their order after it (what a
    /// call tries in turn).
    fn targets_from_active(&self) -> Vec<Peer> {
        let (before, from) = self.targets.split_at(self.active.min(self.targets.len()));
        from.iter().chain(before).copied().collect()
    }

    /// A new list from the driver: kept as it is (with the active target) when it is the
    /// same list, else the first target of the new one is active.
    pub fn set_targets(&mut self, targets: Vec<Peer>) {
        if targets != self.targets {
            self.targets = targets;
            self.active = 0;
            self.failed = 0;
        }
        let n = u32::try_from(self.targets.len()).unwrap_or(u32::MAX);
        if let Some(p) = self.pinger.as_mut() {
            p.set_down_after(n);
        }
    }
}

/// Which machine of which gateway a client transaction belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GwTx {
    Register(usize),
    Ping(usize),
}

impl GwTx {
    fn gateway(self) -> usize {
        match self {
            GwTx::Register(i) | GwTx::Ping(i) => i,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Gateways {
    pub list: Vec<GatewayRt>,
    /// Client transactions of the registrations and keep-alives, and where each was sent.
    pub keys: crate::FastMap<TransactionKey, (GwTx, SocketAddr)>,
}

impl Gateways {
    pub fn new(specs: &[GatewaySpec]) -> Gateways {
        Gateways {
            list: specs
                .iter()
                .map(|s| GatewayRt {
                    spec: s.clone(),
                    targets: Vec::new(),
                    active: 0,
                    failed: 0,
                    advertised: None,
                    reg: None,
                    pinger: None,
                })
                .collect(),
            keys: Default::default(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&GatewayRt> {
        self.list.iter().find(|g| g.spec.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut GatewayRt> {
        self.list.iter_mut().find(|g| g.spec.name == name)
    }

    /// The b-leg toward gateway `name` for `number`; `None` when it is unknown, not
    /// resolved yet, or down. It goes to the active target; the others follow it in
    /// `GatewayLeg::targets`, tried in turn when it fails (RFC 3263 §4.3).
    pub fn leg(&self, name: &str, number: &str) -> Option<LegTarget> {
        let g = self.get(name)?;
        let peer = g.active_target()?;
        let advertised = g.advertised.clone()?;
        if !g.is_up() {
            return None;
        }
        let s = &g.spec;
        let user = crate::b2bua::headers::uri_user(number);
        Some(LegTarget {
            ruri: format!("sip:{user}@{}{}", s.hostport(), s.transport.uri_param()),
            peer,
            advertised,
            route: Vec::new(),
            user: None,
            gateway: Some(Arc::new(GatewayLeg {
                name: s.name.clone(),
                domain: s.host.clone(),
                number: number.to_string(),
                creds: UacCredentials {
                    username: s.username.clone(),
                    password: s.password.clone(),
                    realm: s.realm.clone(),
                },
                from_user: s.from_user.clone().unwrap_or_else(|| s.username.clone()),
                caller_id_in_from: s.caller_id_in_from,
                targets: g.targets_from_active(),
            })),
        })
    }

    /// The gateway a request comes from: its source is one of a gateway's resolved
    /// addresses (address and port), or it is addressed to the account we register with.
    pub fn recognise(
        &self,
        source: Option<SocketAddr>,
        ruri_user: Option<&str>,
    ) -> Option<&GatewaySpec> {
        if let Some(src) = source {
            if let Some(g) = self
                .list
                .iter()
                .find(|g| g.targets.iter().any(|p| p.addr == src))
            {
                return Some(&g.spec);
            }
        }
        let user = ruri_user?;
        self.list
            .iter()
            .find(|g| g.spec.register && g.spec.username == user)
            .map(|g| &g.spec)
    }
}

/// What the driver learnt of a gateway's whereabouts.
#[derive(Debug, Clone)]
pub struct GatewayRoute {
    pub targets: Vec<(SocketAddr, Transport)>,
    /// Our `host:port` as that gateway reaches us.
    pub advertised: String,
}

/// One gateway's state, for `ctl gateways` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayStatus {
    pub name: String,
    /// Where its requests go now; `None` until resolved.
    pub target: Option<SocketAddr>,
    /// `unregistered`, `registering`, `registered`, `failed 403`, or `-` without `register`.
    pub registration: String,
    /// Seconds until the binding at the provider expires, when registered.
    pub expires_in: Option<u64>,
    pub up: bool,
}

impl Engine {
    /// Every gateway's state now.
    pub fn gateways(&self, now: Instant) -> Vec<GatewayStatus> {
        self.gateways
            .list
            .iter()
            .map(|g| {
                let (registration, expires_in) = match g.reg.as_ref().map(Registration::state) {
                    None if g.spec.register => ("unresolved".to_string(), None),
                    None => ("-".to_string(), None),
                    Some(RegState::Idle) => ("unregistered".to_string(), None),
                    Some(RegState::Registering) => ("registering".to_string(), None),
                    Some(RegState::Registered { expires_at }) => (
                        "registered".to_string(),
                        Some(expires_at.saturating_duration_since(now).as_secs()),
                    ),
                    Some(RegState::Failed { status, .. }) => (format!("failed {status}"), None),
                };
                GatewayStatus {
                    name: g.spec.name.clone(),
                    target: g.active_target().map(|p| p.addr),
                    registration,
                    expires_in,
                    up: g.is_up(),
                }
            })
            .collect()
    }

    /// (name, registered, up) of every gateway, for the metrics.
    pub(super) fn gateway_flags(&self) -> Vec<(String, bool, bool)> {
        self.gateways
            .list
            .iter()
            .map(|g| {
                let registered = matches!(
                    g.reg.as_ref().map(Registration::state),
                    Some(RegState::Registered { .. })
                );
                (g.spec.name.clone(), registered, g.is_up())
            })
            .collect()
    }

    /// A gateway was (re)resolved: its registration and keep-alive start, or learn our new
    /// Contact.
    pub(super) fn gateway_resolved(&mut self, i: usize) {
        let seed_reg: u64 = self.rng.gen();
        let seed_ping: u64 = self.rng.gen();
        let ua = self.cfg.user_agent.clone();
        let node_id = self.cfg.node_id.clone();
        let Some(g) = self.gateways.list.get_mut(i) else {
            return;
        };
        let Some(adv) = g.advertised.clone() else {
            return;
        };
        let s = &g.spec;
        let tp = s.transport.uri_param();
        let user = crate::b2bua::headers::uri_user(&s.username);
        let parse = |t: String| Uri::parse(&t).ok();
        let (Some(registrar), Some(aor), Some(contact)) = (
            parse(format!("sip:{}{tp}", s.hostport())),
            parse(format!("sip:{user}@{}", s.host_for_uri())),
            parse(format!("sip:{user}@{adv}{tp}")),
        ) else {
            tracing::warn!(target: "ferroswitch::gateway", gateway = %s.name, "gateway URIs do not parse");
            return;
        };
        if s.register {
            match g.reg.as_mut() {
                Some(r) => r.update_contact(contact.clone()),
                None => {
                    g.reg = Some(Registration::new(
                        RegistrationConfig {
                            gateway: s.name.clone(),
                            registrar_uri: registrar.clone(),
                            aor: aor.clone(),
                            contact: contact.clone(),
                            expires: s.expires,
                            creds: UacCredentials {
                                username: s.username.clone(),
                                password: s.password.clone(),
                                realm: s.realm.clone(),
                            },
                            transport: s.transport,
                            user_agent: ua.clone(),
                            node_id: node_id.clone(),
                        },
                        seed_reg,
                    ))
                }
            }
        }
        if s.ping > 0 && g.pinger.is_none() {
            let down_after = u32::try_from(g.targets.len()).unwrap_or(u32::MAX);
            let mut pinger = Pinger::new(
                PingConfig {
                    gateway: s.name.clone(),
                    target: registrar,
                    from: aor,
                    contact,
                    transport: s.transport,
                    interval: Duration::from_secs(u64::from(s.ping)),
                    user_agent: ua,
                    node_id,
                },
                seed_ping,
            );
            pinger.set_down_after(down_after);
            g.pinger = Some(pinger);
        }
    }

    /// Sends whatever the registrations and keep-alives have due.
    pub(super) fn poll_gateways(&mut self, now: Instant) {
        for i in 0..self.gateways.list.len() {
            loop {
                let g = &mut self.gateways.list[i];
                let Some(peer) = g.active_target() else {
                    break;
                };
                let (req, kind) = match (
                    g.reg.as_mut().and_then(|r| r.poll_request(now)),
                    g.pinger.as_mut(),
                ) {
                    (Some(r), _) => (r, GwTx::Register(i)),
                    (None, Some(p)) => match p.poll_request(now) {
                        Some(r) => (r, GwTx::Ping(i)),
                        None => break,
                    },
                    (None, None) => break,
                };
                let Ok(key) = TransactionKey::client_for_request(&req) else {
                    break;
                };
                match self.txl.send_request(now, req, peer) {
                    Ok(_) => {
                        self.gateways.keys.insert(key, (kind, peer.addr));
                    }
                    Err(e) => {
                        tracing::debug!(target: "ferroswitch::gateway", e = %crate::security::log_escape(&e), "gateway request not sent");
                        self.gateway_tx_failed(now, kind, 503);
                        self.fail_over_gateway(kind, peer.addr, 503);
                    }
                }
            }
        }
    }

    /// When a registration or keep-alive wants to send next.
    pub(super) fn gateways_timeout(&self) -> Option<Instant> {
        self.gateways
            .list
            .iter()
            .filter(|g| !g.targets.is_empty())
            .flat_map(|g| {
                [
                    g.reg.as_ref().and_then(Registration::poll_timeout),
                    g.pinger.as_ref().and_then(Pinger::poll_timeout),
                ]
            })
            .flatten()
            .min()
    }

    /// A response on a client transaction: true when it was a gateway's.
    pub(super) fn on_gateway_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        resp: &Response,
    ) -> bool {
        let Some(&(kind, sent_to)) = self.gateways.keys.get(key) else {
            return false;
        };
        if resp.status < 200 {
            return true;
        }
        self.gateways.keys.remove(key);
        match kind {
            GwTx::Register(i) => {
                if let Some(r) = self.gateways.list.get_mut(i).and_then(|g| g.reg.as_mut()) {
                    r.handle_response(now, resp);
                }
                if (200..300).contains(&resp.status) {
                    self.learn_public_address(i, resp);
                }
            }
            GwTx::Ping(i) => {
                if let Some(p) = self
                    .gateways
                    .list
                    .get_mut(i)
                    .and_then(|g| g.pinger.as_mut())
                {
                    p.handle_response(now, resp);
                }
            }
        }
        // RFC 3263 §4.3: a 503 (and for a ping a 408, which it counts as a miss too) says
        // this server is not there for us: the next target is tried. Anything else is an
        // answer from the gateway.
        let miss = match kind {
            GwTx::Register(_) => resp.status == 503,
            GwTx::Ping(_) => matches!(resp.status, 408 | 503),
        };
        if miss {
            self.fail_over_gateway(kind, sent_to, resp.status);
        } else if let Some(g) = self.gateways.list.get_mut(kind.gateway()) {
            g.failed = 0;
        }
        self.poll_gateways(now);
        true
    }

    /// RFC 3581: the provider's answer says where our REGISTER came from (`received`,
    /// `rport` of the top Via). When that is not the address we advertise (the switch is
    /// behind NAT), it becomes our Contact and Via toward this gateway: the binding is
    /// renewed with it at once, and calls through the gateway use it too.
    fn learn_public_address(&mut self, i: usize, resp: &Response) {
        let Some(via) = resp.headers.vias().into_iter().next() else {
            return;
        };
        let Some(g) = self.gateways.list.get_mut(i) else {
            return;
        };
        let Some(current) = g.advertised.clone() else {
            return;
        };
        let Ok(adv) = current.parse::<SocketAddr>() else {
            return;
        };
        let ip = via
            .received()
            .and_then(|r| r.trim_matches(|c| c == '[' || c == ']').parse().ok())
            .unwrap_or(adv.ip());
        let port = via.rport().flatten().unwrap_or(adv.port());
        let public = SocketAddr::new(ip, port);
        if public == adv {
            return;
        }
        tracing::info!(target: "ferroswitch::gateway", gateway = %g.spec.name, from = %adv, to = %public, "the provider sees us at another address (NAT): using it in our Contact");
        g.advertised = Some(public.to_string());
        self.gateway_resolved(i);
    }

    /// A client transaction failed (408, 503): true when it was a gateway's.
    pub(super) fn on_gateway_failure(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
    ) -> bool {
        let Some((kind, sent_to)) = self.gateways.keys.remove(key) else {
            return false;
        };
        self.gateway_tx_failed(now, kind, status);
        self.fail_over_gateway(kind, sent_to, status);
        self.poll_gateways(now);
        true
    }

    /// RFC 3263 §4.3: a registration or ping transaction sent to `failed` got no answer
    /// (Timer F, a transport error) or a 503. When `failed` is still the active target the
    /// next one becomes active (wrapping); while targets remain that have not failed in this
    /// run of failures, the registration or ping is sent again at once (to the new target),
    /// else it keeps its own schedule (back-off, next interval). True when it goes again now.
    fn fail_over_gateway(&mut self, kind: GwTx, failed: SocketAddr, status: u16) -> bool {
        let Some(g) = self.gateways.list.get_mut(kind.gateway()) else {
            return false;
        };
        let n = g.targets.len();
        if n == 0 {
            return false;
        }
        if g.active_target().is_some_and(|p| p.addr == failed) {
            g.failed = g.failed.saturating_add(1);
            if n > 1 {
                g.active = (g.active + 1) % n;
                let next = g.active_target().map(|p| p.addr);
                let what = match kind {
                    GwTx::Register(_) => "REGISTER",
                    GwTx::Ping(_) => "OPTIONS",
                };
                tracing::warn!(target: "ferroswitch::gateway", gateway = %g.spec.name, request = what, status, %failed, next = ?next, "gateway target failed: using the next one");
            }
        }
        if g.failed >= n {
            return false;
        }
        match kind {
            GwTx::Register(_) => g.reg.as_mut().is_some_and(Registration::retry_now),
            GwTx::Ping(_) => g.pinger.as_mut().is_some_and(Pinger::ping_now),
        }
    }

    fn gateway_tx_failed(&mut self, now: Instant, kind: GwTx, status: u16) {
        match kind {
            GwTx::Register(i) => {
                if let Some(r) = self.gateways.list.get_mut(i).and_then(|g| g.reg.as_mut()) {
                    r.handle_failure(now, status);
                }
            }
            GwTx::Ping(i) => {
                if let Some(p) = self
                    .gateways
                    .list
                    .get_mut(i)
                    .and_then(|g| g.pinger.as_mut())
                {
                    p.handle_failure(now, status);
                }
            }
        }
    }

    /// Shutdown: every registration is withdrawn (Expires: 0), not waited for.
    pub(super) fn unregister_gateways(&mut self, now: Instant) {
        for i in 0..self.gateways.list.len() {
            let g = &mut self.gateways.list[i];
            let Some(peer) = g.active_target() else {
                continue;
            };
            let Some(req) = g.reg.as_mut().and_then(|r| r.unregister(now)) else {
                continue;
            };
            if let Ok(key) = TransactionKey::client_for_request(&req) {
                if self.txl.send_request(now, req, peer).is_ok() {
                    self.gateways
                        .keys
                        .insert(key, (GwTx::Register(i), peer.addr));
                }
            }
        }
    }
}
