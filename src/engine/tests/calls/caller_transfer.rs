//! Blind transfer by the CALLER carried out by the switch (RFC 3515 REFER, RFC 5589 §6 with
//! the roles reversed): bob (the caller) transfers alice (his callee) to dave. bob's REFER is
//! answered by us and never reaches alice; dave is called as alice's call (her identity, her
//! SDP as bob saw it); bob hears how it goes in NOTIFYs and is released with a BYE once dave
//! answers; alice and dave then talk through the call, dave in the caller's place.

use super::in_dialog::bob_hangs_up;
use super::media::{anchored_call, audio_port, relayed_net, rtp};
use super::*;

/// bob's REFER to `target` in his dialog, with `extra` headers, and its CSeq number.
fn refer(bob: &mut Caller, a: &mut Dlg, target: &str, extra: &[&str]) -> (String, u32) {
    let refer_to = format!("Refer-To: <sip:{target}@192.168.4.4>");
    let mut lines = vec![refer_to.as_str(), "Referred-By: <sip:bob@192.168.4.4>"];
    lines.extend_from_slice(extra);
    let msg = bob.ua.in_dialog(a, "REFER", None, &lines, "");
    (msg, a.cseq)
}

/// The sipfrag status line and Subscription-State of a NOTIFY bob got for REFER `seq`.
fn notified(n: &Request, seq: u32) -> (String, String) {
    assert_eq!(
        req_header(n, "Event").map(str::to_string),
        Some(format!("refer;id={seq}"))
    );
    assert_eq!(
        req_header(n, "Content-Type"),
        Some("message/sipfrag;version=2.0")
    );
    let body = std::str::from_utf8(&n.body).expect("sipfrag text");
    (
        body.trim_end().to_string(),
        req_header(n, "Subscription-State")
            .unwrap_or("")
            .to_string(),
    )
}

/// bob answers the NOTIFY in `sent` with 200.
fn answer_notify(net: &mut Net, bob: &Caller, sent: &Sent) {
    let n = sent.request(BOB, Method::Notify);
    assert!(net.send(BOB, &bob.ua.respond(&n, 200, &[], "")).is_empty());
}

fn net_with_dave() -> Net {
    let mut net = Net::calls();
    net.register_contact("dave", DAVE, DAVE_CONTACT);
    net
}

fn dave() -> Ua {
    Ua::new(DAVE, DAVE_CONTACT, "dave-tag-1")
}

#[test]
fn rfc5589_6_blind_transfer_by_the_caller_is_carried_out_by_the_switch() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, inv) = connect(&mut net, &mut bob, &mut alice);

    let (msg, seq) = refer(&mut bob, &mut a, "dave", &[]);
    let sent = net.send(BOB, &msg);
    assert_eq!(
        sent.ladder(),
        ["bob<-202 REFER", "bob<-NOTIFY", "dave<-INVITE"],
        "answered here: alice never gets the REFER"
    );
    assert!(header(&sent.response(BOB, 202), "Contact").is_some());
    let n = sent.request(BOB, Method::Notify);
    assert_eq!(
        notified(&n, seq),
        ("SIP/2.0 100 Trying".into(), "active;expires=60".into())
    );
    // dave is called as alice's call: alice's identity, alice's SDP (media bypass).
    let to_dave = sent.request(DAVE, Method::Invite);
    let from = req_header(&to_dave, "From").unwrap();
    assert!(from.contains("sip:alice@"), "{from}");
    assert!(req_header(&to_dave, "P-Asserted-Identity")
        .unwrap()
        .contains("sip:alice@"));
    assert!(req_header(&to_dave, "Remote-Party-ID")
        .unwrap()
        .contains("sip:alice@"));
    assert!(req_header(&to_dave, "To").unwrap().contains("sip:dave@"));
    assert_eq!(&to_dave.body[..], sdp("alice", 9000, "").as_bytes());
    assert_ne!(to_dave.headers.call_id(), inv.headers.call_id());
    net.send(BOB, &bob.ua.respond(&n, 200, &[], ""));

    let sent = net.send(DAVE, &dave.respond(&to_dave, 180, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-NOTIFY"]);
    assert_eq!(
        notified(&sent.request(BOB, Method::Notify), seq).0,
        "SIP/2.0 180 Ringing"
    );
    answer_notify(&mut net, &bob, &sent);

    let dave_sdp = sdp("dave", 9400, "");
    let sent = net.send(DAVE, &dave.respond(&to_dave, 200, &[], &dave_sdp));
    assert_eq!(
        sent.ladder(),
        ["dave<-ACK", "alice<-INVITE", "bob<-NOTIFY", "bob<-BYE"]
    );
    let n = sent.request(BOB, Method::Notify);
    assert_eq!(
        notified(&n, seq),
        (
            "SIP/2.0 200 OK".into(),
            "terminated;reason=noresource".into()
        )
    );
    let bye = sent.request(BOB, Method::Bye);
    assert!(req_header(&bye, "Reason")
        .unwrap()
        .starts_with("Q.850;cause=16"));
    // Bypass: alice's media must now go to dave.
    let reinvite = sent.request(ZOIPER, Method::Invite);
    assert_eq!(&reinvite.body[..], dave_sdp.as_bytes());
    let sent = net.send(
        ZOIPER,
        &alice.respond(&reinvite, 200, &[], &sdp("alice", 9000, "")),
    );
    assert_eq!(sent.ladder(), ["alice<-ACK"]);
    net.send(BOB, &bob.ua.respond(&n, 200, &[], ""));
    net.send(BOB, &bob.ua.respond(&bye, 200, &[], ""));

    // bob's part of the call has its own record.
    let rec = net.engine.poll_cdr().expect("the transferor's CDR");
    assert_eq!(rec.hangup_cause, "BLIND_TRANSFER");
    assert_eq!(rec.hangup_side, crate::cdr::Side::Caller);
    assert_eq!(
        (rec.caller.user.as_str(), rec.callee.user.as_str()),
        ("bob", "alice")
    );
    assert_eq!(rec.b_leg_call_id.as_deref(), inv.headers.call_id());
    assert_eq!(rec.transferred_to.as_deref(), Some("dave"));
    assert_eq!(rec.transferred_by.as_deref(), Some("bob"));

    // alice and dave are the call now: alice's re-INVITE reaches dave, dave's BYE alice.
    let mut d = dave.uas_dialog(&to_dave);
    let hold = sdp("alice", 9000, "a=sendonly\r\n");
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "INVITE", None, &[], &hold));
    assert_eq!(sent.ladder(), ["alice<-100 INVITE", "dave<-INVITE"]);
    let to_d = sent.request(DAVE, Method::Invite);
    assert_eq!(to_d.headers.call_id(), to_dave.headers.call_id());
    assert_eq!(&to_d.body[..], hold.as_bytes());
    let sent = net.send(DAVE, &dave.respond(&to_d, 200, &[], &dave_sdp));
    assert_eq!(sent.ladder(), ["dave<-ACK", "alice<-200 INVITE"]);
    let ok = sent.response(ZOIPER, 200);
    let seq = ok.headers.cseq().map(|c| c.seq);
    let ack = alice.in_dialog(&mut b.clone(), "ACK", seq, &[], "");
    assert!(net.send(ZOIPER, &ack).is_empty());
    let mut dave = dave;
    let sent = net.send(DAVE, &dave.in_dialog(&mut d, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["dave<-200 BYE", "alice<-BYE"]);
    net.send(
        ZOIPER,
        &alice.respond(&sent.request(ZOIPER, Method::Bye), 200, &[], ""),
    );
    let rec = net.cdr();
    assert_eq!(
        (rec.caller.user.as_str(), rec.callee.user.as_str()),
        ("bob", "alice"),
        "the record keeps the call's caller"
    );
    assert_eq!(rec.hangup_cause, "NORMAL_CLEARING");
    assert_eq!(rec.transferred_to.as_deref(), Some("dave"));
    assert_eq!(rec.transferred_by.as_deref(), Some("bob"));
    net.assert_drained();
}

#[test]
fn after_a_caller_transfer_the_callee_hangs_up_the_target_and_the_target_reinvites() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let (msg, _) = refer(&mut bob, &mut a, "dave", &["Refer-Sub: false"]);
    let sent = net.send(BOB, &msg);
    assert_eq!(sent.ladder(), ["bob<-202 REFER", "dave<-INVITE"]);
    let to_dave = sent.request(DAVE, Method::Invite);
    let dave_sdp = sdp("dave", 9400, "");
    let sent = net.send(DAVE, &dave.respond(&to_dave, 200, &[], &dave_sdp));
    assert_eq!(sent.ladder(), ["dave<-ACK", "alice<-INVITE", "bob<-BYE"]);
    let ours = sent.request(BOB, Method::Bye);
    let reinvite = sent.request(ZOIPER, Method::Invite);
    net.send(
        ZOIPER,
        &alice.respond(&reinvite, 200, &[], &sdp("alice", 9000, "")),
    );
    // A retransmitted 2xx from dave is ACKed again, nothing else.
    let sent = net.send(DAVE, &dave.respond(&to_dave, 200, &[], &dave_sdp));
    assert_eq!(sent.ladder(), ["dave<-ACK"]);
    // bob hangs up himself as ours is on its way: his BYE gets a 200, nothing more.
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE"]);
    net.send(BOB, &bob.ua.respond(&ours, 481, &[], ""));
    let _ = net.engine.poll_cdr().expect("the transferor's CDR");

    // dave re-INVITEs (in the dialog he answered): it reaches alice.
    let mut dave = dave;
    let mut d = dave.uas_dialog(&to_dave);
    let sent = net.send(
        DAVE,
        &dave.in_dialog(&mut d, "INVITE", None, &[], &dave_sdp),
    );
    assert_eq!(sent.ladder(), ["dave<-100 INVITE", "alice<-INVITE"]);
    let to_a = sent.request(ZOIPER, Method::Invite);
    assert_eq!(&to_a.body[..], dave_sdp.as_bytes());
    let sent = net.send(
        ZOIPER,
        &alice.respond(&to_a, 200, &[], &sdp("alice", 9000, "")),
    );
    assert_eq!(sent.ladder(), ["alice<-ACK", "dave<-200 INVITE"]);
    let ok = sent.response(DAVE, 200);
    let seq = ok.headers.cseq().map(|c| c.seq);
    assert!(net
        .send(DAVE, &dave.in_dialog(&mut d.clone(), "ACK", seq, &[], ""))
        .is_empty());
    // An INFO from alice crosses to dave.
    let sent = net.send(
        ZOIPER,
        &alice.in_dialog(
            &mut b,
            "INFO",
            None,
            &["Content-Type: application/dtmf-relay"],
            "Signal=5\r\nDuration=160\r\n",
        ),
    );
    let info = sent.request(DAVE, Method::Info);
    let sent = net.send(DAVE, &dave.respond(&info, 200, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-200 INFO"]);
    // dave is not bob: his REFER is not routed in bob's dialplan context but relayed.
    let sent = net.send(
        DAVE,
        &dave.in_dialog(
            &mut d,
            "REFER",
            None,
            &["Refer-To: <sip:bob@192.168.4.4>"],
            "",
        ),
    );
    assert_eq!(sent.ladder(), ["alice<-REFER"]);
    let relayed = sent.request(ZOIPER, Method::Refer);
    let sent = net.send(ZOIPER, &alice.respond(&relayed, 603, &[], ""));
    assert_eq!(sent.ladder(), ["dave<-603 REFER"]);
    // alice hangs up: dave gets the BYE.
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-200 BYE", "dave<-BYE"]);
    net.send(
        DAVE,
        &dave.respond(&sent.request(DAVE, Method::Bye), 200, &[], ""),
    );
    let rec = net.cdr();
    assert_eq!(rec.hangup_side, crate::cdr::Side::Callee);
    assert_eq!(rec.transferred_to.as_deref(), Some("dave"));
    net.assert_drained();
}

#[test]
fn rfc3515_2_4_5_a_busy_target_of_the_caller_is_notified_and_the_call_stays_up() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let (msg, seq) = refer(&mut bob, &mut a, "dave", &[]);
    let sent = net.send(BOB, &msg);
    answer_notify(&mut net, &bob, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(DAVE, &dave.respond(&to_dave, 486, &[], ""));
    assert_eq!(sent.ladder(), ["dave<-ACK", "bob<-NOTIFY"]);
    assert_eq!(
        notified(&sent.request(BOB, Method::Notify), seq),
        (
            "SIP/2.0 486 Busy Here".into(),
            "terminated;reason=noresource".into()
        )
    );
    answer_notify(&mut net, &bob, &sent);
    assert_eq!(net.engine.active_calls(), 1, "bob and alice still talk");
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn a_caller_hanging_up_early_leaves_the_callee_with_the_target() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let (msg, _) = refer(&mut bob, &mut a, "dave", &[]);
    let sent = net.send(BOB, &msg);
    answer_notify(&mut net, &bob, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(
        sent.ladder(),
        ["bob<-200 BYE"],
        "alice stays, dave rings on"
    );
    let sent = net.send(
        DAVE,
        &dave.respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    assert_eq!(
        sent.ladder(),
        ["dave<-ACK", "alice<-INVITE"],
        "no NOTIFY, no BYE to bob"
    );
    let reinvite = sent.request(ZOIPER, Method::Invite);
    net.send(
        ZOIPER,
        &alice.respond(&reinvite, 200, &[], &sdp("alice", 9000, "")),
    );
    assert_eq!(
        net.engine.poll_cdr().unwrap().hangup_cause,
        "BLIND_TRANSFER"
    );
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-200 BYE", "dave<-BYE"]);
    net.send(
        DAVE,
        &dave.respond(&sent.request(DAVE, Method::Bye), 200, &[], ""),
    );
    assert_eq!(net.cdr().transferred_by.as_deref(), Some("bob"));
    net.assert_drained();
}

#[test]
fn with_the_relay_the_callers_target_gets_our_ports_and_rtp_flows_callee_to_target() {
    let (mut net, relay) = relayed_net(|_| {});
    net.register_contact("dave", DAVE, DAVE_CONTACT);
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (to_bob, to_alice, mut a, mut b) = anchored_call(&mut net, &mut bob, &mut alice);
    let (msg, _) = refer(&mut bob, &mut a, "dave", &[]);
    let sent = net.send(BOB, &msg);
    answer_notify(&mut net, &bob, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    assert_eq!(
        audio_port(&to_dave.body),
        to_bob,
        "dave gets the ports bob had: alice's media path stays"
    );
    let sent = net.send(
        DAVE,
        &dave.respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    assert_eq!(
        sent.ladder(),
        ["dave<-ACK", "bob<-NOTIFY", "bob<-BYE"],
        "alice is not re-INVITEd"
    );
    // alice's RTP now goes to dave, and dave's to alice.
    let now = net.now;
    let t = relay
        .lock()
        .handle_packet(now, to_alice, addr("192.168.4.4:9000"), &rtp(1, 11))
        .expect("alice's RTP is relayed");
    assert_eq!(t.to, addr("192.168.4.4:9400"));
    assert_eq!(t.from.port(), to_bob);
    let t = relay
        .lock()
        .handle_packet(now, to_bob, addr("192.168.4.4:9400"), &rtp(1, 33))
        .expect("dave's RTP is relayed");
    assert_eq!(t.to, addr("192.168.4.4:9000"));
    let _ = net.engine.poll_cdr().expect("the transferor's CDR");
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-200 BYE", "dave<-BYE"]);
    let rec = net.cdr();
    assert_eq!(rec.callee.user, "alice");
    assert_eq!(rec.transferred_to.as_deref(), Some("dave"));
    assert!(rec.media.is_some());
    let r = relay.lock();
    assert_eq!(r.pool_free(), r.pool_capacity());
}

#[test]
fn a_callee_held_by_the_transferring_caller_is_taken_off_hold() {
    let (mut net, _relay) = relayed_net(|_| {});
    net.register_contact("dave", DAVE, DAVE_CONTACT);
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (_to_bob, to_alice, mut a, _b) = anchored_call(&mut net, &mut bob, &mut alice);
    // bob holds alice before transferring her.
    let hold = sdp("bob", 8000, "a=sendonly\r\n");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], &hold));
    let reinv = sent.request(ZOIPER, Method::Invite);
    let held = sdp("alice", 9000, "a=recvonly\r\n");
    let sent = net.send(ZOIPER, &alice.respond(&reinv, 200, &[], &held));
    let ok = sent.response(BOB, 200);
    let seq = ok.headers.cseq().map(|c| c.seq);
    net.send(BOB, &bob.ua.in_dialog(&mut a.clone(), "ACK", seq, &[], ""));

    let (msg, _) = refer(&mut bob, &mut a, "dave", &[]);
    let sent = net.send(BOB, &msg);
    answer_notify(&mut net, &bob, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    let offer = std::str::from_utf8(&to_dave.body).unwrap();
    assert!(
        offer.contains("a=sendrecv") && !offer.contains("a=recvonly"),
        "dave is not offered a held call: {offer}"
    );
    let sent = net.send(
        DAVE,
        &dave.respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    assert_eq!(
        sent.ladder(),
        ["dave<-ACK", "alice<-INVITE", "bob<-NOTIFY", "bob<-BYE"]
    );
    let unhold = sent.request(ZOIPER, Method::Invite);
    assert_eq!(
        audio_port(&unhold.body),
        to_alice,
        "alice keeps her relay port"
    );
    assert!(!std::str::from_utf8(&unhold.body)
        .unwrap()
        .contains("sendonly"));
    let sent = net.send(
        ZOIPER,
        &alice.respond(&unhold, 200, &[], &sdp("alice", 9000, "")),
    );
    assert_eq!(sent.ladder(), ["alice<-ACK"]);
}

#[test]
fn an_unauthenticated_callers_refer_is_relayed_to_the_callee_as_before() {
    let mut net = Net::calls_with(|c| c.calls.auth_calls = false);
    net.register_contact("dave", DAVE, DAVE_CONTACT);
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let msg = bob.invite_to("alice", &[], &sdp("bob", 8000, ""));
    bob.invite = msg.clone();
    let sent = net.send(BOB, &msg);
    let inv = sent.request(ZOIPER, Method::Invite);
    let sent = net.send(
        ZOIPER,
        &alice.respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    let mut a = bob.dialog(&sent.response(BOB, 200));
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    // Never routed in anyone's dialplan context: alice gets the REFER and may act on it.
    let (msg, _) = refer(&mut bob, &mut a, "dave", &[]);
    let sent = net.send(BOB, &msg);
    assert_eq!(sent.ladder(), ["alice<-REFER"]);
    let relayed = sent.request(ZOIPER, Method::Refer);
    assert_eq!(
        req_header(&relayed, "Refer-To"),
        Some("<sip:dave@192.168.4.4>")
    );
    let sent = net.send(ZOIPER, &alice.respond(&relayed, 202, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-202 REFER"]);
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn a_caller_gone_and_a_busy_target_leave_nobody_for_the_callee_who_gets_a_bye() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let (msg, _) = refer(&mut bob, &mut a, "dave", &[]);
    let sent = net.send(BOB, &msg);
    answer_notify(&mut net, &bob, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE"]);
    let sent = net.send(DAVE, &dave.respond(&to_dave, 486, &[], ""));
    assert_eq!(sent.ladder(), ["dave<-ACK", "alice<-BYE"]);
    net.send(
        ZOIPER,
        &alice.respond(&sent.request(ZOIPER, Method::Bye), 200, &[], ""),
    );
    let rec = net.cdr();
    assert_eq!(rec.hangup_cause, "USER_BUSY");
    assert_eq!(rec.hangup_side, crate::cdr::Side::Caller);
    net.assert_drained();
}
