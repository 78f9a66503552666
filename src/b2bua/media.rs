//! Media anchoring in the call (issue 11): with `[media] mode = "relay"` every SDP body that
//! crosses from one leg to the other is rewritten to name the switch's relay ports, so each
//! phone sends its RTP to us and we forward it (latching onto where it really comes from: two
//! phones behind two NATs hear each other). The relay itself (`crate::media`) does the SDP
//! arithmetic and the forwarding; this file decides when: the first offer of a call allocates
//! one relay session (the caller's INVITE, or the callee's 2xx for a late offer); each body
//! from a phone updates that side's signalled address and direction, then goes to the other
//! side rewritten with our ports facing it and that leg's own `o=` line (its version moves
//! only when our body changes, RFC 3264 §8); every end of the call releases the ports and
//! puts the counters into the CDR; a media timeout hangs the call up (MEDIA_TIMEOUT).
//!
//! Not done yet: several forks sending early media share the callee-facing ports (the last
//! answer's address is followed); a re-offer with more `m=` lines than the first offer relays
//! only the first ones.

use super::core::B2bua;
use super::{CallId, LegRef, Reject};
use crate::cdr::{CdrLeg, CdrMedia, HangupCause, Side as CdrSide};
use crate::media::{
    rewrite, Allocation, LegOrigin, MediaControl, MediaError, MediaEvent, SessionDescription,
    SessionId, SessionStats, Side, SideSignal,
};
use crate::sip::{HeaderName, Headers};
use bytes::Bytes;
use rand::Rng;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

/// One call's relay session and the `o=` line of each leg.
#[derive(Debug)]
pub struct CallMedia {
    pub alloc: Allocation,
    /// The SDP origin we present to the caller (index 0) and to the callee (index 1).
    pub origins: [LegOrigin; 2],
    /// The last body we sent each leg: what an RFC 4028 refresh offers again.
    pub last_sent: [Option<Bytes>; 2],
}

/// The relay-side name of a leg.
pub(super) fn side_of(leg: LegRef) -> Side {
    match leg {
        LegRef::A => Side::A,
        LegRef::B(_) => Side::B,
    }
}

/// Whether a message's body is SDP (no Content-Type with a body means SDP, RFC 3261 §20.15).
pub(super) fn is_sdp(headers: &Headers, body: &[u8]) -> bool {
    if body.is_empty() {
        return false;
    }
    match headers.get_str(&HeaderName::ContentType) {
        None => true,
        Some(ct) => ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp")),
    }
}

impl B2bua {
    /// Relay sessions open now.
    pub fn media_sessions(&self) -> usize {
        self.media_calls.len()
    }

    /// Whether media is anchored (`[media] mode = "relay"` and a relay was given).
    pub fn anchors_media(&self) -> bool {
        self.media.is_some()
    }

    /// The first offer of a new call, from the caller: a relay session and the body for the
    /// callee. `Ok(None)` when nothing is anchored (bypass, no SDP, late offer).
    pub(super) fn anchor_new_offer(
        &mut self,
        now: Instant,
        sip_ip: IpAddr,
        headers: &Headers,
        body: &Bytes,
    ) -> Result<Option<(Box<CallMedia>, Bytes)>, Reject> {
        if self.media.is_none() || !is_sdp(headers, body) {
            return Ok(None);
        }
        let sd = SessionDescription::parse(body).map_err(|e| {
            tracing::info!(target: "ferroswitch::media", e = %crate::security::log_escape(&e), "offer refused: unreadable SDP");
            Reject::NotAcceptableHere
        })?;
        let mut media = self.allocate(sip_ip, &sd)?;
        let out = self.apply(now, &mut media, Side::A, &sd, body);
        Ok(Some((media, out)))
    }

    fn allocate(
        &mut self,
        sip_ip: IpAddr,
        sd: &SessionDescription,
    ) -> Result<Box<CallMedia>, Reject> {
        let origins = [
            LegOrigin::new(self.rng.gen_range(1..u64::from(u32::MAX))),
            LegOrigin::new(self.rng.gen_range(1..u64::from(u32::MAX))),
        ];
        let Some(relay) = self.media.as_mut() else {
            return Err(Reject::Unavailable);
        };
        match relay.allocate(&Allocation::wanted(sd), sip_ip) {
            Ok(alloc) => Ok(Box::new(CallMedia {
                alloc,
                origins,
                last_sent: [None, None],
            })),
            Err(MediaError::Exhausted) => {
                tracing::warn!(target: "ferroswitch::media", "RTP port pool exhausted: call refused with 503");
                Err(Reject::NoMediaPorts)
            }
            Err(e) => {
                tracing::warn!(target: "ferroswitch::media", %e, "no media relay for the call: refused with 503");
                Err(Reject::NoMediaPorts)
            }
        }
    }

    /// `body` (parsed as `sd`) came from `from`'s phone: follow its addresses and direction,
    /// and return it rewritten for the other leg. A body that cannot be rewritten goes as
    /// it came (logged): the call is not torn down over SDP we do not understand.
    fn apply(
        &mut self,
        now: Instant,
        media: &mut CallMedia,
        from: Side,
        sd: &SessionDescription,
        body: &Bytes,
    ) -> Bytes {
        let Some(relay) = self.media.as_mut() else {
            return body.clone();
        };
        let id = media.alloc.id;
        for i in 0..sd.media.len().min(media.alloc.streams.len()) {
            if media.alloc.streams[i].is_none() {
                continue;
            }
            if let Err(e) = relay.update_side(now, id, i, from, SideSignal::from_sdp(sd, i)) {
                tracing::debug!(target: "ferroswitch::media", session = %id, stream = i, %e, "relay not updated");
            }
        }
        let to = from.other();
        let mut plans = media.alloc.plans(to);
        plans.resize(sd.media.len(), None);
        match rewrite(body, &plans, &mut media.origins[to.index()]) {
            Ok(out) => {
                let out = Bytes::from(out);
                media.last_sent[to.index()] = Some(out.clone());
                out
            }
            Err(e) => {
                tracing::info!(target: "ferroswitch::media", session = %id, e = %crate::security::log_escape(&e), "SDP passed unchanged");
                body.clone()
            }
        }
    }

    /// SDP from `leg`'s phone in call `id`, on its way to the other leg: rewritten when the
    /// call's media is anchored. The first SDP of a late-offer call (the callee's offer in
    /// its 2xx) allocates the relay here.
    pub(super) fn anchor(
        &mut self,
        now: Instant,
        id: CallId,
        leg: LegRef,
        headers: &Headers,
        body: &Bytes,
    ) -> Bytes {
        if self.media.is_none() && is_sdp(headers, body) {
            // Bypass: remembered for a transfer, which offers it to the new party.
            if let Some(call) = self.calls.get_mut(id) {
                call.bypass_sdp[side_of(leg).index()] = Some(Bytes::copy_from_slice(body));
            }
        }
        if self.media.is_none() || !is_sdp(headers, body) {
            return body.clone();
        }
        let Ok(sd) = SessionDescription::parse(body) else {
            tracing::info!(target: "ferroswitch::media", call = id, "unreadable SDP passed unchanged");
            return body.clone();
        };
        let Some(call) = self.calls.get_mut(id) else {
            return body.clone();
        };
        let mut media = match call.media.take() {
            Some(m) => m,
            None => {
                let sip_ip = call.media_ip;
                match self.allocate(sip_ip, &sd) {
                    Ok(m) => {
                        self.media_calls.insert(m.alloc.id, id);
                        m
                    }
                    // No ports for a late offer: the body goes as it is (media unanchored).
                    Err(_) => return body.clone(),
                }
            }
        };
        let out = self.apply(now, &mut media, side_of(leg), &sd, body);
        if let Some(call) = self.calls.get_mut(id) {
            call.media = Some(media);
        }
        out
    }

    /// Gives the call's relay ports back; its counters, for the CDR. Idempotent.
    pub(super) fn release_media(&mut self, id: CallId) -> Option<SessionStats> {
        let media = self.calls.get_mut(id)?.media.take()?;
        self.media_calls.remove(&media.alloc.id);
        let relay = self.media.as_mut()?;
        match relay.release(media.alloc.id) {
            Ok(stats) => Some(stats),
            Err(e) => {
                tracing::debug!(target: "ferroswitch::media", call = id, %e, "release");
                None
            }
        }
    }

    /// Media timeouts (and the relay's clock, for the in-memory relay of tests).
    pub fn handle_media(&mut self, now: Instant, wall: SystemTime) {
        let Some(relay) = self.media.as_mut() else {
            return;
        };
        relay.handle_timeout(now);
        let mut events = Vec::new();
        while let Some(ev) = relay.poll_event() {
            events.push(ev);
        }
        for ev in events {
            match ev {
                MediaEvent::Timeout {
                    session,
                    stream,
                    side,
                } => self.media_timeout(wall, session, stream, side),
            }
        }
    }

    fn media_timeout(&mut self, wall: SystemTime, session: SessionId, stream: usize, side: Side) {
        let Some(&id) = self.media_calls.get(&session) else {
            return;
        };
        let _span = self.enter(id);
        tracing::info!(target: "ferroswitch::call", call = id, stream, ?side, "media timeout: no RTP");
        if self.calls.get(id).is_some_and(|c| c.end.is_none()) {
            self.hang_up(wall, id, CdrSide::System, HangupCause::MediaTimeout);
        }
    }

    /// The relay's next deadline (the in-memory relay of tests; the threaded relay times
    /// itself and reports through `handle_media`).
    pub fn media_timeout_at(&self) -> Option<Instant> {
        self.media.as_ref().and_then(|m| m.poll_timeout())
    }
}

/// Per-leg media figures for the CDR.
pub(super) fn cdr_media(stats: &SessionStats) -> CdrMedia {
    let leg = |side: Side| {
        let l = stats.leg(side);
        CdrLeg {
            rx_packets: l.rx_packets,
            rx_bytes: l.rx_bytes,
            tx_packets: l.tx_packets,
            tx_bytes: l.tx_bytes,
            lost: l.lost,
        }
    };
    CdrMedia {
        caller: leg(Side::A),
        callee: leg(Side::B),
    }
}

/// The relay a call core drives.
pub type RelayHandle = Box<dyn MediaControl + Send>;
