//! The seed's FreeSWITCH/Zoiper/X-Lite trace (`tests/data/trace`): every message parses and
//! is written back with every header intact (same names and values, same order, same body).
//! The `.headers` files get the 594-octet SDP the book left out (`tests/data/sdp`).

mod sip_util;

use ferroswitch::sip::{parse_datagram, validate_request, Message, Method, Policy};
use sip_util::data;

const FILES: [&str; 10] = [
    "01-alice-register-noauth.sip",
    "02-fs-401-www-authenticate.sip",
    "03-alice-register-authorization.sip",
    "04-fs-200-ok-register.sip",
    "05-fs-403-forbidden-wrong-password.sip",
    "06-bob-invite-noauth.headers",
    "06b-fs-100-trying.sip",
    "07-fs-407-proxy-authenticate.sip",
    "08-bob-ack-407.sip",
    "09-bob-invite-proxy-authorization.headers",
];

/// The wire bytes of a trace message, with the SDP appended to `.headers` files.
fn wire(file: &str) -> Vec<u8> {
    let mut raw = data(&format!("trace/{file}"));
    if file.ends_with(".headers") {
        let sdp = data("sdp/xlite-offer-594.sdp");
        assert_eq!(sdp.len(), 594);
        raw.extend_from_slice(&sdp);
    }
    raw
}

/// Header lines split naively, independently of the parser under test.
fn naive_headers(raw: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(raw).unwrap();
    let head = &text[..text.find("\r\n\r\n").unwrap()];
    head.split("\r\n")
        .skip(1)
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

#[test]
fn every_trace_message_round_trips_byte_for_byte() {
    let listed = std::fs::read_dir(sip_util::path("trace"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".sip") || name.ends_with(".headers")
        })
        .count();
    assert_eq!(listed, FILES.len());
    for file in FILES {
        let raw = wire(file);
        let m = parse_datagram(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        m.core().unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = naive_headers(&raw);
        let got: Vec<(String, String)> = m
            .headers()
            .iter()
            .map(|h| {
                (
                    h.name.as_str().to_string(),
                    h.value_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "{file}: header names/values in order");
        let out = m.to_bytes();
        assert_eq!(&out[..], &raw[..], "{file}: re-serialised unchanged");
        assert_eq!(parse_datagram(&out).unwrap(), m, "{file}");
    }
}

#[test]
fn trace_fields() {
    let reg = parse_datagram(&wire("03-alice-register-authorization.sip")).unwrap();
    let reg = reg.as_request().unwrap();
    assert_eq!(reg.to_bytes().len(), 846);
    assert_eq!(validate_request(reg, &Policy::default()), Ok(()));
    let c = reg.headers.core().unwrap();
    assert_eq!(c.via.rport(), Some(None), "bare ;rport");
    assert_eq!(c.via.sent_by(), "192.168.4.4:5090");
    assert_eq!(c.cseq.method, Method::Register);
    assert_eq!(c.from.tag(), Some("9c709222"));
    assert_eq!(reg.request_uri().unwrap().transport(), Some("UDP"));
    let contact = reg.headers.contacts().unwrap().remove(0);
    let contact = contact.address().unwrap();
    assert_eq!(
        contact.uri.param("rinstance"),
        Some(Some("d42207a765c0626b"))
    );
    assert_eq!(reg.headers.expires(), Some(3600));

    let ok = parse_datagram(&wire("04-fs-200-ok-register.sip")).unwrap();
    let contact = ok.headers().contacts().unwrap().remove(0);
    assert_eq!(contact.address().unwrap().expires(), Some(3600));
    assert_eq!(ok.core().unwrap().via.rport(), Some(Some(5090)));

    let inv = parse_datagram(&wire("09-bob-invite-proxy-authorization.headers")).unwrap();
    let Message::Request(inv) = inv else {
        panic!("request")
    };
    assert_eq!(
        inv.to_bytes().len(),
        1376,
        "the datagram size the trace reports"
    );
    let c = inv.headers.core().unwrap();
    assert_eq!(
        &c.to.display_name().unwrap()[..],
        b"alice",
        "no space before '<'"
    );
    assert_eq!(&c.from.display_name().unwrap()[..], b"Bob");
    assert_eq!(inv.body.len(), 594);
    assert!(inv.headers.content_type().unwrap().is("application/sdp"));

    let trying = parse_datagram(&wire("06b-fs-100-trying.sip")).unwrap();
    let trying = trying.as_response().unwrap();
    assert_eq!((trying.status, &trying.reason[..]), (100, &b"Trying"[..]));
    let ack = parse_datagram(&wire("08-bob-ack-407.sip")).unwrap();
    assert_eq!(ack.core().unwrap().to.tag(), Some("B4pem31jHgtHS"));
}

#[test]
fn headers_files_alone_are_clerr_over_udp() {
    let raw = data("trace/06-bob-invite-noauth.headers");
    assert_eq!(
        parse_datagram(&raw),
        Err(ferroswitch::sip::ParseError::BodyTruncated)
    );
}
