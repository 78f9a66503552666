//! The B2BUA: where a newcomer finds what a call does. One `Call` pairs the caller's dialog
//! (the a-leg, where we are the UAS) with one or more callee dialogs (b-legs, where we are the
//! UAC; several while ringing several registered contacts in parallel). `B2bua` (`core`) owns
//! every call and MESSAGE in flight; events go in through its `handle_*` methods and what must
//! happen comes out as `Command`s for the engine to carry out (quinn's Endpoint/Connection
//! split: the engine routes, the core decides).
//!
//! The map, by what a call goes through:
//! - `setup`: a new call — the admitted INVITE routed to the callee's contacts, the limits,
//!   the b-leg INVITEs (identity, privacy, headers cleaned by `headers`), 404/480 with a CDR;
//! - `events`: the callee's answers relayed to the caller, ACKs, CANCEL, the no-answer timer,
//!   the 2xx retransmissions, the end of a call and its CDR;
//! - `in_dialog`: BYE, re-INVITE, UPDATE, INFO, NOTIFY … across the two legs;
//! - `transfer`: a REFER answered by the switch itself (RFC 3515 blind transfer): 202, the
//!   target routed through the `Router` the engine hands in, a new b-leg for it, NOTIFYs of
//!   its progress to the transferor, and the swap of legs when it answers; `attended`: a
//!   REFER with Replaces joining the transferor's two calls (RFC 3891); `caller_transfer`:
//!   the caller's REFER, where the target's leg takes the a side's place when it answers;
//! - `reinvite`: after a relayed re-INVITE's 2xx (ACKs, retransmissions, late offer);
//! - `refresh`: RFC 4028 refreshes we send ourselves;
//! - `message`: out-of-dialog MESSAGE (RFC 3428) to every contact of the callee;
//! - `shutdown`: every call ended at once when the daemon stops;
//! - `reject`: every refusal named once, with its status, phrase and headers;
//! - `table`, `limits`, `respond`: the call table and its timer heap, the per-user and
//!   per-source counts, the headers every answer of ours carries.
//!
//! Never does I/O and never reads a clock; bounded by `max_calls`.

mod attended;
mod caller_transfer;
mod core;
mod events;
pub mod headers;
mod in_dialog;
mod limits;
mod media;
mod message;
pub mod plan;
mod refresh;
mod reinvite;
mod reject;
pub mod respond;
mod setup;
mod shutdown;
mod snapshot;
mod stats;
mod table;
mod transfer;

pub use self::core::{
    B2bua, B2buaConfig, B2buaStats, CallSettings, Command, TxView, BRANCH_PREFIX,
};
pub use limits::{Hold, Limits, Over};
pub use media::{CallMedia, RelayHandle};
pub use plan::{CallerId, GatewayLeg, LegTarget, Lookup, Next, Plan, Query, MAX_HOPS};
pub use reject::Reject;
pub use respond::{ACCEPT, ALLOW, SUPPORTED, SUPPORTED_TAGS};
pub use setup::{advertised, binding_peer, identity, Arrival, Route, RouteQuery, Router};
pub use snapshot::CallInfo;
pub use stats::{CallStats, PDD_BUCKETS_MS};
pub use table::{CallTimer, Calls, LegRef};
pub use transfer::{Transfer, TransferState};

/// Who sends a request that passed admission (the engine's `admit`: Max-Forwards, loops,
/// digest, the served domain).
#[derive(Debug, Clone)]
pub struct Admitted {
    pub ruri: crate::sip::Uri,
    /// The configured domain, else the Request-URI's host (`registrar::canonical_host`).
    pub realm: String,
    /// The caller: the authenticated user (display name from the directory, else its From),
    /// or with `auth_calls = false` whatever its From says.
    pub caller: Party,
    /// Digest verified: only then may the caller's identity be asserted to anyone.
    pub authenticated: bool,
    /// The dialplan context the call runs in: the user's (`default` unless set), `public`
    /// for trunks and unauthenticated callers.
    pub context: String,
    /// The number dialled: the Request-URI's user, or To's for a call from a trunk to our
    /// registration's Contact.
    pub number: String,
    /// The `[[gateway]]` it came from, when it came from a trunk.
    pub trunk: Option<String>,
}

use crate::cdr::{HangupCause, Party, Side};
use crate::dialog::{Dialog, SessionTimer};
use crate::net::Peer;
use crate::sip::{Request, Response};
use crate::transaction::TransactionKey;
use bytes::Bytes;
use std::time::{Duration, Instant, SystemTime};

/// Our id for a call, unique per daemon run.
pub type CallId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// b-legs are being tried; the caller has at most provisional responses.
    Ringing,
    /// We sent the caller a 2xx and wait for its ACK.
    Answered,
    /// Both legs confirmed.
    Connected,
    /// A BYE or a final failure is under way; the call ends when the legs are cleared.
    Ending,
}

/// The caller's side: we are its UAS. After a transfer by the caller it is the side of the
/// party that took the caller's place (`caller_transfer`): that leg's dialog, address and
/// session timer (we are its UAC); the INVITE fields stay the original caller's.
#[derive(Debug)]
pub struct ALeg {
    /// The INVITE server transaction.
    pub invite_key: TransactionKey,
    pub invite: Request,
    /// Where responses and our in-dialog requests go.
    pub peer: Peer,
    pub local_tag: String,
    /// Our Contact / Via host:port as the caller addresses us.
    pub advertised: String,
    pub dialog: Option<Dialog>,
    /// The 2xx we sent, retransmitted until the ACK comes (RFC 3261 §13.3.1.4).
    pub ok: Option<Box<Response>>,
    pub ok_interval: Duration,
    pub ok_give_up: Option<Instant>,
    pub session_timer: Option<SessionTimer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BLegState {
    /// INVITE sent, nothing or 100 back.
    Calling,
    /// A provisional response with a To tag came (early dialog).
    Early,
    /// 2xx received.
    Answered,
    /// Final non-2xx, timeout or transport error; the status we count it as.
    Failed(u16),
    /// We sent CANCEL (another leg won, the caller cancelled, or no answer).
    Cancelling,
}

/// One callee contact being called: we are its UAC.
#[derive(Debug)]
pub struct BLeg {
    pub key: TransactionKey,
    pub invite: Request,
    pub peer: Peer,
    pub advertised: String,
    pub state: BLegState,
    pub dialog: Option<Dialog>,
    /// The ACK we sent for its 2xx, resent when the 2xx is retransmitted (§13.2.2.4).
    pub ack: Option<Bytes>,
    /// Late offer: the 2xx carried the offer, the ACK waits for the caller's answer.
    pub ack_waits_for_caller: bool,
    pub session_timer: Option<SessionTimer>,
    /// The SDP of its 2xx (what the caller got from us): offered again in our refreshes.
    pub answer_sdp: Option<Bytes>,
    /// Its 2xx allowed UPDATE (RFC 4028 refreshes then use UPDATE without a body).
    pub allows_update: bool,
    /// A leg toward a trunk: the credentials its 401/407 are answered with (`plan`).
    pub auth: Option<Box<plan::LegAuth>>,
    /// The user of ours it rings (`LegTarget::user`): once it answers, the user whose
    /// context its REFER is routed in. `None` toward a trunk.
    pub user: Option<String>,
}

/// A re-INVITE relayed from one leg to the other and answered with a 2xx. Our 2xx on
/// `from_leg` is retransmitted until that leg's ACK (RFC 3261 §13.3.1.4); the ACK we owe
/// `to_leg` goes out at once or, when its 2xx carried the offer, with the answer from the
/// `from_leg` ACK (§13.2.1), and is resent for every retransmission of that 2xx (§13.2.2.4).
#[derive(Debug)]
pub struct ReinviteAnswer {
    pub from_leg: LegRef,
    /// The re-INVITE's server transaction and CSeq number on `from_leg`.
    pub server_key: TransactionKey,
    pub from_seq: u32,
    /// Our 2xx on `from_leg` while it is not acknowledged.
    pub ok: Option<Box<Response>>,
    pub ok_interval: Duration,
    pub ok_give_up: Instant,
    pub to_leg: LegRef,
    /// The CSeq number of our re-INVITE on `to_leg`.
    pub to_seq: u32,
    /// The ACK sent on `to_leg`; `None` while it waits for the answer.
    pub ack: Option<Bytes>,
}

/// An in-dialog request relayed from one leg to the other, waiting for its answer.
#[derive(Debug)]
pub struct Relay {
    pub call: CallId,
    /// The server transaction of the original request, on the side it came from.
    pub server_key: TransactionKey,
    pub original: Request,
    /// The leg the original came in on, and the leg it was sent out on.
    pub from_leg: LegRef,
    pub to_leg: LegRef,
}

#[derive(Debug)]
pub struct Call {
    pub id: CallId,
    pub state: CallState,
    pub a: ALeg,
    pub b: Vec<BLeg>,
    /// Index of the b-leg that answered.
    pub winner: Option<usize>,
    pub caller: Party,
    pub callee: Party,
    /// The realm / domain the call belongs to.
    pub domain: String,
    pub start: SystemTime,
    pub answer: Option<SystemTime>,
    /// Set when the call starts ending: why, the SIP status the caller got, who ended it.
    pub end: Option<(HangupCause, u16, Side)>,
    /// When the call ended for its users (hang-up, cancel, final failure): CDR end time.
    pub ended_at: Option<SystemTime>,
    /// The CDR was emitted; the call stays in the table only until its last b-legs settle
    /// (a CANCEL waiting for a provisional, a dead contact timing out).
    pub cdr_written: bool,
    /// Whether the caller cancelled (a 2xx arriving after that is ACKed and BYEd).
    pub cancelled: bool,
    /// The b-leg whose Call-ID goes into the CDR when none answered.
    pub first_b_call_id: Option<String>,
    /// Deadlines; a heap entry fires only while it equals the one stored here.
    pub no_answer_at: Option<Instant>,
    pub ok_next: Option<Instant>,
    /// RFC 4028 per side (index 0: caller, 1: callee): when we refresh, when we give up.
    pub refresh_at: [Option<Instant>; 2],
    pub expire_at: [Option<Instant>; 2],
    /// The last relayed re-INVITE that was answered with a 2xx, and when its 2xx is resent.
    pub reinvite: Option<Box<ReinviteAnswer>>,
    pub reinvite_ok_next: Option<Instant>,
    /// The per-user / per-source counts this call holds, given back when it ends.
    pub hold: Option<Hold>,
    /// Whether the caller proved who it is (digest); an unauthenticated caller's identity is
    /// never asserted to the callee (no P-Asserted-Identity, RPID `screen=no`).
    pub caller_authenticated: bool,
    /// The caller asked for privacy (RFC 3323 `Privacy: id`, `user` or `header`): the callee
    /// sees an anonymous From and no asserted identity; the CDR keeps the real caller.
    pub caller_private: bool,
    /// `call{id=…}`: entered while the call handles an event, so every log line of the call
    /// (and of the layers it calls into) carries its id.
    pub span: tracing::Span,
    /// The call's relay session, when its media is anchored (`media`).
    pub media: Option<Box<CallMedia>>,
    /// Our address on the caller's SIP leg: where relay sockets bind unless `rtp_ip` says.
    pub media_ip: std::net::IpAddr,
    /// The dialplan context the caller's calls run in (a callee's 3xx is routed there).
    pub context: String,
    /// Groups, forwarding, redirects: what follows a failed step (`plan`).
    pub plan: Option<Box<plan::PlanState>>,
    /// A transfer the switch runs for this call (REFER, `transfer`): in progress, or the
    /// last one done (what the CDR reports, and whose transferor's late BYE gets a 200).
    pub transfer: Option<Box<transfer::Transfer>>,
    /// Without a relay (`mode = "bypass"`): the last SDP each phone sent (0 caller, 1
    /// callee), what a transfer offers the new party. With a relay, `media.last_sent` is.
    pub bypass_sdp: [Option<Bytes>; 2],
}

impl Call {
    /// Once the call is connected, keeps only what the rest of its life reads from the two
    /// INVITEs (Call-IDs for the CDR, CSeq to tell a re-INVITE's 2xx from the first one's,
    /// Allow, and each side's SDP when the other side's RFC 4028 refresh will resend it),
    /// copied out of their datagrams, so that a held call no longer pins three whole
    /// messages. Without a stored SDP a refresh goes out as an UPDATE without a body.
    pub fn compact(&mut self) {
        use crate::sip::HeaderName as H;
        let a_refreshes = self.a.session_timer.is_some();
        let Some(w) = self.winner.and_then(|w| self.b.get_mut(w)) else {
            return;
        };
        // Each side's SDP is only read again to refresh the *other* side's session timer.
        self.a
            .invite
            .keep_only(&[H::CallId, H::CSeq, H::Allow], w.session_timer.is_some());
        w.invite.keep_only(&[H::CallId, H::CSeq], false);
        w.answer_sdp = w
            .answer_sdp
            .take()
            .filter(|_| a_refreshes)
            .map(|sdp| bytes::Bytes::copy_from_slice(&sdp));
        // In bypass the phones' SDP are slices of the INVITE's and the 200's datagrams:
        // copied out, so that the call no longer pins two whole messages; shared with the
        // copies kept above when they are the same octets.
        let kept = [
            &self.a.invite.body,
            w.answer_sdp.as_ref().unwrap_or(&w.invite.body),
        ];
        for (sdp, kept) in self.bypass_sdp.iter_mut().zip(kept) {
            if let Some(sdp) = sdp {
                *sdp = if !kept.is_empty() && kept == sdp {
                    kept.clone()
                } else {
                    bytes::Bytes::copy_from_slice(sdp)
                };
            }
        }
    }

    /// True when every b-leg has a final answer (or was never created).
    pub fn all_b_legs_done(&self) -> bool {
        self.b
            .iter()
            .all(|l| matches!(l.state, BLegState::Failed(_) | BLegState::Answered))
    }

    /// The best final response among failed b-legs (RFC 3261 §16.7 step 6).
    pub fn best_failure(&self) -> Option<u16> {
        best_response(self.b.iter().filter_map(|l| match l.state {
            BLegState::Failed(s) => Some(s),
            _ => None,
        }))
    }
}

/// RFC 3261 §16.7: a 6xx wins; otherwise the lowest class, preferring within the class the
/// responses a caller can act on (401/407/415/420/484 first, then 486 over 480 over 408 …).
/// A 503 is passed on as 503 (we answer as a UAS, like FreeSWITCH: the callee is unreachable or
/// overloaded), not turned into the 500 that §16.7 asks of a proxy.
pub fn best_response(statuses: impl Iterator<Item = u16>) -> Option<u16> {
    let rank = |s: u16| -> (u16, u16) {
        let class = match s / 100 {
            6 => 0,
            c => c,
        };
        let within = match s {
            401 | 407 | 415 | 420 | 484 => 0,
            486 | 600 | 603 => 1,
            404 => 2,
            480 => 3,
            487 => 4,
            408 => 6,
            _ => 5,
        };
        (class, within)
    };
    statuses.min_by_key(|&s| rank(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_16_7_best_response() {
        assert_eq!(best_response([486, 480].into_iter()), Some(486));
        assert_eq!(best_response([480, 603].into_iter()), Some(603));
        assert_eq!(best_response([408, 480].into_iter()), Some(480));
        assert_eq!(best_response([503].into_iter()), Some(503));
        assert_eq!(best_response([302, 486].into_iter()), Some(302));
        assert_eq!(best_response(std::iter::empty()), None);
    }
}

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod plan_tests;
