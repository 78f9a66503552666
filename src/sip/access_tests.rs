use super::*;
use crate::sip::parse_datagram;
use crate::sip::Method;

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKa;rport, SIP/2.0/TCP p.example.com\r\n\
Max-Forwards: 0068\r\nTo: <sip:alice@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=f1\r\nCall-ID: c1@host\r\nCSeq: 0009 REGISTER\r\n\
m: <sip:alice@[2001:db8::9]:5070;ob>;+sip.instance=\"<urn:uuid:1,2>\";expires=60, sip:a2@h;q=0.5\r\n\
Route: <sip:p1;lr>,<sip:p2;lr>\r\nRoute: <sip:p3;lr>\r\nExpires: 3600\r\nRequire: path, gruu\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn core_extraction_in_one_pass() {
    let m = parse_datagram(REGISTER).unwrap();
    let c = m.core().unwrap();
    assert_eq!(c.via.host, "[2001:db8::9]");
    assert_eq!(c.via.branch(), Some("z9hG4bKa"));
    assert_eq!(c.from.tag(), Some("f1"));
    assert_eq!(&c.from.display_name().unwrap()[..], b"Alice");
    assert_eq!(c.to.uri.user(), Some("alice"));
    assert_eq!(c.call_id, "c1@host");
    assert_eq!((c.cseq.seq, c.cseq.method.clone()), (9, Method::Register));
}

#[test]
fn typed_accessors() {
    let m = parse_datagram(REGISTER).unwrap();
    let h = m.headers();
    assert_eq!(h.max_forwards(), Some(68));
    assert_eq!(h.expires(), Some(3600));
    let cs = h.contacts().unwrap();
    assert_eq!(cs.len(), 2);
    let a = cs[0].address().unwrap();
    assert_eq!(a.instance(), Some("<urn:uuid:1,2>"));
    assert_eq!(a.expires(), Some(60));
    assert_eq!(a.uri.host(), "[2001:db8::9]");
    assert_eq!(cs[1].address().unwrap().q(), Some(0.5));
    let routes: Vec<_> = h
        .routes()
        .unwrap()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(routes, ["sip:p1;lr", "sip:p2;lr", "sip:p3;lr"]);
    assert!(h.record_routes().unwrap().is_empty());
    assert_eq!(
        h.tokens(&HeaderName::Require).collect::<Vec<_>>(),
        ["path", "gruu"]
    );
    assert_eq!(h.try_vias().unwrap().len(), 2);
    assert_eq!(
        m.as_request().unwrap().request_uri().unwrap().host(),
        "example.com"
    );
}

#[test]
fn errors_name_the_header() {
    let mut h = Headers::new();
    assert_eq!(h.from(), Err(HeaderError::Missing(HeaderName::From)));
    h.push(HeaderName::From, "sip:a@b;tag=1");
    h.push(HeaderName::From, "sip:c@d;tag=2");
    assert_eq!(h.from(), Err(HeaderError::Multiple(HeaderName::From)));
    h.push(HeaderName::To, "\"unterminated <sip:a@b>");
    assert!(matches!(
        h.to(),
        Err(HeaderError::Malformed(HeaderName::To, _))
    ));
    h.push(HeaderName::Contact, "*");
    assert_eq!(h.contacts().unwrap(), vec![Contact::Wildcard]);
    h.push(HeaderName::Contact, "<sip:x@y>");
    assert!(h.contacts().is_err());
    h.push(HeaderName::Route, "<sip:a>,,<sip:b>");
    assert!(h.routes().is_err());
    h.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.15;;,;,,");
    assert!(h.try_vias().is_err());
    assert_eq!(h.vias().len(), 0);
    let mut p = Headers::new();
    p.push(
        HeaderName::PAssertedIdentity,
        "\"Bob\" <sip:bob@x>, <tel:+15551234>",
    );
    p.push(
        HeaderName::RemotePartyId,
        "<sip:bob@x>;party=calling;privacy=off",
    );
    assert_eq!(p.p_asserted_identities().unwrap().len(), 2);
    assert_eq!(
        p.remote_party_ids().unwrap()[0].params.get("party"),
        Some(Some("calling"))
    );
}
