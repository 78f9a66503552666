//! A call in progress: the callee's responses relayed to the caller (180 → 180, 183 with SDP
//! → 183 with SDP, 200 → 200 with the callee's SDP, failures → the best failure), the ACKs on
//! both legs (late offer included), the 2xx retransmitted to the caller until its ACK, CANCEL,
//! the no-answer timer, and the end of the call with its CDR.

use super::core::{request_command, B2bua, Command};
use super::respond::{ALLOW, SUPPORTED};
use super::setup::identity;
use super::{BLegState, CallId, CallState, CallTimer, LegRef};
use crate::cdr::{seconds_between, CdrRecord, HangupCause, Side};
use crate::dialog::{Dialog, DialogState, SessionTimer, ViaSpec};
use crate::net::Peer;
use crate::sip::{reason_phrase, response_to, HeaderName, Method, NameAddr, Response, Uri};
use crate::transaction::TransactionKey;
use std::time::{Instant, SystemTime};

impl B2bua {
    /// A response on a b-leg INVITE client transaction.
    pub(super) fn on_b_response(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: CallId,
        leg: usize,
        resp: Response,
    ) {
        let _span = self.enter(id);
        if self.is_transfer_leg(id, leg) {
            // A leg calling a transfer's target (`transfer`), not one of the first ring.
            return self.on_transfer_response(now, wall, id, leg, resp);
        }
        let status = resp.status;
        // The caller's dialog starts with the first 18x/2xx we send it: post-dial delay.
        let waiting = self.calls.get(id).filter(|c| c.a.dialog.is_none());
        let start = waiting.map(|c| c.start);
        if matches!(status, 401 | 407) && self.answer_challenge(id, leg, &resp) {
            return;
        }
        if (300..400).contains(&status) {
            self.follow_redirect(id, &resp);
        }
        // RFC 3263 §4.3: a trunk's server that is unavailable; its next address is tried.
        // (Not a 503 of ours standing for refused credentials below.)
        if status == 503 && self.fail_over(now, id, leg, status) {
            return self.b_failed(wall, id, leg, status);
        }
        let status = match status {
            // A trunk that refuses our credentials: the caller can do nothing about it.
            401 | 407 if self.is_trunk_leg(id, leg) => 503,
            s => s,
        };
        match status {
            100 => {}
            101..=199 => self.b_provisional(now, id, leg, &resp),
            200..=299 => self.b_answered(now, wall, id, leg, &resp),
            _ => self.b_failed(wall, id, leg, status),
        }
        let answered = self.calls.get(id).is_some_and(|c| c.a.dialog.is_some());
        if let (Some(start), true) = (start, answered) {
            let pdd = wall.duration_since(start).unwrap_or_default();
            self.stats.calls.post_dial_delay(pdd);
        }
    }

    fn b_provisional(&mut self, now: Instant, id: CallId, leg: usize, resp: &Response) {
        self.b_early_dialog(id, leg, resp);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(b) = call.b.get_mut(leg) else {
            return;
        };
        if b.state == BLegState::Calling {
            b.state = BLegState::Early;
        }
        if call.state != CallState::Ringing || call.cancelled {
            return;
        }
        let anchored;
        let resp = if self.anchors_media() && !resp.body.is_empty() {
            let mut r = resp.clone();
            r.body = self.anchor(now, id, LegRef::B(leg), &resp.headers, &resp.body);
            anchored = r;
            &anchored
        } else {
            resp
        };
        let out = self.a_response(id, resp.status, &phrase_of(resp), Some(resp));
        self.send_a(id, out);
    }

    /// A provisional response with a To tag on b-leg `leg`: its early dialog starts (or
    /// follows the response).
    pub(super) fn b_early_dialog(&mut self, id: CallId, leg: usize, resp: &Response) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(b) = call.b.get_mut(leg) else {
            return;
        };
        if resp.headers.to_tag().is_some() {
            match &mut b.dialog {
                Some(d) => {
                    if let Err(e) = d.handle_response(resp) {
                        tracing::debug!(target: "ferroswitch::call", call = id, leg, %e, "provisional response not taken by the b-leg dialog");
                    }
                }
                None => {
                    if let Ok(d) = Dialog::from_uac(&b.invite, resp) {
                        let key = d.key().clone();
                        b.dialog = Some(d);
                        self.calls.add_dialog(key, id, LegRef::B(leg));
                    }
                }
            }
        }
    }

    /// A 2xx on b-leg `leg` that was answered already is a retransmission: ACKed again
    /// (RFC 3261 §13.2.2.4, RFC 6026 §7.2) and nothing more. True when it was one.
    pub(super) fn reack_retransmitted_2xx(&mut self, id: CallId, leg: usize) -> bool {
        let Some(b) = self.calls.get(id).and_then(|c| c.b.get(leg)) else {
            return true;
        };
        if let Some(ack) = b.ack.clone() {
            let to = b.peer;
            self.out.push_back(Command::Transmit { to, bytes: ack });
            return true;
        }
        if b.state != BLegState::Answered {
            return false;
        }
        if !b.ack_waits_for_caller {
            // Past the 64·T1 window the stored ACK was dropped: build it again.
            self.ack_b(id, leg, None);
        }
        // Late offer: still waiting for the caller's ACK to answer this one.
        true
    }

    fn b_answered(
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
                    tracing::debug!(target: "ferroswitch::call", call = id, leg, %e, "2xx not taken by the b-leg dialog");
                }
                Some(d)
            }
            None => Dialog::from_uac(&b.invite, resp).ok(),
        };
        let Some(dialog) = dialog else {
            tracing::warn!(target: "ferroswitch::call", call = id, "unusable 2xx from callee");
            return self.b_failed(wall, id, leg, 502);
        };
        let dkey = dialog.key().clone();
        b.dialog = Some(dialog);
        b.state = BLegState::Answered;
        b.session_timer = SessionTimer::negotiate_uac(&resp.headers).ok().flatten();
        b.answer_sdp = (!resp.body.is_empty()).then(|| resp.body.clone());
        b.allows_update = super::refresh::allows_update(&resp.headers);
        if self.media.is_none() && super::media::is_sdp(&resp.headers, &resp.body) {
            call.bypass_sdp[1] = Some(resp.body.clone());
        }
        let lost = call.winner.is_some() || call.cancelled || call.state != CallState::Ringing;
        self.calls.add_dialog(dkey, id, LegRef::B(leg));
        let window = self.cfg.timers.t1 * 64;
        self.calls
            .schedule(now + window, id, CallTimer::AckWindowOver);
        if lost {
            // Another fork won, or the caller is gone: ACK and hang up this one (§13.2.2.4).
            self.ack_b(id, leg, None);
            self.bye_b(id, leg, HangupCause::NormalClearing);
            return self.maybe_finish(wall, id);
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.winner = Some(leg);
        call.state = CallState::Answered;
        call.answer = Some(wall);
        call.no_answer_at = None;
        self.stats.calls.answered += 1;
        let late_offer = call.a.invite.body.is_empty();
        call.b[leg].ack_waits_for_caller = late_offer;
        let others: Vec<usize> = (0..call.b.len())
            .filter(|&i| {
                i != leg && matches!(call.b[i].state, BLegState::Calling | BLegState::Early)
            })
            .collect();
        if !late_offer {
            self.ack_b(id, leg, None);
        }
        for i in others {
            self.cancel_b(id, i);
        }
        self.arm_session_timers(now, id);
        // The winner's SDP goes to the caller with our relay ports (an offer, for a late
        // offer: the relay is allocated now).
        let anchored;
        let resp = if self.anchors_media() && !resp.body.is_empty() {
            let mut r = resp.clone();
            r.body = self.anchor(now, id, LegRef::B(leg), &resp.headers, &resp.body);
            if let Some(b) = self.calls.get_mut(id).and_then(|c| c.b.get_mut(leg)) {
                b.answer_sdp = Some(r.body.clone());
            }
            anchored = r;
            &anchored
        } else {
            resp
        };
        let mut out = self.a_response(id, resp.status, &phrase_of(resp), Some(resp));
        if let Some(call) = self.calls.get(id) {
            if let Some(t) = &call.a.session_timer {
                t.write_response_headers(&mut out.headers, &self.cfg.calls.session);
            }
        }
        // Retransmit until the caller's ACK (§13.3.1.4): T1, doubling, capped at T2.
        let t1 = self.cfg.timers.t1;
        if let Some(call) = self.calls.get_mut(id) {
            call.a.ok = Some(Box::new(out.clone()));
            call.a.ok_interval = t1;
            call.a.ok_give_up = Some(now + t1 * 64);
            call.ok_next = Some(now + t1);
            self.calls.schedule(now + t1, id, CallTimer::OkRetransmit);
        }
        tracing::info!(target: "ferroswitch::call", call = id, leg, "answered");
        self.send_a(id, out);
    }

    fn b_failed(&mut self, wall: SystemTime, id: CallId, leg: usize, status: u16) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(b) = call.b.get_mut(leg) else {
            return;
        };
        if matches!(b.state, BLegState::Failed(_)) {
            return;
        }
        // A 487 the caller did not ask for: we cancelled a contact on our own (its phone
        // hung up while ringing), which for the caller is "not available".
        let status = if status == 487 && !call.cancelled {
            480
        } else {
            status
        };
        b.state = BLegState::Failed(status);
        if let Some(d) = b.dialog.take() {
            self.calls.remove_dialog(d.key());
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Some(plan) = call.plan.as_ref() {
            // Groups, forwarding, redirects: the step decides what follows (`plan`).
            if call.winner.is_none() && call.state == CallState::Ringing && !call.cancelled {
                let start = plan.step_start.min(call.b.len());
                let step_pending = call.b[start..]
                    .iter()
                    .any(|l| matches!(l.state, BLegState::Calling | BLegState::Early));
                if !step_pending {
                    self.step_failed(wall, id);
                }
            }
            return self.maybe_finish(wall, id);
        }
        if call.winner.is_none() && call.state == CallState::Ringing && call.all_b_legs_done() {
            let best = call.best_failure().unwrap_or(480);
            if call.end.is_none() {
                call.end = Some((HangupCause::from_sip_status(best), best, Side::Callee));
            }
            call.state = CallState::Ending;
            if !call.cancelled {
                let out = self.a_response(id, best, reason_phrase(best), None);
                self.send_a(id, out);
            }
        }
        self.maybe_finish(wall, id);
    }

    /// The caller's ACK for our 2xx (its INVITE server transaction is in Accepted, or gone).
    pub(super) fn on_a_ack(&mut self, now: Instant, id: CallId, ack: &crate::sip::Request) {
        let _span = self.enter(id);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Some(d) = &mut call.a.dialog {
            let _ = d.handle_request(ack);
        }
        if call.state != CallState::Answered {
            return;
        }
        call.state = CallState::Connected;
        call.a.ok = None;
        call.ok_next = None;
        if let Some(w) = call.winner {
            if call.b[w].ack_waits_for_caller {
                call.b[w].ack_waits_for_caller = false;
                let body = (!ack.body.is_empty()).then(|| {
                    (
                        self.anchor(now, id, LegRef::A, &ack.headers, &ack.body),
                        ack.headers
                            .get_str(&HeaderName::ContentType)
                            .map(str::to_string),
                    )
                });
                self.ack_b(id, w, body);
            }
        }
        if let Some(call) = self.calls.get_mut(id) {
            call.compact();
        }
    }

    /// ACKs the 2xx of b-leg `leg` (with the caller's SDP answer for a late offer).
    pub(super) fn ack_b(
        &mut self,
        id: CallId,
        leg: usize,
        body: Option<(bytes::Bytes, Option<String>)>,
    ) {
        let branch = self.our_branch();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let b = &mut call.b[leg];
        let Some(d) = &b.dialog else {
            return;
        };
        let Some(seq) = d.last_sent_invite() else {
            return;
        };
        let via = ViaSpec::new(b.peer.transport, b.advertised.clone(), branch);
        let Ok(mut ack) = d.ack(seq, &via) else {
            return;
        };
        if let Some((body, ctype)) = body {
            if let Some(ct) = ctype {
                ack.headers.push(HeaderName::ContentType, ct);
            }
            ack.body = body;
        }
        let bytes = ack.to_bytes();
        b.ack = Some(bytes.clone());
        self.out.push_back(Command::Transmit { to: b.peer, bytes });
    }

    pub(super) fn cancel_b(&mut self, id: CallId, leg: usize) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let b = &mut call.b[leg];
        if !matches!(b.state, BLegState::Calling | BLegState::Early) {
            return;
        }
        b.state = BLegState::Cancelling;
        let key = b.key.clone();
        self.out.push_back(Command::Cancel { key });
    }

    /// BYE on b-leg `leg` with a Q.850 Reason.
    fn bye_b(&mut self, id: CallId, leg: usize, cause: HangupCause) {
        self.bye_leg(id, LegRef::B(leg), cause);
    }

    /// BYE to the caller with a Q.850 Reason.
    fn bye_a(&mut self, id: CallId, cause: HangupCause) {
        self.bye_leg(id, LegRef::A, cause);
    }

    /// BYE on one leg's dialog with `Reason: Q.850;cause=…` (as in the seed); the dialog
    /// leaves the index at once (§15.1.1: the session is over when the BYE is sent).
    pub(super) fn bye_leg(&mut self, id: CallId, leg: LegRef, cause: HangupCause) {
        let branch = self.our_branch();
        let ua = self.cfg.user_agent.clone();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let (peer, advertised, dialog) = match leg {
            LegRef::A => (call.a.peer, &call.a.advertised, &mut call.a.dialog),
            LegRef::B(i) => match call.b.get_mut(i) {
                Some(b) => (b.peer, &b.advertised, &mut b.dialog),
                None => return,
            },
        };
        let via = ViaSpec::new(peer.transport, advertised.clone(), branch);
        let Some(d) = dialog else {
            return;
        };
        let key = d.key().clone();
        // Whether or not the BYE can go out, the call is over on our side: the dialog
        // leaves the index and the caller of this function finishes the call.
        match d.new_request(Method::Bye, &via) {
            Ok(mut bye) => {
                bye.headers.push(HeaderName::Reason, cause.reason_header());
                super::respond::push_user_agent(&mut bye.headers, HeaderName::UserAgent, &ua);
                self.out.extend(request_command(bye, peer));
            }
            Err(e) => {
                tracing::debug!(target: "ferroswitch::call", call = id, ?leg, %e, "BYE not built")
            }
        }
        self.calls.remove_dialog(&key);
    }

    /// Hangs up an established (or answered) call from `side`'s end: BYE to the other side.
    pub(super) fn hang_up(&mut self, wall: SystemTime, id: CallId, by: Side, cause: HangupCause) {
        let _span = self.enter(id);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.end.is_none() {
            call.end = Some((cause, 200, by));
        }
        call.state = CallState::Ending;
        call.a.ok = None;
        call.ok_next = None;
        call.reinvite_ok_next = None;
        let winner = call.winner;
        // A transfer's target still ringing is given up with the call.
        self.cancel_transfer_legs(id);
        if by != Side::Caller {
            self.bye_a(id, cause);
        }
        if by != Side::Callee {
            if let Some(w) = winner {
                self.bye_b(id, w, cause);
            }
        }
        self.maybe_finish(wall, id);
    }

    /// CANCEL from the caller for the INVITE of call `id` (the 200 to the CANCEL is sent).
    pub(super) fn on_a_cancel(&mut self, wall: SystemTime, id: CallId) {
        let _span = self.enter(id);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::Ringing || call.cancelled {
            return;
        }
        call.cancelled = true;
        call.state = CallState::Ending;
        call.no_answer_at = None;
        call.end = Some((HangupCause::OriginatorCancel, 487, Side::Caller));
        let legs = call.b.len();
        let out = self.a_response(id, 487, "Request Terminated", None);
        self.send_a(id, out);
        for i in 0..legs {
            self.cancel_b(id, i);
        }
        self.maybe_finish(wall, id);
    }

    /// Timer-driven events of calls.
    pub(super) fn handle_call_timers(&mut self, now: Instant, wall: SystemTime) {
        for (id, timer) in self.calls.pop_due(now) {
            let _span = self.enter(id);
            match timer {
                CallTimer::NoAnswer => self.no_answer(wall, id),
                CallTimer::Step => self.step_timeout(wall, id),
                CallTimer::OkRetransmit => self.retransmit_ok(now, wall, id),
                CallTimer::ReinviteOk => self.retransmit_reinvite_ok(now, wall, id),
                CallTimer::Expire(side) => {
                    tracing::info!(target: "ferroswitch::call", call = id, side, "session timer expired");
                    self.hang_up(wall, id, Side::System, HangupCause::RecoveryOnTimerExpire)
                }
                CallTimer::Refresh(side) => self.send_refresh(wall, id, side),
                CallTimer::TransferNoAnswer => self.transfer_no_answer(id),
                CallTimer::AckWindowOver => {
                    // A body-less ACK is rebuilt from the dialog if a 2xx ever comes again;
                    // a late-offer ACK (it carries the caller's answer) is kept.
                    if let Some(call) = self.calls.get_mut(id) {
                        for b in &mut call.b {
                            if b.ack.as_ref().is_some_and(|a| a.ends_with(b"\r\n\r\n")) {
                                b.ack = None;
                            }
                        }
                    }
                }
            }
        }
    }

    fn no_answer(&mut self, wall: SystemTime, id: CallId) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::Ringing {
            return;
        }
        // Forwarding on no answer, a group's next member: the step ends, the call goes on.
        if call.plan.as_ref().is_some_and(|p| !p.next.is_empty()) {
            return self.step_timeout(wall, id);
        }
        call.cancelled = true;
        call.state = CallState::Ending;
        call.no_answer_at = None;
        call.end = Some((HangupCause::NoAnswer, 480, Side::System));
        let legs = call.b.len();
        let out = self.a_response(id, 480, "Temporarily Unavailable", None);
        self.send_a(id, out);
        for i in 0..legs {
            self.cancel_b(id, i);
        }
        self.maybe_finish(wall, id);
    }

    fn retransmit_ok(&mut self, now: Instant, wall: SystemTime, id: CallId) {
        let t2 = self.cfg.timers.t2;
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let (Some(ok), Some(give_up)) = (call.a.ok.clone(), call.a.ok_give_up) else {
            return;
        };
        if now >= give_up {
            // §13.3.1.4: no ACK for 64·T1: confirm, then end the session with BYE.
            tracing::info!(target: "ferroswitch::call", call = id, "no ACK from caller");
            call.state = CallState::Connected;
            return self.hang_up(wall, id, Side::System, HangupCause::RecoveryOnTimerExpire);
        }
        let next = next_2xx_retransmit(now, &mut call.a.ok_interval, give_up, t2);
        call.ok_next = Some(next);
        let (key, peer) = (call.a.invite_key.clone(), call.a.peer);
        self.calls.schedule(next, id, CallTimer::OkRetransmit);
        self.resend_2xx(&key, &ok, Some(peer));
    }

    /// Sends a 2xx we answered an INVITE with again: through its server transaction `key`,
    /// or, once that is gone (Timer L), statelessly to the peer it went to. Used for the
    /// call's first 2xx and for a relayed re-INVITE's (`retransmit_reinvite_ok`).
    pub(super) fn resend_2xx(&mut self, key: &TransactionKey, ok: &Response, to: Option<Peer>) {
        self.out.push_back(Command::Resend2xx {
            key: key.clone(),
            response: ok.clone(),
            fallback: to,
        });
    }

    /// RFC 4028 deadlines on each leg (0 caller, 1 answered callee), counted from `now`:
    /// where the peer refreshes, when we give up on it (Expire); where we refresh, when we
    /// send the refresh (Refresh).
    pub(super) fn arm_session_timers(&mut self, now: Instant, id: CallId) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let timers = [
            call.a.session_timer,
            call.winner.and_then(|w| call.b[w].session_timer),
        ];
        let mut scheduled = Vec::new();
        for (i, t) in timers.iter().enumerate() {
            call.expire_at[i] = None;
            call.refresh_at[i] = None;
            match t {
                Some(t) if t.local_refresher => {
                    let at = t.refresh_at(now);
                    call.refresh_at[i] = Some(at);
                    scheduled.push((at, CallTimer::Refresh(i)));
                }
                Some(t) => {
                    let at = t.expire_at(now);
                    call.expire_at[i] = Some(at);
                    scheduled.push((at, CallTimer::Expire(i)));
                }
                None => {}
            }
        }
        for (at, timer) in scheduled {
            self.calls.schedule(at, id, timer);
        }
    }

    /// Once the call has ended for its users: the CDR goes out (timed at that moment), and
    /// the call leaves the table as soon as no b-leg is pending any more.
    pub(super) fn maybe_finish(&mut self, wall: SystemTime, id: CallId) {
        let run_id = self.run_id;
        // The relay's ports go back as the call ends for its users; its counters go into
        // the CDR.
        let ending = self
            .calls
            .get(id)
            .is_some_and(|c| c.end.is_some() && !c.cdr_written);
        let media = if ending { self.release_media(id) } else { None };
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some((cause, status, side)) = call.end else {
            return;
        };
        let ended_at = *call.ended_at.get_or_insert(wall);
        if !call.cdr_written {
            call.cdr_written = true;
            // The caller's per-user / per-source count is given back as the call ends for
            // its users, not when its last b-leg settles.
            if let Some(h) = call.hold.take() {
                self.call_limits.release(h);
            }
            tracing::info!(
                target: "ferroswitch::call",
                call = call.id, cause = cause.name(),
                billsec = call.answer.map_or(0, |a| seconds_between(a, ended_at)), "call ended"
            );
            self.stats.calls_ended += 1;
            self.stats.calls.ended(cause);
            if !self.cfg.calls.cdrs {
                // No CDR file: nobody reads the record, so it is not built.
                return self.forget_if_done(id);
            }
            let done = call
                .transfer
                .as_deref()
                .filter(|t| t.state == super::TransferState::Done);
            let b_call_id = call
                .winner
                .and_then(|w| call.b[w].invite.headers.call_id().map(str::to_string))
                .or(call.first_b_call_id.clone());
            let rec = CdrRecord {
                call_id: format!("{run_id}-{}", call.id),
                a_leg_call_id: call
                    .a
                    .invite
                    .headers
                    .call_id()
                    .unwrap_or_default()
                    .to_string(),
                b_leg_call_id: b_call_id,
                caller: call.caller.clone(),
                callee: call.callee.clone(),
                start_time: crate::clock::rfc3339(call.start),
                answer_time: call.answer.map(crate::clock::rfc3339),
                end_time: crate::clock::rfc3339(ended_at),
                duration: seconds_between(call.start, ended_at),
                billsec: call.answer.map_or(0, |a| seconds_between(a, ended_at)),
                hangup_cause: cause.name(),
                hangup_cause_code: cause.code(),
                sip_status: if call.answer.is_some() { 200 } else { status },
                hangup_side: side,
                caller_transport: call.a.peer.transport.as_str(),
                callee_transport: call
                    .winner
                    .or((!call.b.is_empty()).then_some(0))
                    .and_then(|w| call.b.get(w))
                    .map(|b| b.peer.transport.as_str()),
                media: media.as_ref().map(super::media::cdr_media),
                // The call went on after a transfer: who sent it where (`transfer`).
                transferred_to: done.map(|t| t.target.user.clone()),
                transferred_by: done.map(|t| t.by.user.clone()),
                node: self.cfg.node_id.clone(),
            };
            self.out.push_back(Command::Cdr(Box::new(rec)));
        }
        self.forget_if_done(id);
    }

    /// Removes an ended call from the table once no b-leg is still being set up.
    fn forget_if_done(&mut self, id: CallId) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let pending = call.b.iter().any(|l| {
            matches!(
                l.state,
                BLegState::Calling | BLegState::Early | BLegState::Cancelling
            )
        });
        if !pending {
            self.release_media(id);
            if let Some(mut call) = self.calls.remove(id) {
                if let Some(h) = call.hold.take() {
                    self.call_limits.release(h);
                }
                for b in call.b.iter().filter(|b| b.state == BLegState::Answered) {
                    self.remember_ended_b(b.key.clone());
                }
            }
        }
    }

    fn remember_ended_b(&mut self, key: TransactionKey) {
        const KEEP: usize = 20_000;
        if self.ended_b.insert(key.clone()) {
            self.ended_b_order.push_back(key);
        }
        while self.ended_b_order.len() > KEEP {
            if let Some(old) = self.ended_b_order.pop_front() {
                self.ended_b.remove(&old);
            }
        }
    }

    /// A response to the caller's INVITE: To tag, our Contact, the callee's identity
    /// (Remote-Party-ID, as the seed's FreeSWITCH sends), the callee's body for 18x/2xx.
    pub(super) fn a_response(
        &mut self,
        id: CallId,
        status: u16,
        phrase: &str,
        from_b: Option<&Response>,
    ) -> Response {
        let ua = self.cfg.user_agent.clone();
        let Some(call) = self.calls.get_mut(id) else {
            return Response::new(500, "Server Internal Error");
        };
        let a = &mut call.a;
        let mut r = response_to(&a.invite, status, phrase);
        super::respond::push_user_agent(&mut r.headers, HeaderName::Server, &ua);
        if status == 100 {
            return r;
        }
        crate::sip::set_to_tag(&mut r, &a.local_tag);
        if (101..300).contains(&status) {
            // RFC 3261 §12.1.1: the caller's proxies (a provider's edge) stay on the path of
            // its in-dialog requests only if the dialog-creating answer lists them again.
            for rr in a.invite.headers.get_all(&HeaderName::RecordRoute) {
                r.headers.push_header(rr.clone());
            }
            let tp = a.peer.transport.uri_param();
            let contact = format!("<sip:{}@{}{tp}>", call.callee.user, a.advertised);
            r.headers.push(HeaderName::Contact, contact.clone());
            r.headers.push(
                HeaderName::RemotePartyId,
                format!(
                    "{};party=called;screen=yes;privacy=off",
                    identity(&call.callee, &call.domain)
                ),
            );
            r.headers.push(HeaderName::Allow, ALLOW);
            r.headers.push(HeaderName::Supported, SUPPORTED);
            if let Some(b) = from_b {
                if !b.body.is_empty() {
                    if let Some(ct) = b.headers.get(&HeaderName::ContentType) {
                        r.headers.push_header(ct.clone());
                    }
                    r.body = b.body.clone();
                }
            }
            if a.dialog.is_none() {
                let na = Uri::parse(&contact[1..contact.len() - 1])
                    .ok()
                    .map(NameAddr::new);
                if let Some(na) = na {
                    if let Ok(d) = Dialog::from_uas(&a.invite, &a.local_tag, na) {
                        let key = d.key().clone();
                        a.dialog = Some(d);
                        self.calls.add_dialog(key, id, LegRef::A);
                    }
                }
            }
        }
        r
    }

    /// Sends a response on the caller's INVITE transaction.
    pub(super) fn send_a(&mut self, id: CallId, resp: Response) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Some(d) = &mut call.a.dialog {
            if d.handle_sent_response(&resp) == DialogState::Terminated {
                let key = d.key().clone();
                self.calls.remove_dialog(&key);
            }
        }
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let key = call.a.invite_key.clone();
        self.send_response(&key, resp);
    }

    /// A client transaction of ours timed out or could not be sent.
    pub(super) fn on_client_failure(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: &TransactionKey,
        status: u16,
    ) {
        if let Some((id, leg)) = self.calls.by_b_invite(key) {
            let established = self.calls.get(id).is_some_and(|c| c.winner == Some(leg));
            if !established && self.is_transfer_leg(id, leg) {
                let _span = self.enter(id);
                return self.transfer_leg_failed(wall, id, leg, status);
            }
            if !established {
                // Timer B or a transport error toward a trunk: its next address is tried.
                self.fail_over(now, id, leg, status);
                return self.b_failed(wall, id, leg, status);
            }
        }
        if self.on_message_answer(key, status) {
            return;
        }
        if self.on_refresh_response(now, wall, key, None) {
            return;
        }
        if let Some(relay) = self.calls.take_relay(key) {
            let resp = self.relay_error(&relay.original, status);
            self.send_response(&relay.server_key, resp);
            // A dialog that cannot be reached is over (§12.2.1.2).
            if status == 408 || status == 481 {
                self.hang_up(
                    wall,
                    relay.call,
                    Side::System,
                    HangupCause::RecoveryOnTimerExpire,
                );
            }
        }
    }

    fn relay_error(&mut self, original: &crate::sip::Request, status: u16) -> Response {
        self.response(original, status, reason_phrase(status))
    }

    pub(super) fn peer_of(&self, id: CallId, leg: LegRef) -> Option<Peer> {
        let call = self.calls.get(id)?;
        Some(match leg {
            LegRef::A => call.a.peer,
            LegRef::B(i) => call.b.get(i)?.peer,
        })
    }
}

/// The next retransmission of a 2xx still waiting for its ACK (RFC 3261 §13.3.1.4: the
/// interval doubles from T1 up to T2), never later than `give_up` (64·T1 after the first
/// send), which the caller checks first. Shared by the call's first 2xx and a relayed
/// re-INVITE's.
pub(super) fn next_2xx_retransmit(
    now: Instant,
    interval: &mut std::time::Duration,
    give_up: Instant,
    t2: std::time::Duration,
) -> Instant {
    *interval = (*interval * 2).min(t2);
    (now + *interval).min(give_up)
}

/// The reason phrase of a response as text.
pub(super) fn phrase_of(r: &Response) -> String {
    match std::str::from_utf8(&r.reason) {
        Ok(s) if !s.is_empty() => s.to_string(),
        _ => reason_phrase(r.status).to_string(),
    }
}
