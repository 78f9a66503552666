//! Commands from the TU: start client transactions, answer server transactions, cancel an
//! INVITE (§9.1), and send what belongs to no transaction (an ACK for a 2xx, a stateless
//! error response).
//!
//! Misuse by the TU is reported as a `TransactionError`, never a panic.

use super::client_invite::InviteClient;
use super::client_non_invite::NonInviteClient;
use super::error::TransactionError;
use super::event::Transmit;
use super::key::{Role, TransactionKey};
use super::layer::{Machine, TransactionLayer};
use super::machine::{ClientInput, Effects, ServerInput, State};
use crate::net::Peer;
use crate::sip::{cancel_for, Message, Method, Request, Response};
use std::time::Instant;

impl TransactionLayer {
    /// Sends `request` to `to` in a new client transaction (INVITE or non-INVITE by method)
    /// and returns its key. The request must carry its top Via with a fresh RFC 3261 branch.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Request,
        to: Peer,
    ) -> Result<TransactionKey, TransactionError> {
        if request.method == Method::Ack {
            return Err(TransactionError::AckIsNotATransaction);
        }
        let key = TransactionKey::client_for_request(&request)?;
        if self.txns.contains_key(&key) {
            return Err(TransactionError::DuplicateKey);
        }
        if self.is_full() {
            self.stats.rejected += 1;
            return Err(TransactionError::TooManyTransactions(
                self.config.max_transactions,
            ));
        }
        let reliable = to.transport.is_reliable();
        let timers = self.config.timers;
        let mut fx = Effects::default();
        let machine = if request.method == Method::Invite {
            Machine::InviteClient(InviteClient::start(request, reliable, timers, &mut fx))
        } else {
            Machine::NonInviteClient(NonInviteClient::start(request, reliable, timers, &mut fx))
        };
        self.stats.client_created += 1;
        self.insert(now, key.clone(), to, machine, fx);
        Ok(key)
    }

    /// Sends the TU's `response` in server transaction `key`. Provisional responses may be
    /// sent until a final one; after a 2xx to an INVITE (Accepted, RFC 6026) further 2xx —
    /// the TU's retransmissions — pass through. Anything else is `InvalidState`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        if !(100..=699).contains(&response.status) {
            return Err(TransactionError::InvalidStatus(response.status));
        }
        if key.role() != Role::Server {
            return Err(TransactionError::WrongKind);
        }
        self.run(now, key, None, |m, fx| {
            m.server(ServerInput::TuResponse(&response), fx)
        })
        .ok_or(TransactionError::UnknownTransaction)?
        .map_err(TransactionError::InvalidState)
    }

    /// Cancels the INVITE of client transaction `invite` (§9.1) and returns the key of the
    /// CANCEL's own client transaction. In Calling the CANCEL is held until a provisional
    /// response arrives ("the client MUST wait"); should a final response come first, it is
    /// never sent and no event carries its key. Once sent, the INVITE transaction gives up
    /// 64·T1 later if no final response came (`Timeout` with `Timer::CancelWait`).
    pub fn send_cancel(
        &mut self,
        now: Instant,
        invite: &TransactionKey,
    ) -> Result<TransactionKey, TransactionError> {
        let txn = self
            .txns
            .get(invite)
            .ok_or(TransactionError::UnknownTransaction)?;
        let Machine::InviteClient(m) = &txn.machine else {
            return Err(TransactionError::WrongKind);
        };
        let state = m.state();
        if !matches!(state, State::Calling | State::Proceeding) {
            return Err(TransactionError::InvalidState(state));
        }
        let cancel = cancel_for(m.request());
        let key = TransactionKey::client_for_request(&cancel)?;
        if txn.pending_cancel.is_some() || self.txns.contains_key(&key) {
            return Err(TransactionError::DuplicateKey);
        }
        match state {
            State::Calling => {
                if let Some(txn) = self.txns.get_mut(invite) {
                    txn.pending_cancel = Some(Box::new(cancel));
                }
                Ok(key)
            }
            State::Proceeding => {
                let peer = txn.peer;
                let key = self.send_request(now, cancel, peer)?;
                self.run(now, invite, None, |m, fx| {
                    m.client(ClientInput::CancelSent, fx)
                });
                Ok(key)
            }
            state => Err(TransactionError::InvalidState(state)),
        }
    }

    /// Sends a CANCEL held back in Calling, now that the INVITE is Proceeding.
    pub(super) fn start_cancel(&mut self, now: Instant, invite: &TransactionKey, cancel: Request) {
        let Some(peer) = self.peer(invite) else {
            return;
        };
        match self.send_request(now, cancel, peer) {
            Ok(_) => {
                self.run(now, invite, None, |m, fx| {
                    m.client(ClientInput::CancelSent, fx)
                });
            }
            Err(e) => {
                tracing::warn!(key = %crate::security::log_escape(&invite), error = %crate::security::log_escape(&e), "held CANCEL not sent")
            }
        }
    }

    /// Queues a message outside any transaction: the ACK for a 2xx (§13.2.2.4), a 2xx
    /// retransmission after the server transaction ended, a stateless error response.
    pub fn send_stateless(&mut self, to: Peer, message: &Message) {
        self.transmits.push_back(Transmit {
            to,
            bytes: message.to_bytes(),
            key: None,
        });
    }
}
