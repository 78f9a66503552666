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
                    call.cancelled = true;
                    call.state = CallState::Ending;
                    call.no_answer_at = None;
                    call.end = Some((HangupCause::NormalTemporaryFailure, 503, Side::System));
                    let legs = call.b.len();
                    let rej = Reject::ShuttingDown;
                    let mut out = self.a_response(id, rej.status(), rej.phrase(), None);
                    rej.add_headers(&mut out.headers);
                    self.send_a(id, out);
                    for leg in 0..legs {
                        self.cancel_b(id, leg);
                    }
                    self.maybe_finish(wall, id);
                }
                CallState::Answered | CallState::Connected => {
                    self.hang_up(wall, id, Side::System, HangupCause::NormalClearing);
                }
                CallState::Ending => {}
            }
        }
    }
}
