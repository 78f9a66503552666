//! Client transactions on a virtual clock (RFC 3261 §17.1, RFC 6026 §7.2): exact
//! retransmission instants, timeouts, ACK generation, response matching, CANCEL.

mod transaction_common;

use ferroswitch::sip::{HeaderName, Method};
use ferroswitch::transaction::{
    State, Timer, TransactionConfig, TransactionError, TransactionEvent, TransactionKey,
    TransactionLayer,
};
use transaction_common::{parse_request, reply, request, tcp, udp, Harness};

fn is_timeout(e: &TransactionEvent, t: Timer) -> bool {
    matches!(e, TransactionEvent::Timeout { timer, .. } if *timer == t)
}

#[test]
fn rfc3261_17_1_2_2_non_invite_retransmits_t1_doubling_capped_at_t2_and_times_out_at_64t1() {
    let mut h = Harness::default_config();
    let key = h.send_request(request("OPTIONS", "n1", 1), udp(5060));
    assert_eq!(h.layer.state(&key), Some(State::Trying));
    h.advance_to(40_000);
    // 0.5, 1, 2, 4, 4, 4 … s apart; Timer F at 64·T1 = 32 s.
    assert_eq!(
        h.sent_at(),
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let bytes = h.sent_bytes();
    assert!(
        bytes.iter().all(|b| *b == bytes[0]),
        "same request each time"
    );
    assert_eq!(h.events.len(), 2);
    assert!(is_timeout(&h.events[0].1, Timer::F));
    assert_eq!(h.events[0].0, 32_000);
    assert_eq!(h.terminated_at(&key), Some(32_000));
    assert_eq!(h.layer.poll_timeout(), None);
    assert!(h.layer.is_empty());
    let st = h.layer.stats();
    assert_eq!((st.retransmissions, st.timeouts, st.active), (10, 1, 0));
}

#[test]
fn rfc3261_17_1_1_2_invite_retransmits_doubling_and_timer_b_fires_at_64t1() {
    let mut h = Harness::default_config();
    let key = h.send_request(request("INVITE", "i1", 1), udp(5060));
    assert_eq!(h.layer.state(&key), Some(State::Calling));
    h.advance_to(40_000);
    // Timer A: 0.5, 1, 2, 4, 8, 16 s apart — no T2 cap for INVITE.
    assert_eq!(h.sent_at(), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert!(is_timeout(&h.events[0].1, Timer::B));
    assert_eq!(h.events[0].0, 32_000);
    assert_eq!(h.terminated_at(&key), Some(32_000));
}

#[test]
fn rfc3261_17_1_1_2_reliable_transport_sends_once_but_still_times_out() {
    for method in ["INVITE", "REGISTER"] {
        let mut h = Harness::default_config();
        let key = h.send_request(request(method, "t1", 1), tcp(5060));
        h.advance_to(40_000);
        assert_eq!(h.sent_at(), [0], "{method}");
        assert_eq!(h.terminated_at(&key), Some(32_000), "{method}");
        assert_eq!(
            h.count_events(|e| matches!(e, TransactionEvent::Timeout { .. })),
            1
        );
    }
}

#[test]
fn rfc3261_17_1_1_2_custom_t1_scales_every_timer() {
    let mut config = TransactionConfig::default();
    config.timers.t1 = transaction_common::ms(100);
    let mut h = Harness::new(config);
    h.send_request(request("INVITE", "c1", 1), udp(5060));
    h.advance_to(10_000);
    assert_eq!(h.sent_at(), [0, 100, 300, 700, 1500, 3100, 6300]);
    assert!(is_timeout(&h.events[0].1, Timer::B));
    assert_eq!(h.events[0].0, 6_400);
}

#[test]
fn rfc3261_17_1_2_2_provisional_moves_to_proceeding_and_timer_e_to_t2() {
    let mut h = Harness::default_config();
    let req = request("REGISTER", "p1", 1);
    let key = h.send_request(req.clone(), udp(5060));
    h.advance_to(200);
    h.recv_response(reply(&req, 100, None), udp(5060));
    assert_eq!(h.layer.state(&key), Some(State::Proceeding));
    h.advance_to(13_000);
    // Timer E still fires at 0.5 s, then every T2 = 4 s.
    assert_eq!(h.sent_at(), [0, 500, 4500, 8500, 12500]);
    h.recv_response(reply(&req, 200, Some("r")), udp(5060));
    assert_eq!(h.layer.state(&key), Some(State::Completed));
    h.advance_to(20_000);
    assert_eq!(h.sent_at().len(), 5, "no retransmission after the final");
}

#[test]
fn rfc3261_17_1_2_2_final_passes_up_once_and_timer_k_absorbs_retransmissions() {
    let mut h = Harness::default_config();
    let req = request("OPTIONS", "k1", 1);
    let key = h.send_request(req.clone(), udp(5060));
    h.advance_to(700);
    let ok = reply(&req, 200, Some("r"));
    h.recv_response(ok.clone(), udp(5060));
    h.advance_to(3_000);
    h.recv_response(ok.clone(), udp(5060));
    h.advance_to(10_000);
    let finals = h.count_events(|e| matches!(e, TransactionEvent::Response { .. }));
    assert_eq!(finals, 1);
    // Timer K = T4 = 5 s after the final.
    assert_eq!(h.terminated_at(&key), Some(5_700));
    assert_eq!(h.layer.stats().absorbed_responses, 1);
    // After K the retransmission is a stray.
    h.recv_response(ok, udp(5060));
    assert!(matches!(
        h.events.last().unwrap().1,
        TransactionEvent::StrayResponse { .. }
    ));

    // Timer K is zero on TCP: terminated with the final.
    let mut h = Harness::default_config();
    let key = h.send_request(req.clone(), tcp(5060));
    h.recv_response(reply(&req, 404, Some("r")), tcp(5060));
    assert_eq!(h.terminated_at(&key), Some(0));
}

#[test]
fn rfc3261_17_1_1_3_non2xx_is_acked_and_the_ack_resent_for_each_retransmission() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "a1", 7);
    let key = h.send_request(invite.clone(), udp(5060));
    h.advance_to(100);
    h.recv_response(reply(&invite, 180, Some("uas")), udp(5060));
    h.advance_to(2_000);
    let busy = reply(&invite, 486, Some("uas"));
    h.recv_response(busy.clone(), udp(5060));
    assert_eq!(h.layer.state(&key), Some(State::Completed));
    let (t, ack) = h.sent.last().unwrap();
    assert_eq!(*t, 2_000);
    let ack = parse_request(&ack.bytes);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, invite.uri);
    assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKa1"));
    assert_eq!(ack.headers.cseq().unwrap().to_string(), "7 ACK");
    assert_eq!(ack.headers.to_tag().as_deref(), Some("uas"));
    assert_eq!(ack.headers.call_id(), invite.headers.call_id());

    h.advance_to(2_600);
    h.recv_response(busy.clone(), udp(5060));
    let acks: Vec<_> = h.sent.iter().skip(1).map(|(t, _)| *t).collect();
    assert_eq!(acks, [2_000, 2_600], "one ACK per 486 received");
    let responses = h.count_events(|e| matches!(e, TransactionEvent::Response { .. }));
    assert_eq!(responses, 2, "180 and one 486");
    h.advance_to(40_000);
    // Timer D: 32 s on UDP.
    assert_eq!(h.terminated_at(&key), Some(34_000));

    // Timer D is zero on TCP.
    let mut h = Harness::default_config();
    let key = h.send_request(invite.clone(), tcp(5060));
    h.recv_response(busy, tcp(5060));
    assert_eq!(h.terminated_at(&key), Some(0));
    assert_eq!(h.sent.len(), 2, "INVITE and ACK");
}

#[test]
fn rfc6026_7_2_client_accepted_passes_every_2xx_up_and_never_acks() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "ok1", 1);
    let key = h.send_request(invite.clone(), udp(5060));
    h.advance_to(1_000);
    let ok = reply(&invite, 200, Some("uas"));
    h.recv_response(ok.clone(), udp(5060));
    assert_eq!(h.layer.state(&key), Some(State::Accepted));
    h.advance_to(1_500);
    h.recv_response(ok.clone(), udp(5060));
    // A 2xx from another fork too.
    h.recv_response(reply(&invite, 200, Some("fork2")), udp(5060));
    h.recv_response(reply(&invite, 503, Some("x")), udp(5060));
    let oks = h.count_events(
        |e| matches!(e, TransactionEvent::Response { response, .. } if response.status == 200),
    );
    assert_eq!(oks, 3);
    assert_eq!(
        h.count_events(|e| matches!(e, TransactionEvent::Response { .. })),
        3
    );
    // Only the INVITE and its retransmission at 0.5 s: the 2xx ACK is the TU's.
    assert_eq!(h.sent_at(), [0, 500]);
    h.advance_to(40_000);
    // Timer M = 64·T1 after the first 2xx.
    assert_eq!(h.terminated_at(&key), Some(33_000));
    h.recv_response(ok, udp(5060));
    assert!(matches!(
        h.events.last().unwrap().1,
        TransactionEvent::StrayResponse { .. }
    ));
    assert_eq!(h.layer.stats().stray_responses, 1);
}

#[test]
fn rfc3261_17_1_3_responses_match_on_branch_and_cseq_method() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "m1", 1);
    let key = h.send_request(invite.clone(), udp(5060));
    // Same branch, CSeq method CANCEL: belongs to a CANCEL transaction we do not have.
    let mut wrong_method = reply(&invite, 180, None);
    wrong_method.headers.set(HeaderName::CSeq, "1 CANCEL");
    h.recv_response(wrong_method, udp(5060));
    // Other branch.
    h.recv_response(reply(&request("INVITE", "m2", 1), 180, None), udp(5060));
    // Branch compared case-insensitively after the cookie (§7.3.1: tokens).
    let mut upper = reply(&invite, 180, None);
    upper.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP a.example:5060;branch=z9hG4bKM1",
    );
    h.recv_response(upper, udp(5060));
    let kinds: Vec<_> = h
        .events
        .iter()
        .map(|(_, e)| match e {
            TransactionEvent::StrayResponse { .. } => "stray",
            TransactionEvent::Response { key: k, .. } if *k == key => "matched",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["stray", "stray", "matched"]);
}

#[test]
fn rfc3261_9_1_cancel_waits_for_a_provisional_then_goes_to_the_same_peer() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "c1", 3);
    let key = h.send_request(invite.clone(), udp(5060));
    let ckey = h.layer.send_cancel(h.now, &key).unwrap();
    h.collect();
    assert_eq!(ckey.method(), &Method::Cancel);
    assert_eq!(h.sent.len(), 1, "no CANCEL before a provisional response");
    assert_eq!(h.layer.state(&ckey), None);
    h.advance_to(300);
    h.recv_response(reply(&invite, 100, None), udp(5060));
    let (t, cancel) = h.sent.last().unwrap();
    assert_eq!((*t, cancel.to), (300, udp(5060)));
    let cancel = parse_request(&cancel.bytes);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(
        cancel.headers.top_via().unwrap().branch(),
        Some("z9hG4bKc1")
    );
    assert_eq!(cancel.headers.cseq().unwrap().to_string(), "3 CANCEL");
    assert_eq!(h.layer.state(&ckey), Some(State::Trying));
    h.recv_response(reply(&cancel, 200, Some("uas")), udp(5060));
    h.recv_response(reply(&invite, 487, Some("uas")), udp(5060));
    let got: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TransactionEvent::Response { key: k, response } => Some((k == &ckey, response.status)),
            _ => None,
        })
        .collect();
    assert_eq!(got, [(false, 100), (true, 200), (false, 487)]);
    assert_eq!(
        h.layer.send_cancel(h.now, &key),
        Err(TransactionError::InvalidState(State::Completed))
    );
}

#[test]
fn rfc3261_9_1_held_cancel_is_dropped_when_a_final_comes_first() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "c2", 1);
    let key = h.send_request(invite.clone(), udp(5060));
    let ckey = h.layer.send_cancel(h.now, &key).unwrap();
    assert_eq!(
        h.layer.send_cancel(h.now, &key),
        Err(TransactionError::DuplicateKey)
    );
    h.recv_response(reply(&invite, 603, Some("u")), udp(5060));
    let methods: Vec<_> = h
        .sent_bytes()
        .iter()
        .map(|b| parse_request(b).method)
        .collect();
    assert_eq!(methods, [Method::Invite, Method::Ack]);
    assert_eq!(h.layer.state(&ckey), None);
}

#[test]
fn rfc3261_9_1_invite_given_up_64t1_after_cancel_without_final() {
    let mut h = Harness::default_config();
    let invite = request("INVITE", "c3", 1);
    let key = h.send_request(invite.clone(), udp(5060));
    h.recv_response(reply(&invite, 180, Some("u")), udp(5060));
    h.advance_to(10_000);
    let ckey = h.layer.send_cancel(h.now, &key).unwrap();
    h.collect();
    h.recv_response(
        reply(&request("CANCEL", "c3", 1), 200, Some("u")),
        udp(5060),
    );
    h.advance_to(60_000);
    let t = h.events.iter().find_map(|(t, e)| {
        matches!(e, TransactionEvent::Timeout { key: k, timer: Timer::CancelWait } if *k == key)
            .then_some(*t)
    });
    assert_eq!(t, Some(42_000));
    assert_eq!(h.terminated_at(&key), Some(42_000));
    assert_eq!(h.terminated_at(&ckey), Some(15_000), "CANCEL: Timer K");
}

#[test]
fn rfc3261_8_1_3_1_transport_error_reaches_the_tu_and_ends_the_transaction() {
    let mut h = Harness::default_config();
    let key = h.send_request(request("INVITE", "e1", 1), udp(5060));
    let other = h.send_request(request("OPTIONS", "e2", 1), udp(5070));
    assert_eq!(h.sent[0].1.key.as_ref(), Some(&key));
    h.layer.handle_transport_error(h.now, &key);
    h.collect();
    assert!(matches!(&h.events[0].1, TransactionEvent::TransportError { key: k } if *k == key));
    assert_eq!(h.terminated_at(&key), Some(0));
    h.layer.handle_peer_failure(h.now, udp(5070));
    h.collect();
    assert_eq!(h.terminated_at(&other), Some(0));
    assert_eq!(h.layer.stats().transport_errors, 2);
    assert!(h.layer.is_empty());
}

fn transport_errors(h: &Harness) -> Vec<TransactionKey> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            TransactionEvent::TransportError { key } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The octets the layer sent for `key` (its first transmission).
fn sent_for(h: &Harness, key: &TransactionKey) -> Vec<u8> {
    h.sent
        .iter()
        .find(|(_, x)| x.key.as_ref() == Some(key))
        .map(|(_, x)| x.bytes.to_vec())
        .expect("the layer sent it")
}

/// An ICMP port unreachable from a peer (§18.4) without a readable quote fails our client
/// transactions to it at once, not the server transactions of the requests it sent us, nor
/// transactions to other peers.
#[test]
fn rfc3261_18_4_unreachable_peer_fails_client_transactions_only() {
    let mut h = Harness::default_config();
    let ours = h.send_request(request("INVITE", "u1", 1), udp(5060));
    let elsewhere = h.send_request(request("OPTIONS", "u2", 1), udp(5070));
    h.recv_request(request("INVITE", "u3", 1), udp(5060))
        .unwrap();
    let theirs = h.request_key();
    h.layer.handle_peer_unreachable(h.now, udp(5060), b"");
    h.collect();
    assert_eq!(transport_errors(&h), vec![ours.clone()]);
    assert_eq!(h.terminated_at(&ours), Some(0));
    assert!(h.layer.state(&theirs).is_some(), "server transaction kept");
    assert!(h.layer.state(&elsewhere).is_some());
}

/// The quote names the datagram that bounced: only its transaction fails. A late datagram
/// to a phone that has gone must not fail a new INVITE to a new phone on the same address
/// (the transfer.sh flake: a second phone reused the first one's port).
#[test]
fn rfc3261_18_4_the_quoted_datagram_picks_the_transaction() {
    let mut h = Harness::default_config();
    let old = h.send_request(request("OPTIONS", "q1", 1), udp(5060));
    let new = h.send_request(request("INVITE", "q2", 1), udp(5060));
    // The kernel keeps only the start of the datagram: cut it inside the headers.
    let mut quote = sent_for(&h, &old);
    let cut = quote
        .windows(4)
        .position(|w| w == b"CSeq")
        .unwrap_or(quote.len());
    quote.truncate(cut + 2);
    h.layer.handle_peer_unreachable(h.now, udp(5060), &quote);
    h.collect();
    assert_eq!(transport_errors(&h), vec![old.clone()]);
    assert!(h.layer.state(&new).is_some(), "the INVITE is untouched");

    // The same quote from another address fails nothing there.
    let quote = sent_for(&h, &new);
    h.layer.handle_peer_unreachable(h.now, udp(5070), &quote);
    h.collect();
    assert_eq!(transport_errors(&h), vec![old.clone()]);
    assert!(h.layer.state(&new).is_some());
}

/// A quoted response or ACK came from no client transaction: nothing fails. A quote cut
/// before the Via line is unreadable and fails every client transaction to the peer.
#[test]
fn rfc3261_18_4_quoted_responses_fail_nothing_and_a_cut_via_falls_back() {
    let mut h = Harness::default_config();
    let ours = h.send_request(request("INVITE", "r1", 1), udp(5060));
    let response =
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a.example:5060;branch=z9hG4bKr1\r\nCSeq: 1 INVITE\r\n";
    h.layer.handle_peer_unreachable(h.now, udp(5060), response);
    let ack = b"ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a.example:5060;branch=z9hG4bKr1\r\n\r\n";
    h.layer.handle_peer_unreachable(h.now, udp(5060), ack);
    h.collect();
    assert!(transport_errors(&h).is_empty());
    // Cut in the middle of the Via: not trusted as a branch, so all clients to the peer fail.
    let cut = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a.example:5060;branch=z9h";
    h.layer.handle_peer_unreachable(h.now, udp(5060), cut);
    h.collect();
    assert_eq!(transport_errors(&h), vec![ours]);
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let mut layer = TransactionLayer::new(TransactionConfig {
        max_transactions: 1,
        ..TransactionConfig::default()
    });
    let now = std::time::Instant::now();
    let no_branch = transaction_common::request_via("OPTIONS", "SIP/2.0/UDP a.example", 1, None);
    assert_eq!(
        layer.send_request(now, no_branch, udp(1)),
        Err(TransactionError::MissingBranch)
    );
    assert_eq!(
        layer.send_request(now, request("ACK", "x", 1), udp(1)),
        Err(TransactionError::AckIsNotATransaction)
    );
    let k = layer
        .send_request(now, request("INVITE", "x", 1), udp(1))
        .unwrap();
    assert_eq!(
        layer.send_request(now, request("INVITE", "x", 1), udp(1)),
        Err(TransactionError::DuplicateKey)
    );
    assert_eq!(
        layer.send_request(now, request("BYE", "y", 2), udp(1)),
        Err(TransactionError::TooManyTransactions(1))
    );
    let r = reply(&request("INVITE", "x", 1), 200, None);
    assert_eq!(
        layer.send_response(now, &k, r),
        Err(TransactionError::WrongKind)
    );
    assert_eq!(layer.stats().rejected, 1);
}
