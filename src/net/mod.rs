//! Network vocabulary and the pure rules of RFC 3261 §18, shared by the tokio transport and the
//! sans-IO engine: which transport a message used and the addresses on both sides (`Peer`,
//! `Transport`), what the transport hands to the engine (`Inbound` with its `Origin` and
//! `Payload`, `SendFailure`, `CloseReason`, `TransportEvent`), the errors a send can meet
//! (`TransportError`), and the two decisions that need no socket: stamping a received request's
//! top Via (`stamp_received`, §18.2.1 and RFC 3581) and choosing where a response goes
//! (`route_response`, §18.2.2); and where a request to a gateway goes, given DNS answers
//! (`rfc3263`: NAPTR, SRV, A/AAAA target selection, RFC 3263 §4).
//!
//! Plain data and pure functions, unit-tested without sockets. This module must never import
//! tokio, open a socket or read a clock: the engine depends on it, and the engine stays
//! sans-IO. It sits above `sip` (it names messages and Via headers) and below `transport`,
//! `transaction` and `engine`; `sip` never imports it.

mod error;
mod event;
mod peer;
pub mod rfc3263;
pub mod route;
pub mod via;

pub use error::TransportError;
pub use event::{CloseReason, ConnectionId, Inbound, Origin, Payload, SendFailure, TransportEvent};
pub use peer::{Peer, Transport};
pub use route::{
    default_port, route_response, ResponseRoute, RouteError, DEFAULT_SIPS_PORT, DEFAULT_SIP_PORT,
};
pub use via::{stamp_received, stamp_via_value, ViaError};
