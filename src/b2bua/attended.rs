//! Attended transfer carried out by the switch (RFC 5589 §7; REFER with Replaces, RFC 3891):
//! the receptionist T took a call from A (call 1, T its callee), called C (call 2, T its
//! caller) and now sends, on call 1, a REFER whose Refer-To names C with
//! `?Replaces=<call 2 as T sees it>`. The switch joins A and C without a new INVITE: C's leg
//! moves from call 2 into call 1 as its callee, each of them gets a re-INVITE offering the
//! other side (with the relay: our ports of call 1, so A's media path stays and C is
//! re-pointed to it, in C's own `o=` line; in bypass: the other phone's SDP), set back to
//! sendrecv since T had held at least one of them. T gets a 202, a NOTIFY `SIP/2.0 200 OK`
//! (unless `Refer-Sub: false`) and a BYE on both of its legs. Call 1 goes on with its caller
//! (CDR `transferred_to` C); T's part of call 1 gets its own record, and call 2 ends with
//! cause ATTENDED_TRANSFER.
//!
//! Only this shape (T the callee of the call the REFER comes on and the caller of the call
//! it replaces) is carried out; any other Replaces is relayed to the other phone as before.

use super::core::B2bua;
use super::transfer::{sendrecv, Transfer, TransferState};
use super::{BLeg, BLegState, CallId, CallState, LegRef};
use crate::cdr::{HangupCause, Side};
use crate::dialog::DialogKey;
use crate::media::{rewrite, Side as MediaSide};
use bytes::Bytes;
use std::time::{Instant, SystemTime};

/// `%HH` escapes of a URI header value decoded (RFC 3261 §19.1.1); a broken escape stays.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The dialog a Replaces value names (RFC 3891 §6.1: `call-id;to-tag=…;from-tag=…`), as the
/// two keys it may be on our side (T names it from its own view or from the peer's).
fn replaces_keys(value: &str) -> Option<[DialogKey; 2]> {
    let v = unescape(value);
    let mut parts = v.split(';').map(str::trim);
    let call_id = parts.next().filter(|c| !c.is_empty())?;
    let (mut to, mut from) = (None, None);
    for p in parts {
        match p.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("to-tag") => to = Some(v.trim()),
            Some((k, v)) if k.trim().eq_ignore_ascii_case("from-tag") => from = Some(v.trim()),
            _ => {}
        }
    }
    let (to, from) = (to?, from?);
    Some([
        DialogKey::new(call_id, to, from),
        DialogKey::new(call_id, from, to),
    ])
}

impl B2bua {
    /// The call a REFER's Replaces names when the switch can join it with call `id`: another
    /// connected call whose caller leg is that dialog, with an answered callee.
    fn replaced_call(&self, id: CallId, replaces: &str) -> Option<(CallId, usize)> {
        let keys = replaces_keys(replaces)?;
        let (id2, leg) = keys.iter().find_map(|k| self.calls.by_dialog(k))?;
        let call2 = self.calls.get(id2)?;
        let busy = call2
            .transfer
            .as_ref()
            .is_some_and(|t| t.state == TransferState::Calling);
        let w2 = call2.winner?;
        let ok = id2 != id
            && leg == LegRef::A
            && call2.state == CallState::Connected
            && !busy
            && call2.b.get(w2)?.dialog.is_some();
        ok.then_some((id2, w2))
    }

    /// Whether an attended transfer on call `id` naming `replaces` can be carried out here.
    pub(super) fn can_join(&self, id: CallId, replaces: &str) -> bool {
        self.replaced_call(id, replaces).is_some()
    }

    /// Joins call `id`'s caller with the callee of the call `replaces` names; the REFER came
    /// on `leg` (the transferor's) and has been answered 202.
    pub(super) fn join_calls(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: CallId,
        leg: LegRef,
        replaces: &str,
        (refer_seq, notify): (u32, bool),
    ) {
        let Some((id2, w2)) = self.replaced_call(id, replaces) else {
            return;
        };
        tracing::info!(target: "ferroswitch::call", call = id, with = id2, "attended transfer");
        let Some([call1, call2]) = self.calls.get_disjoint_mut([id, id2]) else {
            return;
        };
        // The offers: each side gets the other, back to sendrecv.
        let (offer_c, offer_a) = match (call1.media.as_mut(), call2.media.as_mut()) {
            (Some(m1), Some(m2)) => {
                // C keeps its own o= line (RFC 3264 §8), with call 1's ports facing it.
                let to_c = m1.last_sent[1].clone().map(|b| sendrecv(&b));
                let plans = m1.alloc.plans(MediaSide::B);
                let mut origin = m2.origins[1].clone();
                let offer_c = to_c.and_then(|b| rewrite(&b[..], &plans, &mut origin).ok());
                m1.origins[1] = origin;
                let offer_a = m1.last_sent[0].clone().map(|b| sendrecv(&b));
                (offer_c.map(Bytes::from), offer_a)
            }
            _ => (
                call1.bypass_sdp[0].clone().map(|b| sendrecv(&b)),
                call2.bypass_sdp[1].clone().map(|b| sendrecv(&b)),
            ),
        };
        // C's leg moves into call 1; call 2 keeps a settled stand-in at its index.
        let Some(slot) = call2.b.get_mut(w2) else {
            return;
        };
        let stand_in = BLeg {
            key: slot.key.clone(),
            invite: slot.invite.clone(),
            peer: slot.peer,
            advertised: slot.advertised.clone(),
            state: BLegState::Failed(487),
            dialog: None,
            ack: None,
            ack_waits_for_caller: false,
            session_timer: None,
            answer_sdp: None,
            allows_update: false,
            auth: None,
            user: None,
        };
        let c_leg = std::mem::replace(slot, stand_in);
        call2.winner = None;
        call2.end = Some((HangupCause::AttendedTransfer, 200, Side::Caller));
        let target = call2.callee.clone();
        let by = call1.callee.clone();
        call2.transfer = Some(Box::new(Transfer {
            state: TransferState::Done,
            transferor: LegRef::A,
            refer_seq,
            notify: false,
            notified: 200,
            legs: Vec::new(),
            target: call1.caller.clone(),
            by: by.clone(),
            transferor_gone: false,
            no_answer_at: None,
            timed_out: false,
            count: 1,
        }));
        let count = call1.transfer.as_ref().map_or(0, |t| t.count) + 1;
        call1.transfer = Some(Box::new(Transfer {
            state: TransferState::Done,
            transferor: leg,
            refer_seq,
            notify,
            notified: 100,
            legs: Vec::new(),
            target: target.clone(),
            by,
            transferor_gone: false,
            no_answer_at: None,
            timed_out: false,
            count,
        }));
        let n = call1.b.len();
        let (c_key, c_dialog) = (
            c_leg.key.clone(),
            c_leg.dialog.as_ref().map(|d| d.key().clone()),
        );
        call1.b.push(c_leg);
        self.calls.add_b_invite(c_key, id, n);
        if let Some(k) = c_dialog {
            self.calls.add_dialog(k, id, LegRef::B(n));
        }
        if notify {
            self.send_notify(id, leg, refer_seq, 200, true);
        }
        self.transferor_cdr(wall, id, HangupCause::AttendedTransfer);
        self.release_transferor(id, leg);
        if let Some(call1) = self.calls.get_mut(id) {
            call1.winner = Some(n);
            call1.callee = target;
        }
        if let Some(sdp) = offer_c {
            self.reoffer(id, LegRef::B(n), sdp);
        }
        if let Some(sdp) = offer_a {
            self.reoffer(id, LegRef::A, sdp);
        }
        self.arm_session_timers(now, id);
        // T's call with C ends: BYE to T only (C lives on in call 1).
        self.hang_up(wall, id2, Side::Callee, HangupCause::AttendedTransfer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3891_6_1_replaces_names_a_dialog_either_way_round() {
        let [a, b] = replaces_keys("abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2").unwrap();
        assert_eq!(a, DialogKey::new("abc@h", "1", "2"));
        assert_eq!(b, DialogKey::new("abc@h", "2", "1"));
        assert!(replaces_keys("abc%40h%3Bto-tag%3D1").is_none());
        assert!(replaces_keys("%zz;to-tag=1;from-tag=2").is_some());
        assert_eq!(unescape("a%4"), "a%4");
    }
}
