//! What an operator sees of the calls in progress (`ferroswitch ctl calls`): one `CallInfo`
//! per call in the table, read from it and copied out. Never changes a call.

use super::{B2bua, BLegState, CallId, CallState};
use std::time::{Duration, SystemTime};

/// One call in progress, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub id: CallId,
    pub caller: String,
    pub callee: String,
    /// `ringing`, `answered`, `connected` or `ending`.
    pub state: &'static str,
    pub start: SystemTime,
    pub answer: Option<SystemTime>,
    /// Since the INVITE came in.
    pub duration: Duration,
    pub a_call_id: String,
    /// The b-leg that answered; while ringing, every b-leg still being tried.
    pub b_call_ids: Vec<String>,
}

pub fn state_name(s: CallState) -> &'static str {
    match s {
        CallState::Ringing => "ringing",
        CallState::Answered => "answered",
        CallState::Connected => "connected",
        CallState::Ending => "ending",
    }
}

impl B2bua {
    /// Every call in the table, oldest first; `wall` is now, for the durations.
    pub fn call_infos(&self, wall: SystemTime) -> Vec<CallInfo> {
        let mut ids = self.calls.ids();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.calls.get(id))
            .map(|c| {
                let legs = c.b.iter().enumerate().filter(|(i, l)| match c.winner {
                    Some(w) => *i == w,
                    None => !matches!(l.state, BLegState::Failed(_)),
                });
                CallInfo {
                    id: c.id,
                    caller: c.caller.user.clone(),
                    callee: c.callee.user.clone(),
                    state: state_name(c.state),
                    start: c.start,
                    answer: c.answer,
                    duration: wall.duration_since(c.start).unwrap_or_default(),
                    a_call_id: c.a.invite.headers.call_id().unwrap_or_default().to_string(),
                    b_call_ids: legs
                        .filter_map(|(_, l)| l.invite.headers.call_id().map(str::to_string))
                        .collect(),
                }
            })
            .collect()
    }

    /// The call the caller's INVITE on server transaction `key` created, with the Call-IDs
    /// of its b-legs (for the engine's trace of the call).
    pub fn call_of_invite(
        &self,
        key: &crate::transaction::TransactionKey,
    ) -> Option<(CallId, Vec<String>)> {
        let c = self.calls.get(self.calls.by_a_invite(key)?)?;
        let b = c.b.iter();
        Some((
            c.id,
            b.filter_map(|l| l.invite.headers.call_id().map(str::to_string))
                .collect(),
        ))
    }
}
