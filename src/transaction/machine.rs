//! What the four state machines share: the states of the RFC figures, the inputs they take
//! and the effects they ask for.
//!
//! A machine never sends, sleeps or calls back: it records what should happen in an
//! [`Effects`] and the layer carries it out. That keeps every transition a pure function of
//! (state, input), testable without a network or a clock.

use super::timer::Timer;
use crate::sip::{Request, Response};
use bytes::Bytes;
use std::time::Duration;

/// Transaction states as named in RFC 3261 Figures 5–8 and RFC 6026 (Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// INVITE client: the INVITE is out, no response yet.
    Calling,
    /// Non-INVITE client or server: request out (or in), no response yet.
    Trying,
    Proceeding,
    Completed,
    /// INVITE server: the ACK for our 3xx–6xx arrived.
    Confirmed,
    /// INVITE client or server after a 2xx (RFC 6026).
    Accepted,
    Terminated,
}

/// Inputs of a client transaction.
#[derive(Debug)]
pub(crate) enum ClientInput<'a> {
    /// A response matched this transaction.
    Response(&'a Response),
    Timer(Timer),
    TransportError,
    /// INVITE only: the TU sent a CANCEL for this INVITE (starts the §9.1 guard).
    CancelSent,
}

/// Inputs of a server transaction.
#[derive(Debug)]
pub(crate) enum ServerInput<'a> {
    /// The request that created the transaction arrived again.
    Retransmission,
    /// An ACK matched this (INVITE) transaction.
    Ack(&'a Request),
    /// The TU hands a response to send.
    TuResponse(&'a Response),
    Timer(Timer),
    TransportError,
}

/// What a machine reports to the TU; the layer adds the key.
#[derive(Debug)]
pub(crate) enum Up {
    Response(Response),
    Ack(Request),
    Timeout(Timer),
    TransportError,
}

#[derive(Debug)]
pub(crate) enum TimerOp {
    Arm(Timer, Duration),
    Stop(Timer),
}

/// The effects of one input, carried out by the layer in order: sends go to the
/// transaction's peer.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) sends: Vec<Bytes>,
    pub(crate) ups: Vec<Up>,
    pub(crate) timers: Vec<TimerOp>,
    pub(crate) retransmissions: u64,
    pub(crate) absorbed_requests: u64,
    pub(crate) absorbed_responses: u64,
}

impl Effects {
    pub(crate) fn send(&mut self, bytes: &Bytes) {
        self.sends.push(bytes.clone());
    }

    /// A send that repeats an earlier one (counted in the stats).
    pub(crate) fn resend(&mut self, bytes: &Bytes) {
        self.retransmissions += 1;
        self.sends.push(bytes.clone());
    }

    pub(crate) fn up(&mut self, up: Up) {
        self.ups.push(up);
    }

    pub(crate) fn arm(&mut self, timer: Timer, after: Duration) {
        self.timers.push(TimerOp::Arm(timer, after));
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.timers.push(TimerOp::Stop(timer));
    }

    pub(crate) fn absorb_request(&mut self) {
        self.absorbed_requests += 1;
    }

    pub(crate) fn absorb_response(&mut self) {
        self.absorbed_responses += 1;
    }
}

/// Status classes as the figures use them.
pub(crate) fn is_provisional(r: &Response) -> bool {
    r.status < 200
}

pub(crate) fn is_2xx(r: &Response) -> bool {
    (200..300).contains(&r.status)
}

/// Enters a state guarded by a "wait" timer that is zero on reliable transports (D, I, J,
/// K): a zero timer fires at once, so the machine goes straight to Terminated.
pub(crate) fn wait_or_terminate(
    state: &mut State,
    waiting: State,
    timer: Timer,
    after: Duration,
    fx: &mut Effects,
) {
    if after.is_zero() {
        *state = State::Terminated;
    } else {
        *state = waiting;
        fx.arm(timer, after);
    }
}

/// A small request for the machines' unit tests.
#[cfg(test)]
pub(crate) fn test_request(method: crate::sip::Method) -> Request {
    use crate::sip::HeaderName;
    let mut r = Request::new(method.clone(), "sip:bob@b.example");
    r.headers
        .push(HeaderName::Via, "SIP/2.0/UDP a.example;branch=z9hG4bKunit");
    r.headers.push(HeaderName::To, "<sip:bob@b.example>");
    r.headers
        .push(HeaderName::From, "<sip:alice@a.example>;tag=a");
    r.headers.push(HeaderName::CallId, "unit-call");
    r.headers.push(HeaderName::CSeq, format!("1 {method}"));
    r
}
