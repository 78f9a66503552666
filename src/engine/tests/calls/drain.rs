//! Draining a node behind a dispatcher (`Engine::drain`/`resume`, `ferroswitch ctl drain`)
//! and the SIGTERM drain with a timeout (`Engine::begin_shutdown_after`): OPTIONS to the
//! server turns 503 so the dispatcher's prober stops sending calls here, a new INVITE gets 503
//! with Retry-After, a call set up before goes on (re-INVITE, BYE) untouched, REGISTER is
//! still served, and `resume` undoes all of it. With a timeout, calls still up at the deadline
//! get the shutdown's BYE; calls that end earlier let the node stop at once.

use super::*;
use crate::cdr::Side;

/// An OPTIONS probe from the edge proxy: its status.
fn probe(net: &mut Net, branch: &str) -> u16 {
    let from = "192.168.4.200:5060";
    net.ask(addr(from), &options(from, branch)).status
}

/// A second call from bob (reusing the first one's nonce): what the engine sent.
fn second_call(net: &mut Net, bob: &Caller) -> (Caller, Sent) {
    let mut bob2 = Caller::bob();
    bob2.challenge = bob.challenge.clone();
    bob2.nc = bob.nc;
    // Same phone, same branch counter: skip past the branches bob's first call used, or a
    // new INVITE would look like a retransmission of its re-INVITE.
    for _ in 0..16 {
        bob2.ua.branch();
    }
    let sent = net.send(BOB, &bob2.invite_to("alice", &[], ""));
    (bob2, sent)
}

#[test]
fn drain_turns_options_503_and_refuses_new_calls_while_a_call_in_progress_goes_on() {
    let mut net = Net::calls();
    assert_eq!(probe(&mut net, "p1"), 200);
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);

    assert!(net.engine.drain());
    assert!(!net.engine.drain(), "a second drain changes nothing");
    assert!(net.engine.is_draining() && !net.engine.is_shutting_down());
    assert!(net.engine.snapshot().draining);
    assert!(net.drain().is_empty(), "draining sends nothing: no BYE");

    let from = "192.168.4.200:5060";
    let r = net.ask(addr(from), &options(from, "p2"));
    assert_eq!(r.status, 503);
    assert_eq!(header(&r, "Retry-After"), Some("30"));

    // A new call: 503 with Retry-After, nothing reaches alice.
    let (mut bob2, sent) = second_call(&mut net, &bob);
    let r503 = sent.response(BOB, 503);
    assert_eq!(header(&r503, "Retry-After"), Some("30"));
    assert!(sent.requests(ZOIPER, Method::Invite).is_empty());
    net.send(BOB, &bob2.ack_non2xx(&r503));
    assert_eq!(net.engine.active_calls(), 1, "only the call set up before");

    // REGISTER is still served.
    net.register_contact("alice", ALICE2, ALICE2_CONTACT);

    // The call in progress: a re-INVITE crosses, and bob hangs up normally.
    let hold = sdp("bob", 8000, "a=sendonly\r\n");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], &hold));
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    let reinv = sent.request(ZOIPER, Method::Invite);
    let sent = net.send(
        ZOIPER,
        &alice.respond(&reinv, 200, &[], &sdp("alice", 9000, "a=recvonly\r\n")),
    );
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-200 INVITE"]);
    let seq = a.cseq;
    net.send(
        BOB,
        &bob.ua.in_dialog(&mut a.clone(), "ACK", Some(seq), &[], ""),
    );
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "alice<-BYE"]);
    let bye = sent.request(ZOIPER, Method::Bye);
    net.send(ZOIPER, &alice.respond(&bye, 200, &[], ""));
    let cdr = net.cdr();
    assert_eq!(
        (cdr.hangup_cause, cdr.hangup_side),
        ("NORMAL_CLEARING", Side::Caller)
    );
    assert!(net.engine.is_draining(), "still draining with no call left");
    assert!(
        !net.engine.is_drained(),
        "a drain alone never stops the node"
    );

    // Resume: OPTIONS 200 and calls go through again.
    assert!(net.engine.resume());
    assert!(!net.engine.snapshot().draining);
    assert_eq!(probe(&mut net, "p3"), 200);
    let sent = net.send(BOB, &bob2.invite_to("alice", &[], ""));
    assert_eq!(
        sent.ladder(),
        ["bob<-100 INVITE", "alice<-INVITE", "alice2<-INVITE"],
        "both of alice's phones ring (the second registered while draining)"
    );
}

#[test]
fn an_options_inside_a_call_is_answered_200_while_draining() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    net.engine.drain();
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "OPTIONS", None, &[], ""));
    assert!(
        sent.responses(BOB).iter().all(|r| r.status != 503),
        "{:?}",
        sent.ladder()
    );
}

#[test]
fn sigterm_drain_lets_calls_run_until_the_timeout_then_byes_them() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (_a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);

    let (now, wall) = (net.now, net.wall());
    net.engine
        .begin_shutdown_after(now, wall, Duration::from_secs(20));
    assert!(net.engine.is_shutting_down() && net.engine.is_draining());
    assert!(!net.engine.resume(), "no resume once stopping");
    assert!(net.drain().is_empty(), "the call goes on");
    assert_eq!(probe(&mut net, "t1"), 503);
    let (bob2, sent) = second_call(&mut net, &bob);
    net.send(BOB, &bob2.ack_non2xx(&sent.response(BOB, 503)));

    // Nothing until the deadline; then BYE on both legs with the shutdown's Reason.
    let sent = net.after(Duration::from_millis(19_900));
    assert!(
        sent.requests(BOB, Method::Bye).is_empty(),
        "{:?}",
        sent.ladder()
    );
    assert!(!net.engine.is_drained());
    let sent = net.after(Duration::from_millis(100));
    let bye_a = sent.request(BOB, Method::Bye);
    let bye_b = sent.request(ZOIPER, Method::Bye);
    for bye in [&bye_a, &bye_b] {
        assert_eq!(
            req_header(bye, "Reason"),
            Some("Q.850;cause=16;text=\"NORMAL_CLEARING\"")
        );
    }
    let cdr = net.cdr();
    assert_eq!(cdr.hangup_side, Side::System);
    net.send(ZOIPER, &alice.respond(&bye_b, 200, &[], ""));
    net.send(BOB, &bob.ua.respond(&bye_a, 200, &[], ""));
    assert!(net.engine.is_drained());
    net.assert_drained();
}

#[test]
fn sigterm_drain_stops_as_soon_as_the_last_call_ends_by_itself() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (_a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let (now, wall) = (net.now, net.wall());
    net.engine
        .begin_shutdown_after(now, wall, Duration::from_secs(600));
    net.after(Duration::from_secs(5));
    assert!(!net.engine.is_drained());

    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-200 BYE", "bob<-BYE"]);
    let bye = sent.request(BOB, Method::Bye);
    assert!(!net.engine.is_drained(), "bob's BYE is not answered yet");
    net.send(BOB, &bob.ua.respond(&bye, 200, &[], ""));
    assert!(net.engine.is_drained(), "stopped long before the timeout");
    assert_eq!(net.cdr().hangup_side, Side::Callee);
    net.assert_drained();
}

#[test]
fn sigterm_with_no_drain_timeout_hangs_up_at_once() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    connect(&mut net, &mut bob, &mut alice);
    let (now, wall) = (net.now, net.wall());
    net.engine.begin_shutdown_after(now, wall, Duration::ZERO);
    let sent = Sent::from(net.drain());
    sent.request(BOB, Method::Bye);
    sent.request(ZOIPER, Method::Bye);
}
