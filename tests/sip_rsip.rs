//! One test per rsip 0.4 failure that `sip` works around (STYLE habit 6, table in
//! `src/sip/mod.rs`): each shows rsip failing on the input and our layer handling it. If rsip
//! ever improves, the rsip half of a test fails and tells us a bypass may go.

#![cfg(feature = "rsip")]

mod sip_util;

use ferroswitch::sip::rsip_bridge::{from_rsip, to_rsip, uri_to_rsip, RsipError};
use ferroswitch::sip::{parse_datagram, HeaderName, Message, Method, Uri};
use rsip::prelude::*;
use sip_util::data;

const BASE: &str = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n\
To: <sip:b@example.com>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContact: <sip:a@h.example.com>\r\n\
Content-Length: 0\r\n\r\n";

fn rsip_parse(raw: &[u8]) -> Result<rsip::SipMessage, rsip::Error> {
    rsip::SipMessage::try_from(raw)
}

fn ours(raw: &[u8]) -> Message {
    parse_datagram(raw).unwrap()
}

fn variant(from: &str, to: &str) -> Vec<u8> {
    assert!(BASE.contains(from));
    BASE.replacen(from, to, 1).into_bytes()
}

#[test]
fn baseline_rsip_parses_the_plain_message() {
    let m = rsip_parse(BASE.as_bytes()).unwrap();
    assert_eq!(
        m.via_header().unwrap().typed().unwrap().uri.to_string(),
        "h.example.com"
    );
    assert_eq!(
        ours(BASE.as_bytes()).core().unwrap().via.host,
        "h.example.com"
    );
}

#[test]
fn folded_header_lines() {
    let raw = variant("To: <sip:b@example.com>", "To:\r\n <sip:b@example.com>");
    assert!(rsip_parse(&raw).is_err());
    assert_eq!(
        ours(&raw).headers().to().unwrap().uri.as_str(),
        "sip:b@example.com"
    );
}

#[test]
fn compact_header_names() {
    let raw = variant("Via:", "v:");
    let theirs = rsip_parse(&raw).unwrap();
    assert!(theirs.via_header().is_err(), "rsip files `v:` under Other");
    let m = ours(&raw);
    assert_eq!(m.headers().top_via().unwrap().branch(), Some("z9hG4bK1"));
    assert!(
        to_rsip(&m).unwrap().via_header().is_ok(),
        "normalised, rsip finds it"
    );
}

#[test]
fn several_vias_on_one_line() {
    let raw = variant(
        "z9hG4bK1\r\n",
        "z9hG4bK1, SIP/2.0/TCP p.example.com;branch=z9hG4bK2\r\n",
    );
    let theirs = rsip_parse(&raw).unwrap();
    let vias = theirs
        .headers()
        .iter()
        .filter(|h| matches!(h, rsip::Header::Via(_)))
        .count();
    assert_eq!(
        vias, 1,
        "rsip sees one Via; its typed view silently drops the second"
    );
    let m = ours(&raw);
    assert_eq!(m.headers().vias().len(), 2);
    let split = to_rsip(&m).unwrap();
    let n = split
        .headers()
        .iter()
        .filter(|h| matches!(h, rsip::Header::Via(_)))
        .count();
    assert_eq!(n, 2);
}

#[test]
fn several_contacts_on_one_line() {
    let raw = variant(
        "<sip:a@h.example.com>",
        "<sip:a@h.example.com>, <sip:b@h.example.com>",
    );
    assert!(rsip_parse(&raw)
        .unwrap()
        .contact_header()
        .unwrap()
        .typed()
        .is_err());
    let m = ours(&raw);
    assert_eq!(m.headers().contacts().unwrap().len(), 2);
    let theirs = to_rsip(&m).unwrap();
    let typed: Vec<_> = theirs
        .contact_headers()
        .iter()
        .map(|c| c.typed().unwrap().uri.to_string())
        .collect();
    assert_eq!(typed, ["sip:a@h.example.com", "sip:b@h.example.com"]);
}

#[test]
fn quoted_parameter_values_in_contact() {
    let raw = variant(
        "<sip:a@h.example.com>",
        "<sip:a@h.example.com>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";expires=60",
    );
    assert!(rsip_parse(&raw)
        .unwrap()
        .contact_header()
        .unwrap()
        .typed()
        .is_err());
    let c = ours(&raw).headers().contacts().unwrap().remove(0);
    let c = c.address().unwrap();
    assert_eq!(
        c.instance(),
        Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>")
    );
    assert_eq!(c.expires(), Some(60));
}

#[test]
fn ipv6_hosts() {
    let ruri = variant("sip:bob@example.com", "sip:bob@[2001:db8::1]");
    assert!(rsip_parse(&ruri).is_err());
    let m = ours(&ruri);
    let uri = m.as_request().unwrap().request_uri().unwrap();
    assert_eq!(uri.host(), "[2001:db8::1]");
    assert!(m
        .to_bytes()
        .starts_with(b"OPTIONS sip:bob@[2001:db8::1] SIP/2.0\r\n"));
    assert!(
        matches!(to_rsip(&m), Err(RsipError::Uri(_))),
        "refused, not mangled"
    );

    let via = variant("h.example.com;branch", "[2001:db8::9]:5060;branch");
    assert!(rsip_parse(&via)
        .unwrap()
        .via_header()
        .unwrap()
        .typed()
        .is_err());
    let v = ours(&via).headers().top_via().unwrap();
    assert_eq!((v.host.as_str(), v.port), ("[2001:db8::9]", Some(5060)));
    assert_eq!(
        v.to_string(),
        "SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK1"
    );
}

#[test]
fn lf_only_line_ends() {
    let raw = BASE.replace("\r\n", "\n").into_bytes();
    assert!(rsip_parse(&raw).is_err());
    assert_eq!(ours(&raw), ours(BASE.as_bytes()));
}

#[test]
fn space_before_the_colon() {
    let raw = variant("Call-ID:", "Call-ID :");
    assert!(rsip_parse(&raw).is_err());
    assert_eq!(ours(&raw).headers().call_id(), Some("x"));
}

#[test]
fn unknown_methods() {
    let raw = BASE.replace("OPTIONS", "FOO").into_bytes();
    assert!(rsip_parse(&raw).is_err(), "so no 501 could be sent");
    let m = ours(&raw);
    assert_eq!(m.as_request().unwrap().method, Method::Other("FOO".into()));
    assert!(rsip_parse(&data("rfc4475/intmeth.dat")).is_err());
    assert!(rsip_parse(&data("rfc4475/esc02.dat")).is_err());
}

#[test]
fn non_utf8_octets() {
    let mut raw = variant("From: <", "From: \"\u{1}\u{1}\" <");
    let i = raw.iter().position(|&c| c == 1).unwrap();
    raw[i..i + 2].copy_from_slice(b"\xff\xfe");
    assert!(rsip_parse(&raw).is_err());
    let from = ours(&raw).headers().from().unwrap();
    assert_eq!(&from.display_name().unwrap()[..], b"\xff\xfe");

    let resp = b"SIP/2.0 200 \xd0\x9e\xff\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
    assert!(rsip_parse(resp).is_err());
    assert_eq!(
        &ours(resp).as_response().unwrap().reason[..],
        b"\xd0\x9e\xff"
    );
}

#[test]
fn content_length_ignored() {
    let raw = data("rfc4475/dblreq.dat");
    let theirs = rsip_parse(&raw).unwrap();
    let body = theirs.body();
    assert!(
        body.windows(26).any(|w| w == b"INVITE sip:joe@example.com"),
        "rsip: the second message becomes the body"
    );
    assert!(ours(&raw).body().is_empty());
    let short = variant("Content-Length: 0\r\n\r\n", "Content-Length: 20\r\n\r\nabc");
    assert!(rsip_parse(&short).is_ok(), "rsip accepts a truncated body");
    assert!(parse_datagram(&short).is_err());
}

#[test]
fn reason_phrases_rewritten() {
    let raw = b"SIP/2.0 486 Busy Here\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
    let theirs = rsip_parse(raw).unwrap();
    assert!(theirs.to_string().starts_with("SIP/2.0 486 BusyHere\r\n"));
    let m = ours(raw);
    assert!(m.to_bytes().starts_with(b"SIP/2.0 486 Busy Here\r\n"));
    assert_eq!(
        &from_rsip(&theirs).as_response().unwrap().reason[..],
        b"Busy Here"
    );
}

#[test]
fn uris_re_rendered_or_truncated() {
    // Digest hashes the URI as sent: a re-rendered URI breaks authentication.
    let text = "sip:192.168.4.4;transport=udp";
    let theirs = rsip::Uri::try_from(text).unwrap();
    assert_ne!(theirs.to_string(), text);
    assert_eq!(Uri::parse(text).unwrap().to_string(), text);
    assert!(uri_to_rsip(&Uri::parse(text).unwrap()).is_err());
    // URI headers are dropped (rsip's Uri has no room for them).
    let hdr = "sip:user@example.com?Route=%3Csip:sip.example.com%3E";
    assert!(rsip::Uri::try_from(hdr).map_or(true, |u| u.to_string() != hdr));
    assert_eq!(
        Uri::parse(hdr).unwrap().headers(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
    // Escapes and ';' in the user part (RFC 4475 esc01, semiuri).
    assert!(rsip_parse(&data("rfc4475/esc01.dat")).is_err());
    assert!(rsip_parse(&data("rfc4475/semiuri.dat")).is_err());
    let semi = ours(&data("rfc4475/semiuri.dat"));
    let u = semi.as_request().unwrap().request_uri().unwrap();
    assert_eq!(u.user(), Some("user;par=u%40example.net"));
}

#[test]
fn normalisation_lets_rsip_read_what_it_could_not() {
    // longreq: `V :` and compact `v:` Vias defeat rsip; after our parse rsip reads all 34.
    let raw = data("rfc4475/longreq.dat");
    assert!(rsip_parse(&raw).is_err());
    let theirs = to_rsip(&ours(&raw)).unwrap();
    let hosts: Vec<String> = theirs
        .headers()
        .iter()
        .filter_map(|h| match h {
            rsip::Header::Via(v) => Some(v.typed().unwrap().uri.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(hosts.len(), 34);
    assert_eq!(hosts[0], "sip33.example.com");
    // The seed trace converts both ways without loss of the fields the layers use.
    for f in [
        "03-alice-register-authorization.sip",
        "07-fs-407-proxy-authenticate.sip",
    ] {
        let m = ours(&data(&format!("trace/{f}")));
        let back = from_rsip(&to_rsip(&m).unwrap());
        assert_eq!(back.core().unwrap(), m.core().unwrap(), "{f}");
        let auth = |m: &Message| {
            m.headers()
                .iter()
                .filter(|h| {
                    matches!(
                        h.name,
                        HeaderName::Authorization | HeaderName::ProxyAuthenticate
                    )
                })
                .map(|h| h.value.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(auth(&back), auth(&m), "{f}");
    }
}
