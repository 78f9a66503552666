//! The Prometheus endpoint (`[metrics] listen`): `GET /metrics` answers the daemon's counters
//! in the OpenMetrics text format, anything else 404 (405 for other methods).
//!
//! The counters live in the sans-IO cores as plain `*Stats` structs; at each scrape this
//! module asks the driver for one `EngineSnapshot` (over the control channel, so the engine
//! stays owned by the driver) and encodes it with `prometheus-client` (the Prometheus
//! organisation's Rust client: the registry and the text encoding, no HTTP stack). The HTTP
//! side is a minimal HTTP/1.1 responder on tokio: one request per connection, at most 8 KiB
//! of request head, 5 s to send it, 8 connections at once. Never blocks the engine.

use crate::b2bua::PDD_BUCKETS_MS;
use crate::cdr::HangupCause;
use crate::control::ControlHandle;
use crate::engine::{EngineSnapshot, METHODS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 8;

/// The OpenMetrics text of one snapshot.
pub fn encode(snap: &EngineSnapshot) -> String {
    let mut registry = Registry::with_prefix("ferroswitch");
    registry.register_collector(Box::new(Snapshot(snap.clone())));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Snapshot(EngineSnapshot);

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, u64, u64>(&v, None)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&(v as i64))
}

fn labelled(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (String, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (l, v) in values {
        m.encode_family(&[(label, l.as_str())])?
            .encode_counter::<NoLabelSet, u64, u64>(&v, None)?;
    }
    Ok(())
}

/// A gauge per label value (0/1 flags such as a gateway's state).
fn labelled_gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (String, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (l, v) in values {
        m.encode_family(&[(label, l.as_str())])?
            .encode_gauge(&(v as i64))?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let t = &s.engine.traffic;
        labelled(
            &mut enc,
            "sip_requests_received",
            "SIP requests received (past the security guard), by method",
            "method",
            METHODS
                .iter()
                .zip(t.requests_by_method)
                .map(|(m, v)| (m.to_string(), v)),
        )?;
        labelled(
            &mut enc,
            "sip_responses_sent",
            "SIP responses sent (first transmissions), by status class",
            "class",
            t.responses_by_class
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{}xx", i + 1), *v)),
        )?;
        let c = &s.calls;
        counter(
            &mut enc,
            "calls_started",
            "Calls that reached the call table",
            c.started,
        )?;
        counter(
            &mut enc,
            "calls_answered",
            "Calls a callee answered",
            c.answered,
        )?;
        labelled(
            &mut enc,
            "calls_ended",
            "Calls ended, by Q.850 hangup cause",
            "cause",
            HangupCause::ALL
                .iter()
                .zip(c.ended_by_cause)
                .filter(|(_, v)| *v > 0)
                .map(|(cause, v)| (cause.name().to_string(), v)),
        )?;
        gauge(&mut enc, "calls_up", "Calls in progress", s.calls_up as u64)?;
        gauge(
            &mut enc,
            "draining",
            "1 while new calls are refused (ctl drain, or a shutdown under way)",
            u64::from(s.draining),
        )?;
        gauge(
            &mut enc,
            "media_sessions",
            "Media relay sessions open (anchored calls; back to 0 when they all ended)",
            s.engine.media_sessions,
        )?;
        gauge(
            &mut enc,
            "registrations_up",
            "Registered contacts (bindings) in the location store",
            s.registrations.1 as u64,
        )?;
        gauge(
            &mut enc,
            "store_up",
            "1 while the location store takes writes (0: its Redis is unreachable, REGISTER gets 500)",
            u64::from(s.store_up),
        )?;
        if !s.gateways.is_empty() {
            labelled_gauge(
                &mut enc,
                "gateway_registered",
                "1 while the gateway's registration with the provider holds",
                "gateway",
                s.gateways
                    .iter()
                    .map(|(n, r, _)| (n.clone(), u64::from(*r))),
            )?;
            labelled_gauge(
                &mut enc,
                "gateway_up",
                "1 while the gateway answers its OPTIONS keep-alive (or is not pinged)",
                "gateway",
                s.gateways
                    .iter()
                    .map(|(n, _, u)| (n.clone(), u64::from(*u))),
            )?;
        }
        counter(
            &mut enc,
            "auth_failures",
            "Failed digest authentications (wrong password or unknown user)",
            s.engine.auth_failures,
        )?;
        counter(
            &mut enc,
            "bans",
            "Sources banned by the security guard",
            s.guard.bans,
        )?;
        gauge(
            &mut enc,
            "bans_active",
            "Sources banned now",
            s.guard.active_bans as u64,
        )?;
        gauge(
            &mut enc,
            "transactions_open",
            "SIP transactions alive",
            s.transactions.active as u64,
        )?;
        counter(
            &mut enc,
            "retransmissions",
            "SIP requests and responses sent again (timers A, E, G, or answering a retransmission)",
            s.transactions.retransmissions,
        )?;
        let mut buckets: Vec<(f64, u64)> = PDD_BUCKETS_MS
            .iter()
            .zip(c.pdd_buckets)
            .map(|(ms, n)| (*ms as f64 / 1000.0, n))
            .collect();
        buckets.push((f64::MAX, c.pdd_buckets[PDD_BUCKETS_MS.len()]));
        enc.encode_descriptor(
            "post_dial_delay_seconds",
            "INVITE received to the first 18x or 2xx sent to the caller",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(
            c.pdd_sum_us as f64 / 1e6,
            c.pdd_count,
            &buckets,
            None,
        )
    }
}

/// The running endpoint; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsServer {
    /// Binds `addr` and serves `/metrics` from `handle`. Call inside a tokio runtime.
    pub fn start(addr: SocketAddr, handle: ControlHandle) -> std::io::Result<MetricsServer> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, handle));
        Ok(MetricsServer { addr, task })
    }

    /// The address bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn serve(listener: tokio::net::TcpListener, handle: ControlHandle) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // Over the limit the connection is closed at once.
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(READ_TIMEOUT * 2, respond(stream, handle)).await;
            drop(permit);
        });
    }
}

async fn respond(mut stream: tokio::net::TcpStream, handle: ControlHandle) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(true)
    })
    .await;
    if !matches!(complete, Ok(Ok(true))) {
        return reply(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "bad request\n",
        )
        .await;
    }
    let first = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let mut parts = first.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => match handle.snapshot().await {
            Some(snap) => {
                let body = encode(&snap);
                let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                reply(&mut stream, "200 OK", ct, &body).await
            }
            None => {
                reply(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    "stopping\n",
                )
                .await
            }
        },
        (_, "/metrics") => {
            reply(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
        _ => {
            reply(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "not found: try /metrics\n",
            )
            .await
        }
    }
}

async fn reply(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_encodes_to_openmetrics_text() {
        let mut s = EngineSnapshot::default();
        s.engine.traffic.request(&crate::sip::Method::Invite);
        s.engine.traffic.response(200);
        s.calls.started = 3;
        s.calls.ended(HangupCause::UserBusy);
        s.calls.post_dial_delay(Duration::from_millis(120));
        s.calls_up = 2;
        s.draining = true;
        s.engine.media_sessions = 4;
        s.registrations = (4, 5);
        s.store_up = true;
        s.gateways = vec![("provider".into(), true, false)];
        let text = encode(&s);
        for line in [
            "ferroswitch_sip_requests_received_total{method=\"INVITE\"} 1",
            "ferroswitch_sip_requests_received_total{method=\"BYE\"} 0",
            "ferroswitch_sip_responses_sent_total{class=\"2xx\"} 1",
            "ferroswitch_calls_started_total 3",
            "ferroswitch_calls_ended_total{cause=\"USER_BUSY\"} 1",
            "ferroswitch_calls_up 2",
            "ferroswitch_draining 1",
            "ferroswitch_media_sessions 4",
            "ferroswitch_registrations_up 5",
            "ferroswitch_store_up 1",
            "ferroswitch_gateway_registered{gateway=\"provider\"} 1",
            "ferroswitch_gateway_up{gateway=\"provider\"} 0",
            "ferroswitch_post_dial_delay_seconds_bucket{le=\"0.1\"} 0",
            "ferroswitch_post_dial_delay_seconds_bucket{le=\"0.25\"} 1",
            "ferroswitch_post_dial_delay_seconds_bucket{le=\"+Inf\"} 1",
            "ferroswitch_post_dial_delay_seconds_count 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(
            !text.contains("NORMAL_CLEARING"),
            "causes never seen are left out"
        );
    }
}
