//! OPTIONS keep-alive toward a gateway (the `ping` key), sans-IO: the OPTIONS to send come out
//! of [`Pinger::poll_request`], their final responses or failures go back in, and
//! [`Pinger::is_up`] says whether calls should be sent through the gateway.
//!
//! The rules, chosen after FreeSWITCH's gateway pings:
//! - A gateway starts up (calls are not refused before the first answer) and the first ping
//!   goes at the first `poll_request`.
//! - Any final response proves it alive (404, 405, 481, 501 and a 401/407 challenge
//!   included: something answered), except 503 Service Unavailable and 408 Request Timeout,
//!   which a proxy in front sends when the gateway behind it is not there. Those and a
//!   transaction failure (Timer F, a transport error) are misses.
//! - [`DOWN_AFTER`] misses in a row mark it down (one lost ping over UDP, after the
//!   transaction's own retransmissions, is not enough to refuse calls); one alive answer
//!   marks it up again.
//! - The next ping goes one interval after the last one was sent, or at once when its
//!   answer came later than that. Down gateways are pinged at the same interval.
//! - Interval 0: never pings, always up.
//!
//! Each change between up and down is logged once on target `ferroswitch::gateway`. Never
//! reads a clock, never touches a socket.

use super::register::sent_by;
use crate::dialog::ids::{new_branch_for, new_call_id_with, new_tag_with};
use crate::dialog::ViaSpec;
use crate::net::Transport;
use crate::sip::{HeaderName, Method, Request, Response, Uri};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::{Duration, Instant};

const TARGET: &str = "ferroswitch::gateway";

/// Misses in a row after which a gateway is down.
pub const DOWN_AFTER: u32 = 2;

/// What a gateway's keep-alive needs; built by the engine from the gateway's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// The gateway's name, for logs.
    pub gateway: String,
    /// Request-URI and To of the OPTIONS: `sip:host[:port]` of the gateway.
    pub target: Uri,
    /// Our identity in From (e.g. the registration's AOR).
    pub from: Uri,
    /// Our Contact; its host and port are the Via's sent-by.
    pub contact: Uri,
    pub transport: Transport,
    /// Between pings; zero turns pinging off.
    pub interval: Duration,
    /// `User-Agent` value; empty for none.
    pub user_agent: String,
    /// `[server] node_id`, put in our branches.
    pub node_id: Option<String>,
}

/// The OPTIONS whose answer we wait for.
#[derive(Debug, Clone)]
struct InFlight {
    branch: String,
    seq: u32,
    call_id: String,
    sent: Instant,
}

/// One gateway's keep-alive; see the module docs.
#[derive(Debug)]
pub struct Pinger {
    cfg: PingConfig,
    rng: StdRng,
    up: bool,
    misses: u32,
    /// Misses in a row that mark it down (`set_down_after`).
    down_after: u32,
    cseq: u32,
    in_flight: Option<InFlight>,
    /// When the next ping is due; `None`: at the first `poll_request`.
    due: Option<Instant>,
}

impl Pinger {
    pub fn new(cfg: PingConfig, seed: u64) -> Pinger {
        Pinger {
            cfg,
            rng: StdRng::seed_from_u64(seed),
            up: true,
            misses: 0,
            down_after: DOWN_AFTER,
            cseq: 0,
            in_flight: None,
            due: None,
        }
    }

    fn enabled(&self) -> bool {
        !self.cfg.interval.is_zero()
    }

    /// Whether calls may go through the gateway.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Misses in a row that mark the gateway down: at least [`DOWN_AFTER`], and at least
    /// `targets` so that a gateway with several addresses, each miss moving the pings on to
    /// the next one (RFC 3263 §4.3), is down only when every address missed.
    pub fn set_down_after(&mut self, targets: u32) {
        self.down_after = targets.max(DOWN_AFTER);
    }

    /// The next ping goes at the next `poll_request` (to another address after a miss),
    /// unless one is in flight. True when it will.
    pub fn ping_now(&mut self) -> bool {
        if !self.enabled() || self.in_flight.is_some() {
            return false;
        }
        self.due = None;
        true
    }

    /// The OPTIONS to send now, if one is due and none is in flight.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        if !self.enabled() || self.in_flight.is_some() || self.due.is_some_and(|t| now < t) {
            return None;
        }
        self.due = None;
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let branch = new_branch_for(&mut self.rng, self.cfg.node_id.as_deref());
        let call_id = new_call_id_with(&mut self.rng, Some(self.cfg.contact.host()));
        let tag = new_tag_with(&mut self.rng);
        let cfg = &self.cfg;
        let mut r = Request::new(Method::Options, cfg.target.as_str().to_string());
        let h = &mut r.headers;
        let via = ViaSpec::new(cfg.transport, sent_by(&cfg.contact), branch.clone());
        h.push(HeaderName::Via, via.to_value());
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, format!("<{}>;tag={tag}", cfg.from));
        h.push(HeaderName::To, format!("<{}>", cfg.target));
        h.push(HeaderName::CallId, call_id.clone());
        h.push(HeaderName::CSeq, format!("{} OPTIONS", self.cseq));
        h.push(HeaderName::Contact, format!("<{}>", cfg.contact));
        if !cfg.user_agent.is_empty() {
            h.push(HeaderName::UserAgent, cfg.user_agent.clone());
        }
        self.in_flight = Some(InFlight {
            branch,
            seq: self.cseq,
            call_id,
            sent: now,
        });
        Some(r)
    }

    /// When `poll_request` has a ping to send; `None` while one is in flight (its
    /// transaction times out instead) or when pinging is off. Before the first ping this is
    /// `None` too: the engine calls `poll_request` at start.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.enabled() || self.in_flight.is_some() {
            return None;
        }
        self.due
    }

    /// A response to the OPTIONS in flight; provisional ones and strays are ignored.
    pub fn handle_response(&mut self, now: Instant, resp: &Response) {
        if resp.status < 200 {
            return;
        }
        let Some(f) = self.in_flight.take_if(|f| answers(resp, f)) else {
            tracing::debug!(target: TARGET, gateway = %self.cfg.gateway, status = resp.status, "stray OPTIONS response ignored");
            return;
        };
        self.schedule(now, &f);
        if matches!(resp.status, 408 | 503) {
            self.miss(resp.status);
        } else {
            self.alive(resp.status);
        }
    }

    /// The OPTIONS in flight got no final response: Timer F (408) or a transport error
    /// (503). Ignored when none is in flight.
    pub fn handle_failure(&mut self, now: Instant, status: u16) {
        if let Some(f) = self.in_flight.take() {
            self.schedule(now, &f);
            self.miss(status);
        }
    }

    fn schedule(&mut self, now: Instant, f: &InFlight) {
        self.due = Some((f.sent + self.cfg.interval).max(now));
    }

    fn alive(&mut self, status: u16) {
        self.misses = 0;
        if !self.up {
            self.up = true;
            tracing::info!(target: TARGET, gateway = %self.cfg.gateway, status, "gateway up: OPTIONS answered");
        }
    }

    fn miss(&mut self, status: u16) {
        self.misses = self.misses.saturating_add(1);
        if self.up && self.misses >= self.down_after {
            self.up = false;
            tracing::warn!(target: TARGET, gateway = %self.cfg.gateway, status, misses = self.misses, "gateway down: OPTIONS unanswered");
        }
    }
}

fn answers(resp: &Response, f: &InFlight) -> bool {
    let h = &resp.headers;
    h.cseq()
        .is_some_and(|c| c.seq == f.seq && c.method == Method::Options)
        && h.top_via()
            .is_some_and(|v| v.branch() == Some(f.branch.as_str()))
        && h.call_id() == Some(f.call_id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::response_to;

    fn cfg(interval: u64) -> PingConfig {
        PingConfig {
            gateway: "provider".into(),
            target: Uri::parse("sip:sip.example.net").unwrap(),
            from: Uri::parse("sip:acct1234@sip.example.net").unwrap(),
            contact: Uri::parse("sip:acct1234@192.0.2.10:5060").unwrap(),
            transport: Transport::Udp,
            interval: Duration::from_secs(interval),
            user_agent: String::new(),
            node_id: None,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn interval_zero_never_pings_and_is_always_up() {
        let mut p = Pinger::new(cfg(0), 1);
        let t = Instant::now();
        assert!(p.poll_request(t).is_none());
        assert_eq!(p.poll_timeout(), None);
        p.handle_failure(t, 408);
        assert!(p.is_up());
    }

    #[test]
    fn pings_every_interval_from_the_send() {
        let mut p = Pinger::new(cfg(30), 1);
        let t = Instant::now();
        let r = p.poll_request(t).expect("first ping at start");
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.uri_str(), Some("sip:sip.example.net"));
        assert_eq!(
            r.headers.get_str(&HeaderName::To),
            Some("<sip:sip.example.net>")
        );
        assert_eq!(r.headers.top_via().unwrap().sent_by(), "192.0.2.10:5060");
        assert!(p.poll_request(t).is_none(), "one in flight");
        assert_eq!(p.poll_timeout(), None);
        p.handle_response(t + secs(1), &response_to(&r, 200, "OK"));
        assert_eq!(p.poll_timeout(), Some(t + secs(30)));
        assert!(p.poll_request(t + secs(29)).is_none());
        let r2 = p.poll_request(t + secs(30)).expect("second ping");
        assert_eq!(r2.headers.cseq().unwrap().seq, 2);
        assert_ne!(r2.headers.call_id(), r.headers.call_id());
        // Answered after the next one was due: the next goes at once.
        p.handle_failure(t + secs(62), 408);
        assert_eq!(p.poll_timeout(), Some(t + secs(62)));
    }

    #[test]
    fn any_answer_but_503_and_408_is_alive_and_two_misses_are_down() {
        let mut p = Pinger::new(cfg(30), 2);
        let mut now = Instant::now();
        let mut ping = |p: &mut Pinger, outcome: Result<u16, u16>| {
            let r = p.poll_request(now).expect("due");
            now += secs(30);
            match outcome {
                Ok(status) => p.handle_response(now, &response_to(&r, status, "")),
                Err(status) => p.handle_failure(now, status),
            }
            p.is_up()
        };
        for status in [404, 405, 407, 481, 501, 200] {
            assert!(ping(&mut p, Ok(status)), "{status}");
        }
        assert!(ping(&mut p, Ok(503)), "one miss is not down");
        assert!(!ping(&mut p, Err(408)), "two misses are");
        assert!(!ping(&mut p, Ok(408)));
        assert!(!ping(&mut p, Err(503)));
        assert!(ping(&mut p, Ok(486)), "one answer is up again");
        assert!(ping(&mut p, Err(408)));
        assert!(ping(&mut p, Ok(200)), "the count starts again");
        assert!(ping(&mut p, Err(408)));
        assert!(!ping(&mut p, Err(408)));
    }

    #[test]
    fn strays_and_provisionals_are_ignored() {
        let mut p = Pinger::new(cfg(30), 3);
        let t = Instant::now();
        let r = p.poll_request(t).unwrap();
        p.handle_response(t, &response_to(&r, 100, "Trying"));
        let mut other = r.clone();
        other.headers.set(HeaderName::CSeq, "9 OPTIONS");
        p.handle_response(t, &response_to(&other, 503, ""));
        let mut other = r.clone();
        other.headers.set(HeaderName::CallId, "x");
        p.handle_response(t, &response_to(&other, 503, ""));
        assert!(p.poll_request(t + secs(100)).is_none(), "still in flight");
        p.handle_response(t, &response_to(&r, 200, ""));
        assert!(p.is_up());
        assert!(p.poll_request(t + secs(30)).is_some());
    }

    #[test]
    fn with_three_addresses_three_misses_are_down_and_ping_now_skips_the_wait() {
        let mut p = Pinger::new(cfg(30), 4);
        p.set_down_after(3);
        let t = Instant::now();
        for k in 0..3u64 {
            assert!(p.is_up(), "{k} misses");
            let r = p.poll_request(t).expect("due at once");
            assert!(!p.ping_now(), "one in flight");
            p.handle_response(t, &response_to(&r, 503, ""));
            assert!(p.ping_now());
        }
        assert!(!p.is_up());
        // One address is at least two misses: one lost ping is not down.
        let mut p = Pinger::new(cfg(30), 5);
        p.set_down_after(1);
        let r = p.poll_request(t).unwrap();
        p.handle_failure(t, 408);
        assert!(p.is_up());
        assert!(
            p.poll_request(t).is_none(),
            "the next one waits for the interval"
        );
        assert!(p.ping_now());
        assert!(p.poll_request(t).is_some(), "{r:?}");
    }
}
