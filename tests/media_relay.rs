//! The media relay with real UDP sockets on 127.0.0.1 (issue 11): two "phones" exchange
//! RTP-shaped packets through it both ways, a third socket is never heard after latching,
//! release gives every port back, and a media timeout comes out as an event. Timing itself is
//! tested on the virtual clock in `src/media/stream_tests.rs`; here only threads and sockets.

use ferroswitch::media::{Direction, MediaConfig, MediaEvent, PortRange, Side, SideSignal};
use ferroswitch::transport::MediaRelay;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LOOPBACK: &str = "127.0.0.1";

/// A relay over its own port range (tests run in parallel), bound to loopback. The ranges sit
/// below Linux's ephemeral ports (32768–60999), which other tests' sockets may hold.
fn relay(first: u16, pairs: u16, media_timeout: Duration) -> MediaRelay {
    let config = MediaConfig {
        rtp_ports: PortRange::new(first, first + 2 * pairs - 1).unwrap(),
        rtp_ip: Some(LOOPBACK.parse().unwrap()),
        media_timeout,
        threads: 2,
        ..MediaConfig::default()
    };
    MediaRelay::start(config).unwrap()
}

fn phone() -> UdpSocket {
    phone_at(LOOPBACK)
}

/// A socket on another loopback address stands for another host.
fn phone_at(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// 12 octets of RTP header (version 2, PCMU) and 160 octets of payload, the first of which
/// names the sender.
fn rtp(who: u8, seq: u16) -> [u8; 172] {
    let mut p = [0u8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&u32::from(who).to_be_bytes());
    p[12] = who;
    p
}

fn signal(at: SocketAddr) -> SideSignal {
    SideSignal {
        rtp: Some(at),
        rtcp: Some(SocketAddr::new(at.ip(), at.port() + 1)),
        mux: false,
        direction: Direction::SendRecv,
    }
}

/// Everything `s` receives until it is quiet for the read timeout: (from, sender byte).
fn drain(s: &UdpSocket) -> Vec<(SocketAddr, u8)> {
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while let Ok((n, from)) = s.recv_from(&mut buf) {
        if n >= 13 {
            got.push((from, buf[12]));
        }
    }
    got
}

#[test]
fn two_phones_hear_each_other_through_the_relay_both_ways() {
    let r = relay(23000, 8, Duration::from_secs(60));
    let (a, b) = (phone(), phone());
    let alloc = r.allocate(&[true], LOOPBACK.parse().unwrap()).unwrap();
    let ours_a = alloc.ports(0, Side::A).unwrap();
    let ours_b = alloc.ports(0, Side::B).unwrap();
    assert_eq!(ours_a.addr, LOOPBACK.parse::<IpAddr>().unwrap());
    assert!(ours_a.rtp.is_multiple_of(2) && ours_a.rtcp == ours_a.rtp + 1);
    let now = Instant::now();
    // A is "behind NAT": its SDP names an address it does not send from.
    r.update_side(
        now,
        alloc.id,
        0,
        Side::A,
        signal("10.0.0.1:4000".parse().unwrap()),
    )
    .unwrap();
    r.update_side(now, alloc.id, 0, Side::B, signal(b.local_addr().unwrap()))
        .unwrap();
    for seq in 0..50 {
        a.send_to(&rtp(b'a', seq), (LOOPBACK, ours_a.rtp)).unwrap();
    }
    let at_b = drain(&b);
    assert_eq!(at_b.len(), 50, "B heard A");
    let from_b_port = SocketAddr::new(LOOPBACK.parse().unwrap(), ours_b.rtp);
    assert!(at_b
        .iter()
        .all(|&(from, who)| from == from_b_port && who == b'a'));
    // B answers; the relay sends it where A really is (latched), not to A's SDP address.
    for seq in 0..50 {
        b.send_to(&rtp(b'b', seq), (LOOPBACK, ours_b.rtp)).unwrap();
    }
    let at_a = drain(&a);
    assert_eq!(at_a.len(), 50, "A heard B");
    let from_a_port = SocketAddr::new(LOOPBACK.parse().unwrap(), ours_a.rtp);
    assert!(at_a
        .iter()
        .all(|&(from, who)| from == from_a_port && who == b'b'));
    let st = r.stats(alloc.id).unwrap();
    let (la, lb) = (st.leg(Side::A), st.leg(Side::B));
    assert_eq!(
        (la.rx_packets, la.rx_bytes, la.tx_packets),
        (50, 50 * 172, 50)
    );
    assert_eq!(
        (lb.rx_packets, lb.tx_packets, la.lost, lb.lost),
        (50, 50, 0, 0)
    );
    assert_eq!(la.latched, Some(a.local_addr().unwrap()));
    r.release(alloc.id).unwrap();
}

#[test]
fn rtp_bleed_a_third_socket_after_latching_reaches_neither_phone_and_is_counted() {
    let r = relay(23100, 8, Duration::from_secs(60));
    let (a, b, attacker) = (phone(), phone(), phone_at("127.0.0.66"));
    let alloc = r.allocate(&[true], LOOPBACK.parse().unwrap()).unwrap();
    let (pa, pb) = (
        alloc.ports(0, Side::A).unwrap(),
        alloc.ports(0, Side::B).unwrap(),
    );
    let now = Instant::now();
    r.update_side(now, alloc.id, 0, Side::A, signal(a.local_addr().unwrap()))
        .unwrap();
    r.update_side(now, alloc.id, 0, Side::B, signal(b.local_addr().unwrap()))
        .unwrap();
    // Both phones speak first and latch their sides.
    for seq in 0..20 {
        a.send_to(&rtp(b'a', seq), (LOOPBACK, pa.rtp)).unwrap();
        b.send_to(&rtp(b'b', seq), (LOOPBACK, pb.rtp)).unwrap();
    }
    assert_eq!(drain(&a).len(), 20);
    assert_eq!(drain(&b).len(), 20);
    // The sprayer hits every port of the session.
    for seq in 0..25 {
        for port in [pa.rtp, pa.rtcp, pb.rtp, pb.rtcp] {
            attacker.send_to(&rtp(b'x', seq), (LOOPBACK, port)).unwrap();
        }
    }
    // Then the phones go on; only their packets arrive.
    a.send_to(&rtp(b'a', 20), (LOOPBACK, pa.rtp)).unwrap();
    b.send_to(&rtp(b'b', 20), (LOOPBACK, pb.rtp)).unwrap();
    let (at_a, at_b) = (drain(&a), drain(&b));
    assert_eq!(at_a.iter().map(|g| g.1).collect::<Vec<_>>(), [b'b']);
    assert_eq!(at_b.iter().map(|g| g.1).collect::<Vec<_>>(), [b'a']);
    assert!(
        drain(&attacker).is_empty(),
        "nothing goes back to the sprayer either"
    );
    let st = r.stats(alloc.id).unwrap();
    assert_eq!(st.leg(Side::A).dropped + st.leg(Side::B).dropped, 100);
    assert_eq!(
        (st.leg(Side::A).rx_packets, st.leg(Side::B).rx_packets),
        (21, 21)
    );
    r.release(alloc.id).unwrap();
}

#[test]
fn release_frees_every_port_pair_and_closes_the_sockets() {
    let r = relay(23200, 6, Duration::from_secs(60));
    assert_eq!((r.pool_free(), r.pool_capacity()), (6, 6));
    let ip: IpAddr = LOOPBACK.parse().unwrap();
    let one = r.allocate(&[true, true], ip).unwrap(); // audio + video: 4 pairs
    let two = r.allocate(&[true, false], ip).unwrap();
    assert_eq!((r.pool_free(), r.sessions()), (0, 2));
    assert_eq!(
        r.allocate(&[true], ip),
        Err(ferroswitch::media::MediaError::Exhausted),
        "no pair left: the caller answers 503"
    );
    let port = one.ports(1, Side::B).unwrap().rtp;
    r.release(one.id).unwrap();
    r.release(two.id).unwrap();
    assert_eq!((r.pool_free(), r.sessions()), (6, 0));
    assert!(r.release(two.id).is_err(), "no double release");
    // The sockets are closed: the port can be bound again (SO_REUSEADDR is not set).
    UdpSocket::bind((LOOPBACK, port)).expect("released port is free");
    // And the pool hands out pairs again.
    let again = r.allocate(&[true, true, true], ip).unwrap();
    assert_eq!(again.streams.iter().flatten().count(), 3);
}

#[test]
fn media_timeout_event_arrives_from_the_worker_threads() {
    let timeout = Duration::from_millis(700);
    let r = relay(23300, 4, timeout);
    let (tx, rx) = mpsc::channel();
    r.on_event(move || {
        let _ = tx.send(());
    });
    let (a, b) = (phone(), phone());
    let alloc = r.allocate(&[true], LOOPBACK.parse().unwrap()).unwrap();
    let start = Instant::now();
    r.update_side(start, alloc.id, 0, Side::A, signal(a.local_addr().unwrap()))
        .unwrap();
    r.update_side(start, alloc.id, 0, Side::B, signal(b.local_addr().unwrap()))
        .unwrap();
    // A keeps talking for a second; B never says a word.
    let pa = alloc.ports(0, Side::A).unwrap().rtp;
    let mut seq = 0;
    let mut events = Vec::new();
    while start.elapsed() < Duration::from_secs(3) && events.is_empty() {
        a.send_to(&rtp(b'a', seq), (LOOPBACK, pa)).unwrap();
        seq += 1;
        let _ = rx.recv_timeout(Duration::from_millis(20));
        while let Some(e) = r.poll_event() {
            events.push((start.elapsed(), e));
        }
    }
    assert_eq!(events.len(), 1, "{events:?}");
    let (at, e) = events[0];
    assert_eq!(
        e,
        MediaEvent::Timeout {
            session: alloc.id,
            stream: 0,
            side: Side::B
        }
    );
    assert!(at >= timeout && at < Duration::from_secs(3), "{at:?}");
    r.release(alloc.id).unwrap();
    assert_eq!(r.poll_event(), None);
}
