//! Media anchoring (issue 11): the B2BUA relays RTP and RTCP through ports of its own, so two
//! phones behind different NATs hear each other. What is here, by layer:
//!
//! - [`sdp`] parses an SDP body (RFC 4566, RFC 3264) into what the relay needs and
//!   [`rewrite`] writes our address and ports into it, bumping `o=` only when our SDP for a
//!   leg changes (RFC 3264 §8) through a per-leg [`LegOrigin`];
//! - [`pool`] hands out even RTP / odd RTCP port pairs from `[media] rtp_ports`;
//! - [`stream`] and [`loss`] hold the relay rules of one stream: symmetric-RTP latching with
//!   RTP-bleed protection, counters, loss from sequence numbers, the media timeout;
//! - [`control`] is the handle the B2BUA drives ([`MediaControl`]), with the in-memory
//!   implementation [`MemoryRelay`] for virtual-clock tests;
//! - the socket side lives in the transport layer: `transport::MediaRelay`, worker threads
//!   forwarding with `recvmmsg`/`sendmmsg` and epoll.
//!
//! Everything here is sans-IO: no sockets, no threads, no clock reads (`now` is passed
//! in), no tokio (`tests/layering.rs` checks it). No file here ever panics on what a peer
//! sends: a malformed SDP is an [`SdpError`], a stray packet is dropped and counted.
//!
//! # How the B2BUA uses it
//!
//! With `[media] mode = "bypass"` none of this runs: SDP passes untouched. With `"relay"`:
//!
//! 1. **Offer from the caller** (INVITE with SDP, side [`Side::A`]): parse it with
//!    [`SessionDescription::parse`] (error → 488 Not Acceptable Here). Call
//!    [`MediaControl::allocate`] with one entry per `m=` line that is not rejected (port 0
//!    lines get no relay) and the local address of the SIP leg; [`MediaError::Exhausted`] →
//!    503 with Retry-After. Call [`MediaControl::update_side`] for side A with
//!    [`SideSignal::from_sdp`] of each stream. Rewrite the offer for the callee with
//!    [`rewrite`], the plans from [`Allocation::plan`] for side **B** (the callee talks to
//!    our B ports) and the b-leg's [`LegOrigin`].
//! 2. **Answer from the callee** (18x/2xx with SDP, side B): `update_side(B, …)`, then rewrite
//!    the answer for the caller with the plans of side **A** and the a-leg's `LegOrigin`.
//!    An answer that rejects a stream (port 0) is passed with port 0; the stream's relay may
//!    stay allocated until the call ends.
//! 3. **re-INVITE / UPDATE** from either side: parse, `update_side` for the sender's side (hold
//!    and resume keep the ports: only the direction changes; a new address is followed and
//!    relearned), rewrite towards the other side with that side's plans. Reuse each leg's
//!    `LegOrigin`, so `o=` stays and its version moves only when the body changes. A re-offer
//!    with more `m=` lines than allocated: release and allocate anew (not done in place yet).
//! 4. **Forking**: one allocation per early dialog (or per b-leg) carrying SDP; when one wins,
//!    keep its allocation and `release` the others.
//! 5. **Every end of a call** (BYE, CANCEL, failure, timeout, shutdown): `release`, which
//!    returns the ports and the final [`SessionStats`] for the CDR.
//! 6. **Events**: drain [`MediaControl::poll_event`] (the thread-backed relay queues them; a
//!    driver polls at least once a second): [`MediaEvent::Timeout`] → BYE both legs.

pub mod control;
pub mod loss;
pub mod pool;
pub mod rewrite;
pub mod sdp;
pub mod stream;

#[cfg(test)]
mod corpus_tests;

pub use control::{
    addresses, Allocation, LocalPorts, MediaControl, MediaError, MediaEvent, MemoryRelay,
    SessionId, SessionStats, Transmit,
};
pub use pool::{PoolError, PortPair, PortPool};
pub use rewrite::{rewrite, LegOrigin, RtcpPlan, StreamPlan};
pub use sdp::{Connection, Direction, MediaDescription, SdpError, SessionDescription};
pub use stream::{Channel, DropReason, LegStats, SideSignal, StreamRelay, StreamStats, Verdict};

use std::net::IpAddr;
use std::time::Duration;

/// Which leg of the call a relay side faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller (the a-leg, whose INVITE came in).
    A,
    /// The callee (the b-leg we sent the INVITE on).
    B,
}

impl Side {
    /// The other leg: where packets received from this side go.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// `[media] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaMode {
    /// Anchor RTP: rewrite SDP, relay through our ports (the default).
    #[default]
    Relay,
    /// SDP untouched, media flows phone to phone (FreeSWITCH's `bypass_media`).
    Bypass,
}

/// An inclusive range of UDP ports for RTP: starts even, holds at least one even/odd pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// Lowest port an operator may give: below are the well-known and registered services.
    pub const MIN: u16 = 1024;

    /// `first..=last` if it is inside 1024–65535, starts even and holds at least one pair.
    pub fn new(first: u16, last: u16) -> Result<PortRange, String> {
        if first < Self::MIN {
            return Err(format!("{first} is below {}", Self::MIN));
        }
        if !first.is_multiple_of(2) {
            return Err(format!("must start on an even port (RTP), not {first}"));
        }
        if last <= first {
            return Err(format!(
                "{first}-{last} holds no even/odd pair (RTP + RTCP)"
            ));
        }
        Ok(PortRange { first, last })
    }

    pub fn first(&self) -> u16 {
        self.first
    }

    pub fn last(&self) -> u16 {
        self.last
    }

    /// How many RTP/RTCP pairs fit (an odd last port closes a pair, an even one is unused).
    pub fn pairs(&self) -> u32 {
        (u32::from(self.last) - u32::from(self.first)).div_ceil(2)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;

    /// `"16384-32767"`.
    fn from_str(s: &str) -> Result<PortRange, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not a range like \"16384-32767\""))?;
        let port = |x: &str| {
            x.trim()
                .parse::<u16>()
                .map_err(|_| format!("{:?} is not a port (1024 to 65535)", x.trim()))
        };
        PortRange::new(port(a)?, port(b)?)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// What the media relay needs from `[media]`: a plain type the engine can take without
/// knowing the config file (`config` builds it, `app::engine_config` hands it over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    pub mode: MediaMode,
    /// Even/odd pairs for relay sockets (default 16384-32767, FreeSWITCH's range).
    pub rtp_ports: PortRange,
    /// Where relay sockets bind. `None`: the local address of the SIP leg of the call.
    pub rtp_ip: Option<IpAddr>,
    /// The address written into SDP when it is not the bound one (1:1 NAT, like
    /// FreeSWITCH's `ext-rtp-ip`).
    pub ext_rtp_ip: Option<IpAddr>,
    /// A side that should be sending and has sent no RTP/RTCP this long: time out the call.
    pub media_timeout: Duration,
    /// The same while the stream is on hold (a side signalled sendonly, recvonly or inactive).
    pub hold_timeout: Duration,
    /// Relay worker threads; 0 = one per core.
    pub threads: usize,
}

impl MediaConfig {
    pub const DEFAULT_PORTS: PortRange = PortRange {
        first: 16384,
        last: 32767,
    };
    pub const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_HOLD_TIMEOUT: Duration = Duration::from_secs(1800);
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            mode: MediaMode::Relay,
            rtp_ports: MediaConfig::DEFAULT_PORTS,
            rtp_ip: None,
            ext_rtp_ip: None,
            media_timeout: MediaConfig::DEFAULT_MEDIA_TIMEOUT,
            hold_timeout: MediaConfig::DEFAULT_HOLD_TIMEOUT,
            threads: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_start_even_and_hold_a_pair() {
        let r: PortRange = "16384-32767".parse().unwrap();
        assert_eq!((r.first(), r.last(), r.pairs()), (16384, 32767, 8192));
        assert_eq!("2000-2001".parse::<PortRange>().unwrap().pairs(), 1);
        assert_eq!("2000-2002".parse::<PortRange>().unwrap().pairs(), 1);
        for bad in [
            "2001-3000",
            "1000-2000",
            "2000-2000",
            "3000-2000",
            "x-2",
            "2000",
            "2000-70000",
        ] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }
}
