//! What the engine answers besides REGISTER: OPTIONS (RFC 3261 §11), 501 for methods it does
//! not implement (§8.2.1), 400 for malformed requests (§8.2, §18.3) without losing the next
//! message, and retransmissions answered by the transaction (§17.2.2).

use super::*;
use crate::b2bua::{ACCEPT, ALLOW};

#[test]
fn rfc3261_11_options_is_200_with_allow_and_accept() {
    let mut net = Net::new();
    let r = net.ask(
        addr("192.168.4.40:5060"),
        &options("192.168.4.40:5060", "opt1"),
    );
    assert_eq!((r.status, reason(&r).as_str()), (200, "OK"));
    assert_eq!(header(&r, "Allow"), Some(ALLOW));
    assert_eq!(header(&r, "Accept"), Some(ACCEPT));
    assert!(ALLOW.contains("REGISTER") && ALLOW.contains("OPTIONS"));
    assert!(r.headers.to_tag().is_some());
    assert_eq!(header(&r, "Server"), Some("ferroswitch-test"));
    assert_eq!(
        net.engine.stats().auth_challenges,
        0,
        "no authentication for OPTIONS"
    );
}

#[test]
fn rfc3261_8_2_1_unknown_method_is_501_with_allow() {
    let mut net = Net::new();
    let src = "192.168.4.41:5060";
    let msg = options(src, "foo1")
        .replace("OPTIONS sip:", "FROBNICATE sip:")
        .replace("1 OPTIONS", "1 FROBNICATE");
    let r = net.ask(addr(src), &msg);
    assert_eq!((r.status, reason(&r).as_str()), (501, "Not Implemented"));
    assert_eq!(header(&r, "Allow"), Some(ALLOW));
}

#[test]
fn rfc3261_18_3_malformed_request_gets_400_and_the_next_is_served() {
    let mut net = Net::new();
    let src = addr("192.168.4.42:5060");
    // Content-Length larger than the datagram: the head reads, the message does not.
    let broken =
        options("192.168.4.42:5060", "bad1").replace("Content-Length: 0", "Content-Length: 50");
    let r = net.ask(src, &broken);
    assert_eq!(r.status, 400);
    assert_eq!(
        reason(&r),
        "Bad Request - Content-Length Larger Than Message"
    );
    assert_eq!(r.headers.call_id(), Some("options-bad1"));
    assert_eq!(net.engine.stats().malformed_answered, 1);

    // Garbage is dropped without an answer.
    assert!(net.udp(src, "\u{1}\u{2} not sip at all\r\n\r\n").is_empty());
    assert_eq!(net.engine.stats().malformed_dropped, 1);

    // A request that parses but breaks §8.2 rules (CSeq method differs from the method).
    let odd = options("192.168.4.42:5060", "bad2").replace("1 OPTIONS", "1 INVITE");
    let r = net.ask(src, &odd);
    assert_eq!(r.status, 400, "{}", reason(&r));

    let r = net.ask(src, &options("192.168.4.42:5060", "good1"));
    assert_eq!(r.status, 200);
    let (mut phone, zoiper) = (Phone::new("alice", "1234", ZOIPER), addr(ZOIPER));
    assert_eq!(net.register(&mut phone, zoiper, &[]).status, 200);
}

#[test]
fn rfc3581_malformed_request_400_goes_to_the_packet_source() {
    // A phone behind NAT: its 400 must reach it at the address the packet came from, as
    // every other response does.
    let mut net = Net::new();
    let src = addr("203.0.113.9:40000");
    let broken =
        options("10.0.0.5:5060", "natbad").replace("Content-Length: 0", "Content-Length: 50");
    let r = net.ask(src, &broken);
    assert_eq!(r.status, 400);
    let via = header(&r, "Via").unwrap();
    assert!(
        via.contains("received=203.0.113.9") && via.contains("rport=40000"),
        "{via}"
    );
}

#[test]
fn rfc3261_17_2_2_retransmitted_register_is_answered_from_the_transaction() {
    let mut net = Net::new();
    let src = addr(ZOIPER);
    let mut phone = Phone::new("alice", "1234", ZOIPER);

    // The challenge is stateless (as Kamailio's registrar): a retransmitted REGISTER without
    // credentials gets a fresh 401, and no transaction is kept for either.
    let first = phone.register(&[]);
    let c1 = net.udp(src, &first);
    let c2 = net.udp(src, &first);
    assert_eq!(c1.len(), 1);
    assert_eq!(c2.len(), 1);
    assert_eq!(response(&c1[0]).status, 401);
    assert_eq!(response(&c2[0]).status, 401);
    assert_eq!(net.engine.stats().auth_challenges, 2);
    assert_eq!(net.engine.transactions().len(), 0);
    phone.learn(&response(&c1[0]));

    let second = phone.register(&[]);
    let r1 = net.udp(src, &second);
    net.advance(Duration::from_millis(500));
    let r2 = net.udp(src, &second);
    assert_eq!(response(&r1[0]).status, 200);
    assert_eq!(r2.len(), 1);
    assert_eq!(r1[0].bytes, r2[0].bytes);
    assert_eq!(r1[0].to, r2[0].to);

    let s = net.engine.stats();
    assert_eq!(s.requests, 4);
    assert_eq!(s.registrations, 1, "the registrar ran once");
    // Not a replayed nc either: the verifier never saw the copy.
    assert_eq!(s.auth_challenges, 2);
}

#[test]
fn in_dialog_request_without_a_dialog_is_481() {
    let mut net = Net::new();
    let src = "192.168.4.43:5060";
    let bye = options(src, "bye1")
        .replace("OPTIONS sip:", "BYE sip:")
        .replace("1 OPTIONS", "1 BYE")
        .replace("To: <sip:192.168.4.4>", "To: <sip:192.168.4.4>;tag=gone");
    let r = net.ask(addr(src), &bye);
    assert_eq!(r.status, 481);
}
