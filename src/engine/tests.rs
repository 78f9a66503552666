//! Scenario tests of the whole engine on a virtual clock: messages go in as the transport
//! would hand them over (parsed, top Via stamped), transmits come out of `poll_transmit`, and
//! time moves only when a test says so, timer by timer in deadline order (quinn's
//! `tests/util.rs` way). The nonce secret and the random seed are fixed; wall time starts at
//! the seed trace's Date so the 200 OK can be compared with FreeSWITCH's.
//!
//! The harness never reads a real clock and never sleeps. This file holds it: `Net` (the
//! engine, the virtual clock, `deliver`/`udp` in and transmits out, `advance`/`run_until` to
//! fire timers) and `Phone` (a registering client that answers digest challenges). The
//! scenarios are in the submodules, one subject each:
//! - `auth`: digest authentication of REGISTER (RFC 3261 §22, RFC 7616), stale nonces, replay;
//! - `binding`: §10.3 bindings, expiry, several contacts, 423, NAT and TCP connections;
//! - `cluster`: nodes sharing a nonce secret: another node's (or run's) nonce is stale;
//! - `path`: RFC 3327 Path from a trusted edge proxy;
//! - `calls`: calls through the B2BUA (its own harness of scripted phones, and one file per
//!   subject under `calls/`: admission, checks, flow, endings, loss, identity, in-dialog
//!   requests, re-INVITE, transfer, shutdown);
//! - `hardening`: issue 17 through the engine (account lock-out, the `Server` header);
//! - `keepalive`: NAT keep-alive OPTIONS to registered phones (issue 11);
//! - `server`: OPTIONS, 501, 400 for malformed requests, retransmissions;
//! - `wire`: what goes on the wire in answer to hostile input (issue 9).

mod auth;
mod binding;
mod calls;
mod cluster;
mod control;
mod hardening;
mod keepalive;
mod path;
mod server;
mod wire;

use super::{Engine, EngineConfig};
use crate::auth::{Answer, Secret};
use crate::auth::{Challenge, DigestChallenge, DigestCredentials, NonceSecret};
use crate::clock::from_unix;
use crate::config::{User, Users};
use crate::net::{Peer, Transport};
use crate::registrar::{LocationStore, MemoryStore, RegistrarConfig};
use crate::sip::{parse_datagram, HeaderName, Message, Response};
use crate::transaction::{TransactionConfig, Transmit};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The seed's server and Zoiper's address.
const SERVER: &str = "192.168.4.4:5060";
const ZOIPER: &str = "192.168.4.4:5090";
/// Unix time of the seed's `Date: Tue, 27 Apr 2010 12:30:57 GMT`.
const SEED_WALL: u64 = 1_272_371_457;
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn user(id: &str, password: &str, enabled: bool) -> User {
    User {
        id: id.into(),
        secret: Secret::Password(password.into()),
        display_name: None,
        enabled,
        forward_all: None,
        forward_busy: None,
        forward_no_answer: None,
        no_answer_timeout: None,
        context: None,
        file: PathBuf::from("test-users.toml"),
        line: 1,
    }
}

/// alice and bob as shipped (password 1234), a disabled carol, and dave (1234: a transfer's
/// target).
fn users() -> Users {
    Users::from_list(vec![
        user("alice", "1234", true),
        user("bob", "1234", true),
        user("dave", "1234", true),
        user("carol", "carol-secret-99", false),
    ])
    .expect("distinct ids")
}

fn config() -> EngineConfig {
    EngineConfig {
        // Unset as in the shipped configuration: the realm is the request URI's host.
        domain: None,
        registrar: RegistrarConfig::default(),
        digest_algorithms: vec![crate::auth::Algorithm::Md5],
        nonce_lifetime: NONCE_LIFETIME,
        transactions: TransactionConfig::default(),
        calls: super::CallSettings::default(),
        // The guard has its own tests (and one through the engine below); scenario tests
        // send many failures and bursts from one address on purpose.
        security: crate::security::SecurityConfig {
            enabled: false,
            ..Default::default()
        },
        user_agent: "ferroswitch-test".into(),
        trace: super::TraceConfig::default(),
        gateways: Vec::new(),
        node_id: None,
        nonce_secret: None,
    }
}

/// The engine on the shared virtual network (`engine::sim::Sim`: `engine`, `now`, `wall()`,
/// `deliver`, `drain`, `run_until`, `advance` come from there) plus the store it writes.
struct Net {
    sim: super::sim::Sim,
    store: Arc<MemoryStore>,
}

impl std::ops::Deref for Net {
    type Target = super::sim::Sim;
    fn deref(&self) -> &super::sim::Sim {
        &self.sim
    }
}

impl std::ops::DerefMut for Net {
    fn deref_mut(&mut self) -> &mut super::sim::Sim {
        &mut self.sim
    }
}

impl Net {
    fn new() -> Net {
        Net::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut EngineConfig)) -> Net {
        Net::with_seed(3261, tweak)
    }

    /// Another engine with the same nonce secret: another node of a cluster, or this one
    /// after a restart (`seed` draws the run id).
    fn with_seed(seed: u64, tweak: impl FnOnce(&mut EngineConfig)) -> Net {
        let mut cfg = config();
        tweak(&mut cfg);
        let store = Arc::new(MemoryStore::new());
        let dyn_store: Arc<dyn LocationStore> = store.clone();
        let engine = Engine::with_secret(
            cfg,
            users(),
            dyn_store,
            NonceSecret::from_bytes([7; 32]),
            StdRng::seed_from_u64(seed),
        );
        // Wall time starts at the seed's Date.
        let sim = super::sim::Sim::new(engine, addr(SERVER), Instant::now(), from_unix(SEED_WALL));
        Net { sim, store }
    }

    fn udp(&mut self, source: SocketAddr, raw: &str) -> Vec<Transmit> {
        self.deliver(Transport::Udp, source, None, raw.as_bytes())
    }

    /// Sends `raw` over UDP and expects exactly one response back to `source`.
    fn ask(&mut self, source: SocketAddr, raw: &str) -> Response {
        let out = self.udp(source, raw);
        assert_eq!(out.len(), 1, "expected one response, got {out:?}");
        assert_eq!(out[0].to, Peer::new(Transport::Udp, source));
        response(&out[0])
    }

    fn aor_contacts(&self, aor: &str) -> Vec<String> {
        self.store
            .lookup(aor, self.now)
            .into_iter()
            .map(|b| b.contact)
            .collect()
    }
}

fn response(t: &Transmit) -> Response {
    match parse_datagram(&t.bytes) {
        Ok(Message::Response(r)) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers.get_str(&HeaderName::from_wire(name))
}

fn headers<'a>(r: &'a Response, name: &str) -> Vec<&'a str> {
    let name = HeaderName::from_wire(name);
    r.headers
        .iter()
        .filter(|h| h.name == name)
        .filter_map(|h| h.value_str())
        .collect()
}

fn reason(r: &Response) -> String {
    String::from_utf8_lossy(&r.reason).into_owned()
}

/// The single Digest challenge of a 401.
fn challenge_of(r: &Response) -> DigestChallenge {
    assert_eq!(r.status, 401, "not a 401: {} {}", r.status, reason(r));
    let values = headers(r, "WWW-Authenticate");
    assert_eq!(values.len(), 1, "one challenge with MD5 only: {values:?}");
    match crate::auth::parse_challenges(values[0])
        .expect("challenge parses")
        .as_slice()
    {
        [Challenge::Digest(c)] => c.clone(),
        other => panic!("not one Digest challenge: {other:?}"),
    }
}

/// A phone: builds REGISTERs (and other requests) the way Zoiper does, answers challenges
/// with the client side of `crate::auth`, counts CSeq and nc.
struct Phone {
    user: String,
    password: String,
    /// The request URI's host (= the realm when no domain is configured).
    domain: String,
    /// Via sent-by and transport token.
    via: String,
    transport: &'static str,
    contact: String,
    call_id: String,
    tag: String,
    cseq: u32,
    branches: u32,
    challenge: Option<DigestChallenge>,
    nc: u32,
}

impl Phone {
    fn new(user: &str, password: &str, via: &str) -> Phone {
        Phone {
            user: user.into(),
            password: password.into(),
            domain: "192.168.4.4".into(),
            via: via.into(),
            transport: "UDP",
            contact: format!("<sip:{user}@{via};transport=UDP>"),
            call_id: format!("call-{user}-{via}"),
            tag: format!("tag-{user}"),
            cseq: 0,
            branches: 0,
            challenge: None,
            nc: 0,
        }
    }

    fn ruri(&self) -> String {
        format!("sip:{}", self.domain)
    }

    /// A REGISTER with the next CSeq and a fresh branch; `extra` lines (Contact, Expires …)
    /// replace the default `Contact` + `Expires: 3600` when given. Carries credentials for
    /// the last challenge seen, with the next nc.
    fn register(&mut self, extra: &[&str]) -> String {
        self.cseq += 1;
        let cseq = self.cseq;
        self.request("REGISTER", cseq, extra)
    }

    /// The same, at a CSeq of the caller's choosing (out-of-order tests).
    fn request(&mut self, method: &str, cseq: u32, extra: &[&str]) -> String {
        self.branches += 1;
        let mut lines = vec![
            format!("{method} {} SIP/2.0", self.ruri()),
            format!(
                "Via: SIP/2.0/{} {};branch=z9hG4bK-test-{}-{};rport",
                self.transport, self.via, self.user, self.branches
            ),
            "Max-Forwards: 70".into(),
            format!("To: <sip:{}@{}>", self.user, self.domain),
            format!("From: <sip:{}@{}>;tag={}", self.user, self.domain, self.tag),
            format!("Call-ID: {}", self.call_id),
            format!("CSeq: {cseq} {method}"),
        ];
        if extra.is_empty() {
            lines.push(format!("Contact: {}", self.contact));
            lines.push("Expires: 3600".into());
        } else {
            lines.extend(extra.iter().map(|l| l.to_string()));
        }
        if let Some(auth) = self.authorization(method) {
            lines.push(format!("Authorization: {auth}"));
        }
        lines.push("User-Agent: ferroswitch-test-phone".into());
        lines.push("Content-Length: 0".into());
        lines.join("\r\n") + "\r\n\r\n"
    }

    fn authorization(&mut self, method: &str) -> Option<String> {
        let ch = self.challenge.clone()?;
        self.nc += 1;
        Some(self.credentials(&ch, method, self.nc).to_string())
    }

    fn credentials(&self, ch: &DigestChallenge, method: &str, nc: u32) -> DigestCredentials {
        let uri = self.ruri();
        DigestCredentials::answer(
            ch,
            &Answer {
                username: &self.user,
                password: &self.password,
                method,
                uri: &uri,
                body: b"",
                cnonce: "b4c6ac7e57fc76b85df9440994e2ede8",
                nc,
            },
        )
    }

    /// Takes the challenge of a 401 (nc restarts with a new nonce).
    fn learn(&mut self, r: &Response) {
        self.challenge = Some(challenge_of(r));
        self.nc = 0;
    }
}

impl Net {
    /// Registers `phone` from `source` with `extra` lines, answering one challenge if
    /// needed; returns the final response.
    fn register(&mut self, phone: &mut Phone, source: SocketAddr, extra: &[&str]) -> Response {
        let first = self.ask(source, &phone.register(extra));
        if first.status != 401 {
            return first;
        }
        phone.learn(&first);
        self.ask(source, &phone.register(extra))
    }
}

/// An OPTIONS from a monitor at `source`, with its own branch (and Call-ID).
fn options(source: &str, branch: &str) -> String {
    format!(
        "OPTIONS sip:192.168.4.4 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {source};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:192.168.4.4>\r\n\
         From: <sip:monitor@{source}>;tag=mon1\r\n\
         Call-ID: options-{branch}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// Log lines (debug and up) written while `f` runs, as text.
fn logs_of(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    crate::keep_log_callsites_open();
    tracing::subscriber::with_default(sub, || {
        // Callsites first hit before this test's subscriber existed are asked again.
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let bytes = buf.0.lock().expect("not poisoned").clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The header names of `r`, in order.
fn header_names(r: &Response) -> Vec<String> {
    r.headers
        .iter()
        .map(|h| h.name.as_str().to_string())
        .collect()
}
