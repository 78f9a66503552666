//! Building requests inside a dialog (RFC 3261 §12.2.1.1): Request-URI and Route from the
//! remote target and route set (loose routing, or strict routing when the first route has
//! no `lr`), From/To with the dialog's tags, its Call-ID, the next local CSeq (the INVITE's
//! number for an ACK, §13.2.2.4), Max-Forwards 70, our Contact.
//!
//! The caller says where the Via points (`ViaSpec`) and adds bodies, credentials and other
//! headers afterwards. Building never reads a clock; it fails with a typed error, never a
//! panic, when the dialog cannot send the request now (§14.1, §15).

use super::error::DialogError;
use super::state::{Dialog, DialogRole, DialogState};
use crate::net::Transport;
use crate::sip::{HeaderName, Method, NameAddr, Request, Uri};

/// Our Via for a request: transport, `host[:port]`, and the branch (a fresh one is minted
/// when `None`; an ACK for a 2xx and every new request need a new branch, §13.2.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaSpec {
    pub transport: Transport,
    pub sent_by: String,
    /// Always given (RFC 3261 §8.1.1.7: unique per transaction, from the caller's own RNG,
    /// so a seeded engine stays deterministic).
    pub branch: String,
}

impl ViaSpec {
    pub fn new(
        transport: Transport,
        sent_by: impl Into<String>,
        branch: impl Into<String>,
    ) -> ViaSpec {
        ViaSpec {
            transport,
            sent_by: sent_by.into(),
            branch: branch.into(),
        }
    }

    /// The Via value; `;rport` on UDP so NATed peers answer where we sent from (RFC 3581).
    pub fn to_value(&self) -> String {
        let branch = &self.branch;
        let rport = if self.transport == Transport::Udp {
            ";rport"
        } else {
            ""
        };
        format!(
            "SIP/2.0/{} {}{rport};branch={branch}",
            self.transport, self.sent_by
        )
    }
}

impl Dialog {
    /// A new request in this dialog. INVITE, UPDATE, BYE, INFO, MESSAGE, OPTIONS, REFER …
    /// take the next local CSeq; ACK takes the number of our last INVITE (use `ack` to name
    /// another). An INVITE is refused while an INVITE transaction is in progress either way
    /// (§14.1) and is then pending until its final response; a BYE ends the dialog at once
    /// (§15.1.1: the session is over once the BYE is passed down).
    pub fn new_request(&mut self, method: Method, via: &ViaSpec) -> Result<Request, DialogError> {
        // A 2xx is ACKed even when the dialog is over (a losing fork's 2xx is ACKed, then
        // BYEd: §13.2.2.4).
        if method == Method::Ack {
            let seq = self.last_sent_invite.ok_or(DialogError::NoInviteToAck)?;
            return self.ack(seq, via);
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        match method {
            Method::Cancel => return Err(DialogError::CancelNotFromDialog),
            Method::Invite => {
                if self.pending_out_invite.is_some() || self.pending_in_invite.is_some() {
                    return Err(DialogError::InviteInProgress);
                }
                if self.state == DialogState::Early {
                    return Err(DialogError::NotAllowedNow("re-INVITE in an early dialog"));
                }
            }
            // §15: "the callee's UA MUST NOT send a BYE on an early dialog".
            Method::Bye if self.state == DialogState::Early && self.role == DialogRole::Uas => {
                return Err(DialogError::NotAllowedNow(
                    "BYE from the callee while early",
                ));
            }
            _ => {}
        }
        let seq = self.next_local_cseq().ok_or(DialogError::CSeqExhausted)?;
        let req = self.build(method.clone(), seq, via);
        self.local_seq = Some(seq);
        match method {
            Method::Invite => {
                self.last_sent_invite = Some(seq);
                self.pending_out_invite = Some(seq);
            }
            Method::Bye => self.state = DialogState::Terminated,
            _ => {}
        }
        Ok(req)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `invite_seq` (§13.2.2.4): built like any
    /// request in the dialog, route set included, with a new branch, the INVITE's CSeq
    /// number and method ACK. The caller copies the INVITE's credentials and adds the SDP
    /// answer when the offer came in the 2xx.
    pub fn ack(&self, invite_seq: u32, via: &ViaSpec) -> Result<Request, DialogError> {
        if self.last_sent_invite.is_none() {
            return Err(DialogError::NoInviteToAck);
        }
        Ok(self.build(Method::Ack, invite_seq, via))
    }

    fn build(&self, method: Method, seq: u32, via: &ViaSpec) -> Request {
        let (request_uri, routes) = self.request_target();
        let mut req = Request::new(method.clone(), request_uri.as_str().to_string());
        let h = &mut req.headers;
        h.push(HeaderName::Via, via.to_value());
        h.push(HeaderName::MaxForwards, "70");
        for r in routes {
            h.push(HeaderName::Route, r);
        }
        h.push(
            HeaderName::From,
            self.local_uri.with_tag(&self.key.local_tag),
        );
        h.push(
            HeaderName::To,
            self.remote_uri.with_tag(&self.key.remote_tag),
        );
        h.push(HeaderName::CallId, self.key.call_id.to_string());
        h.push(HeaderName::CSeq, format!("{seq} {method}"));
        // RFC 3428: MESSAGE carries no Contact; CANCEL is never built here.
        if method != Method::Message {
            h.push(HeaderName::Contact, self.local_contact.to_bytes());
        }
        req
    }

    /// The Request-URI and Route values for the next request (§12.2.1.1). Loose routing
    /// (empty route set, or `lr` on the first route): Request-URI = remote target, Route =
    /// route set. Strict routing: Request-URI = first route (stripped of what a
    /// Request-URI may not hold), Route = the rest, then the remote target.
    pub fn request_target(&self) -> (Uri, Vec<Vec<u8>>) {
        match self.route_set.first() {
            Some(first) if !first.uri.has_param("lr") => {
                let uri = request_uri_form(&first.uri);
                let mut routes: Vec<Vec<u8>> =
                    self.route_set[1..].iter().map(NameAddr::to_bytes).collect();
                routes.push(NameAddr::new(self.remote_target.clone()).to_bytes());
                (uri, routes)
            }
            _ => (
                self.remote_target.clone(),
                self.route_set.iter().map(NameAddr::to_bytes).collect(),
            ),
        }
    }

    /// True when the next hop is a strict router (its route has no `lr`).
    pub fn strict_routing(&self) -> bool {
        self.route_set
            .first()
            .is_some_and(|r| !r.uri.has_param("lr"))
    }
}

/// A URI made fit for a Request-URI (§19.1.1 table): no `method` parameter, no headers.
/// Everything else is kept as written.
fn request_uri_form(uri: &Uri) -> Uri {
    if !uri.has_param("method") && uri.headers().is_none() {
        return uri.clone();
    }
    let text = uri.as_str();
    let no_headers = text.split_once('?').map_or(text, |(t, _)| t);
    // The parameters start at the first ';' after the host; user parts may hold ';' too,
    // so cut after the last '@'.
    let host_at = no_headers.rfind('@').map_or(0, |i| i + 1);
    let (base, _) = no_headers.split_at(
        no_headers[host_at..]
            .find(';')
            .map_or(no_headers.len(), |i| host_at + i),
    );
    let mut s = base.to_string();
    for (k, v) in uri
        .params()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("method"))
    {
        s.push(';');
        s.push_str(k);
        if let Some(v) = v {
            s.push('=');
            s.push_str(v);
        }
    }
    // Parsing a URI we cut from a parsed one cannot fail; keep the original if it does.
    Uri::parse(&s).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
