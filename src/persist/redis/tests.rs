//! The parts of the Redis store that need no server: the value format and the diffs. The
//! store against a real `redis-server` is tested in `tests/redis_store.rs`.

use super::*;
use crate::net::{Peer, Transport};

fn binding(contact: &str, instance: Option<&str>, at: Instant) -> Binding {
    Binding {
        contact: contact.into(),
        contact_params: ";+sip.instance=\"<urn:uuid:1>\";reg-id=1".into(),
        instance: instance.map(str::to_string),
        call_id: "c1@h".into(),
        cseq: 7,
        expires_at: at,
        source: Peer::new(Transport::Tcp, "192.0.2.1:40000".parse().unwrap()),
        local: "127.0.0.1:5060".parse().unwrap(),
        connection: Some(9),
        nat: true,
        user_agent: Some("Zoiper \"5\" 😀".into()),
        advertised: "sip.example.org:5060".into(),
        path: Vec::new(),
    }
}

#[test]
fn a_binding_round_trips_without_its_connection_and_with_its_wall_clock_expiry() {
    let now = Instant::now();
    let wall_ms = 1_700_000_000_000;
    let b = binding(
        "sip:a@192.0.2.1:40000;transport=tcp",
        Some("\"<urn:uuid:1>\""),
        now + Duration::from_secs(60),
    );
    let value = encode(&b, now, wall_ms);
    assert!(value.starts_with("1700000060000 {"), "{value}");
    // Read by another process whose clocks are elsewhere: same wall clock, other Instant.
    let later = now + Duration::from_secs(10);
    let back = decode(&value, later, wall_ms + 10_000).unwrap().unwrap();
    assert_eq!(back.expires_at, later + Duration::from_secs(50));
    assert_eq!(back.connection, None);
    assert_eq!(
        Binding {
            connection: Some(9),
            expires_at: b.expires_at,
            ..back
        },
        b
    );
    // A binding made through an edge proxy keeps its Path (RFC 3327) on every node.
    let via_proxy = Binding {
        path: vec![
            "<sip:10.0.0.1;lr;received=sip:198.51.100.4:40000>".into(),
            "<sip:core.example;lr>".into(),
        ],
        ..b.clone()
    };
    let back = decode(&encode(&via_proxy, now, wall_ms), now, wall_ms)
        .unwrap()
        .unwrap();
    assert_eq!(back.path, via_proxy.path);
    // Expired at the reader's wall clock: dropped; garbage: an error, not a panic.
    assert_eq!(decode(&value, later, 1_700_000_060_000).unwrap(), None);
    for bad in [
        "",
        "12",
        "x {}",
        "99999999999999 {}",
        "99999999999999 not json",
    ] {
        assert!(decode(bad, now, wall_ms).is_err(), "{bad:?}");
    }
}

#[test]
fn a_diff_names_only_the_fields_that_changed() {
    let t = Instant::now() + Duration::from_secs(60);
    let a = binding("sip:a@1", None, t);
    let b = binding("SIP:b@2", None, t);
    let mut b2 = b.clone();
    b2.cseq = 8;
    let mut d = Diff::default();
    d.record(&[a.clone(), b.clone()], &[a.clone(), b2.clone()]);
    assert_eq!(d.set.keys().collect::<Vec<_>>(), ["sip:b@2"]);
    assert!(d.del.is_empty());
    // Removed later in the same batch: a delete, no longer a set.
    d.record(&[a.clone(), b2.clone()], std::slice::from_ref(&a));
    assert!(d.set.is_empty());
    assert_eq!(d.del.iter().collect::<Vec<_>>(), ["sip:b@2"]);
    // A device keyed by its instance: a new Contact is a set of the same field.
    let mut i1 = binding("sip:a@10.0.0.1", Some("<urn:uuid:1>"), t);
    let mut d = Diff::default();
    let before = [i1.clone()];
    i1.contact = "sip:a@10.0.0.2".into();
    d.record(&before, &[i1.clone()]);
    assert_eq!(d.set.keys().collect::<Vec<_>>(), ["<urn:uuid:1>"]);
    assert!(d.del.is_empty());
}

#[test]
fn a_kept_diff_goes_under_newer_changes_and_over_what_redis_holds() {
    let t = Instant::now() + Duration::from_secs(60);
    let (a, b, c) = (
        binding("sip:a@1", None, t),
        binding("sip:b@1", None, t),
        binding("sip:c@1", None, t),
    );
    let mut older = Diff::default();
    older.record(std::slice::from_ref(&b), std::slice::from_ref(&a)); // set a, delete b
    let mut newer = Diff::default();
    newer.record(std::slice::from_ref(&a), std::slice::from_ref(&c)); // delete a, set c
    newer.merge_older(older);
    let mut set: Vec<_> = newer.set.keys().cloned().collect();
    set.sort();
    let mut del: Vec<_> = newer.del.iter().cloned().collect();
    del.sort();
    assert_eq!(
        (set, del),
        (
            vec!["sip:c@1".to_string()],
            vec!["sip:a@1".to_string(), "sip:b@1".to_string()]
        )
    );
    // Redis holds a and b (and another node's d): the overlay leaves c and d.
    let d = binding("sip:d@1", None, t);
    let mut list = vec![a, b, d];
    newer.overlay(&mut list);
    let mut contacts: Vec<_> = list.iter().map(|b| b.contact.as_str()).collect();
    contacts.sort();
    assert_eq!(contacts, ["sip:c@1", "sip:d@1"]);
}

#[test]
fn the_version_field_is_not_a_binding() {
    let (v, fields) = split_version(vec![
        ("sip:a@1".into(), "1 {}".into()),
        ("#v".into(), "42".into()),
    ]);
    assert_eq!((v, fields.len()), (42, 1));
}
