//! What arrives, before any transaction: the security guard's verdict (bans, floods,
//! scanners), malformed messages (a stateless 400 when the head still reads as a request),
//! RFC 3261 §8.2 validation, the stateless REGISTER challenge and the stateless admission of
//! new INVITEs and MESSAGEs (one datagram in, at most one out), the full-table 503, and then
//! the hand-over to the transaction layer with what was learnt (`Handled`).

use super::{Engine, Handled};
use crate::net::{
    route_response, stamp_received, Inbound, Origin, Payload, Peer, ResponseRoute, RouteError,
    Transport,
};
use crate::sip::validate::{validate_request, Policy};
use crate::sip::{
    make_echo_safe, parse, response_to_bad, set_to_tag, HeaderName, Message, Method, Request,
};
use std::time::{Instant, SystemTime};

impl Engine {
    pub fn handle_inbound(&mut self, now: Instant, wall: SystemTime, inbound: Inbound) {
        let origin = inbound.origin;
        // Banned sources, floods and scanners are dropped before anything else, silently.
        let src = origin.source.ip();
        let ua = match &inbound.payload {
            Payload::Message(Message::Request(r)) => r.headers.get_str(&HeaderName::UserAgent),
            // Responses are not dropped for a ban (issue 17.11): they only matter to a
            // transaction we created, and the transaction layer drops the rest. Dropping
            // them let spoofed failures silence a banned callee's 180/200.
            Payload::Message(Message::Response(_)) => None,
            Payload::Malformed { .. } => None,
        };
        let is_request = !matches!(&inbound.payload, Payload::Message(Message::Response(_)));
        if is_request {
            // A TCP connection that has authenticated keeps working when its address is
            // banned (issue 17.11): spoofed UDP failures must not cut off a phone's
            // established connection. Floods and scanners on it are still dropped.
            let authenticated_connection = origin
                .connection
                .is_some_and(|c| self.trusted_conns.contains(&c));
            match self.guard.check_request(now, src, ua) {
                crate::security::Verdict::Drop(crate::security::DropReason::Banned)
                    if authenticated_connection => {}
                crate::security::Verdict::Drop(_) => {
                    self.stats.dropped += 1;
                    return;
                }
                crate::security::Verdict::Allow => {}
            }
        }
        self.trace.tick(now, wall);
        if let Payload::Message(m) = &inbound.payload {
            self.trace_inbound(now, wall, &origin, m, &inbound.raw);
        }
        match inbound.payload {
            Payload::Malformed { raw, error } => self.handle_malformed(&origin, &raw, &error),
            Payload::Message(Message::Request(req)) => {
                self.stats.requests += 1;
                self.stats.traffic.request(&req.method);
                self.handle_request(now, wall, origin, req);
            }
            Payload::Message(Message::Response(resp)) => {
                self.stats.responses += 1;
                if let Err(e) = self.txl.handle_response(now, resp, origin.peer()) {
                    tracing::debug!(target: "ferroswitch::engine", e = %crate::security::log_escape(&e), "response dropped");
                }
                self.drain_events(now, wall, None);
            }
        }
        self.check_drain(now, wall);
    }

    fn handle_malformed(&mut self, origin: &Origin, raw: &bytes::Bytes, error: &parse::ParseError) {
        // Answer 400 when the headers still read as a request we can address, even if its
        // start line or Content-Length is what broke (RFC 4475 §3.1.2.3, §3.1.2.7); drop the
        // rest (responses, garbage) silently as RFC 3261 §18.3 allows.
        if let Some(mut req) = parse::request_head_for_reply(raw) {
            if req.method != Method::Ack && req.headers.core().is_ok() && make_echo_safe(&mut req) {
                // The transport stamps only requests that parsed; without received/rport
                // this 400 would go to the sent-by address, unreachable behind NAT.
                let _ = stamp_received(&mut req.headers, origin.source);
                if let Some(to) = response_peer(&req, origin) {
                    let mut resp = response_to_bad(&req, 400, error.reason_phrase());
                    set_to_tag(&mut resp, &self.stateless_tag(&req));
                    self.finish_response(&mut resp);
                    self.send_stateless(to, &resp);
                    self.stats.malformed_answered += 1;
                    return;
                }
            }
        }
        self.stats.malformed_dropped += 1;
        tracing::debug!(target: "ferroswitch::engine", source = %origin.source, error = %crate::security::log_escape(error), "malformed message dropped");
    }

    fn handle_request(&mut self, now: Instant, wall: SystemTime, origin: Origin, mut req: Request) {
        let policy = Policy {
            // `Require: path` (RFC 3327 §5.2) is only meaningful on a REGISTER.
            supported: if req.method == Method::Register {
                super::register::REGISTER_SUPPORTED_TAGS
            } else {
                crate::b2bua::SUPPORTED_TAGS
            },
            proxy: false,
            accepted_bodies: None,
        };
        // A control octet in what an answer copies (a bare CR in From would inject a header
        // for parsers that end lines at CR): nothing safe can be said, drop it (§18.3); in a
        // display name it only costs the display name.
        if !make_echo_safe(&mut req) {
            self.stats.malformed_dropped += 1;
            tracing::debug!(target: "ferroswitch::engine", source = %origin.source, "request with control octets in Via/From/To/Call-ID/CSeq dropped");
            return;
        }
        if let Err(rej) = validate_request(&req, &policy) {
            self.stats.rejected += 1;
            // An ACK is never answered (RFC 3261 §17.2.1 / §12.2.2); nor a request whose
            // Via leads nowhere (port 0, §18.2.2).
            if let (true, Some(to)) = (req.method != Method::Ack, response_peer(&req, &origin)) {
                let tag = self.stateless_tag(&req);
                let mut resp = rej.response_to(&req, &policy, Some(&tag));
                self.finish_response(&mut resp);
                self.send_stateless(to, &resp);
            }
            return;
        }
        let Some(dest) = response_peer(&req, &origin) else {
            self.stats.malformed_dropped += 1;
            return;
        };
        self.current = Some(origin);
        // A REGISTER without credentials is challenged statelessly, as Kamailio's registrar
        // does: no transaction lingers for Timer J, and a lost 401 is recovered by the
        // phone's retransmission, which simply gets a fresh challenge.
        if req.method == Method::Register && req.headers.get(&HeaderName::Authorization).is_none() {
            let mut resp = self.handle_register(now, wall, &req, dest);
            self.use_stateless_tag(&req, &mut resp);
            self.send_stateless(dest, &resp);
            self.current = None;
            return;
        }
        // A new INVITE or MESSAGE is admitted (or refused: 407, 403, 483 …) statelessly too:
        // one datagram in, at most one out, so a spoofed source cannot use us as a
        // reflector (admit.rs).
        let admitted = match self.admit_statelessly(now, wall, &req, dest) {
            Ok(a) => a,
            Err(()) => {
                self.current = None;
                return;
            }
        };
        // A full table answers 503 statelessly (the request is still ours to answer).
        if self.txl.len() >= self.cfg.transactions.max_transactions && req.method != Method::Ack {
            let mut resp = crate::sip::response_to(&req, 503, "Service Unavailable");
            set_to_tag(&mut resp, &self.stateless_tag(&req));
            resp.headers.push(HeaderName::RetryAfter, "5");
            self.finish_response(&mut resp);
            self.send_stateless(dest, &resp);
            self.current = None;
            return;
        }
        if let Err(e) = self.txl.handle_request(now, req, dest) {
            tracing::debug!(target: "ferroswitch::engine", e = %crate::security::log_escape(&e), "request not taken by the transaction layer");
        }
        self.drain_events(now, wall, Some(Handled { origin, admitted }));
        self.current = None;
    }
}

/// Where responses to `req` go: its connection for TCP, RFC 3261 §18.2.2 / RFC 3581 for UDP.
/// A UDP Via that cannot be read is answered at the packet's source; `None` when the Via
/// leads to port 0 (no rport to go by): nowhere to answer (§18.2.2), the request is dropped.
fn response_peer(req: &Request, origin: &Origin) -> Option<Peer> {
    if origin.transport == Transport::Udp {
        match req.headers.top_via().map(|v| route_response(&v, origin)) {
            Some(Ok(ResponseRoute {
                addr: Some(addr), ..
            })) => return Some(Peer::new(Transport::Udp, addr)),
            Some(Err(RouteError::PortZero)) => return None,
            _ => {}
        }
    }
    Some(origin.peer())
}
