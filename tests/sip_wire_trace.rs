//! The `sip::wire` trace over UDP. Alone in its own test binary: tracing caches per call
//! site whether anyone listens, and a test on another thread hitting the same call site
//! without a subscriber could make this one miss its events (seen once in a full run).

mod log_capture;
mod transport_support;

use ferroswitch::net::Payload;
use ferroswitch::sip::{response_to, Message};
use ferroswitch::transport::TransportConfig;
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
    // A datagram carrying a forged log line (issue 17.1): a log reader such as fail2ban must
    // not see it as a line of the daemon's own.
    let forged = format!(
        "{}X-Note: a\n{FORGED}\r\nX-Esc: \x1b[2K\rgone\r\n\r\n",
        request("OPTIONS", "udp-forged-1", "UDP", "10.0.0.8").trim_end()
    );
    phone.send_to(forged.as_bytes(), server).await.unwrap();
    let _ = next_inbound(&mut rx).await;
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

    // The forged line is traced, but only as an indented SIP line; no control octet (ESC,
    // bare CR) reaches the log.
    assert!(log.contains(&format!("\n    | {FORGED}\n")), "{log}");
    assert!(log.contains("    | X-Esc: \\x1b[2K\\x0dgone"), "{log}");
    let forged_start = regex::Regex::new(r"^\S*\s*WARN ferroswitch::security").unwrap();
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00Z") && !forged_start.is_match(line),
            "a forged log line: {line:?}"
        );
        assert!(
            !line.bytes().any(|b| b < 0x20 && b != b'\t'),
            "control octet in {line:?}"
        );
    }
}

const FORGED: &str = "2026-01-01T00:00:00Z  WARN ferroswitch::security: SECURITY ban \
src=198.51.100.7 failures=10 users=x for=600s";
