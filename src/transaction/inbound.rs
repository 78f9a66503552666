//! Messages from the network: matching them to transactions (§17.1.3, §17.2.3), creating
//! server transactions, and passing up what matches nothing.
//!
//! A retransmitted request must never reach the TU twice and an ACK for a non-2xx never at
//! all; nothing a peer sends may panic the layer (bad input is an error or a counted drop).

use super::error::TransactionError;
use super::event::TransactionEvent;
use super::key::TransactionKey;
use super::layer::{Machine, TransactionLayer};
use super::machine::{ClientInput, Effects, ServerInput};
use super::server_invite::InviteServer;
use super::server_non_invite::NonInviteServer;
use crate::net::Peer;
use crate::sip::{Method, Request, Response};
use std::time::Instant;

impl TransactionLayer {
    /// A request arrived from `from`. A new one creates a server transaction and reaches the
    /// TU as `Request` or `Cancel`; a retransmission is answered by its transaction; an ACK
    /// goes to its INVITE transaction or, matching none, up as `Ack`.
    ///
    /// Errors (the driver answers `err.status_code()` statelessly when it is `Some`):
    /// `Malformed` when the request cannot be keyed, `TooManyTransactions` when the table is
    /// full.
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request,
        from: Peer,
    ) -> Result<(), TransactionError> {
        let key = TransactionKey::server_for_request(&request)?;
        if request.method == Method::Ack {
            self.handle_ack(now, key, request, from);
            return Ok(());
        }
        if self.txns.contains_key(&key) {
            tracing::trace!(key = %crate::security::log_escape(&key), "request retransmission");
            self.run(now, &key, None, |m, fx| {
                m.server(ServerInput::Retransmission, fx)
            });
            return Ok(());
        }
        if self.is_full() {
            self.stats.rejected += 1;
            return Err(TransactionError::TooManyTransactions(
                self.config.max_transactions,
            ));
        }
        let reliable = from.transport.is_reliable();
        let timers = self.config.timers;
        let mut fx = Effects::default();
        let event = match request.method {
            Method::Invite => {
                let m = InviteServer::start(
                    request.clone(),
                    reliable,
                    timers,
                    self.config.trying,
                    &mut fx,
                );
                self.stats.server_created += 1;
                self.insert(now, key.clone(), from, Machine::InviteServer(m), fx);
                TransactionEvent::Request { key, request, from }
            }
            _ => {
                let m = NonInviteServer::start(request.clone(), reliable, timers);
                self.stats.server_created += 1;
                self.insert(now, key.clone(), from, Machine::NonInviteServer(m), fx);
                if request.method == Method::Cancel {
                    // §9.2: the CANCEL matches the INVITE whose key differs only in method.
                    let invite = key.with_method(Method::Invite);
                    let invite = self.txns.contains_key(&invite).then_some(invite);
                    TransactionEvent::Cancel {
                        key,
                        request,
                        from,
                        invite,
                    }
                } else {
                    TransactionEvent::Request { key, request, from }
                }
            }
        };
        self.events.push_back(event);
        Ok(())
    }

    /// §17.2.3: an ACK belongs to the INVITE server transaction it matches; an RFC 2543 one
    /// matches by the To tag of the response we sent, which the INVITE did not carry.
    fn handle_ack(&mut self, now: Instant, key: TransactionKey, ack: Request, from: Peer) {
        let matched = if self.txns.contains_key(&key) {
            Some(key)
        } else {
            key.with_to_tag(None).filter(|untagged| {
                let sent_tag = self.txns.get(untagged).and_then(|t| match &t.machine {
                    Machine::InviteServer(m) => m.final_to_tag(),
                    _ => None,
                });
                sent_tag.is_some() && sent_tag == key.rfc2543_to_tag()
            })
        };
        match matched {
            Some(key) => {
                self.run(now, &key, Some(from), |m, fx| {
                    m.server(ServerInput::Ack(&ack), fx)
                });
            }
            None => {
                self.stats.stray_acks += 1;
                self.events.push_back(TransactionEvent::Ack {
                    invite: None,
                    request: ack,
                    from,
                });
            }
        }
    }

    /// A response arrived from `from`. It goes to the client transaction it matches
    /// (§17.1.3) or, matching none, up as `StrayResponse`. `BadStatus` for a status outside
    /// 100–699 (dropped).
    pub fn handle_response(
        &mut self,
        now: Instant,
        response: Response,
        from: Peer,
    ) -> Result<(), TransactionError> {
        if !(100..=699).contains(&response.status) {
            return Err(TransactionError::BadStatus(response.status));
        }
        let key =
            TransactionKey::client_for_response(&response).filter(|k| self.txns.contains_key(k));
        match key {
            Some(key) => {
                self.run(now, &key, None, |m, fx| {
                    m.client(ClientInput::Response(&response), fx)
                });
            }
            None => {
                self.stats.stray_responses += 1;
                self.events
                    .push_back(TransactionEvent::StrayResponse { response, from });
            }
        }
        Ok(())
    }
}
