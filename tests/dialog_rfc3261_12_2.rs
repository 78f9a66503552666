//! RFC 3261 §12.2: requests within the seed call's dialogs — built by us (§12.2.1.1, loose
//! and strict routing, CSeq rules) and received from the phones (§12.2.2: CSeq order → 500,
//! target refresh). Finding the dialog by key (481 when none has it) is the call table's and
//! is tested with the engine.

mod dialog_common;

use dialog_common::*;
use ferroswitch::dialog::{
    Dialog, DialogKey, DialogRejection, DialogState, RequestVerdict, ViaSpec,
};
use ferroswitch::net::Transport;
use ferroswitch::sip::{response_to, HeaderName, Method, Reason, Request};

const B_CALL_ID: &str = "0d74ac35-cca4-122d-81a2-2990e5b2bd3e";

/// The seed's call after both 200s: the a-leg (bob, we are UAS) and the b-leg (alice, we
/// are UAC), as the B2BUA keeps them on a call.
fn seed_call() -> (Dialog, Dialog) {
    let a_inv = seed_a_leg_invite();
    let mut a = Dialog::from_uas(
        &a_inv,
        "cDg7NyjpeSg4m",
        addr("<sip:alice@192.168.4.4:5060;transport=udp>"),
    )
    .unwrap();
    a.handle_sent_response(&response_to(&a_inv, 200, "OK"));
    let b = Dialog::from_uac(
        &request(SEED_B_INVITE),
        &seed_b_response("200 OK", Some("3813e926"), ""),
    )
    .unwrap();
    assert_eq!(
        b.key(),
        &DialogKey::new(B_CALL_ID, "Dp9ZQS3SB26pg", "3813e926")
    );
    (a, b)
}

/// A request from alice on the b-leg (To carries our tag).
fn from_alice(method: &str, cseq: u32, extra: &str) -> Request {
    request(&format!(
        "{method} sip:mod_sofia@192.168.4.4:5060 SIP/2.0
Via: SIP/2.0/UDP 192.168.4.4:5090;branch=z9hG4bK-{method}{cseq};rport
Max-Forwards: 70
Contact: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>
To: \"Bob\"<sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
From: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>;tag=3813e926
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: {cseq} {method}
{extra}Content-Length: 0

"
    ))
}

fn udp() -> ViaSpec {
    ViaSpec::new(Transport::Udp, "192.168.4.4", dialog_common::fresh_branch())
}

#[test]
fn seed_hangup_bye_on_the_b_leg_then_bye_on_the_a_leg() {
    let (mut a_leg, mut b_leg) = seed_call();
    // The seed's BYE from alice, exactly as traced.
    let bye = request(
        "BYE sip:mod_sofia@192.168.4.4:5060 SIP/2.0
Via: SIP/2.0/UDP 192.168.4.4:5090;branch=z9hG4bK-d8754z-2146ae0ddd113efe-1---d8754z-;rport
Max-Forwards: 70
Contact: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>
To: \"Bob\"<sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
From: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>;tag=3813e926
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: 2 BYE
User-Agent: Zoiper rev.5415
Content-Length: 0

",
    );
    let a = accepted(b_leg.handle_request(&bye));
    assert_eq!((&a.key, a.state), (b_leg.key(), DialogState::Terminated));
    assert_eq!(b_leg.remote_cseq(), Some(2));

    // The B2BUA hangs up the a-leg: to bob's Contact, our first CSeq, with the Reason.
    let mut bye_a = a_leg.new_request(Method::Bye, &udp()).unwrap();
    bye_a.headers.push(
        HeaderName::Reason,
        "Q.850;cause=16;text=\"NORMAL_CLEARING\"",
    );
    assert_eq!(bye_a.uri_str(), Some("sip:bob@192.168.4.4:26000"));
    assert!(route_uris(&bye_a).is_empty());
    assert_eq!(header(&bye_a, HeaderName::CSeq), "1 BYE");
    assert_eq!(
        header(&bye_a, HeaderName::From),
        "\"alice\" <sip:alice@192.168.4.4>;tag=cDg7NyjpeSg4m"
    );
    assert_eq!(
        header(&bye_a, HeaderName::To),
        "\"Bob\" <sip:bob@192.168.4.4>;tag=15c8325a"
    );
    assert_eq!(
        header(&bye_a, HeaderName::CallId),
        "YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ."
    );
    let reason = Reason::parse(header(&bye_a, HeaderName::Reason)).unwrap();
    assert_eq!(reason.cause(), Some(16));
    assert_eq!(reason.text().as_deref(), Some("NORMAL_CLEARING"));
    let hop = a_leg.next_hop().unwrap();
    assert_eq!(hop.peer().unwrap().to_string(), "udp:192.168.4.4:26000");
    assert_eq!(a_leg.state(), DialogState::Terminated);
}

#[test]
fn cseq_order_lower_or_equal_gets_500_12_2_2() {
    let (_, mut b_leg) = seed_call();
    accepted(b_leg.handle_request(&from_alice("INFO", 5, "")));
    for stale in [5, 4, 1] {
        let info = from_alice("INFO", stale, "");
        let v = b_leg.handle_request(&info);
        let RequestVerdict::Reject(r) = v else {
            panic!("CSeq {stale} accepted")
        };
        assert_eq!(
            r,
            DialogRejection::OutOfOrder {
                cseq: stale,
                last: 5
            }
        );
        let resp = r.response_to(&info, 3);
        assert_eq!(resp.status, 500);
        assert!(resp.headers.get(&HeaderName::RetryAfter).is_none());
        assert_eq!(resp.headers.to_tag().as_deref(), Some("Dp9ZQS3SB26pg"));
    }
    assert_eq!(b_leg.remote_cseq(), Some(5));
    // Alice's CSeq space is hers; ours goes on from our INVITE.
    let ours = b_leg.new_request(Method::Info, &udp()).unwrap();
    assert_eq!(header(&ours, HeaderName::CSeq), "130069215 INFO");
}

#[test]
fn target_refresh_by_reinvite_update_and_2xx_12_2_and_14() {
    let (mut a_leg, mut b_leg) = seed_call();
    // bob moved (new NAT binding) and puts the call on hold with a re-INVITE.
    let reinvite = request(
        "INVITE sip:alice@192.168.4.4:5060;transport=udp SIP/2.0
Via: SIP/2.0/UDP 203.0.113.9:26000;branch=z9hG4bK-hold;rport
Max-Forwards: 70
Contact: <sip:bob@203.0.113.9:26000>
To: \"alice\"<sip:alice@192.168.4.4>;tag=cDg7NyjpeSg4m
From: \"Bob\"<sip:bob@192.168.4.4>;tag=15c8325a
Call-ID: YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.
CSeq: 3 INVITE
Content-Length: 0

",
    );
    let a = accepted(a_leg.handle_request(&reinvite));
    assert!(a.target_refreshed);
    assert_eq!(a_leg.remote_target().as_str(), "sip:bob@203.0.113.9:26000");
    assert_eq!(a_leg.pending_incoming_invite(), Some(3));
    let mut ok = response_to(&reinvite, 200, "OK");
    a_leg.fill_response(&reinvite, &mut ok);
    assert_eq!(ok.headers.to_tag().as_deref(), Some("cDg7NyjpeSg4m"));
    assert!(ok.headers.get(&HeaderName::Contact).is_some());
    a_leg.handle_sent_response(&ok);
    assert_eq!(a_leg.pending_incoming_invite(), None);
    // The re-INVITE's ACK is judged against the re-INVITE's CSeq.
    let mut ack = reinvite.clone();
    ack.method = Method::Ack;
    ack.headers.set(HeaderName::CSeq, "3 ACK");
    accepted(a_leg.handle_request(&ack));
    // From now on our requests go to the new target.
    let info = a_leg.new_request(Method::Info, &udp()).unwrap();
    assert_eq!(info.uri_str(), Some("sip:bob@203.0.113.9:26000"));

    // alice refreshes with UPDATE; then answers our re-INVITE from yet another Contact.
    let update = from_alice("UPDATE", 3, "");
    let mut update = update;
    update
        .headers
        .set(HeaderName::Contact, "<sip:alice@198.51.100.4:5090>");
    assert!(accepted(b_leg.handle_request(&update)).target_refreshed);
    assert_eq!(
        b_leg.remote_target().as_str(),
        "sip:alice@198.51.100.4:5090"
    );
    let reinv = b_leg.new_request(Method::Invite, &udp()).unwrap();
    assert_eq!(header(&reinv, HeaderName::CSeq), "130069215 INVITE");
    let mut ok = seed_b_response("200 OK", Some("3813e926"), "");
    ok.headers.set(HeaderName::CSeq, "130069215 INVITE");
    ok.headers
        .set(HeaderName::Contact, "<sip:alice@198.51.100.5:5090>");
    let e = b_leg.handle_response(&ok).unwrap();
    assert!(e.target_refreshed);
    assert_eq!(b_leg.pending_outgoing_invite(), None);
    let ack = b_leg.new_request(Method::Ack, &udp()).unwrap();
    assert_eq!(ack.uri_str(), Some("sip:alice@198.51.100.5:5090"));
    assert_eq!(header(&ack, HeaderName::CSeq), "130069215 ACK");
}

#[test]
fn strict_router_first_reaches_the_target_through_a_2543_proxy_12_2_1_1() {
    // bob's INVITE came through a strict router (no lr) next to us, then a loose one.
    let mut inv = seed_a_leg_invite();
    inv.headers
        .push_front(HeaderName::RecordRoute, "<sip:10.1.1.2>, <sip:10.1.1.1;lr>");
    let mut a =
        Dialog::from_uas(&inv, "cDg7NyjpeSg4m", addr("<sip:alice@192.168.4.4:5060>")).unwrap();
    a.handle_sent_response(&response_to(&inv, 200, "OK"));
    assert!(a.strict_routing());
    let mut bye = a.new_request(Method::Bye, &udp()).unwrap();
    assert_eq!(bye.uri_str(), Some("sip:10.1.1.2"));
    assert_eq!(
        route_uris(&bye),
        ["sip:10.1.1.1;lr", "sip:bob@192.168.4.4:26000"]
    );
    assert_eq!(
        a.next_hop().unwrap().addr,
        Some("10.1.1.2:5060".parse().unwrap())
    );

    // The strict router (RFC 2543) routes on the top Route and puts it in the Request-URI.
    let top = pop_route(&mut bye);
    bye.uri = top.into_bytes().into();
    // The loose router finds its own URI in the Request-URI (§16.4): the last Route is the
    // real target.
    let mut routes = bye.headers.routes().unwrap();
    let last = routes.pop().unwrap();
    bye.headers.remove(&HeaderName::Route);
    for r in routes {
        bye.headers.push(HeaderName::Route, r.to_bytes());
    }
    bye.uri = last.uri.to_string().into_bytes().into();
    assert_eq!(bye.uri_str(), Some("sip:bob@192.168.4.4:26000"));
    assert!(bye.headers.get(&HeaderName::Route).is_none());
}
