//! Builders for the messages the lower layers generate themselves: responses (RFC 3261
//! §8.2.6), the ACK for a non-2xx final response (§17.1.1.3) and CANCEL (§9.1).
//!
//! What a response copies from a request goes back to whoever the Via names, possibly a
//! spoofed victim: `response_to_bad` copies only what parses, and `make_echo_safe` readies a
//! request to be answered without echoing control octets, or says it cannot be (issues 9.6,
//! 9.7).

use super::header::{is_wire_safe, Header, HeaderName};
use super::message::{Request, Response};
use super::method::Method;
use super::name_addr::NameAddr;
use super::typed::{split_values, CSeq};
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

/// A response to a request refused statelessly (malformed, or failing validation): as
/// `response_to`, but From, To, Call-ID and CSeq lines are copied only when they parse. A
/// header we cannot read is not echoed: it may be 60 KB of garbage, and a client that sent it
/// could not match the answer on it anyway. Every Via line is copied (the answer is routed on
/// the top one, which the caller has checked); none of them is longer than the request.
pub fn response_to_bad(req: &Request, status: u16, reason: &str) -> Response {
    let mut resp = Response::new(status, Bytes::copy_from_slice(reason.as_bytes()));
    for h in req.headers.iter() {
        let copy = match h.name {
            HeaderName::Via => true,
            HeaderName::From | HeaderName::To => NameAddr::parse_shared(&h.value).is_ok(),
            HeaderName::CallId => is_call_id(h),
            HeaderName::CSeq => h.value_str().and_then(CSeq::parse).is_some(),
            _ => false,
        };
        if copy {
            resp.headers.0.push(h.clone());
        }
    }
    resp
}

fn is_call_id(h: &Header) -> bool {
    !h.value.is_empty() && h.value.iter().all(|&c| c > 0x20 && c < 0x7f)
}

/// The headers a response copies from its request (§8.2.6.2), so an answer echoes them.
fn copied_into_answers(name: &HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq
    )
}

/// Readies `req` to be answered without echoing a control octet. A From or To whose display
/// name holds one (RFC 4475 intmeth: NUL, BEL, DEL as quoted-pairs) loses its display name:
/// §20's comparison of From and To ignores display names, so the answer still matches. Any
/// other control octet in what §8.2.6.2 copies (Via, Call-ID, CSeq, a From or To parameter)
/// leaves nothing safe to say: `false`, and the caller drops the request (RFC 3261 §18.3).
pub fn make_echo_safe(req: &mut Request) -> bool {
    for h in req.headers.0.iter_mut() {
        if !copied_into_answers(&h.name) || h.is_wire_safe() {
            continue;
        }
        if !matches!(h.name, HeaderName::From | HeaderName::To) {
            return false;
        }
        let Ok(addr) = NameAddr::parse_shared(&h.value) else {
            return false;
        };
        let mut bare = NameAddr::new(addr.uri);
        bare.params = addr.params;
        let value = bare.to_bytes();
        if !is_wire_safe(&value) {
            return false;
        }
        h.value = Bytes::from(value);
    }
    true
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
    use crate::sip::{parse_datagram, Message};

    /// Whether `req` can be answered without echoing a control octet: every line §8.2.6.2
    /// copies is wire-safe.
    fn echo_safe(req: &Request) -> bool {
        req.headers
            .iter()
            .all(|h| !copied_into_answers(&h.name) || h.is_wire_safe())
    }

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
    fn a_bad_request_gets_only_what_parses_back() {
        let raw = format!(
            "OPTIONS sip:b@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
From: <sip:a@a.example>;tag=1\r\nTo: <sip:b@b.example\r\nCall-ID: c1\r\nCSeq: {} OPTIONS\r\n\r\n",
            "7".repeat(60_000)
        );
        let m = parse_datagram(raw.as_bytes()).unwrap();
        let r = response_to_bad(
            m.as_request().unwrap(),
            400,
            "Bad Request - malformed CSeq header",
        );
        let names: Vec<_> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Via", "From", "Call-ID"]);
        assert!(r.to_bytes().len() < 200);
    }

    #[test]
    fn echo_safe_looks_at_the_copied_headers_only() {
        let ok = parse_datagram(INVITE).unwrap();
        assert!(echo_safe(ok.as_request().unwrap()));
        let with = |from: &[u8], to: &[u8]| {
            let raw = INVITE.to_vec();
            let pos = raw.windows(from.len()).position(|w| w == from).unwrap();
            let raw = [&raw[..pos], to, &raw[pos + from.len()..]].concat();
            let m = parse_datagram(&raw).unwrap();
            echo_safe(m.as_request().unwrap())
        };
        assert!(!with(b"tag=1928", b"tag=1928\rTo: <sip:evil@x>"));
        assert!(!with(b"a84b4c76e66710", b"a84b\x00c76e66710"));
        assert!(!with(b"314159 INVITE", b"314159\x08 INVITE"));
        assert!(!with(b"z9hG4bK77", b"z9hG4bK\x1b77"));
        // Other headers do not matter: they are not copied.
        assert!(with(b"Max-Forwards: 70", b"Max-Forwards: 7\x000"));
    }

    #[test]
    fn a_control_octet_in_a_display_name_costs_the_display_name_only() {
        let raw =
            b"OPTIONS sip:b@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:b@b.example>;x=1\r\nFrom: <sip:a@a.example>;tag=1\r\n\
Call-ID: c1\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let mut m = parse_datagram(raw).unwrap();
        let Message::Request(req) = &mut m else {
            panic!("a request")
        };
        assert!(!echo_safe(req));
        assert!(make_echo_safe(req));
        assert!(echo_safe(req));
        assert_eq!(
            req.headers.get_str(&HeaderName::To),
            Some("<sip:b@b.example>;x=1")
        );
        assert_eq!(
            req.headers.get_str(&HeaderName::From),
            Some("<sip:a@a.example>;tag=1")
        );
        // Elsewhere than in a display name: nothing to answer with.
        let raw =
            b"OPTIONS sip:b@b.example SIP/2.0\r\nVia: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
To: <sip:b@b.example>\r\nFrom: <sip:a@a.example>;tag=1\rTo: <sip:evil@x>\r\n\
Call-ID: c1\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let mut m = parse_datagram(raw).unwrap();
        let Message::Request(req) = &mut m else {
            panic!("a request")
        };
        assert!(!make_echo_safe(req));
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
