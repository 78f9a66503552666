//! Graceful shutdown, the engine's half: `begin_shutdown` stops taking calls and ends the
//! ones in progress the way an operator's "hang up everything" would; `is_drained` says when
//! the BYEs and CANCELs it sent have their answers, so the driver can stop.
//!
//! Calling contract: after `begin_shutdown(now, wall)` the driver keeps feeding inputs and
//! timers as usual (the BYE transactions need their responses and retransmissions), drains
//! `poll_transmit`/`poll_cdr`, and stops once `is_drained()` or `shutdown_grace()` has passed.
//! Nothing here reads a clock or touches a socket.
//!
//! While draining, a new INVITE gets 503 with Retry-After (RFC 3261 §21.5.4); requests in
//! existing dialogs, REGISTER and OPTIONS are still served.

use super::Engine;
use crate::b2bua::CallState;
use crate::cdr::{HangupCause, Side};
use crate::sip::{HeaderName, Request};
use crate::transaction::TransactionKey;
use std::time::{Duration, Instant, SystemTime};

/// What a caller refused while we drain is told to wait before trying again (seconds): a
/// restart is expected to take about that long.
const RETRY_AFTER: &str = "30";

/// Upper bound of the grace period, whatever T1 says.
const MAX_GRACE: Duration = Duration::from_secs(5);

impl Engine {
    /// Stops taking calls and ends every call in progress: answered calls get a BYE on both
    /// legs with `Reason: Q.850;cause=16` (NORMAL_CLEARING); calls still ringing get their
    /// b-legs cancelled and the caller a 503 with Retry-After. CDRs are written as usual.
    /// Calling it again does nothing more.
    pub fn begin_shutdown(&mut self, now: Instant, wall: SystemTime) {
        if self.draining {
            return;
        }
        self.draining = true;
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
                    let mut out = self.a_response(id, 503, "Service Unavailable", None);
                    out.headers.push(HeaderName::RetryAfter, RETRY_AFTER);
                    self.send_a(now, id, out);
                    for leg in 0..legs {
                        self.cancel_b(now, id, leg);
                    }
                    self.maybe_finish(wall, id);
                }
                CallState::Answered | CallState::Connected => {
                    self.hang_up(now, wall, id, Side::System, HangupCause::NormalClearing);
                }
                CallState::Ending => {}
            }
        }
        self.drain_events(now, wall);
    }

    /// True once `begin_shutdown` has run.
    pub fn is_shutting_down(&self) -> bool {
        self.draining
    }

    /// After `begin_shutdown`: every call has left the table and no BYE, CANCEL or INVITE
    /// we sent still waits for its final response.
    pub fn is_drained(&self) -> bool {
        self.draining && self.calls.is_empty() && self.txl.pending_clients() == 0
    }

    /// How long the driver may wait for `is_drained`: 64·T1 (a non-INVITE transaction's
    /// whole life, §17.1.2.2) but never more than 5 s.
    pub fn shutdown_grace(&self) -> Duration {
        (self.cfg.transactions.timers.t1 * 64).min(MAX_GRACE)
    }

    /// A new INVITE while draining: 503 Service Unavailable with Retry-After.
    pub(super) fn refuse_while_draining(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &Request,
    ) {
        let mut resp = self.response(req, 503, "Service Unavailable");
        resp.headers.push(HeaderName::RetryAfter, RETRY_AFTER);
        self.send_response(now, key, resp);
    }
}
