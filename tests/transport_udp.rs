//! UDP transport on loopback: requests stamped per RFC 3581, responses routed back to the
//! NAT binding (rport), malformed datagrams delivered raw, oversize ones dropped.

use bytes::Bytes;
use ferroswitch::net::{Inbound, Payload, Peer, Transport, TransportError, TransportEvent};
use ferroswitch::sip::{response_to, Message, ParseError};
use ferroswitch::transport::{TransportConfig, TransportHandle};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn start(config: TransportConfig) -> (TransportHandle, Receiver<TransportEvent>, SocketAddr) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (t, rx) = TransportHandle::bind(&[(Transport::Udp, any)], config).unwrap();
    let addr = t.local_addr(Transport::Udp).unwrap();
    (t, rx, addr)
}

async fn next_inbound(rx: &mut Receiver<TransportEvent>) -> Inbound {
    match timeout(WAIT, rx.recv()).await.expect("no event in time") {
        Some(TransportEvent::Inbound(i)) => i,
        other => panic!("expected an inbound message, got {other:?}"),
    }
}

fn options(via_host: &str) -> String {
    format!(
        "OPTIONS sip:ferro@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {via_host};branch=z9hG4bKudp1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:ferro@127.0.0.1>\r\n\
         Call-ID: udp-test-1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn request_is_stamped_and_response_goes_back_to_rport() {
    let (t, mut rx, server) = start(TransportConfig::default());
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    // The phone believes it is 10.0.0.8:5062 (behind NAT); only rport can reach it.
    phone
        .send_to(options("10.0.0.8:5062").as_bytes(), server)
        .await
        .unwrap();

    let inbound = next_inbound(&mut rx).await;
    assert_eq!(inbound.origin.transport, Transport::Udp);
    assert_eq!(inbound.origin.source, phone_addr);
    assert_eq!(inbound.origin.local, server);
    assert_eq!(inbound.origin.connection, None);
    let Payload::Message(Message::Request(req)) = &inbound.payload else {
        panic!("expected a request: {:?}", inbound.payload);
    };
    let via = req.headers.top_via().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.rport(), Some(Some(phone_addr.port())));
    assert_eq!(via.host, "10.0.0.8");

    let resp = response_to(req, 200, "OK");
    t.send_response(&inbound.origin, &resp).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = timeout(WAIT, phone.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, server, "responses leave from the listening socket");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    assert!(
        text.contains(&format!("rport={}", phone_addr.port())),
        "{text}"
    );

    let s = t.stats();
    assert_eq!((s.udp_received, s.udp_sent), (1, 1));
    assert_eq!(s.bytes_sent, n as u64);
    t.shutdown().await;
}

#[tokio::test]
async fn malformed_datagram_is_delivered_with_its_bytes() {
    let (t, mut rx, server) = start(TransportConfig::default());
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 50\r\n\r\nshort";
    phone.send_to(raw, server).await.unwrap();
    let inbound = next_inbound(&mut rx).await;
    match inbound.payload {
        Payload::Malformed { raw: got, error } => {
            assert_eq!(&got[..], &raw[..]);
            assert_eq!(error, ParseError::BodyTruncated);
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(inbound.origin.source, phone.local_addr().unwrap());
    assert_eq!(t.stats().parse_errors, 1);
    t.shutdown().await;
}

#[tokio::test]
async fn oversize_and_keepalive_datagrams_are_not_delivered() {
    let config = TransportConfig {
        max_message_size: 600,
        ..TransportConfig::default()
    };
    let (t, mut rx, server) = start(config);
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut big = options("10.0.0.8").into_bytes();
    big.truncate(big.len() - 4);
    big.extend_from_slice(format!("Subject: {}\r\n\r\n", "x".repeat(700)).as_bytes());
    phone.send_to(&big, server).await.unwrap();
    phone.send_to(b"\r\n\r\n", server).await.unwrap();
    // Datagrams on one socket pair arrive in order: this one proves the two before it
    // were consumed and dropped.
    phone
        .send_to(options("10.0.0.8").as_bytes(), server)
        .await
        .unwrap();
    let inbound = next_inbound(&mut rx).await;
    assert!(matches!(inbound.payload, Payload::Message(_)));
    let s = t.stats();
    assert_eq!(
        (s.oversize_dropped, s.keepalives, s.udp_received),
        (1, 1, 1)
    );

    // Oversize sends are refused before reaching the socket.
    let peer = Peer::new(Transport::Udp, phone.local_addr().unwrap());
    let err = t.send(peer, Bytes::from(big)).unwrap_err();
    assert!(
        matches!(err, TransportError::MessageTooLarge { max: 600, .. }),
        "{err}"
    );
    assert_eq!(t.stats().send_failures, 1);
    t.shutdown().await;
}

#[tokio::test]
async fn sending_needs_a_socket_of_the_peer_family() {
    let (t, _rx, _) = start(TransportConfig::default());
    let v6 = Peer::new(Transport::Udp, "[::1]:5060".parse().unwrap());
    let err = t.send(v6, Bytes::from_static(b"x")).unwrap_err();
    assert!(
        matches!(err, TransportError::NoListener(p) if p == v6),
        "{err}"
    );
    t.shutdown().await;
    let v4 = Peer::new(Transport::Tcp, "127.0.0.1:9".parse().unwrap());
    let err = t.send(v4, Bytes::from_static(b"x")).unwrap_err();
    assert!(matches!(err, TransportError::ShutDown), "{err}");
}
