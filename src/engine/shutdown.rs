//! Draining and graceful shutdown, the engine's half.
//!
//! Three operator actions, one state (`DrainState`):
//! - `drain` (`ferroswitch ctl drain`): the node stops taking new calls — a new INVITE gets
//!   503 with Retry-After (RFC 3261 §21.5.4), and so does an OPTIONS to the server, which is
//!   how an edge proxy's prober (Kamailio's `dispatcher`) learns to send new calls elsewhere —
//!   while calls in progress go on untouched (re-INVITEs, BYE, transfers in their dialogs) and
//!   REGISTER is served as before. `resume` undoes it.
//! - `begin_shutdown` (SIGTERM with `drain_timeout = 0`): drain and end every call at once,
//!   the way an operator's "hang up everything" would.
//! - `begin_shutdown_after(timeout)` (SIGTERM with a `drain_timeout`): drain, let the calls
//!   end by themselves, and `begin_shutdown` once the last one has ended or at the deadline,
//!   whichever comes first (the deadline is one of `poll_timeout`'s).
//!
//! Calling contract: after `begin_shutdown*` the driver keeps feeding inputs and timers as
//! usual (the calls and the BYE transactions need their messages and retransmissions),
//! drains `poll_transmit`/`poll_cdr`, and stops once `is_drained()`, or when the drain
//! timeout plus `shutdown_grace()` has passed. Nothing here reads a clock or touches a
//! socket.

use super::Engine;
use crate::b2bua::Reject;
use crate::sip::{Request, Response};
use crate::transaction::TransactionKey;
use std::time::{Duration, Instant, SystemTime};

/// Upper bound of the grace period, whatever T1 says.
const MAX_GRACE: Duration = Duration::from_secs(5);

/// Where the node stands between taking calls and stopping.
#[derive(Debug, Default)]
pub(super) struct DrainState {
    /// New calls are refused with 503 and OPTIONS to the server answered 503.
    pub(super) refusing: bool,
    /// `begin_shutdown` ran: every call was ended, the daemon is on its way out.
    pub(super) stopping: bool,
    /// A shutdown waiting for the calls to end by themselves: when the rest get hung up.
    pub(super) hang_up_at: Option<Instant>,
}

impl DrainState {
    /// Whether a stop has been asked for (at once or after a drain): no way back.
    fn stop_asked(&self) -> bool {
        self.stopping || self.hang_up_at.is_some()
    }
}

impl Engine {
    /// Stops taking new calls (503 to INVITE and to OPTIONS to the server) and lets the calls
    /// in progress go on. False when it was already draining.
    pub fn drain(&mut self) -> bool {
        if self.drain.refusing {
            return false;
        }
        self.drain.refusing = true;
        tracing::info!(
            calls = self.b2bua.len(),
            "draining: new calls get 503, calls in progress go on"
        );
        true
    }

    /// Takes new calls again after `drain`. Refused (false) once a shutdown has begun.
    pub fn resume(&mut self) -> bool {
        if self.drain.stop_asked() {
            return false;
        }
        if self.drain.refusing {
            self.drain.refusing = false;
            tracing::info!("resumed: taking new calls again");
        }
        true
    }

    /// True while new calls are refused (`drain`, or a shutdown under way).
    pub fn is_draining(&self) -> bool {
        self.drain.refusing
    }

    /// Stops taking calls and ends every call in progress: answered calls get a BYE on both
    /// legs with `Reason: Q.850;cause=16` (NORMAL_CLEARING); calls still ringing get their
    /// b-legs cancelled and the caller a 503 with Retry-After. CDRs are written as usual.
    /// Calling it again does nothing more.
    pub fn begin_shutdown(&mut self, now: Instant, wall: SystemTime) {
        if self.drain.stopping {
            return;
        }
        self.drain.refusing = true;
        self.drain.stopping = true;
        self.drain.hang_up_at = None;
        self.unregister_gateways(now);
        self.b2bua.end_all(wall);
        self.run_commands(now, wall);
        self.drain_events(now, wall, None);
    }

    /// A shutdown that first drains: new calls are refused at once, calls in progress may go
    /// on for up to `timeout`, then `begin_shutdown` ends the rest. A zero `timeout`, or no
    /// call in progress, is `begin_shutdown` now.
    pub fn begin_shutdown_after(&mut self, now: Instant, wall: SystemTime, timeout: Duration) {
        if self.drain.stop_asked() {
            return;
        }
        let calls = self.b2bua.len();
        if timeout.is_zero() || calls == 0 {
            return self.begin_shutdown(now, wall);
        }
        self.drain.refusing = true;
        self.drain.hang_up_at = Some(now + timeout);
        tracing::info!(
            calls,
            timeout_secs = timeout.as_secs_f64(),
            "shutting down: draining, waiting for the calls in progress to end"
        );
    }

    /// The deadline of a draining shutdown, for `poll_timeout`.
    pub(super) fn drain_timeout_at(&self) -> Option<Instant> {
        self.drain.hang_up_at
    }

    /// After every input: a draining shutdown whose calls have all ended, or whose deadline
    /// has come, moves on to `begin_shutdown`.
    pub(super) fn check_drain(&mut self, now: Instant, wall: SystemTime) {
        let Some(at) = self.drain.hang_up_at else {
            return;
        };
        let calls = self.b2bua.len();
        if calls == 0 {
            tracing::info!("drained: every call ended by itself; stopping");
        } else if now >= at {
            tracing::warn!(
                calls,
                "drain timeout: hanging up the calls still in progress"
            );
        } else {
            return;
        }
        self.begin_shutdown(now, wall);
    }

    /// True once `begin_shutdown` (or `begin_shutdown_after`) has run.
    pub fn is_shutting_down(&self) -> bool {
        self.drain.stop_asked()
    }

    /// After `begin_shutdown`: every call has left the table and no BYE, CANCEL or INVITE
    /// we sent still waits for its final response.
    pub fn is_drained(&self) -> bool {
        self.drain.stopping && self.b2bua.is_empty() && self.txl.pending_clients() == 0
    }

    /// How long the driver may wait for `is_drained` once the calls are being hung up: 64·T1
    /// (a non-INVITE transaction's whole life, §17.1.2.2) but never more than 5 s.
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
        let resp = self.reject_response(req, Reject::ShuttingDown);
        self.send_response(now, key, resp);
    }

    /// OPTIONS to the server while draining (outside a dialog): 503 with Retry-After, so a
    /// dispatcher's prober marks this node inactive; an OPTIONS inside a call is answered as
    /// usual (`options_response`), its dialog is not ours to fail.
    pub(super) fn options_while_draining(&mut self, req: &Request) -> Option<Response> {
        (self.drain.refusing && req.headers.to_tag().is_none())
            .then(|| self.reject_response(req, Reject::ShuttingDown))
    }
}
