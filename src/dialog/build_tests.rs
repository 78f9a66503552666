use super::*;
use crate::dialog::test_msgs::*;
use crate::sip::{response_to, Via};

fn udp(branch: &str) -> ViaSpec {
    ViaSpec::new(Transport::Udp, "192.168.4.4", branch)
}

fn b_leg() -> Dialog {
    Dialog::from_uac(&request(B_INVITE), &b_response("200 OK", Some("3813e926"))).unwrap()
}

fn a_leg_confirmed(invite: &str) -> Dialog {
    let inv = request(invite);
    let mut d = Dialog::from_uas(&inv, "cDg7NyjpeSg4m", our_contact()).unwrap();
    d.handle_sent_response(&response_to(&inv, 200, "OK"));
    d
}

fn routes(r: &Request) -> Vec<String> {
    r.headers
        .get_all(&HeaderName::Route)
        .map(|h| h.value_str().unwrap().to_string())
        .collect()
}

fn get(r: &Request, n: HeaderName) -> &str {
    r.headers.get_str(&n).unwrap()
}

#[test]
fn bye_from_the_uac_follows_12_2_1_1() {
    let mut d = b_leg();
    let bye = d.new_request(Method::Bye, &udp("z9hG4bKbye1")).unwrap();
    assert_eq!(
        bye.uri_str(),
        Some("sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP")
    );
    assert_eq!(routes(&bye), ["<sip:10.0.0.1;lr>", "<sip:10.0.0.2;lr>"]);
    assert_eq!(
        get(&bye, HeaderName::Via),
        "SIP/2.0/UDP 192.168.4.4;rport;branch=z9hG4bKbye1"
    );
    assert_eq!(get(&bye, HeaderName::MaxForwards), "70");
    assert_eq!(
        get(&bye, HeaderName::From),
        "\"Bob\" <sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg"
    );
    assert_eq!(
        get(&bye, HeaderName::To),
        "<sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>;tag=3813e926"
    );
    assert_eq!(get(&bye, HeaderName::CallId), B_CALL_ID);
    assert_eq!(get(&bye, HeaderName::CSeq), "130069215 BYE");
    assert_eq!(
        get(&bye, HeaderName::Contact),
        "<sip:mod_sofia@192.168.4.4:5060>"
    );
    // The request round-trips through our own parser.
    let mut wire = crate::sip::parse_datagram(&bye.to_bytes()).unwrap();
    assert_eq!(wire.headers_mut().remove(&HeaderName::ContentLength), 1);
    assert_eq!(wire.as_request(), Some(&bye));
    // §15.1.1: the dialog is over once the BYE is handed down.
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(
        d.new_request(Method::Info, &udp("z9hG4bKx")),
        Err(DialogError::Terminated)
    );
}

#[test]
fn cseq_increments_except_for_ack() {
    let mut d = b_leg();
    let next = |m: Method, d: &mut Dialog| {
        let r = d.new_request(m, &udp("z9hG4bKn")).unwrap();
        get(&r, HeaderName::CSeq).to_string()
    };
    assert_eq!(next(Method::Info, &mut d), "130069215 INFO");
    assert_eq!(next(Method::Update, &mut d), "130069216 UPDATE");
    assert_eq!(next(Method::Message, &mut d), "130069217 MESSAGE");
    assert_eq!(next(Method::Invite, &mut d), "130069218 INVITE");
    assert_eq!(d.pending_outgoing_invite(), Some(130069218));
    // §13.2.2.4: the ACK takes the INVITE's number and leaves the local CSeq alone.
    assert_eq!(next(Method::Ack, &mut d), "130069218 ACK");
    assert_eq!(d.local_cseq(), Some(130069218));
    assert_eq!(
        d.new_request(Method::Invite, &udp("z9hG4bKy")),
        Err(DialogError::InviteInProgress)
    );
    let mut ok = b_response("200 OK", Some("3813e926"));
    ok.headers.set(HeaderName::CSeq, "130069218 INVITE");
    d.handle_response(&ok).unwrap();
    assert_eq!(d.pending_outgoing_invite(), None);
    assert_eq!(next(Method::Bye, &mut d), "130069219 BYE");
}

#[test]
fn message_has_no_contact_and_cancel_is_not_built_here() {
    let mut d = b_leg();
    let m = d.new_request(Method::Message, &udp("z9hG4bKm")).unwrap();
    assert!(m.headers.get(&HeaderName::Contact).is_none());
    assert_eq!(
        d.new_request(Method::Cancel, &udp("z9hG4bKc")),
        Err(DialogError::CancelNotFromDialog)
    );
    assert_eq!(d.local_cseq(), Some(130069215));
}

#[test]
fn ack_for_the_seed_2xx_matches_the_seed_ack() {
    // The seed's 200 from alice had no Record-Route; its ACK went straight to her Contact.
    let inv = request(B_INVITE);
    let mut ok = b_response("200 OK", Some("3813e926"));
    ok.headers.remove(&HeaderName::RecordRoute);
    let mut d = Dialog::from_uac(&inv, &ok).unwrap();
    let ack = d
        .new_request(
            Method::Ack,
            &ViaSpec::new(Transport::Udp, "192.168.4.4", "z9hG4bKack"),
        )
        .unwrap();
    let seed_ack = request(
        "ACK sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP SIP/2.0
Via: SIP/2.0/UDP 192.168.4.4;rport;branch=z9hG4bKF72SSpFNv0K8g
Max-Forwards: 70
From: \"Bob\" <sip:bob@192.168.4.4>;tag=Dp9ZQS3SB26pg
To: <sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>;tag=3813e926
Call-ID: 0d74ac35-cca4-122d-81a2-2990e5b2bd3e
CSeq: 130069214 ACK
Contact: <sip:mod_sofia@192.168.4.4:5060>
Content-Length: 0

",
    );
    assert_eq!(ack.uri, seed_ack.uri);
    for n in [
        HeaderName::MaxForwards,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::Contact,
    ] {
        assert_eq!(ack.headers.get_str(&n), seed_ack.headers.get_str(&n), "{n}");
    }
    assert!(routes(&ack).is_empty());
    // A new branch, not the INVITE's (§13.2.2.4: the ACK is its own transaction).
    let via = Via::parse(get(&ack, HeaderName::Via)).unwrap();
    assert!(via.has_rfc3261_branch());
    assert_ne!(via.branch(), Some("z9hG4bKey90QUyHZQXNN"));
    assert_eq!(via.rport(), Some(None));
}

#[test]
fn uas_side_builds_from_its_own_numbers_and_the_route_set_as_received() {
    let mut d = a_leg_confirmed(A_INVITE);
    let bye = d.new_request(Method::Bye, &udp("z9hG4bKb")).unwrap();
    assert_eq!(bye.uri_str(), Some("sip:bob@192.168.4.4:26000"));
    assert_eq!(
        routes(&bye),
        ["<sip:192.168.4.9;lr;ftag=15c8325a>", "<sip:192.168.4.8;lr>"]
    );
    assert_eq!(get(&bye, HeaderName::CSeq), "1 BYE");
    assert_eq!(
        get(&bye, HeaderName::From),
        "\"alice\" <sip:alice@192.168.4.4>;tag=cDg7NyjpeSg4m"
    );
    assert_eq!(
        get(&bye, HeaderName::To),
        "\"Bob\" <sip:bob@192.168.4.4>;tag=15c8325a"
    );
}

#[test]
fn early_uas_may_neither_bye_nor_reinvite_and_cannot_ack() {
    let mut d = Dialog::from_uas(&request(A_INVITE), "t1", our_contact()).unwrap();
    assert!(matches!(
        d.new_request(Method::Bye, &udp("z9hG4bK1")),
        Err(DialogError::NotAllowedNow(_))
    ));
    assert_eq!(
        d.new_request(Method::Invite, &udp("z9hG4bK1")),
        Err(DialogError::InviteInProgress)
    );
    assert_eq!(
        d.new_request(Method::Ack, &udp("z9hG4bK1")),
        Err(DialogError::NoInviteToAck)
    );
    // UPDATE is allowed in an early dialog (RFC 3311).
    let up = d.new_request(Method::Update, &udp("z9hG4bK2")).unwrap();
    assert_eq!(get(&up, HeaderName::CSeq), "1 UPDATE");
}

#[test]
fn strict_router_goes_in_the_request_uri_12_2_1_1() {
    let invite = A_INVITE.replace(
        "Record-Route: <sip:192.168.4.9;lr;ftag=15c8325a>",
        "Record-Route: <sip:192.168.4.9;transport=udp;method=INVITE?x=y>",
    );
    let mut d = a_leg_confirmed(&invite);
    assert!(d.strict_routing());
    let info = d.new_request(Method::Info, &udp("z9hG4bKs")).unwrap();
    assert_eq!(info.uri_str(), Some("sip:192.168.4.9;transport=udp"));
    assert_eq!(
        routes(&info),
        ["<sip:192.168.4.8;lr>", "<sip:bob@192.168.4.4:26000>"]
    );
    assert_eq!(
        d.next_hop().unwrap().addr,
        Some("192.168.4.9:5060".parse().unwrap())
    );
    // The request alone cannot tell (its top Route has `lr`): only the dialog knows that
    // the strict router is in the Request-URI (§8.1.2).
    assert_eq!(
        crate::dialog::NextHop::of_request(&info).unwrap().addr,
        Some("192.168.4.8:5060".parse().unwrap())
    );
}

#[test]
fn null_remote_tag_and_tcp_via_and_exhausted_cseq() {
    let inv = request(B_INVITE);
    let mut d = Dialog::from_uac(&inv, &b_response("200 OK", None)).unwrap();
    let tcp = ViaSpec::new(Transport::Tcp, "192.168.4.4:5060", "z9hG4bKt");
    let r = d.new_request(Method::Info, &tcp).unwrap();
    assert_eq!(
        get(&r, HeaderName::To),
        "<sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>"
    );
    assert_eq!(
        get(&r, HeaderName::Via),
        "SIP/2.0/TCP 192.168.4.4:5060;branch=z9hG4bKt"
    );

    let top = B_INVITE.replace("CSeq: 130069214 INVITE", "CSeq: 4294967295 INVITE");
    let mut ok = b_response("200 OK", Some("t"));
    ok.headers.set(HeaderName::CSeq, "4294967295 INVITE");
    let mut d = Dialog::from_uac(&request(&top), &ok).unwrap();
    assert_eq!(d.next_local_cseq(), None);
    assert_eq!(
        d.new_request(Method::Info, &udp("z9hG4bKe")),
        Err(DialogError::CSeqExhausted)
    );
    // The ACK still goes out: it reuses the INVITE's number.
    assert!(d.new_request(Method::Ack, &udp("z9hG4bKa")).is_ok());
}
