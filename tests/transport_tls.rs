//! TLS transport on loopback with a CA made in the test: the handshake, framing across and
//! within TLS records, CRLF keep-alives, the handshake timeout and the connection caps
//! applied to connections that never handshake, certificate reload (new connections get the
//! new certificate, open ones stay up), and outbound TLS with certificate verification.

#[path = "common/tls.rs"]
mod tls_ca;
mod transport_support;

use bytes::Bytes;
use ferroswitch::net::{CloseReason, Payload, Peer, Transport, TransportEvent};
use ferroswitch::sip::{response_to, Message, StreamFramer};
use ferroswitch::transport::{Sockets, TlsSetup, TransportConfig, TransportHandle};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tls_ca::{Leaf, TestCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;
use transport_support::{next_event, next_inbound, request, wait_until, WAIT};

struct TlsServer {
    t: TransportHandle,
    rx: Receiver<TransportEvent>,
    tls: SocketAddr,
}

fn setup(leaf: &Leaf, verify_peers: bool, extra_roots: Vec<CertificateDer<'static>>) -> TlsSetup {
    TlsSetup {
        chain: vec![leaf.der.clone()],
        key: PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
        tls13_only: false,
        verify_peers,
        extra_roots,
    }
}

fn start_tls(leaf: &Leaf, config: TransportConfig) -> TlsServer {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sockets = Sockets::bind(&[(Transport::Tls, any)]).unwrap();
    let (t, rx) =
        TransportHandle::start_with_tls(sockets, config, Some(setup(leaf, false, vec![]))).unwrap();
    let tls = t.local_addr(Transport::Tls).unwrap();
    TlsServer { t, rx, tls }
}

fn call_id(p: &Payload) -> String {
    match p {
        Payload::Message(m) => m.headers().call_id().unwrap().to_string(),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn rfc3261_26_2_handshake_then_messages_framed_across_and_within_tls_records() {
    let ca = TestCa::new("framing");
    let mut s = start_tls(&ca.issue("server"), TransportConfig::default());
    let mut phone = tls_ca::connect(ca.client(), s.tls).await.unwrap();
    let local = phone.get_ref().0.local_addr().unwrap();

    // Two messages in one TLS record (one write, one flush).
    let two = request("OPTIONS", "rec-1", "TLS", "10.0.0.8:5061")
        + &request("OPTIONS", "rec-2", "TLS", "10.0.0.8:5061");
    phone.write_all(two.as_bytes()).await.unwrap();
    phone.flush().await.unwrap();
    let a = next_inbound(&mut s.rx).await;
    let b = next_inbound(&mut s.rx).await;
    assert_eq!(
        (call_id(&a.payload), call_id(&b.payload)),
        ("rec-1".into(), "rec-2".into())
    );
    assert_eq!(a.origin.transport, Transport::Tls);
    assert_eq!(a.origin.source, local);
    assert_eq!(a.origin, b.origin);
    assert_eq!(
        s.t.connection_to_peer(Peer::new(Transport::Tls, local)),
        a.origin.connection
    );
    assert_eq!(s.t.connection_to(local), None, "not a TCP connection");

    // One message over four records, each flushed on its own; nothing is delivered early.
    let third = request("OPTIONS", "rec-3", "TLS", "10.0.0.8:5061");
    let cuts = [0, 10, 90, third.len() - 1, third.len()];
    for w in cuts.windows(2) {
        let before = s.t.stats().bytes_received;
        phone
            .write_all(&third.as_bytes()[w[0]..w[1]])
            .await
            .unwrap();
        phone.flush().await.unwrap();
        if w[1] < third.len() {
            let want = before + (w[1] - w[0]) as u64;
            wait_until("record read", || s.t.stats().bytes_received >= want).await;
            assert!(s.rx.try_recv().is_err(), "a partial message was delivered");
        }
    }
    let c = next_inbound(&mut s.rx).await;
    assert_eq!(call_id(&c.payload), "rec-3");
    let Payload::Message(Message::Request(r)) = &c.payload else {
        unreachable!()
    };
    assert_eq!(&r.body[..], b"hello");
    assert_eq!(
        r.headers.top_via().unwrap().rport(),
        Some(Some(local.port()))
    );

    // RFC 5626 keep-alive over TLS: CRLFCRLF answered with CRLF.
    phone.write_all(b"\r\n\r\n").await.unwrap();
    phone.flush().await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, phone.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");

    // The response goes back on the same TLS connection.
    let resp = response_to(r, 200, "OK");
    s.t.send_response(&c.origin, &resp).unwrap();
    let mut framer = StreamFramer::new(65_535);
    let got = read_tls_message(&mut phone, &mut framer).await;
    assert!(got.starts_with(b"SIP/2.0 200 OK"));
    let st = s.t.stats();
    assert_eq!((st.tls_handshakes, st.tcp_received), (1, 3));
    s.t.shutdown().await;
}

async fn read_tls_message(
    stream: &mut tokio_rustls::client::TlsStream<TcpStream>,
    framer: &mut StreamFramer,
) -> Bytes {
    let mut buf = [0u8; 4096];
    timeout(WAIT, async {
        loop {
            while let Some(f) = framer.pop().unwrap() {
                if let ferroswitch::sip::Frame::Message(m) = f {
                    return m;
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed");
            framer.push(&buf[..n]);
        }
    })
    .await
    .expect("a message in time")
}

#[tokio::test]
async fn silent_connections_are_cut_at_the_handshake_timeout_and_bounded_by_the_caps() {
    let ca = TestCa::new("handshake");
    let config = TransportConfig {
        handshake_timeout: Duration::from_millis(300),
        max_connections: 4,
        max_connections_per_ip: 3,
        ..TransportConfig::default()
    };
    let mut s = start_tls(&ca.issue("server"), config);
    // Five plain TCP connects that never send a ClientHello: at most 3 from one address
    // are held, and each is closed once the handshake timeout passes.
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(s.tls).await.unwrap());
    }
    wait_until("rejections counted", || {
        s.t.stats().connections_rejected >= 2
    })
    .await;
    assert!(s.t.connection_count() <= 3, "{:?}", s.t.stats());
    let mut closed = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while closed < 3 && tokio::time::Instant::now() < deadline {
        if let Ok(TransportEvent::ConnectionClosed { reason, .. }) =
            timeout(WAIT, next_event(&mut s.rx)).await
        {
            assert!(
                matches!(&reason, CloseReason::Handshake(why) if why.contains("not finished")),
                "{reason:?}"
            );
            closed += 1;
        }
    }
    assert_eq!(closed, 3);
    for mut c in silent {
        let mut b = [0u8; 8];
        let r = timeout(WAIT, c.read(&mut b)).await.expect("closed in time");
        assert!(matches!(r, Ok(0) | Err(_)));
    }
    assert_eq!(s.t.connection_count(), 0);
    assert_eq!(s.t.stats().tls_handshake_failures, 3);

    // A real client still gets in afterwards.
    let ok = tls_ca::connect(ca.client(), s.tls).await;
    assert!(ok.is_ok());
    s.t.shutdown().await;
}

#[tokio::test]
async fn a_full_table_evicts_the_oldest_pending_handshake_first() {
    let ca = TestCa::new("total-cap");
    let config = TransportConfig {
        max_connections: 2,
        ..TransportConfig::default()
    };
    let mut s = start_tls(&ca.issue("server"), config);
    let first = TcpStream::connect(s.tls).await.unwrap();
    let _second = TcpStream::connect(s.tls).await.unwrap();
    wait_until("two pending", || s.t.connection_count() == 2).await;
    // A phone arriving at a table full of silent handshakes gets in; the oldest goes.
    let phone = tls_ca::connect(ca.client(), s.tls).await;
    assert!(phone.is_ok());
    match next_event(&mut s.rx).await {
        TransportEvent::ConnectionClosed { reason, peer, .. } => {
            assert_eq!(reason, CloseReason::Evicted);
            assert_eq!(peer, first.local_addr().unwrap());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.t.connection_count(), 2);
    assert_eq!(s.t.stats().connections_evicted, 1);
    s.t.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails_with_one_reason() {
    let ca = TestCa::new("trusted");
    let other = TestCa::new("other");
    let mut s = start_tls(&ca.issue("server"), TransportConfig::default());
    let refused = tls_ca::connect(other.client(), s.tls).await;
    assert!(refused.is_err());
    match next_event(&mut s.rx).await {
        TransportEvent::ConnectionClosed {
            reason: CloseReason::Handshake(why),
            ..
        } => assert!(why.contains("does not trust our certificate"), "{why}"),
        other => panic!("{other:?}"),
    }
    s.t.shutdown().await;
}

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_connections_and_keeps_open_ones() {
    let ca = TestCa::new("reload");
    let first = ca.issue("first");
    let mut s = start_tls(&first, TransportConfig::default());
    let mut old = tls_ca::connect(ca.client(), s.tls).await.unwrap();
    assert_eq!(peer_cert(&old), first.der);

    let second = ca.issue("second");
    let key = PrivateKeyDer::from_pem_slice(second.key_pem.as_bytes()).unwrap();
    s.t.reload_tls(vec![second.der.clone()], key).unwrap();
    // A key that is not the certificate's is refused and the current pair stays.
    let wrong = PrivateKeyDer::from_pem_slice(first.key_pem.as_bytes()).unwrap();
    assert!(s.t.reload_tls(vec![second.der.clone()], wrong).is_err());

    let new = tls_ca::connect(ca.client(), s.tls).await.unwrap();
    assert_eq!(peer_cert(&new), second.der);

    // The connection opened before the reload still carries messages.
    old.write_all(request("OPTIONS", "after-reload", "TLS", "10.0.0.8").as_bytes())
        .await
        .unwrap();
    old.flush().await.unwrap();
    let got = next_inbound(&mut s.rx).await;
    assert_eq!(call_id(&got.payload), "after-reload");
    drop(new);
    s.t.shutdown().await;
}

fn peer_cert(s: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// A TLS server of our own (a trunk) with `leaf`; returns its address and the first
/// message it reads.
async fn trunk(leaf: &Leaf) -> (SocketAddr, tokio::task::JoinHandle<Option<Bytes>>) {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        ferroswitch::transport::crypto_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der.clone()],
        PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.ok()?;
        let mut tls = acceptor.accept(tcp).await.ok()?;
        let mut framer = StreamFramer::new(65_535);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(ferroswitch::sip::Frame::Message(m)) = framer.pop().ok()? {
                return Some(m);
            }
            let n = tls.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            framer.push(&buf[..n]);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn outbound_tls_verifies_the_server_by_name_against_the_extra_ca() {
    let ca = TestCa::new("trunk");
    let leaf = ca.issue_for(&["trunk.example.net"], "trunk", Duration::from_secs(86_400));
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = ca.issue("us");
    let sockets = Sockets::bind(&[(Transport::Udp, any)]).unwrap();
    let (t, mut rx) = TransportHandle::start_with_tls(
        sockets,
        TransportConfig::default(),
        Some(setup(&server, true, vec![ca.der.clone()])),
    )
    .unwrap();

    // Named as its certificate says: delivered.
    let (addr, got) = trunk(&leaf).await;
    t.set_tls_server_name(addr, "trunk.example.net").unwrap();
    let msg = request("OPTIONS", "to-trunk", "TLS", "127.0.0.1");
    t.send(Peer::new(Transport::Tls, addr), Bytes::from(msg))
        .unwrap();
    let m = timeout(WAIT, got).await.unwrap().unwrap();
    assert!(m.is_some_and(|m| m.starts_with(b"OPTIONS")));

    // Reached by address only, the name check fails and the send is reported failed.
    let (addr, got) = trunk(&leaf).await;
    let msg = request("OPTIONS", "to-ip", "TLS", "127.0.0.1");
    t.send(Peer::new(Transport::Tls, addr), Bytes::from(msg))
        .unwrap();
    loop {
        match next_event(&mut rx).await {
            TransportEvent::SendFailed(f) => {
                assert_eq!(f.peer, Peer::new(Transport::Tls, addr));
                assert!(f.error.to_string().contains("TLS handshake"), "{}", f.error);
                break;
            }
            TransportEvent::ConnectionClosed { .. } => continue,
            other => panic!("{other:?}"),
        }
    }
    assert!(timeout(WAIT, got).await.unwrap().unwrap().is_none());
    t.shutdown().await;
}

#[tokio::test]
async fn a_tls_listener_without_a_certificate_is_refused() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sockets = Sockets::bind(&[(Transport::Tls, any)]).unwrap();
    let r = TransportHandle::start(sockets, TransportConfig::default());
    assert!(matches!(r, Err(ferroswitch::net::TransportError::NoTls)));
}
