//! The client side of SIP trunks (issue 12's `[[gateway]]`): what ferroswitch sends to a
//! provider on its own account, rather than on behalf of a caller.
//!
//! - [`Registration`] keeps a binding at the provider's registrar: REGISTER, answer the
//!   401/407 with the gateway's credentials, refresh before expiry, back off when refused,
//!   un-REGISTER on shutdown.
//! - [`Pinger`] sends OPTIONS every `ping` seconds and says whether the gateway is up.
//! - Answering a provider's challenge to a call (a b-leg INVITE through the trunk) needs no
//!   state machine of its own: `crate::auth::uac` ([`UacAuth`](crate::auth::UacAuth) per
//!   call, [`retry`](crate::auth::retry)) does it with the gateway's credentials, never the
//!   caller's.
//!
//! # How the engine drives them
//!
//! Both are sans-IO state machines in the quinn style, driven the same way:
//!
//! 1. At start, and whenever `poll_timeout()` has passed, call `poll_request(now)` until it
//!    gives `None`; send each request it gives as a new client transaction (non-INVITE,
//!    RFC 3261 §17.1.2) to the gateway's resolved address, over `transport`. The request
//!    carries its Via (our advertised host, the transport, a fresh branch); the transaction
//!    layer adds nothing.
//! 2. The final response of that transaction goes to `handle_response(now, &resp)`;
//!    provisional responses may be passed too and are ignored. Responses are matched on
//!    branch, CSeq and Call-ID, so a stray (an answer to a transaction given up on) is
//!    harmless.
//! 3. A transaction that ends without a final response goes to `handle_failure(now, status)`:
//!    408 for Timer F, 503 for a transport error.
//! 4. After each `handle_*`, call `poll_request(now)` again (an answered challenge is
//!    ready at once), then re-arm the timer from `poll_timeout()`. `None` there means "no
//!    timer": a request is in flight (its transaction will report) or nothing is left to do.
//! 5. On shutdown, `Registration::unregister(now)` gives the Expires: 0 REGISTER; drive it
//!    like the others until `state()` is `Idle` or the grace period ends.
//!
//! `Registration::state()` and `Pinger::is_up()` are what the control interface shows and
//! what routing asks before sending a call through the gateway.
//!
//! This module must never read a clock, sleep, touch a socket, resolve names or import
//! tokio, and never log a password. Time comes in as `now`; tags, Call-IDs, branches,
//! cnonces and back-off jitter come from an RNG seeded by the caller, so scenarios replay.

pub mod ping;
pub mod register;

pub use ping::{PingConfig, Pinger, DOWN_AFTER};
pub use register::{
    backoff, granted_expires, refresh_after, RegState, Registration, RegistrationConfig,
    FIRST_BACKOFF, MAX_BACKOFF, MAX_ROUNDS,
};
