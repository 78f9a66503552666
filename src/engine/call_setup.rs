//! A new call: the caller's INVITE is admitted (`admit`: Max-Forwards, loops, 407 before
//! anything is routed), routed to the callee's registered contacts (404 and 480 leave a CDR),
//! held to the per-user and per-source limits, and a b-leg INVITE is sent to each contact in
//! parallel — a new dialog with a new Call-ID, the caller's identity in From,
//! Remote-Party-ID and (only when authenticated) P-Asserted-Identity, anonymous when the
//! caller asked for privacy, and the SDP passed through unchanged. Nothing the caller wrote
//! reaches the callee unless it is valid for its header (`b2bua::headers`).

use super::respond::{ALLOW, SUPPORTED};
use super::Engine;
use crate::b2bua::headers::{clean_value, quoted, uri_user};
use crate::b2bua::{ALeg, BLeg, BLegState, Call, CallState, CallTimer, Over};
use crate::cdr::{CdrRecord, HangupCause, Party, Side};
use crate::dialog::ids::{new_call_id_with, new_tag_with};
use crate::dialog::{NextHop, SessionTimer, ViaSpec};
use crate::net::{Peer, Transport};
use crate::registrar::Binding;
use crate::sip::{HeaderName, Request};
use crate::transaction::TransactionKey;
use rand::Rng;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// Branches we mint start with this and this run's id, so a request that comes back to us
/// is recognised (RFC 3261 §16.3 step 4 loop detection, done the B2BUA way) and a foreign
/// branch that merely starts like ours is not.
pub(super) const BRANCH_PREFIX: &str = "z9hG4bKfs";

/// Header values we copy from the caller's INVITE to the callee's.
const COPIED: &[HeaderName] = &[HeaderName::ContentType, HeaderName::Subject];

impl Engine {
    pub(super) fn our_branch(&mut self) -> String {
        format!("{}{:016x}", self.branch_stem(), self.rng.gen::<u64>())
    }

    /// What every branch of this run starts with.
    fn branch_stem(&self) -> String {
        format!("{BRANCH_PREFIX}{:08x}", self.run_id)
    }

    /// An out-of-dialog INVITE (no To tag) on server transaction `key`.
    pub(super) fn handle_invite(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        req: Request,
        from: Peer,
    ) {
        let adm = match self.take_admitted(now, wall, &req) {
            Ok(a) => a,
            Err(resp) => return self.send_response(now, &key, resp),
        };
        let (ruri, realm, caller_party) = (adm.ruri, adm.realm, adm.caller);
        // Routing happens only now, after authentication. Every attempt from here on leaves
        // a CDR, as FreeSWITCH writes one for every call that passed authentication.
        let callee_user = ruri.user().map(str::to_string).unwrap_or_default();
        let Some(callee) = self.users.get(&callee_user).filter(|u| u.enabled) else {
            let callee = Party {
                user: callee_user,
                display_name: None,
            };
            return self.refuse_call(now, wall, &key, &req, (caller_party, callee), 404);
        };
        let callee_party = Party {
            user: callee.id.clone(),
            display_name: callee.display_name.clone(),
        };
        if self.calls.len() >= self.cfg.calls.max_calls {
            let mut resp = self.response(&req, 503, "Service Unavailable - Too Many Calls");
            resp.headers.push(HeaderName::RetryAfter, "5");
            return self.send_response(now, &key, resp);
        }
        let a_timer = match self.caller_session_timer(&req) {
            Ok(t) => t,
            Err(min_se) => {
                let mut resp = crate::dialog::session_timer::too_small_response(&req, min_se);
                set_tag_and_finish(self, &mut resp);
                return self.send_response(now, &key, resp);
            }
        };
        let bindings = self.store.lookup(&format!("{callee_user}@{realm}"), now);
        if bindings.is_empty() {
            let parties = (caller_party, callee_party);
            return self.refuse_call(now, wall, &key, &req, parties, 480);
        }
        let source = self.limited_source();
        let limited_user = adm.authenticated.then_some(caller_party.user.as_str());
        let hold = match self.call_limits.try_acquire(limited_user, source) {
            Ok(h) => h,
            Err(over) => return self.over_limit(now, &key, &req, &caller_party.user, over, true),
        };
        let caller_private = wants_privacy(&req);

        let origin = self.current;
        let a_adv = advertised(
            origin.map_or(from.addr, |o| o.local),
            ruri.host(),
            origin.map_or(from.transport, |o| o.transport),
        );
        let id = self.calls.next_id();
        let local_tag = new_tag_with(&mut self.rng);
        let mut call = Call {
            id,
            state: CallState::Ringing,
            a: ALeg {
                invite_key: key,
                invite: req,
                peer: from,
                local_tag,
                advertised: a_adv,
                dialog: None,
                ok: None,
                ok_interval: self.cfg.transactions.timers.t1,
                ok_give_up: None,
                session_timer: a_timer,
            },
            b: Vec::with_capacity(bindings.len()),
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
        };
        tracing::info!(
            target: "ferroswitch::call",
            call = id, caller = %crate::security::log_escape(&call.caller.user), callee = %crate::security::log_escape(&call.callee.user),
            contacts = bindings.len(), "new call"
        );
        for b in &bindings {
            let invite = self.b_leg_invite(&call, b);
            let peer = binding_peer(b);
            call.first_b_call_id
                .get_or_insert_with(|| invite.headers.call_id().unwrap_or_default().to_string());
            let advertised = b.advertised.clone();
            match self.txl.send_request(now, invite.clone(), peer) {
                Ok(bkey) => {
                    self.calls.add_b_invite(bkey.clone(), id, call.b.len());
                    call.b.push(BLeg {
                        key: bkey,
                        invite,
                        peer,
                        advertised,
                        state: BLegState::Calling,
                        dialog: None,
                        ack: None,
                        ack_waits_for_caller: false,
                        session_timer: None,
                        answer_sdp: None,
                        allows_update: false,
                    });
                }
                Err(e) => {
                    tracing::warn!(target: "ferroswitch::call", call = id, e = %crate::security::log_escape(&e), "b-leg not sent")
                }
            }
        }
        if call.b.is_empty() {
            // Every send was refused (table full): nothing rings.
            if let Some(h) = call.hold.take() {
                self.call_limits.release(h);
            }
            let resp = self.response(&call.a.invite, 503, "Service Unavailable");
            let key = call.a.invite_key.clone();
            return self.send_response(now, &key, resp);
        }
        if let Some(at) = call.no_answer_at {
            self.calls.schedule(at, id, CallTimer::NoAnswer);
        }
        self.calls.insert(call);
    }

    fn reject(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Request,
        code: u16,
        phrase: &str,
    ) {
        let resp = self.response(req, code, phrase);
        self.send_response(now, key, resp);
    }

    /// A call that passed authentication but reaches no phone (404 no such user, 480 not
    /// registered): the caller gets `code` and the attempt its CDR.
    fn refuse_call(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: &TransactionKey,
        req: &Request,
        (caller, callee): (Party, Party),
        code: u16,
    ) {
        let (phrase, cause) = match code {
            404 => ("Not Found", HangupCause::UnallocatedNumber),
            480 => ("Temporarily Unavailable", HangupCause::UserNotRegistered),
            _ => (
                crate::sip::reason_phrase(code),
                HangupCause::from_sip_status(code),
            ),
        };
        tracing::info!(
            target: "ferroswitch::call",
            caller = %caller.user, callee = %callee.user, code, cause = cause.name(),
            "call refused"
        );
        self.reject(now, key, req, code, phrase);
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
        };
        self.cdrs.push_back(rec);
    }

    /// A caller over `max_calls_per_user` (486) or its address over `max_calls_per_source`
    /// (503 with Retry-After), for a call (`call`) or a MESSAGE; logged at most once a second.
    pub(super) fn over_limit(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Request,
        user: &str,
        over: Over,
        call: bool,
    ) {
        let limits = if call {
            &mut self.call_limits
        } else {
            &mut self.message_limits
        };
        if let Some(suppressed) = limits.should_log(now) {
            let source = self.current.map(|o| o.source.ip().to_string());
            tracing::warn!(
                target: "ferroswitch::call",
                user, source = source.as_deref().unwrap_or("-"), ?over,
                method = %req.method, suppressed, "over the per-user/per-source limit"
            );
        }
        let mut resp = match over {
            Over::User => self.response(req, 486, "Busy Here"),
            Over::Source => {
                let mut r = self.response(req, 503, "Service Unavailable - Too Many Calls");
                r.headers.push(HeaderName::RetryAfter, "5");
                r
            }
        };
        if over == Over::User {
            resp.headers.push(
                HeaderName::Warning,
                "399 ferroswitch \"Too many calls for this user\"",
            );
        }
        self.send_response(now, key, resp);
    }

    /// Max-Forwards and loop checks (RFC 3261 §16.3 steps 3 and 4) for every request the
    /// switch passes on (INVITE, MESSAGE).
    pub(super) fn invite_precheck(&self, req: &Request) -> Option<(u16, &'static str)> {
        if req.headers.max_forwards() == Some(0) {
            return Some((483, "Too Many Hops"));
        }
        let stem = self.branch_stem();
        let ours = req
            .headers
            .vias()
            .iter()
            .any(|v| v.branch().is_some_and(|b| b.starts_with(&stem)));
        ours.then_some((482, "Loop Detected"))
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

    /// The INVITE of a new b-leg to one registered contact.
    fn b_leg_invite(&mut self, call: &Call, b: &Binding) -> Request {
        let a = &call.a.invite;
        let mut r = Request::new(crate::sip::Method::Invite, b.contact.clone());
        let branch = self.our_branch();
        let transport = binding_peer(b).transport;
        let via = ViaSpec::new(transport, b.advertised.clone()).with_branch(branch);
        let h = &mut r.headers;
        h.push(HeaderName::Via, via.to_value());
        let mf = a.headers.max_forwards().unwrap_or(70).clamp(1, 256) - 1;
        h.push(HeaderName::MaxForwards, mf.to_string());
        let caller = identity(&call.caller, &call.domain);
        let tag = new_tag_with(&mut self.rng);
        // RFC 3323 §4.1 / RFC 3325 §7: the callee is a phone, not a trusted node, so a caller
        // asking for privacy is anonymous to it.
        let from = if call.caller_private {
            ANONYMOUS
        } else {
            &caller
        };
        h.push(HeaderName::From, format!("{from};tag={tag}"));
        h.push(HeaderName::To, identity(&call.callee, &call.domain));
        let call_id = new_call_id_with(&mut self.rng, None);
        h.push(HeaderName::CallId, call_id);
        let seq: u32 = self.rng.gen_range(1..10_000);
        h.push(HeaderName::CSeq, format!("{seq} INVITE"));
        let tp = transport.uri_param();
        let contact_user = if call.caller_private {
            "anonymous".to_string()
        } else {
            uri_user(&call.caller.user)
        };
        h.push(
            HeaderName::Contact,
            format!("<sip:{contact_user}@{}{tp}>", b.advertised),
        );
        // Only a caller whose digest we verified is asserted (RFC 3325: screened identity);
        // with `auth_calls = false` the From is a claim, passed on as `screen=no`.
        match (call.caller_private, call.caller_authenticated) {
            (true, _) => {
                h.push(
                    HeaderName::RemotePartyId,
                    format!("{ANONYMOUS};party=calling;screen=no;privacy=full"),
                );
                h.push(HeaderName::Other("Privacy".into()), "id");
            }
            (false, true) => {
                h.push(
                    HeaderName::RemotePartyId,
                    format!("{caller};party=calling;screen=yes;privacy=off"),
                );
                h.push(HeaderName::PAssertedIdentity, caller);
            }
            (false, false) => h.push(
                HeaderName::RemotePartyId,
                format!("{caller};party=calling;screen=no;privacy=off"),
            ),
        }
        h.push(HeaderName::Allow, ALLOW);
        h.push(HeaderName::Supported, SUPPORTED);
        super::respond::push_user_agent(h, HeaderName::UserAgent, &self.cfg.user_agent);
        // RFC 4028 on the b-leg: we offer and ask the callee to refresh.
        let se = self.cfg.calls.session;
        h.push(
            HeaderName::SessionExpires,
            format!("{};refresher=uas", se.session_expires),
        );
        h.push(HeaderName::MinSe, se.min_se.to_string());
        for name in COPIED {
            for v in a.headers.get_all(name) {
                // Control octets (a bare CR) would start a header of the caller's choosing.
                if let Some(v) = clean_value(&v.value) {
                    h.push(name.clone(), v);
                }
            }
        }
        r.body = a.body.clone();
        r
    }
}

fn set_tag_and_finish(engine: &mut Engine, resp: &mut crate::sip::Response) {
    let tag = new_tag_with(&mut engine.rng);
    crate::sip::set_to_tag(resp, &tag);
    engine.finish_response(resp);
}

/// `"Display" <sip:user@domain>` for a party: the display name a quoted-string without
/// control characters, the user %-escaped (either may come from a peer's From).
pub(super) fn identity(p: &Party, domain: &str) -> String {
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

/// Where requests to a registered contact go: the connection or address the REGISTER came
/// from when it came over TCP or through NAT, else the Contact itself (RFC 3261 §10, third-
/// party registration), falling back to the source when the Contact names a host name.
pub(super) fn binding_peer(b: &Binding) -> Peer {
    if b.nat || b.source.transport.is_reliable() {
        return b.source;
    }
    crate::sip::Uri::parse(&b.contact)
        .ok()
        .and_then(|u| NextHop::from_uri(&u).ok())
        .and_then(|h| h.peer())
        .unwrap_or(b.source)
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
