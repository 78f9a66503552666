//! Every other way a call ends before or at the answer: the caller's CANCEL (RFC 3665 §3.8),
//! the callee's refusals (§3.3 busy, 603, 480, 404), no answer within `call_timeout`, an
//! unreachable callee (Timer B), parallel forking (RFC 3261 §16.7: first 2xx wins, best
//! failure) and a late offer (§13.2.1: the offer in the 2xx, the answer in the ACK).

use super::*;
use crate::cdr::Side;

/// alice answers the CANCEL the engine sent for `inv`: 200 to it, 487 to the INVITE; the
/// transaction ACKs the 487 itself.
fn alice_accepts_cancel(net: &mut Net, alice: &Ua, at: &str, inv: &Request, cancel: &Request) {
    assert_eq!(
        cancel.headers.top_via(),
        inv.headers.top_via(),
        "§9.1: same branch"
    );
    assert_eq!(
        cancel.headers.cseq().map(|c| c.seq),
        inv.headers.cseq().map(|c| c.seq)
    );
    assert!(net
        .send(at, &alice.respond(cancel, 200, &[], ""))
        .is_empty());
    let sent = net.send(at, &alice.respond(inv, 487, &[], ""));
    assert_eq!(sent.ladder(), [format!("{}<-ACK", name_of(addr(at)))]);
}

#[test]
fn rfc3665_3_8_caller_cancels_while_ringing() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));
    net.advance(Duration::from_secs(4));

    let sent = net.send(BOB, &bob.cancel());
    assert_eq!(
        sent.ladder(),
        ["bob<-200 CANCEL", "bob<-487 INVITE", "alice<-CANCEL"]
    );
    let r487 = sent.response(BOB, 487);
    // bob's ACK for the 487 is absorbed by the transaction.
    assert!(net.send(BOB, &bob.ack_non2xx(&r487)).is_empty());
    let cancel = sent.request(ZOIPER, Method::Cancel);
    alice_accepts_cancel(&mut net, &alice, ZOIPER, &inv, &cancel);

    let cdr = net.cdr();
    assert_eq!(
        (cdr.hangup_cause, cdr.hangup_cause_code),
        ("ORIGINATOR_CANCEL", 487)
    );
    assert_eq!((cdr.sip_status, cdr.hangup_side), (487, Side::Caller));
    assert_eq!((cdr.duration, cdr.billsec, cdr.answer_time), (4, 0, None));
    assert_eq!(cdr.b_leg_call_id.as_deref(), inv.headers.call_id());
    net.assert_drained();
}

#[test]
fn rfc3261_9_1_cancel_before_any_provisional_waits_for_one() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    let sent = net.send(BOB, &bob.cancel());
    assert_eq!(sent.ladder(), ["bob<-200 CANCEL", "bob<-487 INVITE"]);
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 487)));
    // "the client MUST NOT send a CANCEL until it receives a provisional response".
    let sent = net.send(ZOIPER, &alice.respond(&inv, 100, &[], ""));
    let cancel = sent.request(ZOIPER, Method::Cancel);
    alice_accepts_cancel(&mut net, &alice, ZOIPER, &inv, &cancel);
    assert_eq!(net.cdr().hangup_cause, "ORIGINATOR_CANCEL");
    net.assert_drained();
}

#[test]
fn rfc3665_3_3_and_3_5_callee_refusals_are_relayed() {
    for (status, cause, code) in [
        (486, "USER_BUSY", 17),
        (603, "CALL_REJECTED", 21),
        (480, "NO_USER_RESPONSE", 18),
        (404, "UNALLOCATED_NUMBER", 1),
    ] {
        let mut net = Net::calls();
        let (mut bob, alice) = (Caller::bob(), Ua::alice());
        let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
        net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));
        let sent = net.send(ZOIPER, &alice.respond(&inv, status, &[], ""));
        assert_eq!(
            sent.ladder(),
            ["alice<-ACK", &format!("bob<-{status} INVITE")],
            "{status}"
        );
        let ack = sent.request(ZOIPER, Method::Ack);
        assert_eq!(
            ack.headers.top_via(),
            inv.headers.top_via(),
            "non-2xx ACK: same branch"
        );
        let r = sent.response(BOB, status);
        assert!(r.headers.to_tag().is_some());
        assert_eq!(r.headers.call_id(), bob.invite_req().headers.call_id());
        assert!(net.send(BOB, &bob.ack_non2xx(&r)).is_empty());
        let cdr = net.cdr();
        assert_eq!(
            (cdr.hangup_cause, cdr.hangup_cause_code),
            (cause, code),
            "{status}"
        );
        assert_eq!((cdr.sip_status, cdr.hangup_side), (status, Side::Callee));
        net.assert_drained();
    }
}

#[test]
fn no_answer_within_call_timeout_is_480_and_cancel() {
    let mut net = Net::calls_with(|c| c.calls.call_timeout = Duration::from_secs(20));
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));
    let sent = net.after(Duration::from_millis(19_999));
    assert!(sent.is_empty(), "{:?}", sent.ladder());
    let sent = net.after(Duration::from_millis(1));
    assert_eq!(sent.ladder(), ["bob<-480 INVITE", "alice<-CANCEL"]);
    let r480 = sent.response(BOB, 480);
    net.send(BOB, &bob.ack_non2xx(&r480));
    let cancel = sent.request(ZOIPER, Method::Cancel);
    alice_accepts_cancel(&mut net, &alice, ZOIPER, &inv, &cancel);
    let cdr = net.cdr();
    assert_eq!((cdr.hangup_cause, cdr.hangup_cause_code), ("NO_ANSWER", 19));
    assert_eq!((cdr.sip_status, cdr.hangup_side), (480, Side::System));
    assert_eq!(cdr.duration, 20);
    net.assert_drained();
}

#[test]
fn rfc3261_17_1_1_2_timer_b_on_the_b_leg_is_408_to_the_caller() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    // alice is gone: the INVITE is resent at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (Timer A),
    // then Timer B (64·T1 = 32 s) gives up.
    let start = net.now;
    let mut resent = Vec::new();
    let r408 = loop {
        let deadline = net.engine.poll_timeout().expect("a timer");
        assert!(deadline - start <= 64 * T1, "Timer B by 32 s");
        let sent = Sent::from(net.run_until(deadline));
        for r in sent.requests(ZOIPER, Method::Invite) {
            assert_eq!(r, inv);
            resent.push((net.now - start).as_millis());
        }
        if let Some(r) = sent.responses(BOB).into_iter().find(|r| r.status >= 200) {
            break r;
        }
    };
    assert_eq!(resent, [500, 1500, 3500, 7500, 15_500, 31_500]);
    assert_eq!(net.now - start, 64 * T1);
    assert_eq!(r408.status, 408);
    net.send(BOB, &bob.ack_non2xx(&r408));
    let cdr = net.cdr();
    assert_eq!(
        (cdr.sip_status, cdr.hangup_cause),
        (408, "RECOVERY_ON_TIMER_EXPIRE")
    );
    net.assert_drained();
}

#[test]
fn rfc3261_16_7_parallel_contacts_first_2xx_wins_the_other_is_cancelled() {
    let mut net = Net::calls();
    net.register_contact("alice", ALICE2, ALICE2_CONTACT);
    let (mut bob, alice, alice2) = (
        Caller::bob(),
        Ua::alice(),
        Ua::new(ALICE2, ALICE2_CONTACT, "a2tag"),
    );
    let offer = sdp("bob", 8000, "");
    let sent = authorized_invite(&mut net, &mut bob, &offer);
    let inv1 = sent.request(ZOIPER, Method::Invite);
    let inv2 = sent.request(ALICE2, Method::Invite);
    assert_ne!(
        inv1.headers.call_id(),
        inv2.headers.call_id(),
        "one b-leg each"
    );
    assert_eq!(&inv2.body[..], offer.as_bytes());
    assert_eq!(inv2.uri_str(), Some(ALICE2_CONTACT));
    net.send(ZOIPER, &alice.respond(&inv1, 180, &[], ""));
    net.send(ALICE2, &alice2.respond(&inv2, 180, &[], ""));

    let sent = net.send(
        ALICE2,
        &alice2.respond(&inv2, 200, &[], &sdp("alice2", 9002, "")),
    );
    let mut ladder = sent.ladder();
    ladder.sort();
    assert_eq!(ladder, ["alice2<-ACK", "alice<-CANCEL", "bob<-200 INVITE"]);
    let ok = sent.response(BOB, 200);
    let cancel = sent.request(ZOIPER, Method::Cancel);
    alice_accepts_cancel(&mut net, &alice, ZOIPER, &inv1, &cancel);
    let mut a = bob.dialog(&ok);
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    assert_eq!(net.engine.call_table_sizes().0, 1);

    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "alice2<-BYE"]);
    net.send(
        ALICE2,
        &alice2.respond(&sent.request(ALICE2, Method::Bye), 200, &[], ""),
    );
    let cdr = net.cdr();
    assert_eq!(
        cdr.b_leg_call_id.as_deref(),
        inv2.headers.call_id(),
        "the winner's"
    );
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING");
    net.assert_drained();
}

#[test]
fn rfc3261_16_7_two_failures_the_best_is_relayed_486_over_480() {
    let mut net = Net::calls();
    net.register_contact("alice", ALICE2, ALICE2_CONTACT);
    let (mut bob, alice, alice2) = (
        Caller::bob(),
        Ua::alice(),
        Ua::new(ALICE2, ALICE2_CONTACT, "a2tag"),
    );
    let sent = authorized_invite(&mut net, &mut bob, "");
    let inv1 = sent.request(ZOIPER, Method::Invite);
    let inv2 = sent.request(ALICE2, Method::Invite);
    let sent = net.send(ZOIPER, &alice.respond(&inv1, 480, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-ACK"], "wait for the other fork");
    let sent = net.send(ALICE2, &alice2.respond(&inv2, 486, &[], ""));
    assert_eq!(sent.ladder(), ["alice2<-ACK", "bob<-486 INVITE"]);
    let r = sent.response(BOB, 486);
    net.send(BOB, &bob.ack_non2xx(&r));
    let cdr = net.cdr();
    assert_eq!((cdr.sip_status, cdr.hangup_cause), (486, "USER_BUSY"));
    net.assert_drained();
}

#[test]
fn rfc3261_13_2_2_4_a_losing_fork_that_answers_too_is_acked_and_hung_up() {
    let mut net = Net::calls();
    net.register_contact("alice", ALICE2, ALICE2_CONTACT);
    let (mut bob, alice, alice2) = (
        Caller::bob(),
        Ua::alice(),
        Ua::new(ALICE2, ALICE2_CONTACT, "a2tag"),
    );
    let sent = authorized_invite(&mut net, &mut bob, &sdp("bob", 8000, ""));
    let inv1 = sent.request(ZOIPER, Method::Invite);
    let inv2 = sent.request(ALICE2, Method::Invite);
    net.send(ZOIPER, &alice.respond(&inv1, 180, &[], ""));
    let sent = net.send(
        ALICE2,
        &alice2.respond(&inv2, 200, &[], &sdp("alice2", 9002, "")),
    );
    let cancel = sent.request(ZOIPER, Method::Cancel);
    let ok = sent.response(BOB, 200);
    let a = bob.dialog(&ok);
    net.send(BOB, &bob.ack(&a, ""));

    // alice had answered before the CANCEL reached her: 200 to the INVITE, then the
    // CANCEL matches nothing finished (200 too, §9.2 lets either happen).
    let sent = net.send(
        ZOIPER,
        &alice.respond(&inv1, 200, &[], &sdp("alice", 9000, "")),
    );
    let mut ladder = sent.ladder();
    ladder.sort();
    assert_eq!(ladder, ["alice<-ACK", "alice<-BYE"]);
    let bye = sent.request(ZOIPER, Method::Bye);
    assert_eq!(bye.headers.call_id(), inv1.headers.call_id());
    assert_eq!(bye.headers.to_tag().as_deref(), Some("3813e926"));
    assert!(
        sent.responses(BOB).is_empty(),
        "bob keeps his call with alice2"
    );
    net.send(ZOIPER, &alice.respond(&cancel, 200, &[], ""));
    assert!(net
        .send(ZOIPER, &alice.respond(&bye, 200, &[], ""))
        .is_empty());
    assert_eq!(net.engine.active_calls(), 1);

    // alice2 hangs up; the call ends normally.
    let mut b2 = alice2.uas_dialog(&inv2);
    let mut alice2 = alice2;
    let sent = net.send(ALICE2, &alice2.in_dialog(&mut b2, "BYE", None, &[], ""));
    net.send(
        BOB,
        &bob.ua
            .respond(&sent.request(BOB, Method::Bye), 200, &[], ""),
    );
    assert_eq!(net.cdr().hangup_side, Side::Callee);
    net.assert_drained();
}

#[test]
fn rfc3261_13_2_1_late_offer_offer_in_200_answer_in_ack() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, "");
    assert!(inv.body.is_empty(), "no offer in the b-leg INVITE either");
    let offer = sdp("alice", 9000, "");
    let sent = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &offer));
    assert_eq!(
        sent.ladder(),
        ["bob<-200 INVITE"],
        "the ACK waits for bob's answer"
    );
    let ok = sent.response(BOB, 200);
    assert_eq!(&ok.body[..], offer.as_bytes());

    // alice retransmits her 200 meanwhile: still no ACK without the answer.
    let sent = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &offer));
    assert!(
        sent.requests(ZOIPER, Method::Ack).is_empty(),
        "{:?}",
        sent.ladder()
    );

    let answer = sdp("bob", 8000, "");
    let a = bob.dialog(&ok);
    let sent = net.send(BOB, &bob.ack(&a, &answer));
    assert_eq!(sent.ladder(), ["alice<-ACK"]);
    let ack = sent.request(ZOIPER, Method::Ack);
    assert_eq!(&ack.body[..], answer.as_bytes());
    assert_eq!(req_header(&ack, "Content-Type"), Some("application/sdp"));
    // A retransmitted 200 now gets the same ACK, answer included.
    let sent = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &offer));
    assert_eq!(sent.request(ZOIPER, Method::Ack), ack);

    let mut b = alice.uas_dialog(&inv);
    let mut alice = alice;
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    net.send(
        BOB,
        &bob.ua
            .respond(&sent.request(BOB, Method::Bye), 200, &[], ""),
    );
    net.cdr();
    net.assert_drained();
}

#[test]
fn rfc3665_3_8_cancel_reaches_every_ringing_contact() {
    let mut net = Net::calls();
    net.register_contact("alice", ALICE2, ALICE2_CONTACT);
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let alice2 = Ua::new(ALICE2, ALICE2_CONTACT, "a2tag");
    let sent = authorized_invite(&mut net, &mut bob, &sdp("bob", 8000, ""));
    let inv1 = sent.request(ZOIPER, Method::Invite);
    let inv2 = sent.request(ALICE2, Method::Invite);
    net.send(ZOIPER, &alice.respond(&inv1, 180, &[], ""));
    net.send(ALICE2, &alice2.respond(&inv2, 180, &[], ""));
    let sent = net.send(BOB, &bob.cancel());
    let mut ladder = sent.ladder();
    ladder.sort();
    assert_eq!(
        ladder,
        [
            "alice2<-CANCEL",
            "alice<-CANCEL",
            "bob<-200 CANCEL",
            "bob<-487 INVITE"
        ]
    );
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 487)));
    let c1 = sent.request(ZOIPER, Method::Cancel);
    // The CDR is written when the call ends for the caller, not when the last contact
    // settles (a crash in between loses nothing).
    assert_eq!(net.cdr().hangup_cause, "ORIGINATOR_CANCEL");
    alice_accepts_cancel(&mut net, &alice, ZOIPER, &inv1, &c1);
    assert_ne!(
        net.engine.call_table_sizes().0,
        0,
        "alice2 has not answered the CANCEL yet"
    );
    let c2 = sent.request(ALICE2, Method::Cancel);
    alice_accepts_cancel(&mut net, &alice2, ALICE2, &inv2, &c2);
    net.assert_drained();
}

#[test]
fn rfc3261_9_1_the_callee_answers_as_the_cancel_crosses_it() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));
    let sent = net.send(BOB, &bob.cancel());
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 487)));
    let cancel = sent.request(ZOIPER, Method::Cancel);
    // alice's 200 crossed our CANCEL: it is ACKed and hung up; bob hears nothing more.
    let sent = net.send(
        ZOIPER,
        &alice.respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    assert_eq!(sent.ladder(), ["alice<-ACK", "alice<-BYE"]);
    net.send(ZOIPER, &alice.respond(&cancel, 200, &[], ""));
    net.send(
        ZOIPER,
        &alice.respond(&sent.request(ZOIPER, Method::Bye), 200, &[], ""),
    );
    let cdr = net.cdr();
    assert_eq!(
        (cdr.hangup_cause, cdr.sip_status),
        ("ORIGINATOR_CANCEL", 487)
    );
    assert_eq!(cdr.billsec, 0, "bob never talked");
    net.assert_drained();
}

#[test]
fn rfc3261_15_a_bye_from_the_callee_on_its_early_dialog_does_not_strand_the_call() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));
    // §15 forbids it, but a phone may do it: the early dialog ends and the INVITE is
    // cancelled, so the caller gets a final answer.
    let mut b = alice.uas_dialog(&inv);
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    let mut ladder = sent.ladder();
    ladder.sort();
    assert_eq!(ladder, ["alice<-200 BYE", "alice<-CANCEL"]);
    let cancel = sent.request(ZOIPER, Method::Cancel);
    net.send(ZOIPER, &alice.respond(&cancel, 200, &[], ""));
    let sent = net.send(ZOIPER, &alice.respond(&inv, 487, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-480 INVITE"]);
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 480)));
    let cdr = net.cdr();
    assert_eq!((cdr.sip_status, cdr.hangup_side), (480, Side::Callee));
    net.assert_drained();
}

#[test]
fn rfc3261_8_1_3_1_a_callee_the_transport_cannot_reach_fails_the_call() {
    let mut net = Net::calls();
    let mut bob = Caller::bob();
    let sent = net.send(BOB, &bob.seed_invite(""));
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    let out = net.udp(addr(BOB), &bob.seed_invite_authorized(""));
    let invite = out
        .iter()
        .find(|t| t.to.addr == addr(ZOIPER))
        .expect("the b-leg INVITE");
    let key = invite.key.clone().expect("sent by its transaction");
    // The driver could not send it (no route, ICMP unreachable, TCP refused).
    let (now, wall) = (net.now, net.wall());
    net.engine.handle_send_error(now, wall, &key);
    let sent = Sent::from(net.drain());
    let fail = sent
        .responses(BOB)
        .into_iter()
        .find(|r| r.status >= 300)
        .unwrap_or_else(|| panic!("a final response for bob: {:?}", sent.ladder()));
    assert!(fail.status >= 500, "{}", fail.status);
    net.send(BOB, &bob.ack_non2xx(&fail));
    let cdr = net.cdr();
    assert_eq!(cdr.sip_status, fail.status);
    assert_eq!(cdr.hangup_cause, "NORMAL_TEMPORARY_FAILURE");
    net.assert_drained();
}

#[test]
fn no_answer_from_a_silent_callee_the_held_cancel_is_never_sent() {
    let mut net = Net::calls_with(|c| c.calls.call_timeout = Duration::from_secs(10));
    let mut bob = Caller::bob();
    let inv = ring_alice(&mut net, &mut bob, "");
    let sent = net.after(Duration::from_secs(10));
    let r480 = sent.response(BOB, 480);
    assert!(
        sent.requests(ZOIPER, Method::Cancel).is_empty(),
        "§9.1: not before a 1xx"
    );
    // Timer A at 0.5, 1.5, 3.5 and 7.5 s; then the CANCEL waits for a 1xx that never comes.
    assert_eq!(sent.requests(ZOIPER, Method::Invite), vec![inv; 4]);
    net.send(BOB, &bob.ack_non2xx(&r480));
    // The call ended for bob at 10 s: its CDR is out at once, timed then; the contact is
    // only given up at Timer B (32 s), and the call leaves the table then.
    let cdr = net.cdr();
    let sent = net.after(Duration::from_secs(22));
    assert!(sent.responses(BOB).is_empty(), "{:?}", sent.ladder());
    assert_eq!((cdr.hangup_cause, cdr.sip_status), ("NO_ANSWER", 480));
    assert_eq!(
        (cdr.duration, cdr.end_time.as_str()),
        (10, "2010-04-27T12:31:07.000Z")
    );
    net.assert_drained();
}

#[test]
fn a_bye_the_transaction_layer_refuses_is_logged_and_the_call_still_ends() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    connect(&mut net, &mut bob, &mut alice);
    // The transaction table is full when the call is hung up: no BYE can go out.
    net.engine.txl = crate::transaction::TransactionLayer::new(TransactionConfig {
        max_transactions: 0,
        ..TransactionConfig::default()
    });
    let id = net.engine.b2bua.call_ids()[0];
    let (now, wall) = (net.now, net.wall());
    let logs = logs_of(|| {
        assert!(net.engine.b2bua.hang_up_call(
            wall,
            id,
            crate::cdr::HangupCause::RecoveryOnTimerExpire,
        ));
        net.engine.run_commands(now, wall);
    });
    assert!(net.drain().is_empty(), "nothing could be sent");
    assert!(
        logs.contains("request not sent") && logs.contains("method=BYE"),
        "{logs}"
    );
    assert_eq!(net.engine.call_table_sizes(), (0, 0, 0), "the call is over");
    assert_eq!(net.cdr().hangup_cause, "RECOVERY_ON_TIMER_EXPIRE");
}
