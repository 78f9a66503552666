//! What the engine puts on the wire in answer to hostile input: no reflection larger than the
//! request (issue 9.6), no control octets copied back (9.7), stable tags on stateless answers
//! (RFC 3261 §8.2.7, issue 9.8), no answer to port 0 (9.9), and 5061 for a TLS sent-by
//! without a port (§18.2.2 with §19.1.2, issue 9.14).

use super::*;

fn to_tag(r: &Response) -> String {
    r.headers.to_tag().expect("a To tag")
}

fn is_tag_format(t: &str) -> bool {
    t.len() == 16 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn rfc3261_8_2_7_a_retransmitted_register_gets_the_same_stateless_401_tag() {
    let mut net = Net::new();
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    let src = addr(ZOIPER);
    let first = phone.register(&[]);
    let a = net.ask(src, &first);
    let b = net.ask(src, &first);
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(to_tag(&a), to_tag(&b), "a retransmission, the same tag");
    assert!(is_tag_format(&to_tag(&a)), "{}", to_tag(&a));
    // The same REGISTER on another branch is another request: another tag.
    let other_branch = first.replace("z9hG4bK-test-alice-1", "z9hG4bK-test-alice-x");
    assert_ne!(other_branch, first);
    let c = net.ask(src, &other_branch);
    assert_eq!(c.status, 401);
    assert_ne!(to_tag(&c), to_tag(&a));
    assert!(is_tag_format(&to_tag(&c)));
    // Nothing else in the response changed but the tag: the To is the request's plus it.
    assert_eq!(
        header(&a, "To"),
        Some(format!("<sip:alice@192.168.4.4>;tag={}", to_tag(&a)).as_str())
    );
}

#[test]
fn rfc3261_8_2_7_stateless_rejections_have_stable_tags() {
    let mut net = Net::new();
    let src = addr("192.168.4.50:5060");
    let bad = options("192.168.4.50:5060", "mm1").replace("1 OPTIONS", "1 INVITE");
    let a = net.ask(src, &bad);
    let b = net.ask(src, &bad);
    assert_eq!((a.status, b.status), (400, 400));
    assert_eq!(to_tag(&a), to_tag(&b));
    assert!(is_tag_format(&to_tag(&a)));
    // A malformed request (Content-Length beyond the datagram) gets a stable tag too.
    let broken = options("192.168.4.50:5060", "cl1").replace("Length: 0", "Length: 50");
    let c = net.ask(src, &broken);
    let d = net.ask(src, &broken);
    assert_eq!((c.status, d.status), (400, 400));
    assert_eq!(to_tag(&c), to_tag(&d));
    assert_ne!(to_tag(&c), to_tag(&a));
}

#[test]
fn issue_9_6_a_60_kb_cseq_gets_a_short_400_without_its_value() {
    let mut net = Net::new();
    let src = addr("192.168.4.51:5060");
    let huge = "1".repeat(60_000);
    let req = options("192.168.4.51:5060", "big1")
        .replace("CSeq: 1 OPTIONS", &format!("CSeq: {huge} OPTIONS"));
    let out = net.udp(src, &req);
    assert_eq!(out.len(), 1);
    let r = response(&out[0]);
    assert_eq!(r.status, 400);
    assert_eq!(reason(&r), "Bad Request - malformed CSeq header");
    assert_eq!(header(&r, "CSeq"), None, "an unreadable CSeq is not echoed");
    assert_eq!(r.headers.call_id(), Some("options-big1"));
    assert!(out[0].bytes.len() < 600, "{} octets", out[0].bytes.len());

    // The CSeq method too long for the request: named in no reason phrase.
    let long_method = "X".repeat(17_000);
    let req =
        options("192.168.4.51:5060", "big2").replace("1 OPTIONS", &format!("1 {long_method}"));
    let out = net.udp(src, &req);
    let r = response(&out[0]);
    assert_eq!(
        reason(&r),
        "Bad Request - CSeq method does not match the request"
    );
    assert!(out[0].bytes.len() <= req.len() + 512);
}

#[test]
fn issue_9_7_a_bare_cr_in_from_or_nul_in_call_id_is_dropped_not_echoed() {
    let mut net = Net::new();
    let src = addr("192.168.4.52:5060");
    let base = options("192.168.4.52:5060", "cr1");
    // pjsip seed: a bare CR inside From, then what a CR-splitting parser reads as a To.
    let cr = base.replace(
        ";tag=mon1",
        ";tag=mon1\rTo: <sip:victim@198.51.100.1>;tag=x",
    );
    assert!(net.udp(src, &cr).is_empty());
    let nul = base.replace("Call-ID: options-cr1", "Call-ID: options\0cr1");
    assert!(net.udp(src, &nul).is_empty());
    let esc = base.replace("CSeq: 1 OPTIONS", "CSeq: 1\x1b OPTIONS");
    assert!(net.udp(src, &esc).is_empty());
    let bs = base.replace(";rport", ";rport;x=\"\x08\"");
    assert!(net.udp(src, &bs).is_empty());
    // The same in a message that does not parse (Content-Length beyond the datagram).
    let broken = cr.replace("Length: 0", "Length: 50");
    assert!(net.udp(src, &broken).is_empty());
    assert_eq!(net.engine.stats().malformed_dropped, 5);
    // A control octet in a header an answer does not copy: answered, and not echoed.
    let other = base.replace("Max-Forwards: 70", "Max-Forwards: 70\r\nSubject: a\x1b[2Jb");
    let r = net.ask(src, &other);
    assert_eq!(r.status, 200);
    // The next request from the source is served.
    assert_eq!(
        net.ask(src, &options("192.168.4.52:5060", "ok1")).status,
        200
    );
}

#[test]
fn issue_9_9_via_port_0_is_a_malformed_via_answered_only_where_rport_leads() {
    let mut net = Net::new();
    // rport stamped by us: the 400 goes to the packet's source.
    let src = addr("192.168.4.53:5070");
    let r = net.ask(src, &options("192.168.4.53:0", "p0a"));
    assert_eq!(r.status, 400);
    assert_eq!(reason(&r), "Bad Request - malformed Via header: port 0");
    // Without rport the answer would go to port 0: nothing is sent.
    let no_rport = options("192.168.4.53:0", "p0b").replace(";rport", "");
    assert!(net.udp(src, &no_rport).is_empty());
    // A received that differs from the sent-by does not help: still port 0.
    let other_host = options("10.9.9.9:0", "p0c").replace(";rport", "");
    assert!(net.udp(src, &other_host).is_empty());
    assert_eq!(net.engine.stats().rejected, 3);
}

#[test]
fn rfc3261_18_2_2_tls_sent_by_without_port_is_answered_at_5061() {
    // RFC 4475 bext01: `Via: SIP/2.0/TLS fold-and-staple.example.com` over UDP: received
    // is stamped, no rport, so the sent-by's port applies, and TLS's default is 5061.
    let mut net = Net::new();
    let raw = include_bytes!("../../../tests/data/rfc4475/bext01.dat");
    let out = net.deliver(Transport::Udp, addr("192.0.2.9:5070"), None, raw);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, Peer::new(Transport::Udp, addr("192.0.2.9:5061")));
    assert_eq!(response(&out[0]).status, 420);
    let udp_via = std::str::from_utf8(raw)
        .unwrap()
        .replace("SIP/2.0/TLS", "SIP/2.0/UDP");
    let out = net.udp(addr("192.0.2.9:5070"), &udp_via);
    assert_eq!(out[0].to, Peer::new(Transport::Udp, addr("192.0.2.9:5060")));
}
