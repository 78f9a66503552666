//! TCP transport on loopback: stream framing, RFC 5626 keep-alive, reuse of a peer's own
//! connection for requests and responses, outbound connects and their failures.

mod transport_support;

use bytes::Bytes;
use ferroswitch::net::{Payload, Peer, Transport, TransportError, TransportEvent};
use ferroswitch::sip::{response_to, Message, ParseError, StreamFramer};
use ferroswitch::transport::TransportConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use transport_support::*;

fn call_id(p: &Payload) -> String {
    match p {
        Payload::Message(m) => m.headers().call_id().unwrap().to_string(),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn messages_are_framed_across_and_within_segments() {
    let mut s = start(TransportConfig::default());
    let mut phone = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    phone.set_nodelay(true).unwrap();
    let local = phone.local_addr().unwrap();

    // Two messages in one write.
    let two = request("OPTIONS", "seg-1", "TCP", "10.0.0.8:5062")
        + &request("OPTIONS", "seg-2", "TCP", "10.0.0.8:5062");
    phone.write_all(two.as_bytes()).await.unwrap();
    let a = next_inbound(&mut s.rx).await;
    let b = next_inbound(&mut s.rx).await;
    assert_eq!(
        (call_id(&a.payload), call_id(&b.payload)),
        ("seg-1".into(), "seg-2".into())
    );
    assert_eq!(a.origin.source, local);
    assert_eq!(a.origin.transport, Transport::Tcp);
    assert!(a.origin.connection.is_some());
    assert_eq!(a.origin, b.origin);
    assert_eq!(s.t.connection_to(local), a.origin.connection);

    // One message in three writes; after each partial write the server has read the
    // octets (bytes_received) and delivered nothing.
    let third = request("OPTIONS", "seg-3", "TCP", "10.0.0.8:5062");
    let cuts = [0, 30, third.len() - 2, third.len()];
    for w in cuts.windows(2) {
        let before = s.t.stats().bytes_received;
        phone
            .write_all(&third.as_bytes()[w[0]..w[1]])
            .await
            .unwrap();
        if w[1] < third.len() {
            let want = before + (w[1] - w[0]) as u64;
            wait_until("partial write read", || s.t.stats().bytes_received >= want).await;
            assert!(s.rx.try_recv().is_err(), "a partial message was delivered");
        }
    }
    let c = next_inbound(&mut s.rx).await;
    assert_eq!(call_id(&c.payload), "seg-3");
    let Payload::Message(Message::Request(r)) = &c.payload else {
        unreachable!()
    };
    assert_eq!(&r.body[..], b"hello");
    // RFC 3581 applies on TCP too.
    let via = r.headers.top_via().unwrap();
    assert_eq!(via.rport(), Some(Some(local.port())));
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(s.t.stats().tcp_received, 3);
    s.t.shutdown().await;
}

#[tokio::test]
async fn keepalive_ping_is_answered_with_crlf() {
    let mut s = start(TransportConfig::default());
    let mut phone = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    phone.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, phone.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    // A message after the ping still frames, and nothing was delivered for the ping.
    phone
        .write_all(request("OPTIONS", "after-ping", "TCP", "h").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        call_id(&next_inbound(&mut s.rx).await.payload),
        "after-ping"
    );
    assert_eq!(s.t.stats().keepalives, 1);
    s.t.shutdown().await;
}

#[tokio::test]
async fn unparseable_framed_message_is_delivered_and_connection_stays() {
    let mut s = start(TransportConfig::default());
    let mut phone = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    let no_cl = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n";
    phone.write_all(no_cl.as_bytes()).await.unwrap();
    match next_inbound(&mut s.rx).await.payload {
        Payload::Malformed { raw, error } => {
            assert_eq!(&raw[..], no_cl.as_bytes());
            assert_eq!(error, ParseError::MissingContentLength);
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    phone
        .write_all(request("OPTIONS", "next", "TCP", "h").as_bytes())
        .await
        .unwrap();
    assert_eq!(call_id(&next_inbound(&mut s.rx).await.payload), "next");
    s.t.shutdown().await;
}

#[tokio::test]
async fn requests_and_responses_reuse_the_phones_own_connection() {
    let mut s = start(TransportConfig::default());
    let mut phone = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    // The Via names an address nobody listens on: only the connection reaches the phone.
    let register = request("REGISTER", "reg-1", "TCP", "10.0.0.8:5062");
    phone.write_all(register.as_bytes()).await.unwrap();
    let inbound = next_inbound(&mut s.rx).await;
    let Payload::Message(Message::Request(req)) = &inbound.payload else {
        panic!("expected a request")
    };
    s.t.send_response(&inbound.origin, &response_to(req, 200, "OK"))
        .unwrap();
    let mut framer = StreamFramer::default();
    let got = read_message(&mut phone, &mut framer).await;
    assert!(got.starts_with(b"SIP/2.0 200 OK\r\n"));

    // A new request to the registered phone goes to its source address, i.e. this socket.
    let invite = request("INVITE", "inv-1", "TCP", "192.0.2.1:5060");
    s.t.send(
        Peer::new(Transport::Tcp, inbound.origin.source),
        Bytes::from(invite.clone()),
    )
    .unwrap();
    let got = read_message(&mut phone, &mut framer).await;
    assert_eq!(&got[..], invite.as_bytes());
    assert_eq!(inbound.origin.source, phone_addr);

    let st = s.t.stats();
    assert_eq!((st.connections_accepted, st.connections_opened), (1, 0));
    assert_eq!((st.connections, st.tcp_sent), (1, 2));
    s.t.shutdown().await;
}

#[tokio::test]
async fn outbound_connect_then_reuse_and_inbound_on_it() {
    let mut s = start(TransportConfig::default());
    let far = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let far_addr = far.local_addr().unwrap();
    let peer = Peer::new(Transport::Tcp, far_addr);

    let first = request("OPTIONS", "out-1", "TCP", "127.0.0.1:5060");
    s.t.send(peer, Bytes::from(first.clone())).unwrap();
    // Queued behind the pending connect: must not open a second connection.
    let second = request("OPTIONS", "out-2", "TCP", "127.0.0.1:5060");
    s.t.send(peer, Bytes::from(second.clone())).unwrap();
    let (mut accepted, _) = timeout(WAIT, far.accept()).await.unwrap().unwrap();
    let mut framer = StreamFramer::default();
    assert_eq!(
        &read_message(&mut accepted, &mut framer).await[..],
        first.as_bytes()
    );
    assert_eq!(
        &read_message(&mut accepted, &mut framer).await[..],
        second.as_bytes()
    );

    // The far end answers on the same connection; it arrives tagged with that connection.
    let answer = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKout-1\r\n\
                  Call-ID: out-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    accepted.write_all(answer.as_bytes()).await.unwrap();
    let inbound = next_inbound(&mut s.rx).await;
    assert_eq!(inbound.origin.source, far_addr);
    assert_eq!(inbound.origin.connection, s.t.connection_to(far_addr));
    let Payload::Message(Message::Response(r)) = &inbound.payload else {
        panic!("expected a response")
    };
    // Responses are never stamped.
    assert_eq!(r.headers.top_via().unwrap().received(), None);

    let third = request("BYE", "out-3", "TCP", "127.0.0.1:5060");
    s.t.send(peer, Bytes::from(third.clone())).unwrap();
    assert_eq!(
        &read_message(&mut accepted, &mut framer).await[..],
        third.as_bytes()
    );
    let st = s.t.stats();
    assert_eq!(
        (st.connections_opened, st.connections, st.tcp_sent),
        (1, 1, 3)
    );
    s.t.shutdown().await;
}

#[tokio::test]
async fn connect_to_a_closed_port_reports_send_failed() {
    let mut s = start(TransportConfig::default());
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let data = Bytes::from(request("OPTIONS", "refused", "TCP", "127.0.0.1"));
    s.t.send(Peer::new(Transport::Tcp, closed), data.clone())
        .unwrap();
    match next_event(&mut s.rx).await {
        TransportEvent::SendFailed(f) => {
            assert_eq!(f.peer, Peer::new(Transport::Tcp, closed));
            assert_eq!(f.data, data);
            assert!(matches!(f.error, TransportError::Connect { addr, .. } if addr == closed));
            assert!(!f.error.is_timeout());
        }
        other => panic!("expected SendFailed, got {other:?}"),
    }
    let st = s.t.stats();
    assert_eq!(
        (st.connect_failures, st.send_failures, st.connections),
        (1, 1, 0)
    );
    s.t.shutdown().await;
}

#[tokio::test]
async fn response_falls_back_to_sent_by_port_when_the_connection_is_gone() {
    let mut s = start(TransportConfig::default());
    // The phone listens on its sent-by port but sends from an ephemeral one.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sent_by = listener.local_addr().unwrap();
    let mut phone = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    let req = request("OPTIONS", "fallback", "TCP", &sent_by.to_string());
    phone.write_all(req.as_bytes()).await.unwrap();
    let inbound = next_inbound(&mut s.rx).await;
    drop(phone);
    match next_event(&mut s.rx).await {
        TransportEvent::ConnectionClosed { .. } => {}
        other => panic!("expected the close, got {other:?}"),
    }
    let Payload::Message(Message::Request(r)) = &inbound.payload else {
        panic!("expected a request")
    };
    // §18.2.2: a new connection to received (127.0.0.1) at the sent-by port.
    s.t.send_response(&inbound.origin, &response_to(r, 200, "OK"))
        .unwrap();
    let (mut back, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let got = read_message(&mut back, &mut StreamFramer::default()).await;
    assert!(got.starts_with(b"SIP/2.0 200 OK\r\n"));
    assert_eq!(s.t.stats().connections_opened, 1);
    s.t.shutdown().await;
}

/// A peer that starts a message and stops sending is closed after
/// `partial_message_timeout`, long before the idle timeout (paused tokio clock), with
/// `CloseReason::Stalled`.
#[tokio::test(start_paused = true)]
async fn half_message_then_silence_is_closed() {
    let cfg = ferroswitch::transport::TransportConfig {
        idle_timeout: std::time::Duration::from_secs(300),
        untrusted_idle_timeout: std::time::Duration::from_secs(300),
        partial_message_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    let (handle, mut events) = ferroswitch::transport::TransportHandle::bind(
        &[(
            ferroswitch::net::Transport::Tcp,
            "127.0.0.1:0".parse().unwrap(),
        )],
        cfg,
    )
    .unwrap();
    let addr = handle.local_addr(ferroswitch::net::Transport::Tcp).unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    s.write_all(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\n")
        .await
        .unwrap();
    // Still open just before the stall timeout …
    tokio::time::sleep(std::time::Duration::from_secs(29)).await;
    assert_eq!(handle.connection_count(), 1);
    // … closed after it.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Some(ferroswitch::net::TransportEvent::ConnectionClosed { reason, .. }) => {
                    break Some(reason)
                }
                Some(_) => continue,
                None => break None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    // Its own reason, so the log tells a stalled peer from an idle one.
    assert_eq!(closed, Some(ferroswitch::net::CloseReason::Stalled));
    assert_eq!(handle.connection_count(), 0);
    handle.shutdown().await;
}

/// One address cannot hold more than `max_connections_per_ip` accepted connections.
#[tokio::test]
async fn per_address_connection_cap() {
    let cfg = ferroswitch::transport::TransportConfig {
        max_connections_per_ip: 2,
        ..Default::default()
    };
    let (handle, _events) = ferroswitch::transport::TransportHandle::bind(
        &[(
            ferroswitch::net::Transport::Tcp,
            "127.0.0.1:0".parse().unwrap(),
        )],
        cfg,
    )
    .unwrap();
    let addr = handle.local_addr(ferroswitch::net::Transport::Tcp).unwrap();
    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // The third is accepted by the kernel, then closed by us: reading it ends at once.
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), kept[2].read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while handle.connection_count() != 2 && std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.connection_count(), 2);
    assert!(handle.stats().connections_rejected >= 1);
    handle.shutdown().await;
}
