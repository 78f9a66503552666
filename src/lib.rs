//! ferroswitch: a SIP softswitch (registrar + back-to-back user agent).
//!
//! Layers, arrows pointing down: `transport` → `sip` → `transaction` → dialog → b2bua.
//! The protocol layers are sans-IO; only `transport` and the driver (`app`) touch sockets and
//! clocks. `net` holds what both sides share without sockets (addresses, the `Inbound` messages
//! and send failures the transport hands over, Via stamping, response routing), so the engine
//! imports `net` and never `transport` (`tests/layering.rs` checks it).

/// The hasher of the daemon's hot tables: foldhash, seeded per process (so peers cannot aim
/// branches or Call-IDs at one bucket) and several times cheaper than SipHash on short keys.
pub(crate) type FastHash = foldhash::fast::RandomState;
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastHash>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, FastHash>;

pub mod app;
pub mod auth;
pub mod b2bua;
pub mod cdr;
pub mod clock;
pub mod config;
pub mod control;
pub mod dialog;
pub mod engine;
pub mod gateway;
pub mod ladder;
pub mod media;
pub mod metrics;
pub mod net;
pub mod persist;
pub mod registrar;
pub mod routing;
pub mod security;
pub mod sip;
pub mod transaction;
pub mod transport;
