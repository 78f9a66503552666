//! The `sip::wire` trace over UDP. Alone in its own test binary: tracing caches per call
//! site whether anyone listens, and a test on another thread hitting the same call site
//! without a subscriber could make this one miss its events (seen once in a full run).

mod log_capture;
mod transport_support;

use ferroswitch::sip::{response_to, Message};
use ferroswitch::transport::{Payload, TransportConfig};
use log_capture::Capture;
use tokio::net::UdpSocket;
use transport_support::*;

#[tokio::test]
async fn sip_wire_target_traces_both_directions() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("sip::wire=trace")
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    // current_thread runtime: the transport's tasks run on this thread, under this default.
    let _guard = tracing::subscriber::set_default(subscriber);

    let Server { t, mut rx, udp, .. } = start(TransportConfig::default());
    let server = udp.expect("a UDP listener");
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let phone_addr = phone.local_addr().unwrap();
    let req = request("OPTIONS", "udp-test-1", "UDP", "10.0.0.8");
    phone.send_to(req.as_bytes(), server).await.unwrap();
    let inbound = next_inbound(&mut rx).await;
    let Payload::Message(Message::Request(r)) = &inbound.payload else {
        panic!("expected a request")
    };
    t.send_response(&inbound.origin, &response_to(r, 200, "OK"))
        .unwrap();
    t.shutdown().await;

    let log = capture.text();
    let recv = format!("recv UDP {} bytes {phone_addr} -> {server}", req.len());
    assert!(log.contains(&recv), "{log}");
    assert!(
        log.contains("Call-ID: udp-test-1"),
        "message text missing: {log}"
    );
    assert!(
        log.contains("send UDP") && log.contains(&format!("{server} -> {phone_addr}")),
        "{log}"
    );
    assert!(log.contains("SIP/2.0 200 OK"), "{log}");
}
