//! The SIP transaction layer (RFC 3261 §17, amended by RFC 6026), sans-IO.
//!
//! A [`TransactionLayer`] owns every client and server transaction, keyed by
//! [`TransactionKey`]. Messages and `now` go in through `handle_*`, the TU's commands through
//! `send_*`; datagrams ([`Transmit`]), [`TransactionEvent`]s and the next deadline come out
//! of `poll_*`. The four machines (`client_invite`, `client_non_invite`, `server_invite`,
//! `server_non_invite`) are each one `match (state, input)` following the RFC figures;
//! their timers are data ([`Timer`], [`TimerConfig`]).
//!
//! This module must never read a clock, sleep, touch a socket or import tokio: the driver
//! does that, and tests run it on a virtual clock.

mod client_invite;
mod client_non_invite;
mod config;
mod error;
mod event;
mod inbound;
mod key;
mod layer;
mod machine;
mod outbound;
mod server_invite;
mod server_non_invite;
mod timer;

pub use config::{TransactionConfig, TryingPolicy};
pub use error::TransactionError;
pub use event::{TransactionEvent, TransactionStats, Transmit};
pub use key::{Role, TransactionKey};
pub use layer::TransactionLayer;
pub use machine::State;
pub use timer::{Timer, TimerConfig, TRYING_DELAY};
