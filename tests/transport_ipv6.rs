//! The transport over IPv6 loopback (::1): UDP stamping and rport routing, TCP reuse.
//! Skipped, with a note, only where ::1 cannot be bound (IPv6 disabled in the sandbox).

mod transport_support;

use bytes::Bytes;
use ferroswitch::net::{Payload, Peer, Transport};
use ferroswitch::sip::{response_to, Message, StreamFramer};
use ferroswitch::transport::{Sockets, TransportConfig};
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;
use transport_support::*;

fn start_v6() -> Option<Server> {
    let s = try_start("::1", TransportConfig::default());
    if s.is_none() {
        eprintln!("skipping: cannot bind [::1] on this machine");
    }
    s
}

#[tokio::test]
async fn udp_over_ipv6_stamps_without_brackets_and_routes_to_rport() {
    let Some(mut s) = start_v6() else { return };
    let server = s.udp.unwrap();
    assert!(server.is_ipv6());
    let phone = UdpSocket::bind("[::1]:0").await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    let req = request("OPTIONS", "v6-udp", "UDP", "[2001:db8::9:1]:5062");
    phone.send_to(req.as_bytes(), server).await.unwrap();

    let inbound = next_inbound(&mut s.rx).await;
    assert_eq!(inbound.origin.source, phone_addr);
    let Payload::Message(Message::Request(r)) = &inbound.payload else {
        panic!("expected a request")
    };
    let via_line = r
        .headers
        .get_str(&ferroswitch::sip::HeaderName::Via)
        .unwrap();
    assert!(via_line.contains(";received=::1"), "{via_line}");
    assert!(
        via_line.contains(&format!(";rport={}", phone_addr.port())),
        "{via_line}"
    );
    assert!(
        via_line.starts_with("SIP/2.0/UDP [2001:db8::9:1]:5062;"),
        "{via_line}"
    );

    s.t.send_response(&inbound.origin, &response_to(r, 200, "OK"))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = timeout(WAIT, phone.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, server);
    assert!(buf[..n].starts_with(b"SIP/2.0 200 OK\r\n"));
    s.t.shutdown().await;
}

#[tokio::test]
async fn tcp_over_ipv6_reuses_the_connection() {
    let Some(mut s) = start_v6() else { return };
    let mut phone = TcpStream::connect(s.tcp.unwrap()).await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    phone
        .write_all(request("REGISTER", "v6-tcp", "TCP", "[::1]:5062").as_bytes())
        .await
        .unwrap();
    let inbound = next_inbound(&mut s.rx).await;
    assert_eq!(inbound.origin.source, phone_addr);
    assert!(inbound.origin.local.is_ipv6());

    let msg = request("OPTIONS", "v6-back", "TCP", "[::1]:5060");
    s.t.send(
        Peer::new(Transport::Tcp, phone_addr),
        Bytes::from(msg.clone()),
    )
    .unwrap();
    let got = read_message(&mut phone, &mut StreamFramer::default()).await;
    assert_eq!(&got[..], msg.as_bytes());
    assert_eq!(s.t.stats().connections_opened, 0);
    s.t.shutdown().await;
}

#[tokio::test]
async fn wildcard_ipv4_and_ipv6_share_a_port() {
    // IPv6 listeners are v6-only, so 0.0.0.0:p and [::]:p both bind (on a dual-stack socket
    // the second would fail with "address in use"). A few tries in case another process
    // grabs the IPv4 port in between.
    let any6: SocketAddr = "[::]:0".parse().unwrap();
    let Ok(first) = Sockets::bind(&[(Transport::Udp, any6), (Transport::Tcp, any6)]) else {
        eprintln!("skipping: cannot bind [::] on this machine");
        return;
    };
    drop(first);
    let mut last_err = None;
    for _ in 0..3 {
        let v6 = Sockets::bind(&[(Transport::Udp, any6), (Transport::Tcp, any6)]).unwrap();
        let udp = v6.udp[0].local_addr().unwrap().port();
        let tcp = v6.tcp[0].local_addr().unwrap().port();
        let v4 = [
            (Transport::Udp, SocketAddr::from(([0, 0, 0, 0], udp))),
            (Transport::Tcp, SocketAddr::from(([0, 0, 0, 0], tcp))),
        ];
        match Sockets::bind(&v4) {
            Ok(both) => {
                assert_eq!(both.udp[0].local_addr().unwrap().port(), udp);
                assert_eq!(both.tcp[0].local_addr().unwrap().port(), tcp);
                return;
            }
            Err(e) => last_err = Some(e),
        }
    }
    panic!("0.0.0.0 could not share the [::] ports: {last_err:?}");
}
