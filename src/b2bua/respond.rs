//! What every answer and request of ours says about us: the methods we accept, the option
//! tags and bodies we understand, our `Server`/`User-Agent`, and the one builder of a
//! response with a fresh To tag (RFC 3261 §8.2.6). Shared by the engine's own answers and
//! the call core's.

use crate::dialog::ids::new_tag_with;
use crate::sip::{response_to, set_to_tag, HeaderName, Headers, Request, Response};
use rand::rngs::StdRng;

/// Methods we accept (the Allow header of OPTIONS, 405 and 501 answers).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, MESSAGE";
/// Option tags we implement.
pub const SUPPORTED: &str = "timer";
/// The option tags a `Require` may name without getting 420.
pub const SUPPORTED_TAGS: &[&str] = &["timer"];
/// Body types we understand.
pub const ACCEPT: &str = "application/sdp";

/// Adds `Server:` or `User-Agent:` with `value` (`[server] user_agent`), unless it is empty:
/// an operator who wants to disclose nothing gets no header at all.
pub fn push_user_agent(headers: &mut Headers, name: HeaderName, value: &str) {
    if !value.is_empty() {
        headers.push(name, value.to_string());
    }
}

/// A response to `req` with a To tag drawn from `rng` (none for 100, §8.2.6.2) and our
/// `Server` header (`user_agent`, none when empty).
pub fn response_with(
    rng: &mut StdRng,
    user_agent: &str,
    req: &Request,
    code: u16,
    phrase: &str,
) -> Response {
    let mut resp = response_to(req, code, phrase);
    if code > 100 {
        let tag = new_tag_with(rng);
        set_to_tag(&mut resp, &tag);
    }
    push_user_agent(&mut resp.headers, HeaderName::Server, user_agent);
    resp
}
