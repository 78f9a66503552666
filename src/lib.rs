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

/// Tests that read their own log lines (`tracing::subscriber::with_default` on their thread)
/// race with other test threads: a log callsite first hit by a thread with no subscriber
/// wanting it can cache the interest "never" while another thread is installing one that
/// does, and that thread then misses the line (seen in CI once). A global subscriber that
/// answers "sometimes" for every callsite and takes no events keeps every callsite asking
/// the current thread's subscriber instead.
#[cfg(test)]
pub(crate) fn keep_log_callsites_open() {
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};
    struct Open;
    impl Subscriber for Open {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            Interest::sometimes()
        }
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            false
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Fails only when a global subscriber exists already, which then decides for itself.
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Open);
    });
}
