//! Seed-like messages for the unit tests: the seed's a-leg INVITE from bob (X-Lite) and the
//! b-leg INVITE to alice with her 180/200 (Zoiper), with Record-Route added as if two
//! proxies stood on each side.

use crate::sip::{parse_datagram, Message, NameAddr, Request, Response};

pub const A_CALL_ID: &str = "YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.";

/// bob → P1 (192.168.4.8) → P2 (192.168.4.9) → us.
pub const A_INVITE: &str = "INVITE sip:alice@192.168.4.4 SIP/2.0
Via: SIP/2.0/UDP 192.168.4.9;branch=z9hG4bKp2
Via: SIP/2.0/UDP 192.168.4.8;branch=z9hG4bKp1
Via: SIP/2.0/UDP 192.168.4.4:26000;branch=z9hG4bK-d8754z-87d60b47b6627c3a-1---d8754z-;rport
Record-Route: <sip:192.168.4.9;lr;ftag=15c8325a>
Record-Route: <sip:192.168.4.8;lr>
Max-Forwards: 68
Contact: <sip:bob@192.168.4.4:26000>
To: \"alice\"<sip:alice@192.168.4.4>
From: \"Bob\"<sip:bob@192.168.4.4>;tag=15c8325a
Call-ID: YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.
CSeq: 2 INVITE
Content-Length: 0

";

pub const B_CALL_ID: &str = "0d74ac35-cca4-122d-81a2-2990e5b2bd3e";

/// Our b-leg INVITE, as the seed's FreeSWITCH sent it.
pub const B_INVITE: &str =
    "INVITE sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP SIP/2.0
Via: SIP/2.0/UDP 192.168.4.4;rport;branch=z9hG4bKey90QUyHZQXNN
Max-Forwards: 69
From: \"Bob\" <sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
To: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: 130069214 INVITE
Contact: <sip:mod_sofia@192.168.4.4:5060>
Content-Length: 0

";

/// alice's answer through P4 (10.0.0.2) and P3 (10.0.0.1): us → P3 → P4 → alice.
pub fn b_response(status: &str, to_tag: Option<&str>) -> Response {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let text = format!(
        "SIP/2.0 {status}
Via: SIP/2.0/UDP 192.168.4.4;rport=5060;branch=z9hG4bKey90QUyHZQXNN
Record-Route: <sip:10.0.0.2;lr>, <sip:10.0.0.1;lr>
Contact: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>
To: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>{tag}
From: \"Bob\"<sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: 130069214 INVITE
Content-Length: 0

"
    );
    response(&text)
}

fn message(text: &str) -> Message {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    parse_datagram(crlf.as_bytes()).expect("test message parses")
}

pub fn request(text: &str) -> Request {
    match message(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("expected a request"),
    }
}

pub fn response(text: &str) -> Response {
    match message(text) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("expected a response"),
    }
}

/// Our Contact on the a-leg, as in the seed's 200 to bob.
pub fn our_contact() -> NameAddr {
    NameAddr::parse(b"<sip:alice@192.168.4.4:5060;transport=udp>").unwrap()
}

/// A request in the a-leg dialog from bob (UAS view: To carries our tag).
pub fn a_in_dialog(method: &str, cseq: u32, extra: &str) -> Request {
    request(&format!(
        "{method} sip:alice@192.168.4.4:5060;transport=udp SIP/2.0
Via: SIP/2.0/UDP 192.168.4.4:26000;branch=z9hG4bK-{method}-{cseq};rport
Max-Forwards: 70
To: \"alice\"<sip:alice@192.168.4.4>;tag=cDg7NyjpeSg4m
From: \"Bob\"<sip:bob@192.168.4.4>;tag=15c8325a
Call-ID: {A_CALL_ID}
CSeq: {cseq} {method}
{extra}Content-Length: 0

"
    ))
}
