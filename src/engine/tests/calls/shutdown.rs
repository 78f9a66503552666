//! Graceful shutdown (`Engine::begin_shutdown`, SIGTERM in the daemon): a connected call gets
//! BYE on both legs with the Q.850 Reason and a NORMAL_CLEARING CDR, a ringing call is
//! cancelled with 503 + Retry-After to the caller, a new INVITE gets 503, and `is_drained`
//! turns true only once the BYEs are answered.

use super::*;
use crate::cdr::Side;

#[test]
fn shutdown_byes_both_legs_of_a_connected_call_and_refuses_new_invites() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (_a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    assert!(!net.engine.is_shutting_down());

    let (now, wall) = (net.now, net.wall());
    net.engine.begin_shutdown(now, wall);
    let sent = Sent::from(net.drain());
    let bye_b = sent.request(ZOIPER, Method::Bye);
    let bye_a = sent.request(BOB, Method::Bye);
    for bye in [&bye_a, &bye_b] {
        assert_eq!(
            req_header(bye, "Reason"),
            Some("Q.850;cause=16;text=\"NORMAL_CLEARING\"")
        );
    }
    let cdr = net.cdr();
    assert_eq!(
        (cdr.hangup_cause, cdr.hangup_cause_code),
        ("NORMAL_CLEARING", 16)
    );
    assert_eq!(cdr.hangup_side, Side::System);
    assert!(!net.engine.is_drained(), "the BYEs are not answered yet");

    // A new call while draining: 503 with Retry-After, nothing goes to alice.
    let mut bob2 = Caller::bob();
    bob2.challenge = bob.challenge.clone();
    bob2.nc = bob.nc;
    let sent = net.send(BOB, &bob2.invite_to("alice", &[], ""));
    let r503 = sent.response(BOB, 503);
    assert_eq!(header(&r503, "Retry-After"), Some("30"));
    assert!(sent.requests(ZOIPER, Method::Invite).is_empty());
    net.send(BOB, &bob2.ack_non2xx(&r503));

    // Both phones answer their BYE: drained.
    net.send(ZOIPER, &alice.respond(&bye_b, 200, &[], ""));
    assert!(!net.engine.is_drained());
    net.send(BOB, &bob.ua.respond(&bye_a, 200, &[], ""));
    assert!(net.engine.is_drained());
    assert_eq!(
        net.engine.shutdown_grace(),
        Duration::from_secs(5).min(64 * T1)
    );
    net.assert_drained();
}

#[test]
fn shutdown_cancels_a_ringing_call_with_503_to_the_caller() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));

    let (now, wall) = (net.now, net.wall());
    net.engine.begin_shutdown(now, wall);
    let sent = Sent::from(net.drain());
    assert_eq!(sent.ladder(), ["bob<-503 INVITE", "alice<-CANCEL"]);
    let r503 = sent.response(BOB, 503);
    assert_eq!(header(&r503, "Retry-After"), Some("30"));
    net.send(BOB, &bob.ack_non2xx(&r503));
    assert!(!net.engine.is_drained(), "the CANCEL is not answered yet");
    let cancel = sent.request(ZOIPER, Method::Cancel);
    net.send(ZOIPER, &alice.respond(&cancel, 200, &[], ""));
    net.send(ZOIPER, &alice.respond(&inv, 487, &[], ""));
    assert!(net.engine.is_drained());
    let cdr = net.cdr();
    assert_eq!((cdr.sip_status, cdr.hangup_side), (503, Side::System));
    net.assert_drained();
}
