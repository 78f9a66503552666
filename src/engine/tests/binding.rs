//! RFC 3261 §10.3 bindings through the whole engine: expiry on the timer, removal of one or
//! all contacts, several contacts, 423, Call-ID/CSeq ordering, NAT and TCP connections.

use super::*;

const AOR: &str = "alice@192.168.4.4";

fn alice() -> (Phone, SocketAddr) {
    (Phone::new("alice", "1234", ZOIPER), addr(ZOIPER))
}

#[test]
fn rfc3261_10_3_binding_expires_exactly_on_its_timer() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    assert_eq!(net.register(&mut phone, src, &[]).status, 200);
    let expiry = net.now + Duration::from_secs(3600);

    // Once the REGISTER transactions are gone (Timer J, 64·T1), the next deadline is the
    // binding's expiry itself.
    net.advance(Duration::from_secs(33));
    assert_eq!(net.engine.transactions().len(), 0);
    assert_eq!(net.engine.poll_timeout(), Some(expiry));

    net.run_until(expiry - Duration::from_nanos(1));
    assert_eq!(net.store.counts(), (1, 1));
    assert_eq!(net.engine.stats().expired_bindings, 0);

    net.run_until(expiry);
    assert_eq!(
        net.store.counts(),
        (0, 0),
        "removed by the timer, not by a lookup"
    );
    assert_eq!(net.engine.stats().expired_bindings, 1);
    assert_eq!(net.engine.poll_timeout(), None);
}

#[test]
fn rfc3261_10_3_each_contact_expires_on_its_own() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    let r = net.register(
        &mut phone,
        src,
        &[
            "Contact: <sip:alice@192.168.4.4:5090>;expires=120",
            "Contact: <sip:alice@192.168.4.4:5092>",
            "Expires: 600",
        ],
    );
    assert_eq!(
        headers(&r, "Contact"),
        [
            "<sip:alice@192.168.4.4:5090>;expires=120",
            "<sip:alice@192.168.4.4:5092>;expires=600"
        ]
    );
    net.advance(Duration::from_secs(120));
    assert_eq!(net.aor_contacts(AOR), ["sip:alice@192.168.4.4:5092"]);
    assert_eq!(net.store.counts(), (1, 1));

    // A query (no Contact) lists what is left with its remaining time.
    let q = net.ask(src, &phone.register(&["Expires: 3600"]));
    assert_eq!(
        headers(&q, "Contact"),
        ["<sip:alice@192.168.4.4:5092>;expires=480"]
    );

    net.advance(Duration::from_secs(480));
    assert_eq!(net.store.counts(), (0, 0));
    assert_eq!(net.engine.stats().expired_bindings, 2);
}

#[test]
fn rfc3261_10_3_refresh_keeps_the_binding_and_moves_its_expiry() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    assert_eq!(net.register(&mut phone, src, &[]).status, 200);
    net.advance(Duration::from_secs(1800));
    // (The nonce has gone stale by now: `register` answers the stale=true challenge.)
    let r = net.register(&mut phone, src, &[]);
    assert_eq!(headers(&r, "Contact").len(), 1);
    assert!(headers(&r, "Contact")[0].ends_with(";expires=3600"));
    // The first registration's expiry passes; the refreshed binding stays.
    net.advance(Duration::from_secs(1801));
    assert_eq!(net.store.counts(), (1, 1));
    assert_eq!(net.engine.stats().expired_bindings, 0);
    net.advance(Duration::from_secs(1800));
    assert_eq!(net.store.counts(), (0, 0));
}

#[test]
fn rfc3261_10_3_several_contacts_and_expires_0_removes_one() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    let r = net.register(
        &mut phone,
        src,
        &[
            "Contact: <sip:alice@10.0.0.1:5060>;expires=600, <sip:alice@10.0.0.2:5060>",
            "Contact: \"Desk\" <sip:alice@10.0.0.3:5060>;q=0.5",
            "Expires: 1800",
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        headers(&r, "Contact"),
        [
            "<sip:alice@10.0.0.1:5060>;expires=600",
            "<sip:alice@10.0.0.2:5060>;expires=1800",
            "<sip:alice@10.0.0.3:5060>;q=0.5;expires=1800"
        ]
    );
    assert_eq!(net.store.counts(), (1, 3));

    net.advance(Duration::from_secs(100));
    let r = net.ask(
        src,
        &phone.register(&["Contact: <sip:alice@10.0.0.2:5060>;expires=0"]),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        headers(&r, "Contact"),
        [
            "<sip:alice@10.0.0.1:5060>;expires=500",
            "<sip:alice@10.0.0.3:5060>;q=0.5;expires=1700"
        ]
    );
    // Expires: 0 as a header does the same for a contact without its own expiry.
    let r = net.ask(
        src,
        &phone.register(&["Contact: <sip:alice@10.0.0.1:5060>", "Expires: 0"]),
    );
    assert_eq!(
        headers(&r, "Contact"),
        ["<sip:alice@10.0.0.3:5060>;q=0.5;expires=1700"]
    );
    assert_eq!(net.aor_contacts(AOR), ["sip:alice@10.0.0.3:5060"]);
}

#[test]
fn rfc3261_10_3_interval_too_brief_is_423_with_min_expires() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    let r = net.register(
        &mut phone,
        src,
        &["Contact: <sip:alice@192.168.4.4:5090>;expires=30"],
    );
    assert_eq!((r.status, reason(&r).as_str()), (423, "Interval Too Brief"));
    assert_eq!(header(&r, "Min-Expires"), Some("60"));
    let r = net.ask(
        src,
        &phone.register(&["Contact: <sip:alice@192.168.4.4:5090>", "Expires: 59"]),
    );
    assert_eq!(r.status, 423);
    assert_eq!(header(&r, "Min-Expires"), Some("60"));
    assert_eq!(net.store.counts(), (0, 0));

    // The minimum itself is fine, and a long request is cut to max_expires.
    let r = net.ask(
        src,
        &phone.register(&["Contact: <sip:alice@192.168.4.4:5090>;expires=60"]),
    );
    assert_eq!(
        headers(&r, "Contact"),
        ["<sip:alice@192.168.4.4:5090>;expires=60"]
    );
    let r = net.ask(
        src,
        &phone.register(&["Contact: <sip:alice@192.168.4.4:5090>;expires=86400"]),
    );
    assert_eq!(
        headers(&r, "Contact"),
        ["<sip:alice@192.168.4.4:5090>;expires=3600"]
    );
}

#[test]
fn rfc3261_10_3_star_with_expires_0_removes_every_binding() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    let r = net.register(
        &mut phone,
        src,
        &[
            "Contact: <sip:alice@10.0.0.1:5060>, <sip:alice@10.0.0.2:5060>",
            "Expires: 600",
        ],
    );
    assert_eq!(headers(&r, "Contact").len(), 2);

    // "*" without Expires: 0 is a bad request and changes nothing.
    let r = net.ask(src, &phone.register(&["Contact: *", "Expires: 600"]));
    assert_eq!(r.status, 400);
    assert_eq!(net.store.counts(), (1, 2));

    let r = net.ask(src, &phone.register(&["Contact: *", "Expires: 0"]));
    assert_eq!((r.status, reason(&r).as_str()), (200, "OK"));
    assert!(headers(&r, "Contact").is_empty());
    assert_eq!(net.store.counts(), (0, 0));
    assert_eq!(net.engine.stats().unregistrations, 1);
}

#[test]
fn rfc3261_10_3_old_cseq_from_the_same_call_id_is_refused() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    phone.cseq = 40;
    assert_eq!(net.register(&mut phone, src, &[]).status, 200);
    assert_eq!(phone.cseq, 42);

    for old in [42, 41, 1] {
        let r = net.ask(
            src,
            &phone.request(
                "REGISTER",
                old,
                &[&format!("Contact: {}", phone.contact), "Expires: 0"],
            ),
        );
        assert_eq!(r.status, 500, "CSeq {old} after 42");
        assert_eq!(net.store.counts(), (1, 1), "binding kept after CSeq {old}");
    }
    let r = net.ask(
        src,
        &phone.request("REGISTER", 7, &["Contact: *", "Expires: 0"]),
    );
    assert_eq!(r.status, 500);
    assert_eq!(net.store.counts(), (1, 1));

    // Another Call-ID (a rebooted phone) may use any CSeq.
    phone.call_id = "after-reboot".into();
    let r = net.ask(
        src,
        &phone.request(
            "REGISTER",
            1,
            &[&format!("Contact: {}", phone.contact), "Expires: 0"],
        ),
    );
    assert_eq!(r.status, 200);
    assert_eq!(net.store.counts(), (0, 0));
}

#[test]
fn nat_binding_records_the_packet_source() {
    let mut net = Net::new();
    let src = addr("203.0.113.9:40000");
    let mut phone = Phone::new("alice", "1234", "10.0.0.5:5060");
    // `ask` checks the response goes to the packet source (rport), not to 10.0.0.5.
    let r = net.register(&mut phone, src, &[]);
    assert_eq!(r.status, 200);
    let via = header(&r, "Via").unwrap();
    assert!(
        via.contains("received=203.0.113.9") && via.contains("rport=40000"),
        "{via}"
    );
    let b = &net.store.lookup(AOR, net.now)[0];
    assert!(b.nat);
    assert_eq!(b.source, Peer::new(Transport::Udp, src));
    assert_eq!(
        b.contact, "sip:alice@10.0.0.5:5060;transport=UDP",
        "kept as registered"
    );
}

#[test]
fn nat_detected_from_a_private_contact_behind_a_public_via() {
    // A phone that learnt its public address (STUN) puts it in Via but not in Contact.
    let mut net = Net::new();
    let src = addr("203.0.113.9:40000");
    let mut phone = Phone::new("alice", "1234", "203.0.113.9:40000");
    let r = net.register(&mut phone, src, &["Contact: <sip:alice@10.0.0.5:5060>"]);
    assert_eq!(r.status, 200);
    let b = &net.store.lookup(AOR, net.now)[0];
    assert!(b.nat);
    assert_eq!(b.source, Peer::new(Transport::Udp, src));
}

#[test]
fn third_party_registration_without_nat_keeps_the_contact() {
    let mut net = Net::new();
    let src = addr("198.51.100.7:5060");
    let mut phone = Phone::new("alice", "1234", "198.51.100.7:5060");
    let r = net.register(&mut phone, src, &["Contact: <sip:alice@203.0.113.50:5070>"]);
    assert_eq!(r.status, 200);
    let b = &net.store.lookup(AOR, net.now)[0];
    assert!(!b.nat);
    assert_eq!(b.contact, "sip:alice@203.0.113.50:5070");
}

#[test]
fn register_over_tcp_records_the_connection() {
    let mut net = Net::new();
    let src = addr("192.168.4.30:51000");
    let mut phone = Phone::new("alice", "1234", "192.168.4.30:51000");
    phone.transport = "TCP";
    let send = |net: &mut Net, msg: &str| {
        let out = net.deliver(Transport::Tcp, src, Some(42), msg.as_bytes());
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].to, Peer::new(Transport::Tcp, src));
        response(&out[0])
    };
    let first = send(&mut net, &phone.register(&[]));
    phone.learn(&first);
    let r = send(&mut net, &phone.register(&[]));
    assert_eq!(r.status, 200);
    let b = &net.store.lookup(AOR, net.now)[0];
    assert_eq!(b.connection, Some(42));
    assert_eq!(b.source, Peer::new(Transport::Tcp, src));
    assert!(!b.nat);
}

#[test]
fn rfc3261_20_10_contact_without_angle_brackets_takes_its_params_as_header_params() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    let r = net.register(
        &mut phone,
        src,
        &["Contact: sip:alice@10.0.0.9:5060;expires=120;q=0.7"],
    );
    assert_eq!(
        headers(&r, "Contact"),
        ["<sip:alice@10.0.0.9:5060>;q=0.7;expires=120"]
    );
    assert_eq!(net.aor_contacts(AOR), ["sip:alice@10.0.0.9:5060"]);
}

#[test]
fn rfc5626_instance_id_is_echoed_and_identifies_the_device() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    let first = "Contact: <sip:alice@10.0.0.1:5060>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1";
    let r = net.register(&mut phone, src, &[first]);
    assert_eq!(
        headers(&r, "Contact"),
        ["<sip:alice@10.0.0.1:5060>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1;expires=3600"]
    );
    // The same device from a new address replaces its binding instead of adding one.
    let moved = first.replace("10.0.0.1", "10.0.0.2");
    let r = net.ask(src, &phone.register(&[&moved]));
    assert_eq!(headers(&r, "Contact").len(), 1);
    assert_eq!(net.aor_contacts(AOR), ["sip:alice@10.0.0.2:5060"]);
}

#[test]
fn issue_17_3_a_thousand_refreshes_leave_one_expiry_entry() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    assert_eq!(net.register(&mut phone, src, &[]).status, 200);
    for _ in 0..1_000 {
        net.advance(Duration::from_secs(1));
        // `register` answers the stale re-challenge every nonce lifetime.
        assert_eq!(net.register(&mut phone, src, &[]).status, 200);
    }
    assert_eq!(net.store.counts(), (1, 1));
    assert_eq!(net.store.expiry_queue_len(), 1);
}

#[test]
fn issue_17_5_contact_naming_our_own_socket_is_refused() {
    let mut net = Net::new();
    let (mut phone, src) = alice();
    for contact in [
        "Contact: <sip:0044123456@192.168.4.4:5060>",
        "Contact: <sip:0044123456@192.168.4.4>",
        "Contact: <sip:0044123456@[::ffff:192.168.4.4]:5060;transport=udp>",
    ] {
        let r = net.register(&mut phone, src, &[contact, "Expires: 3600"]);
        assert_eq!(
            (r.status, reason(&r).as_str()),
            (403, "Forbidden - Contact Not Allowed"),
            "{contact}"
        );
    }
    assert_eq!(net.store.counts(), (0, 0));
    // Another port on the same host is a phone next to the switch, not the switch.
    let r = net.register(
        &mut phone,
        src,
        &["Contact: <sip:alice@192.168.4.4:5090>", "Expires: 3600"],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn issue_17_5_contact_allow_and_deny_networks() {
    let mut net = Net::with(|c| {
        c.registrar.contact_deny = vec!["10.9.0.0/16".parse().unwrap()];
        c.registrar.contact_allow = vec![
            "192.168.0.0/16".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
    });
    let (mut phone, src) = alice();
    let mut status = |contact: &str| {
        let c = format!("Contact: <{contact}>");
        net.register(&mut phone, src, &[c.as_str(), "Expires: 3600"])
            .status
    };
    // The gateway (denied), outside the allowed networks, a name that would need DNS.
    assert_eq!(status("sip:0044123456@10.9.0.1"), 403);
    assert_eq!(status("sip:0044123456@198.51.100.1"), 403);
    assert_eq!(status("sip:0044123456@gateway.example"), 403);
    // Allowed networks.
    assert_eq!(status("sip:alice@10.1.0.1:5090"), 200);
    assert_eq!(status("sip:alice@192.168.4.4:5090"), 200);
    // Removing a binding is always allowed.
    let r = net.register(
        &mut phone,
        src,
        &["Contact: <sip:alice@10.1.0.1:5090>;expires=0"],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn issue_17_5_behind_nat_the_source_is_checked_not_the_contact() {
    // Requests to a NATed binding go to where its REGISTER came from, so that address is
    // what must be allowed; a host name in its Contact is harmless then.
    let mut net = Net::with(|c| {
        c.registrar.contact_deny = vec!["10.9.0.0/16".parse().unwrap()];
    });
    let public = addr("203.0.113.7:40000");
    let mut phone = Phone::new("alice", "1234", "10.0.0.5:5060");
    for contact in ["sip:alice@phone.lan", "sip:alice@10.9.0.1"] {
        let c = format!("Contact: <{contact}>");
        let r = net.register(&mut phone, public, &[c.as_str(), "Expires: 3600"]);
        assert_eq!(r.status, 200, "{contact}: {}", reason(&r));
    }
    // Without restrictions, a name is accepted as it always was.
    let mut open = Net::new();
    let (mut phone, src) = alice();
    let r = open.register(
        &mut phone,
        src,
        &["Contact: <sip:alice@phone.example>", "Expires: 3600"],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn register_while_the_store_is_unwritable_gets_500_with_retry_after_and_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::with_secret(
        config(),
        users(),
        Arc::new(crate::registrar::store::Unwritable(store.clone())),
        NonceSecret::from_bytes([7; 32]),
        StdRng::seed_from_u64(3261),
    );
    let sim =
        crate::engine::sim::Sim::new(engine, addr(SERVER), Instant::now(), from_unix(SEED_WALL));
    let mut net = Net { sim, store };
    let (mut phone, src) = alice();
    let r = net.register(&mut phone, src, &[]);
    assert_eq!(r.status, 500, "{}", reason(&r));
    assert_eq!(header(&r, "Retry-After"), Some("5"));
    assert_eq!(net.store.counts(), (0, 0));
}
