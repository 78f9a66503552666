//! Transfer carried out by the switch (issue 12): a REFER from the answered callee (RFC 3515,
//! blind transfer as in RFC 5589 §6) is not relayed to the caller; the switch answers it and
//! does what the transferee would have done.
//!
//! On the wire: `202 Accepted` to the REFER (`Refer-Sub: false` honoured, RFC 4488: then no
//! NOTIFY at all), a NOTIFY `SIP/2.0 100 Trying` (`Event: refer;id=<CSeq>`,
//! `message/sipfrag;version=2.0`), the Refer-To user routed through the engine's `Router`
//! in the context of the user who answered the leg (`BLeg::user`: a group member or a
//! forward target, not the number dialled; `public` when that is no user of ours), and
//! new b-legs INVITEd like any callee (`setup::send_b_invites`) with
//! the caller's identity and the transferee's current SDP: with a relay, the body the
//! callee side last got from us (our ports, so the caller's media path never changes); in
//! bypass, the caller's last SDP as it sent it. Each provisional status is NOTIFYed once;
//! on a 2xx the new leg is ACKed, the transferor gets NOTIFY `SIP/2.0 200 OK` with
//! `Subscription-State: terminated;reason=noresource` and a BYE (`Reason: Q.850;cause=16`),
//! and the new leg becomes the call's answered b-leg. With a relay the new party's answer
//! only re-targets the callee side of the relay (the caller keeps our ports and its codecs
//! as negotiated; no re-INVITE, except for a caller the transferor had put on hold, which is
//! offered the new party sendrecv); in bypass the caller gets a re-INVITE with the new
//! party's SDP. A failure (busy, 404, no answer within `call_timeout`) is NOTIFYed with its status
//! line and the call stays as it was. A transferor that hangs up first gets its 200 and the
//! transfer goes on; its BYE racing ours after the answer gets a 200 too.
//!
//! The transferor's part of the call gets its own CDR (`<call_id>-t<n>`, cause
//! BLIND_TRANSFER, `transferred_to`); the call's record keeps its caller and names the
//! target and the transferor.
//!
//! A REFER from the (authenticated) caller is carried out the same way with the roles
//! reversed: the callee stays and the target takes the caller's place (`caller_transfer`).
//! A REFER with Replaces naming the transferor's other call is an attended transfer
//! (`attended`). Not here yet: a Replaces of another shape, or from the caller, and a REFER
//! from an unauthenticated caller (relayed to the other phone as before, which then calls
//! the target through us). A REFER from a leg toward a trunk (the provider's side of a call
//! out) is never carried out: it is relayed to the caller's phone (toll fraud, see
//! `handle_refer`).
//! Never panics on what a peer sends; a route it cannot use is a NOTIFY with an error status.

use super::core::{request_command, B2bua, Command};
use super::plan::LegTarget;
use super::setup::LegIdentity;
use super::{BLegState, CallId, CallState, CallTimer, LegRef, Reject, Route, RouteQuery, Router};
use crate::cdr::{seconds_between, CdrRecord, HangupCause, Party, Side};
use crate::dialog::{Dialog, SessionTimer, ViaSpec};
use crate::sip::{reason_phrase, HeaderName, Method, NameAddr, Request, Response};
use crate::transaction::TransactionKey;
use bytes::Bytes;
use std::time::{Instant, SystemTime};

/// How long the implicit subscription of a REFER lasts, as NOTIFYs say (RFC 3515 §2.4.4).
const SUBSCRIPTION_EXPIRES: u32 = 60;

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// The target's legs are ringing.
    Calling,
    /// The target answered: it is the call's callee now, the transferor was released.
    Done,
}

/// One transfer of a call (`Call::transfer`).
#[derive(Debug)]
pub struct Transfer {
    pub state: TransferState,
    /// The leg the REFER came in on.
    pub transferor: LegRef,
    /// The REFER's CSeq number (`Event: refer;id=…`).
    pub refer_seq: u32,
    /// The transferor wants NOTIFYs (no `Refer-Sub: false`, RFC 4488).
    pub notify: bool,
    /// The last status NOTIFYed (a provisional is reported once).
    pub notified: u16,
    /// The b-legs calling the target.
    pub legs: Vec<usize>,
    pub target: Party,
    /// The transferor, as the call knew it.
    pub by: Party,
    /// The transferor hung up while the target rang (its BYE got a 200).
    pub transferor_gone: bool,
    /// `call_timeout` for the target; `timed_out` once it passed (the NOTIFY says 408).
    pub no_answer_at: Option<Instant>,
    pub timed_out: bool,
    /// Transfers of this call so far, this one included (the transferor's CDR id).
    pub count: u32,
}

/// What a route gives a transfer: the target and its contacts, or the status the NOTIFY
/// reports. A route kind the transfer cannot use yet is refused here, never panicked on.
/// A route through the dialplan counts: a user, a group rung in parallel, a trunk (the
/// route's forwarding and later group steps are not followed for a transfer).
fn transfer_target(route: Route) -> Result<(Party, Vec<LegTarget>), u16> {
    match route {
        Route::NoSuchUser { .. } => Err(404),
        Route::User { bindings, .. } if bindings.is_empty() => Err(480),
        Route::User { callee, bindings } => {
            let legs = bindings
                .iter()
                .map(|b| LegTarget::of_user(b, &callee.user))
                .collect();
            Ok((callee, legs))
        }
        Route::Plan(p) if p.legs.is_empty() => Err(p.empty_status),
        Route::Plan(p) => Ok((p.callee, p.legs)),
        Route::Reject { status, .. } => Err(status),
        Route::Redirect { .. } => Err(480),
    }
}

/// `body` with every stream's direction set back to sendrecv: a transferor that held the
/// transferee left `sendonly`/`recvonly` in the last SDP, which the new party must not get.
pub(super) fn sendrecv(body: &Bytes) -> Bytes {
    let text = String::from_utf8_lossy(body);
    if !["a=sendonly", "a=recvonly", "a=inactive"]
        .iter()
        .any(|a| text.contains(a))
    {
        return body.clone();
    }
    let out: Vec<&str> = text
        .split_inclusive('\n')
        .map(|l| match l.trim_end() {
            "a=sendonly" | "a=recvonly" | "a=inactive" => "a=sendrecv\r\n",
            _ => l,
        })
        .collect();
    Bytes::from(out.concat())
}

impl B2bua {
    /// Whether b-leg `leg` of call `id` calls a transfer's target.
    pub(super) fn is_transfer_leg(&self, id: CallId, leg: usize) -> bool {
        self.calls
            .get(id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| t.legs.contains(&leg))
    }

    /// A REFER accepted by `leg`'s dialog. True when the switch carries the transfer out (it
    /// has answered the REFER); false to relay it as before (from the caller, or attended).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_refer(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: CallId,
        leg: LegRef,
        key: &TransactionKey,
        req: &Request,
        router: Router<'_>,
    ) -> bool {
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        // The answered callee, or an authenticated caller (`caller_transfer`), transfers
        // through us; any other REFER is relayed.
        let by_caller = leg == LegRef::A;
        let callee_refers = matches!((leg, call.winner), (LegRef::B(i), Some(w)) if i == w);
        // Toll fraud: a REFER from a trunk leg comes from the provider's side (the PSTN
        // party or anyone able to reach the provider), who proved nothing to us. Carried out
        // here it would be routed with one of our users' privileges and could dial out
        // through the gateway again. It is relayed to the a-leg phone instead, as before
        // transfers were handled here: that phone then calls the target itself, with its
        // own credentials in its own context (or refuses). Relaying rather than routing in
        // `public` keeps a PSTN party's legitimate transfer to an extension working through
        // the phone, and never needs a route decision on the trunk's word.
        if callee_refers && matches!(leg, LegRef::B(i) if self.is_trunk_leg(id, i)) {
            tracing::info!(target: "ferroswitch::call", call = id, "REFER from a trunk leg: relayed, not carried out");
            return false;
        }
        let carried_out =
            callee_refers || by_caller && super::caller_transfer::caller_may_transfer(call);
        if !carried_out {
            return false;
        }
        let refer_to: Vec<_> = req.headers.get_all(&HeaderName::ReferTo).collect();
        let target = match refer_to.as_slice() {
            [h] => NameAddr::parse(&h.value).ok(),
            _ => None,
        };
        let Some(target) = target else {
            self.dialog_reject(id, leg, key, req, Reject::BadReferTo);
            return true;
        };
        let replaces = target
            .uri
            .header_pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case("Replaces"))
            .map(|(_, v)| v.to_string());
        if replaces.is_some() && by_caller
            || replaces.as_deref().is_some_and(|r| !self.can_join(id, r))
        {
            // An attended transfer of another shape: relayed, the transferee then sends the
            // INVITE with Replaces.
            return false;
        }
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        let busy = call.state != CallState::Connected
            || call
                .transfer
                .as_ref()
                .is_some_and(|t| t.state == TransferState::Calling);
        if busy {
            self.dialog_reject(id, leg, key, req, Reject::RequestPending);
            return true;
        }
        let notify = !req
            .headers
            .get_str(&HeaderName::from_wire("Refer-Sub"))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let refer_seq = req.headers.cseq().map_or(1, |c| c.seq);
        let mut resp = self.dialog_response(id, leg, req, 202, "Accepted");
        if let Some(d) = self.leg_dialog(id, leg) {
            resp.headers
                .push(HeaderName::Contact, d.local_contact_bytes());
        }
        if !notify {
            resp.headers
                .push(HeaderName::from_wire("Refer-Sub"), "false");
        }
        self.send_response(key, resp);
        if let Some(r) = replaces {
            self.join_calls(now, wall, id, leg, &r, (refer_seq, notify));
            return true;
        }

        let dialled = target
            .uri
            .decoded_user()
            .map(|u| String::from_utf8_lossy(&u).into_owned())
            .unwrap_or_default();
        let Some(call) = self.calls.get(id) else {
            return true;
        };
        let domain = call.domain.clone();
        // The transferor's dialplan context applies: the authenticated caller's, or the
        // user who actually answered this leg (a group member, a forward target), not the
        // number that was dialled. The engine gives a name that is no user `public`.
        let answered_by = match leg {
            LegRef::B(i) => call.b.get(i).and_then(|b| b.user.clone()),
            LegRef::A => None,
        };
        let by = if by_caller {
            call.caller.user.clone()
        } else {
            answered_by
                .clone()
                .unwrap_or_else(|| call.callee.user.clone())
        };
        let route = router(RouteQuery {
            dialled: &dialled,
            by: &by,
            domain: &domain,
        });
        tracing::info!(
            target: "ferroswitch::call",
            call = id, to = %crate::security::log_escape(&dialled), notify, by_caller, "blind transfer"
        );
        let (callee, targets) = match transfer_target(route) {
            Ok(t) => t,
            Err(status) => {
                if notify {
                    self.send_notify(id, leg, refer_seq, status, true);
                }
                return true;
            }
        };
        let by = if by_caller {
            call.caller.clone()
        } else {
            match answered_by {
                Some(user) if user != call.callee.user => Party {
                    user,
                    display_name: None,
                },
                _ => call.callee.clone(),
            }
        };
        let count = call.transfer.as_ref().map_or(0, |t| t.count) + 1;
        // The transferee's current SDP toward the transferor's side: with a relay, what that
        // side last got from us (our ports); in bypass, the transferee's own.
        let body = if by_caller {
            super::caller_transfer::offer_from_callee(call)
        } else {
            match &call.media {
                Some(m) => m.last_sent[1].clone(),
                None => call.bypass_sdp[0].clone(),
            }
        }
        .map(|b| sendrecv(&b))
        .unwrap_or_default();
        // The new party sees the transferee calling.
        let who = if by_caller {
            LegIdentity::of_callee(call, &callee)
        } else {
            LegIdentity::of(call, &callee)
        };
        let first = call.b.len();
        if notify {
            self.send_notify(id, leg, refer_seq, 100, false);
        }
        let legs = self.send_b_invites(id, &who, &targets, &body, first);
        if legs.is_empty() {
            if notify {
                self.send_notify(id, leg, refer_seq, 503, true);
            }
            return true;
        }
        let no_answer_at = now + self.cfg.calls.call_timeout;
        let Some(call) = self.calls.get_mut(id) else {
            return true;
        };
        let indexes = (first..first + legs.len()).collect();
        call.b.extend(legs);
        call.transfer = Some(Box::new(Transfer {
            state: TransferState::Calling,
            transferor: leg,
            refer_seq,
            notify,
            notified: 100,
            legs: indexes,
            target: callee,
            by,
            transferor_gone: false,
            no_answer_at: Some(no_answer_at),
            timed_out: false,
            count,
        }));
        self.calls
            .schedule(no_answer_at, id, CallTimer::TransferNoAnswer);
        true
    }

    /// NOTIFY of the REFER's implicit subscription on `leg` (RFC 3515 §2.4.4): `status` as a
    /// sipfrag status line; `terminated` ends the subscription. Not tracked: its answer
    /// changes nothing.
    pub(super) fn send_notify(
        &mut self,
        id: CallId,
        leg: LegRef,
        refer_seq: u32,
        status: u16,
        done: bool,
    ) {
        let branch = self.our_branch();
        let ua = self.cfg.user_agent.clone();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let (peer, adv, dialog) = match leg {
            LegRef::A => (
                call.a.peer,
                call.a.advertised.clone(),
                call.a.dialog.as_mut(),
            ),
            LegRef::B(i) => match call.b.get_mut(i) {
                Some(b) => (b.peer, b.advertised.clone(), b.dialog.as_mut()),
                None => return,
            },
        };
        let Some(d) = dialog else {
            return;
        };
        let via = ViaSpec::new(peer.transport, adv, branch);
        let Ok(mut n) = d.new_request(Method::Notify, &via) else {
            return;
        };
        let h = &mut n.headers;
        h.push(HeaderName::Event, format!("refer;id={refer_seq}"));
        let state = if done {
            "terminated;reason=noresource".to_string()
        } else {
            format!("active;expires={SUBSCRIPTION_EXPIRES}")
        };
        h.push(HeaderName::from_wire("Subscription-State"), state);
        h.push(HeaderName::ContentType, "message/sipfrag;version=2.0");
        super::respond::push_user_agent(h, HeaderName::UserAgent, &ua);
        n.body = Bytes::from(format!("SIP/2.0 {status} {}\r\n", reason_phrase(status)));
        self.out.extend(request_command(n, peer));
    }

    /// NOTIFY of the call's transfer in progress, if its transferor wants them and is there.
    pub(super) fn notify_transfer(&mut self, id: CallId, status: u16, done: bool) {
        let Some(t) = self.calls.get(id).and_then(|c| c.transfer.as_deref()) else {
            return;
        };
        if t.notify && !t.transferor_gone {
            let (leg, seq) = (t.transferor, t.refer_seq);
            self.send_notify(id, leg, seq, status, done);
        }
    }

    /// A response on the INVITE of a leg calling a transfer's target.
    pub(super) fn on_transfer_response(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: CallId,
        leg: usize,
        resp: Response,
    ) {
        match resp.status {
            100 => {}
            101..=199 => {
                self.b_early_dialog(id, leg, &resp);
                let Some(call) = self.calls.get_mut(id) else {
                    return;
                };
                if let Some(b) = call.b.get_mut(leg) {
                    if b.state == BLegState::Calling {
                        b.state = BLegState::Early;
                    }
                }
                let Some(t) = call.transfer.as_mut() else {
                    return;
                };
                // Early media stays with the transferor: the relay is not touched before
                // the answer.
                if t.state == TransferState::Calling && t.notified != resp.status {
                    t.notified = resp.status;
                    self.notify_transfer(id, resp.status, false);
                }
            }
            200..=299 => self.transfer_answered(now, wall, id, leg, &resp),
            status => self.transfer_leg_failed(wall, id, leg, status),
        }
    }

    /// The target answered on `leg`: it becomes the call's callee, the transferor goes.
    fn transfer_answered(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: CallId,
        leg: usize,
        resp: &Response,
    ) {
        if self.reack_retransmitted_2xx(id, leg) {
            return;
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(b) = call.b.get_mut(leg) else {
            return;
        };
        let dialog = match b.dialog.take() {
            Some(mut d) => {
                if let Err(e) = d.handle_response(resp) {
                    tracing::debug!(target: "ferroswitch::call", call = id, leg, %e, "2xx not taken by the transfer leg's dialog");
                }
                Some(d)
            }
            None => Dialog::from_uac(&b.invite, resp).ok(),
        };
        let Some(dialog) = dialog else {
            tracing::warn!(target: "ferroswitch::call", call = id, "unusable 2xx from a transfer target");
            return self.transfer_leg_failed(wall, id, leg, 502);
        };
        let dkey = dialog.key().clone();
        b.dialog = Some(dialog);
        b.state = BLegState::Answered;
        b.session_timer = SessionTimer::negotiate_uac(&resp.headers).ok().flatten();
        b.allows_update = super::refresh::allows_update(&resp.headers);
        let lost = call.end.is_some()
            || call
                .transfer
                .as_ref()
                .is_none_or(|t| t.state != TransferState::Calling);
        self.calls.add_dialog(dkey, id, LegRef::B(leg));
        let window = self.cfg.timers.t1 * 64;
        self.calls
            .schedule(now + window, id, CallTimer::AckWindowOver);
        self.ack_b(id, leg, None);
        if lost {
            // Another contact of the target won, or the call is over.
            self.bye_leg(id, LegRef::B(leg), HangupCause::NormalClearing);
            return self.maybe_finish(wall, id);
        }
        let others: Vec<usize> = self
            .calls
            .get(id)
            .and_then(|c| c.transfer.as_ref())
            .map(|t| t.legs.iter().copied().filter(|&i| i != leg).collect())
            .unwrap_or_default();
        for i in others {
            self.cancel_b(id, i);
        }
        let by_caller = self
            .calls
            .get(id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| t.transferor == LegRef::A);
        if by_caller {
            return self.caller_transfer_answered(now, wall, id, leg, resp);
        }
        // The media: with a relay, the callee side now points at the new party (the caller
        // keeps our ports, so it needs no re-INVITE, unless the transferor had put it on
        // hold: then it is offered the new party, sendrecv); in bypass, the caller is
        // re-INVITEd with the new party's SDP.
        let sdp = super::media::is_sdp(&resp.headers, &resp.body);
        let held = self
            .calls
            .get(id)
            .and_then(|c| c.media.as_ref())
            .and_then(|m| m.last_sent[0].as_ref())
            .is_some_and(|b| sendrecv(b) != *b);
        let answer_sdp = if sdp && self.anchors_media() {
            let to_a = self.anchor(now, id, LegRef::B(leg), &resp.headers, &resp.body);
            if held {
                self.reoffer(id, LegRef::A, sendrecv(&to_a));
            }
            Some(to_a)
        } else if sdp {
            if let Some(c) = self.calls.get_mut(id) {
                c.bypass_sdp[1] = Some(bytes::Bytes::copy_from_slice(&resp.body));
            }
            self.reoffer(id, LegRef::A, resp.body.clone());
            Some(resp.body.clone())
        } else {
            None
        };
        self.notify_transfer(id, 200, true);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(t) = call.transfer.as_mut() else {
            return;
        };
        t.state = TransferState::Done;
        t.no_answer_at = None;
        let (transferor, gone) = (t.transferor, t.transferor_gone);
        let target = t.target.clone();
        if let Some(b) = call.b.get_mut(leg) {
            b.answer_sdp = answer_sdp.or_else(|| b.answer_sdp.take());
        }
        tracing::info!(target: "ferroswitch::call", call = id, leg, "transfer answered");
        self.transferor_cdr(wall, id, HangupCause::BlindTransfer);
        if !gone {
            self.release_transferor(id, transferor);
        }
        if let Some(call) = self.calls.get_mut(id) {
            call.winner = Some(leg);
            call.callee = target;
            // The new leg's INVITE is kept as lean as the first callee's.
            call.compact();
        }
        self.arm_session_timers(now, id);
    }

    /// A leg calling the target failed (`status`), or its call ended under it: when it was
    /// the last one, the NOTIFY says why and the call stays as it was.
    pub(super) fn transfer_leg_failed(
        &mut self,
        wall: SystemTime,
        id: CallId,
        leg: usize,
        status: u16,
    ) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(b) = call.b.get_mut(leg) else {
            return;
        };
        if matches!(b.state, BLegState::Failed(_) | BLegState::Answered) {
            return;
        }
        b.state = BLegState::Failed(status);
        if let Some(d) = b.dialog.take() {
            self.calls.remove_dialog(d.key());
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let over = call.transfer.as_ref().and_then(|t| {
            let calling = t.state == TransferState::Calling;
            let statuses: Vec<u16> = t
                .legs
                .iter()
                .filter_map(|&i| match call.b.get(i).map(|b| b.state) {
                    Some(BLegState::Failed(s)) => Some(s),
                    _ => None,
                })
                .collect();
            (calling && statuses.len() == t.legs.len()).then(|| {
                let best = super::best_response(statuses.into_iter()).unwrap_or(480);
                (
                    if t.timed_out { 408 } else { best },
                    t.transferor_gone,
                    t.transferor,
                )
            })
        });
        if let Some((status, gone, leg_of_transferor)) = over {
            tracing::info!(target: "ferroswitch::call", call = id, status, "transfer failed");
            if call.end.is_none() {
                self.notify_transfer(id, status, true);
            }
            if let Some(call) = self.calls.get_mut(id) {
                call.transfer = None;
            }
            if gone {
                // Nobody is left for the transferee.
                let side = match leg_of_transferor {
                    LegRef::A => Side::Caller,
                    LegRef::B(_) => Side::Callee,
                };
                self.hang_up(wall, id, side, HangupCause::from_sip_status(status));
            }
        }
        self.maybe_finish(wall, id);
    }

    /// CANCELs the legs still calling a transfer's target.
    pub(super) fn cancel_transfer_legs(&mut self, id: CallId) {
        let legs = match self.calls.get(id).and_then(|c| c.transfer.as_ref()) {
            Some(t) if t.state == TransferState::Calling => t.legs.clone(),
            _ => return,
        };
        for i in legs {
            self.cancel_b(id, i);
        }
    }

    /// Timer: the target did not answer within `call_timeout`.
    pub(super) fn transfer_no_answer(&mut self, id: CallId) {
        let Some(t) = self.calls.get_mut(id).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        t.no_answer_at = None;
        t.timed_out = true;
        self.cancel_transfer_legs(id);
    }

    /// A request on the leg of a transferor the switch released (after the target answered,
    /// or after its own BYE): a BYE crossing ours gets 200, anything else 481. False when
    /// `leg` is no such leg.
    pub(super) fn on_released_transferor(
        &mut self,
        id: CallId,
        leg: LegRef,
        key: &TransactionKey,
        req: &Request,
    ) -> bool {
        let released = self
            .calls
            .get(id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| {
                t.transferor == leg && (t.state == TransferState::Done || t.transferor_gone)
            });
        if !released {
            return false;
        }
        let resp = if req.method == Method::Bye {
            let mut r = crate::sip::response_to(req, 200, "OK");
            self.finish_response(&mut r);
            r
        } else {
            self.reject_response(req, Reject::NoSuchDialog)
        };
        self.send_response(key, resp);
        true
    }

    /// The transferor's BYE (answered 200) while its target rings: the transfer goes on
    /// without NOTIFYs. False when `leg` is not a transferor's.
    pub(super) fn transferor_leaves(&mut self, id: CallId, leg: LegRef) -> bool {
        let Some(t) = self.calls.get_mut(id).and_then(|c| c.transfer.as_mut()) else {
            return false;
        };
        if t.transferor != leg || t.state != TransferState::Calling {
            return false;
        }
        t.transferor_gone = true;
        tracing::info!(target: "ferroswitch::call", call = id, "transferor hung up before the target answered");
        true
    }

    /// BYE to the transferor on `leg` (`Reason: Q.850;cause=16`). Its dialog stays indexed:
    /// a BYE of the transferor's crossing ours gets a 200 (`on_released_transferor`).
    pub(super) fn release_transferor(&mut self, id: CallId, leg: LegRef) {
        let key = self.leg_dialog(id, leg).map(|d| d.key().clone());
        self.bye_leg(id, leg, HangupCause::NormalClearing);
        if let Some(key) = key {
            self.calls.add_dialog(key, id, leg);
        }
    }

    /// A re-INVITE on `leg` (the answered callee's or the caller's) offering `sdp`, so its
    /// media goes to a new party. Sent and answered like an RFC 4028 refresh (`refresh`:
    /// the 2xx is ACKed and its SDP followed by the relay, 408/481 end the call).
    pub(super) fn reoffer(&mut self, id: CallId, leg: LegRef, sdp: Bytes) {
        let branch = self.our_branch();
        let ua = self.cfg.user_agent.clone();
        let session = self.cfg.calls.session;
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let (side, peer, adv, timer, dialog) = match leg {
            LegRef::A => (
                0,
                call.a.peer,
                call.a.advertised.clone(),
                call.a.session_timer,
                call.a.dialog.as_mut(),
            ),
            LegRef::B(i) => match call.b.get_mut(i) {
                Some(b) => (
                    1,
                    b.peer,
                    b.advertised.clone(),
                    b.session_timer,
                    b.dialog.as_mut(),
                ),
                None => return,
            },
        };
        let Some(d) = dialog else {
            return;
        };
        let via = ViaSpec::new(peer.transport, adv, branch);
        let Ok(mut req) = d.new_request(Method::Invite, &via) else {
            tracing::debug!(target: "ferroswitch::call", call = id, ?leg, "not re-INVITEd after the transfer: an INVITE is pending");
            return;
        };
        if let Some(t) = timer {
            t.write_refresh_headers(&mut req.headers, &session);
        }
        super::respond::push_user_agent(&mut req.headers, HeaderName::UserAgent, &ua);
        req.headers.push(HeaderName::ContentType, "application/sdp");
        req.body = sdp;
        if let Some(key) = self.send_request(req, peer) {
            self.calls.add_refresh(key, id, side);
        }
    }

    /// The transferor's own record: its part of the call, ended by the transfer.
    pub(super) fn transferor_cdr(&mut self, wall: SystemTime, id: CallId, cause: HangupCause) {
        if !self.cfg.calls.cdrs {
            return;
        }
        let run_id = self.run_id;
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let Some(t) = call.transfer.as_deref() else {
            return;
        };
        // The transferor's b-leg, or for a caller the callee's (its part was with it).
        let (b, side) = match t.transferor {
            LegRef::B(i) => (call.b.get(i), Side::Callee),
            LegRef::A => (call.winner.and_then(|w| call.b.get(w)), Side::Caller),
        };
        let rec = CdrRecord {
            call_id: format!("{run_id}-{}-t{}", call.id, t.count),
            a_leg_call_id: call
                .a
                .invite
                .headers
                .call_id()
                .unwrap_or_default()
                .to_string(),
            b_leg_call_id: b.and_then(|b| b.invite.headers.call_id().map(str::to_string)),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            start_time: crate::clock::rfc3339(call.start),
            answer_time: call.answer.map(crate::clock::rfc3339),
            end_time: crate::clock::rfc3339(wall),
            duration: seconds_between(call.start, wall),
            billsec: call.answer.map_or(0, |a| seconds_between(a, wall)),
            hangup_cause: cause.name(),
            hangup_cause_code: cause.code(),
            sip_status: 200,
            hangup_side: side,
            caller_transport: call.a.peer.transport.as_str(),
            callee_transport: b.map(|b| b.peer.transport.as_str()),
            media: None,
            transferred_to: Some(t.target.user.clone()),
            transferred_by: Some(t.by.user.clone()),
            node: self.cfg.node_id.clone(),
        };
        self.out.push_back(Command::Cdr(Box::new(rec)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3264_6_1_held_directions_become_sendrecv_for_the_new_party() {
        let held = Bytes::from_static(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n");
        assert_eq!(
            &sendrecv(&held)[..],
            b"v=0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"
        );
        let plain = Bytes::from_static(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n");
        assert_eq!(sendrecv(&plain), plain);
    }

    #[test]
    fn a_route_without_contacts_is_a_notify_with_480_or_404() {
        assert_eq!(
            transfer_target(Route::NoSuchUser { user: "x".into() }).err(),
            Some(404)
        );
        let none = Route::User {
            callee: Party {
                user: "carol".into(),
                display_name: None,
            },
            bindings: vec![],
        };
        assert_eq!(transfer_target(none).err(), Some(480));
    }
}
