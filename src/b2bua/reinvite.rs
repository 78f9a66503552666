//! The end of a relayed re-INVITE: once the far leg answers 2xx, we are the UAC that must
//! ACK it and the UAS whose 2xx must reach the near leg. So the 2xx we relay is retransmitted
//! until the near leg's ACK (RFC 3261 §13.3.1.4: T1 doubling up to T2, the call hung up after
//! 64·T1 without one); the far leg gets its ACK at once, or — when its 2xx carried the offer
//! because the re-INVITE had none — with the answer from the near leg's ACK (§13.2.1); and
//! each retransmission of the far leg's 2xx is ACKed again (§13.2.2.4), never taken for the
//! 2xx of a call that is gone.
//!
//! Never sends a BYE into a dialog that still belongs to a call.

use super::core::{B2bua, Command, TxView};
use super::events::next_2xx_retransmit;
use super::{CallId, CallTimer, LegRef, ReinviteAnswer, Relay};
use crate::cdr::{HangupCause, Side};
use crate::dialog::{DialogKey, ViaSpec};
use crate::sip::{HeaderName, Request, Response};
use crate::transaction::TransactionKey;
use bytes::Bytes;
use std::time::{Instant, SystemTime};

impl B2bua {
    /// `resp`, a 2xx to the re-INVITE of `relay`, has come back; `out` is the 2xx we send on
    /// the leg the re-INVITE came from.
    pub(super) fn reinvite_answered(
        &mut self,
        now: Instant,
        relay: &Relay,
        resp: &Response,
        out: &Response,
    ) {
        let id = relay.call;
        let (Some(to_seq), Some(from_seq)) = (
            resp.headers.cseq().map(|c| c.seq),
            relay.original.headers.cseq().map(|c| c.seq),
        ) else {
            return;
        };
        let late_offer = relay.original.body.is_empty() && !resp.body.is_empty();
        let ack = if late_offer {
            None
        } else {
            self.ack_leg(id, relay.to_leg, to_seq, None)
        };
        let t1 = self.cfg.timers.t1;
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.reinvite = Some(Box::new(ReinviteAnswer {
            from_leg: relay.from_leg,
            server_key: relay.server_key.clone(),
            from_seq,
            ok: Some(Box::new(out.clone())),
            ok_interval: t1,
            ok_give_up: now + t1 * 64,
            to_leg: relay.to_leg,
            to_seq,
            ack,
        }));
        call.reinvite_ok_next = Some(now + t1);
        self.calls.schedule(now + t1, id, CallTimer::ReinviteOk);
    }

    /// An ACK that came in on `leg` of call `id`: if it acknowledges the 2xx of the relayed
    /// re-INVITE, the retransmissions stop and a held-back ACK goes out with its answer.
    pub(super) fn on_reinvite_ack(&mut self, now: Instant, id: CallId, leg: LegRef, ack: &Request) {
        let Some(seq) = ack.headers.cseq().map(|c| c.seq) else {
            return;
        };
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(r) = call.reinvite.as_mut() else {
            return;
        };
        if r.from_leg != leg || r.from_seq != seq {
            return;
        }
        r.ok = None;
        call.reinvite_ok_next = None;
        if r.ack.is_some() {
            return;
        }
        let (to_leg, to_seq) = (r.to_leg, r.to_seq);
        let body = (!ack.body.is_empty()).then(|| {
            let ctype = ack
                .headers
                .get_str(&HeaderName::ContentType)
                .map(str::to_string);
            (self.anchor(now, id, leg, &ack.headers, &ack.body), ctype)
        });
        let bytes = self.ack_leg(id, to_leg, to_seq, body);
        if let Some(r) = self.calls.get_mut(id).and_then(|c| c.reinvite.as_mut()) {
            r.ack = bytes;
        }
    }

    /// A 2xx to an INVITE that no b-leg INVITE and no pending relay claims: through a client
    /// transaction still in Accepted (`key`), or stray after Timer M. In a live call's dialog
    /// it is a retransmission (the first INVITE's, or a re-INVITE's): ACK it again. Only a 2xx
    /// of a dialog no call owns any more is ACKed and hung up.
    pub(super) fn unclaimed_2xx(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: Option<(&TransactionKey, &dyn TxView)>,
        resp: Response,
    ) {
        let owner = DialogKey::for_received_response(&resp)
            .ok()
            .and_then(|k| self.calls.by_dialog(&k));
        let Some((id, leg)) = owner else {
            if let Some((key, tx)) = key {
                let original = tx.request(key).cloned();
                // A callee whose call already ended (and got our BYE) repeats its 2xx: ACK
                // it where the INVITE went; a fork that answered too late is also hung up.
                let hang_up = !self.ended_b.contains(key);
                let dest = tx.peer(key);
                self.orphan_2xx(original, &resp, dest, hang_up);
            }
            return;
        };
        let Some(seq) = resp.headers.cseq().map(|c| c.seq) else {
            return;
        };
        if let LegRef::B(i) = leg {
            let first = self
                .calls
                .get(id)
                .and_then(|c| c.b.get(i))
                .and_then(|b| b.invite.headers.cseq())
                .map(|c| c.seq);
            if first == Some(seq) {
                return self.on_b_response(now, wall, id, i, resp);
            }
        }
        let again = self.calls.get(id).and_then(|c| {
            let r = c.reinvite.as_ref()?;
            (r.to_leg == leg && r.to_seq == seq)
                .then(|| r.ack.clone())
                .flatten()
        });
        if let (Some(bytes), Some(to)) = (again, self.peer_of(id, leg)) {
            self.transmit(to, bytes);
        }
    }

    /// Timer: the relayed 2xx again, or the end of the call when no ACK came in 64·T1.
    pub(super) fn retransmit_reinvite_ok(&mut self, now: Instant, wall: SystemTime, id: CallId) {
        let t2 = self.cfg.timers.t2;
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(r) = call.reinvite.as_mut() else {
            return;
        };
        let Some(ok) = r.ok.clone() else {
            return;
        };
        if now >= r.ok_give_up {
            tracing::info!(target: "ferroswitch::call", call = id, "no ACK for a relayed re-INVITE");
            r.ok = None;
            call.reinvite_ok_next = None;
            return self.hang_up(wall, id, Side::System, HangupCause::RecoveryOnTimerExpire);
        }
        let next = next_2xx_retransmit(now, &mut r.ok_interval, r.ok_give_up, t2);
        let (key, leg) = (r.server_key.clone(), r.from_leg);
        call.reinvite_ok_next = Some(next);
        self.calls.schedule(next, id, CallTimer::ReinviteOk);
        let to = self.peer_of(id, leg);
        self.resend_2xx(&key, &ok, to);
    }

    /// Sends the ACK for the 2xx to our INVITE with CSeq `seq` on `leg`, with a body when
    /// given; returns it for retransmissions.
    pub(super) fn ack_leg(
        &mut self,
        id: CallId,
        leg: LegRef,
        seq: u32,
        body: Option<(Bytes, Option<String>)>,
    ) -> Option<Bytes> {
        let call = self.calls.get(id)?;
        let (peer, adv) = match leg {
            LegRef::A => (call.a.peer, call.a.advertised.clone()),
            LegRef::B(i) => (call.b.get(i)?.peer, call.b.get(i)?.advertised.clone()),
        };
        let via = ViaSpec::new(peer.transport, adv, self.our_branch());
        let call = self.calls.get_mut(id)?;
        let dialog = match leg {
            LegRef::A => call.a.dialog.as_ref()?,
            LegRef::B(i) => call.b.get(i)?.dialog.as_ref()?,
        };
        let mut ack = dialog.ack(seq, &via).ok()?;
        if let Some((body, ctype)) = body {
            if let Some(ct) = ctype {
                ack.headers.push(HeaderName::ContentType, ct);
            }
            ack.body = body;
        }
        let bytes = ack.to_bytes();
        self.out.push_back(Command::Transmit {
            to: peer,
            bytes: bytes.clone(),
        });
        Some(bytes)
    }
}
