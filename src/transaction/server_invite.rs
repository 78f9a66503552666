//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as amended by RFC 6026 §7.1).
//!
//! ```text
//!  Proceeding ──300-699 from TU──▶ Completed ──ACK──▶ Confirmed ──Timer I──▶ Terminated
//!    │ INVITE again: resend last      │ Timer G: resend, G = min(2G, T2)
//!    │ 1xx from TU: send              │ Timer H: timeout (no ACK)
//!    └──2xx from TU──▶ Accepted ──Timer L──▶ Terminated
//!                        2xx from TU: send; ACK: to TU; INVITE again: absorb
//! ```
//!
//! It sends `100 Trying` per the configured policy and answers retransmitted INVITEs with the
//! last response; a retransmission must never reach the TU. It never retransmits a 2xx
//! itself: that is the TU's job (§13.3.1.4), passed through here while Accepted.

use super::config::TryingPolicy;
use super::machine::{is_2xx, is_provisional, wait_or_terminate, Effects, ServerInput, State, Up};
use super::timer::{Timer, TimerConfig};
use crate::sip::{response_to, HeaderName, Request, Response};
use bytes::Bytes;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct InviteServer {
    state: State,
    /// Until the final response: afterwards nothing reads it, and a finished transaction
    /// lingers for Timer H/L (32 s on UDP), so it is dropped then.
    invite: Option<Request>,
    /// The `100 Trying` while it is still to be sent.
    trying: Option<Bytes>,
    /// The most recent response sent: the answer to a retransmitted INVITE.
    last: Option<Bytes>,
    /// The To tag of our final response (2xx or not); an RFC 2543 ACK is matched by it
    /// (§17.2.3).
    final_to_tag: Option<String>,
    g_interval: Duration,
    reliable: bool,
    timers: TimerConfig,
}

impl InviteServer {
    /// Enters Proceeding; the layer passes the INVITE to the TU.
    pub(crate) fn start(
        invite: Request,
        reliable: bool,
        timers: TimerConfig,
        policy: TryingPolicy,
        fx: &mut Effects,
    ) -> InviteServer {
        let trying = match policy {
            TryingPolicy::Never => None,
            TryingPolicy::Immediate | TryingPolicy::Delayed(_) => Some(trying_for(&invite)),
        };
        let mut me = InviteServer {
            state: State::Proceeding,
            invite: Some(invite),
            trying: None,
            last: None,
            final_to_tag: None,
            g_interval: timers.initial(Timer::G, reliable),
            reliable,
            timers,
        };
        match (policy, trying) {
            (TryingPolicy::Delayed(after), Some(t)) => {
                me.trying = Some(t);
                fx.arm(Timer::Trying, after);
            }
            (_, Some(t)) => {
                fx.send(&t);
                me.last = Some(t);
            }
            (_, None) => {}
        }
        me
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The INVITE, while no final response has been sent.
    pub(crate) fn request(&self) -> Option<&Request> {
        self.invite.as_ref()
    }

    pub(crate) fn final_to_tag(&self) -> Option<&str> {
        self.final_to_tag.as_deref()
    }

    /// `Err(state)` when the TU hands a response this state does not take.
    pub(crate) fn handle(&mut self, input: ServerInput<'_>, fx: &mut Effects) -> Result<(), State> {
        use ServerInput as In;
        use State::*;
        match (self.state, input) {
            // "If a request retransmission is received while in the Proceeding state, the
            // most recent provisional response that was received from the TU MUST be passed
            // to the transport layer for retransmission."
            (Proceeding, In::Retransmission) => {
                fx.absorb_request();
                if let Some(last) = &self.last {
                    fx.resend(last);
                } else if let Some(t) = self.trying.take() {
                    // The peer is retransmitting already: quench it now.
                    fx.stop(Timer::Trying);
                    fx.send(&t);
                    self.last = Some(t);
                }
            }
            (Completed, In::Retransmission) => {
                fx.absorb_request();
                if let Some(last) = &self.last {
                    fx.resend(last);
                }
            }
            // RFC 6026 §7.1: the TU's 2xx retransmissions answer these.
            (Confirmed | Accepted, In::Retransmission) => fx.absorb_request(),
            (Proceeding, In::Timer(Timer::Trying)) => {
                if let Some(t) = self.trying.take() {
                    fx.send(&t);
                    self.last = Some(t);
                }
            }
            (Proceeding, In::TuResponse(r)) if is_provisional(r) => {
                self.send_from_tu(r, fx);
            }
            (Proceeding, In::TuResponse(r)) if is_2xx(r) => {
                self.send_from_tu(r, fx);
                self.final_to_tag = r.headers.to_tag();
                self.invite = None;
                // RFC 6026: in Accepted the TU retransmits the 2xx; a retransmitted INVITE
                // is absorbed, so the bytes are not kept for the 32 s of Timer L.
                self.last = None;
                self.state = Accepted;
                fx.arm(Timer::L, self.timers.initial(Timer::L, self.reliable));
            }
            (Proceeding, In::TuResponse(r)) => {
                self.send_from_tu(r, fx);
                self.final_to_tag = r.headers.to_tag();
                self.invite = None;
                self.state = Completed;
                if !self.reliable {
                    fx.arm(Timer::G, self.g_interval);
                }
                fx.arm(Timer::H, self.timers.initial(Timer::H, self.reliable));
            }
            (Accepted, In::TuResponse(r)) if is_2xx(r) => fx.send(&r.to_bytes()),
            (state, In::TuResponse(_)) => return Err(state),
            (Completed, In::Timer(Timer::G)) => {
                if let Some(last) = &self.last {
                    fx.resend(last);
                }
                self.g_interval = self.timers.backoff(Timer::G, self.g_interval);
                fx.arm(Timer::G, self.g_interval);
            }
            // "If timer H fires while in the Completed state, it implies that the ACK was
            // never received ... MUST indicate to the TU that a transaction failure has
            // occurred."
            (Completed, In::Timer(Timer::H)) => {
                fx.up(Up::Timeout(Timer::H));
                self.state = Terminated;
            }
            (Completed, In::Ack(_)) => {
                fx.absorb_request();
                fx.stop(Timer::G);
                fx.stop(Timer::H);
                // Confirmed only absorbs retransmissions: nothing to resend any more.
                self.last = None;
                let i = self.timers.initial(Timer::I, self.reliable);
                wait_or_terminate(&mut self.state, Confirmed, Timer::I, i, fx);
            }
            // An ACK before any final response acknowledges nothing.
            (Proceeding | Confirmed, In::Ack(_)) => fx.absorb_request(),
            (Accepted, In::Ack(ack)) => fx.up(Up::Ack(ack.clone())),
            (Confirmed, In::Timer(Timer::I)) | (Accepted, In::Timer(Timer::L)) => {
                self.state = Terminated;
            }
            (Proceeding | Completed, In::TransportError) => {
                fx.up(Up::TransportError);
                self.state = Terminated;
            }
            // RFC 6026 Figure 5: in Accepted a transport error is reported, the state stays.
            (Accepted, In::TransportError) => fx.up(Up::TransportError),
            _ => {}
        }
        Ok(())
    }

    fn send_from_tu(&mut self, r: &Response, fx: &mut Effects) {
        if self.trying.take().is_some() {
            fx.stop(Timer::Trying);
        }
        let wire = r.to_bytes();
        fx.send(&wire);
        self.last = Some(wire);
    }
}

/// `100 Trying` per §8.2.6.1 and §17.2.1: no To tag added, Timestamp copied.
fn trying_for(invite: &Request) -> Bytes {
    let mut r = response_to(invite, 100, "Trying");
    for h in invite.headers.iter() {
        if h.name.as_str().eq_ignore_ascii_case("Timestamp") {
            r.headers
                .push(HeaderName::Other("Timestamp".into()), h.value.clone());
        }
    }
    r.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Method;
    use crate::transaction::machine::test_request;

    fn started(policy: TryingPolicy) -> (InviteServer, Effects) {
        let mut fx = Effects::default();
        let m = InviteServer::start(
            test_request(Method::Invite),
            false,
            TimerConfig::default(),
            policy,
            &mut fx,
        );
        (m, fx)
    }

    #[test]
    fn figure_7_proceeding_to_accepted_and_transport_error_there() {
        let (mut m, fx) = started(TryingPolicy::Immediate);
        assert!(fx.sends[0].starts_with(b"SIP/2.0 100 Trying"));
        let ok = response_to(m.request().unwrap(), 200, "OK");
        let ringing = response_to(m.request().unwrap(), 180, "Ringing");
        let mut fx = Effects::default();
        m.handle(ServerInput::TuResponse(&ok), &mut fx).unwrap();
        assert_eq!(m.state(), State::Accepted);
        assert!(
            m.request().is_none(),
            "a finished transaction keeps no request"
        );
        m.handle(ServerInput::TransportError, &mut fx).unwrap();
        assert_eq!(m.state(), State::Accepted);
        assert!(matches!(fx.ups[..], [Up::TransportError]));
        assert_eq!(
            m.handle(ServerInput::TuResponse(&ringing), &mut fx),
            Err(State::Accepted)
        );
    }

    #[test]
    fn trying_timestamp_is_copied() {
        let mut req = test_request(Method::Invite);
        req.headers
            .push(HeaderName::Other("Timestamp".into()), "54.2");
        let t = trying_for(&req);
        let text = String::from_utf8_lossy(&t);
        assert!(text.contains("\r\nTimestamp: 54.2\r\n"), "{text}");
    }
}
