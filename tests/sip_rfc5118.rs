//! RFC 5118 IPv6 torture tests (`tests/data/rfc5118`), including the README's caveats: the
//! files are CRLF with bodies longer than Content-Length, while the RFC prints LF-only
//! messages, one Content-Length that fits nothing, and two messages without the final blank
//! line. IPv6 references keep their brackets when written back.

mod sip_util;

use ferroswitch::sip::{
    parse_datagram, validate_request, Frame, Message, ParseError, Policy, Rejection, StreamFramer,
    UriError,
};
use sip_util::{data, manifest, request};
use std::net::IpAddr;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn every_manifest_message_gets_its_outcome() {
    let rows = manifest("rfc5118");
    assert_eq!(rows.len(), 12);
    for (file, section, class) in rows {
        let r = request(&format!("rfc5118/{file}"));
        let got = validate_request(&r, &Policy::default());
        if class == "invalid" {
            assert_eq!(file, "ipv6-bad.dat");
            assert_eq!(got, Err(Rejection::BadRequestUri(UriError::Port)), "{file}");
            assert_eq!(got.unwrap_err().status(), 400);
        } else {
            // "valid", "valid (tolerate)" and "tolerate (RFC 3261 ABNF bug)" are all accepted.
            assert_eq!(got, Ok(()), "{file} ({section}, {class})");
        }
        // Brackets survive re-serialisation byte for byte in every header.
        let raw = data(&format!("rfc5118/{file}"));
        let head = &raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()];
        let out = r.to_bytes();
        assert!(out.starts_with(head), "{file}: head written back unchanged");
    }
}

#[test]
fn hosts_ports_and_brackets() {
    let good = request("rfc5118/ipv6-good.dat");
    let ruri = good.request_uri().unwrap();
    assert_eq!(
        (ruri.host(), ruri.host_ip()),
        ("[2001:db8::10]", ip("2001:db8::10"))
    );
    let via = good.headers.top_via().unwrap();
    assert_eq!(via.host, "[2001:db8::9:1]");
    assert_eq!(
        via.to_string(),
        "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111"
    );
    let contact = good.headers.contacts().unwrap().remove(0);
    assert_eq!(contact.address().unwrap().uri.host_ip(), ip("2001:db8::1"));

    let amb = request("rfc5118/port-ambiguous.dat").request_uri().unwrap();
    assert_eq!((amb.host(), amb.port()), ("[2001:db8::10:5070]", None));
    assert_eq!(amb.host_ip(), ip("2001:db8::10:5070"));
    let unamb = request("rfc5118/port-unambiguous.dat")
        .request_uri()
        .unwrap();
    assert_eq!((unamb.host(), unamb.port()), ("[2001:db8::10]", Some(5070)));
}

#[test]
fn via_received_with_and_without_brackets() {
    let with = request("rfc5118/via-received-param-with-delim.dat");
    assert_eq!(
        with.headers.top_via().unwrap().received(),
        Some("[2001:db8::9:255]")
    );
    let without = request("rfc5118/via-received-param-no-delim.dat");
    assert_eq!(
        without.headers.top_via().unwrap().received(),
        Some("2001:db8::9:255")
    );

    let mult = request("rfc5118/mult-ip-in-header.dat");
    let vias = mult.headers.try_vias().unwrap();
    let hops: Vec<_> = vias
        .iter()
        .map(|v| (v.transport.as_str(), v.host.as_str(), v.port))
        .collect();
    assert_eq!(
        hops,
        [
            ("UDP", "[2001:db8::9:1]", Some(6050)),
            ("UDP", "192.0.2.1", None),
            ("TCP", "[2001:db8::9:255]", None)
        ]
    );
    assert_eq!(vias[2].received(), Some("192.0.2.200"));
}

#[test]
fn ipv4_mapped_and_the_abnf_bug() {
    let m = request("rfc5118/ipv4-mapped-ipv6.dat");
    let vias = m.headers.try_vias().unwrap();
    assert_eq!(
        (vias[0].host.as_str(), vias[0].port),
        ("[::ffff:192.0.2.10]", Some(19823))
    );
    assert_eq!(vias[1].host, "[::ffff:192.0.2.2]");
    let c = m.headers.contacts().unwrap().remove(0);
    let c = c.address().unwrap();
    assert_eq!(c.display_name_lossy().as_deref(), Some("T. desk phone"));
    assert_eq!(c.uri.host_ip(), ip("::ffff:192.0.2.2"));

    let three = request("rfc5118/ipv6-bug-abnf-3-colons.dat")
        .request_uri()
        .unwrap();
    assert_eq!(three.host(), "[2001:db8:::192.0.2.1]");
    assert_eq!(
        three.host_ip(),
        None,
        "tolerated, but not an RFC 4291 address"
    );
    let two = request("rfc5118/ipv6-correct-abnf-2-colons.dat");
    assert_eq!(
        two.request_uri().unwrap().host_ip(),
        ip("2001:db8::192.0.2.1")
    );
    assert_eq!(
        two.headers.to().unwrap().uri.host(),
        "[2001:db8::192.0.2.1]"
    );
}

#[test]
fn readme_caveat_bodies_longer_than_content_length() {
    for (file, cl, body) in [
        ("ipv6-in-sdp.dat", 241, 251),
        ("mult-ip-in-sdp.dat", 181, 189),
        ("ipv4-mapped-ipv6.dat", 236, 245),
    ] {
        let raw = data(&format!("rfc5118/{file}"));
        let head = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(raw.len() - head, body, "{file}");
        // UDP: the extra octets are ignored (RFC 3261 §18.3).
        let m = parse_datagram(&raw).unwrap();
        assert_eq!(m.body().len(), cl, "{file}");
        assert_eq!(&m.body()[..], &raw[head..head + cl]);
        // TCP: they are the start of the next message.
        let mut f = StreamFramer::default();
        f.push(&raw);
        assert!(matches!(f.pop(), Ok(Some(Frame::Message(b))) if b.len() == head + cl));
        assert_eq!(f.buffered(), body - cl, "{file}");
    }
    let sdp = request("rfc5118/ipv6-in-sdp.dat");
    assert!(sdp
        .body
        .windows(23)
        .any(|w| w == b"c=IN IP6 2001:db8::20\r\n"));
}

#[test]
fn readme_caveat_rfc_as_printed_variants() {
    // LF-only line ends: same message.
    for file in [
        "ipv6-good.dat",
        "mult-ip-in-header.dat",
        "port-ambiguous.dat",
    ] {
        let raw = data(&format!("rfc5118/{file}"));
        let lf: Vec<u8> = raw.iter().copied().filter(|&c| c != b'\r').collect();
        let (a, b) = (parse_datagram(&raw).unwrap(), parse_datagram(&lf).unwrap());
        assert_eq!(a, b, "{file}");
    }
    // The RFC's Content-Length 268 fits no rendering: over UDP that is a 400.
    let raw = data("rfc5118/ipv6-in-sdp.dat");
    let printed = String::from_utf8(raw)
        .unwrap()
        .replace("Content-Length: 241", "Content-Length: 268");
    assert_eq!(
        parse_datagram(printed.as_bytes()),
        Err(ParseError::BodyTruncated)
    );
    // Without the final blank line: not a message over UDP, "wait" over TCP.
    let raw = data("rfc5118/ipv6-bug-abnf-3-colons.dat");
    let cut = &raw[..raw.len() - 2];
    assert_eq!(parse_datagram(cut), Err(ParseError::UnterminatedHead));
    let mut f = StreamFramer::default();
    f.push(cut);
    assert_eq!(f.pop(), Ok(None));
    assert!(matches!(parse_datagram(&raw), Ok(Message::Request(_))));
}
