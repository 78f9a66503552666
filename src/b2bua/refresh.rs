//! RFC 4028 refreshes the switch sends itself, on a leg where it is the refresher (a caller
//! that asked for `refresher=uas`, a callee that answered `refresher=uac`): at half the
//! interval, an UPDATE without a body when the peer allows UPDATE, else a re-INVITE offering
//! the same SDP again (unchanged, so the same o= version, RFC 3264 §8). A 2xx restarts the
//! timers; a 481/408 or no answer ends the call.

use super::core::B2bua;
use super::{CallId, CallState, LegRef};
use crate::cdr::{HangupCause, Side};
use crate::dialog::ViaSpec;
use crate::sip::{HeaderName, Method, Response};
use crate::transaction::TransactionKey;
use std::time::{Instant, SystemTime};

impl B2bua {
    /// `side` 0 is the caller's leg, 1 the answered callee's.
    pub(super) fn send_refresh(&mut self, wall: SystemTime, id: CallId, side: usize) {
        let branch = self.our_branch();
        let session = self.cfg.calls.session;
        let ua = self.cfg.user_agent.clone();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.state != CallState::Connected {
            return;
        }
        call.refresh_at[side] = None;
        let (leg, peer, adv, timer, allows_update, sdp) = match (side, call.winner) {
            (0, _) => (
                LegRef::A,
                call.a.peer,
                call.a.advertised.clone(),
                call.a.session_timer,
                allows(&call.a.invite.headers),
                call.winner.and_then(|w| call.b[w].answer_sdp.clone()),
            ),
            (_, Some(w)) => (
                LegRef::B(w),
                call.b[w].peer,
                call.b[w].advertised.clone(),
                call.b[w].session_timer,
                call.b[w].allows_update,
                // What the callee got from us: with media anchored, our rewritten offer.
                call.media
                    .as_ref()
                    .and_then(|m| m.last_sent[1].clone())
                    .or_else(|| Some(call.a.invite.body.clone()))
                    .filter(|b| !b.is_empty()),
            ),
            _ => return,
        };
        let (Some(timer), dialog) = (
            timer,
            match leg {
                LegRef::A => call.a.dialog.as_mut(),
                LegRef::B(w) => call.b[w].dialog.as_mut(),
            },
        ) else {
            return;
        };
        let Some(dialog) = dialog else {
            return;
        };
        let method = if allows_update || sdp.is_none() {
            Method::Update
        } else {
            Method::Invite
        };
        let via = ViaSpec::new(peer.transport, adv, branch);
        let Ok(mut req) = dialog.new_request(method.clone(), &via) else {
            // An INVITE is pending in this dialog (a relayed one): it refreshes too.
            return;
        };
        timer.write_refresh_headers(&mut req.headers, &session);
        super::respond::push_user_agent(&mut req.headers, HeaderName::UserAgent, &ua);
        if method == Method::Invite {
            if let Some(sdp) = sdp {
                req.headers.push(HeaderName::ContentType, "application/sdp");
                req.body = sdp;
            }
        }
        // A send the transaction layer refuses comes back as a failure of this refresh
        // (`on_refresh_response` without a response), which ends the call.
        match self.send_request(req, peer) {
            Some(key) => self.calls.add_refresh(key, id, side),
            None => self.hang_up(wall, id, Side::System, HangupCause::RecoveryOnTimerExpire),
        }
    }

    /// The answer to a refresh of ours; false when `key` is not one.
    pub(super) fn on_refresh_response(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: &TransactionKey,
        resp: Option<&Response>,
    ) -> bool {
        let Some((id, side)) = self.calls.refresh_of(key) else {
            return false;
        };
        let _span = self.enter(id);
        let status = resp.map_or(408, |r| r.status);
        if status < 200 {
            return true;
        }
        self.calls.take_refresh(key);
        let leg = match (side, self.calls.get(id).and_then(|c| c.winner)) {
            (0, _) => LegRef::A,
            (_, Some(w)) => LegRef::B(w),
            _ => return true,
        };
        if let Some(resp) = resp {
            if let Some(d) = self.leg_dialog(id, leg) {
                if let Err(e) = d.handle_response(resp) {
                    tracing::debug!(target: "ferroswitch::call", call = id, ?leg, %e, "refresh response not taken by the dialog");
                }
            }
        }
        if (200..300).contains(&status) {
            // The answer to an offer of ours (a refresh offers the same SDP again; after a
            // transfer, the other party's): the relay follows it.
            if let Some(r) = resp.filter(|r| super::media::is_sdp(&r.headers, &r.body)) {
                let _ = self.anchor(now, id, leg, &r.headers, &r.body);
            }
            if resp.is_some_and(|r| r.headers.cseq().is_some_and(|c| c.method == Method::Invite)) {
                if let Some(seq) = resp.and_then(|r| r.headers.cseq()).map(|c| c.seq) {
                    self.ack_leg(id, leg, seq, None);
                }
            }
            self.arm_session_timers(now, id);
        } else if matches!(status, 408 | 481) {
            self.hang_up(wall, id, Side::System, HangupCause::RecoveryOnTimerExpire);
        } else {
            // 491 or another refusal: the session stays; try again at the next half interval.
            self.arm_session_timers(now, id);
        }
        true
    }
}

fn allows(h: &crate::sip::Headers) -> bool {
    h.tokens(&HeaderName::Allow)
        .any(|t| t.eq_ignore_ascii_case("UPDATE"))
}

/// True when a response or request says the peer accepts UPDATE.
pub(super) fn allows_update(h: &crate::sip::Headers) -> bool {
    allows(h)
}
