//! Shared scaffolding for the `dialog_*` tests: messages from text (LF or CRLF), a loose
//! router's Route popping (RFC 3261 §16.4), and small accessors.
#![allow(dead_code)]

use ferroswitch::dialog::{Accepted, RequestVerdict};
use ferroswitch::sip::{parse_datagram, HeaderName, Message, NameAddr, Request, Response};

pub fn message(text: &str) -> Message {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    parse_datagram(crlf.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

pub fn request(text: &str) -> Request {
    match message(text) {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, got {}", r.status),
    }
}

pub fn response(text: &str) -> Response {
    match message(text) {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

pub fn addr(text: &str) -> NameAddr {
    NameAddr::parse(text.as_bytes()).unwrap()
}

/// What goes on the wire and comes off it again: serialise and parse, as a peer sees it.
pub fn over_the_wire(req: &Request) -> Request {
    match parse_datagram(&req.to_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

/// A loose router on the path (§16.4): the top Route names it, so it removes that value.
/// Returns the URI it removed.
pub fn pop_route(req: &mut Request) -> String {
    let routes = req.headers.routes().unwrap();
    let first = routes.first().expect("a Route to pop").uri.to_string();
    let rest: Vec<Vec<u8>> = routes[1..].iter().map(NameAddr::to_bytes).collect();
    req.headers.remove(&HeaderName::Route);
    for r in rest {
        req.headers.push(HeaderName::Route, r);
    }
    first
}

pub fn route_uris(req: &Request) -> Vec<String> {
    req.headers
        .routes()
        .unwrap()
        .iter()
        .map(|r| r.uri.to_string())
        .collect()
}

pub fn header(req: &Request, name: HeaderName) -> &str {
    req.headers
        .get_str(&name)
        .unwrap_or_else(|| panic!("no {name}"))
}

pub fn accepted(v: RequestVerdict) -> Accepted {
    match v {
        RequestVerdict::Accept(a) => a,
        other => panic!("expected Accept, got {other:?}"),
    }
}

/// The seed's bob INVITE with Proxy-Authorization (`09-…headers`), its 594-byte SDP body
/// (omitted by the book) replaced by filler of the same length.
pub fn seed_a_leg_invite() -> Request {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/trace/09-bob-invite-proxy-authorization.headers");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::iter::repeat_n(b'x', 594));
    match parse_datagram(&bytes).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

/// The seed's b-leg INVITE from FreeSWITCH to alice (chapter 4 trace).
pub const SEED_B_INVITE: &str =
    "INVITE sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP SIP/2.0
Via: SIP/2.0/UDP 192.168.4.4;rport;branch=z9hG4bKey90QUyHZQXNN
Route: <sip:alice@192.168.4.4:5090>;rinstance=e7d5364c81f2b879;transport=UDP
Max-Forwards: 69
From: \"Bob\" <sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
To: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: 130069214 INVITE
Contact: <sip:mod_sofia@192.168.4.4:5060>
Content-Length: 0

";

/// alice's responses to the seed's b-leg INVITE (180/200 as in the trace), with optional
/// extra header lines (e.g. Record-Route).
pub fn seed_b_response(status: &str, to_tag: Option<&str>, extra: &str) -> Response {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    response(&format!(
        "SIP/2.0 {status}
Via: SIP/2.0/UDP 192.168.4.4;rport=5060;branch=z9hG4bKey90QUyHZQXNN
{extra}Contact: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>
To: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>{tag}
From: \"Bob\"<sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: 130069214 INVITE
User-Agent: Zoiper rev.5415
Content-Length: 0

"
    ))
}

/// The same for a response.
pub fn response_over_the_wire(resp: &Response) -> Response {
    match parse_datagram(&resp.to_bytes()).unwrap() {
        Message::Response(r) => r,
        Message::Request(_) => unreachable!(),
    }
}

/// A branch no other request of this test binary has (RFC 3261 §8.1.1.7).
#[allow(dead_code)]
pub fn fresh_branch() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("z9hG4bKtest{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
