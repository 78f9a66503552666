//! RFC 3263 §4 through a real resolver (hickory, via `transport::Resolver`) against a DNS
//! server the test starts on loopback (tests/dns_support): SRV → A with the SRV ports in
//! priority order (A before AAAA), NAPTR → SRV → A, the plain A fallback on 5060, an explicit port skipping
//! SRV, NXDOMAIN as an error, and IP literals that never reach DNS. No internet needed.

mod dns_support;

use dns_support::{DnsServer, Rec};
use ferroswitch::net::Transport;
use ferroswitch::transport::{ResolveError, Resolver};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn ip(s: &str) -> Rec {
    Rec::Ip(s.parse().unwrap())
}

fn srv(priority: u16, weight: u16, port: u16, target: &'static str) -> Rec {
    Rec::Srv {
        priority,
        weight,
        port,
        target,
    }
}

fn naptr(order: u16, service: &'static str, replacement: &'static str) -> Rec {
    Rec::Naptr {
        order,
        preference: 10,
        flags: "s",
        service,
        replacement,
    }
}

async fn zone() -> DnsServer {
    DnsServer::start(vec![
        // SRV only (no NAPTR): two priorities, the lower one first whatever the weights.
        ("_sip._udp.srv.test", srv(20, 100, 5090, "backup.srv.test")),
        ("_sip._udp.srv.test", srv(10, 1, 5080, "main.srv.test")),
        ("_sip._tcp.srv.test", srv(10, 1, 5070, "tcp.srv.test")),
        ("srv.test", ip("127.0.0.99")),
        ("main.srv.test", ip("127.0.0.10")),
        ("main.srv.test", ip("::1")),
        ("backup.srv.test", ip("::1")),
        ("tcp.srv.test", ip("127.0.0.30")),
        // NAPTR → SRV → A, with a TCP record first in order and a non-standard SRV owner.
        ("naptr.test", naptr(10, "SIP+D2T", "_sip._tcp.naptr.test")),
        ("naptr.test", naptr(20, "SIP+D2U", "udp-service.naptr.test")),
        ("udp-service.naptr.test", srv(1, 1, 5999, "edge.naptr.test")),
        ("_sip._tcp.naptr.test", srv(1, 1, 5888, "edge.naptr.test")),
        ("edge.naptr.test", ip("127.0.0.40")),
        // Only an A record.
        ("plain.test", ip("127.0.0.50")),
        // Exists, but nothing SIP can use.
        ("empty.test", Rec::Ip("127.0.0.60".parse().unwrap())),
        ("_sip._udp.empty.test", srv(0, 0, 0, ".")),
    ])
    .await
}

fn addrs(t: &[(SocketAddr, Transport)]) -> Vec<String> {
    t.iter().map(|(a, _)| a.to_string()).collect()
}

async fn resolve(
    r: &Resolver,
    host: &str,
    port: Option<u16>,
    tr: Transport,
) -> Result<Vec<(SocketAddr, Transport)>, ResolveError> {
    timeout(WAIT, r.resolve(host, port, tr))
        .await
        .expect("resolve timed out")
}

#[tokio::test]
async fn rfc3263_4_2_srv_then_a_in_priority_order_on_the_srv_ports() {
    let dns = zone().await;
    let r = Resolver::with_nameserver(dns.addr);
    let t = resolve(&r, "srv.test", None, Transport::Udp).await.unwrap();
    // IPv4 first: a target's AAAA records count only when it has no A record.
    assert_eq!(addrs(&t), ["127.0.0.10:5080", "[::1]:5090"]);
    assert!(t.iter().all(|(_, tr)| *tr == Transport::Udp));
    let t = resolve(&r, "srv.test", None, Transport::Tcp).await.unwrap();
    assert_eq!(
        t,
        vec![("127.0.0.30:5070".parse().unwrap(), Transport::Tcp)]
    );
}

#[tokio::test]
async fn rfc3263_4_1_naptr_then_srv_then_a_for_the_configured_transport() {
    let dns = zone().await;
    let r = Resolver::with_nameserver(dns.addr);
    let t = resolve(&r, "naptr.test", None, Transport::Udp)
        .await
        .unwrap();
    assert_eq!(
        addrs(&t),
        ["127.0.0.40:5999"],
        "the SIP+D2U record's SRV owner, not _sip._udp"
    );
    let t = resolve(&r, "naptr.test", None, Transport::Tcp)
        .await
        .unwrap();
    assert_eq!(addrs(&t), ["127.0.0.40:5888"]);
    let asked = dns.queries();
    assert!(asked.contains(&("naptr.test".into(), 35)), "{asked:?}");
    assert!(
        asked.contains(&("udp-service.naptr.test".into(), 33)),
        "{asked:?}"
    );
}

#[tokio::test]
async fn rfc3263_4_2_no_srv_falls_back_to_a_on_5060_and_a_port_skips_srv() {
    let dns = zone().await;
    let r = Resolver::with_nameserver(dns.addr);
    let t = resolve(&r, "plain.test", None, Transport::Udp)
        .await
        .unwrap();
    assert_eq!(addrs(&t), ["127.0.0.50:5060"]);
    // An explicit port: the host's own address, never its SRV records.
    let t = resolve(&r, "srv.test", Some(5062), Transport::Udp)
        .await
        .unwrap();
    assert_eq!(addrs(&t), ["127.0.0.99:5062"]);
    let asked = dns.queries();
    assert!(
        !asked.iter().any(|(n, _)| n.ends_with(".srv.test")),
        "{asked:?}"
    );
}

#[tokio::test]
async fn nxdomain_and_srv_target_dot_are_errors() {
    let dns = zone().await;
    let r = Resolver::with_nameserver(dns.addr);
    let e = resolve(&r, "nowhere.test", None, Transport::Udp)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ResolveError::NotFound { ref host } if host == "nowhere.test"),
        "{e}"
    );
    let e = resolve(&r, "nowhere.test", Some(5060), Transport::Udp)
        .await
        .unwrap_err();
    assert!(matches!(e, ResolveError::NotFound { .. }), "{e}");
    let e = resolve(&r, "empty.test", None, Transport::Udp)
        .await
        .unwrap_err();
    assert!(matches!(e, ResolveError::NotFound { .. }), "{e}");
}

#[tokio::test]
async fn ip_literals_never_touch_dns() {
    let dns = zone().await;
    let r = Resolver::with_nameserver(dns.addr);
    let t = resolve(&r, "127.0.0.1", Some(5070), Transport::Udp)
        .await
        .unwrap();
    assert_eq!(t, vec![("127.0.0.1:5070".parse().unwrap(), Transport::Udp)]);
    let t = resolve(&r, "[::1]", None, Transport::Tcp).await.unwrap();
    assert_eq!(addrs(&t), ["[::1]:5060"]);
    assert!(dns.queries().is_empty(), "{:?}", dns.queries());
}

#[tokio::test]
async fn a_dead_name_server_is_a_lookup_error_not_a_hang() {
    // A bound socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = Resolver::with_nameserver(silent.local_addr().unwrap());
    let e = resolve(&r, "plain.test", None, Transport::Udp)
        .await
        .unwrap_err();
    assert!(matches!(e, ResolveError::Lookup { .. }), "{e}");
}
