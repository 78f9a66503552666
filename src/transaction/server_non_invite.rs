//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! ```text
//!  Trying ──1xx from TU──▶ Proceeding ──200-699 from TU──▶ Completed ──Timer J──▶ Terminated
//!    │ request again: absorb     request again: resend 1xx    request again: resend final
//!    └──200-699 from TU──▶ Completed
//! ```
//!
//! It must never pass a retransmitted request to the TU, nor send a second final response.

use super::machine::{is_provisional, wait_or_terminate, Effects, ServerInput, State, Up};
use super::timer::{Timer, TimerConfig};
use crate::sip::Request;
use bytes::Bytes;

#[derive(Debug)]
pub(crate) struct NonInviteServer {
    state: State,
    /// Until the final response; a finished transaction lingers for Timer J (32 s on UDP)
    /// holding only the response bytes.
    request: Option<Request>,
    last: Option<Bytes>,
    reliable: bool,
    timers: TimerConfig,
}

impl NonInviteServer {
    /// Enters Trying; the layer passes the request to the TU.
    pub(crate) fn start(request: Request, reliable: bool, timers: TimerConfig) -> NonInviteServer {
        NonInviteServer {
            state: State::Trying,
            request: Some(request),
            last: None,
            reliable,
            timers,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The request, while no final response has been sent.
    pub(crate) fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// `Err(state)` when the TU hands a response this state does not take.
    pub(crate) fn handle(&mut self, input: ServerInput<'_>, fx: &mut Effects) -> Result<(), State> {
        use ServerInput as In;
        use State::*;
        match (self.state, input) {
            // "Once in the Trying state, any further request retransmissions are discarded."
            (Trying, In::Retransmission) => fx.absorb_request(),
            (Proceeding | Completed, In::Retransmission) => {
                fx.absorb_request();
                if let Some(last) = &self.last {
                    fx.resend(last);
                }
            }
            (Trying | Proceeding, In::TuResponse(r)) if is_provisional(r) => {
                let wire = r.to_bytes();
                fx.send(&wire);
                self.last = Some(wire);
                self.state = Proceeding;
            }
            (Trying | Proceeding, In::TuResponse(r)) => {
                let wire = r.to_bytes();
                fx.send(&wire);
                self.last = Some(wire);
                self.request = None;
                let j = self.timers.initial(Timer::J, self.reliable);
                wait_or_terminate(&mut self.state, Completed, Timer::J, j, fx);
            }
            // "Any other final responses passed by the TU to the server transaction MUST be
            // discarded while in the Completed state."
            (state, In::TuResponse(_)) => return Err(state),
            (Completed, In::Timer(Timer::J)) => self.state = Terminated,
            (Trying | Proceeding | Completed, In::TransportError) => {
                fx.up(Up::TransportError);
                self.state = Terminated;
            }
            (_, In::Ack(_)) => fx.absorb_request(),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{response_to, Method};
    use crate::transaction::machine::{test_request, TimerOp};

    #[test]
    fn figure_8_one_final_then_timer_j() {
        let req = test_request(Method::Options);
        let mut m = NonInviteServer::start(req.clone(), false, TimerConfig::default());
        let mut fx = Effects::default();
        m.handle(ServerInput::Retransmission, &mut fx).unwrap();
        assert!(fx.sends.is_empty());
        m.handle(
            ServerInput::TuResponse(&response_to(&req, 200, "OK")),
            &mut fx,
        )
        .unwrap();
        assert_eq!(m.state(), State::Completed);
        assert!(matches!(fx.timers[..], [TimerOp::Arm(Timer::J, d)] if d.as_secs() == 32));
        assert_eq!(
            m.handle(
                ServerInput::TuResponse(&response_to(&req, 500, "No")),
                &mut fx
            ),
            Err(State::Completed)
        );
        m.handle(ServerInput::Timer(Timer::J), &mut fx).unwrap();
        assert_eq!(m.state(), State::Terminated);
    }
}
