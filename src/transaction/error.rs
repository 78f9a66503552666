//! Errors of the transaction layer, sorted by who is at fault, and their one mapping to the
//! wire. Peer input never panics the layer; it ends up here or is dropped and counted.

use super::machine::State;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransactionError {
    // --- the peer's fault (a request we cannot key) ---
    /// A received request lacks a header its transaction key needs.
    #[error("request without a usable {0} header")]
    Malformed(&'static str),
    /// A received response has a status outside 100–699.
    #[error("response status {0} outside 100-699")]
    BadStatus(u16),

    // --- our limits ---
    /// The table holds `max_transactions` already; a new request is refused.
    #[error("transaction table full ({0} transactions)")]
    TooManyTransactions(usize),

    // --- the layer above misused the API ---
    /// We only send requests whose top Via carries an RFC 3261 branch (z9hG4bK…).
    #[error("request has no top Via with an RFC 3261 branch")]
    MissingBranch,
    /// An ACK for a 2xx is no transaction (§17.1.1.3); send it with `send_stateless`.
    #[error("ACK creates no transaction; use send_stateless")]
    AckIsNotATransaction,
    #[error("a transaction with this key exists already")]
    DuplicateKey,
    #[error("no such transaction")]
    UnknownTransaction,
    /// `send_response` on a client key, `send_cancel` on a non-INVITE, and the like.
    #[error("operation not possible on this kind of transaction")]
    WrongKind,
    /// The machine does not accept this now, e.g. a second final response (§17.2.2).
    #[error("not allowed in state {0:?}")]
    InvalidState(State),
    /// The layer above gave a response status outside 100–699.
    #[error("status {0} is not a SIP response code")]
    InvalidStatus(u16),
}

impl TransactionError {
    /// The status a stateless answer to the offending received request should carry, for
    /// the errors a peer's request can cause; `None` for the rest.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            TransactionError::Malformed(_) => Some(400),
            TransactionError::TooManyTransactions(_) => Some(503),
            _ => None,
        }
    }
}
