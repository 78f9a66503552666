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
use crate::b2bua::Reject;
use crate::sip::Request;
use crate::transaction::TransactionKey;
use std::time::{Duration, Instant, SystemTime};

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
        self.unregister_gateways(now);
        self.b2bua.end_all(wall);
        self.run_commands(now, wall);
        self.drain_events(now, wall, None);
    }

    /// True once `begin_shutdown` has run.
    pub fn is_shutting_down(&self) -> bool {
        self.draining
    }

    /// After `begin_shutdown`: every call has left the table and no BYE, CANCEL or INVITE
    /// we sent still waits for its final response.
    pub fn is_drained(&self) -> bool {
        self.draining && self.b2bua.is_empty() && self.txl.pending_clients() == 0
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
        let resp = self.reject_response(req, Reject::ShuttingDown);
        self.send_response(now, key, resp);
    }
}
