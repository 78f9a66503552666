//! RFC 3261 §14: re-INVITE glare between the two ends of one dialog, resolved by 491 and
//! the §14.1 back-off on a virtual clock; and §14.2's 500 + Retry-After for an INVITE that
//! arrives while the peer's previous one is still unanswered.

mod dialog_common;

use dialog_common::*;
use ferroswitch::dialog::{Dialog, DialogRejection, DialogState, RequestVerdict, ViaSpec};
use ferroswitch::net::Transport;
use ferroswitch::sip::{response_to, HeaderName, Method, Request, Response};
use std::time::{Duration, Instant};

const INVITE: &str = "INVITE sip:bob@192.0.2.20 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKinv1
Max-Forwards: 70
From: <sip:alice@example.com>;tag=alice1
To: <sip:bob@example.com>
Call-ID: glare-1@192.0.2.10
CSeq: 7 INVITE
Contact: <sip:alice@192.0.2.10>
Content-Length: 0

";

/// alice (the UAC, owner of the Call-ID) and bob (the UAS), both confirmed.
fn pair() -> (Dialog, Dialog) {
    let inv = request(INVITE);
    let mut bob = Dialog::from_uas(&inv, "bob1", addr("<sip:bob@192.0.2.20>")).unwrap();
    let mut ok = response_to(&inv, 200, "OK");
    bob.fill_response(&inv, &mut ok);
    bob.handle_sent_response(&ok);
    let ok = response_over_the_wire(&ok);
    let alice = Dialog::from_uac(&inv, &ok).unwrap();
    (alice, bob)
}

fn via(host: &str) -> ViaSpec {
    ViaSpec::new(Transport::Udp, host, dialog_common::fresh_branch())
}

/// The answer `to` gives to `req`, as its dialog judges it.
fn answer(to: &mut Dialog, req: &Request) -> Response {
    let req = over_the_wire(req);
    match to.handle_request(&req) {
        RequestVerdict::Accept(_) => {
            let mut ok = response_to(&req, 200, "OK");
            to.fill_response(&req, &mut ok);
            to.handle_sent_response(&ok);
            ok
        }
        RequestVerdict::Reject(r) => {
            let resp = r.response_to(&req, 0);
            to.handle_sent_response(&resp);
            resp
        }
        RequestVerdict::Drop => panic!("a re-INVITE is never dropped"),
    }
}

#[test]
fn crossing_reinvites_both_get_491_and_the_backoff_untangles_them() {
    let (mut alice, mut bob) = pair();
    let t0 = Instant::now();
    let a_inv = alice
        .new_request(Method::Invite, &via("192.0.2.10"))
        .unwrap();
    let b_inv = bob.new_request(Method::Invite, &via("192.0.2.20")).unwrap();
    assert_eq!(header(&a_inv, HeaderName::CSeq), "8 INVITE");
    assert_eq!(header(&b_inv, HeaderName::CSeq), "1 INVITE");

    // They cross on the wire: each side has its own pending, so each answers 491.
    let to_alice = answer(&mut bob, &a_inv);
    let to_bob = answer(&mut alice, &b_inv);
    assert_eq!((to_alice.status, to_bob.status), (491, 491));
    let e = alice.handle_response(&to_alice).unwrap();
    assert_eq!(
        e.state,
        DialogState::Confirmed,
        "491 does not end the dialog"
    );
    bob.handle_response(&to_bob).unwrap();
    assert_eq!(alice.pending_outgoing_invite(), None);
    assert_eq!(bob.pending_outgoing_invite(), None);

    // §14.1: the Call-ID owner waits 2.1–4 s, the other 0–2 s, so bob goes first.
    for r in [0u32, 77, 190, 4_000_000_000] {
        assert!(bob.glare_retry_delay(r) < alice.glare_retry_delay(r));
    }
    let bob_at = t0 + bob.glare_retry_delay(123);
    let alice_at = t0 + alice.glare_retry_delay(456);
    assert!(bob_at < alice_at);
    assert!(alice_at - t0 >= Duration::from_millis(2100));

    let b_retry = bob.new_request(Method::Invite, &via("192.0.2.20")).unwrap();
    assert_eq!(header(&b_retry, HeaderName::CSeq), "2 INVITE");
    let ok = answer(&mut alice, &b_retry);
    assert_eq!(ok.status, 200);
    bob.handle_response(&response_over_the_wire(&ok)).unwrap();
    let ack = bob.new_request(Method::Ack, &via("192.0.2.20")).unwrap();
    assert!(matches!(
        alice.handle_request(&over_the_wire(&ack)),
        RequestVerdict::Accept(_)
    ));

    // Then alice's turn: accepted now that nothing is pending either way.
    let a_retry = alice
        .new_request(Method::Invite, &via("192.0.2.10"))
        .unwrap();
    assert_eq!(header(&a_retry, HeaderName::CSeq), "9 INVITE");
    assert_eq!(answer(&mut bob, &a_retry).status, 200);
}

#[test]
fn second_invite_before_the_first_is_answered_gets_500_with_retry_after_14_2() {
    let (mut alice, mut bob) = pair();
    let first = alice
        .new_request(Method::Invite, &via("192.0.2.10"))
        .unwrap();
    assert!(matches!(
        bob.handle_request(&over_the_wire(&first)),
        RequestVerdict::Accept(_)
    ));
    // A misbehaving alice sends another INVITE before bob answered the first: we forge
    // it, since her dialog refuses to build it (§14.1).
    assert!(alice
        .new_request(Method::Invite, &via("192.0.2.10"))
        .is_err());
    let mut second = first.clone();
    second.headers.set(HeaderName::CSeq, "9 INVITE");
    let v = bob.handle_request(&over_the_wire(&second));
    assert_eq!(v, RequestVerdict::Reject(DialogRejection::InviteInProgress));
    let RequestVerdict::Reject(r) = v else {
        unreachable!()
    };
    for random in [0u32, 5, 10, 11, 99, u32::MAX] {
        let resp = r.response_to(&second, random);
        assert_eq!(resp.status, 500);
        let secs: u32 = resp
            .headers
            .get_str(&HeaderName::RetryAfter)
            .unwrap()
            .parse()
            .unwrap();
        assert!(secs <= 10, "{secs}");
        assert_eq!(secs, random % 11);
    }
}
