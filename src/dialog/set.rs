//! The dialog table: every dialog by `DialogKey`, bounded, with counters. It routes received
//! requests to their dialog (481 when there is none, §12.2.2), turns the responses to an
//! INVITE we sent into early and confirmed dialogs, one per remote tag when the INVITE
//! forked (§12.1.2, §13.2.2.4), and tells when a second fork answers too.
//!
//! Lookups are by key (STYLE habit 5); the early dialogs of one INVITE are found through
//! their Call-ID + local tag without scanning the table. No I/O, no clock, no panics.

use super::error::DialogError;
use super::inbound::{reject_unless_ack, DialogRejection, RequestVerdict};
use super::key::DialogKey;
use super::state::{Dialog, DialogState, ResponseEffect};
use crate::sip::{Method, Request, Response};
use crate::FastMap;

/// What a response to the INVITE that creates dialogs did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteOutcome {
    /// A 100, or a 1xx without a To tag: no dialog.
    NoDialog,
    /// A 1xx with a To tag; `created` when it opened a new early dialog (a new fork).
    Early {
        key: DialogKey,
        created: bool,
        target_refreshed: bool,
    },
    /// A 2xx confirmed the dialog. `first` is false when another fork had answered
    /// already: the caller ACKs this one and then sends it BYE (§13.2.2.4).
    Confirmed { key: DialogKey, first: bool },
    /// A non-2xx final response: these early dialogs ended and were removed (§13.2.2.3).
    Failed { removed: Vec<DialogKey> },
}

/// Counters for the driver to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialogStats {
    pub created: u64,
    pub confirmed: u64,
    pub removed: u64,
    /// Dialogs not created because the table was full.
    pub rejected_full: u64,
    /// 2xx from a second fork after one had answered.
    pub late_forks: u64,
    pub requests_accepted: u64,
    pub target_refreshes: u64,
    pub rejected_no_dialog: u64,
    pub rejected_out_of_order: u64,
    pub rejected_invite_in_progress: u64,
    pub rejected_glare: u64,
    pub rejected_bad_request: u64,
    pub dropped_acks: u64,
}

#[derive(Debug, Default)]
struct SetEntry {
    remote_tags: Vec<String>,
    /// The remote tag of the first fork that answered 2xx.
    winner: Option<String>,
}

type SetKey = (String, String);

/// See the module docs.
#[derive(Debug)]
pub struct Dialogs {
    max: usize,
    map: FastMap<DialogKey, Dialog>,
    sets: FastMap<SetKey, SetEntry>,
    stats: DialogStats,
}

impl Dialogs {
    /// A table holding at most `max` dialogs.
    pub fn new(max: usize) -> Dialogs {
        Dialogs {
            max,
            map: FastMap::default(),
            sets: FastMap::default(),
            stats: DialogStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn stats(&self) -> &DialogStats {
        &self.stats
    }

    pub fn get(&self, key: &DialogKey) -> Option<&Dialog> {
        self.map.get(key)
    }

    pub fn get_mut(&mut self, key: &DialogKey) -> Option<&mut Dialog> {
        self.map.get_mut(key)
    }

    pub fn contains(&self, key: &DialogKey) -> bool {
        self.map.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DialogKey, &Dialog)> {
        self.map.iter()
    }

    /// Adds a dialog; `Full` at the bound, `Duplicate` when its key is taken.
    pub fn insert(&mut self, dialog: Dialog) -> Result<&mut Dialog, DialogError> {
        if self.map.contains_key(dialog.key()) {
            return Err(DialogError::Duplicate);
        }
        if self.map.len() >= self.max {
            self.stats.rejected_full += 1;
            return Err(DialogError::Full(self.max));
        }
        let key = dialog.key().clone();
        let entry = self
            .sets
            .entry((key.call_id.to_string(), key.local_tag.to_string()))
            .or_default();
        entry.remote_tags.push(key.remote_tag.to_string());
        if dialog.state() == DialogState::Confirmed {
            entry
                .winner
                .get_or_insert_with(|| key.remote_tag.to_string());
            self.stats.confirmed += 1;
        }
        self.stats.created += 1;
        Ok(self.map.entry(key).or_insert(dialog))
    }

    pub fn remove(&mut self, key: &DialogKey) -> Option<Dialog> {
        let d = self.map.remove(key)?;
        let sk = (key.call_id.to_string(), key.local_tag.to_string());
        if let Some(set) = self.sets.get_mut(&sk) {
            set.remote_tags.retain(|t| **t != *key.remote_tag);
            if set.remote_tags.is_empty() {
                self.sets.remove(&sk);
            }
        }
        self.stats.removed += 1;
        Some(d)
    }

    /// The dialogs sharing a Call-ID and local tag: the forks of one INVITE we sent.
    pub fn dialog_set<'a>(
        &'a self,
        call_id: &str,
        local_tag: &str,
    ) -> impl Iterator<Item = &'a Dialog> + 'a {
        let sk = (call_id.to_string(), local_tag.to_string());
        let tags = self
            .sets
            .get(&sk)
            .map(|s| s.remote_tags.clone())
            .unwrap_or_default();
        tags.into_iter()
            .filter_map(move |t| self.map.get(&DialogKey::new(sk.0.clone(), sk.1.clone(), t)))
    }

    /// A request received with a To tag, routed to its dialog (see `Dialog::handle_request`).
    /// Unknown dialog → 481, an unknown ACK is dropped. `Err(NotInDialog)` when the request
    /// has no To tag: it is a new request, not the dialog layer's.
    pub fn handle_request(&mut self, req: &Request) -> Result<RequestVerdict, DialogError> {
        let is_ack = req.method == Method::Ack;
        let verdict = match DialogKey::for_received_request(req) {
            Err(DialogError::NotInDialog) => return Err(DialogError::NotInDialog),
            Err(_) => reject_unless_ack(is_ack, DialogRejection::BadRequest("malformed Call-ID")),
            Ok(key) => match self.map.get_mut(&key) {
                Some(d) => d.handle_request(req),
                None => reject_unless_ack(is_ack, DialogRejection::NoDialog),
            },
        };
        let s = &mut self.stats;
        match &verdict {
            RequestVerdict::Accept(a) => {
                s.requests_accepted += 1;
                s.target_refreshes += u64::from(a.target_refreshed);
            }
            RequestVerdict::Drop => s.dropped_acks += 1,
            RequestVerdict::Reject(r) => match r {
                DialogRejection::NoDialog => s.rejected_no_dialog += 1,
                DialogRejection::OutOfOrder { .. } => s.rejected_out_of_order += 1,
                DialogRejection::InviteInProgress => s.rejected_invite_in_progress += 1,
                DialogRejection::Glare => s.rejected_glare += 1,
                DialogRejection::BadRequest(_) => s.rejected_bad_request += 1,
            },
        }
        Ok(verdict)
    }

    /// A response to the INVITE we sent that creates dialogs (no To tag in it): creates an
    /// early dialog per new remote tag, confirms on 2xx, and on a non-2xx final removes the
    /// early dialogs of this INVITE. `AlreadyInDialog` for a re-INVITE: use
    /// `handle_response`.
    pub fn handle_invite_response(
        &mut self,
        invite: &Request,
        resp: &Response,
    ) -> Result<InviteOutcome, DialogError> {
        if invite.headers.to_tag().is_some() {
            return Err(DialogError::AlreadyInDialog);
        }
        let status = resp.status;
        if status >= 300 {
            let local = DialogKey::for_sent_request(invite)?;
            return Ok(InviteOutcome::Failed {
                removed: self.remove_early(&local.call_id, &local.local_tag),
            });
        }
        if status < 200 && (status == 100 || resp.headers.to_tag().is_none()) {
            return Ok(InviteOutcome::NoDialog);
        }
        let key = DialogKey::for_received_response(resp)?;
        let sk = (key.call_id.to_string(), key.local_tag.to_string());
        let winner_before = self.sets.get(&sk).and_then(|s| s.winner.clone());
        let existing = self.map.get_mut(&key);
        let was_confirmed = existing
            .as_ref()
            .is_some_and(|d| d.state() == DialogState::Confirmed);
        let (created, effect) = match existing {
            Some(d) => (false, d.handle_response(resp)?),
            None => {
                let d = Dialog::from_uac(invite, resp)?;
                let state = d.state();
                self.insert(d)?;
                let effect = ResponseEffect {
                    target_refreshed: false,
                    state,
                };
                (true, effect)
            }
        };
        if status < 200 {
            return Ok(InviteOutcome::Early {
                key,
                created,
                target_refreshed: effect.target_refreshed,
            });
        }
        if !created && !was_confirmed && effect.state == DialogState::Confirmed {
            self.stats.confirmed += 1;
        }
        if let Some(set) = self.sets.get_mut(&sk) {
            set.winner.get_or_insert_with(|| key.remote_tag.to_string());
        }
        // A retransmitted 2xx of the winning fork is still "first".
        let first = winner_before.is_none_or(|w| *w == *key.remote_tag);
        if !first {
            self.stats.late_forks += 1;
        }
        Ok(InviteOutcome::Confirmed { key, first })
    }

    /// A response to a request we sent inside a dialog (see `Dialog::handle_response`).
    /// `Mismatch` when no dialog has its key.
    pub fn handle_response(&mut self, resp: &Response) -> Result<ResponseEffect, DialogError> {
        let key = DialogKey::for_received_response(resp)?;
        let d = self.map.get_mut(&key).ok_or(DialogError::Mismatch)?;
        let before = d.state();
        let effect = d.handle_response(resp)?;
        if before == DialogState::Early && effect.state == DialogState::Confirmed {
            self.stats.confirmed += 1;
        }
        Ok(effect)
    }

    /// A response we send in dialog `key` (see `Dialog::handle_sent_response`); `None`
    /// when the dialog is unknown.
    pub fn handle_sent_response(
        &mut self,
        key: &DialogKey,
        resp: &Response,
    ) -> Option<DialogState> {
        let d = self.map.get_mut(key)?;
        let before = d.state();
        let after = d.handle_sent_response(resp);
        if before == DialogState::Early && after == DialogState::Confirmed {
            self.stats.confirmed += 1;
        }
        Some(after)
    }

    /// The INVITE transaction that created the dialog set ended (final response handled,
    /// Timer B, or a transport error): early dialogs left in it will never be confirmed and
    /// are removed (§13.2.2.4: their forks never answered). Returns their keys.
    pub fn invite_completed(&mut self, call_id: &str, local_tag: &str) -> Vec<DialogKey> {
        self.remove_early(call_id, local_tag)
    }

    fn remove_early(&mut self, call_id: &str, local_tag: &str) -> Vec<DialogKey> {
        let early: Vec<DialogKey> = self
            .dialog_set(call_id, local_tag)
            .filter(|d| d.state() == DialogState::Early)
            .map(|d| d.key().clone())
            .collect();
        for k in &early {
            self.remove(k);
        }
        early
    }
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
