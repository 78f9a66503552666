use super::*;
use crate::dialog::test_msgs::*;
use crate::sip::response_to;

fn uas() -> Dialog {
    Dialog::from_uas(&request(A_INVITE), "cDg7NyjpeSg4m", our_contact()).unwrap()
}

fn uris(d: &Dialog) -> Vec<String> {
    d.route_set().iter().map(|r| r.uri.to_string()).collect()
}

#[test]
fn uas_dialog_from_the_seed_invite_12_1_1() {
    let d = uas();
    assert_eq!(
        d.key(),
        &DialogKey::new(A_CALL_ID, "cDg7NyjpeSg4m", "15c8325a")
    );
    assert_eq!((d.role(), d.state()), (DialogRole::Uas, DialogState::Early));
    assert_eq!(d.remote_target().as_str(), "sip:bob@192.168.4.4:26000");
    // The request's Record-Route as is: the proxy next to us first.
    assert_eq!(
        uris(&d),
        ["sip:192.168.4.9;lr;ftag=15c8325a", "sip:192.168.4.8;lr"]
    );
    assert_eq!((d.remote_cseq(), d.local_cseq()), (Some(2), None));
    assert_eq!(d.next_local_cseq(), Some(1));
    assert_eq!(d.local_uri().tag(), Some("cDg7NyjpeSg4m"));
    assert_eq!(d.local_uri().uri.as_str(), "sip:alice@192.168.4.4");
    assert_eq!(d.remote_uri().tag(), Some("15c8325a"));
    assert_eq!(d.pending_incoming_invite(), Some(2));
    assert!(!d.secure());
}

#[test]
fn uas_dialog_is_confirmed_by_the_2xx_we_send() {
    let inv = request(A_INVITE);
    let mut d = uas();
    let mut ringing = response_to(&inv, 180, "Ringing");
    d.fill_response(&inv, &mut ringing);
    assert_eq!(d.handle_sent_response(&ringing), DialogState::Early);
    assert_eq!(d.pending_incoming_invite(), Some(2));
    let mut ok = response_to(&inv, 200, "OK");
    d.fill_response(&inv, &mut ok);
    assert_eq!(d.handle_sent_response(&ok), DialogState::Confirmed);
    assert_eq!(d.pending_incoming_invite(), None);

    let mut d = uas();
    let busy = response_to(&inv, 486, "Busy Here");
    assert_eq!(d.handle_sent_response(&busy), DialogState::Terminated);
}

#[test]
fn fill_response_tags_copies_record_route_and_adds_contact() {
    let inv = request(A_INVITE);
    let d = uas();
    let mut ok = response_to(&inv, 200, "OK");
    d.fill_response(&inv, &mut ok);
    assert_eq!(ok.headers.to_tag().as_deref(), Some("cDg7NyjpeSg4m"));
    let rr: Vec<String> = ok
        .headers
        .record_routes()
        .unwrap()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(rr, uris(&d));
    assert_eq!(
        ok.headers.get_str(&HeaderName::Contact),
        Some("<sip:alice@192.168.4.4:5060;transport=udp>")
    );
    let mut trying = response_to(&inv, 100, "Trying");
    d.fill_response(&inv, &mut trying);
    assert_eq!(trying.headers.to_tag(), None);
    assert!(trying.headers.get(&HeaderName::Contact).is_none());
    // Only target refreshes get our Contact in their 2xx.
    for (method, contact) in [("INFO", false), ("MESSAGE", false), ("UPDATE", true)] {
        let req = a_in_dialog(method, 3, "");
        let mut ok = response_to(&req, 200, "OK");
        d.fill_response(&req, &mut ok);
        assert_eq!(
            ok.headers.get(&HeaderName::Contact).is_some(),
            contact,
            "{method}"
        );
        assert_eq!(ok.headers.to_tag().as_deref(), Some("cDg7NyjpeSg4m"));
    }
    let mut busy = response_to(&inv, 486, "Busy Here");
    d.fill_response(&inv, &mut busy);
    assert_eq!(busy.headers.to_tag().as_deref(), Some("cDg7NyjpeSg4m"));
    assert!(busy.headers.get(&HeaderName::RecordRoute).is_none());
}

#[test]
fn uas_creation_refuses_what_cannot_make_a_dialog() {
    let no_contact = A_INVITE.replace("Contact: <sip:bob@192.168.4.4:26000>\n", "");
    assert_eq!(
        Dialog::from_uas(&request(&no_contact), "t", our_contact()),
        Err(DialogError::NoContact)
    );
    let tagged = A_INVITE.replace(
        "<sip:alice@192.168.4.4>\n",
        "<sip:alice@192.168.4.4>;tag=x\n",
    );
    assert_eq!(
        Dialog::from_uas(&request(&tagged), "t", our_contact()),
        Err(DialogError::AlreadyInDialog)
    );
    let no_cseq = A_INVITE.replace("CSeq: 2 INVITE\n", "");
    assert!(matches!(
        Dialog::from_uas(&request(&no_cseq), "t", our_contact()),
        Err(DialogError::Header(_))
    ));
    let sips = A_INVITE.replace("INVITE sip:alice@", "INVITE sips:alice@");
    assert!(Dialog::from_uas(&request(&sips), "t", our_contact())
        .unwrap()
        .secure());
}

#[test]
fn uac_dialog_from_180_then_200_12_1_2_and_13_2_2_4() {
    let inv = request(B_INVITE);
    let mut d = Dialog::from_uac(&inv, &b_response("180 Ringing", Some("3813e926"))).unwrap();
    assert_eq!(
        d.key(),
        &DialogKey::new(B_CALL_ID, "Dp9ZQS3SB26pg", "3813e926")
    );
    assert_eq!((d.role(), d.state()), (DialogRole::Uac, DialogState::Early));
    assert_eq!(d.pending_outgoing_invite(), Some(130069214));
    // Record-Route reversed for the UAC: the proxy next to us first.
    assert_eq!(uris(&d), ["sip:10.0.0.1;lr", "sip:10.0.0.2;lr"]);
    assert_eq!(
        d.local_contact().uri.as_str(),
        "sip:mod_sofia@192.168.4.4:5060"
    );

    let e = d
        .handle_response(&b_response("200 OK", Some("3813e926")))
        .unwrap();
    assert_eq!(e.state, DialogState::Confirmed);
    assert!(!e.target_refreshed);
    assert_eq!(d.pending_outgoing_invite(), None);
    assert_eq!(
        d.remote_target().as_str(),
        "sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP"
    );
    assert_eq!((d.local_cseq(), d.remote_cseq()), (Some(130069214), None));
    assert_eq!(d.next_local_cseq(), Some(130069215));

    let direct = Dialog::from_uac(&inv, &b_response("200 OK", Some("3813e926"))).unwrap();
    assert_eq!(direct.state(), DialogState::Confirmed);
    assert_eq!(direct.route_set(), d.route_set());
}

#[test]
fn uac_responses_that_make_no_dialog() {
    let inv = request(B_INVITE);
    for (status, tag, want) in [
        ("100 Trying", None, 100),
        ("180 Ringing", None, 180),
        ("100 Trying", Some("x"), 100),
        ("486 Busy Here", Some("x"), 486),
    ] {
        assert_eq!(
            Dialog::from_uac(&inv, &b_response(status, tag)),
            Err(DialogError::NotDialogCreating(want))
        );
    }
    let mut other = b_response("200 OK", Some("x"));
    other.headers.set(HeaderName::CallId, "someone-else");
    assert_eq!(Dialog::from_uac(&inv, &other), Err(DialogError::Mismatch));
    // A 2xx from an RFC 2543 UAS without a To tag still makes a dialog, with a null tag.
    let d = Dialog::from_uac(&inv, &b_response("200 OK", None)).unwrap();
    assert_eq!(d.remote_tag(), "");
}

#[test]
fn early_dialog_ends_on_non_2xx_and_any_on_481_or_408_12_2_1_2() {
    let inv = request(B_INVITE);
    let mut d = Dialog::from_uac(&inv, &b_response("180 Ringing", Some("t"))).unwrap();
    let e = d
        .handle_response(&b_response("486 Busy Here", Some("t")))
        .unwrap();
    assert_eq!(e.state, DialogState::Terminated);
    assert_eq!(d.pending_outgoing_invite(), None);

    let mut d = Dialog::from_uac(&inv, &b_response("200 OK", Some("t"))).unwrap();
    let mut r = b_response("481 Call/Transaction Does Not Exist", Some("t"));
    r.headers.set(HeaderName::CSeq, "130069215 INFO");
    assert_eq!(
        d.handle_response(&r).unwrap().state,
        DialogState::Terminated
    );

    let mut d = Dialog::from_uac(&inv, &b_response("200 OK", Some("t"))).unwrap();
    assert_eq!(
        d.handle_request_failure(&Method::Info),
        DialogState::Terminated
    );
}

#[test]
fn two_xx_to_a_target_refresh_replaces_the_remote_target() {
    let inv = request(B_INVITE);
    let mut d = Dialog::from_uac(&inv, &b_response("200 OK", Some("t"))).unwrap();
    let mut ok = b_response("200 OK", Some("t"));
    ok.headers.set(HeaderName::CSeq, "130069215 UPDATE");
    ok.headers
        .set(HeaderName::Contact, "<sip:alice@198.51.100.7:5090>");
    let e = d.handle_response(&ok).unwrap();
    assert!(e.target_refreshed);
    assert_eq!(d.remote_target().as_str(), "sip:alice@198.51.100.7:5090");
    // A 2xx to INFO is no target refresh.
    ok.headers.set(HeaderName::CSeq, "130069216 INFO");
    ok.headers
        .set(HeaderName::Contact, "<sip:alice@203.0.113.1>");
    assert!(!d.handle_response(&ok).unwrap().target_refreshed);
    assert_eq!(d.remote_target().as_str(), "sip:alice@198.51.100.7:5090");
    // The route set stays what the 2xx to the INVITE made it.
    assert_eq!(uris(&d), ["sip:10.0.0.1;lr", "sip:10.0.0.2;lr"]);
}

#[test]
fn glare_backoff_follows_14_1() {
    let uac = Dialog::from_uac(&request(B_INVITE), &b_response("200 OK", Some("t"))).unwrap();
    let uas = uas();
    for r in [0, 1, 190, 191, 200, 12_345, u32::MAX] {
        let owner = uac.glare_retry_delay(r).as_millis();
        assert!((2100..=4000).contains(&owner), "{owner}");
        assert_eq!(owner % 10, 0);
        let other = uas.glare_retry_delay(r).as_millis();
        assert!(other <= 2000, "{other}");
    }
    assert_eq!(uac.glare_retry_delay(0).as_millis(), 2100);
    assert_eq!(uac.glare_retry_delay(190).as_millis(), 4000);
    assert_eq!(uas.glare_retry_delay(200).as_millis(), 2000);
}
