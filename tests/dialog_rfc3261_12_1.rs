//! RFC 3261 §12.1: creating dialogs on both legs of the seed's call, with Record-Route
//! added as if proxies stood on each leg, and an early dialog confirmed by the 200.

mod dialog_common;

use dialog_common::*;
use ferroswitch::dialog::{Dialog, DialogKey, DialogRole, DialogState};
use ferroswitch::sip::{response_to, HeaderName};

const RR_A: [&str; 2] = ["<sip:10.1.1.2;lr;ftag=15c8325a>", "<sip:10.1.1.1;lr>"];
const RR_B: &str = "Record-Route: <sip:10.2.2.2;lr>, <sip:10.2.2.1;lr>\n";

fn route_set(d: &Dialog) -> Vec<String> {
    d.route_set().iter().map(|r| r.uri.to_string()).collect()
}

fn a_leg_invite() -> ferroswitch::sip::Request {
    let mut inv = seed_a_leg_invite();
    // Record-Route lines go where a proxy puts them, above the rest.
    for rr in RR_A.iter().rev() {
        inv.headers
            .push_front(HeaderName::RecordRoute, rr.to_string());
    }
    inv
}

#[test]
fn a_leg_we_are_uas_route_set_is_record_route_as_received_12_1_1() {
    let inv = a_leg_invite();
    let d = Dialog::from_uas(
        &inv,
        "cDg7NyjpeSg4m",
        addr("<sip:alice@192.168.4.4:5060;transport=udp>"),
    )
    .unwrap();
    assert_eq!(d.role(), DialogRole::Uas);
    assert_eq!(
        d.key(),
        &DialogKey::new(
            "YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.",
            "cDg7NyjpeSg4m",
            "15c8325a"
        )
    );
    assert_eq!(
        route_set(&d),
        ["sip:10.1.1.2;lr;ftag=15c8325a", "sip:10.1.1.1;lr"]
    );
    assert_eq!(d.remote_target().as_str(), "sip:bob@192.168.4.4:26000");
    assert_eq!(d.remote_cseq(), Some(2));
    assert_eq!(d.local_cseq(), None);
    assert_eq!(d.remote_uri().display_name_lossy().as_deref(), Some("Bob"));
    assert_eq!(d.local_uri().display_name_lossy().as_deref(), Some("alice"));
    assert_eq!(d.state(), DialogState::Early);

    // The 200 we send carries the Record-Route back in the same order, with our tag.
    let mut ok = response_to(&inv, 200, "OK");
    d.fill_response(&inv, &mut ok);
    let rr: Vec<String> = ok
        .headers
        .get_all(&HeaderName::RecordRoute)
        .map(|h| h.value_str().unwrap().to_string())
        .collect();
    assert_eq!(rr, RR_A);
    assert_eq!(ok.headers.to_tag().as_deref(), Some("cDg7NyjpeSg4m"));
}

#[test]
fn b_leg_we_are_uac_route_set_is_record_route_reversed_12_1_2() {
    let inv = request(SEED_B_INVITE);
    let ok = seed_b_response("200 OK", Some("3813e926"), RR_B);
    let d = Dialog::from_uac(&inv, &ok).unwrap();
    assert_eq!(
        (d.role(), d.state()),
        (DialogRole::Uac, DialogState::Confirmed)
    );
    assert_eq!(
        d.key(),
        &DialogKey::new(
            "0d74ac35-cca4-122d-81a2-2990e5b2bd3e",
            "Dp9ZQS3SB26pg",
            "3813e926"
        )
    );
    assert_eq!(route_set(&d), ["sip:10.2.2.1;lr", "sip:10.2.2.2;lr"]);
    assert_eq!(
        d.remote_target().as_str(),
        "sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP"
    );
    assert_eq!(d.local_cseq(), Some(130069214));
    assert_eq!(d.remote_cseq(), None);
}

#[test]
fn both_ends_of_one_dialog_see_mirror_route_sets() {
    // alice's phone, were it to keep a dialog, is the UAS of the b-leg INVITE as it
    // arrives carrying the Record-Route the 200 copies back.
    let mut arrived = request(SEED_B_INVITE);
    arrived.headers.push_front(
        HeaderName::RecordRoute,
        "<sip:10.2.2.2;lr>, <sip:10.2.2.1;lr>",
    );
    let alice = Dialog::from_uas(
        &arrived,
        "3813e926",
        addr("<sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP>"),
    )
    .unwrap();
    let us = Dialog::from_uac(
        &request(SEED_B_INVITE),
        &seed_b_response("200 OK", Some("3813e926"), RR_B),
    )
    .unwrap();
    let mut mirrored = route_set(&alice);
    mirrored.reverse();
    assert_eq!(route_set(&us), mirrored);
    assert_eq!(alice.key().local_tag, us.key().remote_tag);
    assert_eq!(alice.key().remote_tag, us.key().local_tag);
    assert_eq!(alice.remote_target(), &us.local_contact().uri);
}

#[test]
fn early_dialog_from_the_seed_180_then_confirmed_by_200() {
    let inv = request(SEED_B_INVITE);
    // A 100 (no To tag) makes no dialog.
    assert!(Dialog::from_uac(&inv, &seed_b_response("100 Trying", None, "")).is_err());
    let mut d = Dialog::from_uac(
        &inv,
        &seed_b_response("180 Ringing", Some("3813e926"), RR_B),
    )
    .expect("180 with a tag makes an early dialog");
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(
        d.key(),
        &DialogKey::new(
            "0d74ac35-cca4-122d-81a2-2990e5b2bd3e",
            "Dp9ZQS3SB26pg",
            "3813e926"
        )
    );
    let effect = d
        .handle_response(&seed_b_response("200 OK", Some("3813e926"), RR_B))
        .unwrap();
    assert_eq!(effect.state, DialogState::Confirmed);
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(route_set(&d), ["sip:10.2.2.1;lr", "sip:10.2.2.2;lr"]);
}
