//! The relay rules of one stream (one `m=` line), sans-IO: what to do with a packet that
//! arrived on one side's port, and when a side has gone silent.
//!
//! **Latching** (symmetric RTP, "comedia"): a phone behind NAT sends from an address its SDP
//! does not know, and can only be reached back at that address. Each path (RTP, and RTCP
//! unless muxed) of each side learns it from the packets themselves.
//!
//! **RTP bleed** (CVE-2017-14099 and kin): anyone who sprays our ports must not be able to
//! take over a stream. So latching happens only inside a window that opens with the first
//! packet a path receives and closes after [`LATCH_PACKETS`] packets from the latched source
//! or [`LATCH_WINDOW`], whichever comes first; after it only the latched source is accepted.
//! Within the window the first source latches. When the SDP named a public address, only
//! that IP may latch (a NAT may still change the port), and a packet from exactly the
//! signalled address always wins (relatches) while the window is open, so a sprayer cannot
//! take a reachable phone's stream; a private signalled address (the phone is behind NAT)
//! says nothing about where packets will come from, so the first source wins there. The
//! RTCP port latches only after RTP did and only from RTP's IP (RTCP comes every few seconds,
//! so a sprayer would otherwise be first there). A new address in the phone's SDP (re-INVITE
//! after a network change) reopens the window; the same address again (hold, resume) or none
//! (`c=0.0.0.0` hold) keeps the latch. Only RTP/RTCP version 2 packets can latch or be
//! forwarded. Everything refused is dropped and counted, never forwarded.
//!
//! **Media timeout**: a side that has signalled SDP and sent neither RTP nor RTCP for
//! `media_timeout` times out once (until it sends again or signals anew); while the stream
//! is held (either side sendonly, recvonly or inactive) the limit is `hold_timeout`, since a
//! held phone may rightly be silent. Changing hold state restarts both sides' clocks.

use super::loss::{is_rtcp, rtp_header, SeqCounter};
use super::sdp::{Direction, SessionDescription};
use super::Side;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Packets from the latched source after which the latch is final.
pub const LATCH_PACKETS: u32 = 16;
/// Time after a path's first packet after which the latch is final (at 50 packets/s,
/// [`LATCH_PACKETS`] come first; the time limit covers slow or sparse streams and RTCP).
pub const LATCH_WINDOW: Duration = Duration::from_secs(2);

/// Which of our two sockets of a side a packet arrived on or leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Rtp,
    Rtcp,
}

/// What one side's latest SDP says about this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideSignal {
    /// Where it wants RTP (`None`: hold address, host name or rejected).
    pub rtp: Option<SocketAddr>,
    /// Where it wants RTCP (the RTP address with rtcp-mux).
    pub rtcp: Option<SocketAddr>,
    pub mux: bool,
    pub direction: Direction,
}

impl SideSignal {
    /// Stream `i` of a parsed SDP.
    pub fn from_sdp(sd: &SessionDescription, i: usize) -> SideSignal {
        SideSignal {
            rtp: sd.rtp_addr(i),
            rtcp: sd.rtcp_addr(i),
            mux: sd.media.get(i).is_some_and(|m| m.rtcp_mux),
            direction: sd.direction(i),
        }
    }
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// From a source other than the latched one (RTP bleed, a stray, an old call).
    Unlatched,
    /// Not RTP/RTCP version 2.
    NotRtp,
    /// The other side has no address yet (no SDP, nothing latched).
    NoDestination,
    /// Sent to a port no session holds (any more).
    NoSession,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it to `to` from the other side's `via` socket.
    Forward {
        to: SocketAddr,
        via: Channel,
    },
    Drop(DropReason),
}

/// Counters of one leg: what came from its phone and what went to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// RTP packets from the phone lost on the way (from sequence numbers).
    pub lost: u64,
    /// Packets refused as from the wrong source or not RTP.
    pub dropped: u64,
    /// Accepted packets that had nowhere to go yet.
    pub unrouted: u64,
    /// Where its RTP comes from, once latched.
    pub latched: Option<SocketAddr>,
}

/// Both legs of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub a: LegStats,
    pub b: LegStats,
}

/// One path's latch.
#[derive(Debug, Clone, Copy, Default)]
struct Latch {
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    /// When the window opened (the path's first packet).
    opened: Option<Instant>,
    /// Packets accepted from the latched source so far.
    accepted: u32,
}

impl Latch {
    fn window_open(&self, now: Instant) -> bool {
        let Some(t) = self.opened else {
            return true;
        };
        // While a public signalled address has not been heard from, packets from whoever
        // latched first do not close the window: only time does.
        let settled = self.latched.is_some() && self.latched == self.signalled
            || !self.signalled.is_some_and(|s| is_public(s.ip()));
        (self.accepted < LATCH_PACKETS || !settled)
            && now.saturating_duration_since(t) < LATCH_WINDOW
    }

    /// Whether a packet from `src` is accepted, latching as the window allows.
    fn accept(&mut self, now: Instant, src: SocketAddr) -> bool {
        if self.latched == Some(src) {
            self.accepted = self.accepted.saturating_add(1);
            return true;
        }
        if !self.window_open(now) {
            return false;
        }
        let signalled_public = self.signalled.is_some_and(|s| is_public(s.ip()));
        if signalled_public && self.signalled.map(|s| s.ip()) != Some(src.ip()) {
            return false;
        }
        let take = self.latched.is_none() || (signalled_public && self.signalled == Some(src));
        if take {
            self.opened.get_or_insert(now);
            self.latched = Some(src);
            self.accepted = 1;
        }
        take
    }

    /// Where to send to this path: the learned source, else the SDP's address.
    fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    fn signal(&mut self, addr: Option<SocketAddr>) {
        if self.signalled != addr {
            *self = Latch {
                signalled: addr,
                ..Latch::default()
            };
        }
    }
}

/// An address a phone on the Internet could have: not private, loopback, link-local, CGNAT,
/// ULA or unspecified. Only such a signalled address outranks a latched source.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // Shared address space behind carrier-grade NAT (RFC 6598).
                || (o[0] == 100 && (64..128).contains(&o[1]))
                // The benchmarking range (RFC 2544), used for private lab networks and not
                // routed on the internet (IANA special-purpose registry: not global).
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                // "This network" and the reserved class E block.
                || o[0] == 0
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[derive(Debug, Clone, Default)]
struct SideState {
    signal: Option<SideSignal>,
    rtp: Latch,
    rtcp: Latch,
    seq: SeqCounter,
    stats: LegStats,
    /// Last packet accepted from it, or last signal.
    active_at: Option<Instant>,
    timed_out: bool,
}

impl SideState {
    fn mux(&self) -> bool {
        self.signal.is_some_and(|s| s.mux)
    }

    /// Where this phone's RTCP goes: its latched RTCP source; before that, when RTP latched
    /// to another IP than the SDP's (behind NAT), the guess RTP source port + 1; else the SDP.
    fn rtcp_destination(&self) -> Option<SocketAddr> {
        if let Some(l) = self.rtcp.latched {
            return Some(l);
        }
        match (self.rtp.latched, self.rtcp.signalled) {
            (Some(rtp), sig) if sig.is_none_or(|s| s.ip() != rtp.ip()) => {
                Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
            }
            (_, sig) => sig,
        }
    }
}

/// The rules of one relayed stream (see the module doc).
#[derive(Debug, Clone)]
pub struct StreamRelay {
    sides: [SideState; 2],
    media_timeout: Duration,
    hold_timeout: Duration,
}

impl StreamRelay {
    pub fn new(media_timeout: Duration, hold_timeout: Duration) -> StreamRelay {
        StreamRelay {
            sides: Default::default(),
            media_timeout,
            hold_timeout,
        }
    }

    /// Held: some side's SDP says it will not both send and receive.
    fn held(&self) -> bool {
        self.sides
            .iter()
            .any(|s| s.signal.is_some_and(|g| g.direction != Direction::SendRecv))
    }

    /// `side` sent SDP (offer, answer, re-INVITE, UPDATE) saying `signal` for this stream.
    pub fn update_side(&mut self, now: Instant, side: Side, signal: SideSignal) {
        let was_held = self.held();
        let s = &mut self.sides[side.index()];
        // No address (an old-style c=0.0.0.0 hold, or a host name) says nothing new about
        // where the phone is: keep what was signalled and learned, only the direction moves.
        if signal.rtp.is_some() {
            s.rtp.signal(signal.rtp);
            s.rtcp
                .signal(if signal.mux { signal.rtp } else { signal.rtcp });
        }
        s.signal = Some(signal);
        s.active_at = Some(now);
        s.timed_out = false;
        if self.held() != was_held {
            for s in &mut self.sides {
                if s.signal.is_some() {
                    s.active_at = Some(now);
                    s.timed_out = false;
                }
            }
        }
    }

    /// A packet arrived from `src` on `side`'s `channel` socket.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        side: Side,
        channel: Channel,
        src: SocketAddr,
        packet: &[u8],
    ) -> Verdict {
        let (from, to) = match side {
            Side::A => {
                let [a, b] = &mut self.sides;
                (a, b)
            }
            Side::B => {
                let [a, b] = &mut self.sides;
                (b, a)
            }
        };
        if packet.len() < 8 || packet[0] >> 6 != 2 {
            from.stats.dropped += 1;
            return Verdict::Drop(DropReason::NotRtp);
        }
        let rtcp = channel == Channel::Rtcp || is_rtcp(packet);
        // Muxed RTCP (or RTCP on the RTP port at all) latches with RTP: same NAT mapping.
        // The RTCP port latches only behind RTP and only from the IP RTP latched to: RTCP
        // comes every few seconds, so a sprayer would otherwise always be first there.
        let accepted = match channel {
            Channel::Rtp => from.rtp.accept(now, src),
            Channel::Rtcp => {
                from.rtp.latched.is_some_and(|l| l.ip() == src.ip()) && from.rtcp.accept(now, src)
            }
        };
        if !accepted {
            from.stats.dropped += 1;
            return Verdict::Drop(DropReason::Unlatched);
        }
        from.stats.rx_packets += 1;
        from.stats.rx_bytes += packet.len() as u64;
        from.stats.latched = from.rtp.latched;
        from.active_at = Some(now);
        from.timed_out = false;
        if !rtcp {
            if let Some((ssrc, seq)) = rtp_header(packet) {
                from.seq.update(ssrc, seq);
                from.stats.lost = from.seq.lost();
            }
        }
        let dest = if !rtcp || to.mux() {
            to.rtp.destination().map(|d| (d, Channel::Rtp))
        } else {
            to.rtcp_destination().map(|d| (d, Channel::Rtcp))
        };
        match dest {
            Some((to_addr, via)) => {
                to.stats.tx_packets += 1;
                to.stats.tx_bytes += packet.len() as u64;
                Verdict::Forward { to: to_addr, via }
            }
            None => {
                from.stats.unrouted += 1;
                Verdict::Drop(DropReason::NoDestination)
            }
        }
    }

    fn limit(&self) -> Duration {
        if self.held() {
            self.hold_timeout
        } else {
            self.media_timeout
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let limit = self.limit();
        self.sides
            .iter()
            .filter(|s| !s.timed_out)
            .filter_map(|s| s.active_at.and_then(|t| t.checked_add(limit)))
            .min()
    }

    /// Sides silent past their limit at `now`, each reported once.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Side> {
        let limit = self.limit();
        let mut out = Vec::new();
        for (side, s) in [Side::A, Side::B].into_iter().zip(self.sides.iter_mut()) {
            if s.timed_out || s.signal.is_none() {
                continue;
            }
            let due = s.active_at.and_then(|t| t.checked_add(limit));
            if due.is_some_and(|due| now >= due) {
                s.timed_out = true;
                out.push(side);
            }
        }
        out
    }

    pub fn stats(&self) -> StreamStats {
        StreamStats {
            a: self.sides[0].stats,
            b: self.sides[1].stats,
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
