//! Blind transfer by the CALLER carried out by the switch (issue 12; RFC 5589 §6 with the
//! roles the other way round): bob called alice and now REFERs alice to dave. The REFER, the
//! NOTIFYs and the routing are `transfer`'s; this file holds what differs when the party
//! that stays (the transferee) is the callee, a leg where we are the UAC.
//!
//! dave is INVITEd as alice's call (alice's identity in From, RPID and, for one of our users,
//! P-Asserted-Identity) with alice's media as the a side sees it: with a relay, the body we
//! last sent bob (our ports facing the a side, so alice's media path never changes); in
//! bypass, alice's last SDP. When dave answers, his leg takes the a side's place: his dialog,
//! address and session timer move into `Call::a` (the model: `ALeg` is "the other side of
//! the callee", not "the dialog whose INVITE we received"), and bob's old dialog moves to a
//! released b-leg slot that answers his late requests (`on_released_transferor`). From there
//! on every request, BYE, refresh and re-INVITE of the a side is dave's, with no other code
//! knowing. The relay's a side follows dave's SDP (alice gets no re-INVITE unless bob had
//! put her on hold); in bypass alice is re-INVITEd with dave's SDP.
//!
//! The call's CDR keeps its caller (bob) and its a-leg Call-ID, and names dave and bob in
//! `transferred_to`/`transferred_by`; bob's part gets its own record (BLIND_TRANSFER).
//! Only an authenticated caller's REFER is carried out (the target is routed in its dialplan
//! context, never a trunk caller's); any other is relayed to the callee as before, as is a
//! REFER with Replaces from the caller, and a REFER from the party that took the caller's
//! place (it proved nothing; the call's caller is still the first one). Never panics on what a peer sends.

use super::core::B2bua;
use super::setup::LegIdentity;
use super::transfer::{sendrecv, TransferState};
use super::{BLeg, BLegState, Call, CallId, LegRef};
use crate::cdr::{HangupCause, Party};
use crate::sip::{HeaderName, Response};
use bytes::Bytes;
use std::time::{Instant, SystemTime};

impl LegIdentity {
    /// The callee of `call` (it stays when the caller transfers it) calling `target`: its
    /// identity is asserted only when it is one of our users (not a trunk's number).
    pub(super) fn of_callee(call: &Call, target: &Party) -> LegIdentity {
        let trunk = call
            .winner
            .and_then(|w| call.b.get(w))
            .is_none_or(|b| b.auth.is_some());
        LegIdentity {
            caller: call.callee.clone(),
            callee: target.clone(),
            domain: call.domain.clone(),
            private: false,
            authenticated: !trunk,
            max_forwards: 69,
            copied: Vec::new(),
        }
    }
}

/// Whether the caller of `call` may have its REFER carried out by the switch.
pub(super) fn caller_may_transfer(call: &Call) -> bool {
    call.winner.is_some() && call.caller_authenticated
}

/// What the new party is offered when the caller transfers: the callee's media as the a side
/// sees it (with a relay our ports facing the a side, in bypass the callee's own SDP).
pub(super) fn offer_from_callee(call: &Call) -> Option<Bytes> {
    match &call.media {
        Some(m) => m.last_sent[0].clone(),
        None => call.bypass_sdp[1].clone(),
    }
}

impl B2bua {
    /// The target answered on b-leg `leg` (its 2xx is ACKed) a transfer by the caller: it
    /// takes the caller's place, the caller gets NOTIFY 200 and a BYE.
    pub(super) fn caller_transfer_answered(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: CallId,
        leg: usize,
        resp: &Response,
    ) {
        let Some(t) = self.calls.get_mut(id).and_then(|c| c.transfer.as_mut()) else {
            return;
        };
        t.state = TransferState::Done;
        t.no_answer_at = None;
        let gone = t.transferor_gone;
        // The caller's own record, while the a side is still its.
        self.transferor_cdr(wall, id, HangupCause::BlindTransfer);
        let Some(m) = self.caller_replaced_by(now, id, leg, resp) else {
            tracing::warn!(target: "ferroswitch::call", call = id, leg, "transfer target answered without a dialog");
            return;
        };
        tracing::info!(target: "ferroswitch::call", call = id, leg, "transfer answered");
        // The caller's dialog is at `m` now.
        self.notify_transfer(id, 200, true);
        if !gone {
            self.release_transferor(id, LegRef::B(m));
        }
        self.arm_session_timers(now, id);
    }

    /// The target answered (`resp`, already ACKed) on b-leg `leg` of a transfer by the
    /// caller: the media follows it, and the a side becomes its leg. The caller (the
    /// transferor) still holds the a side when this is called; returns the b-leg slot its
    /// old dialog moved to (what `release_transferor` then hangs up).
    pub(super) fn caller_replaced_by(
        &mut self,
        now: Instant,
        id: CallId,
        leg: usize,
        resp: &Response,
    ) -> Option<usize> {
        let call = self.calls.get(id)?;
        let w = call.winner?;
        let sdp = super::media::is_sdp(&resp.headers, &resp.body);
        // The callee held by the transferor is offered the new party sendrecv.
        let held = call
            .media
            .as_ref()
            .and_then(|m| m.last_sent[1].as_ref())
            .is_some_and(|b| sendrecv(b) != *b);
        if sdp && self.anchors_media() {
            // The relay's a side now points at the new party.
            let to_b = self.anchor(now, id, LegRef::A, &resp.headers, &resp.body);
            if held {
                self.reoffer(id, LegRef::B(w), sendrecv(&to_b));
            }
        } else if sdp {
            if let Some(c) = self.calls.get_mut(id) {
                c.bypass_sdp[0] = Some(bytes::Bytes::copy_from_slice(&resp.body));
            }
            self.reoffer(id, LegRef::B(w), resp.body.clone());
        }

        let call = self.calls.get_mut(id)?;
        let c = call.b.get_mut(leg)?;
        let c_dialog = c.dialog.take()?;
        let c_timer = c.session_timer.take();
        let (c_peer, c_adv) = (c.peer, c.advertised.clone());
        let offered = std::mem::take(&mut c.invite.body);
        c.invite
            .keep_only(&[HeaderName::CallId, HeaderName::CSeq], false);
        // The caller's dialog goes to a released slot of its own, settled (answered, no
        // transaction pending): it only answers the caller's late requests.
        let old_key = call.a.dialog.as_ref().map(|d| d.key().clone());
        let m = call.b.len();
        call.b.push(BLeg {
            key: call.a.invite_key.clone(),
            invite: call.a.invite.clone(),
            peer: call.a.peer,
            advertised: call.a.advertised.clone(),
            state: BLegState::Answered,
            dialog: call.a.dialog.take(),
            ack: None,
            ack_waits_for_caller: false,
            session_timer: None,
            answer_sdp: None,
            allows_update: false,
            auth: None,
            user: None,
        });
        let a = &mut call.a;
        let c_key = c_dialog.key().clone();
        a.dialog = Some(c_dialog);
        a.peer = c_peer;
        a.advertised = c_adv;
        a.session_timer = c_timer;
        a.ok = None;
        a.ok_give_up = None;
        call.ok_next = None;
        // What the a side's refreshes read from "its INVITE": the new party's Allow, and
        // (bypass) its SDP, offered to the callee when the callee's refresh is ours.
        a.invite.headers.remove(&HeaderName::Allow);
        for h in resp.headers.get_all(&HeaderName::Allow) {
            a.invite.headers.push(HeaderName::Allow, h.value.clone());
        }
        a.invite.body = match (&call.media, sdp) {
            (None, true) => Bytes::copy_from_slice(&resp.body),
            _ => Bytes::new(),
        };
        // The a side is no longer the party that proved who it is: its REFERs are relayed
        // (never routed in the first caller's dialplan context) and it is never asserted.
        call.caller_authenticated = false;
        let refreshes_a = a.session_timer.is_some();
        if let Some(b) = call.b.get_mut(w) {
            // What the new party got from us: what a refresh toward it offers again.
            b.answer_sdp = refreshes_a.then_some(offered).filter(|o| !o.is_empty());
        }
        if let Some(t) = call.transfer.as_mut() {
            t.transferor = LegRef::B(m);
        }
        self.calls.add_dialog(c_key, id, LegRef::A);
        if let Some(k) = old_key {
            self.calls.add_dialog(k, id, LegRef::B(m));
        }
        tracing::info!(target: "ferroswitch::call", call = id, leg, "the transfer target takes the caller's place");
        Some(m)
    }
}
