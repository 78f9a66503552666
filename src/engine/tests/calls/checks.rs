//! What an INVITE is checked for before anything rings: RFC 3261 §16.3 step 3 (483 Too Many
//! Hops) and step 4 (482 Loop Detected), the `max_calls` bound (503 with Retry-After), and
//! the order "authenticate, then route" (an unauthenticated caller learns nothing about which
//! users exist: 407 first, 404 or 480 only after the credentials verify).

use super::*;

#[test]
fn rfc3261_16_3_max_forwards_zero_is_483() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let invite = bob
        .seed_invite("")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    let sent = net.send(BOB, &invite);
    assert_eq!(sent.ladder(), ["bob<-483 INVITE"]);
    assert_eq!(reason(&sent.response(BOB, 483)), "Too Many Hops");
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 483)));
    assert!(net.engine.poll_cdr().is_none(), "no call was set up");
    net.assert_drained();
}

#[test]
fn rfc3261_16_3_max_forwards_one_still_reaches_alice_with_zero() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let sent = net.send(BOB, &bob.seed_invite(""));
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    let invite = bob
        .seed_invite_authorized("")
        .replace("Max-Forwards: 70", "Max-Forwards: 1");
    bob.invite = invite.clone();
    let inv = net.send(BOB, &invite).request(ZOIPER, Method::Invite);
    assert_eq!(inv.headers.max_forwards(), Some(0));
    let sent = net.send(ZOIPER, &Ua::alice().respond(&inv, 486, &[], ""));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 486)));
    net.cdr();
    net.assert_drained();
}

#[test]
fn rfc3261_16_3_a_request_that_loops_back_to_us_is_482() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let inv = ring_alice(&mut net, &mut bob, "");
    // Our b-leg INVITE comes back to us (alice's contact pointed at the switch): its Via
    // carries our branch.
    let mut looped = inv.clone();
    looped.headers.push_front(
        HeaderName::Via,
        "SIP/2.0/UDP 192.168.4.4:5090;branch=z9hG4bK-loop-1;rport",
    );
    let sent = net.send(ZOIPER, &text(&looped));
    assert_eq!(sent.ladder(), ["alice<-482 INVITE"], "stateless: no 100");
    let r482 = sent.response(ZOIPER, 482);
    assert_eq!(reason(&r482), "Loop Detected");
    assert_eq!(net.engine.active_calls(), 1, "only bob's call");
    let sent = net.send(BOB, &bob.cancel());
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 487)));
    net.send(ZOIPER, &ack_of(&looped, &r482));
    // alice never answered: the INVITE is given up at Timer B.
    let sent = net.after(64 * T1);
    assert!(sent.responses(BOB).is_empty(), "{:?}", sent.ladder());
    assert_eq!(net.cdr().hangup_cause, "ORIGINATOR_CANCEL");
    net.assert_drained();
}

/// The ACK of a non-2xx response to `req`, with the To tag of the response we got.
fn ack_of(req: &Request, resp: &Response) -> String {
    text(&crate::sip::ack_for_non2xx(req, resp))
}

#[test]
fn max_calls_reached_is_503_with_retry_after() {
    let mut net = Net::calls_with(|c| c.calls.max_calls = 1);
    let mut bob = Caller::bob();
    let inv = ring_alice(&mut net, &mut bob, "");
    // A second caller (bob again, another Call-ID) while the first call rings.
    let mut bob2 = Caller::bob();
    bob2.ua = Ua::new("192.168.4.4:26002", "sip:bob@192.168.4.4:26002", "b2tag");
    bob2.ua.addr = addr(BOB);
    bob2.challenge = bob.challenge.clone();
    bob2.nc = bob.nc;
    let sent = net.send(BOB, &bob2.invite_to("alice", &[], ""));
    let r503 = sent.response(BOB, 503);
    assert_eq!(header(&r503, "Retry-After"), Some("5"));
    assert!(sent.requests(ZOIPER, Method::Invite).is_empty());
    net.send(BOB, &bob2.ack_non2xx(&r503));
    // The first call is unaffected.
    let sent = net.send(ZOIPER, &Ua::alice().respond(&inv, 486, &[], ""));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 486)));
    assert_eq!(net.cdr().sip_status, 486);
    net.assert_drained();
}

#[test]
fn unknown_user_is_407_before_auth_and_404_after() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let sent = net.send(BOB, &bob.invite_to("mallory", &[], ""));
    assert_eq!(sent.ladder(), ["bob<-407 INVITE"]);
    let r407 = sent.response(BOB, 407);
    // Same shape as the 407 for an existing user: nothing tells them apart.
    let mut other = Caller::bob();
    let known = net
        .send(BOB, &other.invite_to("alice", &[], ""))
        .response(BOB, 407);
    let names = |r: &Response| r.headers.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&r407), names(&known));
    net.send(BOB, &other.ack_non2xx(&known));
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    let sent = net.send(BOB, &bob.invite_to("mallory", &[], ""));
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "bob<-404 INVITE"]);
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 404)));
    // Disabled accounts are not callable either.
    let sent = net.send(BOB, &bob.invite_to("carol", &[], ""));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 404)));
    net.assert_drained();
}

#[test]
fn known_but_unregistered_user_is_480() {
    let mut net = Net::new();
    let mut bob = Caller::bob();
    let sent = authorized_invite(&mut net, &mut bob, "");
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "bob<-480 INVITE"]);
    let r = sent.response(BOB, 480);
    assert_eq!(reason(&r), "Temporarily Unavailable");
    net.send(BOB, &bob.ack_non2xx(&r));
    net.assert_drained();
}

#[test]
fn wrong_password_is_403_and_nothing_rings() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    bob.password = "4321".into();
    let sent = authorized_invite(&mut net, &mut bob, "");
    assert_eq!(sent.ladder(), ["bob<-403 INVITE"], "stateless, as the 407");
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 403)));
    net.assert_drained();
}

#[test]
fn rfc3261_16_3_a_foreign_branch_that_happens_to_look_like_ours_is_no_loop() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    // FreeSWITCH mints "z9hG4bK" + random alphanumerics: one in 3844 starts with "fs".
    let invite = bob.seed_invite("").replace(
        "z9hG4bK-d8754z-56adad736231f024-1---d8754z-",
        "z9hG4bKfsQ3yHZQXNNa",
    );
    bob.invite = invite.clone();
    let sent = net.send(BOB, &invite);
    assert_eq!(sent.ladder(), ["bob<-407 INVITE"]);
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 407)));
    // The same with a proxy's Via below the phone's (sent-by elsewhere, hex branch).
    let mut bob = Caller::bob();
    let invite = bob.seed_invite("").replace(
        "Max-Forwards: 70",
        "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKfs0123456789abcdef\r\nMax-Forwards: 70",
    );
    bob.invite = invite.clone();
    let sent = net.send(BOB, &invite);
    assert_eq!(sent.ladder(), ["bob<-407 INVITE"]);
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 407)));
    net.assert_drained();
}

#[test]
fn a_call_to_a_number_that_does_not_exist_leaves_a_cdr() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let r407 = net
        .send(BOB, &bob.invite_to("mallory", &[], ""))
        .response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    assert!(net.engine.poll_cdr().is_none(), "not authenticated: no CDR");
    let sent = net.send(BOB, &bob.invite_to("mallory", &[], ""));
    let r404 = sent.response(BOB, 404);
    net.send(BOB, &bob.ack_non2xx(&r404));
    let cdr = net.cdr();
    assert_eq!(
        (cdr.hangup_cause, cdr.hangup_cause_code, cdr.sip_status),
        ("UNALLOCATED_NUMBER", 1, 404)
    );
    assert_eq!(cdr.caller.user, "bob");
    assert_eq!(cdr.callee.user, "mallory");
    assert_eq!(cdr.b_leg_call_id, None);
    assert_eq!(cdr.answer_time, None);
    assert_eq!(cdr.billsec, 0);
    let bob_call_id = bob.invite_req().headers.call_id().unwrap().to_string();
    assert_eq!(cdr.a_leg_call_id, bob_call_id);
    net.assert_drained();
}

#[test]
fn a_call_to_an_unregistered_user_leaves_a_cdr() {
    let mut net = Net::new();
    let mut bob = Caller::bob();
    let sent = authorized_invite(&mut net, &mut bob, "");
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 480)));
    let cdr = net.cdr();
    assert_eq!(
        (cdr.hangup_cause, cdr.hangup_cause_code, cdr.sip_status),
        ("USER_NOT_REGISTERED", 606, 480)
    );
    assert_eq!(
        (cdr.caller.user.as_str(), cdr.callee.user.as_str()),
        ("bob", "alice")
    );
    assert_eq!(cdr.hangup_side, crate::cdr::Side::System);
    net.assert_drained();
}
