//! Shared test scaffolding for the transaction tests: message builders and a harness that
//! drives one `TransactionLayer` on a virtual clock and records what comes out, stamped with
//! the virtual time in milliseconds since the start.
#![allow(dead_code)]

pub mod netem;

use bytes::Bytes;
use ferroswitch::net::{Peer, Transport};
use ferroswitch::sip::{parse_datagram, response_to, set_to_tag, Message, Request, Response};
use ferroswitch::transaction::{
    TransactionConfig, TransactionError, TransactionEvent, TransactionKey, TransactionLayer,
    Transmit,
};
use std::time::{Duration, Instant};

pub fn udp(port: u16) -> Peer {
    Peer::new(Transport::Udp, ([192, 0, 2, 1], port).into())
}

pub fn tcp(port: u16) -> Peer {
    Peer::new(Transport::Tcp, ([192, 0, 2, 1], port).into())
}

pub fn parse(bytes: &[u8]) -> Message {
    parse_datagram(bytes).expect("the layer writes parseable messages")
}

pub fn parse_request(bytes: &[u8]) -> Request {
    match parse(bytes) {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, got {}", r.status),
    }
}

pub fn parse_response(bytes: &[u8]) -> Response {
    match parse(bytes) {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// A request as a phone would send it, parsed from text. `via` is the whole top Via value,
/// so RFC 2543 tests can leave the branch out.
pub fn request_via(method: &str, via: &str, cseq: u32, to_tag: Option<&str>) -> Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let text = format!(
        "{method} sip:bob@b.example SIP/2.0\r\n\
Via: {via}\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@b.example>{to_tag}\r\n\
From: Alice <sip:alice@a.example>;tag=a1\r\n\
Call-ID: 3848276298220188511@a.example\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:alice@192.0.2.1:5060>\r\n\
Content-Length: 0\r\n\r\n"
    );
    parse_request(text.as_bytes())
}

/// A request with an RFC 3261 branch `z9hG4bK<branch>`.
pub fn request(method: &str, branch: &str, cseq: u32) -> Request {
    request_via(
        method,
        &format!("SIP/2.0/UDP a.example:5060;branch=z9hG4bK{branch}"),
        cseq,
        None,
    )
}

/// A response to `req` with a To tag (none for 100, as §17.2.1 wants).
pub fn reply(req: &Request, status: u16, tag: Option<&str>) -> Response {
    let mut r = response_to(req, status, "Reason");
    if let Some(tag) = tag {
        set_to_tag(&mut r, tag);
    }
    r
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One layer on a virtual clock with a log of what it emitted.
pub struct Harness {
    pub layer: TransactionLayer,
    pub t0: Instant,
    pub now: Instant,
    /// (ms since t0, transmit)
    pub sent: Vec<(u64, Transmit)>,
    /// (ms since t0, event)
    pub events: Vec<(u64, TransactionEvent)>,
}

impl Harness {
    pub fn new(config: TransactionConfig) -> Harness {
        let t0 = Instant::now();
        Harness {
            layer: TransactionLayer::new(config),
            t0,
            now: t0,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn default_config() -> Harness {
        Harness::new(TransactionConfig::default())
    }

    pub fn elapsed_ms(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    /// Moves the clock to `t0 + at_ms`, firing every timer due on the way.
    pub fn advance_to(&mut self, at_ms: u64) {
        let until = self.t0 + ms(at_ms);
        while let Some(at) = self.layer.poll_timeout() {
            if at > until {
                break;
            }
            assert!(at >= self.now, "a timer in the past");
            self.now = at;
            self.layer.handle_timeout(at);
            self.collect();
        }
        self.now = until;
    }

    /// Records what the layer queued, stamped with the current virtual time.
    pub fn collect(&mut self) {
        let t = self.elapsed_ms();
        while let Some(x) = self.layer.poll_transmit() {
            self.sent.push((t, x));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((t, e));
        }
    }

    pub fn send_request(&mut self, req: Request, to: Peer) -> TransactionKey {
        let k = self.layer.send_request(self.now, req, to).unwrap();
        self.collect();
        k
    }

    pub fn send_response(
        &mut self,
        key: &TransactionKey,
        resp: Response,
    ) -> Result<(), TransactionError> {
        let r = self.layer.send_response(self.now, key, resp);
        self.collect();
        r
    }

    pub fn recv_request(&mut self, req: Request, from: Peer) -> Result<(), TransactionError> {
        let r = self.layer.handle_request(self.now, req, from);
        self.collect();
        r
    }

    pub fn recv_response(&mut self, resp: Response, from: Peer) {
        self.layer.handle_response(self.now, resp, from).unwrap();
        self.collect();
    }

    /// Instants (ms) of every transmit so far.
    pub fn sent_at(&self) -> Vec<u64> {
        self.sent.iter().map(|(t, _)| *t).collect()
    }

    pub fn sent_bytes(&self) -> Vec<Bytes> {
        self.sent.iter().map(|(_, x)| x.bytes.clone()).collect()
    }

    /// Forgets the logs (keeps the layer and the clock).
    pub fn clear(&mut self) {
        self.sent.clear();
        self.events.clear();
    }

    /// The first `Request` event's key.
    pub fn request_key(&self) -> TransactionKey {
        self.events
            .iter()
            .find_map(|(_, e)| match e {
                TransactionEvent::Request { key, .. } => Some(key.clone()),
                _ => None,
            })
            .expect("a Request event")
    }

    pub fn count_events(&self, f: impl Fn(&TransactionEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    /// When the `Terminated` event for `key` came, if it did.
    pub fn terminated_at(&self, key: &TransactionKey) -> Option<u64> {
        self.events.iter().find_map(|(t, e)| match e {
            TransactionEvent::Terminated { key: k } if k == key => Some(*t),
            _ => None,
        })
    }

    /// Statuses of the responses the layer sent, in order.
    pub fn sent_statuses(&self) -> Vec<u16> {
        self.sent
            .iter()
            .filter_map(|(_, x)| match parse(&x.bytes) {
                Message::Response(r) => Some(r.status),
                Message::Request(_) => None,
            })
            .collect()
    }
}
