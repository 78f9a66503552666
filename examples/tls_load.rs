//! A small, bounded TLS load tool for measuring the daemon (README "Phones over TLS").
//!
//! ```text
//! tls_load handshakes ADDR CA_PEM SECONDS CONCURRENCY
//!     full handshakes (new TCP connection each, no session resumption) for SECONDS with
//!     CONCURRENCY in parallel; prints handshakes/s and latency percentiles.
//! tls_load idle ADDR CA_PEM COUNT DAEMON_PID
//!     opens COUNT TLS connections and leaves them idle; prints the daemon's RSS before and
//!     after and the difference per connection, then closes them.
//! ```
//! Only for addresses on this machine; every loop is bounded in count and time.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn client(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(c.expect("CA PEM")).expect("CA certificate");
    }
    let provider = Arc::new(ferroswitch::transport::crypto_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every handshake a full one, as a phone's first connection is.
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

async fn handshake(
    c: &TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    c.connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon pid");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tls_load handshakes ADDR CA SECONDS CONCURRENCY | idle ADDR CA COUNT PID";
    if args.len() != 6 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let addr: SocketAddr = args[2].parse().expect("ADDR");
    assert!(addr.ip().is_loopback(), "loopback addresses only");
    let connector = TlsConnector::from(client(&args[3]));
    match args[1].as_str() {
        "handshakes" => {
            let secs: u64 = args[4].parse().expect("SECONDS");
            let conc: usize = args[5].parse().expect("CONCURRENCY");
            let (secs, conc) = (secs.min(60), conc.clamp(1, 64));
            let end = Instant::now() + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for _ in 0..conc {
                let c = connector.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut lat, mut errors) = (Vec::new(), 0u64);
                    while Instant::now() < end {
                        let t0 = Instant::now();
                        match handshake(&c, addr).await {
                            Ok(s) => {
                                lat.push(t0.elapsed());
                                drop(s);
                            }
                            Err(_) => errors += 1,
                        }
                    }
                    (lat, errors)
                }));
            }
            let (mut lat, mut errors) = (Vec::new(), 0);
            for t in tasks {
                let (l, e) = t.await.expect("task");
                lat.extend(l);
                errors += e;
            }
            lat.sort();
            let p = |q: f64| {
                lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            };
            println!(
                "{} handshakes in {secs} s with {conc} in parallel: {:.0}/s, {errors} errors, p50 {:?}, p99 {:?}",
                lat.len(),
                lat.len() as f64 / secs as f64,
                p(0.5).copied().unwrap_or_default(),
                p(0.99).copied().unwrap_or_default()
            );
        }
        "idle" => {
            let count: usize = args[4].parse().expect("COUNT");
            let pid: u32 = args[5].parse().expect("PID");
            let count = count.min(20_000);
            let before = rss_kib(pid);
            let mut open = Vec::with_capacity(count);
            for _ in 0..count {
                open.push(handshake(&connector, addr).await.expect("handshake"));
            }
            // Let the daemon settle (its tasks have read the handshake's last flight).
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = rss_kib(pid);
            println!(
                "{count} idle TLS connections: daemon RSS {before} KiB -> {after} KiB, {:.1} KiB per connection",
                (after.saturating_sub(before)) as f64 / count as f64
            );
            drop(open);
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
