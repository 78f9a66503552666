//! What the transport layer hands to the engine: received messages with their origin,
//! send failures and closed connections. Plain data; no sockets.

use super::TransportError;
use crate::net::{Peer, Transport};
use crate::sip::{FrameError, Message, ParseError};
use bytes::Bytes;
use std::fmt;
use std::net::SocketAddr;

/// Names one TCP connection for its whole life. Never reused, so a response meant for a
/// connection that has closed cannot go out on a newer one from the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Where a message came in: everything §18.2.2 needs to send the response back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub transport: Transport,
    /// The remote address as seen on the socket (IPv4-mapped IPv6 folded to IPv4).
    pub source: SocketAddr,
    /// Our socket's address (the listener's for UDP, the connection's for TCP).
    pub local: SocketAddr,
    /// The TCP connection it arrived on; `None` for UDP.
    pub connection: Option<ConnectionId>,
}

impl Origin {
    /// The sender as a `Peer`, for sending requests back to it (e.g. a registered phone).
    pub fn peer(&self) -> Peer {
        Peer::new(self.transport, self.source)
    }
}

/// The content of a received message: parsed, or the raw octets and why they did not parse
/// (the engine answers 400 to what looks like a request and drops the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Message(Message),
    Malformed { raw: Bytes, error: ParseError },
}

/// One message received from the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub payload: Payload,
    pub origin: Origin,
    /// The message's octets exactly as they arrived (before the top Via was stamped), shared
    /// with the parsed message's buffer: what the recent-calls trace keeps. Empty when the
    /// caller has none; the trace then serialises the parsed message instead.
    pub raw: Bytes,
}

/// A message that could not be delivered after `send` accepted it.
#[derive(Debug, Clone)]
pub struct SendFailure {
    pub peer: Peer,
    /// The connection it was queued on, if one existed or was being opened.
    pub connection: Option<ConnectionId>,
    /// The octets that were not sent, so the layer above can find the transaction (branch).
    pub data: Bytes,
    pub error: TransportError,
}

/// Why a TCP or TLS connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent FIN.
    PeerClosed,
    /// Reading failed (reset, or another I/O error), with the OS's description.
    ReadFailed(String),
    /// Writing failed or stalled past the write timeout.
    WriteFailed(String),
    /// The stream could not be framed (bad Content-Length, message too large); RFC 3261
    /// §18.3 says to close such a connection.
    Framing(FrameError),
    /// No traffic for `idle_timeout`.
    IdleTimeout,
    /// The peer began a message and did not finish it within `partial_message_timeout` (a
    /// slow-loris peer holding a buffer): not an idle peer, a stalled one.
    Stalled,
    /// The TLS handshake failed or did not finish within the handshake timeout; the
    /// connection never carried a message.
    Handshake(String),
    /// Closed on request (`TransportHandle::close_connection`).
    Local,
    /// An unauthenticated connection closed to make room for a new one in a full table.
    Evicted,
    /// The transport layer is shutting down.
    Shutdown,
}

/// Everything the transport layer reports, in one channel.
#[derive(Debug, Clone)]
pub enum TransportEvent {
    Inbound(Inbound),
    SendFailed(SendFailure),
    ConnectionClosed {
        id: ConnectionId,
        peer: SocketAddr,
        reason: CloseReason,
    },
}
