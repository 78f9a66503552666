//! Server transactions on a virtual clock (RFC 3261 §17.2, RFC 6026 §7.1): 100 Trying,
//! answering retransmissions, Timers G/H/I/J/L, ACK absorption, RFC 2543 matching, CANCEL.

mod transaction_common;

use ferroswitch::sip::Method;
use ferroswitch::transaction::{
    State, Timer, TransactionConfig, TransactionError, TransactionEvent, TryingPolicy,
};
use transaction_common::{parse_response, reply, request, request_via, tcp, udp, Harness};

const OLD_VIA: &str = "SIP/2.0/UDP old.example:5060";

fn requests_to_tu(h: &Harness) -> usize {
    h.count_events(|e| matches!(e, TransactionEvent::Request { .. }))
}

#[test]
fn rfc3261_17_2_1_invite_server_sends_100_trying_at_once() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "s1", 1);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    assert_eq!(h.sent.len(), 1);
    assert_eq!(h.sent[0].0, 0);
    assert_eq!(h.sent[0].1.to, udp(5060));
    let trying = parse_response(&h.sent[0].1.bytes);
    assert_eq!(trying.status, 100);
    assert_eq!(trying.headers.to_tag(), None, "no To tag on 100 (§17.2.1)");
    assert_eq!(trying.headers.top_via(), invite.headers.top_via());
    assert_eq!(trying.headers.cseq(), invite.headers.cseq());
    let key = h.request_key();
    assert_eq!(h.layer.state(&key), Some(State::Proceeding));
    assert_eq!(h.layer.request(&key), Some(&invite));
}

#[test]
fn rfc3261_17_2_1_delayed_100_trying_only_if_the_tu_is_slow() {
    let config = TransactionConfig {
        trying: TryingPolicy::delayed_200ms(),
        ..TransactionConfig::default()
    };
    // The TU is slow: 100 Trying at 200 ms.
    let mut h = Harness::new(config);
    let invite = request("INVITE", "d1", 1);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    assert!(h.sent.is_empty());
    h.advance_to(1_000);
    assert_eq!(h.sent_at(), [200]);
    assert_eq!(h.sent_statuses(), [100]);

    // The TU answers within 200 ms: no 100 at all.
    let mut h = Harness::new(config);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    h.advance_to(100);
    let key = h.request_key();
    h.send_response(&key, reply(&invite, 180, Some("u")))
        .unwrap();
    h.advance_to(1_000);
    assert_eq!(h.sent_statuses(), [180]);

    // A retransmitted INVITE before 200 ms gets the 100 at once.
    let mut h = Harness::new(config);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    h.advance_to(50);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    h.advance_to(1_000);
    assert_eq!(h.sent_at(), [50]);

    // Never: nothing until the TU speaks.
    let mut h = Harness::new(TransactionConfig {
        trying: TryingPolicy::Never,
        ..config
    });
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    h.recv_request(invite, udp(5060)).unwrap();
    h.advance_to(1_000);
    assert!(h.sent.is_empty());
    assert_eq!(h.layer.stats().absorbed_requests, 1);
}

#[test]
fn rfc3261_17_2_1_retransmitted_invite_gets_the_last_response_and_never_reaches_the_tu() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "r1", 1);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    let key = h.request_key();
    h.advance_to(500);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    h.send_response(&key, reply(&invite, 180, Some("u")))
        .unwrap();
    h.advance_to(1_500);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    h.send_response(&key, reply(&invite, 486, Some("u")))
        .unwrap();
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    assert_eq!(h.sent_statuses(), [100, 100, 180, 180, 486, 486]);
    assert_eq!(requests_to_tu(&h), 1);
    let st = h.layer.stats();
    assert_eq!((st.absorbed_requests, st.retransmissions), (3, 3));
}

#[test]
fn rfc3261_17_2_1_timer_g_retransmits_the_final_until_the_ack_then_timer_i() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "g1", 1);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    let key = h.request_key();
    h.send_response(&key, reply(&invite, 486, Some("u")))
        .unwrap();
    assert_eq!(h.layer.state(&key), Some(State::Completed));
    h.clear();
    h.advance_to(9_000);
    // Timer G: T1 doubling, capped at T2.
    assert_eq!(h.sent_at(), [500, 1500, 3500, 7500]);
    assert!(h.sent_statuses().iter().all(|s| *s == 486));
    let mut ack = request("ACK", "g1", 1);
    ack.headers.set(
        ferroswitch::sip::HeaderName::To,
        "Bob <sip:bob@b.example>;tag=u",
    );
    h.recv_request(ack.clone(), udp(5060)).unwrap();
    assert_eq!(h.layer.state(&key), Some(State::Confirmed));
    h.advance_to(10_000);
    h.recv_request(ack, udp(5060)).unwrap();
    h.advance_to(40_000);
    assert_eq!(h.sent.len(), 4, "nothing after the ACK");
    assert_eq!(
        h.count_events(|e| matches!(e, TransactionEvent::Ack { .. })),
        0,
        "ACKs for a non-2xx never reach the TU"
    );
    // Timer I = T4 after the first ACK.
    assert_eq!(h.terminated_at(&key), Some(14_000));
    assert_eq!(h.layer.stats().absorbed_requests, 2);
}

#[test]
fn rfc3261_17_2_1_timer_h_ends_the_wait_for_an_ack() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "h1", 1);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    let key = h.request_key();
    h.advance_to(1_000);
    h.send_response(&key, reply(&invite, 404, Some("u")))
        .unwrap();
    h.clear();
    h.advance_to(60_000);
    let rel: Vec<_> = h.sent_at().iter().map(|t| t - 1_000).collect();
    assert_eq!(
        rel,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(matches!(
        &h.events[0],
        (
            33_000,
            TransactionEvent::Timeout {
                timer: Timer::H,
                ..
            }
        )
    ));
    assert_eq!(h.terminated_at(&key), Some(33_000));
}

#[test]
fn rfc3261_17_2_1_reliable_transport_no_timer_g_and_timer_i_is_zero() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "tcp1", 1);
    h.recv_request(invite.clone(), tcp(5060)).unwrap();
    let key = h.request_key();
    h.send_response(&key, reply(&invite, 486, Some("u")))
        .unwrap();
    // Only Timer H is armed.
    assert_eq!(
        h.layer.poll_timeout(),
        Some(h.t0 + transaction_common::ms(32_000))
    );
    h.advance_to(5_000);
    assert_eq!(h.sent_statuses(), [100, 486]);
    h.recv_request(request("ACK", "tcp1", 1), tcp(5060))
        .unwrap();
    assert_eq!(h.terminated_at(&key), Some(5_000));
}

#[test]
fn rfc6026_7_1_server_accepted_passes_2xx_through_and_acks_up_until_timer_l() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "acc1", 1);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    let key = h.request_key();
    let ok = reply(&invite, 200, Some("u"));
    h.send_response(&key, ok.clone()).unwrap();
    assert_eq!(h.layer.state(&key), Some(State::Accepted));
    h.advance_to(500);
    // The TU retransmits its 2xx (§13.3.1.4); a retransmitted INVITE is absorbed silently.
    h.send_response(&key, ok.clone()).unwrap();
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    assert_eq!(h.sent_statuses(), [100, 200, 200]);
    assert_eq!(
        h.send_response(&key, reply(&invite, 486, Some("u"))),
        Err(TransactionError::InvalidState(State::Accepted))
    );
    // An ACK with the INVITE's branch matches and goes up with the key.
    h.recv_request(request("ACK", "acc1", 1), udp(5060))
        .unwrap();
    // The usual 2xx ACK has its own branch: up too, unmatched.
    h.recv_request(request("ACK", "other", 1), udp(5060))
        .unwrap();
    let acks: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TransactionEvent::Ack { invite, .. } => Some(invite.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [Some(key.clone()), None]);
    assert_eq!(h.layer.stats().stray_acks, 1);
    // A transport error in Accepted is reported but keeps the state (RFC 6026 Figure 5).
    h.layer.handle_transport_error(h.now, &key);
    h.collect();
    assert_eq!(h.layer.state(&key), Some(State::Accepted));
    h.advance_to(40_000);
    assert_eq!(h.terminated_at(&key), Some(32_000), "Timer L = 64·T1");
    assert_eq!(h.sent.len(), 3, "the layer never retransmits a 2xx itself");
}

#[test]
fn rfc3261_17_2_2_non_invite_server_absorbs_then_answers_retransmissions() {
    let mut h = Harness::default_config();
    let reg = request("REGISTER", "n1", 5);
    h.recv_request(reg.clone(), udp(5060)).unwrap();
    let key = h.request_key();
    assert_eq!(h.layer.state(&key), Some(State::Trying));
    assert!(h.sent.is_empty(), "no automatic 100 for non-INVITE");
    h.advance_to(500);
    h.recv_request(reg.clone(), udp(5060)).unwrap();
    assert!(h.sent.is_empty(), "Trying discards retransmissions");
    h.send_response(&key, reply(&reg, 100, None)).unwrap();
    assert_eq!(h.layer.state(&key), Some(State::Proceeding));
    h.advance_to(1_500);
    h.recv_request(reg.clone(), udp(5060)).unwrap();
    h.send_response(&key, reply(&reg, 200, Some("r"))).unwrap();
    assert_eq!(h.layer.state(&key), Some(State::Completed));
    h.advance_to(3_500);
    h.recv_request(reg.clone(), udp(5060)).unwrap();
    assert_eq!(h.sent_statuses(), [100, 100, 200, 200]);
    assert_eq!(
        h.send_response(&key, reply(&reg, 500, Some("r"))),
        Err(TransactionError::InvalidState(State::Completed))
    );
    assert_eq!(requests_to_tu(&h), 1);
    h.advance_to(40_000);
    // Timer J = 64·T1 after the final.
    assert_eq!(h.terminated_at(&key), Some(33_500));

    // Timer J is zero on TCP.
    let mut h = Harness::default_config();
    h.recv_request(reg.clone(), tcp(5060)).unwrap();
    let key = h.request_key();
    h.send_response(&key, reply(&reg, 200, Some("r"))).unwrap();
    assert_eq!(h.terminated_at(&key), Some(0));
}

#[test]
fn rfc3261_17_2_3_rfc2543_fallback_matches_invite_ack_and_non_invite() {
    let mut h = Harness::default_config();
    let invite = request_via("INVITE", OLD_VIA, 10, None);
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    let key = h.request_key();
    assert!(key.is_rfc2543());
    h.recv_request(invite.clone(), udp(5060)).unwrap();
    assert_eq!(requests_to_tu(&h), 1);
    assert_eq!(h.sent_statuses(), [100, 100]);
    h.send_response(&key, reply(&invite, 486, Some("srv")))
        .unwrap();
    // An ACK with another To tag acknowledges something else.
    h.recv_request(request_via("ACK", OLD_VIA, 10, Some("zzz")), udp(5060))
        .unwrap();
    assert_eq!(h.layer.state(&key), Some(State::Completed));
    assert_eq!(h.layer.stats().stray_acks, 1);
    // The ACK carries the tag of our 486, which the INVITE did not have.
    h.recv_request(request_via("ACK", OLD_VIA, 10, Some("srv")), udp(5060))
        .unwrap();
    assert_eq!(h.layer.state(&key), Some(State::Confirmed));

    // A different CSeq is a different transaction; the same one is a retransmission.
    let opt = request_via("OPTIONS", OLD_VIA, 11, None);
    h.recv_request(opt.clone(), udp(5060)).unwrap();
    h.recv_request(opt, udp(5060)).unwrap();
    h.recv_request(request_via("OPTIONS", OLD_VIA, 12, None), udp(5060))
        .unwrap();
    assert_eq!(requests_to_tu(&h), 3);
    assert_eq!(h.layer.len(), 3);
}

#[test]
fn rfc3261_9_2_cancel_is_its_own_transaction_matched_to_its_invite() {
    for via in [
        "SIP/2.0/UDP a.example:5060;branch=z9hG4bKcx1".to_string(),
        OLD_VIA.to_string(),
    ] {
        let mut h = Harness::default_config();
        let invite = request_via("INVITE", &via, 4, None);
        h.recv_request(invite.clone(), udp(5060)).unwrap();
        let ikey = h.request_key();
        let cancel = request_via("CANCEL", &via, 4, None);
        h.recv_request(cancel.clone(), udp(5060)).unwrap();
        let (ckey, matched) = h
            .events
            .iter()
            .find_map(|(_, e)| match e {
                TransactionEvent::Cancel { key, invite, .. } => Some((key.clone(), invite.clone())),
                _ => None,
            })
            .expect("a Cancel event");
        assert_eq!(matched.as_ref(), Some(&ikey), "{via}");
        assert_ne!(ckey, ikey);
        assert_eq!(ckey.method(), &Method::Cancel);
        h.send_response(&ckey, reply(&cancel, 200, Some("u")))
            .unwrap();
        h.send_response(&ikey, reply(&invite, 487, Some("u")))
            .unwrap();
        assert_eq!(h.sent_statuses(), [100, 200, 487], "{via}");
        assert_eq!(requests_to_tu(&h), 1);
    }

    // A CANCEL for an INVITE we do not have: the TU answers 481.
    let mut h = Harness::default_config();
    h.recv_request(request("CANCEL", "nobody", 1), udp(5060))
        .unwrap();
    assert!(matches!(
        &h.events[0].1,
        TransactionEvent::Cancel { invite: None, .. }
    ));
}

#[test]
fn bounded_table_and_malformed_requests_map_to_503_and_400() {
    let mut h = Harness::new(TransactionConfig {
        max_transactions: 2,
        ..TransactionConfig::default()
    });
    h.recv_request(request("OPTIONS", "b1", 1), udp(5060))
        .unwrap();
    h.recv_request(request("OPTIONS", "b2", 1), udp(5060))
        .unwrap();
    let err = h
        .recv_request(request("OPTIONS", "b3", 1), udp(5060))
        .unwrap_err();
    assert_eq!(err, TransactionError::TooManyTransactions(2));
    assert_eq!(err.status_code(), Some(503));
    // Retransmissions and ACKs still work when full.
    h.recv_request(request("OPTIONS", "b1", 1), udp(5060))
        .unwrap();
    h.recv_request(request("ACK", "b9", 1), udp(5060)).unwrap();
    assert_eq!(h.layer.stats().rejected, 1);

    let mut no_via = request("OPTIONS", "b4", 1);
    no_via.headers.remove(&ferroswitch::sip::HeaderName::Via);
    let err = h.recv_request(no_via, udp(5060)).unwrap_err();
    assert_eq!(err, TransactionError::Malformed("Via"));
    assert_eq!(err.status_code(), Some(400));
    let mut no_cseq = request_via("OPTIONS", OLD_VIA, 1, None);
    no_cseq.headers.remove(&ferroswitch::sip::HeaderName::CSeq);
    assert_eq!(
        h.recv_request(no_cseq, udp(5060)),
        Err(TransactionError::Malformed("CSeq"))
    );
}

#[test]
fn transport_error_ends_a_proceeding_server_transaction() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "te1", 1);
    h.recv_request(invite.clone(), tcp(5060)).unwrap();
    let key = h.request_key();
    h.layer.handle_peer_failure(h.now, tcp(5060));
    h.collect();
    assert!(h
        .events
        .iter()
        .any(|(_, e)| matches!(e, TransactionEvent::TransportError { key: k } if *k == key)));
    assert_eq!(h.terminated_at(&key), Some(0));
    assert_eq!(
        h.send_response(&key, reply(&invite, 180, Some("u"))),
        Err(TransactionError::UnknownTransaction)
    );
}
