//! A seeded network emulator for transaction scenarios: a UAC and a UAS, each a
//! `TransactionLayer` with a minimal TU, joined by a link with latency, optional jitter
//! (which reorders) and loss — either one chosen message or a seeded random fraction.
//! Deterministic: the same scenario and loss give the same run.

use super::{parse, reply, request};
use ferroswitch::net::{Peer, Transport};
use ferroswitch::sip::{ack_for_non2xx, HeaderName, Message, Method, Request, Response};
use ferroswitch::transaction::{
    TransactionConfig, TransactionEvent, TransactionKey, TransactionLayer,
};
use std::time::{Duration, Instant};

/// splitmix64: small, seedable, good enough to pick losses.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Loss {
    None,
    /// Drop the message with this index (0 = the first put on the wire, either direction).
    Index(usize),
    /// Drop each message with `percent` probability; add 0..jitter_ms of extra latency.
    Random {
        seed: u64,
        percent: u64,
        jitter_ms: u64,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub method: &'static str,
    pub final_status: u16,
    /// The UAS TU sends a 180 as soon as the request arrives.
    pub ringing: bool,
    /// How long the UAS TU takes to send the final response.
    pub answer_after_ms: u64,
    pub transport: Transport,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// Messages put on the wire (including dropped ones).
    pub messages: usize,
    pub dropped: usize,
    /// Requests the UAS TU saw (must be 1: retransmissions never reach it).
    pub uas_requests: usize,
    /// Final statuses the UAC TU saw, 2xx retransmissions included.
    pub uac_finals: Vec<u16>,
    pub uas_acks: usize,
    pub timeouts: usize,
    pub left_uac: usize,
    pub left_uas: usize,
    pub retransmissions: u64,
    pub end_ms: u64,
    /// One line per message: time, direction, first line, dropped.
    pub log: Vec<String>,
}

struct Packet {
    at: Instant,
    seq: usize,
    to_uas: bool,
    bytes: bytes::Bytes,
}

/// The UAS core's 2xx retransmission (§13.3.1.4): T1 doubling to T2 until the ACK, for
/// at most 64·T1.
struct OkResend {
    at: Instant,
    interval: Duration,
    until: Instant,
    key: TransactionKey,
    resp: Response,
}

const UAC: u16 = 5060;
const UAS: u16 = 5070;
const LATENCY_MS: u64 = 20;

pub fn simulate(s: Scenario, loss: Loss) -> Outcome {
    let config = TransactionConfig::default();
    let (t1, t2) = (config.timers.t1, config.timers.t2);
    let mut uac = TransactionLayer::new(config);
    let mut uas = TransactionLayer::new(config);
    let uac_peer = Peer::new(s.transport, ([198, 51, 100, 1], UAC).into());
    let uas_peer = Peer::new(s.transport, ([198, 51, 100, 2], UAS).into());
    let t0 = Instant::now();
    let mut now = t0;
    let mut rng = match loss {
        Loss::Random { seed, .. } => Rng::new(seed),
        _ => Rng::new(0),
    };
    let mut out = Outcome::default();
    let mut wire: Vec<Packet> = Vec::new();

    let req = request(s.method, "uac1", 1);
    uac.send_request(now, req.clone(), uas_peer).unwrap();

    // UAS TU state: the server key and when to answer; 2xx retransmission (§13.3.1.4).
    let mut answer: Option<(Instant, TransactionKey, Request)> = None;
    let mut ok_resend: Option<OkResend> = None;

    loop {
        // Drain both layers and run the TUs until nothing more comes out.
        loop {
            let mut progressed = false;
            for (from_uac, layer) in [(true, &mut uac), (false, &mut uas)] {
                while let Some(x) = layer.poll_transmit() {
                    progressed = true;
                    let seq = out.messages;
                    out.messages += 1;
                    let drop = match loss {
                        Loss::None => false,
                        Loss::Index(k) => k == seq,
                        Loss::Random { percent, .. } => rng.chance(percent),
                    } && !s.transport.is_reliable();
                    let jitter = match loss {
                        Loss::Random { jitter_ms, .. } => rng.below(jitter_ms),
                        _ => 0,
                    };
                    let first = String::from_utf8_lossy(&x.bytes)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let dir = if from_uac { "->" } else { "<-" };
                    let ms = (now - t0).as_millis();
                    out.log.push(format!(
                        "{seq:3} {ms:6} {dir} {first}{}",
                        if drop { "  (lost)" } else { "" }
                    ));
                    if drop {
                        out.dropped += 1;
                        continue;
                    }
                    wire.push(Packet {
                        at: now + Duration::from_millis(LATENCY_MS + jitter),
                        seq,
                        to_uas: from_uac,
                        bytes: x.bytes,
                    });
                }
            }
            while let Some(e) = uas.poll_event() {
                progressed = true;
                match e {
                    TransactionEvent::Request { key, request, .. } => {
                        out.uas_requests += 1;
                        if s.ringing {
                            uas.send_response(now, &key, reply(&request, 180, Some("uas")))
                                .unwrap();
                        }
                        answer =
                            Some((now + Duration::from_millis(s.answer_after_ms), key, request));
                    }
                    TransactionEvent::Ack { .. } => {
                        out.uas_acks += 1;
                        ok_resend = None;
                    }
                    TransactionEvent::Timeout { .. } => out.timeouts += 1,
                    _ => {}
                }
            }
            while let Some(e) = uac.poll_event() {
                progressed = true;
                let resp = match e {
                    TransactionEvent::Response { response, .. } => response,
                    TransactionEvent::StrayResponse { response, .. } => response,
                    TransactionEvent::Timeout { .. } => {
                        out.timeouts += 1;
                        continue;
                    }
                    _ => continue,
                };
                if resp.status < 200 {
                    continue;
                }
                out.uac_finals.push(resp.status);
                if req.method == Method::Invite && resp.status < 300 {
                    // §13.2.2.4: the UAC core ACKs every 2xx, in a new transaction branch.
                    let mut ack = ack_for_non2xx(&req, &resp);
                    ack.headers.set(
                        HeaderName::Via,
                        "SIP/2.0/UDP a.example:5060;branch=z9hG4bKack2xx",
                    );
                    uac.send_stateless(uas_peer, &Message::Request(ack));
                }
            }
            if !progressed {
                break;
            }
        }

        let next = [
            uac.poll_timeout(),
            uas.poll_timeout(),
            wire.iter().map(|p| p.at).min(),
            answer.as_ref().map(|a| a.0),
            ok_resend.as_ref().map(|o| o.at),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        assert!(next - t0 < Duration::from_secs(300), "scenario never ends");
        now = next;

        wire.sort_by_key(|p| (p.at, p.seq));
        while wire.first().is_some_and(|p| p.at <= now) {
            let p = wire.remove(0);
            let (layer, from) = if p.to_uas {
                (&mut uas, uac_peer)
            } else {
                (&mut uac, uas_peer)
            };
            match parse(&p.bytes) {
                Message::Request(r) => layer.handle_request(now, r, from).unwrap(),
                Message::Response(r) => layer.handle_response(now, r, from).unwrap(),
            }
        }
        uac.handle_timeout(now);
        uas.handle_timeout(now);
        if answer.as_ref().is_some_and(|a| a.0 <= now) {
            if let Some((_, key, request)) = answer.take() {
                let resp = reply(&request, s.final_status, Some("uas"));
                uas.send_response(now, &key, resp.clone()).unwrap();
                if request.method == Method::Invite && resp.status < 300 {
                    ok_resend = Some(OkResend {
                        at: now + t1,
                        interval: t1,
                        until: now + t1 * 64,
                        key,
                        resp,
                    });
                }
            }
        }
        if let Some(mut o) = ok_resend.take() {
            if o.at > now {
                ok_resend = Some(o);
            } else if now < o.until {
                // Through the transaction while Accepted, statelessly after Timer L.
                if uas.send_response(now, &o.key, o.resp.clone()).is_err() {
                    uas.send_stateless(uac_peer, &Message::Response(o.resp.clone()));
                }
                o.interval = (o.interval * 2).min(t2);
                o.at = now + o.interval;
                ok_resend = Some(o);
            }
        }
    }
    out.left_uac = uac.len();
    out.left_uas = uas.len();
    out.retransmissions = uac.stats().retransmissions + uas.stats().retransmissions;
    out.end_ms = (now - t0).as_millis() as u64;
    out
}
