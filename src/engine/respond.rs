//! Building the engine's own responses: RFC 3261 §8.2.6 copying, a To tag, and the headers
//! every response of ours carries (Server, Allow/Supported where they inform the peer).

use super::Engine;
use crate::dialog::ids::new_tag_with;
use crate::sip::{response_to, set_to_tag, HeaderName, Headers, Request, Response};

/// Adds `Server:` or `User-Agent:` with `value` (`[server] user_agent`), unless it is empty:
/// an operator who wants to disclose nothing gets no header at all.
pub(super) fn push_user_agent(headers: &mut Headers, name: HeaderName, value: &str) {
    if !value.is_empty() {
        headers.push(name, value.to_string());
    }
}

/// Methods we accept (the Allow header of OPTIONS, 405 and 501 answers).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, MESSAGE";
/// Option tags we implement.
pub const SUPPORTED: &str = "timer";
/// The option tags a `Require` may name without getting 420.
pub const SUPPORTED_TAGS: &[&str] = &["timer"];
/// Body types we understand.
pub const ACCEPT: &str = "application/sdp";

impl Engine {
    /// A response to `req` with a To tag (except 100, §8.2.6.2) and our Server header.
    pub(super) fn response(&mut self, req: &Request, code: u16, phrase: &str) -> Response {
        let mut resp = response_to(req, code, phrase);
        if code > 100 {
            let tag = new_tag_with(&mut self.rng);
            set_to_tag(&mut resp, &tag);
        }
        self.finish_response(&mut resp);
        resp
    }

    pub(super) fn finish_response(&self, resp: &mut Response) {
        push_user_agent(&mut resp.headers, HeaderName::Server, &self.cfg.user_agent);
    }

    /// OPTIONS to the server: 200 with what we can do (phones and monitors use it as a
    /// keep-alive, RFC 3261 §11.2).
    pub(super) fn options_response(&mut self, req: &Request) -> Response {
        let mut r = self.response(req, 200, "OK");
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers.push(HeaderName::Accept, ACCEPT);
        if !SUPPORTED.is_empty() {
            r.headers.push(HeaderName::Supported, SUPPORTED);
        }
        r
    }
}
