//! The seed's call (chapter 4, "通过 B2BUA 呼叫", and RFC 3665 §3.2 "Session Establishment
//! Through Two Proxies" done by one B2BUA): bob INVITE → 407 (stateless: no 100 before it,
//! unlike the seed's FreeSWITCH, so one datagram in gives one out) → ACK → INVITE with
//! Proxy-Authorization → 100 + b-leg INVITE → 180 → 183 with SDP → 200 → ACK both ways →
//! BYE from either side with the Q.850 Reason → CDR.

use super::*;

#[test]
fn seed_call_bob_to_alice_and_alice_hangs_up() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let offer = sdp("bob", 8000, "");

    // 06 → 407 (07), sent statelessly: the seed's 100 Trying (06b) is not sent.
    let sent = net.send(BOB, &bob.seed_invite(&offer));
    assert_eq!(sent.ladder(), ["bob<-407 INVITE"]);
    let r407 = sent.response(BOB, 407);
    assert_eq!(reason(&r407), "Proxy Authentication Required");
    assert!(r407.headers.to_tag().is_some());
    assert_eq!(
        header(&r407, "Via"),
        Some(
            "SIP/2.0/UDP 192.168.4.4:26000;branch=z9hG4bK-d8754z-56adad736231f024-1---d8754z-;\
             rport=26000;received=192.168.4.4"
        ),
        "RFC 3581: received is added whenever rport is filled in"
    );
    let ch = header(&r407, "Proxy-Authenticate").expect("a challenge");
    assert!(
        ch.starts_with("Digest realm=\"192.168.4.4\", nonce=\"")
            && ch.ends_with("\", algorithm=MD5, qop=\"auth\""),
        "shaped like the seed's 07: {ch}"
    );
    bob.learn(&r407);

    // 08: the ACK for the 407 is absorbed by the transaction; the seed's own ACK matches it
    // once its To tag is ours.
    let seed_ack = SEED_08.replace("B4pem31jHgtHS", &r407.headers.to_tag().unwrap());
    assert!(net.send(BOB, &seed_ack).is_empty());

    // 09 → 100 and the b-leg INVITE to alice's registered contact.
    let sent = net.send(BOB, &bob.seed_invite_authorized(&offer));
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "alice<-INVITE"]);
    let inv = sent.request(ZOIPER, Method::Invite);
    assert_eq!(inv.uri_str(), Some(ALICE_CONTACT));
    let a_call_id = "YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.";
    let b_call_id = inv.headers.call_id().unwrap().to_string();
    assert_ne!(b_call_id, a_call_id, "the b-leg is a new dialog");
    assert_eq!(inv.headers.max_forwards(), Some(69));
    let from = inv.headers.from().unwrap();
    assert_eq!(from.display_name_lossy().as_deref(), Some("Bob"));
    assert_eq!(from.uri.user(), Some("bob"));
    assert!(
        from.tag().is_some_and(|t| t != "15c8325a"),
        "a new From tag"
    );
    assert_eq!(inv.headers.to_tag(), None);
    let rpid = req_header(&inv, "Remote-Party-ID").expect("Remote-Party-ID");
    assert_eq!(
        rpid,
        "\"Bob\" <sip:bob@192.168.4.4>;party=calling;screen=yes;privacy=off"
    );
    assert_eq!(
        req_header(&inv, "P-Asserted-Identity"),
        Some("\"Bob\" <sip:bob@192.168.4.4>")
    );
    let via = inv.headers.top_via().unwrap();
    assert!(via.branch().is_some_and(|b| b.starts_with("z9hG4bK")));
    assert_eq!(inv.headers.vias().len(), 1, "our own Via only");
    assert_eq!(
        req_header(&inv, "Proxy-Authorization"),
        None,
        "credentials stay"
    );
    assert_eq!(req_header(&inv, "Content-Type"), Some("application/sdp"));
    assert_eq!(&inv.body[..], offer.as_bytes(), "SDP unchanged");

    // alice: 100, 180 → bob 180; 183 with SDP → bob 183 with that SDP.
    assert!(net
        .send(ZOIPER, &alice.respond(&inv, 100, &[], ""))
        .is_empty());
    let sent = net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-180 INVITE"]);
    let r180 = sent.response(BOB, 180);
    let a_tag = r180.headers.to_tag().expect("a To tag in the 180");
    assert_eq!(r180.headers.call_id(), Some(a_call_id));
    assert!(header(&r180, "Contact").is_some());
    let early = sdp("alice", 9000, "a=sendrecv\r\n");
    let sent = net.send(ZOIPER, &alice.respond(&inv, 183, &[], &early));
    let r183 = sent.response(BOB, 183);
    assert_eq!(&r183.body[..], early.as_bytes());
    assert_eq!(header(&r183, "Content-Type"), Some("application/sdp"));
    assert_eq!(
        r183.headers.to_tag(),
        Some(a_tag.clone()),
        "one a-leg dialog"
    );
    assert_eq!(
        header(&r183, "Remote-Party-ID"),
        Some("<sip:alice@192.168.4.4>;party=called;screen=yes;privacy=off")
    );

    // 200 after 3 s of ringing: ACK to alice first, then 200 to bob with alice's SDP.
    net.advance(Duration::from_secs(3));
    let answer = sdp("alice", 9000, "");
    let sent = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &answer));
    assert_eq!(sent.ladder(), ["alice<-ACK", "bob<-200 INVITE"]);
    let ack = sent.request(ZOIPER, Method::Ack);
    assert_eq!(ack.uri_str(), Some(ALICE_CONTACT));
    assert_eq!(ack.headers.call_id(), Some(b_call_id.as_str()));
    assert_eq!(ack.headers.to_tag().as_deref(), Some("3813e926"));
    assert_eq!(
        ack.headers.cseq(),
        inv.headers.cseq().map(|c| crate::sip::CSeq {
            method: Method::Ack,
            ..c
        })
    );
    assert_ne!(
        ack.headers.top_via().unwrap().branch(),
        via.branch(),
        "a 2xx ACK is a new transaction (§13.2.2.4)"
    );
    let ok = sent.response(BOB, 200);
    assert_eq!(&ok.body[..], answer.as_bytes());
    assert_eq!(ok.headers.to_tag(), Some(a_tag));
    assert_eq!(header(&ok, "Content-Type"), Some("application/sdp"));
    let a = bob.dialog(&ok);
    assert!(
        net.send(BOB, &bob.ack(&a, "")).is_empty(),
        "bob's ACK ends there"
    );

    // 6 s of talk, then alice hangs up: 200 to her, BYE to bob with the Q.850 Reason.
    assert!(
        net.after(Duration::from_secs(6)).is_empty(),
        "no 2xx resent after the ACK"
    );
    let mut b = alice.uas_dialog(&inv);
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-200 BYE", "bob<-BYE"]);
    let bye = sent.request(BOB, Method::Bye);
    assert_eq!(
        req_header(&bye, "Reason"),
        Some("Q.850;cause=16;text=\"NORMAL_CLEARING\"")
    );
    assert_eq!(bye.uri_str(), Some("sip:bob@192.168.4.4:26000"));
    assert_eq!(bye.headers.call_id(), Some(a_call_id));
    assert_eq!(bye.headers.to_tag().as_deref(), Some("15c8325a"));
    assert!(bye.headers.cseq().is_some_and(|c| c.method == Method::Bye));
    // The call is over once the BYE is passed down (§15.1.1); its transaction finishes alone.
    let cdr = net.cdr();
    assert!(net
        .send(BOB, &bob.ua.respond(&bye, 200, &[], ""))
        .is_empty());

    assert_eq!(cdr.a_leg_call_id, a_call_id);
    assert_eq!(cdr.b_leg_call_id.as_deref(), Some(b_call_id.as_str()));
    assert_eq!(cdr.caller.user, "bob");
    assert_eq!(cdr.caller.display_name.as_deref(), Some("Bob"));
    assert_eq!(cdr.callee.user, "alice");
    assert_eq!(cdr.start_time, "2010-04-27T12:30:57.000Z");
    assert_eq!(cdr.answer_time.as_deref(), Some("2010-04-27T12:31:00.000Z"));
    assert_eq!(cdr.end_time, "2010-04-27T12:31:06.000Z");
    assert_eq!(
        (cdr.duration, cdr.billsec),
        (9, 6),
        "billing starts at the 200"
    );
    assert_eq!(
        (cdr.hangup_cause, cdr.hangup_cause_code),
        ("NORMAL_CLEARING", 16)
    );
    assert_eq!(cdr.sip_status, 200);
    assert_eq!(cdr.hangup_side, crate::cdr::Side::Callee);
    assert_eq!(
        (cdr.caller_transport, cdr.callee_transport),
        ("UDP", Some("UDP"))
    );
    net.assert_drained();
}

#[test]
fn seed_call_and_bob_hangs_up() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    net.advance(Duration::from_secs(10));
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "alice<-BYE"]);
    let bye = sent.request(ZOIPER, Method::Bye);
    assert_eq!(bye.uri_str(), Some(ALICE_CONTACT));
    assert_eq!(
        req_header(&bye, "Reason"),
        Some("Q.850;cause=16;text=\"NORMAL_CLEARING\"")
    );
    assert!(net
        .send(ZOIPER, &alice.respond(&bye, 200, &[], ""))
        .is_empty());
    let cdr = net.cdr();
    assert_eq!(cdr.billsec, 10);
    assert_eq!(cdr.hangup_side, crate::cdr::Side::Caller);
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING");
    net.assert_drained();
}

#[test]
fn rfc3261_13_3_1_4_ok_retransmitted_until_ack_t1_doubling_capped_at_t2() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    let answer = sdp("alice", 9000, "");
    let sent = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &answer));
    let ok = sent.response(BOB, 200);
    let start = net.now;
    // 0.5, 1.5, 3.5, 7.5, 11.5, 15.5 s after the first send: T1, then doubling up to T2.
    let mut instants = Vec::new();
    while instants.len() < 6 {
        let deadline = net.engine.poll_timeout().expect("a timer");
        let sent = Sent::from(net.run_until(deadline));
        for r in sent.responses(BOB) {
            assert_eq!(r, ok, "the same 2xx again");
            instants.push(net.now - start);
        }
    }
    let ms: Vec<u128> = instants.iter().map(|d| d.as_millis()).collect();
    assert_eq!(ms, [500, 1500, 3500, 7500, 11_500, 15_500]);
    let gaps: Vec<Duration> = instants.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [2 * T1, 4 * T1, T2, T2, T2]);

    // alice's own 2xx retransmission is ACKed again (§13.2.2.4).
    let again = net.send(ZOIPER, &alice.respond(&inv, 200, &[], &answer));
    assert_eq!(again.ladder(), ["alice<-ACK"]);

    // The ACK stops it.
    let a = bob.dialog(&ok);
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    assert!(net.after(Duration::from_secs(20)).responses(BOB).is_empty());
    let mut b = alice.uas_dialog(&inv);
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    let bye = sent.request(BOB, Method::Bye);
    net.send(BOB, &bob.ua.respond(&bye, 200, &[], ""));
    assert_eq!(net.cdr().hangup_cause, "NORMAL_CLEARING");
    net.assert_drained();
}

#[test]
fn rfc3261_13_3_1_4_no_ack_within_64_t1_ends_the_call_with_bye() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    net.send(
        ZOIPER,
        &alice.respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    let sent = net.after(64 * T1);
    let byes = sent.requests(BOB, Method::Bye).len() + sent.requests(ZOIPER, Method::Bye).len();
    assert_eq!(byes, 2, "both legs hung up: {:?}", sent.ladder());
    let bye_b = sent.request(ZOIPER, Method::Bye);
    let bye_a = sent.request(BOB, Method::Bye);
    net.send(ZOIPER, &alice.respond(&bye_b, 200, &[], ""));
    net.send(BOB, &bob.ua.respond(&bye_a, 200, &[], ""));
    let cdr = net.cdr();
    assert_eq!(cdr.hangup_side, crate::cdr::Side::System);
    net.assert_drained();
}

/// RFC 3261 §13.2.2.4 / RFC 6026: a callee's repeated 2xx is ACKed again. The ACK is kept for
/// the 64·T1 the callee may retransmit (the stored bytes go out again), and is rebuilt from
/// the dialog should a 2xx come even later, so a held call does not carry it for its life.
#[test]
fn rfc3261_13_2_2_4_repeated_2xx_acked_within_and_after_the_64_t1_window() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, inv) = connect(&mut net, &mut bob, &mut alice);
    let ok = alice.respond(&inv, 200, &[], &sdp("alice", 9000, ""));
    let first = net.send(ZOIPER, &ok);
    assert_eq!(first.ladder(), ["alice<-ACK"]);
    let first_ack = first.request(ZOIPER, Method::Ack);

    net.advance(Duration::from_secs(40));
    let late = net.send(ZOIPER, &ok);
    assert_eq!(late.ladder(), ["alice<-ACK"], "re-ACKed, not hung up");
    let late_ack = late.request(ZOIPER, Method::Ack);
    assert_eq!(late_ack.headers.cseq(), first_ack.headers.cseq());
    assert_eq!(late_ack.headers.call_id(), first_ack.headers.call_id());
    assert_eq!(late_ack.uri, first_ack.uri);
    assert_eq!(net.engine.active_calls(), 1);
    in_dialog::bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}
