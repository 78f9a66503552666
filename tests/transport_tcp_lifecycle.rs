//! TCP connection lifecycle on loopback: peer close, connection limit, idle timeout on a
//! paused clock, framing errors, local close and shutdown.

mod transport_support;

use bytes::Bytes;
use ferroswitch::net::{CloseReason, Peer, Transport, TransportError, TransportEvent};
use ferroswitch::sip::FrameError;
use ferroswitch::transport::TransportConfig;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use transport_support::*;

/// Connects a phone and waits until the transport has delivered one message from it, so the
/// connection is known to be in the table.
async fn connect_phone(
    s: &mut Server,
    call_id: &str,
) -> (TcpStream, ferroswitch::net::ConnectionId) {
    let mut phone = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    phone
        .write_all(request("OPTIONS", call_id, "TCP", "10.0.0.8").as_bytes())
        .await
        .unwrap();
    let inbound = next_inbound(&mut s.rx).await;
    (phone, inbound.origin.connection.unwrap())
}

async fn next_close(s: &mut Server) -> (ferroswitch::net::ConnectionId, CloseReason) {
    match next_event(&mut s.rx).await {
        TransportEvent::ConnectionClosed { id, reason, .. } => (id, reason),
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
}

#[tokio::test]
async fn peer_close_removes_the_connection() {
    let mut s = start(TransportConfig::default());
    let (phone, id) = connect_phone(&mut s, "close-1").await;
    let phone_addr = phone.local_addr().unwrap();
    assert_eq!(s.t.connection_count(), 1);
    drop(phone);
    assert_eq!(next_close(&mut s).await, (id, CloseReason::PeerClosed));
    assert_eq!(s.t.connection_count(), 0);
    assert_eq!(s.t.connection_to(phone_addr), None);
    assert_eq!(s.t.stats().connections_closed, 1);
    // Its id is gone for good: a response for it cannot go out.
    let err = s.t.send_on(id, Bytes::from_static(b"x")).unwrap_err();
    assert!(matches!(err, TransportError::ConnectionGone(g) if g == id));
    s.t.shutdown().await;
}

#[tokio::test]
async fn peer_reset_removes_the_connection() {
    let mut s = start(TransportConfig::default());
    let (phone, id) = connect_phone(&mut s, "reset-1").await;
    // Linger 0: closing sends RST instead of FIN.
    socket2::SockRef::from(&phone)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(phone);
    let (closed, reason) = next_close(&mut s).await;
    assert_eq!(closed, id);
    assert!(matches!(reason, CloseReason::ReadFailed(_)), "{reason:?}");
    assert_eq!(s.t.connection_count(), 0);
    s.t.shutdown().await;
}

#[tokio::test]
async fn connection_limit_is_enforced() {
    let config = TransportConfig {
        max_connections: 1,
        ..TransportConfig::default()
    };
    let mut s = start(config);
    let (mut first, id) = connect_phone(&mut s, "limit-1").await;
    // Authenticated: a full table cannot make room by closing it.
    assert!(s.t.mark_trusted(id));

    let mut second = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    assert!(
        closed_by_server(&mut second).await,
        "the extra connection was kept"
    );
    assert_eq!(s.t.stats().connections_rejected, 1);
    // The limit covers outbound connects too.
    let err =
        s.t.send(
            Peer::new(Transport::Tcp, "127.0.0.1:9".parse().unwrap()),
            Bytes::from_static(b"x"),
        )
        .unwrap_err();
    assert!(
        matches!(err, TransportError::TooManyConnections(1)),
        "{err}"
    );

    // The first connection is untouched.
    first
        .write_all(request("OPTIONS", "limit-2", "TCP", "10.0.0.8").as_bytes())
        .await
        .unwrap();
    assert_eq!(next_inbound(&mut s.rx).await.origin.connection, Some(id));
    assert_eq!(s.t.connection_count(), 1);
    s.t.shutdown().await;
}

#[tokio::test]
async fn idle_connection_is_closed_after_the_timeout() {
    let config = TransportConfig {
        idle_timeout: Duration::from_secs(30),
        ..TransportConfig::default()
    };
    let mut s = start(config);
    let (mut phone, id) = connect_phone(&mut s, "idle-1").await;

    // From here on only the clock moves; no socket I/O is needed to close.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(29)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(s.t.connection_count(), 1, "closed before the idle timeout");
    assert!(s.rx.try_recv().is_err());

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(next_close(&mut s).await, (id, CloseReason::IdleTimeout));
    assert_eq!(s.t.connection_count(), 0);
    tokio::time::resume();
    assert!(closed_by_server(&mut phone).await);
    s.t.shutdown().await;
}

#[tokio::test]
async fn framing_error_closes_the_connection() {
    let mut s = start(TransportConfig::default());
    let (mut phone, id) = connect_phone(&mut s, "frame-1").await;
    phone
        .write_all(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: many\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        next_close(&mut s).await,
        (id, CloseReason::Framing(FrameError::BadContentLength))
    );
    assert!(closed_by_server(&mut phone).await);
    assert_eq!(s.t.connection_count(), 0);
    s.t.shutdown().await;
}

#[tokio::test]
async fn oversize_stream_message_closes_the_connection() {
    let config = TransportConfig {
        max_message_size: 1024,
        ..TransportConfig::default()
    };
    let mut s = start(config);
    let (mut phone, id) = connect_phone(&mut s, "big-1").await;
    phone
        .write_all(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        next_close(&mut s).await,
        (id, CloseReason::Framing(FrameError::TooLarge(1024)))
    );
    s.t.shutdown().await;
}

#[tokio::test]
async fn local_close_and_shutdown_close_cleanly() {
    let mut s = start(TransportConfig::default());
    let (mut a, id_a) = connect_phone(&mut s, "shut-a").await;
    let (mut b, _) = connect_phone(&mut s, "shut-b").await;

    assert!(s.t.close_connection(id_a));
    assert!(!s.t.close_connection(id_a));
    assert_eq!(next_close(&mut s).await, (id_a, CloseReason::Local));
    assert!(closed_by_server(&mut a).await);

    let tcp = s.tcp.unwrap();
    s.t.shutdown().await;
    // Everything has ended once shutdown returns: connection closed, listener gone.
    assert_eq!(s.t.connection_count(), 0);
    assert!(closed_by_server(&mut b).await);
    assert!(
        TcpStream::connect(tcp).await.is_err(),
        "listener still accepting"
    );
    match s.rx.recv().await {
        Some(TransportEvent::ConnectionClosed { reason, .. }) => {
            assert_eq!(reason, CloseReason::Shutdown)
        }
        other => panic!("expected the shutdown close, got {other:?}"),
    }
    let err =
        s.t.send(Peer::new(Transport::Tcp, tcp), Bytes::from_static(b"x"))
            .unwrap_err();
    assert!(matches!(err, TransportError::ShutDown), "{err}");
}

#[tokio::test]
async fn shutdown_releases_the_ports() {
    let s = start(TransportConfig::default());
    let (udp, tcp) = (s.udp.unwrap(), s.tcp.unwrap());
    let clone = s.t.clone();
    s.t.shutdown().await;
    // A handle still alive must not keep the ports: a restarted transport binds them again.
    let again =
        ferroswitch::transport::Sockets::bind(&[(Transport::Udp, udp), (Transport::Tcp, tcp)]);
    assert!(again.is_ok(), "ports still held after shutdown: {again:?}");
    drop(clone);
}
