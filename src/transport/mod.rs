//! The transport layer: UDP, TCP and TLS sockets under tokio (RFC 3261 §18, §26.2), and
//! nothing else.
//!
//! It binds listeners, turns datagrams and stream frames into parsed messages stamped with
//! where they came from (`Inbound`, with the top Via of requests fixed up per §18.2.1 and
//! RFC 3581), sends bytes to peers (reusing a TCP connection to that peer when one exists) and
//! reports transport failures as events so the transaction layer can answer 503/408. It keeps
//! a bounded connection table with idle timeouts and a per-connection framer. It also does the
//! DNS lookups that locate a gateway (`Resolver`, RFC 3263; the rules are `net::rfc3263`).
//!
//! It must never interpret SIP beyond that: no retransmissions, no transaction or dialog
//! state, no answers of its own (the 400 for a malformed request is the engine's business;
//! the only thing written unprompted is the CRLF that answers an RFC 5626 ping). The rules
//! that decide things are pure and unit-tested without sockets: Via stamping, response
//! routing and the types handed to the engine live in `crate::net` (which the sans-IO engine
//! imports instead of this module), the connection table in `table`; the socket code here
//! only drives them. Nothing of `net` is re-exported: one path per item.

mod bind;
mod dns;
mod handle;
mod icmp;
mod rtp;
mod stats;
mod table;
mod tcp;
mod tls;
mod udp;
mod wire;

use std::time::Duration;

pub use bind::Sockets;
pub use dns::{ResolveError, Resolver};
pub use handle::TransportHandle;
pub use rtp::MediaRelay;
pub use stats::TransportStats;
pub use tls::{crypto_provider, TlsSetup, TlsSetupError};

/// Limits and timers of the transport layer. Addresses to listen on are given separately (see
/// `TransportHandle::bind`); the daemon's config maps onto this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// A TCP connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// The same for a connection on which no request has authenticated yet (see
    /// `TransportHandle::mark_trusted`); its CRLF keep-alives do not count as traffic, so
    /// idle scanners cannot hold the table. Never longer than `idle_timeout`.
    pub untrusted_idle_timeout: Duration,
    /// Open TCP connections (accepted plus outbound, pending connects included). Beyond it
    /// the oldest unauthenticated connection is closed to make room; with none to close,
    /// accepts are closed at once and sends that would need a new connection fail.
    pub max_connections: usize,
    /// How long an outbound TCP connect may take before the send fails.
    pub connect_timeout: Duration,
    /// How long one write to a TCP peer may stall before the connection is given up.
    pub write_timeout: Duration,
    /// Largest message (datagram or framed stream message) accepted or sent. Also bounds what
    /// a connection buffers.
    pub max_message_size: usize,
    /// Capacity of the event channel handed to the engine; a full channel slows reading
    /// (the kernel queues or drops, as it would for any slow receiver).
    pub event_capacity: usize,
    /// Messages queued for one TCP connection before `send` reports `QueueFull`.
    pub write_queue: usize,
    /// Accepted connections one remote IP address may hold at once (a phone needs one).
    pub max_connections_per_ip: usize,
    /// A connection whose peer has sent part of a message and nothing more for this long is
    /// closed (a slow-loris peer holding a buffer), whatever the idle timeout says.
    pub partial_message_timeout: Duration,
    /// A TLS handshake (accepted or opened) not finished within this long is given up; the
    /// connection holds its slot in the table meanwhile, so the caps bound handshakes too.
    pub handshake_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            idle_timeout: Duration::from_secs(300),
            untrusted_idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_message_size: crate::sip::MAX_MESSAGE_SIZE,
            event_capacity: 1024,
            write_queue: 64,
            max_connections_per_ip: 32,
            partial_message_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}
