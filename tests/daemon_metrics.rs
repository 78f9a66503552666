//! The Prometheus endpoint of the real daemon (`[metrics] listen`, in-process on 127.0.0.1
//! port 0): scraped during and after one answered call, every counter compared with the exact
//! count of what the test sent and received; 404 for other paths, 405 for other methods.

mod common;

use common::bin::answered_call;
use common::ua::{header, Ua};
use common::{Daemon, CONFIG_TOML, USERS_TOML, WAIT};
use ferroswitch::sip::{Message, Method};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request: (status, body).
async fn http(addr: SocketAddr, request_line: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("{request_line}\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut text = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut text))
        .await
        .expect("an answer in time")
        .expect("read");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// `name{labels} value` lines of a scrape.
async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = http(addr, "GET /metrics HTTP/1.1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse().expect("a number")))
        .collect()
}

fn check(m: &HashMap<String, f64>, want: &[(&str, f64)]) {
    for (k, v) in want {
        assert_eq!(m.get(*k), Some(v), "{k}");
    }
}

#[tokio::test]
async fn counters_during_and_after_a_call_are_exact() {
    let config = format!("{CONFIG_TOML}\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let d = Daemon::start_with(&config, USERS_TOML);
    let addr = d.metrics_addr().expect("a metrics endpoint");
    let m = scrape(addr).await;
    check(
        &m,
        &[
            ("ferroswitch_calls_started_total", 0.0),
            ("ferroswitch_calls_up", 0.0),
        ],
    );

    // REGISTER → 401, REGISTER → 200 (bob); REGISTER → 401, REGISTER → 403 (a wrong password).
    let mut bob = Ua::udp(d.udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut guesser = Ua::udp(d.udp, "alice", "not-her-password").await;
    assert_eq!(guesser.register(&[]).await.status, 403);
    // INVITE → 407, ACK, INVITE → (100) 200 relayed from bob, ACK.
    let mut alice = Ua::udp(d.udp, "alice", "1234").await;
    let (ok, _inv) = answered_call(&mut alice, &mut bob).await;

    let m = scrape(addr).await;
    check(
        &m,
        &[
            (
                "ferroswitch_sip_requests_received_total{method=\"REGISTER\"}",
                4.0,
            ),
            (
                "ferroswitch_sip_requests_received_total{method=\"INVITE\"}",
                2.0,
            ),
            (
                "ferroswitch_sip_requests_received_total{method=\"BYE\"}",
                0.0,
            ),
            ("ferroswitch_sip_responses_sent_total{class=\"2xx\"}", 2.0),
            ("ferroswitch_sip_responses_sent_total{class=\"4xx\"}", 4.0),
            ("ferroswitch_auth_failures_total", 1.0),
            ("ferroswitch_calls_started_total", 1.0),
            ("ferroswitch_calls_answered_total", 1.0),
            ("ferroswitch_calls_up", 1.0),
            ("ferroswitch_registrations_up", 1.0),
            ("ferroswitch_post_dial_delay_seconds_count", 1.0),
            (
                "ferroswitch_post_dial_delay_seconds_bucket{le=\"+Inf\"}",
                1.0,
            ),
            ("ferroswitch_bans_total", 0.0),
        ],
    );
    assert!(
        !m.keys()
            .any(|k| k.starts_with("ferroswitch_calls_ended_total")),
        "{m:?}"
    );
    // The caller's ACK may still be on its way when the scrape is answered.
    let acks = m["ferroswitch_sip_requests_received_total{method=\"ACK\"}"];
    assert!(acks == 1.0 || acks == 2.0, "{acks}");

    // alice hangs up: BYE → 200, BYE to bob → 200.
    let target = header(&ok, "Contact")
        .and_then(|c| c.split(['<', '>']).nth(1))
        .expect("a Contact")
        .to_string();
    let bye = [
        format!("BYE {target} SIP/2.0"),
        format!(
            "Via: SIP/2.0/UDP {};branch=z9hG4bK-metrics-bye;rport",
            alice.local
        ),
        "Max-Forwards: 70".into(),
        format!("To: {}", header(&ok, "To").unwrap()),
        format!("From: {}", header(&ok, "From").unwrap()),
        format!("Call-ID: {}", alice.call_id),
        "CSeq: 3 BYE".into(),
        "Content-Length: 0".into(),
    ]
    .join("\r\n")
        + "\r\n\r\n";
    assert_eq!(alice.ask(&bye).await.status, 200);
    let bye_b = loop {
        match bob.recv().await {
            Message::Request(r) if r.method == Method::Bye => break r,
            _ => continue,
        }
    };
    bob.reply(&bye_b, 200, "OK", &[]).await;
    d.stats_until("the call ended", |s| s.active_calls == 0)
        .await;

    let m = scrape(addr).await;
    check(
        &m,
        &[
            (
                "ferroswitch_sip_requests_received_total{method=\"BYE\"}",
                1.0,
            ),
            (
                "ferroswitch_sip_requests_received_total{method=\"ACK\"}",
                2.0,
            ),
            ("ferroswitch_sip_responses_sent_total{class=\"2xx\"}", 3.0),
            (
                "ferroswitch_calls_ended_total{cause=\"NORMAL_CLEARING\"}",
                1.0,
            ),
            ("ferroswitch_calls_started_total", 1.0),
            ("ferroswitch_calls_up", 0.0),
        ],
    );
    assert_eq!(http(addr, "GET /other HTTP/1.1").await.0, 404);
    assert_eq!(http(addr, "POST /metrics HTTP/1.1").await.0, 405);
    // A head that never ends is cut off, not waited for forever.
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    slow.write_all(&[b'x'; 9000]).await.expect("send");
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(6), slow.read_to_string(&mut text)).await;
    assert!(read.is_ok() && text.starts_with("HTTP/1.1 400"), "{text:?}");
    d.stop().await;
}
