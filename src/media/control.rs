//! The handle the B2BUA drives: [`MediaControl`], one trait for the thread-backed relay
//! (`transport::MediaRelay`) and for [`MemoryRelay`], which applies the same rules
//! to packets and time handed in, so call-flow tests on a virtual clock need no sockets.
//!
//! Calling contract (the module doc of `media` tells when): `allocate` at the offer,
//! `update_side` for every SDP a side sends, `release` at every end of the call,
//! `poll_event` until `None` whenever the driver wakes. `now` is passed in, never read here.
//! Nothing here panics on what a peer sends; unknown sessions are errors, stray packets drops.

use super::pool::{PoolError, PortPair, PortPool};
use super::rewrite::{RtcpPlan, StreamPlan};
use super::sdp::SessionDescription;
use super::stream::{Channel, DropReason, LegStats, SideSignal, StreamRelay, StreamStats, Verdict};
use super::{MediaConfig, Side};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use thiserror::Error;

/// One call's relay (every stream of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "media-{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MediaError {
    /// No port pair left (or none that could be bound): answer 503.
    #[error("RTP port pool exhausted")]
    Exhausted,
    #[error("no such media session {0}")]
    NoSuchSession(SessionId),
    #[error("{0} relays no stream {1}")]
    NoSuchStream(SessionId, usize),
    /// Neither `rtp_ip`, `ext_rtp_ip` nor the SIP leg gave an address to put into SDP.
    #[error("no address to advertise for media (set [media] rtp_ip or ext_rtp_ip)")]
    NoAddress,
    /// A socket could not be bound for a reason other than the port being taken.
    #[error("cannot bind a relay socket: {0}")]
    Bind(String),
}

impl From<PoolError> for MediaError {
    fn from(_: PoolError) -> MediaError {
        MediaError::Exhausted
    }
}

/// Something the B2BUA must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// `side` of `stream` sent nothing for `media_timeout` (or `hold_timeout` on hold):
    /// hang up the call.
    Timeout {
        session: SessionId,
        stream: usize,
        side: Side,
    },
}

/// Our end of one side of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPorts {
    /// The address written into SDP (`ext_rtp_ip`, else the bound one).
    pub addr: IpAddr,
    pub rtp: u16,
    pub rtcp: u16,
}

/// What `allocate` gives: per `m=` line (`None` where no relay was asked for), our ports
/// facing A and facing B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub id: SessionId,
    pub streams: Vec<Option<[LocalPorts; 2]>>,
}

impl Allocation {
    /// Which `m=` lines of an offer need a relay: all but the rejected ones (port 0).
    pub fn wanted(sd: &SessionDescription) -> Vec<bool> {
        sd.media.iter().map(|m| !m.is_rejected()).collect()
    }

    /// Our ports facing `side` in `stream`.
    pub fn ports(&self, stream: usize, side: Side) -> Option<LocalPorts> {
        self.streams.get(stream)?.map(|s| s[side.index()])
    }

    /// The rewrite plans for SDP sent **to** `side` (that phone must send to our ports facing
    /// it). RTCP is always offered on our separate port as well: we listen on both, so the
    /// phone may mux or not.
    pub fn plans(&self, side: Side) -> Vec<Option<StreamPlan>> {
        (0..self.streams.len())
            .map(|i| {
                self.ports(i, side).map(|p| StreamPlan {
                    addr: p.addr,
                    rtp_port: p.rtp,
                    rtcp: RtcpPlan::Port(p.rtcp),
                })
            })
            .collect()
    }
}

/// Counters of every stream of a session, for the CDR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub streams: Vec<Option<StreamStats>>,
}

impl SessionStats {
    /// One leg's counters summed over the streams (`latched` from the first stream).
    pub fn leg(&self, side: Side) -> LegStats {
        let mut sum = LegStats::default();
        for s in self.streams.iter().flatten() {
            let l = match side {
                Side::A => s.a,
                Side::B => s.b,
            };
            sum.rx_packets += l.rx_packets;
            sum.rx_bytes += l.rx_bytes;
            sum.tx_packets += l.tx_packets;
            sum.tx_bytes += l.tx_bytes;
            sum.lost += l.lost;
            sum.dropped += l.dropped;
            sum.unrouted += l.unrouted;
            sum.latched = sum.latched.or(l.latched);
        }
        sum
    }
}

/// The B2BUA's view of a media relay.
pub trait MediaControl {
    /// Ports for a new call: one relay per `true` in `relay` (one entry per `m=` line; see
    /// [`Allocation::wanted`]). `sip_ip` is the local address of the SIP leg, used when
    /// `[media] rtp_ip` is not set. [`MediaError::Exhausted`] → 503.
    fn allocate(&mut self, relay: &[bool], sip_ip: IpAddr) -> Result<Allocation, MediaError>;
    /// `side` sent SDP saying `signal` for `stream` (offer, answer, re-INVITE, UPDATE).
    fn update_side(
        &mut self,
        now: Instant,
        id: SessionId,
        stream: usize,
        side: Side,
        signal: SideSignal,
    ) -> Result<(), MediaError>;
    /// The call ended: close the sockets, give the ports back, final counters.
    fn release(&mut self, id: SessionId) -> Result<SessionStats, MediaError>;
    fn stats(&self, id: SessionId) -> Option<SessionStats>;
    fn poll_event(&mut self) -> Option<MediaEvent>;
    /// The next media deadline of a relay that runs on the caller's clock (the in-memory
    /// relay); a threaded relay times itself and returns `None`.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// Checks the deadlines due at `now` (the in-memory relay); a no-op for the threaded one.
    fn handle_timeout(&mut self, _now: Instant) {}
}

/// Where relay sockets bind and what SDP says, for a leg whose SIP runs on `sip_ip`.
pub fn addresses(config: &MediaConfig, sip_ip: IpAddr) -> Result<(IpAddr, IpAddr), MediaError> {
    let bind = config.rtp_ip.unwrap_or(sip_ip);
    let shown = config
        .ext_rtp_ip
        .unwrap_or(if bind.is_unspecified() { sip_ip } else { bind });
    if shown.is_unspecified() {
        return Err(MediaError::NoAddress);
    }
    Ok((bind, shown))
}

/// The rules of one session: a [`StreamRelay`] per relayed stream.
#[derive(Debug, Clone)]
pub(crate) struct SessionRules {
    pub(crate) streams: Vec<Option<StreamRelay>>,
}

impl SessionRules {
    pub(crate) fn new(config: &MediaConfig, relay: &[bool]) -> SessionRules {
        let make =
            |&r: &bool| r.then(|| StreamRelay::new(config.media_timeout, config.hold_timeout));
        SessionRules {
            streams: relay.iter().map(make).collect(),
        }
    }

    pub(crate) fn update_side(
        &mut self,
        now: Instant,
        id: SessionId,
        stream: usize,
        side: Side,
        signal: SideSignal,
    ) -> Result<(), MediaError> {
        let s = self
            .streams
            .get_mut(stream)
            .and_then(Option::as_mut)
            .ok_or(MediaError::NoSuchStream(id, stream))?;
        s.update_side(now, side, signal);
        Ok(())
    }

    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        id: SessionId,
        out: &mut VecDeque<MediaEvent>,
    ) {
        for (i, s) in self.streams.iter_mut().enumerate() {
            if let Some(s) = s {
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    for side in s.handle_timeout(now) {
                        out.push_back(MediaEvent::Timeout {
                            session: id,
                            stream: i,
                            side,
                        });
                    }
                }
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .iter()
            .flatten()
            .filter_map(StreamRelay::poll_timeout)
            .min()
    }

    pub(crate) fn stats(&self) -> SessionStats {
        SessionStats {
            streams: self
                .streams
                .iter()
                .map(|s| s.as_ref().map(StreamRelay::stats))
                .collect(),
        }
    }
}

/// Which socket of which session a local port is.
#[derive(Debug, Clone, Copy)]
struct PortOwner {
    id: SessionId,
    stream: usize,
    side: Side,
    channel: Channel,
}

#[derive(Debug)]
struct MemSession {
    rules: SessionRules,
    pairs: Vec<PortPair>,
    /// Our ports per stream and side, to send from.
    alloc: Allocation,
    bind: IpAddr,
}

/// A packet to send: from our `from` port to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub from: SocketAddr,
    pub to: SocketAddr,
}

/// The relay without sockets or threads: the same pool and rules, packets and time handed
/// in. For the engine's virtual-clock tests and for checking the rules end to end.
#[derive(Debug)]
pub struct MemoryRelay {
    config: MediaConfig,
    pool: PortPool,
    sessions: BTreeMap<SessionId, MemSession>,
    ports: BTreeMap<u16, PortOwner>,
    next_id: u64,
    events: VecDeque<MediaEvent>,
}

impl MemoryRelay {
    pub fn new(config: MediaConfig) -> MemoryRelay {
        MemoryRelay {
            pool: PortPool::new(config.rtp_ports),
            config,
            sessions: BTreeMap::new(),
            ports: BTreeMap::new(),
            next_id: 1,
            events: VecDeque::new(),
        }
    }

    /// A packet from `src` arrived at our port `to_port`: where to send it, from which of
    /// our ports, or why not.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        to_port: u16,
        src: SocketAddr,
        packet: &[u8],
    ) -> Result<Transmit, DropReason> {
        let owner = *self.ports.get(&to_port).ok_or(DropReason::NoSession)?;
        let session = self
            .sessions
            .get_mut(&owner.id)
            .ok_or(DropReason::NoSession)?;
        let rules = session.rules.streams[owner.stream]
            .as_mut()
            .ok_or(DropReason::NoSession)?;
        match rules.handle_packet(now, owner.side, owner.channel, src, packet) {
            Verdict::Forward { to, via } => {
                let ours = session.alloc.ports(owner.stream, owner.side.other());
                let ours = ours.ok_or(DropReason::NoSession)?;
                let port = match via {
                    Channel::Rtp => ours.rtp,
                    Channel::Rtcp => ours.rtcp,
                };
                Ok(Transmit {
                    from: SocketAddr::new(session.bind, port),
                    to,
                })
            }
            Verdict::Drop(why) => Err(why),
        }
    }

    /// Queues a [`MediaEvent::Timeout`] for every side silent past its limit.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, s) in &mut self.sessions {
            s.rules.handle_timeout(now, *id, &mut self.events);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|s| s.rules.poll_timeout())
            .min()
    }

    /// Port pairs free / in the range.
    pub fn pool_free(&self) -> usize {
        self.pool.free()
    }

    pub fn pool_capacity(&self) -> usize {
        self.pool.capacity()
    }
}

impl MediaControl for MemoryRelay {
    fn allocate(&mut self, relay: &[bool], sip_ip: IpAddr) -> Result<Allocation, MediaError> {
        let (bind, shown) = addresses(&self.config, sip_ip)?;
        let needed = relay.iter().filter(|&&r| r).count() * 2;
        if self.pool.free() < needed {
            return Err(MediaError::Exhausted);
        }
        let id = SessionId(self.next_id);
        self.next_id += 1;
        let mut pairs = Vec::with_capacity(needed);
        let mut streams = Vec::with_capacity(relay.len());
        for (i, &r) in relay.iter().enumerate() {
            if !r {
                streams.push(None);
                continue;
            }
            let mut sides = [LocalPorts {
                addr: shown,
                rtp: 0,
                rtcp: 0,
            }; 2];
            for side in [Side::A, Side::B] {
                let p = self.pool.alloc()?;
                pairs.push(p);
                sides[side.index()] = LocalPorts {
                    addr: shown,
                    rtp: p.rtp,
                    rtcp: p.rtcp(),
                };
                for (port, channel) in [(p.rtp, Channel::Rtp), (p.rtcp(), Channel::Rtcp)] {
                    self.ports.insert(
                        port,
                        PortOwner {
                            id,
                            stream: i,
                            side,
                            channel,
                        },
                    );
                }
            }
            streams.push(Some(sides));
        }
        let alloc = Allocation { id, streams };
        let rules = SessionRules::new(&self.config, relay);
        let session = MemSession {
            rules,
            pairs,
            alloc: alloc.clone(),
            bind,
        };
        self.sessions.insert(id, session);
        Ok(alloc)
    }

    fn update_side(
        &mut self,
        now: Instant,
        id: SessionId,
        stream: usize,
        side: Side,
        signal: SideSignal,
    ) -> Result<(), MediaError> {
        let s = self
            .sessions
            .get_mut(&id)
            .ok_or(MediaError::NoSuchSession(id))?;
        s.rules.update_side(now, id, stream, side, signal)
    }

    fn release(&mut self, id: SessionId) -> Result<SessionStats, MediaError> {
        let s = self
            .sessions
            .remove(&id)
            .ok_or(MediaError::NoSuchSession(id))?;
        for p in &s.pairs {
            self.ports.remove(&p.rtp);
            self.ports.remove(&p.rtcp());
            // Cannot fail: the pairs came from this pool and leave it once.
            let _ = self.pool.release(*p);
        }
        self.events
            .retain(|e| !matches!(e, MediaEvent::Timeout { session, .. } if *session == id));
        Ok(s.rules.stats())
    }

    fn stats(&self, id: SessionId) -> Option<SessionStats> {
        self.sessions.get(&id).map(|s| s.rules.stats())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        MemoryRelay::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        MemoryRelay::handle_timeout(self, now)
    }

    fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
