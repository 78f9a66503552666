//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as amended by RFC 6026 §7.2).
//!
//! ```text
//!  Calling ──1xx──▶ Proceeding ──2xx──▶ Accepted ──Timer M──▶ Terminated
//!     │ Timer A: resend, A×2              │ 2xx: to TU
//!     │ Timer B: timeout                  ▼
//!     └──300-699: ACK, to TU──▶ Completed ──Timer D──▶ Terminated
//!                                 300-699 again: resend ACK
//! ```
//!
//! It builds and sends the ACK for a 3xx–6xx itself (that ACK belongs to the transaction);
//! it must never ACK a 2xx, which is the TU's job (§13.2.2.4).

use super::machine::{is_2xx, is_provisional, wait_or_terminate, ClientInput, Effects, State, Up};
use super::timer::{Timer, TimerConfig};
use crate::sip::{ack_for_non2xx, Request};
use bytes::Bytes;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct InviteClient {
    state: State,
    invite: Request,
    /// The INVITE as sent, for Timer A; dropped once out of Calling (nothing resends it
    /// then, and an answered transaction lingers 32 s under Timer M).
    wire: Option<Bytes>,
    /// The ACK for our 3xx–6xx, resent on every retransmission of that response.
    ack: Option<Bytes>,
    a_interval: Duration,
    reliable: bool,
    timers: TimerConfig,
}

impl InviteClient {
    /// Sends the INVITE and enters Calling: Timer A on unreliable transports, Timer B always
    /// (§17.1.1.2).
    pub(crate) fn start(
        invite: Request,
        reliable: bool,
        timers: TimerConfig,
        fx: &mut Effects,
    ) -> InviteClient {
        let wire = invite.to_bytes();
        fx.send(&wire);
        if !reliable {
            fx.arm(Timer::A, timers.initial(Timer::A, reliable));
        }
        fx.arm(Timer::B, timers.initial(Timer::B, reliable));
        InviteClient {
            state: State::Calling,
            invite,
            wire: Some(wire),
            ack: None,
            a_interval: timers.initial(Timer::A, reliable),
            reliable,
            timers,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn request(&self) -> &Request {
        &self.invite
    }

    pub(crate) fn handle(&mut self, input: ClientInput<'_>, fx: &mut Effects) {
        use ClientInput as In;
        use State::*;
        match (self.state, input) {
            (Calling, In::Timer(Timer::A)) => {
                if let Some(wire) = &self.wire {
                    fx.resend(wire);
                }
                self.a_interval = self.timers.backoff(Timer::A, self.a_interval);
                fx.arm(Timer::A, self.a_interval);
            }
            (Calling, In::Timer(Timer::B)) => {
                fx.up(Up::Timeout(Timer::B));
                self.state = Terminated;
            }
            // "the client transaction SHOULD NOT retransmit the request any longer"; Timer B
            // only guards Calling.
            (Calling | Proceeding, In::Response(r)) if is_provisional(r) => {
                self.leave_calling(fx);
                self.state = Proceeding;
                fx.up(Up::Response(r.clone()));
            }
            // RFC 6026 §7.2: a 2xx moves to Accepted, never to Terminated, so that 2xx
            // retransmissions and other forks' 2xx still reach the TU, which ACKs them.
            (Calling | Proceeding, In::Response(r)) if is_2xx(r) => {
                self.leave_calling(fx);
                fx.stop(Timer::CancelWait);
                fx.up(Up::Response(r.clone()));
                self.state = Accepted;
                self.strip();
                fx.arm(Timer::M, self.timers.initial(Timer::M, self.reliable));
            }
            (Calling | Proceeding, In::Response(r)) => {
                self.leave_calling(fx);
                fx.stop(Timer::CancelWait);
                let ack = ack_for_non2xx(&self.invite, r).to_bytes();
                fx.send(&ack);
                self.ack = Some(ack);
                self.strip();
                fx.up(Up::Response(r.clone()));
                let d = self.timers.initial(Timer::D, self.reliable);
                wait_or_terminate(&mut self.state, Completed, Timer::D, d, fx);
            }
            // "Any retransmissions of the final response that are received while in the
            // Completed state MUST cause the ACK to be re-passed to the transport layer".
            (Completed, In::Response(r)) if !is_provisional(r) && !is_2xx(r) => {
                fx.absorb_response();
                if let Some(ack) = &self.ack {
                    fx.resend(ack);
                }
            }
            (Accepted, In::Response(r)) if is_2xx(r) => fx.up(Up::Response(r.clone())),
            (Completed | Accepted, In::Response(_)) => fx.absorb_response(),
            (Proceeding, In::CancelSent) => fx.arm(
                Timer::CancelWait,
                self.timers.initial(Timer::CancelWait, self.reliable),
            ),
            // §9.1: no final response 64·T1 after the CANCEL: consider the INVITE cancelled.
            (Proceeding, In::Timer(Timer::CancelWait)) => {
                fx.up(Up::Timeout(Timer::CancelWait));
                self.state = Terminated;
            }
            (Completed, In::Timer(Timer::D)) | (Accepted, In::Timer(Timer::M)) => {
                self.state = Terminated;
            }
            (Calling | Proceeding | Completed, In::TransportError) => {
                fx.up(Up::TransportError);
                self.state = Terminated;
            }
            // Timers that outlived their state, and inputs the figure has no arrow for.
            _ => {}
        }
    }

    /// After a final response the INVITE is kept only so that a late 2xx can still be
    /// turned into a dialog and ACKed (the dialog fields and the route set); the body and
    /// every other header go, since the transaction lingers 32 s (Timers D, M).
    fn strip(&mut self) {
        use crate::sip::HeaderName as H;
        self.invite.body = Bytes::new();
        self.invite.headers.retain(|h| {
            matches!(
                h.name,
                H::Via | H::From | H::To | H::CallId | H::CSeq | H::Route | H::Contact
            )
        });
    }

    fn leave_calling(&mut self, fx: &mut Effects) {
        self.wire = None;
        if self.state == State::Calling {
            fx.stop(Timer::A);
            fx.stop(Timer::B);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{response_to, set_to_tag, Method};
    use crate::transaction::machine::{test_request, TimerOp};

    #[test]
    fn figure_5_non2xx_is_acked_and_timer_d_is_zero_on_reliable() {
        for reliable in [false, true] {
            let mut fx = Effects::default();
            let mut m = InviteClient::start(
                test_request(Method::Invite),
                reliable,
                TimerConfig::default(),
                &mut fx,
            );
            let armed: Vec<_> = fx
                .timers
                .iter()
                .map(|op| match op {
                    TimerOp::Arm(t, _) | TimerOp::Stop(t) => *t,
                })
                .collect();
            let expect: &[Timer] = if reliable {
                &[Timer::B]
            } else {
                &[Timer::A, Timer::B]
            };
            assert_eq!(armed, expect);
            let mut busy = response_to(m.request(), 486, "Busy Here");
            set_to_tag(&mut busy, "t");
            let mut fx = Effects::default();
            m.handle(ClientInput::Response(&busy), &mut fx);
            assert_eq!(fx.sends.len(), 1, "the ACK");
            assert!(fx.sends[0].starts_with(b"ACK "));
            let want = if reliable {
                State::Terminated
            } else {
                State::Completed
            };
            assert_eq!(m.state(), want);
        }
    }

    #[test]
    fn timer_b_is_ignored_after_proceeding() {
        let mut fx = Effects::default();
        let mut m = InviteClient::start(
            test_request(Method::Invite),
            false,
            TimerConfig::default(),
            &mut fx,
        );
        let ringing = response_to(m.request(), 180, "Ringing");
        m.handle(ClientInput::Response(&ringing), &mut fx);
        let mut fx = Effects::default();
        m.handle(ClientInput::Timer(Timer::B), &mut fx);
        m.handle(ClientInput::Timer(Timer::A), &mut fx);
        assert_eq!(m.state(), State::Proceeding);
        assert!(fx.sends.is_empty() && fx.ups.is_empty());
    }
}
