//! Blind transfer inside a call (RFC 3515 REFER, RFC 5589 §6): the transferor's REFER reaches
//! the transferee with everything that makes it a REFER (Refer-To, Referred-By …), the 202
//! comes back, the NOTIFYs of the implicit subscription cross the other way with Event and
//! Subscription-State, and the call stays up until someone hangs up.

use super::in_dialog::bob_hangs_up;
use super::*;

#[test]
fn rfc3515_refer_from_the_callee_is_relayed_whole_and_its_notify_comes_back() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    // alice (the callee) transfers bob to carol.
    let refer = alice.in_dialog(
        &mut b,
        "REFER",
        None,
        &[
            "Refer-To: <sip:carol@192.168.4.4>",
            "Referred-By: <sip:alice@192.168.4.4>",
            "Accept: message/sipfrag",
        ],
        "",
    );
    let sent = net.send(ZOIPER, &refer);
    let relayed = sent.request(BOB, Method::Refer);
    assert_eq!(
        req_header(&relayed, "Refer-To"),
        Some("<sip:carol@192.168.4.4>")
    );
    assert_eq!(
        req_header(&relayed, "Referred-By"),
        Some("<sip:alice@192.168.4.4>")
    );
    assert_eq!(req_header(&relayed, "Accept"), Some("message/sipfrag"));
    let sent = net.send(BOB, &bob.ua.respond(&relayed, 202, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-202 REFER"]);
    // bob reports progress on the implicit subscription (RFC 3515 §2.4.5).
    let notify = bob.ua.in_dialog(
        &mut a,
        "NOTIFY",
        None,
        &[
            "Event: refer",
            "Subscription-State: active;expires=60",
            "Content-Type: message/sipfrag;version=2.0",
        ],
        "SIP/2.0 100 Trying\r\n",
    );
    let sent = net.send(BOB, &notify);
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(req_header(&n, "Event"), Some("refer"));
    assert_eq!(
        req_header(&n, "Subscription-State"),
        Some("active;expires=60")
    );
    assert_eq!(
        req_header(&n, "Content-Type"),
        Some("message/sipfrag;version=2.0")
    );
    assert_eq!(&n.body[..], b"SIP/2.0 100 Trying\r\n");
    let sent = net.send(ZOIPER, &alice.respond(&n, 200, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 NOTIFY"]);
    assert_eq!(net.engine.active_calls(), 1, "the call is still up");
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3515_refer_from_the_caller_reaches_the_callee_with_refer_to() {
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
