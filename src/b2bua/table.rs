//! The call table: calls by id, with the indexes that route transaction and dialog events to
//! them, relayed in-dialog requests, and a heap of deadlines. Entries in the heap may be stale;
//! `pop_due` hands out only those still equal to the deadline stored in the call.

use super::{Call, CallId, Relay};
use crate::dialog::DialogKey;
use crate::transaction::TransactionKey;
use crate::FastMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Which leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegRef {
    A,
    B(usize),
}

/// The timers a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallTimer {
    /// `call_timeout` passed without an answer: CANCEL the b-legs, 480 to the caller.
    NoAnswer,
    /// Retransmit our 2xx to the caller (RFC 3261 §13.3.1.4), or give up at 64·T1.
    OkRetransmit,
    /// The same for the 2xx of a relayed re-INVITE (`Call::reinvite`).
    ReinviteOk,
    /// RFC 4028: we are the refresher on this side (0 caller, 1 callee).
    Refresh(usize),
    /// RFC 4028: the peer on this side did not refresh in time.
    Expire(usize),
    /// 64·T1 after a callee's 2xx: it has stopped retransmitting it (RFC 6026 Timer L), so
    /// the stored ACK that answered the retransmissions can go.
    AckWindowOver,
    /// The current step of a group or of forwarding rang long enough (`plan`).
    Step,
    /// `call_timeout` passed while a transfer's target rang: its legs are cancelled.
    TransferNoAnswer,
}

#[derive(Debug, Default)]
pub struct Calls {
    next_id: CallId,
    /// Boxed: a `Call` is a few kilobytes inline, and the table keeps up to twice as many
    /// slots as calls.
    calls: FastMap<CallId, Box<Call>>,
    by_a_invite: FastMap<TransactionKey, CallId>,
    by_b_invite: FastMap<TransactionKey, (CallId, usize)>,
    by_dialog: FastMap<DialogKey, (CallId, LegRef)>,
    relays: FastMap<TransactionKey, Relay>,
    /// RFC 4028 refreshes we sent: (call, side).
    refreshes: FastMap<TransactionKey, (CallId, usize)>,
    timers: BinaryHeap<Reverse<(Instant, CallId, CallTimer)>>,
    /// Every index key ever added for a call, so removing it costs what it indexed, not a
    /// scan of every other call's entries.
    keys_of: FastMap<CallId, Vec<IndexKey>>,
}

#[derive(Debug)]
enum IndexKey {
    Dialog(DialogKey),
    Relay(TransactionKey),
    Refresh(TransactionKey),
}

impl Calls {
    pub fn new() -> Calls {
        Calls::default()
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Sizes of the indexes, for tests and stats: (calls, dialogs, pending relays).
    pub fn table_sizes(&self) -> (usize, usize, usize) {
        (self.calls.len(), self.by_dialog.len(), self.relays.len())
    }

    pub fn next_id(&mut self) -> CallId {
        self.next_id += 1;
        self.next_id
    }

    pub fn insert(&mut self, call: Call) {
        self.by_a_invite.insert(call.a.invite_key.clone(), call.id);
        self.calls.insert(call.id, Box::new(call));
    }

    pub fn get(&self, id: CallId) -> Option<&Call> {
        self.calls.get(&id).map(|c| &**c)
    }

    pub fn get_mut(&mut self, id: CallId) -> Option<&mut Call> {
        self.calls.get_mut(&id).map(|c| &mut **c)
    }

    /// Two different calls at once (an attended transfer joins them); `None` unless both
    /// exist and differ.
    pub fn get_disjoint_mut(&mut self, ids: [CallId; 2]) -> Option<[&mut Call; 2]> {
        match self.calls.get_disjoint_mut([&ids[0], &ids[1]]) {
            [Some(a), Some(b)] => Some([&mut **a, &mut **b]),
            _ => None,
        }
    }

    pub fn ids(&self) -> Vec<CallId> {
        self.calls.keys().copied().collect()
    }

    /// Removes a call and every index entry pointing at it.
    pub fn remove(&mut self, id: CallId) -> Option<Call> {
        let call = self.calls.remove(&id)?;
        self.by_a_invite.remove(&call.a.invite_key);
        for leg in &call.b {
            // A leg that moved to another call (attended transfer) stays indexed there.
            if self
                .by_b_invite
                .get(&leg.key)
                .is_some_and(|(c, _)| *c == id)
            {
                self.by_b_invite.remove(&leg.key);
            }
        }
        for k in self.keys_of.remove(&id).unwrap_or_default() {
            match k {
                IndexKey::Dialog(k) => {
                    if self.by_dialog.get(&k).is_some_and(|(c, _)| *c == id) {
                        self.by_dialog.remove(&k);
                    }
                }
                IndexKey::Relay(k) => {
                    if self.relays.get(&k).is_some_and(|r| r.call == id) {
                        self.relays.remove(&k);
                    }
                }
                IndexKey::Refresh(k) => {
                    if self.refreshes.get(&k).is_some_and(|(c, _)| *c == id) {
                        self.refreshes.remove(&k);
                    }
                }
            }
        }
        Some(*call)
    }

    pub fn by_a_invite(&self, key: &TransactionKey) -> Option<CallId> {
        self.by_a_invite.get(key).copied()
    }

    pub fn add_b_invite(&mut self, key: TransactionKey, call: CallId, leg: usize) {
        self.by_b_invite.insert(key, (call, leg));
    }

    pub fn remove_b_invite(&mut self, key: &TransactionKey) {
        self.by_b_invite.remove(key);
    }

    pub fn by_b_invite(&self, key: &TransactionKey) -> Option<(CallId, usize)> {
        self.by_b_invite.get(key).copied()
    }

    pub fn add_dialog(&mut self, key: DialogKey, call: CallId, leg: LegRef) {
        // An early dialog confirmed by its 2xx is added again: one bookkeeping entry is enough.
        // Two dialogs per call as a rule: room for exactly those.
        let keys = self
            .keys_of
            .entry(call)
            .or_insert_with(|| Vec::with_capacity(2));
        if !keys
            .iter()
            .any(|k| matches!(k, IndexKey::Dialog(d) if *d == key))
        {
            keys.push(IndexKey::Dialog(key.clone()));
        }
        self.by_dialog.insert(key, (call, leg));
    }

    pub fn remove_dialog(&mut self, key: &DialogKey) {
        self.by_dialog.remove(key);
    }

    pub fn by_dialog(&self, key: &DialogKey) -> Option<(CallId, LegRef)> {
        self.by_dialog.get(key).copied()
    }

    pub fn add_relay(&mut self, client_key: TransactionKey, relay: Relay) {
        self.keys_of
            .entry(relay.call)
            .or_default()
            .push(IndexKey::Relay(client_key.clone()));
        self.relays.insert(client_key, relay);
    }

    pub fn take_relay(&mut self, client_key: &TransactionKey) -> Option<Relay> {
        self.relays.remove(client_key)
    }

    pub fn peek_relay(&self, client_key: &TransactionKey) -> Option<&Relay> {
        self.relays.get(client_key)
    }

    pub fn add_refresh(&mut self, key: TransactionKey, call: CallId, side: usize) {
        self.keys_of
            .entry(call)
            .or_default()
            .push(IndexKey::Refresh(key.clone()));
        self.refreshes.insert(key, (call, side));
    }

    pub fn refresh_of(&self, key: &TransactionKey) -> Option<(CallId, usize)> {
        self.refreshes.get(key).copied()
    }

    pub fn take_refresh(&mut self, key: &TransactionKey) -> Option<(CallId, usize)> {
        self.refreshes.remove(key)
    }

    pub fn schedule(&mut self, at: Instant, call: CallId, timer: CallTimer) {
        self.timers.push(Reverse((at, call, timer)));
    }

    /// The earliest deadline in the heap (possibly stale: waking for it is harmless).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Pops every deadline at or before `now` that is still current for its call.
    pub fn pop_due(&mut self, now: Instant) -> Vec<(CallId, CallTimer)> {
        let mut due = Vec::new();
        while let Some(Reverse((at, id, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            let current = match timer {
                CallTimer::NoAnswer => call.no_answer_at,
                CallTimer::OkRetransmit => call.ok_next,
                CallTimer::ReinviteOk => call.reinvite_ok_next,
                CallTimer::Refresh(i) => call.refresh_at[i],
                CallTimer::Expire(i) => call.expire_at[i],
                // Clearing stored ACKs is harmless at any time: never stale.
                CallTimer::AckWindowOver => Some(at),
                CallTimer::Step => call.plan.as_ref().and_then(|p| p.step_at),
                CallTimer::TransferNoAnswer => call.transfer.as_ref().and_then(|t| t.no_answer_at),
            };
            if current == Some(at) {
                due.push((id, timer));
            }
        }
        due
    }
}
