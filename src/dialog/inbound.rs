//! Receiving requests inside a dialog (RFC 3261 §12.2.2, §14.2): the CSeq order check
//! (500), INVITE glare (491, or 500 with Retry-After while the peer's own INVITE is still
//! unanswered), the remote target refresh, and the end of the dialog on BYE.
//!
//! The result is a typed verdict the layer above turns into a response; the dialog never
//! answers by itself and never answers an ACK. Never panics on what a peer sends.

use super::key::DialogKey;
use super::state::{is_target_refresh, Dialog, DialogState};
use crate::sip::{reason_phrase, response_to, HeaderName, Method, Request, Response};

/// What to do with a request received in a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestVerdict {
    /// In order, in a live dialog: the layer above handles it.
    Accept(Accepted),
    /// Answer with the rejection's response.
    Reject(DialogRejection),
    /// An ACK that matches no dialog or no INVITE of it: drop it (ACKs are never answered).
    Drop,
}

/// An accepted in-dialog request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub key: DialogKey,
    /// The request replaced the remote target (a target refresh with a new Contact).
    pub target_refreshed: bool,
    /// The dialog's state afterwards (Terminated after a BYE).
    pub state: DialogState,
}

/// Why an in-dialog request is refused; `response_to` writes the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogRejection {
    /// 481: no such dialog, or it has ended (§12.2.2).
    NoDialog,
    /// 500: the CSeq number is not above the last one received (§12.2.2).
    OutOfOrder { cseq: u32, last: u32 },
    /// 500 with Retry-After 0–10 s: an INVITE while the peer's earlier INVITE in this dialog
    /// has no final response yet (§14.2).
    InviteInProgress,
    /// 491 Request Pending: an INVITE while our own INVITE in this dialog is pending (§14.2).
    Glare,
    /// 400: a header the dialog needs is malformed.
    BadRequest(&'static str),
}

/// §14.2: "a randomly chosen value of between 0 and 10 seconds".
pub const INVITE_IN_PROGRESS_RETRY_AFTER_MAX: u32 = 10;

impl DialogRejection {
    pub fn status(&self) -> u16 {
        match self {
            DialogRejection::NoDialog => 481,
            DialogRejection::OutOfOrder { .. } | DialogRejection::InviteInProgress => 500,
            DialogRejection::Glare => 491,
            DialogRejection::BadRequest(_) => 400,
        }
    }

    pub fn reason_phrase(&self) -> &'static str {
        match self {
            DialogRejection::OutOfOrder { .. } => "CSeq Out Of Order",
            DialogRejection::InviteInProgress => "INVITE In Progress",
            _ => reason_phrase(self.status()),
        }
    }

    /// The upper bound, in seconds, of the Retry-After the RFC asks for; the value sent is
    /// chosen at random up to it.
    pub fn retry_after_max(&self) -> Option<u32> {
        match self {
            DialogRejection::InviteInProgress => Some(INVITE_IN_PROGRESS_RETRY_AFTER_MAX),
            _ => None,
        }
    }

    /// The response to `req` (§8.2.6), with `Retry-After: random % (max + 1)` when the RFC
    /// wants one. `random` is any random number from the caller (no RNG in here).
    pub fn response_to(&self, req: &Request, random: u32) -> Response {
        let mut resp = response_to(req, self.status(), self.reason_phrase());
        if let Some(max) = self.retry_after_max() {
            resp.headers
                .push(HeaderName::RetryAfter, (random % (max + 1)).to_string());
        }
        resp
    }
}

impl Dialog {
    /// A request received in this dialog (the key already matched). See the module docs;
    /// on acceptance the remote CSeq, the remote target and the INVITE bookkeeping are
    /// updated, and a BYE ends the dialog.
    pub fn handle_request(&mut self, req: &Request) -> RequestVerdict {
        let is_ack = req.method == Method::Ack;
        let Some(cseq) = req.headers.cseq() else {
            return reject_unless_ack(is_ack, DialogRejection::BadRequest("malformed CSeq"));
        };
        if self.state == DialogState::Terminated {
            return reject_unless_ack(is_ack, DialogRejection::NoDialog);
        }
        let mut target_refreshed = false;
        match req.method {
            // An ACK carries its INVITE's number; anything else is stale or stray.
            Method::Ack => {
                if self.last_received_invite != Some(cseq.seq) {
                    return RequestVerdict::Drop;
                }
            }
            // A CANCEL carries the number of the request it cancels (§9.1); the transaction
            // layer has matched it already.
            Method::Cancel => {}
            ref method => {
                if let Some(last) = self.remote_seq {
                    if cseq.seq <= last {
                        return RequestVerdict::Reject(DialogRejection::OutOfOrder {
                            cseq: cseq.seq,
                            last,
                        });
                    }
                }
                // §12.2.2: the number is taken even if the method's own rules refuse it.
                self.remote_seq = Some(cseq.seq);
                if *method == Method::Invite {
                    if self.pending_in_invite.is_some() {
                        return RequestVerdict::Reject(DialogRejection::InviteInProgress);
                    }
                    if self.pending_out_invite.is_some() {
                        return RequestVerdict::Reject(DialogRejection::Glare);
                    }
                }
                if is_target_refresh(method) {
                    match self.refresh_target(&req.headers) {
                        Ok(changed) => target_refreshed = changed,
                        Err(_) => {
                            return RequestVerdict::Reject(DialogRejection::BadRequest(
                                "malformed Contact",
                            ))
                        }
                    }
                }
                match method {
                    Method::Invite => {
                        self.pending_in_invite = Some(cseq.seq);
                        self.last_received_invite = Some(cseq.seq);
                    }
                    Method::Bye => self.state = DialogState::Terminated,
                    _ => {}
                }
            }
        }
        RequestVerdict::Accept(Accepted {
            key: self.key.clone(),
            target_refreshed,
            state: self.state,
        })
    }
}

pub(super) fn reject_unless_ack(is_ack: bool, why: DialogRejection) -> RequestVerdict {
    if is_ack {
        RequestVerdict::Drop
    } else {
        RequestVerdict::Reject(why)
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
