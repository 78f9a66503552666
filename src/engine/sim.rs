//! The virtual network around one engine, shared by every harness that drives it without
//! sockets (the engine's scenario tests, the fuzz harness): messages go in as the transport
//! would hand them over (`received`: parsed with the top Via stamped, or `Malformed`), time
//! moves only when the caller says so, timer by timer in deadline order (quinn's
//! `tests/util.rs` way), and what the engine sends comes back as `Transmit`s.
//!
//! Never reads a clock and never sleeps: the virtual clock starts at the `t0` the caller gives,
//! the wall clock at `wall0`, and both move only through `run_until`/`advance`.

use super::Engine;
use crate::net::{stamp_received, ConnectionId, Inbound, Origin, Payload, Transport};
use crate::sip::{parse_datagram_bytes, Message, ParseError};
use crate::transaction::Transmit;
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// At most this many timer rounds per `run_until`: a timer that keeps re-arming in the past
/// (a bug the fuzz harness looks for) stops the loop instead of spinning.
const MAX_ROUNDS: usize = 100_000;

/// What the transport hands the engine for `raw` from `source`: the parsed message with its
/// top Via stamped (RFC 3261 §18.2.1, RFC 3581), or the octets and why they did not parse.
pub fn received(parsed: Result<Message, ParseError>, raw: &[u8], source: SocketAddr) -> Payload {
    match parsed {
        Ok(mut m) => {
            if let Message::Request(r) = &mut m {
                // As the transport does; a request without a usable Via is the engine's to
                // reject.
                let _ = stamp_received(&mut r.headers, source);
            }
            Payload::Message(m)
        }
        Err(error) => Payload::Malformed {
            raw: Bytes::copy_from_slice(raw),
            error,
        },
    }
}

/// One engine on a virtual clock.
pub struct Sim {
    pub engine: Engine,
    pub t0: Instant,
    pub now: Instant,
    /// Our socket, as the `local` of every `Origin`.
    pub local: SocketAddr,
    wall0: SystemTime,
}

impl Sim {
    pub fn new(engine: Engine, local: SocketAddr, t0: Instant, wall0: SystemTime) -> Sim {
        Sim {
            engine,
            t0,
            now: t0,
            local,
            wall0,
        }
    }

    /// Wall time moves with the virtual clock.
    pub fn wall(&self) -> SystemTime {
        self.wall0 + (self.now - self.t0)
    }

    /// Hands the engine one received message at the current virtual time.
    pub fn handle(&mut self, payload: Payload, origin: Origin) {
        self.handle_raw(payload, origin, Bytes::new());
    }

    /// `handle` with the message's octets as received (`Inbound::raw`), as the transport
    /// hands them over.
    pub fn handle_raw(&mut self, payload: Payload, origin: Origin, raw: Bytes) {
        let (now, wall) = (self.now, self.wall());
        self.engine.handle_inbound(
            now,
            wall,
            Inbound {
                payload,
                origin,
                raw,
            },
        );
    }

    /// Delivers the datagram (or one framed TCP message) `raw` from `source` as the transport
    /// would, and returns everything the engine sends at once.
    pub fn deliver(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        connection: Option<u64>,
        raw: &[u8],
    ) -> Vec<Transmit> {
        let origin = Origin {
            transport,
            source,
            local: self.local,
            connection: connection.map(ConnectionId),
        };
        let bytes = Bytes::copy_from_slice(raw);
        let payload = received(parse_datagram_bytes(bytes.clone()), raw, source);
        self.handle_raw(payload, origin, bytes);
        self.drain()
    }

    /// Everything the engine has to send now.
    pub fn drain(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.engine.poll_transmit()).collect()
    }

    /// Moves the clock to `until`, firing every timer on its own deadline on the way (a
    /// deadline already past fires "now", as a late driver would). Returns what the timers
    /// sent.
    pub fn run_until(&mut self, until: Instant) -> Vec<Transmit> {
        let mut out = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let Some(deadline) = self.engine.poll_timeout().filter(|d| *d <= until) else {
                break;
            };
            self.now = self.now.max(deadline);
            let (now, wall) = (self.now, self.wall());
            self.engine.handle_timeout(now, wall);
            out.extend(self.drain());
        }
        self.now = self.now.max(until);
        out
    }

    pub fn advance(&mut self, d: Duration) -> Vec<Transmit> {
        self.run_until(self.now + d)
    }
}
