//! Requests inside a call's dialogs: BYE from either side ends the call (200, then BYE with
//! `Reason: Q.850;cause=16` to the other side, as in the seed); re-INVITE, UPDATE, INFO,
//! MESSAGE, NOTIFY … cross over to the other leg with the headers that carry their meaning,
//! and the answer comes back the same way. A REFER from the answered callee or from an
//! authenticated caller is the switch's to carry out (`transfer`, `caller_transfer`, hooked
//! in below, as are the transferor's BYEs); a REFER from an unauthenticated caller, or with
//! a Replaces the switch cannot join, still crosses over (the transferee then calls the target
//! through us with a new INVITE) (what follows a re-INVITE's 2xx is in `call_reinvite`); stale CSeq gets 500,
//! unknown dialogs 481, crossing re-INVITEs 491 (all from the dialog layer).

use super::core::{request_command, B2bua, Command};
use super::headers::clean_value;
use super::{CallId, CallState, LegRef, Reject, Relay};
use crate::cdr::{HangupCause, Side};
use crate::dialog::{DialogKey, RequestVerdict, ViaSpec};
use crate::sip::{HeaderName, Method, Request, Response};
use crate::transaction::TransactionKey;
use rand::Rng;
use std::time::{Instant, SystemTime};

/// Headers carried across with a relayed in-dialog response.
const CARRIED: &[HeaderName] = &[
    HeaderName::ContentType,
    HeaderName::Event,
    HeaderName::Subject,
];

/// Headers a relayed in-dialog request keeps: what gives it its meaning for the peer (a REFER
/// without Refer-To is refused with 400, a NOTIFY without Event and Subscription-State is
/// not a NOTIFY — RFC 3515, RFC 6665, RFC 3891 Replaces, RFC 6086 INFO packages). Never
/// half a request: every one of these goes across (without control octets; a value that is
/// nothing else is dropped).
const CARRIED_IN_REQUESTS: &[&str] = &[
    "Content-Type",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Subject",
    "Event",
    "Subscription-State",
    "Allow-Events",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Expires",
    "Refer-To",
    "Referred-By",
    "Refer-Sub",
    "Replaces",
    "Target-Dialog",
    "Info-Package",
    "Recv-Info",
];

/// The headers of `req` to put on its relayed copy, without control octets.
fn carried_request_headers(req: &Request) -> impl Iterator<Item = crate::sip::Header> + '_ {
    req.headers
        .iter()
        .filter(|h| {
            CARRIED_IN_REQUESTS
                .iter()
                .any(|n| h.name.as_str().eq_ignore_ascii_case(n))
        })
        .filter_map(|h| clean_value(&h.value).map(|v| crate::sip::Header::new(h.name.clone(), v)))
}

impl B2bua {
    /// A request with a To tag (not ACK/CANCEL) on server transaction `key`.
    pub(super) fn handle_in_dialog(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        req: Request,
        router: super::Router<'_>,
    ) {
        let found = DialogKey::for_received_request(&req)
            .ok()
            .and_then(|k| self.calls.by_dialog(&k).map(|v| (k, v)));
        let Some((_dkey, (id, leg))) = found else {
            let resp = self.reject_response(&req, Reject::NoSuchDialog);
            return self.send_response(&key, resp);
        };
        let _span = self.enter(id);
        // The leg of a transferor the switch has released (`transfer`).
        if self.on_released_transferor(id, leg, &key, &req) {
            return;
        }
        let verdict = match self.leg_dialog(id, leg) {
            Some(d) => d.handle_request(&req),
            None => RequestVerdict::Reject(crate::dialog::DialogRejection::NoDialog),
        };
        match verdict {
            RequestVerdict::Drop => {}
            RequestVerdict::Reject(rej) => {
                let mut resp = rej.response_to(&req, self.rng.gen());
                self.finish_response(&mut resp);
                self.send_response(&key, resp);
            }
            RequestVerdict::Accept(_) => {
                let side = if leg == LegRef::A {
                    Side::Caller
                } else {
                    Side::Callee
                };
                if req.method == Method::Bye {
                    let resp = self.dialog_response(id, leg, &req, 200, "OK");
                    self.send_response(&key, resp);
                    // A transferor leaving while its target rings: the call goes on.
                    if self.transferor_leaves(id, leg) {
                        return;
                    }
                    let ringing = self
                        .calls
                        .get(id)
                        .is_some_and(|c| c.state == CallState::Ringing);
                    match leg {
                        // A BYE on the caller's early dialog cancels the call.
                        LegRef::A if ringing => return self.on_a_cancel(wall, id),
                        // §15 forbids a callee's BYE on its early dialog; should one come,
                        // that contact is given up (CANCEL) and the others ring on.
                        LegRef::B(i) if ringing => return self.cancel_b(id, i),
                        _ => {}
                    }
                    return self.hang_up(wall, id, side, HangupCause::NormalClearing);
                }
                // A blind transfer is the switch's to carry out (`transfer`).
                if req.method == Method::Refer
                    && self.handle_refer(now, wall, id, leg, &key, &req, router)
                {
                    return;
                }
                self.relay(now, id, leg, key, req);
            }
        }
    }

    pub(super) fn leg_dialog(
        &mut self,
        id: CallId,
        leg: LegRef,
    ) -> Option<&mut crate::dialog::Dialog> {
        let call = self.calls.get_mut(id)?;
        match leg {
            LegRef::A => call.a.dialog.as_mut(),
            LegRef::B(i) => call.b.get_mut(i)?.dialog.as_mut(),
        }
    }

    /// Our response to a request received in `leg`'s dialog.
    pub(super) fn dialog_response(
        &mut self,
        id: CallId,
        leg: LegRef,
        req: &Request,
        code: u16,
        phrase: &str,
    ) -> Response {
        let mut resp = crate::sip::response_to(req, code, phrase);
        self.finish_response(&mut resp);
        if let Some(d) = self.leg_dialog(id, leg) {
            d.fill_response(req, &mut resp);
            d.handle_sent_response(&resp);
        }
        resp
    }

    /// Refuses `req`, received in `leg`'s dialog on server transaction `key`.
    pub(super) fn dialog_reject(
        &mut self,
        id: CallId,
        leg: LegRef,
        key: &TransactionKey,
        req: &Request,
        rej: Reject,
    ) {
        let mut resp = self.dialog_response(id, leg, req, rej.status(), rej.phrase());
        rej.add_headers(&mut resp.headers);
        self.send_response(key, resp);
    }

    /// Sends `req` (received on `from_leg`) across to the other leg.
    fn relay(
        &mut self,
        now: Instant,
        id: CallId,
        from_leg: LegRef,
        key: TransactionKey,
        req: Request,
    ) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let to_leg = match (from_leg, call.winner) {
            (LegRef::A, Some(w)) => LegRef::B(w),
            (LegRef::B(_), _) if call.a.dialog.is_some() => LegRef::A,
            _ => return self.dialog_reject(id, from_leg, &key, &req, Reject::NoSuchDialog),
        };
        let (transport, advertised) = match to_leg {
            LegRef::A => (call.a.peer.transport, call.a.advertised.clone()),
            LegRef::B(i) => (call.b[i].peer.transport, call.b[i].advertised.clone()),
        };
        let Some(peer) = self.peer_of(id, to_leg) else {
            return;
        };
        let via = ViaSpec::new(transport, advertised, self.our_branch());
        let session = self.cfg.calls.session;
        let ua = self.cfg.user_agent.clone();
        let timer = self.calls.get(id).and_then(|c| match to_leg {
            LegRef::A => c.a.session_timer,
            LegRef::B(i) => c.b[i].session_timer,
        });
        let built = match self.leg_dialog(id, to_leg) {
            Some(d) => d.new_request(req.method.clone(), &via),
            None => Err(crate::dialog::DialogError::Terminated),
        };
        let mut out = match built {
            Ok(r) => r,
            Err(crate::dialog::DialogError::InviteInProgress) => {
                // Our own INVITE is pending on the other leg: glare (§14.1).
                return self.dialog_reject(id, from_leg, &key, &req, Reject::RequestPending);
            }
            Err(_) => return self.dialog_reject(id, from_leg, &key, &req, Reject::NoSuchDialog),
        };
        out.headers.extend(carried_request_headers(&req));
        if matches!(req.method, Method::Invite | Method::Update) {
            if let Some(t) = timer {
                t.write_refresh_headers(&mut out.headers, &session);
            }
        }
        super::respond::push_user_agent(&mut out.headers, HeaderName::UserAgent, &ua);
        out.body = self.anchor(now, id, from_leg, &req.headers, &req.body);
        // A send the transaction layer refuses comes back as a 503 for this relay
        // (`on_client_failure`), which answers the original with 503.
        match self.send_request(out, peer) {
            Some(ckey) => self.calls.add_relay(
                ckey,
                Relay {
                    call: id,
                    server_key: key,
                    original: req,
                    from_leg,
                    to_leg,
                },
            ),
            None => self.dialog_reject(id, from_leg, &key, &req, Reject::Unavailable),
        }
    }

    /// The final (or provisional) answer to a relayed request, carried back.
    pub(super) fn on_relay_response(&mut self, now: Instant, key: &TransactionKey, resp: Response) {
        if resp.status < 200 {
            return;
        }
        let Some(relay) = self.calls.take_relay(key) else {
            return;
        };
        let (id, from_leg, to_leg) = (relay.call, relay.from_leg, relay.to_leg);
        let _span = self.enter(id);
        let is_invite = relay.original.method == Method::Invite;
        // Keep the answered leg's dialog in step.
        if let Some(d) = self.leg_dialog(id, to_leg) {
            if let Err(e) = d.handle_response(&resp) {
                tracing::debug!(target: "ferroswitch::call", call = id, leg = ?to_leg, %e, "relayed response not taken by the dialog");
            }
        }
        let phrase = super::events::phrase_of(&resp);
        let mut out = self.dialog_response(id, from_leg, &relay.original, resp.status, &phrase);
        for name in CARRIED {
            if name == &HeaderName::Event {
                continue;
            }
            for h in resp.headers.get_all(name) {
                if let Some(v) = clean_value(&h.value) {
                    out.headers.push(name.clone(), v);
                }
            }
        }
        out.body = self.anchor(now, id, to_leg, &resp.headers, &resp.body);
        let timer = self.calls.get(id).and_then(|c| match from_leg {
            LegRef::A => c.a.session_timer,
            LegRef::B(i) => c.b[i].session_timer,
        });
        if (200..300).contains(&resp.status)
            && matches!(relay.original.method, Method::Invite | Method::Update)
        {
            if let Some(t) = timer {
                t.write_response_headers(&mut out.headers, &self.cfg.calls.session);
            }
            // A successful refresh restarts the session timers of both legs (RFC 4028 §10).
            self.arm_session_timers(now, id);
        }
        if is_invite && (200..300).contains(&resp.status) {
            // ACK it (or wait for the answer), and resend ours until its ACK.
            self.reinvite_answered(now, &relay, &resp, &out);
        }
        self.send_response(&relay.server_key, out);
    }

    /// An ACK the transaction layer passed up (for a 2xx): the caller's ACK of our answer,
    /// or either leg's ACK of a relayed re-INVITE's answer.
    pub(super) fn on_ack(&mut self, now: Instant, invite: Option<TransactionKey>, ack: &Request) {
        let found = match invite.and_then(|k| self.calls.by_a_invite(&k)) {
            Some(id) => Some((id, LegRef::A)),
            None => DialogKey::for_received_request(ack)
                .ok()
                .and_then(|k| self.calls.by_dialog(&k)),
        };
        let Some((id, leg)) = found else {
            return;
        };
        if leg == LegRef::A {
            self.on_a_ack(now, id, ack);
        }
        self.on_reinvite_ack(now, id, leg, ack);
    }

    /// A 2xx to an INVITE of ours that no call owns any more (a fork that answered after the
    /// call ended): ACK it and hang it up so the callee's phone stops (§13.2.2.4).
    pub(super) fn orphan_2xx(
        &mut self,
        original: Option<Request>,
        resp: &Response,
        dest: Option<crate::net::Peer>,
        hang_up: bool,
    ) {
        let Some(invite) = original else {
            return;
        };
        let Ok(mut d) = crate::dialog::Dialog::from_uac(&invite, resp) else {
            return;
        };
        // Where the INVITE went (the callee's NAT path), else its Contact.
        let Some(peer) = dest.or_else(|| d.next_hop().ok().and_then(|h| h.peer())) else {
            return;
        };
        let sent_by = invite
            .headers
            .top_via()
            .map(|v| v.sent_by())
            .unwrap_or_default();
        let via = ViaSpec::new(peer.transport, sent_by.clone(), self.our_branch());
        if let Ok(ack) = d.ack(resp.headers.cseq().map_or(1, |c| c.seq), &via) {
            self.out.push_back(Command::Transmit {
                to: peer,
                bytes: ack.to_bytes(),
            });
        }
        if !hang_up {
            return;
        }
        let via = ViaSpec::new(peer.transport, sent_by, self.our_branch());
        if let Ok(mut bye) = d.new_request(Method::Bye, &via) {
            bye.headers.push(
                HeaderName::Reason,
                HangupCause::NormalClearing.reason_header(),
            );
            self.out.extend(request_command(bye, peer));
        }
    }
}
