//! RFC 3261 §18.4 on loopback: a datagram sent to a port nothing listens on draws an ICMP
//! port unreachable, which the transport reports as `SendFailed` for that destination (IPv4
//! and, where the machine has it, IPv6), with what the kernel kept of the datagram.

mod transport_support;

use bytes::Bytes;
use ferroswitch::net::{Peer, Transport, TransportEvent};
use ferroswitch::transport::TransportConfig;
use std::net::SocketAddr;
use transport_support::{next_event, try_start};

/// An address on `ip` where nothing listens (bound, then released).
fn closed_port(ip: &str) -> SocketAddr {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    s.local_addr().unwrap()
}

async fn unreachable_is_reported(ip: &str) {
    let Some(mut s) = try_start(ip, TransportConfig::default()) else {
        eprintln!("{ip} not available here: skipped");
        return;
    };
    let dead = closed_port(ip);
    let peer = Peer::new(Transport::Udp, dead);
    let data = Bytes::from_static(
        b"OPTIONS sip:x@example.net SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKicmp\r\n\r\n",
    );
    s.t.send(peer, data.clone())
        .expect("the send itself is accepted");
    match next_event(&mut s.rx).await {
        TransportEvent::SendFailed(f) => {
            assert_eq!(f.peer, peer);
            assert_eq!(f.connection, None);
            assert!(
                data.starts_with(&f.data),
                "the quoted datagram: {:?}",
                f.data
            );
            assert!(f.error.to_string().contains("refused"), "{}", f.error);
        }
        other => panic!("expected SendFailed, got {other:?}"),
    }
    assert_eq!(s.t.stats().icmp_errors, 1);
    // The receive loop goes on: the socket still delivers what comes in.
    let phone = std::net::UdpSocket::bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    phone
        .send_to(
            transport_support::request("OPTIONS", "icmp-after", "UDP", "h").as_bytes(),
            s.udp.unwrap(),
        )
        .unwrap();
    assert!(matches!(
        next_event(&mut s.rx).await,
        TransportEvent::Inbound(_)
    ));
    s.t.shutdown().await;
}

#[tokio::test]
async fn rfc3261_18_4_port_unreachable_is_a_send_failure_ipv4() {
    unreachable_is_reported("127.0.0.1").await;
}

#[tokio::test]
async fn rfc3261_18_4_port_unreachable_is_a_send_failure_ipv6() {
    unreachable_is_reported("::1").await;
}
