//! Builders for the messages the lower layers generate themselves: responses (RFC 3261
//! §8.2.6), the ACK for a non-2xx final response (§17.1.1.3) and CANCEL (§9.1).

use super::header::HeaderName;
use super::message::{Request, Response};
use super::method::Method;
use super::typed::split_values;
use bytes::Bytes;

/// A response to `req` per §8.2.6.2: Via (all, in order), From, To, Call-ID and CSeq copied.
/// The To tag is added with `set_to_tag` when the UAS creates one.
pub fn response_to(req: &Request, status: u16, reason: &str) -> Response {
    let mut resp = Response::new(status, Bytes::copy_from_slice(reason.as_bytes()));
    for h in req.headers.iter() {
        match h.name {
            HeaderName::Via
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq => resp.headers.0.push(h.clone()),
            _ => {}
        }
    }
    resp
}

/// Adds `;tag=` to To unless it already has one (§8.2.6.2: a tag already present is kept).
pub fn set_to_tag(resp: &mut Response, tag: &str) {
    if resp.headers.to_tag().is_some() {
        return;
    }
    if let Some(h) = resp.headers.0.iter_mut().find(|h| h.name == HeaderName::To) {
        let mut v = h.value.to_vec();
        v.extend_from_slice(b";tag=");
        v.extend_from_slice(tag.as_bytes());
        h.value = Bytes::from(v);
    }
}

/// Headers a request built from another copies: top Via, From, Call-ID, Route set.
fn derived_request(orig: &Request, method: Method) -> Request {
    let mut r = Request::new(method.clone(), orig.uri.clone());
    if let Some(top) = orig
        .headers
        .get_str(&HeaderName::Via)
        .and_then(|v| split_values(v).next())
    {
        r.headers
            .push(HeaderName::Via, Bytes::copy_from_slice(top.as_bytes()));
    }
    r.headers.push(HeaderName::MaxForwards, "70");
    for h in orig.headers.iter() {
        if matches!(h.name, HeaderName::From | HeaderName::CallId) {
            r.headers.0.push(h.clone());
        }
    }
    let seq = orig.headers.cseq().map_or(1, |c| c.seq);
    r.headers
        .push(HeaderName::CSeq, format!("{seq} {}", method.as_str()));
    for h in orig.headers.get_all(&HeaderName::Route) {
        r.headers.0.push(h.clone());
    }
    r
}

/// The ACK a client INVITE transaction sends for a non-2xx final response (§17.1.1.3): same
/// Request-URI, top Via, From, Call-ID, CSeq number and Route as the INVITE, To from the
/// response (with its tag).
pub fn ack_for_non2xx(invite: &Request, resp: &Response) -> Request {
    let mut ack = derived_request(invite, Method::Ack);
    let to = resp
        .headers
        .get(&HeaderName::To)
        .or_else(|| invite.headers.get(&HeaderName::To));
    if let Some(to) = to {
        ack.headers.0.insert(2, to.clone());
    }
    ack
}

/// CANCEL for a pending INVITE (§9.1): same Request-URI, top Via, From, To, Call-ID, CSeq
/// number and Route.
pub fn cancel_for(invite: &Request) -> Request {
    let mut c = derived_request(invite, Method::Cancel);
    if let Some(to) = invite.headers.get(&HeaderName::To) {
        c.headers.0.insert(2, to.clone());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;

    const INVITE: &[u8] = b"INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bK77, SIP/2.0/UDP p.example;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\nRoute: <sip:p.example;lr>\r\nTo: Bob <sip:bob@b.example>\r\n\
From: Alice <sip:alice@a.example>;tag=1928\r\nCall-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\n\
Contact: <sip:alice@a.example>\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn response_copies_the_dialog_headers_and_tags_to() {
        let inv = parse_datagram(INVITE).unwrap();
        let inv = inv.as_request().unwrap();
        let mut r = response_to(inv, 486, "Busy Here");
        set_to_tag(&mut r, "xyz");
        let names: Vec<_> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Via", "To", "From", "Call-ID", "CSeq"]);
        assert_eq!(r.headers.to_tag().as_deref(), Some("xyz"));
        set_to_tag(&mut r, "other");
        assert_eq!(r.headers.to_tag().as_deref(), Some("xyz"));
        assert_eq!(r.headers.vias().len(), 2);
    }

    #[test]
    fn ack_and_cancel_follow_17_1_1_3_and_9_1() {
        let inv = parse_datagram(INVITE).unwrap();
        let inv = inv.as_request().unwrap();
        let mut resp = response_to(inv, 486, "Busy Here");
        set_to_tag(&mut resp, "t9");
        let ack = ack_for_non2xx(inv, &resp);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        assert_eq!(ack.headers.vias().len(), 1);
        assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bK77"));
        assert_eq!(ack.headers.to_tag().as_deref(), Some("t9"));
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "314159 ACK");
        assert_eq!(ack.headers.count(&HeaderName::Route), 1);
        let cancel = cancel_for(inv);
        assert_eq!(cancel.headers.cseq().unwrap().to_string(), "314159 CANCEL");
        assert_eq!(cancel.headers.to_tag(), None);
        assert_eq!(cancel.headers.call_id(), Some("a84b4c76e66710"));
    }
}
