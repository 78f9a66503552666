//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! ```text
//!  Trying ──1xx──▶ Proceeding ──200-699──▶ Completed ──Timer K──▶ Terminated
//!    │ Timer E: resend, E = min(2E, T2)     Timer E: resend, E = T2
//!    └──200-699──▶ Completed                Timer F: timeout
//! ```
//!
//! Retransmits only on unreliable transports; it must never pass a response retransmission
//! to the TU once it has passed the final response.

use super::machine::{is_provisional, wait_or_terminate, ClientInput, Effects, State, Up};
use super::timer::{Timer, TimerConfig};
use crate::sip::Request;
use bytes::Bytes;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct NonInviteClient {
    state: State,
    request: Request,
    wire: Bytes,
    e_interval: Duration,
    reliable: bool,
    timers: TimerConfig,
}

impl NonInviteClient {
    /// Sends the request and enters Trying: Timer F always, Timer E on unreliable transports
    /// (§17.1.2.2).
    pub(crate) fn start(
        request: Request,
        reliable: bool,
        timers: TimerConfig,
        fx: &mut Effects,
    ) -> NonInviteClient {
        let wire = request.to_bytes();
        fx.send(&wire);
        fx.arm(Timer::F, timers.initial(Timer::F, reliable));
        if !reliable {
            fx.arm(Timer::E, timers.initial(Timer::E, reliable));
        }
        NonInviteClient {
            state: State::Trying,
            request,
            wire,
            e_interval: timers.initial(Timer::E, reliable),
            reliable,
            timers,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn request(&self) -> &Request {
        &self.request
    }

    pub(crate) fn handle(&mut self, input: ClientInput<'_>, fx: &mut Effects) {
        use ClientInput as In;
        use State::*;
        match (self.state, input) {
            (Trying, In::Timer(Timer::E)) => {
                fx.resend(&self.wire);
                self.e_interval = self.timers.backoff(Timer::E, self.e_interval);
                fx.arm(Timer::E, self.e_interval);
            }
            // "If Timer E fires while in the Proceeding state, the request MUST be passed to
            // the transport layer for retransmission, and Timer E MUST be reset with a value
            // of T2 seconds."
            (Proceeding, In::Timer(Timer::E)) => {
                fx.resend(&self.wire);
                self.e_interval = self.timers.t2;
                fx.arm(Timer::E, self.e_interval);
            }
            (Trying | Proceeding, In::Timer(Timer::F)) => {
                fx.up(Up::Timeout(Timer::F));
                self.state = Terminated;
            }
            (Trying | Proceeding, In::Response(r)) if is_provisional(r) => {
                self.state = Proceeding;
                fx.up(Up::Response(r.clone()));
            }
            (Trying | Proceeding, In::Response(r)) => {
                fx.stop(Timer::E);
                fx.stop(Timer::F);
                fx.up(Up::Response(r.clone()));
                // Nothing resends the request any more.
                self.wire = Bytes::new();
                let k = self.timers.initial(Timer::K, self.reliable);
                wait_or_terminate(&mut self.state, Completed, Timer::K, k, fx);
            }
            (Completed, In::Response(_)) => fx.absorb_response(),
            (Completed, In::Timer(Timer::K)) => self.state = Terminated,
            (Trying | Proceeding, In::TransportError) => {
                fx.up(Up::TransportError);
                self.state = Terminated;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{response_to, Method};
    use crate::transaction::machine::test_request;

    #[test]
    fn figure_6_timer_e_backs_off_to_t2_and_resets_to_t2_in_proceeding() {
        let mut fx = Effects::default();
        let mut m = NonInviteClient::start(
            test_request(Method::Register),
            false,
            TimerConfig::default(),
            &mut fx,
        );
        for _ in 0..5 {
            m.handle(ClientInput::Timer(Timer::E), &mut fx);
        }
        assert_eq!(m.e_interval, Duration::from_secs(4));
        let trying = response_to(m.request(), 100, "Trying");
        m.handle(ClientInput::Response(&trying), &mut fx);
        assert_eq!(m.state(), State::Proceeding);
        assert_eq!(fx.retransmissions, 5);
        let ok = response_to(m.request(), 200, "OK");
        m.handle(ClientInput::Response(&ok), &mut fx);
        m.handle(ClientInput::Response(&ok), &mut fx);
        assert_eq!(fx.ups.len(), 2, "100 and one 200");
        assert_eq!(fx.absorbed_responses, 1);
    }
}
