//! `ctl trace` on the virtual clock: the seed's call (bob → alice, RFC 3665 §3.2 through one
//! B2BUA) as the engine's trace keeps it: both legs, the stateless 407 and its ACK from
//! before the call existed, every message in order with its direction and time.

use super::*;
use crate::engine::{CallTrace, Direction};

/// (direction, leg, first line's method or status) of every kept message.
fn rows(t: &CallTrace) -> Vec<String> {
    t.records()
        .iter()
        .map(|r| {
            let text = String::from_utf8_lossy(t.bytes_of(r));
            let first = text.lines().next().unwrap_or("").to_string();
            let what = match first.strip_prefix("SIP/2.0 ") {
                Some(s) => s.split(' ').next().unwrap().to_string(),
                None => first.split(' ').next().unwrap().to_string(),
            };
            let dir = if r.direction == Direction::In {
                "in"
            } else {
                "out"
            };
            let leg = if t.call_id_of(r) == t.a_call_id {
                "a"
            } else {
                "b"
            };
            format!("{dir} {leg} {what}")
        })
        .collect()
}

#[test]
fn rfc3665_3_2_seed_call_trace_has_both_legs_and_the_407_in_order() {
    let mut net = Net::calls();
    let (mut bob, mut alice) = (Caller::bob(), Ua::alice());
    let offer = sdp("bob", 8000, "");
    let inv = ring_alice(&mut net, &mut bob, &offer);
    net.send(ZOIPER, &alice.respond(&inv, 180, &[], ""))
        .response(BOB, 180);
    net.advance(Duration::from_secs(3));
    let sent = net.send(
        ZOIPER,
        &alice.respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    let a = bob.dialog(&sent.response(BOB, 200));
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    let mut b = alice.uas_dialog(&inv);
    net.advance(Duration::from_secs(2));
    let sent = net.send(ZOIPER, &alice.in_dialog(&mut b, "BYE", None, &[], ""));
    let bye = sent.request(BOB, Method::Bye);
    assert!(net
        .send(BOB, &bob.ua.respond(&bye, 200, &[], ""))
        .is_empty());

    let a_call_id = "YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.";
    let t = net.engine.call_trace("1").expect("call 1 traced");
    assert_eq!(t.a_call_id, a_call_id);
    assert_eq!(t.b_call_ids, [inv.headers.call_id().unwrap()]);
    assert_eq!(
        rows(t),
        [
            "in a INVITE",
            "out a 407",
            "in a ACK",
            "in a INVITE",
            "out a 100",
            "out b INVITE",
            "in b 180",
            "out a 180",
            "in b 200",
            "out b ACK",
            "out a 200",
            "in a ACK",
            "in b BYE",
            "out b 200",
            "out a BYE",
            "in a 200",
        ]
    );
    assert_eq!(
        t.status,
        Some(200),
        "the 407 before the call is not its outcome"
    );
    // Where each went or came from, and when.
    let bob_addr: std::net::SocketAddr = BOB.parse().unwrap();
    let alice_addr: std::net::SocketAddr = ZOIPER.parse().unwrap();
    for r in t.records() {
        let want = if t.call_id_of(r) == a_call_id {
            bob_addr
        } else {
            alice_addr
        };
        assert_eq!(
            r.remote,
            want,
            "{:?}",
            String::from_utf8_lossy(t.bytes_of(r))
        );
        assert_eq!(r.local.is_some(), r.direction == Direction::In);
    }
    let since = |i: usize| {
        t.records()[i]
            .wall
            .duration_since(t.records()[0].wall)
            .unwrap()
    };
    assert_eq!(since(7), Duration::ZERO, "180 relayed at once");
    assert_eq!(
        since(10),
        Duration::from_secs(3),
        "200 to bob after 3 s of ringing"
    );
    assert_eq!(since(15), Duration::from_secs(5));
    // The same trace by either leg's Call-ID; an unknown id is an error.
    assert_eq!(net.engine.call_trace(a_call_id).unwrap().id, 1);
    let b_id = inv.headers.call_id().unwrap();
    assert_eq!(net.engine.call_trace(b_id).unwrap().id, 1);
    assert!(net.engine.call_trace("2").is_err());
}

#[test]
fn a_rejected_call_is_traced_with_its_failure_status() {
    let mut net = Net::calls();
    let (mut bob, alice) = (Caller::bob(), Ua::alice());
    let inv = ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    let sent = net.send(ZOIPER, &alice.respond(&inv, 486, &[], ""));
    sent.response(BOB, 486);
    let t = net.engine.call_trace("1").unwrap();
    assert_eq!(t.status, Some(486));
    assert!(
        rows(t).ends_with(&[
            "in b 486".to_string(),
            "out b ACK".into(),
            "out a 486".into()
        ]),
        "{:?}",
        rows(t)
    );
}

#[test]
fn tracing_off_keeps_nothing() {
    let mut net = Net::calls_with(|c| c.trace.calls = 0);
    let (mut bob, _alice) = (Caller::bob(), Ua::alice());
    ring_alice(&mut net, &mut bob, &sdp("bob", 8000, ""));
    assert_eq!(
        net.engine.call_trace("1").unwrap_err(),
        crate::engine::ControlError::TracingOff
    );
}
