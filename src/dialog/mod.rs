//! RFC 3261 §12 dialogs, sans-IO, and what a B2BUA needs from them.
//!
//! A [`Dialog`] is created on the UAS side from a received INVITE and our tag
//! ([`Dialog::from_uas`]) or on the UAC side from our INVITE and a 1xx-with-tag/2xx
//! ([`Dialog::from_uac`]); it holds the role, state (Early, Confirmed, Terminated), URIs and
//! tags, remote target, route set, CSeq numbers, secure flag and our Contact. It builds
//! in-dialog requests (`new_request`, `ack`: §12.2.1.1, §13.2.2.4, loose and strict
//! routing), says where they go ([`NextHop`]), judges received ones (`handle_request` →
//! [`RequestVerdict`]: 481, 500 out of order, 491 glare, 500 + Retry-After) and follows the
//! responses either way. Finding a dialog by [`DialogKey`] (and answering 481 when none has
//! it) is the caller's: the B2BUA's call table keys its legs' dialogs.
//! [`SessionTimer`] negotiates RFC 4028 session timers per leg and computes their deadlines.
//!
//! This module must never read a clock, sleep, touch a socket, resolve names or import
//! tokio: time comes in as `now`, randomness as a number or an `RngCore`, and the layer
//! above sends what is built here.

mod build;
mod error;
pub mod ids;
mod inbound;
mod key;
mod next_hop;
mod packed;
pub mod session_timer;
mod state;
#[cfg(test)]
mod test_msgs;

pub use build::ViaSpec;
pub use error::DialogError;
pub use inbound::{Accepted, DialogRejection, RequestVerdict, INVITE_IN_PROGRESS_RETRY_AFTER_MAX};
pub use key::DialogKey;
pub use next_hop::NextHop;
pub use session_timer::{
    too_small_response, Refresher, SessionDeadline, SessionExpires, SessionTimer,
    SessionTimerConfig, SessionTimerError,
};
pub use state::{is_target_refresh, Dialog, DialogRole, DialogState, ResponseEffect};
