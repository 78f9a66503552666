//! Requests inside an established call: INFO with `application/dtmf-relay` relayed with its
//! answer, RFC 3261 §12.2.2 (500 for a stale CSeq, 481 for an unknown dialog), and RFC 4028
//! session expiry. re-INVITEs have their own file (`reinvite`).

use super::*;
use crate::cdr::Side;

/// Ends an established call from bob's side and checks the table drains.
pub(super) fn bob_hangs_up(net: &mut Net, bob: &mut Caller, alice: &Ua, a: &mut Dlg) {
    let sent = net.send(BOB, &bob.ua.in_dialog(a, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 BYE", "alice<-BYE"]);
    net.send(
        ZOIPER,
        &alice.respond(&sent.request(ZOIPER, Method::Bye), 200, &[], ""),
    );
    assert_eq!(net.cdr().hangup_cause, "NORMAL_CLEARING");
    net.assert_drained();
}

#[test]
fn info_dtmf_relay_crosses_and_its_200_comes_back() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let dtmf = "Signal=5\r\nDuration=160\r\n";
    let msg = bob.ua.in_dialog(
        &mut a,
        "INFO",
        None,
        &["Content-Type: application/dtmf-relay"],
        dtmf,
    );
    let sent = net.send(BOB, &msg);
    let info = sent.request(ZOIPER, Method::Info);
    assert_eq!(
        req_header(&info, "Content-Type"),
        Some("application/dtmf-relay")
    );
    assert_eq!(&info.body[..], dtmf.as_bytes());
    let sent = net.send(ZOIPER, &alice.respond(&info, 200, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-200 INFO"]);
    let ok = sent.response(BOB, 200);
    assert_eq!(ok.headers.cseq().map(|c| c.seq), Some(a.cseq));
    assert_eq!(header(&ok, "Contact"), None, "no Contact in a 2xx to INFO");
    // A refusal comes back as it is.
    let sent = net.send(
        BOB,
        &bob.ua.in_dialog(
            &mut a,
            "INFO",
            None,
            &["Content-Type: application/dtmf-relay"],
            dtmf,
        ),
    );
    let info = sent.request(ZOIPER, Method::Info);
    let sent = net.send(ZOIPER, &alice.respond(&info, 415, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-415 INFO"]);
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc3261_12_2_2_stale_cseq_is_500_and_unknown_dialog_is_481() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, _b, _inv) = connect(&mut net, &mut bob, &mut alice);
    // CSeq 2 was the INVITE: an INFO with 2 again (new branch) is out of order.
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "INFO", Some(2), &[], ""));
    assert_eq!(sent.ladder(), ["bob<-500 INFO"]);
    assert_eq!(reason(&sent.response(BOB, 500)), "CSeq Out Of Order");

    let mut ghost = a.clone();
    ghost.remote = ghost.remote.replace(&bob_to_tag(&a), "no-such-tag");
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut ghost, "BYE", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-481 BYE"]);
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut ghost, "INFO", None, &[], ""));
    assert_eq!(sent.ladder(), ["bob<-481 INFO"]);
    assert_eq!(net.engine.active_calls(), 1, "the real call is untouched");
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

/// The To tag bob's dialog names (ours on the a-leg).
fn bob_to_tag(a: &Dlg) -> String {
    a.remote.rsplit_once("tag=").expect("a tag").1.to_string()
}

#[test]
fn rfc4028_refreshes_stop_and_both_legs_get_bye() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let timer = ["Supported: timer", "Session-Expires: 120"];
    let sent = net.send(BOB, &bob.invite_to("alice", &timer, &sdp("bob", 8000, "")));
    bob.learn(&sent.response(BOB, 407));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 407)));
    let sent = net.send(BOB, &bob.invite_to("alice", &timer, &sdp("bob", 8000, "")));
    let inv = sent.request(ZOIPER, Method::Invite);
    assert_eq!(
        req_header(&inv, "Session-Expires"),
        Some("1800;refresher=uas")
    );
    let sent = net.send(
        ZOIPER,
        &alice.respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    let ok = sent.response(BOB, 200);
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uac"));
    assert!(headers(&ok, "Require").contains(&"timer"));
    let mut a = bob.dialog(&ok);
    net.send(BOB, &bob.ack(&a, ""));

    // A refresh at 60 s (UPDATE) restarts the interval …
    net.advance(Duration::from_secs(60));
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "UPDATE", None, &timer, ""));
    let update = sent.request(ZOIPER, Method::Update);
    let sent = net.send(ZOIPER, &alice.respond(&update, 200, &[], ""));
    let ok = sent.response(BOB, 200);
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uac"));
    // … so nothing happens at 88 s after the first 2xx,
    assert!(net.after(Duration::from_secs(60)).is_empty());
    // but 88 s after the refresh (120 − min(32, 120/3)), both legs are hung up.
    let sent = net.after(Duration::from_secs(28));
    let mut ladder = sent.ladder();
    ladder.sort();
    assert_eq!(ladder, ["alice<-BYE", "bob<-BYE"]);
    let bye = sent.request(BOB, Method::Bye);
    assert_eq!(
        req_header(&bye, "Reason"),
        Some("Q.850;cause=102;text=\"RECOVERY_ON_TIMER_EXPIRE\"")
    );
    net.send(BOB, &bob.ua.respond(&bye, 200, &[], ""));
    net.send(
        ZOIPER,
        &alice.respond(&sent.request(ZOIPER, Method::Bye), 200, &[], ""),
    );
    let cdr = net.cdr();
    assert_eq!(
        (cdr.hangup_cause, cdr.hangup_side),
        ("RECOVERY_ON_TIMER_EXPIRE", Side::System)
    );
    assert_eq!(cdr.billsec, 148);
    net.assert_drained();
}

#[test]
fn rfc3428_message_inside_the_call_crosses_without_contact() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let (mut a, mut b, _inv) = connect(&mut net, &mut bob, &mut alice);
    let sent = net.send(
        ZOIPER,
        &alice.in_dialog(
            &mut b,
            "MESSAGE",
            None,
            &["Content-Type: text/plain"],
            "hi bob",
        ),
    );
    let msg = sent.request(BOB, Method::Message);
    assert_eq!(&msg.body[..], b"hi bob");
    assert_eq!(req_header(&msg, "Content-Type"), Some("text/plain"));
    assert_eq!(req_header(&msg, "Contact"), None, "RFC 3428: no Contact");
    let sent = net.send(BOB, &bob.ua.respond(&msg, 202, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-202 MESSAGE"]);
    bob_hangs_up(&mut net, &mut bob, &alice, &mut a);
}

#[test]
fn rfc4028_10_the_switch_refreshes_when_the_caller_makes_it_the_refresher() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let timer = [
        "Supported: timer",
        "Session-Expires: 120;refresher=uas",
        "Allow: INVITE, ACK, BYE, CANCEL, UPDATE",
    ];
    let sent = net.send(BOB, &bob.invite_to("alice", &timer, &sdp("bob", 8000, "")));
    bob.learn(&sent.response(BOB, 407));
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 407)));
    let sent = net.send(BOB, &bob.invite_to("alice", &timer, &sdp("bob", 8000, "")));
    let inv = sent.request(ZOIPER, Method::Invite);
    let sent = net.send(
        ZOIPER,
        &alice.respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    let ok = sent.response(BOB, 200);
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uas"));
    let a = bob.dialog(&ok);
    net.send(BOB, &bob.ack(&a, ""));

    // Half the interval later the switch refreshes bob's leg itself, with UPDATE (bob allows
    // it) carrying Session-Expires with refresher=uac (us, the UAC of this UPDATE).
    assert!(net.after(Duration::from_secs(59)).is_empty());
    let sent = net.after(Duration::from_secs(1));
    let update = sent.request(BOB, Method::Update);
    assert!(
        req_header(&update, "Session-Expires").is_some_and(|v| v.starts_with("120")),
        "{:?}",
        req_header(&update, "Session-Expires")
    );
    // bob answers 200: the next refresh is due 60 s later, and nothing expires meanwhile.
    net.send(BOB, &bob.ua.respond(&update, 200, &[], ""));
    assert!(net.after(Duration::from_secs(59)).is_empty());
    let sent = net.after(Duration::from_secs(1));
    let update2 = sent.request(BOB, Method::Update);
    // bob's dialog is gone (481, §12.2.1.2): alice gets BYE, bob gets nothing more.
    let sent = net.send(BOB, &bob.ua.respond(&update2, 481, &[], ""));
    assert_eq!(sent.ladder(), ["alice<-BYE"]);
    net.send(
        ZOIPER,
        &alice.respond(&sent.request(ZOIPER, Method::Bye), 200, &[], ""),
    );
    assert_eq!(net.cdr().hangup_cause, "RECOVERY_ON_TIMER_EXPIRE");
    net.assert_drained();
}
