//! A new call: the caller's INVITE is admitted (`admit`: Max-Forwards, loops, 407 before
//! anything is routed), routed to the callee's registered contacts (404 and 480 leave a CDR),
//! held to the per-user and per-source limits, and a b-leg INVITE is sent to each contact in
//! parallel — a new dialog with a new Call-ID, the caller's identity in From,
//! Remote-Party-ID and (only when authenticated) P-Asserted-Identity, anonymous when the
//! caller asked for privacy, and the SDP passed through unchanged. Nothing the caller wrote
//! reaches the callee unless it is valid for its header (`b2bua::headers`).

use super::core::B2bua;
use super::headers::{clean_value, quoted, uri_user};
use super::plan::{LegTarget, PlanState};
use super::respond::{ALLOW, SUPPORTED};
use super::{ALeg, Admitted, BLeg, Call, CallId, CallState, Command, Over, Reject};
use crate::cdr::{CdrRecord, HangupCause, Party, Side};
use crate::dialog::ids::{new_call_id_with, new_tag_with};
use crate::dialog::{NextHop, SessionTimer, ViaSpec};
use crate::net::{Peer, Transport};
use crate::registrar::Binding;
use crate::sip::{HeaderName, Request};
use crate::transaction::TransactionKey;
use rand::Rng;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

/// Where a new INVITE or MESSAGE came from, as the engine received it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Where responses and our in-dialog requests go.
    pub from: Peer,
    /// Our socket it came in on: the address we advertise in Via and Contact.
    pub local: SocketAddr,
    pub transport: Transport,
    /// The address per-source limits count it against; `None` for allow-listed sources
    /// (trunks, monitors: `[security] allow`), whose users are still bounded per user.
    pub limited_source: Option<IpAddr>,
}

/// Where the Request-URI's user leads: the engine's routing (the users directory and the
/// location store), done after admission.
#[derive(Debug, Clone)]
pub enum Route {
    /// No such user, or a disabled one: 404.
    NoSuchUser { user: String },
    /// A user of ours and the contacts registered for it now (none: 480).
    User {
        callee: Party,
        bindings: Vec<Binding>,
    },
    /// The dialplan's richer answers: groups, trunks, forwarding (`plan`).
    Plan(Box<super::plan::Plan>),
    /// The dialplan refuses the call with `status` (and `reason`, else the standard phrase).
    Reject {
        callee: Party,
        status: u16,
        reason: Option<String>,
    },
    /// The dialplan redirects the caller (302 with this Contact).
    Redirect { callee: Party, contact: String },
}

/// Why a call is refused before anything rings.
enum Refusal {
    Reject(Reject),
    /// A dialplan `reject` action.
    Dialplan {
        status: u16,
        reason: Option<String>,
    },
    /// A dialplan `redirect` action: 302 with this Contact.
    Redirect(String),
}

impl From<Reject> for Refusal {
    fn from(r: Reject) -> Refusal {
        Refusal::Reject(r)
    }
}

/// What the call core asks the router in the middle of a call (a transfer's Refer-To):
/// where `dialled` leads, in the transferring user's dialplan context, for a call of
/// `domain`.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    pub dialled: &'a str,
    /// The transferring user (the authenticated caller, or the user who answered the
    /// b-leg): its dialplan context applies; a name that is no user of ours gets `public`.
    pub by: &'a str,
    pub domain: &'a str,
}

/// The engine's routing as the call core sees it: the engine passes one in with every
/// in-dialog request (`B2bua::handle_dialog_request`), so the core never calls the engine.
/// Today the users directory and the location store; the dialplan takes its place.
pub type Router<'a> = &'a mut dyn FnMut(RouteQuery<'_>) -> Route;

/// Header values we copy from the caller's INVITE to the callee's.
const COPIED: &[HeaderName] = &[HeaderName::ContentType, HeaderName::Subject];

impl B2bua {
    /// An admitted out-of-dialog INVITE (no To tag) on server transaction `key`, routed by
    /// the engine (`route`). Every attempt from here on leaves a CDR, as FreeSWITCH writes one
    /// for every call that passed authentication.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_invite(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        req: Request,
        arrival: Arrival,
        adm: Admitted,
        route: Route,
    ) {
        let (ruri, realm, caller_party) = (adm.ruri, adm.realm, adm.caller);
        let (callee_party, legs, plan) = match route {
            Route::NoSuchUser { user } => {
                let callee = Party {
                    user,
                    display_name: None,
                };
                return self.refuse_call(
                    wall,
                    arrival.transport,
                    &key,
                    &req,
                    (caller_party, callee),
                    Refusal::from(Reject::NotFound),
                );
            }
            Route::Reject {
                callee,
                status,
                reason,
            } => {
                let refusal = Refusal::Dialplan { status, reason };
                let parties = (caller_party, callee);
                return self.refuse_call(wall, arrival.transport, &key, &req, parties, refusal);
            }
            Route::Redirect { callee, contact } => {
                let refusal = Refusal::Redirect(contact);
                let parties = (caller_party, callee);
                return self.refuse_call(wall, arrival.transport, &key, &req, parties, refusal);
            }
            Route::User { callee, bindings } => {
                let legs: Vec<LegTarget> = bindings
                    .iter()
                    .map(|b| LegTarget::of_user(b, &callee.user))
                    .collect();
                (callee, legs, None)
            }
            Route::Plan(p) => {
                let p = *p;
                let state = PlanState {
                    next: p.next.into_iter().collect(),
                    caller_id: p.caller_id,
                    routed_failure: p.legs.is_empty().then_some(p.empty_status),
                    ..Default::default()
                };
                (p.callee, p.legs, Some((Box::new(state), p.timeout)))
            }
        };
        if self.calls.len() >= self.cfg.calls.max_calls {
            let resp = self.reject_response(&req, Reject::TooManyCalls);
            return self.send_response(&key, resp);
        }
        let a_timer = match self.caller_session_timer(&req) {
            Ok(t) => t,
            Err(min_se) => {
                let mut resp = crate::dialog::session_timer::too_small_response(&req, min_se);
                let tag = new_tag_with(&mut self.rng);
                crate::sip::set_to_tag(&mut resp, &tag);
                self.finish_response(&mut resp);
                return self.send_response(&key, resp);
            }
        };
        if legs.is_empty() && plan.as_ref().is_none_or(|(p, _)| p.next.is_empty()) {
            let rej = match plan.as_ref().and_then(|(p, _)| p.routed_failure) {
                Some(status) if status != 480 => Refusal::Dialplan {
                    status,
                    reason: None,
                },
                _ => Refusal::from(Reject::NotRegistered),
            };
            let parties = (caller_party, callee_party);
            return self.refuse_call(wall, arrival.transport, &key, &req, parties, rej);
        }
        let limited_user = adm.authenticated.then_some(caller_party.user.as_str());
        let hold = match self
            .call_limits
            .try_acquire(limited_user, arrival.limited_source)
        {
            Ok(h) => h,
            Err(over) => {
                return self.over_limit(now, &key, &req, &caller_party.user, arrival, over, true)
            }
        };
        // Media anchoring: the relay session and the body the callee gets (our ports).
        let (media, b_body) =
            match self.anchor_new_offer(now, arrival.local.ip(), &req.headers, &req.body) {
                Ok(Some((m, body))) => (Some(m), body),
                Ok(None) => (None, req.body.clone()),
                Err(rej) => {
                    self.call_limits.release(hold);
                    let parties = (caller_party, callee_party);
                    let rej = Refusal::from(rej);
                    return self.refuse_call(wall, arrival.transport, &key, &req, parties, rej);
                }
            };
        let caller_private = wants_privacy(&req);

        let a_adv = advertised(arrival.local, ruri.host(), arrival.transport);
        let id = self.calls.next_id();
        let local_tag = new_tag_with(&mut self.rng);
        let a_sdp = (media.is_none() && super::media::is_sdp(&req.headers, &req.body))
            .then(|| req.body.clone());
        let mut call = Call {
            id,
            state: CallState::Ringing,
            a: ALeg {
                invite_key: key,
                invite: req,
                peer: arrival.from,
                local_tag,
                advertised: a_adv,
                dialog: None,
                ok: None,
                ok_interval: self.cfg.timers.t1,
                ok_give_up: None,
                session_timer: a_timer,
            },
            b: Vec::with_capacity(legs.len()),
            winner: None,
            caller: caller_party,
            callee: callee_party,
            domain: realm,
            start: wall,
            answer: None,
            end: None,
            ended_at: None,
            cdr_written: false,
            cancelled: false,
            first_b_call_id: None,
            no_answer_at: Some(now + self.cfg.calls.call_timeout),
            ok_next: None,
            refresh_at: [None; 2],
            expire_at: [None; 2],
            reinvite: None,
            reinvite_ok_next: None,
            hold: Some(hold),
            caller_authenticated: adm.authenticated,
            caller_private,
            span: tracing::info_span!(target: "ferroswitch::call", "call", id),
            bypass_sdp: [a_sdp, None],
            media,
            media_ip: arrival.local.ip(),
            context: adm.context,
            plan: None,
            transfer: None,
        };
        if let Some(m) = &call.media {
            self.media_calls.insert(m.alloc.id, id);
        }
        let _span = call.span.clone().entered();
        tracing::info!(
            target: "ferroswitch::call",
            call = id, caller = %crate::security::log_escape(&call.caller.user), callee = %crate::security::log_escape(&call.callee.user),
            contacts = legs.len(), "new call"
        );
        let step_timeout = match plan {
            Some((mut state, timeout)) => {
                state.offer = Some(b_body.clone());
                call.plan = Some(state);
                timeout
            }
            None => None,
        };
        call.no_answer_at = None;
        self.calls.insert(call);
        self.start_legs(now, id, &legs, step_timeout, &b_body);
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if call.b.is_empty() && call.plan.as_ref().is_none_or(|p| p.next.is_empty()) {
            // No b-leg could be built: nothing rings.
            let Some(mut call) = self.calls.remove(id) else {
                return;
            };
            if let Some(h) = call.hold.take() {
                self.call_limits.release(h);
            }
            if let Some(m) = call.media.take() {
                self.media_calls.remove(&m.alloc.id);
                if let Some(relay) = self.media.as_mut() {
                    let _ = relay.release(m.alloc.id);
                }
            }
            let resp = self.reject_response(&call.a.invite, Reject::Unavailable);
            let key = call.a.invite_key.clone();
            return self.send_response(&key, resp);
        }
        self.stats.calls.started += 1;
        if call.b.is_empty() {
            // Routed to nobody who can ring now, but something follows (forwarding).
            self.step_failed(wall, id);
        }
    }

    /// A call that passed authentication but reaches no phone (404 no such user, 480 not
    /// registered): the caller gets `code` and the attempt its CDR.
    #[allow(clippy::too_many_arguments)]
    fn refuse_call(
        &mut self,
        wall: SystemTime,
        transport: Transport,
        key: &TransactionKey,
        req: &Request,
        (caller, callee): (Party, Party),
        refusal: Refusal,
    ) {
        let (code, cause, resp) = match refusal {
            Refusal::Reject(rej) => {
                let code = rej.status();
                let cause = match rej {
                    Reject::NotFound => HangupCause::UnallocatedNumber,
                    Reject::NotRegistered => HangupCause::UserNotRegistered,
                    Reject::NotAcceptableHere => HangupCause::IncompatibleDestination,
                    Reject::NoMediaPorts => HangupCause::SwitchCongestion,
                    _ => HangupCause::from_sip_status(code),
                };
                (code, cause, self.reject_response(req, rej))
            }
            Refusal::Dialplan { status, reason } => {
                let phrase = reason
                    .as_deref()
                    .and_then(|r| clean_value(r.as_bytes()))
                    .map(|r| String::from_utf8_lossy(&r).into_owned())
                    .unwrap_or_else(|| crate::sip::reason_phrase(status).to_string());
                let cause = HangupCause::from_sip_status(status);
                (status, cause, self.response(req, status, &phrase))
            }
            Refusal::Redirect(contact) => {
                let mut r = self.response(req, 302, "Moved Temporarily");
                if let Some(c) = clean_value(contact.as_bytes()) {
                    let c = String::from_utf8_lossy(&c).into_owned();
                    let c = if c.starts_with('<') {
                        c
                    } else {
                        format!("<{c}>")
                    };
                    r.headers.push(HeaderName::Contact, c);
                }
                (302, HangupCause::NormalUnspecified, r)
            }
        };
        tracing::info!(
            target: "ferroswitch::call",
            caller = %crate::security::log_escape(&caller.user), callee = %crate::security::log_escape(&callee.user), code, cause = cause.name(),
            "call refused"
        );
        self.send_response(key, resp);
        if !self.cfg.calls.cdrs {
            return;
        }
        let id = self.calls.next_id();
        let rec = CdrRecord {
            call_id: format!("{}-{id}", self.run_id),
            a_leg_call_id: req.headers.call_id().unwrap_or_default().to_string(),
            b_leg_call_id: None,
            caller,
            callee,
            start_time: crate::clock::rfc3339(wall),
            answer_time: None,
            end_time: crate::clock::rfc3339(wall),
            duration: 0,
            billsec: 0,
            hangup_cause: cause.name(),
            hangup_cause_code: cause.code(),
            sip_status: code,
            hangup_side: Side::System,
            caller_transport: transport.as_str(),
            callee_transport: None,
            media: None,
            transferred_to: None,
            transferred_by: None,
            node: self.cfg.node_id.clone(),
        };
        self.out.push_back(Command::Cdr(Box::new(rec)));
    }

    /// A caller over `max_calls_per_user` (486) or its address over `max_calls_per_source`
    /// (503 with Retry-After), for a call (`call`) or a MESSAGE; logged at most once a second.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn over_limit(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Request,
        user: &str,
        arrival: Arrival,
        over: Over,
        call: bool,
    ) {
        let limits = if call {
            &mut self.call_limits
        } else {
            &mut self.message_limits
        };
        if let Some(suppressed) = limits.should_log(now) {
            let source = arrival.from.addr.ip().to_string();
            tracing::warn!(
                target: "ferroswitch::call",
                user, source, ?over,
                method = %req.method, suppressed, "over the per-user/per-source limit"
            );
        }
        let rej = match over {
            Over::User => Reject::UserOverLimit,
            Over::Source => Reject::TooManyCalls,
        };
        let resp = self.reject_response(req, rej);
        self.send_response(key, resp);
    }

    /// RFC 4028 on the a-leg: only with a caller that supports timers, which then refreshes
    /// (so the switch never has to). `Err(min_se)` → 422.
    fn caller_session_timer(&self, req: &Request) -> Result<Option<SessionTimer>, u32> {
        let supports = req
            .headers
            .tokens(&HeaderName::Supported)
            .chain(req.headers.tokens(&HeaderName::Require))
            .any(|t| t.eq_ignore_ascii_case("timer"));
        if !supports {
            return Ok(None);
        }
        match SessionTimer::negotiate_uas(&req.headers, &self.cfg.calls.session) {
            Ok(t) => Ok(Some(t)),
            Err(crate::dialog::SessionTimerError::TooSmall { min_se }) => Err(min_se),
            Err(_) => Ok(None),
        }
    }

    /// Calls `targets` for call `id`: one b-leg INVITE each, sent in parallel and indexed
    /// from b-leg number `first` on. The one place b-leg INVITEs leave, for a new call, a
    /// routing step (`plan`) and a transfer's target alike.
    pub(super) fn send_b_invites(
        &mut self,
        id: CallId,
        who: &LegIdentity,
        targets: &[LegTarget],
        body: &bytes::Bytes,
        first: usize,
    ) -> Vec<BLeg> {
        let mut legs = Vec::with_capacity(targets.len());
        for t in targets {
            let invite = self.b_leg_invite(who, t, body);
            match self.send_request(invite.clone(), t.peer) {
                Some(bkey) => {
                    self.calls
                        .add_b_invite(bkey.clone(), id, first + legs.len());
                    tracing::info!(target: "ferroswitch::call", call = id, to = %crate::security::log_escape(&t.ruri), gateway = t.gateway.as_ref().map(|g| g.name.as_str()), "ringing");
                    legs.push(BLeg::new(bkey, invite, t.clone()));
                }
                None => {
                    tracing::warn!(target: "ferroswitch::call", call = id, "b-leg INVITE without a branch")
                }
            }
        }
        legs
    }

    /// The INVITE of a new b-leg to `t`: a registered contact, or a trunk.
    fn b_leg_invite(&mut self, who: &LegIdentity, t: &LegTarget, body: &bytes::Bytes) -> Request {
        let branch = self.our_branch();
        let (rng, cfg) = (&mut self.rng, &self.cfg);
        let mut r = Request::new(crate::sip::Method::Invite, t.ruri.clone());
        let transport = t.peer.transport;
        let via = ViaSpec::new(transport, t.advertised.clone(), branch);
        let h = &mut r.headers;
        h.push(HeaderName::Via, via.to_value());
        h.push(HeaderName::MaxForwards, who.max_forwards.to_string());
        // RFC 3327 §5.4: a contact registered through an edge proxy is reached through it.
        push_route_set(h, &t.route);
        // The caller as the route presents it (a company number toward a trunk).
        let presented = &who.caller;
        let domain = t
            .gateway
            .as_ref()
            .map_or(who.domain.as_str(), |g| g.domain.as_str());
        let caller = identity(presented, domain);
        let tag = new_tag_with(rng);
        let tp = transport.uri_param();
        let contact_user = match &t.gateway {
            Some(g) => {
                // Toward a trunk: From names our account (or the caller's number where the
                // provider allows it), the asserted identity carries the caller ID.
                let from_party = Party {
                    user: if g.caller_id_in_from {
                        presented.user.clone()
                    } else {
                        g.from_user.clone()
                    },
                    display_name: presented.display_name.clone(),
                };
                let from = if who.private {
                    ANONYMOUS.to_string()
                } else {
                    identity(&from_party, domain)
                };
                h.push(HeaderName::From, format!("{from};tag={tag}"));
                h.push(
                    HeaderName::To,
                    format!("<sip:{}@{domain}>", uri_user(&g.number)),
                );
                uri_user(&g.from_user)
            }
            None => {
                // RFC 3323 §4.1 / RFC 3325 §7: the callee is a phone, not a trusted node, so
                // a caller asking for privacy is anonymous to it.
                let from = if who.private { ANONYMOUS } else { &caller };
                h.push(HeaderName::From, format!("{from};tag={tag}"));
                h.push(HeaderName::To, identity(&who.callee, &who.domain));
                if who.private {
                    "anonymous".to_string()
                } else {
                    uri_user(&presented.user)
                }
            }
        };
        let call_id = new_call_id_with(rng, cfg.node_id.as_deref());
        h.push(HeaderName::CallId, call_id);
        let seq: u32 = rng.gen_range(1..10_000);
        h.push(HeaderName::CSeq, format!("{seq} INVITE"));
        h.push(
            HeaderName::Contact,
            format!("<sip:{contact_user}@{}{tp}>", t.advertised),
        );
        // Only a caller whose digest we verified is asserted (RFC 3325: screened identity);
        // with `auth_calls = false` the From is a claim, passed on as `screen=no`. A trunk is
        // a trusted network (RFC 3325 §5): it gets the identity with `Privacy: id` when the
        // caller asked for privacy.
        match (who.private, who.authenticated, t.gateway.is_some()) {
            (true, true, true) => {
                h.push(HeaderName::PAssertedIdentity, caller);
                h.push(HeaderName::Other("Privacy".into()), "id");
            }
            (true, _, _) => {
                h.push(
                    HeaderName::RemotePartyId,
                    format!("{ANONYMOUS};party=calling;screen=no;privacy=full"),
                );
                h.push(HeaderName::Other("Privacy".into()), "id");
            }
            (false, true, _) => {
                h.push(
                    HeaderName::RemotePartyId,
                    format!("{caller};party=calling;screen=yes;privacy=off"),
                );
                h.push(HeaderName::PAssertedIdentity, caller);
            }
            (false, false, _) => h.push(
                HeaderName::RemotePartyId,
                format!("{caller};party=calling;screen=no;privacy=off"),
            ),
        }
        h.push(HeaderName::Allow, ALLOW);
        h.push(HeaderName::Supported, SUPPORTED);
        super::respond::push_user_agent(h, HeaderName::UserAgent, &cfg.user_agent);
        // RFC 4028 on the b-leg: we offer and ask the callee to refresh.
        let se = cfg.calls.session;
        h.push(
            HeaderName::SessionExpires,
            format!("{};refresher=uas", se.session_expires),
        );
        h.push(HeaderName::MinSe, se.min_se.to_string());
        for (name, v) in &who.copied {
            h.push(name.clone(), v.clone());
        }
        if !body.is_empty() && h.get(&HeaderName::ContentType).is_none() {
            h.push(HeaderName::ContentType, "application/sdp");
        }
        r.body = body.clone();
        r
    }
}

/// Who a b-leg INVITE says is calling whom, copied out of the call so that INVITEs can be
/// built while the call is borrowed (or not yet in the table).
pub(super) struct LegIdentity {
    /// The caller as presented: its own identity, or the route's caller ID.
    pub caller: Party,
    pub callee: Party,
    pub domain: String,
    pub private: bool,
    pub authenticated: bool,
    /// The caller's Max-Forwards less one (70 less one once the INVITE was compacted).
    pub max_forwards: u32,
    /// `COPIED` headers of the caller's INVITE, without control octets.
    pub copied: Vec<(HeaderName, bytes::Bytes)>,
}

impl LegIdentity {
    /// The caller of `call` calling `callee` (the call's own callee, or a transfer target).
    pub(super) fn of(call: &Call, callee: &Party) -> LegIdentity {
        let a = &call.a.invite;
        let copied = COPIED
            .iter()
            .flat_map(|name| {
                // Control octets (a bare CR) would start a header of the caller's choosing.
                a.headers
                    .get_all(name)
                    .filter_map(|v| clean_value(&v.value))
                    .map(|v| (name.clone(), v))
                    .collect::<Vec<_>>()
            })
            .collect();
        // The caller as the route presents it (a company number toward a trunk).
        let caller = match call.plan.as_ref().and_then(|p| p.caller_id.as_ref()) {
            Some(cid) => Party {
                user: cid
                    .number
                    .clone()
                    .unwrap_or_else(|| call.caller.user.clone()),
                display_name: cid
                    .name
                    .clone()
                    .or_else(|| call.caller.display_name.clone()),
            },
            None => call.caller.clone(),
        };
        LegIdentity {
            caller,
            callee: callee.clone(),
            domain: call.domain.clone(),
            private: call.caller_private,
            authenticated: call.caller_authenticated,
            max_forwards: a.headers.max_forwards().unwrap_or(70).clamp(1, 256) - 1,
            copied,
        }
    }
}

/// `"Display" <sip:user@domain>` for a party: the display name a quoted-string without
/// control characters, the user %-escaped (either may come from a peer's From).
pub fn identity(p: &Party, domain: &str) -> String {
    let user = uri_user(&p.user);
    match &p.display_name {
        Some(d) => format!("{} <sip:{user}@{domain}>", quoted(d)),
        None => format!("<sip:{user}@{domain}>"),
    }
}

/// RFC 3323 §4.1.1.3 / RFC 3325 §9.3: how an anonymous caller appears.
pub(super) const ANONYMOUS: &str = "\"Anonymous\" <sip:anonymous@anonymous.invalid>";

/// Whether the caller's `Privacy` asks to hide its identity (`id`, RFC 3325; `user` or
/// `header`, RFC 3323). `none` and `session` do not.
pub(super) fn wants_privacy(req: &Request) -> bool {
    req.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case("Privacy"))
        .filter_map(|h| h.value_str())
        .flat_map(|v| v.split([';', ',']))
        .map(str::trim)
        .any(|t| {
            ["id", "user", "header"]
                .iter()
                .any(|p| t.eq_ignore_ascii_case(p))
        })
}

/// Where requests to a registered contact go. With an RFC 3327 Path: the first Path hop
/// (its address and `transport` parameter), the Request-URI staying the Contact and the Path
/// going in as Route headers (`push_route_set`), as RFC 3327 §5.4 and RFC 3261 §8.1.2 have
/// it for a pre-loaded route set; the REGISTER's source (the proxy) when that hop names a
/// host we would have to resolve. Without: the connection or address the REGISTER came from
/// when it came over TCP or through NAT, else the Contact itself (RFC 3261 §10, third-party
/// registration), falling back to the source when the Contact names a host name.
///
/// Path hops are taken to be loose routers (`lr`, as every edge proxy writes them); a strict
/// router in a Path is not supported.
pub fn binding_peer(b: &Binding) -> Peer {
    if let Some(first) = b.path.first() {
        return crate::sip::NameAddr::parse(first.as_bytes())
            .ok()
            .and_then(|a| NextHop::from_uri(&a.uri).ok())
            .and_then(|h| h.peer())
            .unwrap_or(b.source);
    }
    if b.nat || b.source.transport.is_reliable() {
        return b.source;
    }
    crate::sip::Uri::parse(&b.contact)
        .ok()
        .and_then(|u| NextHop::from_uri(&u).ok())
        .and_then(|h| h.peer())
        .unwrap_or(b.source)
}

/// Puts a pre-loaded route set (a registered contact's Path) into a request we originate:
/// one Route line per value, in order (RFC 3327 §5.4).
pub(super) fn push_route_set(h: &mut crate::sip::Headers, route: &[String]) {
    for r in route {
        h.push(HeaderName::Route, r.clone());
    }
}

/// The `host:port` a peer can reach us at, for Via and Contact: our socket's address when it
/// is a specific one, else the host the peer itself addressed us by (the Request-URI host of
/// its REGISTER/INVITE) with our port.
pub fn advertised(local: SocketAddr, addressed_host: &str, _t: Transport) -> String {
    if !local.ip().is_unspecified() {
        return local.to_string();
    }
    let host = addressed_host.trim();
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", local.port())
    } else {
        format!("{host}:{}", local.port())
    }
}
