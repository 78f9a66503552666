//! One dialog's state (RFC 3261 §12.1): how it is created on each side, and how the
//! responses to the INVITE and to later requests move it from Early to Confirmed to
//! Terminated (§12.1.2, §12.2.1.2, §13.2.2.4, §15).
//!
//! The state is plain data: role, tags, local and remote URI, remote target, route set,
//! CSeq numbers, the secure flag, our Contact, and the INVITE transactions in progress
//! either way (for §14.1 glare). Building requests is in `build`, receiving them in
//! `inbound`. Nothing here reads a clock or does I/O, and nothing panics on a peer's message.

use super::error::DialogError;
use super::key::DialogKey;
use super::packed::PackedAddr;
use super::session_timer::SessionTimer;
use crate::sip::{
    set_to_tag, Contact, HeaderError, HeaderName, Headers, Method, NameAddr, Request, Response,
    Scheme, Uri,
};
use std::time::Duration;

/// Which side of the dialog-creating INVITE we were on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogRole {
    /// We sent the INVITE (the b-leg of a call).
    Uac,
    /// We received the INVITE (the a-leg).
    Uas,
}

/// §12: a dialog is created early (by a 1xx with a To tag), confirmed by a 2xx, and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogState {
    Early,
    Confirmed,
    Terminated,
}

/// What a response did to the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseEffect {
    /// The remote target was replaced from the response's Contact.
    pub target_refreshed: bool,
    pub state: DialogState,
}

/// The state of one dialog; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub(super) key: DialogKey,
    pub(super) role: DialogRole,
    pub(super) state: DialogState,
    /// From (UAC) or To (UAS) of the creating request, tag included.
    pub(super) local_uri: PackedAddr,
    pub(super) remote_uri: PackedAddr,
    pub(super) remote_target: Uri,
    /// In the order Route headers are written: first hop first.
    pub(super) route_set: Vec<NameAddr>,
    /// The last CSeq number we used; `None` is §12.1.1's "empty" (a UAS has sent nothing).
    pub(super) local_seq: Option<u32>,
    /// The last CSeq number the peer used; `None` until it sends a request.
    pub(super) remote_seq: Option<u32>,
    pub(super) secure: bool,
    pub(super) local_contact: PackedAddr,
    /// CSeq of the last INVITE we sent: what the ACK for its 2xx carries (§13.2.2.4).
    pub(super) last_sent_invite: Option<u32>,
    /// CSeq of the last INVITE we received: what its ACK must carry.
    pub(super) last_received_invite: Option<u32>,
    /// Our INVITE awaiting its final response.
    pub(super) pending_out_invite: Option<u32>,
    /// The peer's INVITE we have not answered finally yet.
    pub(super) pending_in_invite: Option<u32>,
    pub(super) session_timer: Option<SessionTimer>,
}

impl Dialog {
    /// The UAS side (§12.1.1), from a received INVITE (or other dialog-creating request)
    /// and the tag we put in our 1xx/2xx. The dialog starts Early; the 2xx we send confirms
    /// it (`handle_sent_response`). The route set is the request's Record-Route as is; the
    /// remote target its Contact.
    pub fn from_uas(
        invite: &Request,
        local_tag: &str,
        local_contact: NameAddr,
    ) -> Result<Dialog, DialogError> {
        let core = invite.headers.core()?;
        if core.to.tag().is_some() {
            return Err(DialogError::AlreadyInDialog);
        }
        let remote_target = first_contact(&invite.headers)?.ok_or(DialogError::NoContact)?;
        let route_set = invite.headers.record_routes()?;
        let mut local_uri = core.to;
        local_uri.params.set("tag", Some(local_tag.to_string()));
        let remote_tag = core.from.tag().unwrap_or_default().to_string();
        let seq = core.cseq.seq;
        let is_invite = core.cseq.method == Method::Invite;
        Ok(Dialog {
            key: DialogKey::new(core.call_id, local_tag, remote_tag),
            role: DialogRole::Uas,
            state: DialogState::Early,
            local_uri: PackedAddr::new(&local_uri),
            remote_uri: PackedAddr::new(&core.from),
            remote_target,
            route_set,
            local_seq: None,
            remote_seq: Some(seq),
            secure: is_sips(invite),
            local_contact: PackedAddr::new(&local_contact),
            last_sent_invite: None,
            last_received_invite: is_invite.then_some(seq),
            pending_out_invite: None,
            pending_in_invite: is_invite.then_some(seq),
            session_timer: None,
        })
    }

    /// The UAC side (§12.1.2), from the INVITE we sent and a received 1xx with a To tag
    /// (Early) or 2xx (Confirmed). The route set is the response's Record-Route reversed; the
    /// remote target its Contact (the INVITE's Request-URI when a broken peer sent none).
    pub fn from_uac(invite: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let req = invite.headers.core()?;
        let resp = response.headers.core()?;
        let status = response.status;
        let remote_tag = resp.to.tag().map(str::to_string);
        let creates = match status {
            101..=199 => remote_tag.is_some(),
            200..=299 => true,
            _ => false,
        };
        if !creates {
            return Err(DialogError::NotDialogCreating(status));
        }
        let local_tag = req.from.tag().ok_or(DialogError::Mismatch)?.to_string();
        if resp.call_id != req.call_id
            || resp.from.tag() != Some(local_tag.as_str())
            || resp.cseq != req.cseq
        {
            return Err(DialogError::Mismatch);
        }
        let mut route_set = response.headers.record_routes()?;
        route_set.reverse();
        let remote_target = match first_contact(&response.headers)? {
            Some(uri) => uri,
            None => invite.request_uri().map_err(|_| {
                DialogError::Unroutable(String::from_utf8_lossy(&invite.uri).into())
            })?,
        };
        let local_contact = invite
            .headers
            .contacts()?
            .into_iter()
            .find_map(|c| match c {
                Contact::Address(a) => Some(a),
                Contact::Wildcard => None,
            })
            .ok_or(DialogError::NoContact)?;
        let seq = req.cseq.seq;
        let early = status < 200;
        Ok(Dialog {
            key: DialogKey::new(req.call_id, local_tag, remote_tag.unwrap_or_default()),
            role: DialogRole::Uac,
            state: if early {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_uri: PackedAddr::new(&req.from),
            remote_uri: PackedAddr::new(&resp.to),
            remote_target,
            route_set,
            local_seq: Some(seq),
            remote_seq: None,
            secure: is_sips(invite),
            local_contact: PackedAddr::new(&local_contact),
            last_sent_invite: Some(seq),
            last_received_invite: None,
            pending_out_invite: early.then_some(seq),
            pending_in_invite: None,
            session_timer: None,
        })
    }

    /// A response to a request we sent in this dialog (the INVITE that created it, or a
    /// later one). 2xx to our INVITE confirms an early dialog and recomputes its route set
    /// (§13.2.2.4); 2xx to a target refresh replaces the remote target (§12.2.1.2); a
    /// non-2xx final ends an early dialog; 481 and 408 end any (§12.2.1.2); a final
    /// response to BYE ends it (§15.1.1).
    pub fn handle_response(&mut self, resp: &Response) -> Result<ResponseEffect, DialogError> {
        let cseq = resp.headers.cseq().ok_or(HeaderError::Malformed(
            HeaderName::CSeq,
            "missing or malformed",
        ))?;
        let mut effect = ResponseEffect {
            target_refreshed: false,
            state: self.state,
        };
        if self.state == DialogState::Terminated {
            return Ok(effect);
        }
        let status = resp.status;
        let success = (200..300).contains(&status);
        match cseq.method {
            // A 2xx retransmitted for an older INVITE changes nothing (it is only re-ACKed).
            Method::Invite if self.last_sent_invite == Some(cseq.seq) => {
                if status < 200 {
                    if status > 100 && self.state == DialogState::Early {
                        effect.target_refreshed = self.refresh_target(&resp.headers)?;
                    }
                } else {
                    if self.pending_out_invite == Some(cseq.seq) {
                        self.pending_out_invite = None;
                    }
                    if success {
                        if self.state == DialogState::Early && self.role == DialogRole::Uac {
                            let mut routes = resp.headers.record_routes()?;
                            routes.reverse();
                            self.route_set = routes;
                            self.state = DialogState::Confirmed;
                        }
                        effect.target_refreshed = self.refresh_target(&resp.headers)?;
                    } else if self.state == DialogState::Early {
                        self.state = DialogState::Terminated;
                    }
                }
            }
            ref m if success && is_target_refresh(m) && *m != Method::Invite => {
                effect.target_refreshed = self.refresh_target(&resp.headers)?;
            }
            Method::Bye if status >= 200 => self.state = DialogState::Terminated,
            _ => {}
        }
        if status == 481 || status == 408 {
            self.state = DialogState::Terminated;
        }
        effect.state = self.state;
        Ok(effect)
    }

    /// A request we sent in this dialog got no response (timeout or transport error): the
    /// same as a 408 (§12.2.1.2, §8.1.3.1), so the dialog ends.
    pub fn handle_request_failure(&mut self, method: &Method) -> DialogState {
        if *method == Method::Invite {
            self.pending_out_invite = None;
        }
        self.state = DialogState::Terminated;
        self.state
    }

    /// A response we send to a request received in this dialog. The final response to the
    /// peer's INVITE ends its transaction for §14.1; our 2xx confirms an early dialog; a
    /// non-2xx final to the creating INVITE ends it.
    pub fn handle_sent_response(&mut self, resp: &Response) -> DialogState {
        let Some(cseq) = resp.headers.cseq() else {
            return self.state;
        };
        if cseq.method == Method::Invite
            && resp.status >= 200
            && self.pending_in_invite == Some(cseq.seq)
        {
            self.pending_in_invite = None;
            if self.state == DialogState::Early {
                self.state = if resp.status < 300 {
                    DialogState::Confirmed
                } else {
                    DialogState::Terminated
                };
            }
        }
        self.state
    }

    /// Makes our response to `req` (a request received in this dialog, or the one creating
    /// it) a dialog response: our tag in To (not on a 100, §8.2.6.2), and on 101–299 the
    /// request's Record-Route copied in order (§12.1.1) and, for target refresh requests,
    /// our Contact (§12.1.1, §13.3.1; RFC 3428 keeps it out of MESSAGE), unless the caller
    /// already set them.
    pub fn fill_response(&self, req: &Request, resp: &mut Response) {
        if resp.status != 100 {
            set_to_tag(resp, &self.key.local_tag);
        }
        if !(101..300).contains(&resp.status) {
            return;
        }
        if resp.headers.get(&HeaderName::RecordRoute).is_none() {
            for h in req.headers.get_all(&HeaderName::RecordRoute) {
                resp.headers.push_header(h.clone());
            }
        }
        if resp.headers.get(&HeaderName::Contact).is_none() && is_target_refresh(&req.method) {
            resp.headers
                .push(HeaderName::Contact, self.local_contact.to_bytes());
        }
    }

    /// Replaces the remote target with the first Contact address, if any; true when it
    /// changed.
    pub(super) fn refresh_target(&mut self, h: &Headers) -> Result<bool, DialogError> {
        match first_contact(h)? {
            Some(uri) if uri != self.remote_target => {
                self.remote_target = uri;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// §14.1: how long to wait before retrying a re-INVITE that got 491. The owner of the
    /// Call-ID (the UAC of the dialog) waits 2.1–4 s, the other side 0–2 s, both in 10 ms
    /// steps; `random` is any random number from the caller.
    pub fn glare_retry_delay(&self, random: u32) -> Duration {
        let steps = match self.role {
            DialogRole::Uac => 210 + random % 191,
            DialogRole::Uas => random % 201,
        };
        Duration::from_millis(u64::from(steps) * 10)
    }

    /// Ends the dialog (after a BYE, or when the layer above gives up on it).
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    pub fn key(&self) -> &DialogKey {
        &self.key
    }
    pub fn role(&self) -> DialogRole {
        self.role
    }
    pub fn state(&self) -> DialogState {
        self.state
    }
    pub fn call_id(&self) -> &str {
        &self.key.call_id
    }
    pub fn local_tag(&self) -> &str {
        &self.key.local_tag
    }
    pub fn remote_tag(&self) -> &str {
        &self.key.remote_tag
    }
    /// From (UAC) or To (UAS) of the creating request, parsed again from what is kept.
    pub fn local_uri(&self) -> NameAddr {
        self.local_uri.name_addr()
    }
    pub fn remote_uri(&self) -> NameAddr {
        self.remote_uri.name_addr()
    }
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }
    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }
    /// The last CSeq number we sent; `None` while empty (§12.1.1).
    pub fn local_cseq(&self) -> Option<u32> {
        self.local_seq
    }
    /// The CSeq number our next new request will carry (§12.2.1.1: empty starts at 1).
    pub fn next_local_cseq(&self) -> Option<u32> {
        match self.local_seq {
            None => Some(1),
            Some(n) => n.checked_add(1),
        }
    }
    /// The last CSeq number the peer sent; `None` while empty.
    pub fn remote_cseq(&self) -> Option<u32> {
        self.remote_seq
    }
    pub fn secure(&self) -> bool {
        self.secure
    }
    /// Our Contact, parsed again from what is kept.
    pub fn local_contact(&self) -> NameAddr {
        self.local_contact.name_addr()
    }
    /// Our Contact as written in our messages.
    pub fn local_contact_bytes(&self) -> Vec<u8> {
        self.local_contact.to_bytes()
    }
    /// CSeq of our INVITE still waiting for its final response.
    pub fn pending_outgoing_invite(&self) -> Option<u32> {
        self.pending_out_invite
    }
    /// CSeq of the peer's INVITE we have not answered finally.
    pub fn pending_incoming_invite(&self) -> Option<u32> {
        self.pending_in_invite
    }
    /// CSeq of the last INVITE we sent (what the ACK for its 2xx carries).
    pub fn last_sent_invite(&self) -> Option<u32> {
        self.last_sent_invite
    }
    pub fn session_timer(&self) -> Option<&SessionTimer> {
        self.session_timer.as_ref()
    }
    /// Records the session timer negotiated for this leg (RFC 4028), or clears it.
    pub fn set_session_timer(&mut self, timer: Option<SessionTimer>) {
        self.session_timer = timer;
    }
}

/// Target refresh requests: INVITE (§12.2), UPDATE (RFC 3311), SUBSCRIBE and NOTIFY
/// (RFC 6665 §4.1).
pub fn is_target_refresh(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify
    )
}

/// The URI of the first Contact address, if any.
pub(super) fn first_contact(h: &Headers) -> Result<Option<Uri>, DialogError> {
    Ok(h.contacts()?.into_iter().find_map(|c| match c {
        Contact::Address(a) => Some(a.uri),
        Contact::Wildcard => None,
    }))
}

/// §12.1.1/§12.1.2: the secure flag follows a sips: Request-URI (whose next hop
/// `NextHop::from_uri` only reaches over TLS).
fn is_sips(req: &Request) -> bool {
    req.request_uri().is_ok_and(|u| *u.scheme() == Scheme::Sips)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
