//! What a new INVITE or MESSAGE must get past before anything is routed: the 407 sent
//! statelessly (one datagram in, at most one out: no UDP reflection, RFC 3261 §17.2.1's
//! retransmissions are for requests we keep state for), `auth_calls` honoured by MESSAGE as
//! by INVITE, and the per-user (486) and per-source (503) bounds.

use super::*;

/// The ACK of a non-2xx response to the request in `msg`.
fn ack_for(msg: &str, resp: &Response) -> String {
    let req = match parse_datagram(msg.as_bytes()).expect("parses") {
        Message::Request(r) => r,
        _ => unreachable!("a request"),
    };
    text(&crate::sip::ack_for_non2xx(&req, resp))
}

#[test]
fn rfc3261_17_2_1_an_unauthenticated_invite_gets_one_stateless_407_and_nothing_more() {
    let mut net = Net::calls();
    // Let the REGISTER transactions of the set-up finish first.
    net.after(Duration::from_secs(40));
    assert_eq!(net.engine.transactions().len(), 0);
    let mut bob = Caller::bob();
    let invite = bob.invite_to("alice", &[], &sdp("bob", 8000, ""));
    let out = net.udp(addr(BOB), &invite);
    assert_eq!(out.len(), 1, "one datagram in, one out: {out:?}");
    assert!(out[0].bytes.len() < 2 * invite.len(), "no amplification");
    let r407 = response(&out[0]);
    assert_eq!(r407.status, 407);
    let tag = r407.headers.to_tag().expect("a To tag");
    assert_eq!(net.engine.transactions().len(), 0, "no state kept");
    // Never ACKed: nothing is retransmitted (it used to be 11 more datagrams over 32 s).
    let late = net.after(Duration::from_secs(40));
    assert!(late.is_empty(), "{:?}", late.ladder());
    // The phone's retransmission gets the same 407 again, To tag included.
    let again = net.udp(addr(BOB), &invite);
    assert_eq!(again.len(), 1);
    let r407b = response(&again[0]);
    assert_eq!(r407b.status, 407);
    assert_eq!(r407b.headers.to_tag(), Some(tag));
    // Its ACK matches nothing, is answered by nothing and leaves nothing behind.
    assert!(net.send(BOB, &bob.ack_non2xx(&r407b)).is_empty());
    assert_eq!(net.engine.transactions().len(), 0);
    // The authenticated INVITE that follows works as before.
    bob.learn(&r407b);
    let sent = net.send(BOB, &bob.invite_to("alice", &[], &sdp("bob", 8000, "")));
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    let inv = sent.request(ZOIPER, Method::Invite);
    let sent = net.send(ZOIPER, &Ua::alice().respond(&inv, 486, &[], ""));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 486)));
    assert_eq!(net.cdr().sip_status, 486);
    net.assert_drained();
}

#[test]
fn forged_credentials_get_one_stateless_403_and_nothing_more() {
    let mut net = Net::calls();
    net.after(Duration::from_secs(40));
    let mut bob = Caller::bob();
    let r407 = response(&net.udp(addr(BOB), &bob.invite_to("alice", &[], ""))[0]);
    bob.learn(&r407);
    bob.password = "guess".into();
    let invite = bob.invite_to("alice", &[], "");
    let out = net.udp(addr(BOB), &invite);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(response(&out[0]).status, 403);
    assert_eq!(net.engine.transactions().len(), 0, "no state kept");
    let late = net.after(Duration::from_secs(40));
    assert!(late.is_empty(), "no retransmitted 403: {:?}", late.ladder());
    // Credentials for another realm are no credentials: the 407 again, once.
    let other = invite.replace("realm=\"192.168.4.4\"", "realm=\"elsewhere\"");
    assert_ne!(other, invite);
    let out = net.udp(addr(BOB), &other);
    assert_eq!(out.len(), 1);
    assert_eq!(response(&out[0]).status, 407);
    assert!(net.after(Duration::from_secs(40)).is_empty());
}

#[test]
fn an_unauthenticated_message_gets_one_stateless_407() {
    let mut net = Net::calls();
    net.after(Duration::from_secs(40));
    let mut bob = Caller::bob();
    let msg = bob.message_to("alice", "hi");
    let out = net.udp(addr(BOB), &msg);
    assert_eq!(out.len(), 1);
    assert_eq!(response(&out[0]).status, 407);
    assert!(net.after(Duration::from_secs(40)).is_empty());
    assert_eq!(net.engine.transactions().len(), 0);
}

#[test]
fn auth_calls_false_lets_message_through_as_it_does_invite() {
    let mut net = Net::calls_with(|c| c.calls.auth_calls = false);
    let mut bob = Caller::bob();
    let sent = net.send(BOB, &bob.message_to("alice", "hi alice"));
    assert_eq!(sent.ladder(), ["alice<-MESSAGE"], "not challenged");
    let m = sent.request(ZOIPER, Method::Message);
    assert_eq!(&m.body[..], b"hi alice");
    assert_eq!(
        req_header(&m, "P-Asserted-Identity"),
        None,
        "an unauthenticated sender is not asserted"
    );
    let sent = net.send(ZOIPER, &Ua::alice().respond(&m, 200, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 MESSAGE"]);
    // And INVITE, as before.
    let sent = net.send(BOB, &bob.invite_to("alice", &[], ""));
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    let inv = sent.request(ZOIPER, Method::Invite);
    let sent = net.send(ZOIPER, &Ua::alice().respond(&inv, 486, &[], ""));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 486)));
    net.cdr();
    net.assert_drained();
}

/// A caller that has already learnt the challenge (one 407 round trip).
fn authenticated(net: &mut Net, mut c: Caller) -> Caller {
    let msg = c.invite_to("alice", &[], "");
    let r407 = response(&net.udp(c.ua.addr, &msg)[0]);
    c.learn(&r407);
    net.udp(c.ua.addr, &ack_for(&msg, &r407));
    c
}

/// Rings alice from `c`: the b-leg INVITE and the a-leg INVITE's text.
fn ring(net: &mut Net, c: &mut Caller) -> (Request, String) {
    let msg = c.invite_to("alice", &[], "");
    let sent = net.send(&c.ua.addr.to_string(), &msg);
    assert_eq!(
        sent.ladder()[1..],
        ["alice<-INVITE"],
        "rings: {:?}",
        sent.ladder()
    );
    (sent.request(ZOIPER, Method::Invite), msg)
}

/// alice refuses each ringing b-leg with 486; each caller ACKs.
fn end_all(net: &mut Net, rung: Vec<(Request, String, SocketAddr)>) {
    for (inv, msg, from) in rung {
        let sent = net.send(ZOIPER, &Ua::alice().respond(&inv, 486, &[], ""));
        let r = sent.response(&from.to_string(), 486);
        net.send(&from.to_string(), &ack_for(&msg, &r));
        assert_eq!(net.engine.poll_cdr().map(|c| c.sip_status), Some(486));
    }
}

#[test]
fn max_calls_per_user_the_next_call_is_486_and_other_users_still_get_through() {
    let mut net = Net::calls_with(|c| {
        c.calls.max_calls_per_user = 2;
        c.calls.max_calls_per_source = 0;
    });
    net.register_contact("bob", "192.168.4.7:5060", "sip:bob@192.168.4.7:5060");
    let mut bob = authenticated(&mut net, Caller::bob());
    // From two addresses: the count is per user, not per address.
    let mut bob2 = authenticated(&mut net, Caller::as_user("bob", "192.168.4.5:5062"));
    let (i1, m1) = ring(&mut net, &mut bob);
    let (i2, m2) = ring(&mut net, &mut bob2);
    let over = bob.invite_to("alice", &[], "");
    let sent = net.send(BOB, &over);
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "bob<-486 INVITE"]);
    let r486 = sent.response(BOB, 486);
    assert_eq!(reason(&r486), "Busy Here");
    net.send(BOB, &ack_for(&over, &r486));
    assert!(
        net.engine.poll_cdr().is_none(),
        "a refused flood writes no CDRs"
    );
    // Another user is not affected.
    let mut alice = authenticated(&mut net, Caller::as_user("alice", "192.168.4.6:5064"));
    let msg = alice.invite_to("bob", &[], "");
    let sent = net.send("192.168.4.6:5064", &msg);
    assert_eq!(sent.ladder(), ["other<-100 INVITE", "other<-INVITE"]);
    let to_bob = sent.request("192.168.4.7:5060", Method::Invite);
    let bob_phone = Ua::new("192.168.4.7:5060", "sip:bob@192.168.4.7:5060", "bobtag");
    let sent = net.send(
        "192.168.4.7:5060",
        &bob_phone.respond(&to_bob, 486, &[], ""),
    );
    net.send(
        "192.168.4.6:5064",
        &ack_for(&msg, &sent.response("192.168.4.6:5064", 486)),
    );
    net.cdr();
    // A call that ends gives its place back.
    end_all(&mut net, vec![(i1, m1, addr(BOB))]);
    let (i3, m3) = ring(&mut net, &mut bob);
    end_all(
        &mut net,
        vec![(i2, m2, addr("192.168.4.5:5062")), (i3, m3, addr(BOB))],
    );
    net.assert_drained();
}

#[test]
fn max_calls_per_source_the_next_call_is_503_with_retry_after() {
    let mut net = Net::calls_with(|c| {
        c.calls.max_calls_per_user = 0;
        c.calls.max_calls_per_source = 2;
    });
    let mut bob = authenticated(&mut net, Caller::bob());
    let (i1, m1) = ring(&mut net, &mut bob);
    let (i2, m2) = ring(&mut net, &mut bob);
    let over = bob.invite_to("alice", &[], "");
    let sent = net.send(BOB, &over);
    let r503 = sent.response(BOB, 503);
    assert_eq!(header(&r503, "Retry-After"), Some("5"));
    assert!(sent.requests(ZOIPER, Method::Invite).is_empty());
    net.send(BOB, &ack_for(&over, &r503));
    end_all(&mut net, vec![(i1, m1, addr(BOB)), (i2, m2, addr(BOB))]);
    net.assert_drained();
}

#[test]
fn max_calls_per_source_spares_allow_listed_addresses() {
    let mut net = Net::calls_with(|c| {
        c.calls.max_calls_per_user = 0;
        c.calls.max_calls_per_source = 1;
        c.security.allow = vec!["192.168.4.0/24".parse().expect("a network")];
    });
    let mut bob = authenticated(&mut net, Caller::bob());
    let (i1, m1) = ring(&mut net, &mut bob);
    let (i2, m2) = ring(&mut net, &mut bob);
    end_all(&mut net, vec![(i1, m1, addr(BOB)), (i2, m2, addr(BOB))]);
    net.assert_drained();
}

#[test]
fn max_calls_per_user_bounds_pending_messages_too() {
    let mut net = Net::calls_with(|c| {
        c.calls.max_calls_per_user = 1;
        c.calls.max_calls_per_source = 0;
    });
    let mut bob = authenticated(&mut net, Caller::bob());
    let sent = net.send(BOB, &bob.message_to("alice", "one"));
    let m1 = sent.request(ZOIPER, Method::Message);
    let sent = net.send(BOB, &bob.message_to("alice", "two"));
    assert_eq!(sent.ladder(), ["bob<-486 MESSAGE"]);
    // Answered: the next one goes through.
    net.send(ZOIPER, &Ua::alice().respond(&m1, 200, &[], ""));
    let sent = net.send(BOB, &bob.message_to("alice", "three"));
    assert_eq!(sent.ladder(), ["alice<-MESSAGE"]);
}

#[test]
fn issue_17_3_a_call_to_a_host_we_do_not_serve_is_refused_before_authentication() {
    // No `domain` configured: only our own hosts are served, for calls as for REGISTER.
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let challenges = net.engine.stats().auth_challenges;
    let invite = bob.invite_to("alice", &[], "").replace(
        "INVITE sip:alice@192.168.4.4",
        "INVITE sip:alice@evil.example",
    );
    let out = net.udp(addr(BOB), &invite);
    assert_eq!(out.len(), 1);
    let r = response(&out[0]);
    assert_eq!(r.status, 403);
    assert_eq!(&r.reason[..], b"Forbidden - Domain Not Served");
    assert_eq!(
        net.engine.stats().auth_challenges,
        challenges,
        "no digest work"
    );
    // Our own address in another spelling is ours: challenged as usual.
    let invite = bob.invite_to("alice", &[], "").replace(
        "INVITE sip:alice@192.168.4.4",
        "INVITE sip:alice@[::ffff:192.168.4.4]",
    );
    assert_eq!(response(&net.udp(addr(BOB), &invite)[0]).status, 407);
}

#[test]
fn a_retransmitted_invite_after_its_2xx_is_absorbed_not_challenged_again() {
    // Under loss a phone retransmits its authenticated INVITE after we answered 200 (the
    // 200 was lost). The transaction (Accepted, RFC 6026) holds it: no stale 407 for a
    // reused nonce count, which made SIPp abort the call while the switch kept it up.
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let r407 = response(&net.udp(addr(BOB), &bob.invite_to("alice", &[], ""))[0]);
    bob.learn(&r407);
    let invite = bob.invite_to("alice", &[], &sdp("bob", 8000, ""));
    let inv = net.send(BOB, &invite).request(ZOIPER, Method::Invite);
    let sent = net.send(
        ZOIPER,
        &Ua::alice().respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    sent.response(BOB, 200);
    let again = net.udp(addr(BOB), &invite);
    assert!(
        again.iter().all(|t| response(t).status == 200),
        "only the 200 may be repeated: {again:?}"
    );
    assert_eq!(net.engine.active_calls(), 1);
}
