//! Every call ended at once, the way an operator's "hang up everything" would: the call
//! core's half of a graceful shutdown (the engine's half, `engine::shutdown`, refuses new
//! calls and says when the BYEs have their answers).

use super::core::B2bua;
use super::{CallState, Reject};
use crate::cdr::{HangupCause, Side};
use std::time::SystemTime;

impl B2bua {
    /// Answered calls get a BYE on both legs with `Reason: Q.850;cause=16`
    /// (NORMAL_CLEARING); calls still ringing get their b-legs cancelled and the caller a 503
    /// with Retry-After (RFC 3261 §21.5.4). CDRs are written as usual.
    pub fn end_all(&mut self, wall: SystemTime) {
        let ids = self.calls.ids();
        tracing::info!(target: "ferroswitch::call", calls = ids.len(), "shutting down: ending every call");
        for id in ids {
            let Some(call) = self.calls.get_mut(id) else {
                continue;
            };
            match call.state {
                CallState::Ringing => {
                    let cause = HangupCause::NormalTemporaryFailure;
                    self.end_ringing(wall, id, cause, Some(Reject::ShuttingDown));
                }
                CallState::Answered | CallState::Connected => {
                    self.hang_up(wall, id, Side::System, HangupCause::NormalClearing);
                }
                CallState::Ending => {}
            }
        }
    }

    /// Ends a call that is still ringing from the switch's side: its b-legs are cancelled and
    /// the caller gets `rej`, or (an operator's hang-up) the status `cause` maps to with a
    /// `Reason` naming the cause (RFC 3326).
    pub(super) fn end_ringing(
        &mut self,
        wall: SystemTime,
        id: super::CallId,
        cause: HangupCause,
        rej: Option<Reject>,
    ) {
        let status = rej.map_or_else(|| status_for(cause), |r| r.status());
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.cancelled = true;
        call.state = CallState::Ending;
        call.no_answer_at = None;
        call.end = Some((cause, status, Side::System));
        let legs = call.b.len();
        let out = match rej {
            Some(rej) => {
                let mut out = self.a_response(id, status, rej.phrase(), None);
                rej.add_headers(&mut out.headers);
                out
            }
            None => {
                let phrase = crate::sip::reason_phrase(status);
                let mut out = self.a_response(id, status, phrase, None);
                out.headers
                    .push(crate::sip::HeaderName::Reason, cause.reason_header());
                out
            }
        };
        self.send_a(id, out);
        for leg in 0..legs {
            self.cancel_b(id, leg);
        }
        self.maybe_finish(wall, id);
    }
}

/// The final response for a ringing call an operator ends with `cause` (RFC 3398 §7.2.4.1,
/// as FreeSWITCH maps it; anything else is 480).
fn status_for(cause: HangupCause) -> u16 {
    match cause {
        HangupCause::UserBusy => 486,
        HangupCause::CallRejected => 603,
        HangupCause::UnallocatedNumber | HangupCause::NoRouteDestination => 404,
        HangupCause::NormalTemporaryFailure
        | HangupCause::SwitchCongestion
        | HangupCause::ServiceUnavailable => 503,
        HangupCause::IncompatibleDestination => 488,
        HangupCause::OriginatorCancel => 487,
        _ => 480,
    }
}
