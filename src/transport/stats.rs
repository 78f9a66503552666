//! Transport counters: atomics bumped by the socket tasks, read as a `TransportStats`
//! snapshot. Relaxed ordering is enough; each number is monotonic on its own and no decision
//! is taken from two of them together.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the transport counters (monotonic since start, except `connections`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub udp_received: u64,
    pub udp_sent: u64,
    /// Messages received and sent over stream connections, TCP and TLS together.
    pub tcp_received: u64,
    pub tcp_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Messages delivered as `Payload::Malformed`.
    pub parse_errors: u64,
    /// Datagrams or messages dropped for exceeding `max_message_size`.
    pub oversize_dropped: u64,
    /// RFC 5626 pings answered on TCP plus CRLF keep-alives ignored on UDP.
    pub keepalives: u64,
    pub connections_accepted: u64,
    pub connections_opened: u64,
    /// Accepted connections closed at once because the table was full (of authenticated
    /// connections: unauthenticated ones are evicted first).
    pub connections_rejected: u64,
    pub connections_closed: u64,
    pub connect_failures: u64,
    /// Messages that did not leave (synchronous errors and `SendFailed` events).
    pub send_failures: u64,
    /// Socket errors while receiving (on some systems, ICMP unreachables show up here).
    pub receive_errors: u64,
    /// ICMP errors (RFC 3261 §18.4) reported as `SendFailed` for their destination.
    pub icmp_errors: u64,
    /// Unauthenticated connections closed to make room in a full table.
    pub connections_evicted: u64,
    /// Accepted connections closed at once because their address is banned.
    pub connections_banned: u64,
    /// TLS handshakes completed (accepted and opened).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: u64,
    /// TCP and TLS connections open now (pending connects and handshakes included).
    pub connections: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub udp_received: AtomicU64,
    pub udp_sent: AtomicU64,
    pub tcp_received: AtomicU64,
    pub tcp_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub parse_errors: AtomicU64,
    pub oversize_dropped: AtomicU64,
    pub keepalives: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub connections_closed: AtomicU64,
    pub connect_failures: AtomicU64,
    pub send_failures: AtomicU64,
    pub receive_errors: AtomicU64,
    pub icmp_errors: AtomicU64,
    pub connections_evicted: AtomicU64,
    pub connections_banned: AtomicU64,
    pub tls_handshakes: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self, connections: usize) -> TransportStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            udp_received: g(&self.udp_received),
            udp_sent: g(&self.udp_sent),
            tcp_received: g(&self.tcp_received),
            tcp_sent: g(&self.tcp_sent),
            bytes_received: g(&self.bytes_received),
            bytes_sent: g(&self.bytes_sent),
            parse_errors: g(&self.parse_errors),
            oversize_dropped: g(&self.oversize_dropped),
            keepalives: g(&self.keepalives),
            connections_accepted: g(&self.connections_accepted),
            connections_opened: g(&self.connections_opened),
            connections_rejected: g(&self.connections_rejected),
            connections_closed: g(&self.connections_closed),
            connect_failures: g(&self.connect_failures),
            send_failures: g(&self.send_failures),
            receive_errors: g(&self.receive_errors),
            icmp_errors: g(&self.icmp_errors),
            connections_evicted: g(&self.connections_evicted),
            connections_banned: g(&self.connections_banned),
            tls_handshakes: g(&self.tls_handshakes),
            tls_handshake_failures: g(&self.tls_handshake_failures),
            connections,
        }
    }
}
