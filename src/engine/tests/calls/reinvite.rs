//! re-INVITEs across the B2BUA: hold and resume (RFC 3264 §8.4, RFC 6337) from either side,
//! the answer relayed back; an offer in the 2xx whose answer comes in the ACK (RFC 3261
//! §13.2.1); §14.1 glare (491); the 2xx retransmitted until the ACK (§13.3.1.4) and the
//! peer's 2xx retransmissions ACKed again (§13.2.2.4).

use super::in_dialog::bob_hangs_up;
use super::*;

#[test]
fn rfc6337_hold_reinvite_from_the_caller_crosses_and_its_answer_comes_back() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, b, inv) = connect(&mut net, &mut bob, &mut alice);
    let hold = sdp("bob", 8000, "a=sendonly\r\n");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], &hold));
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    let reinv = sent.request(ZOIPER, Method::Invite);
    assert_eq!(
        reinv.headers.call_id(),
        inv.headers.call_id(),
        "in the b-leg dialog"
    );
    assert_eq!(reinv.headers.to_tag().as_deref(), Some("3813e926"));
    assert_eq!(reinv.uri_str(), Some(ALICE_CONTACT));
    let b_seq = inv.headers.cseq().unwrap().seq;
    assert_eq!(reinv.headers.cseq().map(|c| c.seq), Some(b_seq + 1));
    assert_eq!(&reinv.body[..], hold.as_bytes());
    assert_eq!(req_header(&reinv, "Content-Type"), Some("application/sdp"));

    let held = sdp("alice", 9000, "a=recvonly\r\n");
    let sent = net.send(ZOIPER, &alice.respond(&reinv, 200, &[], &held));
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-200 INVITE"]);
    let ack = sent.request(ZOIPER, Method::Ack);
    assert_eq!(ack.headers.cseq().map(|c| c.seq), Some(b_seq + 1));
    let ok = sent.response(BOB, 200);
    assert_eq!(&ok.body[..], held.as_bytes());
    assert_eq!(ok.headers.cseq().map(|c| c.seq), Some(a.cseq));
    assert!(net
        .send(
            BOB,
            &bob.ua
                .in_dialog(&mut a.clone(), "ACK", Some(a.cseq), &[], "")
        )
        .is_empty());

    // Resume from alice's side this time: the request crosses the other way.
    let mut b = b;
    let resume = sdp("alice", 9000, "a=sendrecv\r\n");
    let sent = net.send(
        ZOIPER,
        &alice.in_dialog(&mut b, "INVITE", None, &[], &resume),
    );
    let reinv_a = sent.request(BOB, Method::Invite);
    assert_eq!(&reinv_a.body[..], resume.as_bytes());
    assert_eq!(reinv_a.headers.to_tag().as_deref(), Some("15c8325a"));
    let sent = net.send(
        BOB,
        &bob.ua.respond(&reinv_a, 200, &[], &sdp("bob", 8000, "")),
    );
    assert_eq!(sent.ladder(), ["bob<-ACK", "alice<-200 INVITE"]);
    let ok = sent.response(ZOIPER, 200);
    assert_eq!(&ok.body[..], sdp("bob", 8000, "").as_bytes());
    assert!(net
        .send(
            ZOIPER,
            &alice.in_dialog(&mut b.clone(), "ACK", Some(b.cseq), &[], "")
        )
        .is_empty());
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3261_13_2_1_reinvite_without_offer_gets_the_answer_in_the_relayed_ack() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], ""));
    let reinv = sent.request(ZOIPER, Method::Invite);
    assert!(reinv.body.is_empty());
    let offer = sdp("alice", 9000, "");
    let sent = net.send(ZOIPER, &alice.respond(&reinv, 200, &[], &offer));
    assert_eq!(
        sent.ladder(),
        ["bob<-200 INVITE"],
        "the ACK waits for bob's answer"
    );
    assert_eq!(&sent.response(BOB, 200).body[..], offer.as_bytes());
    let answer = sdp("bob", 8000, "a=sendonly\r\n");
    let seq = a.cseq;
    let sent = net.send(
        BOB,
        &bob.ua
            .in_dialog(&mut a.clone(), "ACK", Some(seq), &[], &answer),
    );
    let ack = sent.request(ZOIPER, Method::Ack);
    assert_eq!(&ack.body[..], answer.as_bytes());
    assert_eq!(req_header(&ack, "Content-Type"), Some("application/sdp"));
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3261_14_1_glare_crossing_reinvites_get_491() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let hold = sdp("bob", 8000, "a=sendonly\r\n");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], &hold));
    let reinv = sent.request(ZOIPER, Method::Invite);
    // alice's own re-INVITE crosses ours on the b-leg.
    let mine = alice.in_dialog(&mut b, "INVITE", None, &[], &sdp("alice", 9000, ""));
    let sent = net.send(ZOIPER, &mine);
    assert_eq!(sent.ladder(), ["alice<-100 INVITE", "alice<-491 INVITE"]);
    let r491 = sent.response(ZOIPER, 491);
    assert!(net.send(ZOIPER, &ack_for(&mine, &r491)).is_empty());
    // alice answers ours; it completes as usual.
    let held = sdp("alice", 9000, "a=recvonly\r\n");
    let sent = net.send(ZOIPER, &alice.respond(&reinv, 200, &[], &held));
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-200 INVITE"]);
    let seq = a.cseq;
    net.send(
        BOB,
        &bob.ua.in_dialog(&mut a.clone(), "ACK", Some(seq), &[], ""),
    );

    // The other way round: alice's re-INVITE is relayed to bob, bob's crosses it.
    let resume = sdp("alice", 9000, "");
    let sent = net.send(
        ZOIPER,
        &alice.in_dialog(&mut b, "INVITE", None, &[], &resume),
    );
    let to_bob = sent.request(BOB, Method::Invite);
    let mine = bob
        .ua
        .in_dialog(&mut a, "INVITE", None, &[], &sdp("bob", 8000, ""));
    let sent = net.send(BOB, &mine);
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "bob<-491 INVITE"]);
    assert!(net
        .send(BOB, &ack_for(&mine, &sent.response(BOB, 491)))
        .is_empty());
    let sent = net.send(
        BOB,
        &bob.ua.respond(&to_bob, 200, &[], &sdp("bob", 8000, "")),
    );
    assert_eq!(sent.ladder(), ["bob<-ACK", "alice<-200 INVITE"]);
    let seq = b.cseq;
    net.send(
        ZOIPER,
        &alice.in_dialog(&mut b.clone(), "ACK", Some(seq), &[], ""),
    );
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

/// The ACK for a non-2xx final response to the request `msg` (same branch, §17.1.1.3).
fn ack_for(msg: &str, resp: &Response) -> String {
    let Ok(Message::Request(req)) = parse_datagram(msg.as_bytes()) else {
        panic!("a request");
    };
    text(&crate::sip::ack_for_non2xx(&req, resp))
}

/// A connected call with bob's hold re-INVITE answered by alice: returns the dialogs, the
/// re-INVITE alice got, her 200 (text) and the 200 bob got.
fn held(net: &mut Net, bob: &mut Caller, alice: &mut Ua) -> (Dlg, Dlg, Request, String, Response) {
    let (mut a, b, _inv) = connect(net, bob, alice);
    let hold = sdp("bob", 8000, "a=sendonly\r\n");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], &hold));
    let reinv = sent.request(ZOIPER, Method::Invite);
    let ok_text = alice.respond(&reinv, 200, &[], &sdp("alice", 9000, "a=recvonly\r\n"));
    let sent = net.send(ZOIPER, &ok_text);
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-200 INVITE"]);
    let ok = sent.response(BOB, 200);
    (a, b, reinv, ok_text, ok)
}

#[test]
fn rfc3261_13_2_2_4_a_retransmitted_2xx_to_a_relayed_reinvite_is_acked_again() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, reinv, ok_text, _ok) = held(&mut net, &mut bob, &mut alice);
    let seq = a.cseq;
    net.send(
        BOB,
        &bob.ua.in_dialog(&mut a.clone(), "ACK", Some(seq), &[], ""),
    );
    // Our ACK was lost: alice sends her 200 again, within Timer M and after it.
    for wait in [Duration::from_secs(1), Duration::from_secs(40)] {
        net.advance(wait);
        let sent = net.send(ZOIPER, &ok_text);
        assert_eq!(sent.ladder(), ["alice<-ACK"], "re-ACKed, never hung up");
        let ack = sent.request(ZOIPER, Method::Ack);
        assert_eq!(
            ack.headers.cseq().map(|c| c.seq),
            reinv.headers.cseq().map(|c| c.seq)
        );
    }
    assert_eq!(net.engine.active_calls(), 1);
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3261_13_3_1_4_the_relayed_2xx_is_retransmitted_until_the_ack() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, _reinv, _ok_text, ok) = held(&mut net, &mut bob, &mut alice);
    let start = net.now;
    let mut instants = Vec::new();
    while instants.len() < 4 {
        let deadline = net.engine.poll_timeout().expect("a timer");
        assert!(deadline - start < Duration::from_secs(10), "{instants:?}");
        for r in Sent::from(net.run_until(deadline)).responses(BOB) {
            assert_eq!(r, ok);
            instants.push((net.now - start).as_millis());
        }
    }
    assert_eq!(instants, [500, 1500, 3500, 7500]);
    let seq = a.cseq;
    assert!(net
        .send(
            BOB,
            &bob.ua.in_dialog(&mut a.clone(), "ACK", Some(seq), &[], "")
        )
        .is_empty());
    assert!(
        net.after(Duration::from_secs(10)).is_empty(),
        "the ACK stops it"
    );
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3261_13_3_1_4_no_ack_for_the_relayed_2xx_ends_the_call() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let _ = held(&mut net, &mut bob, &mut alice);
    let sent = net.after(64 * T1);
    let mut byes: Vec<_> = sent
        .ladder()
        .into_iter()
        .filter(|l| l.ends_with("BYE"))
        .collect();
    byes.sort();
    assert_eq!(byes, ["alice<-BYE", "bob<-BYE"]);
    net.send(
        BOB,
        &bob.ua
            .respond(&sent.request(BOB, Method::Bye), 200, &[], ""),
    );
    net.send(
        ZOIPER,
        &alice.respond(&sent.request(ZOIPER, Method::Bye), 200, &[], ""),
    );
    assert_eq!(net.cdr().hangup_side, crate::cdr::Side::System);
    net.assert_drained();
}
