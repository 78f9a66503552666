//! The relay rules on a virtual clock: latching, RTP-bleed refusal, routing of RTP and RTCP,
//! and the media timeout held and not held.

use super::*;
use crate::clock::virtual_epoch;

const MEDIA: Duration = Duration::from_secs(60);
const HOLD: Duration = Duration::from_secs(1800);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtp(seq: u16) -> [u8; 172] {
    let mut p = [0u8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p
}

fn rtcp_sr() -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0] = 0x80;
    p[1] = 200;
    p
}

fn signal(rtp: &str, direction: Direction) -> SideSignal {
    let rtp = addr(rtp);
    SideSignal {
        rtp: Some(rtp),
        rtcp: Some(SocketAddr::new(rtp.ip(), rtp.port() + 1)),
        mux: false,
        direction,
    }
}

/// A behind NAT (private SDP address), B on a public address; both signalled.
fn call(now: Instant) -> StreamRelay {
    let mut s = StreamRelay::new(MEDIA, HOLD);
    s.update_side(
        now,
        Side::A,
        signal("192.168.1.10:4000", Direction::SendRecv),
    );
    s.update_side(
        now,
        Side::B,
        signal("198.51.100.20:5000", Direction::SendRecv),
    );
    s
}

const NAT_A: &str = "203.0.113.50:31000";
const ATTACKER: &str = "192.0.2.66:40000";

#[test]
fn comedia_latches_the_natted_source_and_sends_back_to_it() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    // Before A has sent anything, B's packets go to A's SDP address.
    assert_eq!(
        s.handle_packet(
            t0,
            Side::B,
            Channel::Rtp,
            addr("198.51.100.20:5000"),
            &rtp(1)
        ),
        Verdict::Forward {
            to: addr("192.168.1.10:4000"),
            via: Channel::Rtp
        }
    );
    assert_eq!(
        s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(1)),
        Verdict::Forward {
            to: addr("198.51.100.20:5000"),
            via: Channel::Rtp
        }
    );
    // From now on B's packets go where A really is.
    assert_eq!(
        s.handle_packet(
            t0,
            Side::B,
            Channel::Rtp,
            addr("198.51.100.20:5000"),
            &rtp(2)
        ),
        Verdict::Forward {
            to: addr(NAT_A),
            via: Channel::Rtp
        }
    );
    let st = s.stats();
    assert_eq!(
        (st.a.rx_packets, st.a.rx_bytes, st.a.tx_packets),
        (1, 172, 2)
    );
    assert_eq!(st.a.latched, Some(addr(NAT_A)));
    assert_eq!(
        (st.b.rx_packets, st.b.tx_packets, st.b.tx_bytes),
        (2, 1, 172)
    );
}

#[test]
fn rtp_bleed_a_second_source_is_dropped_and_counted_never_forwarded() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(1));
    // Inside the window and after it, the sprayer gets nowhere.
    for (i, t) in [Duration::ZERO, Duration::from_secs(5)]
        .into_iter()
        .enumerate()
    {
        let v = s.handle_packet(t0 + t, Side::A, Channel::Rtp, addr(ATTACKER), &rtp(9));
        assert_eq!(v, Verdict::Drop(DropReason::Unlatched), "{i}");
    }
    let v = s.handle_packet(t0, Side::B, Channel::Rtp, addr(ATTACKER), &rtp(9));
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    let st = s.stats();
    assert_eq!((st.a.dropped, st.a.rx_packets, st.b.tx_packets), (2, 1, 1));
    // B's SDP names a public address: another IP cannot latch even before B speaks.
    assert_eq!((st.b.dropped, st.b.rx_packets, st.a.tx_packets), (1, 0, 0));
}

#[test]
fn rtp_bleed_the_latch_is_final_after_16_packets_or_2_seconds() {
    let t0 = virtual_epoch();
    // B's SDP names a private address too, so nothing outranks the first source.
    let mut s = StreamRelay::new(MEDIA, HOLD);
    s.update_side(t0, Side::A, signal("10.0.0.1:4000", Direction::SendRecv));
    for i in 0..LATCH_PACKETS {
        let v = s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(i as u16));
        assert_eq!(v, Verdict::Drop(DropReason::NoDestination));
    }
    let v = s.handle_packet(t0, Side::A, Channel::Rtp, addr("10.0.0.1:4000"), &rtp(99));
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    assert_eq!(s.stats().a.unrouted, 16);
    // Two seconds close the window even at a trickle.
    let mut s = StreamRelay::new(MEDIA, HOLD);
    s.update_side(t0, Side::A, signal("10.0.0.1:4000", Direction::SendRecv));
    s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(1));
    let t = t0 + LATCH_WINDOW;
    let v = s.handle_packet(t, Side::A, Channel::Rtp, addr(ATTACKER), &rtp(2));
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
}

#[test]
fn rtp_bleed_the_signalled_public_address_wins_within_the_window() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    // B's NAT moved its port: the signalled IP on another port latches first, even for 20
    // packets…
    for i in 0..20 {
        let v = s.handle_packet(
            t0,
            Side::B,
            Channel::Rtp,
            addr("198.51.100.20:5999"),
            &rtp(i),
        );
        assert!(matches!(v, Verdict::Forward { .. }));
    }
    // …but the exact signalled address takes the stream inside the window…
    let t = t0 + Duration::from_millis(500);
    let v = s.handle_packet(
        t,
        Side::B,
        Channel::Rtp,
        addr("198.51.100.20:5000"),
        &rtp(20),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    let v = s.handle_packet(
        t,
        Side::B,
        Channel::Rtp,
        addr("198.51.100.20:5999"),
        &rtp(21),
    );
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    assert_eq!(s.stats().b.latched, Some(addr("198.51.100.20:5000")));
    // …and once latched there, nobody takes it, not even later.
    let v = s.handle_packet(t0 + HOLD, Side::B, Channel::Rtp, addr(ATTACKER), &rtp(22));
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    // After the window, the signalled address no longer relatches a settled latch.
    let mut s = call(t0);
    s.handle_packet(
        t0,
        Side::B,
        Channel::Rtp,
        addr("198.51.100.20:5999"),
        &rtp(1),
    );
    let late = t0 + LATCH_WINDOW;
    let v = s.handle_packet(
        late,
        Side::B,
        Channel::Rtp,
        addr("198.51.100.20:5000"),
        &rtp(2),
    );
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
}

#[test]
fn a_new_address_in_the_phones_sdp_is_followed() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(1));
    let later = t0 + Duration::from_secs(100);
    // Hold and resume with the same address keep the latch.
    s.update_side(
        later,
        Side::A,
        signal("192.168.1.10:4000", Direction::SendOnly),
    );
    let v = s.handle_packet(
        later,
        Side::A,
        Channel::Rtp,
        addr("203.0.113.51:1"),
        &rtp(2),
    );
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    // A re-INVITE from a new network relearns.
    s.update_side(later, Side::A, signal("10.1.1.1:7000", Direction::SendRecv));
    let v = s.handle_packet(
        later,
        Side::A,
        Channel::Rtp,
        addr("203.0.113.51:1"),
        &rtp(3),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    assert_eq!(s.stats().a.latched, Some(addr("203.0.113.51:1")));
}

#[test]
fn rfc5761_rtcp_follows_each_sides_mux_choice() {
    let t0 = virtual_epoch();
    let mut s = StreamRelay::new(MEDIA, HOLD);
    let mut muxed = signal("198.51.100.30:6000", Direction::SendRecv);
    muxed.mux = true;
    muxed.rtcp = muxed.rtp;
    s.update_side(t0, Side::A, muxed);
    s.update_side(
        t0,
        Side::B,
        signal("198.51.100.20:5000", Direction::SendRecv),
    );
    // A's RTCP arrives muxed on the RTP port, leaves by B's RTCP socket to B's RTCP port.
    let v = s.handle_packet(
        t0,
        Side::A,
        Channel::Rtp,
        addr("198.51.100.30:6000"),
        &rtcp_sr(),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            to: addr("198.51.100.20:5001"),
            via: Channel::Rtcp
        }
    );
    // B's RTCP on our RTCP port (once B's RTP latched) goes to A muxed.
    s.handle_packet(
        t0,
        Side::B,
        Channel::Rtp,
        addr("198.51.100.20:5000"),
        &rtp(1),
    );
    let v = s.handle_packet(
        t0,
        Side::B,
        Channel::Rtcp,
        addr("198.51.100.20:5001"),
        &rtcp_sr(),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            to: addr("198.51.100.30:6000"),
            via: Channel::Rtp
        }
    );
    // RTCP counts as traffic but not for loss.
    assert_eq!(s.stats().a.lost, 0);
    // Junk never latches.
    let v = s.handle_packet(
        t0,
        Side::B,
        Channel::Rtp,
        addr(ATTACKER),
        b"\x00\x01STUN....",
    );
    assert_eq!(v, Verdict::Drop(DropReason::NotRtp));
}

#[test]
fn loss_is_counted_per_leg_from_sequence_numbers() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    for seq in [65534, 65535, 1, 0, 3] {
        s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(seq));
    }
    assert_eq!((s.stats().a.lost, s.stats().b.lost), (1, 0));
}

#[test]
fn media_timeout_fires_once_after_60_s_of_silence() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + MEDIA));
    let t = t0 + Duration::from_secs(30);
    s.handle_packet(t, Side::A, Channel::Rtp, addr(NAT_A), &rtp(1));
    assert_eq!(s.handle_timeout(t0 + MEDIA - Duration::from_millis(1)), []);
    assert_eq!(s.handle_timeout(t0 + MEDIA), [Side::B]);
    assert_eq!(s.handle_timeout(t0 + MEDIA), []);
    assert_eq!(s.poll_timeout(), Some(t + MEDIA));
    // RTCP alone keeps a side alive.
    s.handle_packet(
        t + MEDIA - Duration::from_secs(1),
        Side::A,
        Channel::Rtcp,
        addr(NAT_A),
        &rtcp_sr(),
    );
    assert_eq!(s.handle_timeout(t + MEDIA), []);
}

#[test]
fn media_timeout_while_held_is_hold_timeout_and_resume_restarts_the_clock() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    s.update_side(
        t0,
        Side::A,
        signal("192.168.1.10:4000", Direction::SendOnly),
    );
    s.update_side(
        t0,
        Side::B,
        signal("198.51.100.20:5000", Direction::RecvOnly),
    );
    assert_eq!(s.handle_timeout(t0 + MEDIA * 10), []);
    assert_eq!(s.handle_timeout(t0 + HOLD), [Side::A, Side::B]);
    // Resume after 20 minutes of hold: both get a fresh 60 s.
    let mut s = call(t0);
    let resume = t0 + Duration::from_secs(1200);
    s.update_side(
        t0,
        Side::A,
        signal("192.168.1.10:4000", Direction::Inactive),
    );
    s.update_side(
        resume,
        Side::A,
        signal("192.168.1.10:4000", Direction::SendRecv),
    );
    assert_eq!(
        s.handle_timeout(resume + MEDIA - Duration::from_secs(1)),
        []
    );
    assert_eq!(s.handle_timeout(resume + MEDIA), [Side::A, Side::B]);
}

#[test]
fn a_side_without_sdp_is_not_timed() {
    let t0 = virtual_epoch();
    let mut s = StreamRelay::new(MEDIA, HOLD);
    s.update_side(
        t0,
        Side::A,
        signal("192.168.1.10:4000", Direction::SendRecv),
    );
    assert_eq!(s.handle_timeout(t0 + HOLD * 2), [Side::A]);
}

#[test]
fn public_addresses() {
    for (ip, public) in [
        ("203.0.113.7", true),
        ("8.8.8.8", true),
        ("10.1.2.3", false),
        ("172.16.0.1", false),
        ("192.168.0.1", false),
        ("100.64.0.1", false),
        ("127.0.0.1", false),
        ("169.254.1.1", false),
        ("198.18.0.1", false),
        ("198.19.255.1", false),
        ("198.20.0.1", true),
        ("240.0.0.1", false),
        ("2001:db8::1", true),
        ("fd00::1", false),
        ("fe80::1", false),
        ("::1", false),
    ] {
        assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
    }
}

#[test]
fn rtp_bleed_the_rtcp_port_latches_only_behind_rtp_and_from_its_ip() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    // Before A's RTP latched, nobody latches A's RTCP port, not even A.
    let v = s.handle_packet(t0, Side::A, Channel::Rtcp, addr(ATTACKER), &rtcp_sr());
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(1));
    // B's RTCP goes to A's NAT mapping guessed from RTP (A's SDP address is private).
    let v = s.handle_packet(
        t0,
        Side::B,
        Channel::Rtp,
        addr("198.51.100.20:5000"),
        &rtp(1),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    let v = s.handle_packet(
        t0,
        Side::B,
        Channel::Rtcp,
        addr("198.51.100.20:5001"),
        &rtcp_sr(),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            to: addr("203.0.113.50:31001"),
            via: Channel::Rtcp
        }
    );
    // Another IP still cannot take A's RTCP port; A's own NAT (another port) can.
    let v = s.handle_packet(t0, Side::A, Channel::Rtcp, addr(ATTACKER), &rtcp_sr());
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    let v = s.handle_packet(
        t0,
        Side::A,
        Channel::Rtcp,
        addr("203.0.113.50:31007"),
        &rtcp_sr(),
    );
    assert!(matches!(v, Verdict::Forward { .. }));
    let v = s.handle_packet(
        t0,
        Side::B,
        Channel::Rtcp,
        addr("198.51.100.20:5001"),
        &rtcp_sr(),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            to: addr("203.0.113.50:31007"),
            via: Channel::Rtcp
        }
    );
}

#[test]
fn rfc3264_8_4_old_style_hold_keeps_the_latch_and_resume_keeps_it_too() {
    let t0 = virtual_epoch();
    let mut s = call(t0);
    s.handle_packet(t0, Side::A, Channel::Rtp, addr(NAT_A), &rtp(1));
    // c=0.0.0.0: no address, sendonly.
    let hold = SideSignal {
        rtp: None,
        rtcp: None,
        mux: false,
        direction: Direction::SendOnly,
    };
    let t = t0 + Duration::from_secs(10);
    s.update_side(t, Side::A, hold);
    // Music on hold from A still comes from its NAT; nobody else can take the stream.
    let v = s.handle_packet(t, Side::A, Channel::Rtp, addr("203.0.113.51:1"), &rtp(2));
    assert_eq!(v, Verdict::Drop(DropReason::Unlatched));
    let v = s.handle_packet(t, Side::A, Channel::Rtp, addr(NAT_A), &rtp(3));
    assert!(matches!(v, Verdict::Forward { .. }));
    // The stream is held: hold_timeout applies.
    assert_eq!(s.handle_timeout(t + MEDIA * 2), []);
    // Resume with the old address: the latch stands.
    s.update_side(t, Side::A, signal("192.168.1.10:4000", Direction::SendRecv));
    let v = s.handle_packet(
        t,
        Side::B,
        Channel::Rtp,
        addr("198.51.100.20:5000"),
        &rtp(1),
    );
    assert_eq!(
        v,
        Verdict::Forward {
            to: addr(NAT_A),
            via: Channel::Rtp
        }
    );
}
