//! Transport errors, sorted by what the layer above does with them: all of them mean the
//! message did not leave (RFC 3261 §8.1.3.1 treats that as a 503), `ConnectTimeout` and
//! `WriteTimeout` are the ones that took time to find out.

use super::event::ConnectionId;
use super::route::RouteError;
use crate::net::{Peer, Transport};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind {transport} {addr}: {source}")]
    Bind {
        transport: Transport,
        addr: SocketAddr,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("no {} socket for the address family of {}", .0.transport, .0.addr)]
    NoListener(Peer),
    #[error("message of {size} octets exceeds the limit of {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("connection limit of {0} reached")]
    TooManyConnections(usize),
    #[error("write queue of {0} is full")]
    QueueFull(ConnectionId),
    #[error("{0} is closed")]
    ConnectionGone(ConnectionId),
    #[error("connect to {addr} failed: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    #[error("write to {0} timed out")]
    WriteTimeout(SocketAddr),
    #[error("sending to {peer} failed: {source}")]
    Io {
        peer: Peer,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("no route for the response: {0}")]
    Route(#[from] RouteError),
    #[error("a tls listener or a send over TLS needs a certificate ([tls])")]
    NoTls,
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake { addr: SocketAddr, reason: String },
    #[error("the transport layer is shut down")]
    ShutDown,
}

impl TransportError {
    /// True when finding out took a timer's worth of time (the layer above may prefer 408).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            TransportError::ConnectTimeout(_) | TransportError::WriteTimeout(_)
        )
    }
}
