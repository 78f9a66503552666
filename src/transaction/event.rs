//! What comes out of the transaction layer: datagrams to send, events for the layer above
//! (the TU), and counters. Plain data; the driver moves it, the layer never does I/O.

use super::key::TransactionKey;
use super::timer::Timer;
use crate::net::Peer;
use crate::sip::{Request, Response};
use bytes::Bytes;

/// One message to put on the wire. `key` names the transaction that sent it, so the driver
/// can report a send failure with `handle_transport_error`; `None` for stateless sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// For requests: where the request goes. For responses: the peer the request came from
    /// (the transport applies §18.2.2 / RFC 3581 on top if it must).
    pub to: Peer,
    pub bytes: Bytes,
    pub key: Option<TransactionKey>,
}

/// What the layer tells the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent {
    /// A new request (not ACK, not CANCEL) created server transaction `key`; answer it with
    /// `send_response`. Retransmissions of it never come here again.
    Request {
        key: TransactionKey,
        request: Request,
        from: Peer,
    },
    /// A CANCEL created its own server transaction `key` (answer 200, or 481 when `invite`
    /// is `None`); `invite` is the INVITE server transaction it matches (§9.2), if alive.
    Cancel {
        key: TransactionKey,
        request: Request,
        from: Peer,
        invite: Option<TransactionKey>,
    },
    /// An ACK the TU must see: one for a 2xx, matched to server transaction `invite` in the
    /// Accepted state (RFC 6026 §7.1), or one matching no transaction (`invite` is `None`:
    /// the usual case for a 2xx ACK with its own branch, or one arriving after Timer L).
    /// ACKs for non-2xx responses are absorbed and never come here.
    Ack {
        invite: Option<TransactionKey>,
        request: Request,
        from: Peer,
    },
    /// A response for client transaction `key`: provisional or final, and in the Accepted
    /// state every further 2xx (RFC 6026 §7.2), one per fork or retransmission.
    Response {
        key: TransactionKey,
        response: Response,
    },
    /// A response no transaction claims: a 2xx retransmission that outlived Timer M, a
    /// response to a request we never sent. A B2BUA re-ACKs 2xx ones (RFC 6026 §7.2).
    StrayResponse { response: Response, from: Peer },
    /// Timer B or F (no final response: treat as 408 Request Timeout), H (the ACK for our
    /// 3xx–6xx never came) or CancelWait (§9.1) fired. The transaction terminates.
    Timeout { key: TransactionKey, timer: Timer },
    /// The transport could not deliver for transaction `key`: treat as 503 Service
    /// Unavailable (§8.1.3.1). The transaction terminates, unless it is a server INVITE in
    /// Accepted (RFC 6026 keeps it there for the 2xx retransmissions of the TU).
    TransportError { key: TransactionKey },
    /// The transaction ended and is gone; its key may be reused.
    Terminated { key: TransactionKey },
}

/// Counters for the driver to publish (habit 10). Monotonic except `active`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionStats {
    pub client_created: u64,
    pub server_created: u64,
    pub terminated: u64,
    /// Transactions alive now.
    pub active: usize,
    /// Requests and responses sent again: by timers A, E, G, or answering a retransmission.
    pub retransmissions: u64,
    /// Retransmitted requests (and non-2xx ACKs) that matched a transaction and stopped there.
    pub absorbed_requests: u64,
    /// Response retransmissions stopped at a client transaction.
    pub absorbed_responses: u64,
    pub stray_responses: u64,
    /// ACKs that matched no transaction (passed up as `Ack { invite: None }`).
    pub stray_acks: u64,
    pub timeouts: u64,
    pub transport_errors: u64,
    /// New requests refused because the table was full.
    pub rejected: u64,
}
