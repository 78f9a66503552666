//! Where a call goes when the dialplan says more than "ring this user": the targets of a
//! b-leg (a registered contact or a trunk), what follows when a step of the call fails
//! (the next member of a sequential group, forwarding on busy or on no answer, a callee's
//! 3xx), and the caller ID a route puts on its legs.
//!
//! The core never routes by itself: when a step of a call fails and something follows, it
//! asks the engine with `Command::Route` (a user to look up, or a number to run through a
//! context of the dialplan) and the engine answers at once with `continue_call`. Every
//! continuation counts a hop; after `MAX_HOPS` nothing more is followed, so forwarding
//! loops and redirect chains end with the last failure instead of ringing for ever.

use super::core::{B2bua, Command};
use super::{BLeg, BLegState, CallId, CallState, CallTimer, Route};
use crate::auth::uac::{UacAuth, UacCredentials};
use crate::cdr::{HangupCause, Party, Side};
use crate::net::Peer;
use crate::registrar::Binding;
use crate::sip::reason_phrase;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How many times one call may be sent somewhere else (forwarding, 3xx, group steps).
pub const MAX_HOPS: u8 = 5;

/// Where one b-leg goes.
#[derive(Debug, Clone)]
pub struct LegTarget {
    /// Its Request-URI.
    pub ruri: String,
    /// Where the INVITE is sent.
    pub peer: Peer,
    /// Our `host:port` as that peer reaches us (Via, Contact).
    pub advertised: String,
    /// A trunk: its identity rules and credentials.
    pub gateway: Option<Arc<GatewayLeg>>,
    /// A pre-loaded route set (RFC 3261 §8.1.2): the Route header values of the INVITE, in
    /// order. A registered contact's RFC 3327 Path; empty for everything else.
    pub route: Vec<String>,
    /// The user of ours this contact is registered to (a group member, a forward target):
    /// whose dialplan context a transfer from this leg runs in. `None` for a trunk, or a
    /// contact whose user the router did not say.
    pub user: Option<String>,
}

impl From<&Binding> for LegTarget {
    fn from(b: &Binding) -> LegTarget {
        LegTarget {
            ruri: b.contact.clone(),
            peer: super::binding_peer(b),
            advertised: b.advertised.clone(),
            gateway: None,
            route: b.path.clone(),
            user: None,
        }
    }
}

impl LegTarget {
    /// A contact of our user `user`.
    pub fn of_user(b: &Binding, user: &str) -> LegTarget {
        LegTarget {
            user: Some(user.to_string()),
            ..LegTarget::from(b)
        }
    }
}

/// What a b-leg toward a trunk needs besides its address.
#[derive(Debug)]
pub struct GatewayLeg {
    /// The `[[gateway]]` name (logs, CDR).
    pub name: String,
    /// The provider's domain: the host part of To, From and P-Asserted-Identity.
    pub domain: String,
    /// The number dialled, after the route's rewrite.
    pub number: String,
    pub creds: UacCredentials,
    /// User part of From unless the caller's number goes there.
    pub from_user: String,
    pub caller_id_in_from: bool,
    /// Every address of the trunk, in the order they are tried (RFC 3263 §4.3): the first
    /// is the leg's own `peer`; an INVITE that times out, cannot be sent or gets a 503 is
    /// sent again to the next one (`fail_over`). Empty: no other address to try.
    pub targets: Vec<Peer>,
}

/// The caller ID a route presents (number and name; either may be kept from the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerId {
    pub number: Option<String>,
    pub name: Option<String>,
}

/// A route with more to it than one user's contacts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Who the call is for (CDR, To of user legs).
    pub callee: Party,
    /// The first step: rung in parallel.
    pub legs: Vec<LegTarget>,
    /// When the first step gives up, if sooner than the call's own timeout.
    pub timeout: Option<Duration>,
    /// What follows a failed step, in order.
    pub next: Vec<Next>,
    pub caller_id: Option<CallerId>,
    /// Status for the caller when the plan has no legs and nothing follows (480).
    pub empty_status: u16,
}

/// What may follow a failed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A sequential group's next member (a user of ours), rung for `timeout`.
    Member { user: String, timeout: Duration },
    /// Forwarding when the step ended busy (486, 600).
    OnBusy { number: String, context: String },
    /// Forwarding when nobody answered (the step's timeout, 480, 408).
    OnNoAnswer { number: String, context: String },
    /// A callee's 3xx: its Contact's user, run through the call's context.
    Redirect { number: String },
}

/// What the core asks the engine to route (`Command::Route`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub call: CallId,
    /// The call's domain (where its users' contacts are registered).
    pub domain: String,
    pub query: Query,
    /// Continuations so far, this one included.
    pub hops: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A user of ours, directly (group members).
    User(String),
    /// A number through a context of the dialplan (forwarding, 3xx).
    Dial { context: String, number: String },
}

/// A call's routing state beyond its first step.
#[derive(Debug, Default)]
pub struct PlanState {
    /// Index in `Call::b` of the current step's first leg.
    pub step_start: usize,
    pub next: VecDeque<Next>,
    pub hops: u8,
    /// The current step's own deadline passed.
    pub step_timed_out: bool,
    pub step_at: Option<Instant>,
    /// The step's timeout (Member, no-answer forwarding) for the step being routed.
    pub pending_timeout: Option<Duration>,
    pub caller_id: Option<CallerId>,
    /// The body b-legs are offered (the caller's SDP, or our relay's in its place).
    pub offer: Option<bytes::Bytes>,
    /// A failure of a step that never rang (no such user, not registered): counted with the
    /// legs' when the call gives up.
    pub routed_failure: Option<u16>,
}

/// Auth state of a b-leg toward a trunk.
#[derive(Debug)]
pub struct LegAuth {
    pub gateway: Arc<GatewayLeg>,
    pub state: UacAuth,
    /// Challenges answered on this leg (a provider that keeps challenging is not followed).
    pub tries: u8,
    /// Index in `gateway.targets` of the address this leg is sent to.
    pub target: usize,
}

impl B2bua {
    /// The engine's answer to a `Command::Route`: the next step of call `id` goes to
    /// `route`; a route that reaches nobody lets the following step try, or ends the call.
    pub fn continue_call(&mut self, now: Instant, wall: SystemTime, id: CallId, route: Route) {
        let _span = self.enter(id);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::Ringing || call.winner.is_some() || call.cancelled {
            return;
        }
        let plan = call.plan.get_or_insert_with(Default::default);
        let timeout = plan.pending_timeout.take();
        let (legs, next, status) = match route {
            Route::User { callee, bindings } => (
                bindings
                    .iter()
                    .map(|b| LegTarget::of_user(b, &callee.user))
                    .collect(),
                vec![],
                480,
            ),
            Route::Plan(p) => (p.legs, p.next, p.empty_status),
            Route::NoSuchUser { .. } => (vec![], vec![], 404),
            Route::Reject { status, .. } => (vec![], vec![], status),
            Route::Redirect { .. } => (vec![], vec![], 480),
        };
        for n in next.into_iter().rev() {
            plan.next.push_front(n);
        }
        if legs.is_empty() {
            plan.routed_failure = Some(status);
            return self.step_failed(wall, id);
        }
        let start = call.b.len();
        plan.step_start = start;
        plan.step_timed_out = false;
        // The new step gets the offer the first one got (our relay ports when anchored).
        let body = plan
            .offer
            .clone()
            .or_else(|| call.b.first().map(|b| b.invite.body.clone()))
            .unwrap_or_else(|| call.a.invite.body.clone());
        self.start_legs(now, id, &legs, timeout, &body);
        let started = self.calls.get(id).map_or(0, |c| c.b.len() - start);
        if started == 0 {
            self.step_failed(wall, id);
        }
    }

    /// Sends the INVITEs of a new step to `legs` (the offer the first step got), re-arms the
    /// call's no-answer timer and, with `timeout`, the step's own.
    pub(super) fn start_legs(
        &mut self,
        now: Instant,
        id: CallId,
        legs: &[LegTarget],
        timeout: Option<Duration>,
        body: &bytes::Bytes,
    ) {
        let call_timeout = self.cfg.calls.call_timeout;
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let who = super::setup::LegIdentity::of(call, &call.callee);
        let first = call.b.len();
        let new = self.send_b_invites(id, &who, legs, body, first);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.first_b_call_id.is_none() {
            call.first_b_call_id = new
                .first()
                .map(|b| b.invite.headers.call_id().unwrap_or_default().to_string());
        }
        call.b.extend(new);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let at = now + call_timeout;
        call.no_answer_at = Some(at);
        self.calls.schedule(at, id, CallTimer::NoAnswer);
        if let Some(t) = timeout.filter(|t| *t < call_timeout) {
            let Some(call) = self.calls.get_mut(id) else {
                return;
            };
            let at = now + t;
            if let Some(p) = call.plan.as_mut() {
                p.step_at = Some(at);
            }
            self.calls.schedule(at, id, CallTimer::Step);
        }
    }

    /// The current step's own deadline: its legs are cancelled and what follows a step that
    /// was not answered runs (or, with nothing to follow, the call ends as unanswered).
    pub(super) fn step_timeout(&mut self, wall: SystemTime, id: CallId) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::Ringing || call.winner.is_some() {
            return;
        }
        let Some(plan) = call.plan.as_mut() else {
            return;
        };
        plan.step_at = None;
        plan.step_timed_out = true;
        let start = plan.step_start;
        let legs = call.b.len();
        for i in start..legs {
            self.cancel_b(id, i);
        }
        self.step_failed(wall, id);
    }

    /// The current step has no leg left ringing: the next applicable continuation is asked
    /// for (`Command::Route`), or the call ends with the best failure it saw.
    pub(super) fn step_failed(&mut self, wall: SystemTime, id: CallId) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::Ringing || call.winner.is_some() || call.cancelled {
            return;
        }
        let start = call.plan.as_ref().map_or(0, |p| p.step_start);
        let step_best =
            super::best_response(call.b[start.min(call.b.len())..].iter().filter_map(|l| {
                match l.state {
                    BLegState::Failed(s) => Some(s),
                    _ => None,
                }
            }));
        let routed = call.plan.as_ref().and_then(|p| p.routed_failure);
        let timed_out = call.plan.as_ref().is_some_and(|p| p.step_timed_out);
        let step_status = step_best.or(routed).unwrap_or(480);
        let busy = matches!(step_status, 486 | 600);
        let unanswered = timed_out || matches!(step_status, 480 | 408 | 404 | 410 | 487);
        let context = call.context.clone();
        let domain = call.domain.clone();
        if let Some(plan) = call.plan.as_mut() {
            plan.routed_failure = None;
            while let Some(n) = plan.next.pop_front() {
                let (query, timeout) = match n {
                    Next::Member { user, timeout } => (Query::User(user), Some(timeout)),
                    Next::OnBusy { number, context } if busy => {
                        (Query::Dial { context, number }, None)
                    }
                    Next::OnNoAnswer { number, context } if unanswered => {
                        (Query::Dial { context, number }, None)
                    }
                    Next::Redirect { number } => (
                        Query::Dial {
                            context: context.clone(),
                            number,
                        },
                        None,
                    ),
                    _ => continue,
                };
                if plan.hops >= MAX_HOPS {
                    tracing::info!(target: "ferroswitch::call", call = id, "too many hops: not followed");
                    plan.next.clear();
                    break;
                }
                plan.hops += 1;
                plan.pending_timeout = timeout;
                let hops = plan.hops;
                tracing::info!(target: "ferroswitch::call", call = id, ?query, hops, "next step");
                self.out.push_back(Command::Route(Lookup {
                    call: id,
                    domain,
                    query,
                    hops,
                }));
                return;
            }
        }
        // Nothing follows: the caller gets the best failure, once every leg has one.
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let pending = call.b[start.min(call.b.len())..]
            .iter()
            .any(|l| matches!(l.state, BLegState::Calling | BLegState::Early));
        if pending {
            return;
        }
        // A redirect that was followed is not the call's failure: what came of it is.
        let failures = call.b.iter().filter_map(|l| match l.state {
            BLegState::Failed(s) => Some(s),
            _ => None,
        });
        let failures: Vec<u16> = failures.chain(routed).collect();
        let final_ones = failures.iter().copied().filter(|s| !(300..400).contains(s));
        let best = super::best_response(final_ones)
            .or_else(|| super::best_response(failures.iter().copied()))
            .unwrap_or(480);
        let best = if timed_out && step_best.is_none() {
            480
        } else {
            best
        };
        let (cause, best) = if (300..400).contains(&best) {
            // A redirect we did not follow: for the caller the callee is unavailable.
            (HangupCause::NoUserResponse, 480)
        } else if timed_out && best == 480 {
            (HangupCause::NoAnswer, 480)
        } else {
            (HangupCause::from_sip_status(best), best)
        };
        if call.end.is_none() {
            call.end = Some((cause, best, Side::Callee));
        }
        call.state = CallState::Ending;
        call.no_answer_at = None;
        let out = self.a_response(id, best, reason_phrase(best), None);
        self.send_a(id, out);
        self.maybe_finish(wall, id);
    }
}

impl B2bua {
    /// A 401/407 on a b-leg toward a trunk: the same INVITE again with the gateway's
    /// credentials (CSeq + 1, a new branch). False when the leg has none, the challenge
    /// cannot be answered, or the provider refused the answer already.
    pub(super) fn answer_challenge(
        &mut self,
        id: CallId,
        leg: usize,
        resp: &crate::sip::Response,
    ) -> bool {
        let branch = self.our_branch();
        let cnonce = format!("{:016x}", rand::Rng::gen::<u64>(&mut self.rng));
        let Some(call) = self.calls.get_mut(id) else {
            return false;
        };
        if call.state != CallState::Ringing || call.cancelled {
            return false;
        }
        let Some(b) = call.b.get_mut(leg) else {
            return false;
        };
        if !matches!(b.state, BLegState::Calling | BLegState::Early) {
            return false;
        }
        let Some(auth) = b.auth.as_mut() else {
            return false;
        };
        if auth.tries >= 2 {
            tracing::warn!(target: "ferroswitch::gateway", gateway = %auth.gateway.name, status = resp.status, "provider refused our credentials for a call");
            return false;
        }
        let header = match auth
            .state
            .answer(&auth.gateway.creds, &b.invite, resp, &cnonce)
        {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(target: "ferroswitch::gateway", gateway = %auth.gateway.name, status = resp.status, reason = %e, "challenge not answered");
                return false;
            }
        };
        auth.tries += 1;
        let invite = crate::auth::uac::retry(&b.invite, header, &branch);
        let old = b.key.clone();
        let peer = b.peer;
        let Some(key) = self.send_request(invite.clone(), peer) else {
            return false;
        };
        self.calls.remove_b_invite(&old);
        self.calls.add_b_invite(key.clone(), id, leg);
        if let Some(b) = self.calls.get_mut(id).and_then(|c| c.b.get_mut(leg)) {
            b.key = key;
            b.invite = invite;
        }
        true
    }

    /// RFC 3263 §4.3: a b-leg toward a trunk whose INVITE timed out (Timer B), could not be
    /// sent, or got a 503 is tried again at the trunk's next address: a new b-leg (new
    /// client transaction and branch) joins the current step with the same offer, while the
    /// caller keeps waiting; each address is tried at most once per call. False (nothing
    /// done) when the leg is not a trunk's, is not pending, the call no longer rings, no
    /// address is left, or the new INVITE could not be sent: the failure then stands.
    /// On true the failed leg is still to be marked failed by the caller (`b_failed`).
    pub(super) fn fail_over(&mut self, now: Instant, id: CallId, leg: usize, status: u16) -> bool {
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        if call.state != CallState::Ringing || call.winner.is_some() || call.cancelled {
            return false;
        }
        let Some(b) = call.b.get(leg) else {
            return false;
        };
        if !matches!(b.state, BLegState::Calling | BLegState::Early) {
            return false;
        }
        let Some(auth) = b.auth.as_ref() else {
            return false;
        };
        let next = auth.target + 1;
        let Some(&peer) = auth.gateway.targets.get(next) else {
            return false;
        };
        let target = LegTarget {
            ruri: b.invite.uri_str().unwrap_or_default().to_string(),
            peer,
            advertised: b.advertised.clone(),
            gateway: Some(auth.gateway.clone()),
            route: Vec::new(),
            user: None,
        };
        let body = b.invite.body.clone();
        tracing::warn!(target: "ferroswitch::gateway", call = id, gateway = %auth.gateway.name, status, failed = %b.peer.addr, next = %peer.addr, "trunk address failed: trying the next one");
        let before = call.b.len();
        self.start_legs(now, id, &[target], None, &body);
        let Some(new) = self.calls.get_mut(id).and_then(|c| c.b.get_mut(before)) else {
            return false;
        };
        if let Some(a) = new.auth.as_mut() {
            a.target = next;
        }
        true
    }

    pub(super) fn is_trunk_leg(&self, id: CallId, leg: usize) -> bool {
        self.calls
            .get(id)
            .and_then(|c| c.b.get(leg))
            .is_some_and(|b| b.auth.is_some())
    }

    /// A callee's 3xx: its first Contact's user is dialled next, through the call's context
    /// (once the rest of the step has failed too), while hops remain.
    pub(super) fn follow_redirect(&mut self, id: CallId, resp: &crate::sip::Response) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::Ringing || call.cancelled {
            return;
        }
        let number = resp
            .headers
            .contacts()
            .ok()
            .into_iter()
            .flatten()
            .find_map(|c| c.address().and_then(|na| na.uri.user().map(str::to_string)));
        let Some(number) = number.filter(|n| !n.is_empty()) else {
            return;
        };
        let plan = call.plan.get_or_insert_with(Default::default);
        if plan.hops >= MAX_HOPS {
            return;
        }
        tracing::info!(target: "ferroswitch::call", call = id, to = %crate::security::log_escape(&number), "following a redirect");
        plan.next.push_front(Next::Redirect { number });
    }
}

impl BLeg {
    pub(super) fn new(
        key: crate::transaction::TransactionKey,
        invite: crate::sip::Request,
        t: LegTarget,
    ) -> BLeg {
        BLeg {
            key,
            invite,
            peer: t.peer,
            advertised: t.advertised,
            state: BLegState::Calling,
            dialog: None,
            ack: None,
            ack_waits_for_caller: false,
            session_timer: None,
            answer_sdp: None,
            allows_update: false,
            user: t.user,
            auth: t.gateway.map(|gateway| {
                Box::new(LegAuth {
                    gateway,
                    state: UacAuth::default(),
                    tries: 0,
                    target: 0,
                })
            }),
        }
    }
}
