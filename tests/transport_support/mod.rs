//! Helpers shared by the transport integration tests: start a transport on loopback port 0,
//! wait for events with a deadline, build requests, read SIP frames as a peer would.
#![allow(dead_code)]

use bytes::Bytes;
use ferroswitch::net::{Inbound, Transport, TransportEvent};
use ferroswitch::sip::{Frame, StreamFramer};
use ferroswitch::transport::{TransportConfig, TransportHandle};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

/// Upper bound for anything a test waits for on loopback.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct Server {
    pub t: TransportHandle,
    pub rx: Receiver<TransportEvent>,
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

/// A transport with UDP and TCP on `ip`, port 0; `None` when `ip` cannot be bound.
pub fn try_start(ip: &str, config: TransportConfig) -> Option<Server> {
    let any: SocketAddr = SocketAddr::new(ip.parse().unwrap(), 0);
    let (t, rx) =
        TransportHandle::bind(&[(Transport::Udp, any), (Transport::Tcp, any)], config).ok()?;
    let udp = t.local_addr(Transport::Udp);
    let tcp = t.local_addr(Transport::Tcp);
    Some(Server { t, rx, udp, tcp })
}

pub fn start(config: TransportConfig) -> Server {
    try_start("127.0.0.1", config).expect("cannot bind 127.0.0.1")
}

pub async fn next_event(rx: &mut Receiver<TransportEvent>) -> TransportEvent {
    timeout(WAIT, rx.recv())
        .await
        .expect("no transport event in time")
        .expect("event channel closed")
}

pub async fn next_inbound(rx: &mut Receiver<TransportEvent>) -> Inbound {
    match next_event(rx).await {
        TransportEvent::Inbound(i) => i,
        other => panic!("expected an inbound message, got {other:?}"),
    }
}

/// Polls `cond` until it holds (observing effects the transport has no event for).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let polled = timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting until {what}");
}

/// A request with Content-Length, the top Via naming `via` with a bare rport.
pub fn request(method: &str, call_id: &str, transport: &str, via: &str) -> String {
    format!(
        "{method} sip:ferro@example.net SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {via};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:ferro@example.net>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 5\r\n\r\nhello"
    )
}

/// Reads from a peer's stream until the framer yields one message (pings/pongs skipped).
pub async fn read_message(stream: &mut TcpStream, framer: &mut StreamFramer) -> Bytes {
    let mut buf = [0u8; 4096];
    timeout(WAIT, async {
        loop {
            while let Some(frame) = framer.pop().expect("peer got an unframeable stream") {
                if let Frame::Message(m) = frame {
                    return m;
                }
            }
            let n = stream.read(&mut buf).await.expect("peer read failed");
            assert!(n > 0, "connection closed while waiting for a message");
            framer.push(&buf[..n]);
        }
    })
    .await
    .expect("no message in time")
}

/// True when the peer's side of the connection has been closed (EOF or reset).
pub async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}
