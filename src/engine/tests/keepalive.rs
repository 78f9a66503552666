//! NAT keep-alive (issue 11): the registrar's OPTIONS pings to NAT'd UDP bindings, on the
//! virtual clock. A ping goes one interval after the REGISTER to the packet source; any answer
//! keeps the binding; three pings without one (Timer F) remove it; a non-NAT binding and
//! `nat_keepalive = 0` get none.

use super::*;
use crate::sip::{Method, Request};

const AOR: &str = "alice@192.168.4.4";
/// The router's public side of alice's phone at 10.0.0.5:5060.
const NAT_SOURCE: &str = "203.0.113.9:40000";

/// Registers alice from behind NAT (Via/Contact 10.0.0.5, packets from `NAT_SOURCE`).
/// The scenarios below count in 30 s intervals (the default is 25 s, see
/// `RegistrarConfig::nat_keepalive`).
fn net30() -> Net {
    Net::with(|c| c.registrar.nat_keepalive = Duration::from_secs(30))
}

fn nat_alice(net: &mut Net) -> Phone {
    let mut phone = Phone::new("alice", "1234", "10.0.0.5:5060");
    let r = net.register(&mut phone, addr(NAT_SOURCE), &[]);
    assert_eq!(r.status, 200);
    assert!(net.store.lookup(AOR, net.now)[0].nat);
    phone
}

fn request(t: &Transmit) -> Request {
    match parse_datagram(&t.bytes) {
        Ok(Message::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// The OPTIONS among `out` (exactly one expected).
fn the_ping(out: &[Transmit]) -> Request {
    let pings: Vec<Request> = out
        .iter()
        .map(request)
        .filter(|r| r.method == Method::Options)
        .collect();
    assert_eq!(pings.len(), 1, "one OPTIONS expected: {out:?}");
    pings.into_iter().next().expect("one")
}

/// The phone answers `req` with `status` from behind its NAT.
fn answer(net: &mut Net, req: &Request, status: u16) -> Vec<Transmit> {
    let resp = crate::sip::response_to(req, status, "Whatever");
    net.deliver(Transport::Udp, addr(NAT_SOURCE), None, &resp.to_bytes())
}

#[test]
fn nat_binding_gets_a_well_formed_options_one_interval_after_registering() {
    let mut net = net30();
    nat_alice(&mut net);
    let registered = net.now;
    assert_eq!(
        net.engine.poll_timeout(),
        Some(registered + Duration::from_secs(30)),
        "the keep-alive is the next deadline"
    );
    assert!(net
        .run_until(registered + Duration::from_millis(29_999))
        .is_empty());
    let out = net.run_until(registered + Duration::from_secs(30));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].to, Peer::new(Transport::Udp, addr(NAT_SOURCE)));
    let ping = the_ping(&out);
    assert_eq!(
        ping.request_uri().expect("uri").as_str(),
        "sip:alice@10.0.0.5:5060;transport=UDP",
        "request-URI = the Contact"
    );
    let h = |n: HeaderName| ping.headers.get_str(&n).map(str::to_string);
    assert_eq!(
        h(HeaderName::To).as_deref(),
        Some("<sip:alice@192.168.4.4>")
    );
    assert_eq!(h(HeaderName::MaxForwards).as_deref(), Some("70"));
    assert_eq!(h(HeaderName::CSeq).as_deref(), Some("1 OPTIONS"));
    assert_eq!(
        h(HeaderName::UserAgent).as_deref(),
        Some("ferroswitch-test")
    );
    let from = h(HeaderName::From).expect("From");
    assert!(from.contains(";tag="), "{from}");
    let via = h(HeaderName::Via).expect("Via");
    assert!(
        via.starts_with("SIP/2.0/UDP 192.168.4.4:5060;") && via.contains(";branch=z9hG4bKfs"),
        "{via}"
    );
    let call_id = h(HeaderName::CallId).expect("Call-ID");
    assert_ne!(call_id, "call-alice-10.0.0.5:5060", "a new Call-ID");
    assert!(ping.headers.to_tag().is_none(), "out of dialog");
    // The next one goes an interval after this one, with a new Call-ID and branch.
    answer(&mut net, &ping, 200);
    let out = net.run_until(registered + Duration::from_secs(60));
    let second = the_ping(&out);
    assert_ne!(
        second.headers.get_str(&HeaderName::CallId),
        Some(call_id.as_str())
    );
}

#[test]
fn non_nat_binding_gets_no_ping_in_five_minutes() {
    let mut net = net30();
    let mut phone = Phone::new("alice", "1234", ZOIPER);
    assert_eq!(net.register(&mut phone, addr(ZOIPER), &[]).status, 200);
    assert!(!net.store.lookup(AOR, net.now)[0].nat);
    let out = net.advance(Duration::from_secs(300));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(net.aor_contacts(AOR).len(), 1);
}

#[test]
fn tcp_binding_behind_nat_gets_no_ping() {
    let mut net = net30();
    let mut phone = Phone::new("alice", "1234", "10.0.0.5:5060");
    phone.transport = "TCP";
    let src = addr(NAT_SOURCE);
    let first = net.deliver(Transport::Tcp, src, Some(7), phone.register(&[]).as_bytes());
    phone.learn(&response(&first[0]));
    let ok = net.deliver(Transport::Tcp, src, Some(7), phone.register(&[]).as_bytes());
    assert_eq!(response(&ok[0]).status, 200);
    let out = net.advance(Duration::from_secs(300));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn any_answer_to_a_ping_keeps_the_binding() {
    let mut net = net30();
    nat_alice(&mut net);
    let t0 = net.now;
    // 200, then refusals: each still proves the phone is there.
    for (i, status) in [200u16, 404, 405, 501, 486, 200].into_iter().enumerate() {
        let at = t0 + Duration::from_secs(30 * (i as u64 + 1));
        let out = net.run_until(at);
        let ping = the_ping(&out);
        assert!(answer(&mut net, &ping, status).is_empty());
    }
    assert_eq!(net.aor_contacts(AOR).len(), 1);
    assert_eq!(net.engine.stats().keepalive_removed, 0);
}

#[test]
fn three_unanswered_pings_remove_the_binding_and_a_new_register_works() {
    let mut net = net30();
    let mut phone = nat_alice(&mut net);
    let t0 = net.now;
    let mut pings = 0;
    let logs = logs_of(|| {
        // 30 s, then each ping times out after 64*T1 = 32 s and the next goes at once:
        // pings at 30, 62 and 94 s; the binding goes at 126 s.
        let out = net.run_until(t0 + Duration::from_millis(125_999));
        pings = out
            .iter()
            .map(request)
            .filter(|r| r.method == Method::Options)
            .map(|r| r.headers.get_str(&HeaderName::CallId).map(str::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert_eq!(
            net.aor_contacts(AOR).len(),
            1,
            "still there before the third Timer F"
        );
        net.run_until(t0 + Duration::from_secs(126));
    });
    assert_eq!(pings, 3, "three pings (retransmissions aside)");
    assert!(net.aor_contacts(AOR).is_empty());
    assert_eq!(net.engine.stats().keepalive_removed, 1);
    assert!(
        logs.contains(
            "binding removed: no answer to keep-alive aor=alice@192.168.4.4 contact=\"sip:alice@10.0.0.5:5060;transport=UDP\""
        ),
        "{logs}"
    );
    assert_eq!(net.engine.keepalives.len(), 0, "nothing left behind");
    // Nothing more goes out for it.
    assert!(net.advance(Duration::from_secs(300)).is_empty());
    // The phone comes back.
    let r = net.register(&mut phone, addr(NAT_SOURCE), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(net.aor_contacts(AOR).len(), 1);
    let out = net.advance(Duration::from_secs(30));
    the_ping(&out);
}

#[test]
fn a_register_refresh_resets_the_misses() {
    let mut net = net30();
    let mut phone = nat_alice(&mut net);
    let t0 = net.now;
    // Two pings go unanswered (30 s and 62 s; the second times out at 94 s) …
    net.run_until(t0 + Duration::from_secs(93));
    // … then the phone refreshes its registration while the third is not yet due.
    assert_eq!(net.register(&mut phone, addr(NAT_SOURCE), &[]).status, 200);
    // The second one's timeout (94 s) now counts as the first miss only. Without the reset
    // the binding would go when the ping of 94 s times out (126 s); with it, when the ping
    // of 126 s does (158 s).
    net.run_until(t0 + Duration::from_secs(157));
    assert_eq!(net.aor_contacts(AOR).len(), 1);
    net.run_until(t0 + Duration::from_secs(158));
    assert!(net.aor_contacts(AOR).is_empty());
}

#[test]
fn icmp_unreachable_counts_as_a_miss() {
    let mut net = net30();
    nat_alice(&mut net);
    let t0 = net.now;
    let peer = Peer::new(Transport::Udp, addr(NAT_SOURCE));
    let failure = crate::net::SendFailure {
        peer,
        connection: None,
        data: Bytes::new(),
        error: crate::net::TransportError::Io {
            peer,
            source: Arc::new(std::io::Error::from_raw_os_error(111)),
        },
    };
    for n in 1..=3u64 {
        let out = net.run_until(t0 + Duration::from_secs(30 * n));
        the_ping(&out);
        let (now, wall) = (net.now, net.wall());
        net.engine.handle_send_failure(now, wall, &failure);
    }
    assert!(net.aor_contacts(AOR).is_empty());
}

#[test]
fn nat_keepalive_0_sends_nothing() {
    let mut net = Net::with(|c| c.registrar.nat_keepalive = Duration::ZERO);
    nat_alice(&mut net);
    let out = net.advance(Duration::from_secs(600));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(net.aor_contacts(AOR).len(), 1);
}

#[test]
fn unregistered_binding_is_forgotten_at_its_deadline() {
    let mut net = net30();
    let mut phone = nat_alice(&mut net);
    let r = net.register(&mut phone, addr(NAT_SOURCE), &["Contact: *", "Expires: 0"]);
    assert_eq!(r.status, 200);
    assert!(net.advance(Duration::from_secs(60)).is_empty());
    assert_eq!(net.engine.keepalives.len(), 0);
}

#[test]
fn pings_due_together_leave_at_most_64_per_timeout_call() {
    let mut net = net30();
    let now = net.now;
    let local = net.local;
    // 100 NAT'd bindings registered at the same instant (written as the registrar would).
    for i in 0..100u16 {
        let aor = format!("user{i}@192.168.4.4");
        let b = crate::registrar::Binding {
            contact: format!("sip:user{i}@10.0.0.5:5060"),
            contact_params: String::new(),
            instance: None,
            call_id: format!("c{i}"),
            cseq: 1,
            expires_at: now + Duration::from_secs(3600),
            source: Peer::new(Transport::Udp, addr(&format!("203.0.113.9:{}", 20_000 + i))),
            local,
            connection: None,
            nat: true,
            user_agent: None,
            advertised: SERVER.into(),
            path: Vec::new(),
        };
        let list = net.store.update(&aor, now, &mut |l| l.push(b.clone()));
        net.engine.keepalive_registered(&aor, &list, now);
    }
    let due = now + Duration::from_secs(30);
    assert_eq!(net.engine.poll_timeout(), Some(due));
    net.now = due;
    let wall = net.wall();
    net.engine.handle_timeout(due, wall);
    assert_eq!(net.drain().len(), 64);
    assert_eq!(
        net.engine.poll_timeout(),
        Some(due),
        "the rest are still due"
    );
    net.engine.handle_timeout(due, wall);
    assert_eq!(net.drain().len(), 36);
    assert!(net.engine.poll_timeout().is_some_and(|t| t > due));
}

/// A restart with a persistent store: the loaded NAT binding is pinged one interval after
/// the new engine starts, without waiting for the phone's next REGISTER.
#[test]
fn keepalives_resume_for_bindings_loaded_at_start() {
    let mut net = net30();
    nat_alice(&mut net);
    // A new engine over the same store, as after a restart.
    let store: Arc<dyn LocationStore> = net.store.clone();
    let mut cfg = config();
    cfg.registrar.nat_keepalive = Duration::from_secs(30);
    let engine = Engine::with_secret(
        cfg,
        users(),
        store,
        NonceSecret::from_bytes([7; 32]),
        StdRng::seed_from_u64(99),
    );
    net.sim.engine = engine;
    let started = net.now;
    assert_eq!(
        net.engine
            .poll_timeout()
            .filter(|t| *t < started + Duration::from_secs(3000)),
        None,
        "nothing scheduled before resuming"
    );
    net.sim.engine.resume_keepalives(started);
    let out = net.run_until(started + Duration::from_secs(30));
    let ping = the_ping(&out);
    assert_eq!(out[0].to, Peer::new(Transport::Udp, addr(NAT_SOURCE)));
    assert_eq!(ping.method, Method::Options);
}
