//! The trace store alone: correlation across legs, messages from before the call, eviction
//! order (answered before failed) and the byte bound.

use super::*;

fn t0() -> Instant {
    Instant::now()
}

/// A message to record: its Call-ID and octets, handed to the store borrowed (`rec`).
struct Msg {
    direction: Direction,
    call_id: String,
    bytes: Vec<u8>,
}

fn msg(call_id: &str, dir: Direction, first_line: &str, pad: usize) -> Msg {
    let text = format!(
        "{first_line}\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n{}",
        "x".repeat(pad)
    );
    Msg {
        direction: dir,
        call_id: call_id.into(),
        bytes: text.into_bytes(),
    }
}

fn rec(tr: &mut Tracer, now: Instant, m: Msg, starts: bool) {
    let t = Traced {
        wall: SystemTime::UNIX_EPOCH,
        direction: m.direction,
        transport: Transport::Udp,
        remote: "192.0.2.10:5060".parse().unwrap(),
        local: None,
        call_id: &m.call_id,
        bytes: &m.bytes,
    };
    tr.record(now, t, starts);
}

fn tracer(calls: usize, max_bytes: usize) -> Tracer {
    Tracer::new(TraceConfig { calls, max_bytes })
}

fn lines(t: &CallTrace) -> Vec<String> {
    t.records()
        .iter()
        .map(|r| {
            let first = String::from_utf8_lossy(t.bytes_of(r));
            format!("{:?} {}", r.direction, first.lines().next().unwrap())
        })
        .collect()
}

#[test]
fn messages_before_the_call_are_attached_and_both_legs_correlate() {
    let mut tr = tracer(10, 1 << 20);
    let now = t0();
    rec(
        &mut tr,
        now,
        msg("a1", Direction::In, "INVITE sip:bob@x SIP/2.0", 0),
        true,
    );
    rec(
        &mut tr,
        now,
        msg(
            "a1",
            Direction::Out,
            "SIP/2.0 407 Proxy Authentication Required",
            0,
        ),
        false,
    );
    rec(
        &mut tr,
        now,
        msg("a1", Direction::In, "ACK sip:bob@x SIP/2.0", 0),
        false,
    );
    // Unrelated traffic (a REGISTER's Call-ID) is not kept.
    rec(
        &mut tr,
        now,
        msg("reg", Direction::In, "REGISTER sip:x SIP/2.0", 0),
        false,
    );
    assert!(!tr.wants("reg"));
    rec(
        &mut tr,
        now,
        msg("a1", Direction::In, "INVITE sip:bob@x SIP/2.0", 0),
        true,
    );
    tr.attach(7, "a1", &["b1".into(), "b2".into()]);
    rec(
        &mut tr,
        now,
        msg("b1", Direction::Out, "INVITE sip:bob@y SIP/2.0", 0),
        false,
    );
    rec(
        &mut tr,
        now,
        msg("b2", Direction::In, "SIP/2.0 180 Ringing", 0),
        false,
    );
    rec(
        &mut tr,
        now,
        msg("a1", Direction::Out, "SIP/2.0 200 OK", 0),
        false,
    );
    let t = tr.get(7).unwrap();
    assert_eq!(
        lines(t),
        [
            "In INVITE sip:bob@x SIP/2.0",
            "Out SIP/2.0 407 Proxy Authentication Required",
            "In ACK sip:bob@x SIP/2.0",
            "In INVITE sip:bob@x SIP/2.0",
            "Out INVITE sip:bob@y SIP/2.0",
            "In SIP/2.0 180 Ringing",
            "Out SIP/2.0 200 OK",
        ]
    );
    assert_eq!(t.status, Some(200));
    assert_eq!(tr.find("b2").map(|t| t.id), Some(7));
    assert!(tr.find("reg").is_none());
}

#[test]
fn pending_call_ids_expire_after_their_age() {
    let mut tr = tracer(10, 1 << 20);
    let now = t0();
    rec(
        &mut tr,
        now,
        msg("old", Direction::In, "INVITE sip:b@x SIP/2.0", 0),
        true,
    );
    rec(
        &mut tr,
        now + PENDING_AGE,
        msg("new", Direction::In, "INVITE sip:b@x SIP/2.0", 0),
        true,
    );
    assert!(!tr.wants("old"), "expired");
    assert!(tr.wants("new"));
}

#[test]
fn answered_calls_are_evicted_before_failed_ones() {
    let mut tr = tracer(2, 1 << 20);
    let now = t0();
    tr.attach(1, "failed", &[]);
    rec(
        &mut tr,
        now,
        msg("failed", Direction::Out, "SIP/2.0 486 Busy Here", 0),
        false,
    );
    tr.attach(2, "answered", &[]);
    rec(
        &mut tr,
        now,
        msg("answered", Direction::Out, "SIP/2.0 200 OK", 0),
        false,
    );
    tr.attach(3, "third", &[]);
    let kept: Vec<CallId> = tr.ids().collect();
    assert_eq!(
        kept,
        [1, 3],
        "the older failed call outlives the answered one"
    );
    assert!(tr.find("answered").is_none());
    tr.attach(4, "fourth", &[]);
    assert_eq!(
        tr.ids().collect::<Vec<_>>(),
        [1, 4],
        "unfinished calls go before failed"
    );
}

#[test]
fn the_byte_bound_holds_and_evicts_the_oldest() {
    let mut tr = tracer(100, 4096);
    let now = t0();
    let size = msg("c10", Direction::In, "BYE sip:x SIP/2.0", 950)
        .bytes
        .len();
    assert_eq!(4096 / size, 4, "four messages fit");
    for id in 1..=10u64 {
        let cid = format!("c{id}");
        tr.attach(id, &cid, &[]);
        rec(
            &mut tr,
            now,
            msg(&cid, Direction::In, "BYE sip:x SIP/2.0", 950),
            false,
        );
        assert!(tr.bytes() <= 4096, "{} octets kept", tr.bytes());
    }
    let kept: Vec<CallId> = tr.ids().collect();
    assert_eq!(kept, [7, 8, 9, 10]);
    assert_eq!(
        tr.bytes(),
        tr.ids()
            .map(|id| tr.get(id).unwrap().octets())
            .sum::<usize>()
    );
    // One call alone cannot grow past the bound: its extra messages are counted, not kept.
    for _ in 0..10 {
        rec(
            &mut tr,
            now,
            msg("c10", Direction::In, "INFO sip:x SIP/2.0", 1000),
            false,
        );
    }
    assert!(tr.bytes() <= 4096);
    assert_eq!(tr.ids().collect::<Vec<_>>(), [10]);
    assert!(tr.get(10).unwrap().dropped > 0);
}

#[test]
fn off_records_nothing() {
    let mut tr = tracer(0, 1 << 20);
    rec(
        &mut tr,
        t0(),
        msg("a", Direction::In, "INVITE sip:b@x SIP/2.0", 0),
        true,
    );
    tr.attach(1, "a", &[]);
    assert!(!tr.wants("a"));
    assert!(tr.get(1).is_none());
}

#[test]
fn header_value_reads_long_and_compact_names() {
    let m = b"SIP/2.0 200 OK\r\ni: abc@h\r\nCSeq: 2 INVITE\r\n\r\nCall-ID: body";
    assert_eq!(header_value(m, &["call-id", "i"]), Some("abc@h"));
    assert_eq!(final_invite_status(m), Some(200));
    let m = b"SIP/2.0 180 Ringing\r\nCall-ID : x\r\nCSeq: 2 INVITE\r\n\r\n";
    assert_eq!(header_value(m, &["call-id", "i"]), Some("x"));
    assert_eq!(final_invite_status(m), None, "provisional");
    assert_eq!(
        final_invite_status(b"SIP/2.0 200 OK\r\nCSeq: 3 BYE\r\n\r\n"),
        None
    );
}

#[test]
fn messages_before_a_call_are_bounded_by_a_quarter_of_max_bytes() {
    let mut tr = tracer(10, 65_536);
    let now = t0();
    for i in 0..100 {
        let cid = format!("p{i}");
        rec(
            &mut tr,
            now,
            msg(&cid, Direction::In, "INVITE sip:b@x SIP/2.0", 1000),
            true,
        );
        rec(
            &mut tr,
            now,
            msg(
                &cid,
                Direction::Out,
                "SIP/2.0 407 Proxy Authentication Required",
                1000,
            ),
            false,
        );
        assert!(
            tr.pending_bytes <= 16_384,
            "{} octets pending",
            tr.pending_bytes
        );
    }
    assert!(tr.wants("p99") && !tr.wants("p0"), "the oldest go first");
    tr.attach(1, "p99", &[]);
    assert_eq!(tr.get(1).unwrap().records().len(), 2);
    let left: usize = tr.pending.values().map(|p| p.kept.buf.len()).sum();
    assert_eq!(tr.pending_bytes, left, "accounting follows what is kept");
}
