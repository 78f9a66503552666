//! The call core driven directly: events in, `Command`s out, on a virtual clock, with no
//! engine, no transaction layer and no sockets. The engine's scenario tests
//! (`engine::tests::calls`) cover the same calls end to end through dispatch; these pin down
//! what the core itself decides.

use super::*;
use crate::net::{Peer, Transport};
use crate::registrar::Binding;
use crate::sip::{parse_datagram, HeaderName, Message, Request, Response};
use crate::transaction::{TimerConfig, TransactionKey};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::{Duration, Instant, SystemTime};

const CALLER: &str = "192.0.2.10:5062";

pub(super) fn peer(s: &str) -> Peer {
    Peer::new(Transport::Udp, s.parse().expect("test address"))
}

pub(super) fn core() -> B2bua {
    core_with(|_| {})
}

pub(super) fn core_with(f: impl FnOnce(&mut CallSettings)) -> B2bua {
    let mut calls = CallSettings::default();
    f(&mut calls);
    B2bua::new(
        B2buaConfig {
            node_id: None,
            calls,
            timers: TimerConfig::default(),
            user_agent: "ferroswitch-test".into(),
        },
        StdRng::seed_from_u64(7),
        0x1234,
    )
}

pub(super) fn invite() -> Request {
    let text = "INVITE sip:alice@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKcaller1;rport\r\n\
        Max-Forwards: 70\r\n\
        From: \"Bob\" <sip:bob@example.com>;tag=bobtag\r\n\
        To: <sip:alice@example.com>\r\n\
        Call-ID: a-leg-1@192.0.2.10\r\n\
        CSeq: 2 INVITE\r\n\
        Contact: <sip:bob@192.0.2.10:5062>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";
    match parse_datagram(text.as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("test INVITE does not parse: {other:?}"),
    }
}

pub(super) fn binding(contact_port: u16) -> Binding {
    let addr = format!("198.51.100.7:{contact_port}");
    Binding {
        contact: format!("sip:alice@{addr}"),
        contact_params: String::new(),
        instance: None,
        call_id: format!("reg-{contact_port}"),
        cseq: 1,
        expires_at: Instant::now() + Duration::from_secs(3600),
        source: peer(&addr),
        local: "203.0.113.1:5060".parse().expect("test address"),
        connection: None,
        nat: false,
        user_agent: None,
        advertised: "203.0.113.1:5060".into(),
        path: Vec::new(),
    }
}

pub(super) fn admitted() -> Admitted {
    Admitted {
        ruri: invite().request_uri().expect("test URI"),
        realm: "example.com".into(),
        caller: crate::cdr::Party {
            user: "bob".into(),
            display_name: Some("Bob".into()),
        },
        authenticated: true,
        context: "default".into(),
        number: "alice".into(),
        trunk: None,
    }
}

pub(super) fn arrival() -> Arrival {
    Arrival {
        from: peer(CALLER),
        local: "203.0.113.1:5060".parse().expect("test address"),
        transport: Transport::Udp,
        limited_source: Some("192.0.2.10".parse().expect("test address")),
    }
}

fn alice(bindings: Vec<Binding>) -> Route {
    Route::User {
        callee: crate::cdr::Party {
            user: "alice".into(),
            display_name: None,
        },
        bindings,
    }
}

pub(super) fn a_key() -> TransactionKey {
    TransactionKey::server_for_request(&invite()).expect("a key")
}

/// Every command the core has queued.
pub(super) fn drain(core: &mut B2bua) -> Vec<Command> {
    std::iter::from_fn(|| core.poll_command()).collect()
}

/// A response of the callee to one of our b-leg INVITEs.
pub(super) fn answer(req: &Request, status: u16, tag: &str, sdp: bool) -> Response {
    let mut r = crate::sip::response_to(req, status, crate::sip::reason_phrase(status));
    crate::sip::set_to_tag(&mut r, tag);
    r.headers
        .push(HeaderName::Contact, "<sip:alice@198.51.100.7:5070>");
    if sdp {
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = bytes::Bytes::from_static(b"v=0\n");
    }
    r
}

/// Starts a call to alice with `n` registered contacts; returns the b-leg INVITEs.
fn ring(core: &mut B2bua, n: u16) -> Vec<(TransactionKey, Request, Peer)> {
    let now = Instant::now();
    let bindings = (0..n).map(|i| binding(5070 + 2 * i)).collect();
    core.handle_invite(
        now,
        SystemTime::UNIX_EPOCH,
        a_key(),
        invite(),
        arrival(),
        admitted(),
        alice(bindings),
    );
    drain(core)
        .into_iter()
        .map(|c| match c {
            Command::SendRequest { key, request, to } => (key, request, to),
            other => panic!("expected only b-leg INVITEs, got {other:?}"),
        })
        .collect()
}

#[test]
fn a_new_call_sends_one_b_leg_invite_per_contact_with_its_own_key() {
    let mut core = core();
    let legs = ring(&mut core, 2);
    assert_eq!(legs.len(), 2);
    for (key, req, to) in &legs {
        assert_eq!(
            Some(key),
            TransactionKey::client_for_request(req).ok().as_ref(),
            "the key names the request's own transaction"
        );
        assert_eq!(req.method, crate::sip::Method::Invite);
        assert!(core.is_our_loop(req), "our branch, so a loop is recognised");
        assert_eq!(req.headers.max_forwards(), Some(69));
        assert_eq!(req.body.as_ref(), b"v=0\n", "SDP passed through");
        assert_ne!(
            req.headers.call_id(),
            Some("a-leg-1@192.0.2.10"),
            "a new dialog"
        );
        assert_eq!(to.addr.ip().to_string(), "198.51.100.7");
    }
    assert_ne!(legs[0].0, legs[1].0);
    assert_eq!(core.len(), 1);
}

#[test]
fn ringing_and_answer_are_relayed_to_the_caller_and_the_callee_is_acked() {
    let mut core = core();
    let legs = ring(&mut core, 1);
    let (bkey, binv, bpeer) = &legs[0];
    let now = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let tx = crate::transaction::TransactionLayer::new(Default::default());
    assert!(core.handle_client_response(now, wall, &tx, bkey, answer(binv, 180, "cal", false)));
    match drain(&mut core).as_slice() {
        [Command::Respond { key, response }] => {
            assert_eq!(key, &a_key());
            assert_eq!(response.status, 180);
            assert!(response.headers.to_tag().is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(core.handle_client_response(now, wall, &tx, bkey, answer(binv, 200, "cal", true)));
    let out = drain(&mut core);
    let ack = out.iter().find_map(|c| match c {
        Command::Transmit { to, bytes } => Some((to, bytes)),
        _ => None,
    });
    let (to, bytes) = ack.expect("the callee's 2xx is ACKed at once (the caller sent an offer)");
    assert_eq!(to, bpeer);
    assert!(bytes.starts_with(b"ACK "));
    let ok = out.iter().find_map(|c| match c {
        Command::Respond { response, .. } if response.status == 200 => Some(response),
        _ => None,
    });
    assert_eq!(ok.expect("200 to the caller").body.as_ref(), b"v=0\n");
}

#[test]
fn one_failed_fork_waits_for_the_others_and_all_failed_gives_the_best_with_a_cdr() {
    let mut core = core();
    let legs = ring(&mut core, 2);
    let (now, wall) = (Instant::now(), SystemTime::UNIX_EPOCH);
    let tx = crate::transaction::TransactionLayer::new(Default::default());
    // The first contact cannot be reached: nothing for the caller yet.
    core.handle_client_failure(now, wall, &legs[0].0, 503);
    assert!(drain(&mut core).is_empty());
    // The second is busy: 486 beats 503 (RFC 3261 §16.7), and the attempt has its CDR.
    assert!(core.handle_client_response(
        now,
        wall,
        &tx,
        &legs[1].0,
        answer(&legs[1].1, 486, "x", false)
    ));
    let out = drain(&mut core);
    assert!(
        out.iter().any(|c| matches!(c, Command::Respond { key, response } if *key == a_key() && response.status == 486)),
        "{out:?}"
    );
    let cdr = out.iter().find_map(|c| match c {
        Command::Cdr(r) => Some(r),
        _ => None,
    });
    let cdr = cdr.expect("a CDR");
    assert_eq!((cdr.sip_status, cdr.hangup_cause), (486, "USER_BUSY"));
    assert_eq!(core.table_sizes(), (0, 0, 0));
}

#[test]
fn no_such_user_and_not_registered_are_refused_with_a_cdr() {
    let mut core = core();
    let (now, wall) = (Instant::now(), SystemTime::UNIX_EPOCH);
    core.handle_invite(
        now,
        wall,
        a_key(),
        invite(),
        arrival(),
        admitted(),
        Route::NoSuchUser { user: "zed".into() },
    );
    core.handle_invite(
        now,
        wall,
        a_key(),
        invite(),
        arrival(),
        admitted(),
        alice(Vec::new()),
    );
    let out = drain(&mut core);
    let statuses: Vec<u16> = out
        .iter()
        .filter_map(|c| match c {
            Command::Respond { response, .. } => Some(response.status),
            _ => None,
        })
        .collect();
    let causes: Vec<&str> = out
        .iter()
        .filter_map(|c| match c {
            Command::Cdr(r) => Some(r.hangup_cause),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![404, 480]);
    assert_eq!(causes, vec!["UNALLOCATED_NUMBER", "USER_NOT_REGISTERED"]);
    assert!(core.is_empty());
}

#[test]
fn the_per_user_limit_refuses_with_486_and_a_warning() {
    let mut core = core_with(|c| c.max_calls_per_user = 1);
    assert_eq!(ring(&mut core, 1).len(), 1);
    let (now, wall) = (Instant::now(), SystemTime::UNIX_EPOCH);
    let mut second = invite();
    second.headers.set(HeaderName::CallId, "a-leg-2@192.0.2.10");
    second.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKcaller2;rport",
    );
    let key = TransactionKey::server_for_request(&second).expect("a key");
    core.handle_invite(
        now,
        wall,
        key.clone(),
        second,
        arrival(),
        admitted(),
        alice(vec![binding(5070)]),
    );
    match drain(&mut core).as_slice() {
        [Command::Respond { key: k, response }] => {
            assert_eq!((k, response.status), (&key, 486));
            assert!(response.headers.get(&HeaderName::Warning).is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_answer_cancels_every_contact_and_tells_the_caller_480() {
    let mut core = core_with(|c| c.call_timeout = Duration::from_secs(5));
    let legs = ring(&mut core, 2);
    let due = core.poll_timeout().expect("the no-answer timer is armed");
    core.handle_timeout(due, SystemTime::UNIX_EPOCH);
    let out = drain(&mut core);
    let cancelled: Vec<_> = out
        .iter()
        .filter_map(|c| match c {
            Command::Cancel { key } => Some(key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, vec![legs[0].0.clone(), legs[1].0.clone()]);
    assert!(out
        .iter()
        .any(|c| matches!(c, Command::Respond { response, .. } if response.status == 480)));
    assert!(out
        .iter()
        .any(|c| matches!(c, Command::Cdr(r) if r.hangup_cause == "NO_ANSWER")));
}

#[test]
fn a_refused_b_leg_send_ends_the_attempt_with_503() {
    let mut core = core();
    let legs = ring(&mut core, 1);
    // The engine reports a SendRequest the transaction layer refused as a 503 failure.
    core.handle_client_failure(Instant::now(), SystemTime::UNIX_EPOCH, &legs[0].0, 503);
    let out = drain(&mut core);
    assert!(out
        .iter()
        .any(|c| matches!(c, Command::Respond { response, .. } if response.status == 503)));
    assert!(out
        .iter()
        .any(|c| matches!(c, Command::Cdr(r) if r.sip_status == 503)));
    assert!(core.is_empty());
}

#[test]
fn rfc3327_5_4_a_binding_with_a_path_is_reached_at_its_first_hop() {
    use crate::net::Transport;
    let mut b = binding(5060);
    b.nat = true; // what the REGISTER's source would have said: not used with a Path
    b.path = vec![
        "<sip:10.0.0.1:5070;transport=tcp;lr>".into(),
        "<sip:10.0.0.2;lr>".into(),
    ];
    assert_eq!(
        super::binding_peer(&b),
        Peer::new(Transport::Tcp, "10.0.0.1:5070".parse().unwrap())
    );
    let target = super::plan::LegTarget::from(&b);
    assert_eq!(target.ruri, b.contact, "the Contact stays the Request-URI");
    assert_eq!(target.route, b.path);
    // A first hop we would have to resolve: the proxy the REGISTER came from.
    b.path = vec!["<sip:edge.example;lr>".into()];
    assert_eq!(super::binding_peer(&b), b.source);
}
