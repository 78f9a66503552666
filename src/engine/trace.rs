//! The SIP of recent calls, kept for `ferroswitch ctl trace` (issue 13's ladder diagram):
//! every message received and every transmit that left `poll_transmit`, grouped by call
//! across both legs (the a-leg Call-ID and each b-leg Call-ID), including the messages that
//! came before the call existed (the first INVITE, its stateless 407 and the ACK) with the
//! same a-leg Call-ID.
//!
//! Sans-IO and cheap: one hash lookup per message, `Bytes` clones (refcounted), and bounds on
//! everything: the last `calls` calls and `max_bytes` of message octets, calls that failed
//! (a non-2xx final answer to the caller) kept in preference to the others; the messages of
//! Call-IDs not (yet) part of a call sit in a small buffer bounded by count and age. With
//! `calls = 0` it records nothing. It never reads a clock or a socket, never parses more than
//! a header line of what it stores, and never changes a message.

use crate::b2bua::CallId;
use crate::net::Transport;
use crate::FastMap;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// `[trace]`: how much SIP of recent calls the daemon keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceConfig {
    /// Calls kept; 0: tracing off.
    pub calls: usize,
    /// Octets of messages kept over all calls.
    pub max_bytes: usize,
}

impl Default for TraceConfig {
    fn default() -> TraceConfig {
        TraceConfig {
            calls: 200,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Call-IDs seen in an out-of-dialog INVITE but not (yet) part of a call: at most this many,
/// for at most `PENDING_AGE`, with at most `PENDING_MESSAGES` messages each.
const PENDING_CALL_IDS: usize = 256;
const PENDING_AGE: Duration = Duration::from_secs(32);
const PENDING_MESSAGES: usize = 16;

/// What a new call's buffer is made with: about a whole call's messages (~19 of ~700 octets).
const BUFFER: usize = 16 * 1024;
/// Buffers of evicted calls kept for the next calls (at most this many, each at most
/// `4 * BUFFER`): in steady state a traced call allocates no buffer at all.
const SPARE_BUFFERS: usize = 64;

/// Which way a message went, seen from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// One message as it crosses the wire, as the engine hands it to the store (borrowed: the
/// store copies what it keeps).
#[derive(Debug, Clone, Copy)]
pub struct Traced<'a> {
    pub wall: SystemTime,
    pub direction: Direction,
    pub transport: Transport,
    /// Where it came from (in) or went to (out).
    pub remote: SocketAddr,
    /// Our socket, when known (messages received).
    pub local: Option<SocketAddr>,
    pub call_id: &'a str,
    pub bytes: &'a [u8],
}

/// One message kept: where it went and where its octets are in its call's buffer
/// (`CallTrace::bytes_of`, `CallTrace::call_id_of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    pub wall: SystemTime,
    pub direction: Direction,
    pub transport: Transport,
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    /// The message: `buf[at.0..at.1]`.
    at: (u32, u32),
    /// Its Call-ID: `buf[call_id.0..call_id.1]` when it lies in the message (it always does
    /// for what the engine records), else the index of a copy in `CallTrace::extra_ids`.
    call_id: CallIdAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallIdAt {
    In(u32, u32),
    /// 0: the a-leg Call-ID; i + 1: `b_call_ids[i]`; otherwise unknown.
    Leg(usize),
}

/// Records and their octets: a call's, or a Call-ID's before its call exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Kept {
    records: Vec<TraceRecord>,
    /// Every record's octets, one after the other: one buffer per call instead of one per
    /// message, handed on to a later call when this one is evicted.
    buf: Vec<u8>,
}

impl Kept {
    fn push(&mut self, m: &Traced<'_>, other_leg: impl Fn(&str) -> Option<usize>) {
        let start = self.buf.len();
        self.buf.extend_from_slice(m.bytes);
        let end = self.buf.len();
        // The Call-ID as a slice of the message (what the engine hands over), or found in it.
        let found = offset_in(m.bytes, m.call_id).or_else(|| {
            header_value(m.bytes, &["call-id", "i"])
                .filter(|v| *v == m.call_id)
                .and_then(|v| offset_in(m.bytes, v))
        });
        let call_id = match found {
            Some((a, b)) => CallIdAt::In((start + a) as u32, (start + b) as u32),
            None => CallIdAt::Leg(other_leg(m.call_id).unwrap_or(usize::MAX)),
        };
        self.records.push(TraceRecord {
            wall: m.wall,
            direction: m.direction,
            transport: m.transport,
            remote: m.remote,
            local: m.local,
            at: (start as u32, end as u32),
            call_id,
        });
    }

    fn bytes_of(&self, r: &TraceRecord) -> &[u8] {
        self.buf
            .get(r.at.0 as usize..r.at.1 as usize)
            .unwrap_or_default()
    }

    fn call_id_in(&self, r: &TraceRecord) -> Option<&str> {
        match r.call_id {
            CallIdAt::In(a, b) => std::str::from_utf8(self.buf.get(a as usize..b as usize)?).ok(),
            CallIdAt::Leg(_) => None,
        }
    }
}

/// Where `part` (a slice of `whole`) lies in `whole`.
fn offset_in(whole: &[u8], part: &str) -> Option<(usize, usize)> {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    (p >= w && p + part.len() <= w + whole.len()).then(|| (p - w, p - w + part.len()))
}

/// The messages of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTrace {
    pub id: CallId,
    pub a_call_id: String,
    pub b_call_ids: Vec<String>,
    /// The first final status we sent the caller for its INVITE, once sent.
    pub status: Option<u16>,
    kept: Kept,
    /// Messages not kept because the byte bound was reached by this call alone.
    pub dropped: usize,
    bytes: usize,
}

impl CallTrace {
    fn failed(&self) -> bool {
        self.status.is_some_and(|s| s >= 300)
    }

    /// The messages kept, oldest first.
    pub fn records(&self) -> &[TraceRecord] {
        &self.kept.records
    }

    /// The octets of record `r` (one of `records()`), as received or sent.
    pub fn bytes_of(&self, r: &TraceRecord) -> &[u8] {
        self.kept.bytes_of(r)
    }

    /// The Call-ID of record `r`.
    pub fn call_id_of(&self, r: &TraceRecord) -> &str {
        if let Some(c) = self.kept.call_id_in(r) {
            return c;
        }
        match r.call_id {
            CallIdAt::Leg(0) => &self.a_call_id,
            CallIdAt::Leg(i) => self.b_call_ids.get(i - 1).map_or("", String::as_str),
            CallIdAt::In(..) => "",
        }
    }

    /// Octets kept for this call.
    pub fn octets(&self) -> usize {
        self.bytes
    }
}

#[derive(Debug)]
struct Pending {
    since: Instant,
    kept: Kept,
}

/// The store (see the module doc).
#[derive(Debug, Default)]
pub struct Tracer {
    cfg: TraceConfig,
    by_call_id: FastMap<String, CallId>,
    calls: FastMap<CallId, CallTrace>,
    /// Oldest first.
    order: VecDeque<CallId>,
    pending: FastMap<String, Pending>,
    pending_order: VecDeque<(Instant, String)>,
    /// Octets in `pending`: at most a quarter of `max_bytes`, oldest Call-IDs dropped first.
    pending_bytes: usize,
    bytes: usize,
    /// Buffers of evicted calls, for the next calls.
    spare: Vec<Kept>,
    /// The last instants the engine saw: transmits are stamped with them.
    pub(crate) now: Option<Instant>,
    pub(crate) wall: Option<SystemTime>,
}

impl Tracer {
    pub fn new(cfg: TraceConfig) -> Tracer {
        Tracer {
            cfg,
            ..Tracer::default()
        }
    }

    pub fn is_on(&self) -> bool {
        self.cfg.calls > 0
    }

    /// Remembers the engine's latest `now`/`wall` for the transmits that follow.
    pub fn tick(&mut self, now: Instant, wall: SystemTime) {
        self.now = Some(now);
        self.wall = Some(wall);
    }

    /// Whether a message of `call_id` would be kept (without `starts`).
    pub fn wants(&self, call_id: &str) -> bool {
        self.is_on()
            && (self.by_call_id.contains_key(call_id) || self.pending.contains_key(call_id))
    }

    /// Octets kept over all calls.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps a copy of `m` with its call, or with its Call-ID's pending messages; `starts`:
    /// an out-of-dialog INVITE received, which opens a pending entry for a Call-ID not seen
    /// yet. Anything else is not kept.
    pub fn record(&mut self, now: Instant, m: Traced<'_>, starts: bool) {
        if !self.is_on() {
            return;
        }
        if let Some(&id) = self.by_call_id.get(m.call_id) {
            return self.push(id, &m, true);
        }
        if self.pending.is_empty() && !starts {
            return;
        }
        self.expire_pending(now);
        let len = m.bytes.len();
        if let Some(p) = self.pending.get_mut(m.call_id) {
            if p.kept.records.len() < PENDING_MESSAGES {
                p.kept.push(&m, |_| None);
                self.pending_bytes += len;
                self.bound_pending(0);
            }
            return;
        }
        if starts {
            self.bound_pending(len);
            self.pending_bytes += len;
            self.pending_order.push_back((now, m.call_id.to_string()));
            let mut kept = Kept {
                records: Vec::with_capacity(4),
                buf: Vec::with_capacity(len * 3),
            };
            kept.push(&m, |_| None);
            self.pending
                .insert(m.call_id.to_string(), Pending { since: now, kept });
        }
    }

    fn expire_pending(&mut self, now: Instant) {
        while let Some((t, _)) = self.pending_order.front() {
            if now.saturating_duration_since(*t) < PENDING_AGE {
                break;
            }
            self.drop_oldest_pending();
        }
    }

    /// Drops the oldest pending Call-IDs until one more entry of `extra` octets fits.
    fn bound_pending(&mut self, extra: usize) {
        while !self.pending_order.is_empty()
            && (self.pending.len() + usize::from(extra > 0) > PENDING_CALL_IDS
                || self.pending_bytes + extra > self.cfg.max_bytes / 4)
        {
            self.drop_oldest_pending();
        }
    }

    fn drop_oldest_pending(&mut self) {
        let Some((t, cid)) = self.pending_order.pop_front() else {
            return;
        };
        // A Call-ID opened again later has a newer entry: only remove the one this was.
        if self.pending.get(&cid).is_some_and(|p| p.since == t) {
            if let Some(p) = self.pending.remove(&cid) {
                self.pending_bytes -= p.kept.buf.len();
            }
        }
    }

    /// Call `id` exists now, with these Call-IDs: its trace starts with what came before
    /// on the a-leg Call-ID.
    pub fn attach(&mut self, id: CallId, a_call_id: &str, b_call_ids: &[String]) {
        if !self.is_on() || self.calls.contains_key(&id) {
            return;
        }
        let earlier = self.pending.remove(a_call_id).map(|p| p.kept);
        if let Some(e) = &earlier {
            self.pending_bytes -= e.buf.len();
        }
        let mut kept = self.spare.pop().unwrap_or_default();
        if kept.buf.capacity() == 0 {
            kept.buf.reserve(BUFFER);
        }
        self.calls.insert(
            id,
            CallTrace {
                id,
                a_call_id: a_call_id.to_string(),
                b_call_ids: b_call_ids.to_vec(),
                status: None,
                kept,
                dropped: 0,
                bytes: 0,
            },
        );
        self.order.push_back(id);
        self.by_call_id.insert(a_call_id.to_string(), id);
        for b in b_call_ids {
            self.by_call_id.insert(b.clone(), id);
        }
        if let Some(e) = earlier {
            for r in &e.records {
                let m = Traced {
                    wall: r.wall,
                    direction: r.direction,
                    transport: r.transport,
                    remote: r.remote,
                    local: r.local,
                    call_id: e.call_id_in(r).unwrap_or(a_call_id),
                    bytes: e.bytes_of(r),
                };
                // Answers to the caller before the call existed (a 407) are not its outcome.
                self.push(id, &m, false);
            }
        }
        self.evict(id);
    }

    fn push(&mut self, id: CallId, m: &Traced<'_>, outcome: bool) {
        let len = m.bytes.len();
        self.bytes += len;
        self.evict(id);
        let Some(call) = self.calls.get_mut(&id) else {
            self.bytes -= len;
            return;
        };
        if self.bytes > self.cfg.max_bytes {
            // This call alone holds the whole budget.
            self.bytes -= len;
            call.dropped += 1;
            return;
        }
        if outcome
            && call.status.is_none()
            && m.direction == Direction::Out
            && m.call_id == call.a_call_id
        {
            call.status = final_invite_status(m.bytes);
        }
        call.bytes += len;
        let (a, b) = (&call.a_call_id, &call.b_call_ids);
        call.kept.push(m, |c| {
            if c == a {
                Some(0)
            } else {
                b.iter().position(|x| x == c).map(|i| i + 1)
            }
        });
    }

    /// Removes calls until the bounds hold, answered and unfinished ones before failed
    /// ones, oldest first; never `keep`.
    fn evict(&mut self, keep: CallId) {
        while self.calls.len() > self.cfg.calls || self.bytes > self.cfg.max_bytes {
            let victim = self
                .order
                .iter()
                .position(|id| *id != keep && !self.calls[id].failed())
                .or_else(|| self.order.iter().position(|id| *id != keep));
            let Some(i) = victim else { return };
            let id = self.order.remove(i).expect("position found");
            if let Some(mut c) = self.calls.remove(&id) {
                self.bytes -= c.bytes;
                for cid in std::iter::once(&c.a_call_id).chain(&c.b_call_ids) {
                    if self.by_call_id.get(cid) == Some(&id) {
                        self.by_call_id.remove(cid);
                    }
                }
                if self.spare.len() < SPARE_BUFFERS && c.kept.buf.capacity() <= 4 * BUFFER {
                    c.kept.records.clear();
                    c.kept.buf.clear();
                    self.spare.push(c.kept);
                }
            }
        }
    }

    /// The trace of call `id`.
    pub fn get(&self, id: CallId) -> Option<&CallTrace> {
        self.calls.get(&id)
    }

    /// The trace of the call one of whose legs has SIP Call-ID `call_id`.
    pub fn find(&self, call_id: &str) -> Option<&CallTrace> {
        self.calls.get(self.by_call_id.get(call_id)?)
    }

    /// Calls kept, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = CallId> + '_ {
        self.order.iter().copied()
    }
}

/// The status of a final response to an INVITE (`CSeq: n INVITE`), from its octets.
fn final_invite_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"SIP/2.0 ")?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    let cseq = header_value(bytes, &["cseq"])?;
    (status >= 200 && cseq.split_whitespace().nth(1) == Some("INVITE")).then_some(status)
}

/// The value of the first header named one of `names` (lower case), read from the octets
/// of a message without parsing it: for transmits, which are already serialised. Runs for
/// every transmit while tracing is on, so it walks the head line by line with `memchr` and
/// decodes only the value it returns.
pub fn header_value<'a>(bytes: &'a [u8], names: &[&str]) -> Option<&'a str> {
    // The start line is never a header.
    let mut rest = &bytes[memchr::memchr(b'\n', bytes)? + 1..];
    loop {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // the end of the head
        }
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = line[..colon].trim_ascii_end();
            if names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            {
                return std::str::from_utf8(&line[colon + 1..]).ok().map(str::trim);
            }
        }
        rest = rest.get(end + 1..)?;
    }
}

// ---- the engine's part: what it feeds the store ----------------------------------------------

impl super::Engine {
    /// A message received (after the security guard): kept when its Call-ID is traced or it
    /// is an out-of-dialog INVITE: its octets as received (`raw`, shared), or serialised
    /// again when the caller has none.
    pub(super) fn trace_inbound(
        &mut self,
        now: Instant,
        wall: SystemTime,
        origin: &crate::net::Origin,
        m: &crate::sip::Message,
        raw: &Bytes,
    ) {
        use crate::sip::{Message, Method};
        if !self.trace.is_on() {
            return;
        }
        let (call_id, starts) = match m {
            Message::Request(r) => (
                r.headers.call_id(),
                r.method == Method::Invite && r.headers.to_tag().is_none(),
            ),
            Message::Response(r) => (r.headers.call_id(), false),
        };
        let Some(call_id) = call_id else { return };
        if !starts && !self.trace.wants(call_id) {
            return;
        }
        // The octets as they arrived; a caller without them gets the parsed message
        // serialised again.
        let again;
        let bytes: &[u8] = if raw.is_empty() {
            again = m.to_bytes();
            &again
        } else {
            raw
        };
        let rec = Traced {
            wall,
            direction: Direction::In,
            transport: origin.transport,
            remote: origin.source,
            local: Some(origin.local),
            call_id,
            bytes,
        };
        self.trace.record(now, rec, starts);
    }

    /// A transmit leaving `poll_transmit`, stamped with the last instant the engine saw.
    pub(super) fn trace_transmit(&mut self, t: &crate::transaction::Transmit) {
        let (Some(now), Some(wall)) = (self.trace.now, self.trace.wall) else {
            return;
        };
        if !self.trace.is_on() {
            return;
        }
        let Some(call_id) = header_value(&t.bytes, &["call-id", "i"]) else {
            return;
        };
        let rec = Traced {
            wall,
            direction: Direction::Out,
            transport: t.to.transport,
            remote: t.to.addr,
            local: None,
            call_id,
            bytes: &t.bytes,
        };
        self.trace.record(now, rec, false);
    }

    /// The caller's INVITE on server transaction `key` may have created a call: its trace
    /// starts (with the a-leg Call-ID's earlier messages).
    pub(super) fn trace_call_started(
        &mut self,
        key: &crate::transaction::TransactionKey,
        a_call_id: &str,
    ) {
        if let Some((id, b)) = self.b2bua.call_of_invite(key) {
            self.trace.attach(id, a_call_id, &b);
        }
    }

    /// The trace of a call: `which` is our call id (`ctl calls`) or the SIP Call-ID of one
    /// of its legs.
    pub fn call_trace(&self, which: &str) -> Result<&CallTrace, super::ControlError> {
        let which = which.trim();
        if !self.trace.is_on() {
            return Err(super::ControlError::TracingOff);
        }
        which
            .parse::<CallId>()
            .ok()
            .and_then(|id| self.trace.get(id))
            .or_else(|| self.trace.find(which))
            .ok_or_else(|| super::ControlError::NoTrace(which.to_string()))
    }
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
