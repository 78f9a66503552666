//! The control handle without sockets: allocation and the pool, a call's SDP through the
//! rewriter, packets through the rules, timeouts as events, release.

use super::*;
use crate::clock::virtual_epoch;
use crate::media::{rewrite, Direction, LegOrigin, PortRange};
use std::time::Duration;

fn config(first: u16, last: u16) -> MediaConfig {
    MediaConfig {
        rtp_ports: PortRange::new(first, last).unwrap(),
        ext_rtp_ip: Some("203.0.113.7".parse().unwrap()),
        media_timeout: Duration::from_secs(60),
        ..MediaConfig::default()
    }
}

const SIP_IP: &str = "10.0.0.5";

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p
}

#[test]
fn pool_exhaustion_is_503_and_release_returns_every_pair() {
    let mut m = MemoryRelay::new(config(20000, 20009)); // 5 pairs
    let ip = SIP_IP.parse().unwrap();
    let one = m.allocate(&[true], ip).unwrap();
    let two = m.allocate(&[true, false], ip).unwrap();
    assert_eq!(m.pool_free(), 1);
    // Audio + video needs four pairs: refused whole, nothing taken.
    assert_eq!(m.allocate(&[true, true], ip), Err(MediaError::Exhausted));
    assert_eq!(m.pool_free(), 1);
    m.release(one.id).unwrap();
    m.release(two.id).unwrap();
    assert_eq!(m.release(two.id), Err(MediaError::NoSuchSession(two.id)));
    assert_eq!((m.pool_free(), m.pool_capacity()), (5, 5));
    let both = m.allocate(&[true, true], ip).unwrap();
    assert_eq!(both.streams.iter().flatten().count(), 2);
}

#[test]
fn addresses_bind_the_sip_ip_and_advertise_ext_rtp_ip() {
    let sip: IpAddr = SIP_IP.parse().unwrap();
    let mut c = config(20000, 20009);
    assert_eq!(
        addresses(&c, sip),
        Ok((sip, "203.0.113.7".parse().unwrap()))
    );
    c.ext_rtp_ip = None;
    assert_eq!(addresses(&c, sip), Ok((sip, sip)));
    c.rtp_ip = Some("0.0.0.0".parse().unwrap());
    assert_eq!(addresses(&c, sip), Ok(("0.0.0.0".parse().unwrap(), sip)));
    let any = "0.0.0.0".parse().unwrap();
    assert_eq!(addresses(&c, any), Err(MediaError::NoAddress));
}

#[test]
fn rfc3264_offer_answer_through_the_relay_and_packets_both_ways() {
    let t0 = virtual_epoch();
    let mut m = MemoryRelay::new(config(20000, 20099));
    let offer = b"v=0\r\no=a 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n";
    let sd = SessionDescription::parse(offer).unwrap();
    let alloc = m
        .allocate(&Allocation::wanted(&sd), SIP_IP.parse().unwrap())
        .unwrap();
    assert_eq!(alloc.streams[1], None);
    m.update_side(t0, alloc.id, 0, Side::A, SideSignal::from_sdp(&sd, 0))
        .unwrap();
    assert_eq!(
        m.update_side(t0, alloc.id, 1, Side::A, SideSignal::from_sdp(&sd, 1)),
        Err(MediaError::NoSuchStream(alloc.id, 1))
    );
    let mut to_b = LegOrigin::new(77);
    let sent = rewrite(offer, &alloc.plans(Side::B), &mut to_b).unwrap();
    let b_port = alloc.ports(0, Side::B).unwrap().rtp;
    let sent = String::from_utf8(sent).unwrap();
    assert!(
        sent.contains(&format!("m=audio {b_port} RTP/AVP 0\r\n")),
        "{sent}"
    );
    assert!(sent.contains("m=video 0 RTP/AVP 96\r\n"), "{sent}");
    let answer = b"v=0\r\no=b 5 5 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\n\
t=0 0\r\nm=audio 5000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n";
    let sd_b = SessionDescription::parse(answer).unwrap();
    m.update_side(t0, alloc.id, 0, Side::B, SideSignal::from_sdp(&sd_b, 0))
        .unwrap();
    let a_port = alloc.ports(0, Side::A).unwrap().rtp;
    // A (behind NAT) speaks to our A port; it goes out of our B port to B.
    let nat_a: SocketAddr = "203.0.113.50:31000".parse().unwrap();
    let tx = m.handle_packet(t0, a_port, nat_a, &rtp(1)).unwrap();
    assert_eq!(tx.from, SocketAddr::new(SIP_IP.parse().unwrap(), b_port));
    assert_eq!(tx.to, "198.51.100.20:5000".parse().unwrap());
    // B answers; it goes back to where A really is.
    let tx = m.handle_packet(t0, b_port, "198.51.100.20:5000".parse().unwrap(), &rtp(1));
    assert_eq!(tx.unwrap().to, nat_a);
    // A sprayer at the A port after latching is refused.
    let spray = m.handle_packet(t0, a_port, "192.0.2.66:1".parse().unwrap(), &rtp(9));
    assert_eq!(spray, Err(DropReason::Unlatched));
    assert_eq!(
        m.handle_packet(t0, 20098, nat_a, &rtp(2)),
        Err(DropReason::NoSession)
    );
    let st = m.stats(alloc.id).unwrap();
    assert_eq!(
        (st.leg(Side::A).rx_packets, st.leg(Side::A).dropped),
        (1, 1)
    );
    assert_eq!(st.leg(Side::B).tx_packets, 1);
    let fin = m.release(alloc.id).unwrap();
    assert_eq!(fin, st);
    assert_eq!(
        m.handle_packet(t0, a_port, nat_a, &rtp(3)),
        Err(DropReason::NoSession)
    );
}

#[test]
fn media_timeout_becomes_an_event_naming_the_session() {
    let t0 = virtual_epoch();
    let mut m = MemoryRelay::new(config(20000, 20099));
    let alloc = m.allocate(&[true], SIP_IP.parse().unwrap()).unwrap();
    let signal = SideSignal {
        rtp: Some("198.51.100.20:5000".parse().unwrap()),
        rtcp: Some("198.51.100.20:5001".parse().unwrap()),
        mux: false,
        direction: Direction::SendRecv,
    };
    m.update_side(t0, alloc.id, 0, Side::A, signal).unwrap();
    assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    m.handle_timeout(t0 + Duration::from_secs(59));
    assert_eq!(m.poll_event(), None);
    m.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(
        m.poll_event(),
        Some(MediaEvent::Timeout {
            session: alloc.id,
            stream: 0,
            side: Side::A
        })
    );
    assert_eq!(m.poll_event(), None);
}
