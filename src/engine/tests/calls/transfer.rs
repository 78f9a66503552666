//! Blind transfer carried out by the switch (RFC 3515 REFER, RFC 5589 §6, RFC 4488): alice
//! (the callee) transfers bob (the caller) to dave. The REFER is answered by us, never seen
//! by bob; dave is called with bob's identity and SDP; alice hears how it goes in NOTIFYs
//! and is released with a BYE once dave answers; bob and dave then talk through the call.
//! A failed target leaves the call as it was. The caller's REFER with Replaces is still
//! relayed (the caller's blind transfer: `caller_transfer`).

use super::in_dialog::bob_hangs_up;
use super::media::{anchored_call, audio_port, relayed_net, rtp};
use super::*;

/// A From/To value without its tag.
fn untagged(v: &str) -> String {
    v.split(";tag=").next().unwrap_or(v).to_string()
}

/// alice's REFER to `target` in her dialog, with `extra` headers.
fn refer(alice: &mut Ua, b: &mut Dlg, target: &str, extra: &[&str]) -> String {
    let refer_to = format!("Refer-To: <sip:{target}@192.168.4.4>");
    let mut lines = vec![refer_to.as_str(), "Referred-By: <sip:alice@192.168.4.4>"];
    lines.extend_from_slice(extra);
    alice.in_dialog(b, "REFER", None, &lines, "")
}

/// The NOTIFY alice got: its sipfrag status line and Subscription-State.
fn notified(n: &Request) -> (String, String) {
    assert_eq!(req_header(n, "Event"), Some("refer;id=1"));
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

/// alice answers the NOTIFY in `sent` with 200.
fn answer_notify(net: &mut Net, alice: &Ua, sent: &Sent) {
    let n = sent.request(ZOIPER, Method::Notify);
    assert!(net
        .send(ZOIPER, &alice.respond(&n, 200, &[], ""))
        .is_empty());
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
fn rfc5589_6_blind_transfer_by_the_callee_is_carried_out_by_the_switch() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, inv) = connect(&mut net, &mut bob, &mut alice);

    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "dave", &[]));
    assert_eq!(
        sent.ladder(),
        ["alice<-202 REFER", "alice<-NOTIFY", "dave<-INVITE"],
        "answered here: bob never gets the REFER"
    );
    let accepted = sent.response(ZOIPER, 202);
    assert!(
        header(&accepted, "Contact").is_some(),
        "202 with our Contact"
    );
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(
        notified(&n),
        ("SIP/2.0 100 Trying".into(), "active;expires=60".into())
    );
    // dave is called as bob: the same identity alice was shown, bob's SDP.
    let to_dave = sent.request(DAVE, Method::Invite);
    for h in ["From", "P-Asserted-Identity", "Remote-Party-ID"] {
        assert_eq!(
            req_header(&to_dave, h).map(untagged),
            req_header(&inv, h).map(untagged),
            "{h}"
        );
    }
    assert!(req_header(&to_dave, "To").unwrap().contains("sip:dave@"));
    assert_eq!(to_dave.body, inv.body, "bob's SDP (media bypass)");
    assert_ne!(to_dave.headers.call_id(), inv.headers.call_id());
    assert!(net
        .send(ZOIPER, &alice.respond(&n, 200, &[], ""))
        .is_empty());

    let sent = net.send(DAVE, &dave.respond(&to_dave, 180, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-NOTIFY"]);
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(notified(&n).0, "SIP/2.0 180 Ringing");
    net.send(ZOIPER, &alice.respond(&n, 200, &[], ""));
    // A repeated 180 is not reported again.
    assert!(net
        .send(DAVE, &dave.respond(&to_dave, 180, &[], ""))
        .is_empty());

    let dave_sdp = sdp("dave", 9400, "");
    let sent = net.send(DAVE, &dave.respond(&to_dave, 200, &[], &dave_sdp));
    assert_eq!(
        sent.ladder(),
        ["dave<-ACK", "bob<-INVITE", "alice<-NOTIFY", "alice<-BYE"]
    );
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(
        notified(&n),
        (
            "SIP/2.0 200 OK".into(),
            "terminated;reason=noresource".into()
        )
    );
    let bye = sent.request(ZOIPER, Method::Bye);
    assert!(req_header(&bye, "Reason")
        .unwrap()
        .starts_with("Q.850;cause=16"));
    // Bypass: bob's media must now go to dave.
    let reinvite = sent.request(BOB, Method::Invite);
    assert_eq!(&reinvite.body[..], dave_sdp.as_bytes());
    let sent = net.send(
        BOB,
        &bob.ua.respond(&reinvite, 200, &[], &sdp("bob", 8000, "")),
    );
    assert_eq!(sent.ladder(), ["bob<-ACK"]);
    net.send(ZOIPER, &alice.respond(&n, 200, &[], ""));
    net.send(ZOIPER, &alice.respond(&bye, 200, &[], ""));

    // alice's part of the call has its own record.
    let rec = net.engine.poll_cdr().expect("the transferor's CDR");
    assert_eq!(rec.hangup_cause, "BLIND_TRANSFER");
    assert_eq!(
        (rec.caller.user.as_str(), rec.callee.user.as_str()),
        ("bob", "alice")
    );
    assert_eq!(rec.transferred_to.as_deref(), Some("dave"));
    assert_eq!(rec.transferred_by.as_deref(), Some("alice"));
    assert!(rec.answer_time.is_some());

    // bob and dave are the call now: a re-INVITE crosses, dave's BYE ends it.
    let mut d = dave.uas_dialog(&to_dave);
    let hold = sdp("bob", 8000, "a=sendonly\r\n");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INVITE", None, &[], &hold));
    let to_d = sent.request(DAVE, Method::Invite);
    let sent = net.send(DAVE, &dave.respond(&to_d, 200, &[], &dave_sdp));
    assert_eq!(sent.ladder(), ["dave<-ACK", "bob<-200 INVITE"]);
    let ok = sent.response(BOB, 200);
    let seq = ok.headers.cseq().map(|c| c.seq);
    let ack = bob.ua.in_dialog(&mut a.clone(), "ACK", seq, &[], "");
    assert!(net.send(BOB, &ack).is_empty());
    let mut dave = dave;
    let sent = net.send(DAVE, &dave.in_dialog(&mut d, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["dave<-200 BYE", "bob<-BYE"]);
    net.send(
        BOB,
        &bob.ua
            .respond(&sent.request(BOB, Method::Bye), 200, &[], ""),
    );
    let rec = net.cdr();
    assert_eq!(
        (rec.caller.user.as_str(), rec.callee.user.as_str()),
        ("bob", "dave")
    );
    assert_eq!(rec.hangup_cause, "NORMAL_CLEARING");
    assert_eq!(rec.transferred_to.as_deref(), Some("dave"));
    assert_eq!(rec.transferred_by.as_deref(), Some("alice"));
    net.assert_drained();
}

#[test]
fn rfc4488_refer_sub_false_gets_no_notify_and_a_crossing_bye_gets_200() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let sent = net.send(
        ZOIPER,
        &refer(&mut alice, &mut b, "dave", &["Refer-Sub: false"]),
    );
    assert_eq!(sent.ladder(), ["alice<-202 REFER", "dave<-INVITE"]);
    assert_eq!(
        header(&sent.response(ZOIPER, 202), "Refer-Sub"),
        Some("false")
    );
    let to_dave = sent.request(DAVE, Method::Invite);
    assert!(net
        .send(DAVE, &dave.respond(&to_dave, 180, &[], ""))
        .is_empty());
    let sent = net.send(
        DAVE,
        &dave.respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    assert_eq!(sent.ladder(), ["dave<-ACK", "bob<-INVITE", "alice<-BYE"]);
    let ours = sent.request(ZOIPER, Method::Bye);
    let reinvite = sent.request(BOB, Method::Invite);
    net.send(
        BOB,
        &bob.ua.respond(&reinvite, 200, &[], &sdp("bob", 8000, "")),
    );
    // alice hangs up herself as ours is on its way: her BYE gets a 200.
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-200 BYE"]);
    net.send(ZOIPER, &alice.respond(&ours, 481, &[], ""));
    let _ = net.engine.poll_cdr().expect("the transferor's CDR");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "dave<-BYE"]);
    net.send(
        DAVE,
        &dave.respond(&sent.request(DAVE, Method::Bye), 200, &[], ""),
    );
    assert_eq!(net.cdr().callee.user, "dave");
    net.assert_drained();
}

#[test]
fn rfc3515_2_4_5_a_busy_target_is_notified_and_the_call_stays_up() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "dave", &[]));
    answer_notify(&mut net, &alice, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(DAVE, &dave.respond(&to_dave, 486, &[], ""));
    assert_eq!(sent.ladder(), ["dave<-ACK", "alice<-NOTIFY"]);
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(
        notified(&n),
        (
            "SIP/2.0 486 Busy Here".into(),
            "terminated;reason=noresource".into()
        )
    );
    assert_eq!(net.engine.active_calls(), 1, "bob and alice still talk");
    net.send(ZOIPER, &alice.respond(&n, 200, &[], ""));
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3515_2_4_5_a_target_that_never_answers_is_notified_408() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "dave", &[]));
    answer_notify(&mut net, &alice, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(DAVE, &dave.respond(&to_dave, 180, &[], ""));
    answer_notify(&mut net, &alice, &sent);
    // call_timeout (60 s): dave's leg is cancelled.
    let sent = net.after(Duration::from_secs(60));
    let cancel = sent.request(DAVE, Method::Cancel);
    net.send(DAVE, &dave.respond(&cancel, 200, &[], ""));
    let sent = net.send(DAVE, &dave.respond(&to_dave, 487, &[], ""));
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(notified(&n).0, "SIP/2.0 408 Request Timeout");
    answer_notify(&mut net, &alice, &sent);
    assert_eq!(net.engine.active_calls(), 1);
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3515_a_refer_to_an_unknown_user_is_notified_404() {
    let mut net = net_with_dave();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "nobody", &[]));
    assert_eq!(sent.ladder(), ["alice<-202 REFER", "alice<-NOTIFY"]);
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(
        notified(&n),
        (
            "SIP/2.0 404 Not Found".into(),
            "terminated;reason=noresource".into()
        )
    );
    answer_notify(&mut net, &alice, &sent);
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3515_2_4_1_a_refer_without_refer_to_gets_400() {
    let mut net = net_with_dave();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let msg = alice.in_dialog(&mut b, "REFER", None, &["Referred-By: <sip:alice@x>"], "");
    let sent = net.send(ZOIPER, &msg);
    assert_eq!(sent.ladder(), ["alice<-400 REFER"]);
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn a_transferor_hanging_up_early_leaves_the_caller_with_the_target() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "dave", &[]));
    answer_notify(&mut net, &alice, &sent);
    let to_dave = sent.request(DAVE, Method::Invite);
    // Zoiper-style: the transferor hangs up right after the 202.
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    assert_eq!(
        sent.ladder(),
        ["alice<-200 BYE"],
        "bob stays, dave rings on"
    );
    let sent = net.send(
        DAVE,
        &dave.respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    assert_eq!(
        sent.ladder(),
        ["dave<-ACK", "bob<-INVITE"],
        "no NOTIFY, no BYE to alice"
    );
    let reinvite = sent.request(BOB, Method::Invite);
    net.send(
        BOB,
        &bob.ua.respond(&reinvite, 200, &[], &sdp("bob", 8000, "")),
    );
    assert_eq!(
        net.engine.poll_cdr().unwrap().hangup_cause,
        "BLIND_TRANSFER"
    );
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "dave<-BYE"]);
    net.send(
        DAVE,
        &dave.respond(&sent.request(DAVE, Method::Bye), 200, &[], ""),
    );
    assert_eq!(net.cdr().callee.user, "dave");
    net.assert_drained();
}

#[test]
fn with_the_relay_the_target_gets_our_ports_and_the_caller_no_reinvite() {
    let (mut net, relay) = relayed_net(|_| {});
    net.register_contact("dave", DAVE, DAVE_CONTACT);
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (to_bob, to_alice, mut a, mut b) = anchored_call(&mut net, &mut bob, &mut alice);
    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "dave", &[]));
    let to_dave = sent.request(DAVE, Method::Invite);
    assert_eq!(
        audio_port(&to_dave.body),
        to_alice,
        "dave gets the ports alice had: bob's media path stays"
    );
    let sent = net.send(
        DAVE,
        &dave.respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    assert_eq!(sent.ladder(), ["dave<-ACK", "alice<-NOTIFY", "alice<-BYE"]);
    // bob's RTP now goes to dave, and dave's to bob.
    let now = net.now;
    let t = relay
        .lock()
        .handle_packet(now, to_bob, addr("192.168.4.4:8000"), &rtp(1, 11))
        .expect("bob's RTP is relayed");
    assert_eq!(t.to, addr("192.168.4.4:9400"));
    let t = relay
        .lock()
        .handle_packet(now, to_alice, addr("192.168.4.4:9400"), &rtp(1, 33))
        .expect("dave's RTP is relayed");
    assert_eq!(t.to, addr("192.168.4.4:8000"));
    let _ = net.engine.poll_cdr().expect("the transferor's CDR");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "dave<-BYE"]);
    let rec = net.cdr();
    assert_eq!(rec.callee.user, "dave");
    assert!(rec.media.is_some());
    let r = relay.lock();
    assert_eq!(r.pool_free(), r.pool_capacity());
}

#[test]
fn rfc3891_a_replaces_refer_from_the_caller_still_reaches_the_callee_with_refer_to() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let refer = bob.ua.in_dialog(
        &mut a,
        "REFER",
        None,
        &[
            "Refer-To: <sip:carol@192.168.4.4?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            "Referred-By: \"Bob\" <sip:bob@192.168.4.4>",
        ],
        "",
    );
    let sent = net.send(BOB, &refer);
    let relayed = sent.request(ZOIPER, Method::Refer);
    assert_eq!(
        req_header(&relayed, "Refer-To"),
        Some("<sip:carol@192.168.4.4?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>")
    );
    assert_eq!(
        req_header(&relayed, "Referred-By"),
        Some("\"Bob\" <sip:bob@192.168.4.4>")
    );
    let sent = net.send(ZOIPER, &alice.respond(&relayed, 202, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-202 REFER"]);
    let notify = alice.in_dialog(
        &mut b,
        "NOTIFY",
        None,
        &[
            "Event: refer",
            "Subscription-State: terminated;reason=noresource",
            "Content-Type: message/sipfrag",
        ],
        "SIP/2.0 200 OK\r\n",
    );
    let sent = net.send(ZOIPER, &notify);
    let n = sent.request(BOB, Method::Notify);
    assert_eq!(
        req_header(&n, "Subscription-State"),
        Some("terminated;reason=noresource")
    );
    net.send(BOB, &bob.ua.respond(&n, 200, &[], ""));
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

/// `v` %-escaped for a URI header (RFC 3261 §19.1.1).
fn escaped(v: &str) -> String {
    v.bytes()
        .map(|c| match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}

#[test]
fn rfc5589_7_attended_transfer_joins_the_caller_and_the_consulted_party() {
    let mut net = net_with_dave();
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    // alice (bob's callee) consults dave in a call of her own.
    let mut consult = Caller::as_user("alice", ZOIPER);
    consult.ua.branches = 100;
    let msg = consult.invite_to("dave", &[], "");
    let r407 = net.send(ZOIPER, &msg).response(ZOIPER, 407);
    consult.learn(&r407);
    net.send(ZOIPER, &consult.ack_non2xx(&r407));
    let sent = net.send(
        ZOIPER,
        &consult.invite_to("dave", &[], &sdp("alice", 9002, "")),
    );
    let to_dave = sent.request(DAVE, Method::Invite);
    let dave_sdp = sdp("dave", 9400, "");
    let sent = net.send(DAVE, &dave.respond(&to_dave, 200, &[], &dave_sdp));
    let ok = sent.response(ZOIPER, 200);
    let c2 = consult.dialog(&ok);
    assert!(net.send(ZOIPER, &consult.ack(&c2, "")).is_empty());

    // REFER on bob's call naming the consultation (RFC 3891 from alice's view).
    let ours = ok.headers.to_tag().expect("our tag");
    let replaces = format!("{};to-tag={ours};from-tag={}", c2.call_id, consult.ua.tag);
    let refer_to = format!(
        "Refer-To: <sip:dave@192.168.4.4?Replaces={}>",
        escaped(&replaces)
    );
    let sent = net.send(
        ZOIPER,
        &alice.in_dialog(&mut b, "REFER", None, &[refer_to.as_str()], ""),
    );
    assert_eq!(
        sent.ladder(),
        [
            "alice<-202 REFER",
            "alice<-NOTIFY",
            "alice<-BYE",
            "dave<-INVITE",
            "bob<-INVITE",
            "alice<-BYE"
        ],
        "both of alice's legs end; bob and dave are re-INVITEd with each other"
    );
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(notified(&n).0, "SIP/2.0 200 OK");
    let to_d = sent.request(DAVE, Method::Invite);
    assert_eq!(
        to_d.headers.call_id(),
        to_dave.headers.call_id(),
        "dave's own dialog"
    );
    assert_eq!(&to_d.body[..], sdp("bob", 8000, "").as_bytes());
    let to_b = sent.request(BOB, Method::Invite);
    assert_eq!(&to_b.body[..], dave_sdp.as_bytes());
    for r in sent.requests(ZOIPER, Method::Bye) {
        net.send(ZOIPER, &alice.respond(&r, 200, &[], ""));
    }
    net.send(ZOIPER, &alice.respond(&n, 200, &[], ""));
    let sent = net.send(DAVE, &dave.respond(&to_d, 200, &[], &dave_sdp));
    assert_eq!(sent.ladder(), ["dave<-ACK"]);
    let sent = net.send(BOB, &bob.ua.respond(&to_b, 200, &[], &sdp("bob", 8000, "")));
    assert_eq!(sent.ladder(), ["bob<-ACK"]);
    let mine = net.engine.poll_cdr().expect("alice's part of bob's call");
    assert_eq!(mine.hangup_cause, "ATTENDED_TRANSFER");
    assert_eq!(mine.transferred_to.as_deref(), Some("dave"));
    let consultation = net.engine.poll_cdr().expect("the consultation's CDR");
    assert_eq!(
        (
            consultation.caller.user.as_str(),
            consultation.callee.user.as_str()
        ),
        ("alice", "dave")
    );
    assert_eq!(consultation.hangup_cause, "ATTENDED_TRANSFER");

    // bob and dave talk; dave hangs up.
    let mut d = dave.uas_dialog(&to_dave);
    let mut dave = dave;
    let sent = net.send(DAVE, &dave.in_dialog(&mut d, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["dave<-200 BYE", "bob<-BYE"]);
    net.send(
        BOB,
        &bob.ua
            .respond(&sent.request(BOB, Method::Bye), 200, &[], ""),
    );
    let rec = net.cdr();
    assert_eq!(
        (rec.caller.user.as_str(), rec.callee.user.as_str()),
        ("bob", "dave")
    );
    assert_eq!(rec.transferred_by.as_deref(), Some("alice"));
    let _ = &mut a;
    net.assert_drained();
}

#[test]
fn a_caller_held_by_the_transferor_is_taken_off_hold_when_the_target_answers() {
    let (mut net, _relay) = relayed_net(|_| {});
    net.register_contact("dave", DAVE, DAVE_CONTACT);
    let (mut bob, mut alice, dave) = (Caller::bob(), Ua::alice(), dave());
    let (to_bob, _to_alice, mut a, mut b) = anchored_call(&mut net, &mut bob, &mut alice);
    // alice holds bob before transferring him.
    let hold = sdp("alice", 9000, "a=sendonly\r\n");
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "INVITE", None, &[], &hold));
    let reinv = sent.request(BOB, Method::Invite);
    let held = sdp("bob", 8000, "a=recvonly\r\n");
    let sent = net.send(BOB, &bob.ua.respond(&reinv, 200, &[], &held));
    let ok = sent.response(ZOIPER, 200);
    let seq = ok.headers.cseq().map(|c| c.seq);
    net.send(
        ZOIPER,
        &alice.in_dialog(&mut b.clone(), "ACK", seq, &[], ""),
    );

    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "dave", &[]));
    answer_notify(&mut net, &alice, &sent);
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
        ["dave<-ACK", "bob<-INVITE", "alice<-NOTIFY", "alice<-BYE"]
    );
    let unhold = sent.request(BOB, Method::Invite);
    assert_eq!(audio_port(&unhold.body), to_bob, "bob keeps his relay port");
    assert!(!std::str::from_utf8(&unhold.body)
        .unwrap()
        .contains("sendonly"));
    let sent = net.send(
        BOB,
        &bob.ua.respond(&unhold, 200, &[], &sdp("bob", 8000, "")),
    );
    assert_eq!(sent.ladder(), ["bob<-ACK"]);
    let _ = net.engine.poll_cdr();
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "dave<-BYE"]);
}
