//! The transaction layer: owns every transaction, routes inputs to their state machines,
//! runs their timers and queues what they send and report.
//!
//! Calling contract (quinn/str0m style): feed `handle_request`, `handle_response`,
//! `handle_timeout` and `handle_transport_error` with the current `now`; after each call
//! drain `poll_transmit` and `poll_event`, then sleep until `poll_timeout` (or the next
//! input) and call `handle_timeout` then. The layer never reads a clock, touches a socket
//! or spawns anything, so the same inputs always give the same outputs.
//!
//! This file holds the plumbing; inputs from the network are in `inbound.rs`, commands from
//! the TU in `outbound.rs`.

use super::client_invite::InviteClient;
use super::client_non_invite::NonInviteClient;
use super::config::TransactionConfig;
use super::event::{TransactionEvent, TransactionStats, Transmit};
use super::key::{Quoted, TransactionKey};
use super::machine::{ClientInput, Effects, ServerInput, State, TimerOp, Up};
use super::server_invite::InviteServer;
use super::server_non_invite::NonInviteServer;
use super::timer::{Timer, TimerTable};
use crate::net::Peer;
use crate::sip::Request;
use std::collections::{HashMap, VecDeque};

use crate::FastHash;
use std::time::Instant;

/// The RFC 3261 §17 transaction layer, sans-IO. See the module docs for the calling contract.
#[derive(Debug)]
pub struct TransactionLayer {
    pub(super) config: TransactionConfig,
    /// Boxed: a `Txn` is about 700 bytes, and the table moves its entries when it grows or
    /// clears tombstones (hundreds of thousands of finished transactions linger for Timer J).
    pub(super) txns: HashMap<TransactionKey, Box<Txn>, FastHash>,
    by_id: HashMap<u64, TransactionKey, FastHash>,
    timers: TimerTable,
    next_id: u64,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<TransactionEvent>,
    pub(super) stats: TransactionStats,
}

#[derive(Debug)]
pub(super) struct Txn {
    id: u64,
    pub(super) peer: Peer,
    pub(super) machine: Machine,
    /// The deadline of each armed timer, mirrored in the table.
    armed: Armed,
    /// Client INVITE in Calling: the CANCEL waiting for a provisional response (§9.1).
    pub(super) pending_cancel: Option<Box<Request>>,
}

/// The armed timers of one transaction. A machine has at most three armed at once (INVITE
/// client: A, B and the CANCEL wait), so four inline slots hold them without the 14-slot
/// array every lingering transaction used to carry; more would spill into `more`.
/// Generic over the deadline type only so that its test needs no clock.
#[derive(Debug)]
struct Armed<T = Instant> {
    slots: [Option<(Timer, T)>; 4],
    more: Vec<(Timer, T)>,
}

impl<T> Default for Armed<T> {
    fn default() -> Self {
        Armed {
            slots: [None, None, None, None],
            more: Vec::new(),
        }
    }
}

impl<T: Copy> Armed<T> {
    fn get(&self, timer: Timer) -> Option<T> {
        self.iter().find(|(t, _)| *t == timer).map(|(_, at)| at)
    }

    fn take(&mut self, timer: Timer) -> Option<T> {
        for slot in &mut self.slots {
            if matches!(slot, Some((t, _)) if *t == timer) {
                return slot.take().map(|(_, at)| at);
            }
        }
        let i = self.more.iter().position(|(t, _)| *t == timer)?;
        Some(self.more.swap_remove(i).1)
    }

    /// Arms `timer` at `at` (callers `take` it first).
    fn set(&mut self, timer: Timer, at: T) {
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some((timer, at)),
            None => self.more.push((timer, at)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Timer, T)> + '_ {
        self.slots
            .iter()
            .flatten()
            .copied()
            .chain(self.more.iter().copied())
    }
}

#[derive(Debug)]
pub(super) enum Machine {
    InviteClient(InviteClient),
    NonInviteClient(NonInviteClient),
    InviteServer(InviteServer),
    NonInviteServer(NonInviteServer),
}

impl Machine {
    pub(super) fn state(&self) -> State {
        match self {
            Machine::InviteClient(m) => m.state(),
            Machine::NonInviteClient(m) => m.state(),
            Machine::InviteServer(m) => m.state(),
            Machine::NonInviteServer(m) => m.state(),
        }
    }

    /// The request; server transactions forget theirs once they sent a final response.
    pub(super) fn request(&self) -> Option<&Request> {
        match self {
            Machine::InviteClient(m) => Some(m.request()),
            Machine::NonInviteClient(m) => Some(m.request()),
            Machine::InviteServer(m) => m.request(),
            Machine::NonInviteServer(m) => m.request(),
        }
    }

    pub(super) fn client(&mut self, input: ClientInput<'_>, fx: &mut Effects) {
        match self {
            Machine::InviteClient(m) => m.handle(input, fx),
            Machine::NonInviteClient(m) => m.handle(input, fx),
            // Keys keep roles apart; a server machine never sees client input.
            Machine::InviteServer(_) | Machine::NonInviteServer(_) => {}
        }
    }

    /// `Err(state)` when a server machine refuses the input (a TU response out of place).
    pub(super) fn server(&mut self, input: ServerInput<'_>, fx: &mut Effects) -> Result<(), State> {
        match self {
            Machine::InviteServer(m) => m.handle(input, fx),
            Machine::NonInviteServer(m) => m.handle(input, fx),
            Machine::InviteClient(_) | Machine::NonInviteClient(_) => Ok(()),
        }
    }

    fn timer(&mut self, timer: Timer, fx: &mut Effects) {
        match self {
            Machine::InviteClient(_) | Machine::NonInviteClient(_) => {
                self.client(ClientInput::Timer(timer), fx)
            }
            Machine::InviteServer(_) | Machine::NonInviteServer(_) => {
                let _ = self.server(ServerInput::Timer(timer), fx);
            }
        }
    }

    fn transport_error(&mut self, fx: &mut Effects) {
        match self {
            Machine::InviteClient(_) | Machine::NonInviteClient(_) => {
                self.client(ClientInput::TransportError, fx)
            }
            Machine::InviteServer(_) | Machine::NonInviteServer(_) => {
                let _ = self.server(ServerInput::TransportError, fx);
            }
        }
    }
}

impl TransactionLayer {
    pub fn new(config: TransactionConfig) -> TransactionLayer {
        TransactionLayer {
            config: config.sanitized(),
            txns: HashMap::default(),
            by_id: HashMap::default(),
            timers: TimerTable::default(),
            next_id: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: TransactionStats::default(),
        }
    }

    pub fn config(&self) -> &TransactionConfig {
        &self.config
    }

    /// The next message to put on the wire.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TransactionEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next; `None` while no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every timer due at or before `now`, earliest first. Timers a firing re-arms
    /// count from `now`, so a driver that wakes late gets one retransmission, not a burst.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (at, id, timer) in self.timers.expire(now) {
            let Some(key) = self.by_id.get(&id).cloned() else {
                continue;
            };
            let Some(txn) = self.txns.get_mut(&key) else {
                continue;
            };
            // Stopped or re-armed by an earlier timer of this same batch.
            if txn.armed.get(timer) != Some(at) {
                continue;
            }
            txn.armed.take(timer);
            self.run(now, &key, None, |m, fx| m.timer(timer, fx));
        }
    }

    /// The transport failed to send for `key` (from `Transmit::key`). Reported to the TU as
    /// `TransportError` (503 semantics, §8.1.3.1). Unknown keys are ignored.
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) {
        self.run(now, key, None, |m, fx| m.transport_error(fx));
    }

    /// The transport lost `peer` (a TCP connection reset, say): every transaction with that
    /// peer gets a transport error.
    pub fn handle_peer_failure(&mut self, now: Instant, peer: Peer) {
        let keys: Vec<_> = self
            .txns
            .iter()
            .filter(|(_, t)| t.peer == peer)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.handle_transport_error(now, &key);
        }
    }

    /// Nothing listens at `peer` (an ICMP port unreachable, RFC 3261 §18.4) for the datagram
    /// `quote` (what the kernel kept of it): the client transaction that sent it fails at once
    /// (§17.1.1.2, §17.1.2.2). Only that one: a late datagram to a phone that has gone (a
    /// retransmission, a response) must not fail a new transaction to a new phone that
    /// reuses the address. A quoted response or ACK fails nothing, since server transactions
    /// are left to their timers (their requests did arrive; §18.2.2). Without a readable quote
    /// every client transaction to `peer` fails.
    pub fn handle_peer_unreachable(&mut self, now: Instant, peer: Peer, quote: &[u8]) {
        let keys: Vec<_> = match TransactionKey::client_for_quote(quote) {
            Quoted::Request(key) => self
                .txns
                .get(&key)
                .filter(|t| t.peer == peer)
                .map(|_| key)
                .into_iter()
                .collect(),
            Quoted::Other => Vec::new(),
            Quoted::Unreadable => self
                .txns
                .iter()
                .filter(|(_, t)| {
                    t.peer == peer
                        && matches!(
                            t.machine,
                            Machine::InviteClient(_) | Machine::NonInviteClient(_)
                        )
                })
                .map(|(k, _)| k.clone())
                .collect(),
        };
        for key in keys {
            self.handle_transport_error(now, &key);
        }
    }

    /// Client transactions still waiting for a final response (a BYE or CANCEL in flight):
    /// what a graceful shutdown waits for.
    pub fn pending_clients(&self) -> usize {
        self.txns
            .values()
            .filter(|t| match &t.machine {
                Machine::InviteClient(m) => matches!(m.state(), State::Calling | State::Proceeding),
                Machine::NonInviteClient(m) => {
                    matches!(m.state(), State::Trying | State::Proceeding)
                }
                _ => false,
            })
            .count()
    }

    /// The state of a live transaction.
    pub fn state(&self, key: &TransactionKey) -> Option<State> {
        self.txns.get(key).map(|t| t.machine.state())
    }

    /// The request that created a live transaction (for a server transaction: until its
    /// final response).
    pub fn request(&self, key: &TransactionKey) -> Option<&Request> {
        self.txns.get(key).and_then(|t| t.machine.request())
    }

    /// Where a live transaction sends: the request's destination, or the client we answer.
    pub fn peer(&self, key: &TransactionKey) -> Option<Peer> {
        self.txns.get(key).map(|t| t.peer)
    }

    pub fn stats(&self) -> &TransactionStats {
        &self.stats
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.txns.len() >= self.config.max_transactions
    }

    /// Adds a new transaction and carries out the effects of its start.
    pub(super) fn insert(
        &mut self,
        now: Instant,
        key: TransactionKey,
        peer: Peer,
        machine: Machine,
        fx: Effects,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(key = %crate::security::log_escape(&key), %peer, state = ?machine.state(), "transaction created");
        self.by_id.insert(id, key.clone());
        self.txns.insert(
            key.clone(),
            Box::new(Txn {
                id,
                peer,
                machine,
                armed: Armed::default(),
                pending_cancel: None,
            }),
        );
        self.stats.active = self.txns.len();
        self.apply(now, &key, None, fx);
    }

    /// Feeds one input to the machine of `key` and carries out the effects. `origin` is the
    /// peer an ACK came from, for the event that passes it up. `None` for an unknown key.
    pub(super) fn run<R>(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        origin: Option<Peer>,
        f: impl FnOnce(&mut Machine, &mut Effects) -> R,
    ) -> Option<R> {
        let txn = self.txns.get_mut(key)?;
        let mut fx = Effects::default();
        let before = txn.machine.state();
        let out = f(&mut txn.machine, &mut fx);
        let after = txn.machine.state();
        if before != after {
            tracing::debug!(key = %crate::security::log_escape(&key), ?before, ?after, "transaction state");
        }
        self.apply(now, key, origin, fx);
        Some(out)
    }

    fn apply(&mut self, now: Instant, key: &TransactionKey, origin: Option<Peer>, fx: Effects) {
        let Some(txn) = self.txns.get_mut(key) else {
            return;
        };
        self.stats.retransmissions += fx.retransmissions;
        self.stats.absorbed_requests += fx.absorbed_requests;
        self.stats.absorbed_responses += fx.absorbed_responses;
        for bytes in fx.sends {
            self.transmits.push_back(Transmit {
                to: txn.peer,
                bytes,
                key: Some(key.clone()),
            });
        }
        for op in fx.timers {
            let (timer, at) = match op {
                TimerOp::Arm(t, after) => (t, Some(now + after)),
                TimerOp::Stop(t) => (t, None),
            };
            if let Some(old) = txn.armed.take(timer) {
                self.timers.remove(old, txn.id, timer);
            }
            if let Some(at) = at {
                txn.armed.set(timer, at);
                self.timers.insert(at, txn.id, timer);
            }
        }
        for up in fx.ups {
            let key = key.clone();
            self.events.push_back(match up {
                Up::Response(response) => TransactionEvent::Response { key, response },
                Up::Ack(request) => TransactionEvent::Ack {
                    invite: Some(key),
                    request,
                    from: origin.unwrap_or(txn.peer),
                },
                Up::Timeout(timer) => {
                    self.stats.timeouts += 1;
                    TransactionEvent::Timeout { key, timer }
                }
                Up::TransportError => {
                    self.stats.transport_errors += 1;
                    TransactionEvent::TransportError { key }
                }
            });
        }
        match txn.machine.state() {
            State::Terminated => self.remove(key),
            // §9.1: the CANCEL held back in Calling may go now that a provisional came.
            State::Proceeding if txn.pending_cancel.is_some() => {
                if let Some(cancel) = txn.pending_cancel.take() {
                    self.start_cancel(now, key, *cancel);
                }
            }
            // A final response came first: nothing is left to cancel.
            State::Completed | State::Accepted => txn.pending_cancel = None,
            _ => {}
        }
    }

    fn remove(&mut self, key: &TransactionKey) {
        let Some(txn) = self.txns.remove(key) else {
            return;
        };
        for (timer, at) in txn.armed.iter() {
            self.timers.remove(at, txn.id, timer);
        }
        self.by_id.remove(&txn.id);
        self.stats.terminated += 1;
        self.stats.active = self.txns.len();
        tracing::debug!(key = %crate::security::log_escape(&key), "transaction terminated");
        self.events
            .push_back(TransactionEvent::Terminated { key: key.clone() });
    }
}

#[cfg(test)]
mod armed_tests {
    use super::{Armed, Timer};

    #[test]
    fn set_take_and_spill_past_four_timers() {
        let mut a = Armed::<u64>::default();
        for (i, t) in Timer::ALL.iter().enumerate() {
            a.set(*t, i as u64);
        }
        assert_eq!(a.iter().count(), Timer::COUNT);
        assert_eq!(a.get(Timer::M), Some(11));
        assert_eq!(a.take(Timer::A), Some(0));
        assert_eq!(a.take(Timer::A), None);
        assert_eq!(a.take(Timer::CancelWait), Some(13), "from the spill-over");
        a.set(Timer::A, 99);
        assert_eq!(a.get(Timer::A), Some(99));
        assert_eq!(a.iter().count(), Timer::COUNT - 1);
    }
}
