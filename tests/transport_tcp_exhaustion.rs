//! TCP exhaustion (issue 17.8): idle unauthenticated connections must not lock legitimate
//! clients out. A full connection table closes its oldest unauthenticated connection to make
//! room, a connection that authenticated is never the one closed, and CRLF keep-alives do not
//! keep an unauthenticated connection open past `untrusted_idle_timeout` (paused clock).
//!
//! The daemon runs with a table of 64 so the test stays cheap.

mod common;
mod transport_support;

use common::ua::Ua;
use common::{write_config, TempDir, CONFIG_TOML, USERS_TOML};
use ferroswitch::app;
use ferroswitch::config::Config;
use ferroswitch::net::{CloseReason, Transport, TransportEvent};
use ferroswitch::transport::TransportConfig;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use transport_support::{closed_by_server, next_event, next_inbound, request, start, wait_until};

const CAP: usize = 64;

/// Opens `n` connections that send one CRLF CRLF keep-alive each and then sit idle (what
/// the attack in the issue does), and waits until the daemon holds them.
async fn idle_scanners(
    addr: std::net::SocketAddr,
    n: usize,
    running: &app::Running,
) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"\r\n\r\n").await.expect("keep-alive");
        held.push(s);
    }
    wait_until("the table is full", || {
        running.transport_stats().connections == CAP
    })
    .await;
    held
}

#[tokio::test]
async fn a_table_full_of_idle_unauthenticated_connections_still_takes_a_client() {
    let dir = TempDir::new("tcp-exhaustion");
    let path = write_config(&dir, CONFIG_TOML, USERS_TOML);
    let cfg = Config::load(&path).expect("test config");
    let sockets = app::bind(&cfg).expect("bind");
    let transport = TransportConfig {
        max_connections: CAP,
        // Everything comes from 127.0.0.1 here.
        max_connections_per_ip: 4 * CAP,
        ..TransportConfig::default()
    };
    let running = app::start_with(&cfg, sockets, transport).expect("daemon starts");
    let tcp = running.local_addr(Transport::Tcp).expect("TCP listener");

    let _first_wave = idle_scanners(tcp, CAP, &running).await;
    // A phone arrives: it is served, and registers (digest authentication on this
    // connection makes it trusted).
    let mut phone = Ua::tcp(tcp, "alice", "1234").await;
    let msg = phone.options_request();
    assert_eq!(phone.ask(&msg).await.status, 200);
    assert_eq!(phone.register(&[]).await.status, 200);
    let stats = running.transport_stats();
    assert!(stats.connections_evicted >= 1, "{stats:?}");
    assert_eq!(stats.connections, CAP);

    // A second wave of idle connections pushes out the first, never the phone's.
    let _second_wave = idle_scanners(tcp, CAP, &running).await;
    assert!(running.transport_stats().connections_evicted >= CAP as u64);
    let msg = phone.options_request();
    assert_eq!(
        phone.ask(&msg).await.status,
        200,
        "the authenticated connection was kept"
    );
    tokio::time::timeout(common::WAIT, running.shutdown())
        .await
        .expect("shuts down");
}

/// Sends a CRLF CRLF ping and reads the CRLF pong (so the server has handled it).
async fn ping(s: &mut TcpStream) {
    s.write_all(b"\r\n\r\n").await.expect("ping");
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut pong))
        .await
        .expect("pong in time")
        .expect("pong");
    assert_eq!(&pong, b"\r\n");
}

#[tokio::test]
async fn keep_alives_do_not_hold_an_unauthenticated_connection_past_its_timeout() {
    let mut s = start(TransportConfig {
        idle_timeout: Duration::from_secs(60),
        untrusted_idle_timeout: Duration::from_secs(30),
        ..TransportConfig::default()
    });
    let addr = s.tcp.expect("TCP");
    let mut scanner = TcpStream::connect(addr).await.unwrap();
    scanner
        .write_all(request("OPTIONS", "ka-1", "TCP", "10.0.0.8").as_bytes())
        .await
        .unwrap();
    let untrusted = next_inbound(&mut s.rx).await.origin.connection.unwrap();
    let mut phone = TcpStream::connect(addr).await.unwrap();
    phone
        .write_all(request("OPTIONS", "ka-2", "TCP", "10.0.0.9").as_bytes())
        .await
        .unwrap();
    let trusted = next_inbound(&mut s.rx).await.origin.connection.unwrap();
    assert!(s.t.mark_trusted(trusted));

    // From here the clock moves only when told; a ping every 10 s on both connections.
    tokio::time::pause();
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(10)).await;
        ping(&mut scanner).await;
        ping(&mut phone).await;
    }
    assert_eq!(s.t.connection_count(), 2);
    tokio::time::advance(Duration::from_secs(11)).await;
    // 31 s after its last message: the untrusted one is gone despite its pings …
    match next_event(&mut s.rx).await {
        TransportEvent::ConnectionClosed { id, reason, .. } => {
            assert_eq!((id, reason), (untrusted, CloseReason::IdleTimeout))
        }
        other => panic!("expected the close, got {other:?}"),
    }
    // … the authenticated one is kept alive by its pings, past both timeouts (its last
    // message was at 0 s; without the pings it would close at 60 s).
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(10)).await;
        ping(&mut phone).await;
    }
    assert_eq!(s.t.connection_count(), 1);
    assert!(s.t.connection_to(phone.local_addr().unwrap()).is_some());
    tokio::time::resume();
    assert!(closed_by_server(&mut scanner).await);
    s.t.shutdown().await;
}

/// A source the security guard has banned (password guessing) is refused at TCP accept: it
/// takes no slot in the table.
#[tokio::test]
async fn a_banned_address_is_refused_at_accept() {
    let dir = TempDir::new("tcp-banned");
    let config = format!("{CONFIG_TOML}\n[security]\nallow = []\nmax_auth_failures = 2\n");
    let path = write_config(&dir, &config, USERS_TOML);
    let cfg = Config::load(&path).expect("test config");
    let running = app::start(&cfg, app::bind(&cfg).expect("bind")).expect("daemon starts");
    let (udp, tcp) = (
        running.local_addr(Transport::Udp).unwrap(),
        running.local_addr(Transport::Tcp).unwrap(),
    );
    let mut guesser = Ua::udp(udp, "alice", "not-her-password").await;
    for _ in 0..2 {
        assert_eq!(guesser.register(&[]).await.status, 403);
    }
    // The driver hands bans to the transport before it publishes its counters.
    wait_until("the failures are counted", || {
        running.engine_stats().auth_failures >= 2
    })
    .await;
    let mut s = TcpStream::connect(tcp).await.expect("the kernel accepts");
    assert!(
        closed_by_server(&mut s).await,
        "the banned address was kept"
    );
    let stats = running.transport_stats();
    assert!(stats.connections_banned >= 1, "{stats:?}");
    assert_eq!(stats.connections_accepted, 0);
    tokio::time::timeout(common::WAIT, running.shutdown())
        .await
        .expect("shuts down");
}
