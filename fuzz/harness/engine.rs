//! The whole daemon's message handling: an in-memory engine (registrar, digest auth, OPTIONS,
//! whatever the engine grows) fed arbitrary datagrams from a few peers over UDP and TCP on a
//! virtual clock. Never panics, and once every timer has run for a few virtual hours the
//! transaction table and the location store are empty again.
//!
//! Input: chunks separated by `SEP`; each chunk is a control byte and a payload.
//! Every datagram the engine sends is checked on the way out (`check_wire`): no control octet
//! in its head but the CRLF line ends, no reason phrase over 64 octets, and no stateless 400
//! more than 512 octets larger than the message it answers (issues 9.6, 9.7).
//!
//! Control bits: 0-1 the peer (UDP v4, second UDP v4, TCP, UDP v6); 2-4 how far the clock
//! moves first (timers fire on the way); 5 deliver twice (a retransmission); 6 answer the
//! last 401/407 this peer got with alice's credentials before sending (so mutated requests
//! get past authentication); 7 use a wrong password instead.

use bytes::Bytes;
use ferroswitch::auth::{parse_challenges, Answer, Challenge, DigestCredentials, NonceSecret};
use ferroswitch::clock::from_unix;
use ferroswitch::config::Config;
use ferroswitch::engine::sim::{received, Sim};
use ferroswitch::engine::Engine;
use ferroswitch::net::{ConnectionId, Origin, Peer, Transport};
use ferroswitch::registrar::{LocationStore, MemoryStore};
use ferroswitch::sip::{parse_datagram, parse_framed, Frame, HeaderName, Message, StreamFramer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const SEP: &[u8] = b"\n\x00\x00\n";
const SERVER: &str = "192.0.2.1:5060";
const PEERS: [(Transport, &str); 4] = [
    (Transport::Udp, "192.0.2.10:5060"),
    (Transport::Udp, "192.0.2.11:5062"),
    (Transport::Tcp, "192.0.2.12:40000"),
    (Transport::Udp, "[2001:db8::10]:5060"),
];
const STEPS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_millis(10),
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(33),
    Duration::from_secs(300),
    Duration::from_secs(3600),
];
/// Unix time the virtual wall clock starts at (the seed trace's Date).
const WALL0: u64 = 1_272_371_457;
/// How much larger than the message it answers a stateless 400 may be: the status line, our
/// Server and Content-Length headers, a To tag, and what stamping adds to the top Via.
pub const MAX_400_GROWTH: usize = 512;

/// Checks one datagram the engine sends; `answering` is the size of the message being
/// handled when it was sent (`None` when a timer sent it). Panics on a violation.
pub fn check_wire(bytes: &[u8], stateless: bool, answering: Option<usize>) {
    let shown = || String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned();
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in what we send: {:?}", shown()));
    let head = &bytes[..end];
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            !line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
            "a control octet in a line we send: {:?}\n{:?}",
            String::from_utf8_lossy(line),
            shown()
        );
    }
    let Some(status_line) = head.split(|&b| b == b'\r').next() else {
        return;
    };
    if !status_line.starts_with(b"SIP/2.0 ") {
        return;
    }
    let reason = status_line.get(12..).unwrap_or_default();
    assert!(
        reason.len() <= 64,
        "reason phrase of {} octets: {:?}",
        reason.len(),
        shown()
    );
    if let (true, true, Some(n)) = (
        status_line.starts_with(b"SIP/2.0 400 "),
        stateless,
        answering,
    ) {
        assert!(
            bytes.len() <= n + MAX_400_GROWTH,
            "a stateless 400 of {} octets answers {n}: {:?}",
            bytes.len(),
            shown()
        );
    }
}

const CONFIG: &str = r#"
[server]
listen = ["udp:192.0.2.1:5060", "tcp:192.0.2.1:5060"]
users = "users"
[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
[security]
# alice/bob keep the seed's password 1234 on this (never bound) public address.
allow_weak_passwords = true
"#;
const USERS: &str = r#"
[[user]]
id = "alice"
password = "1234"
[[user]]
id = "bob"
password = "1234"
[[user]]
id = "carol"
password = "carol-secret-99"
enabled = false
"#;

/// The configuration, loaded once through the real loader (so new engine settings get their
/// defaults without touching this file).
fn config() -> &'static Config {
    static CONFIG_ONCE: OnceLock<Config> = OnceLock::new();
    CONFIG_ONCE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferroswitch-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("users")).expect("fuzz temp dir");
        std::fs::write(dir.join("users/fuzz.toml"), USERS).expect("users file");
        let file = dir.join("ferroswitch.toml");
        let cfg = Config::from_toml(CONFIG, &file).expect("fuzz config is valid");
        // The users are in memory now; leave nothing behind.
        let _ = std::fs::remove_dir_all(&dir);
        cfg
    })
}

/// The engine on the shared virtual network (`engine::sim::Sim`, as the engine's own scenario
/// tests use it) plus what a fuzzing peer remembers.
struct Harness {
    sim: Sim,
    store: Arc<MemoryStore>,
    framer: StreamFramer,
    /// Last 401/407 sent to each peer: (status, challenge header values).
    challenged: [Option<(u16, Vec<String>)>; 4],
    nc: u32,
    /// Size of the message being handled (`None` while timers run).
    answering: Option<usize>,
}

impl Harness {
    fn new() -> Harness {
        let cfg = config();
        let store = Arc::new(MemoryStore::new());
        let dyn_store: Arc<dyn LocationStore> = store.clone();
        let engine = Engine::with_secret(
            ferroswitch::app::engine_config(cfg),
            cfg.users.clone(),
            dyn_store,
            NonceSecret::from_bytes([7; 32]),
            StdRng::seed_from_u64(3261),
        );
        let local = SERVER.parse().expect("server address");
        Harness {
            sim: Sim::new(engine, local, std::time::Instant::now(), from_unix(WALL0)),
            store,
            framer: StreamFramer::default(),
            challenged: Default::default(),
            nc: 0,
            answering: None,
        }
    }

    /// Moves the clock on by `by`, firing each timer at its deadline (bounded by `Sim`).
    fn advance(&mut self, by: Duration) {
        let sent = self.sim.advance(by);
        self.check(sent);
    }

    fn drain(&mut self) {
        let sent = self.sim.drain();
        self.check(sent);
    }

    /// Checks what the engine sent and remembers the challenges each peer got.
    fn check(&mut self, sent: Vec<ferroswitch::transaction::Transmit>) {
        for t in sent {
            check_wire(&t.bytes, t.key.is_none(), self.answering);
            let Some(i) = PEERS.iter().position(|(tr, a)| {
                t.to == Peer::new(*tr, a.parse::<SocketAddr>().expect("peer address"))
            }) else {
                continue;
            };
            if let Ok(Message::Response(r)) = parse_datagram(&t.bytes) {
                let header = match r.status {
                    401 => HeaderName::WwwAuthenticate,
                    407 => HeaderName::ProxyAuthenticate,
                    _ => continue,
                };
                let values = r
                    .headers
                    .get_all(&header)
                    .filter_map(|h| h.value_str().map(String::from))
                    .collect();
                self.challenged[i] = Some((r.status, values));
            }
        }
    }

    /// Adds credentials answering the peer's last challenge to a request that parses.
    fn answer(&mut self, peer: usize, payload: &[u8], wrong: bool) -> Option<Bytes> {
        let (status, values) = self.challenged[peer].clone()?;
        let Ok(Message::Request(mut req)) = parse_datagram(payload) else {
            return None;
        };
        let challenge = values.iter().find_map(|v| {
            parse_challenges(v).ok()?.into_iter().find_map(|c| match c {
                Challenge::Digest(d) => Some(d),
                Challenge::Other(_) => None,
            })
        })?;
        self.nc += 1;
        let creds = DigestCredentials::answer(
            &challenge,
            &Answer {
                username: "alice",
                password: if wrong { "wrong" } else { "1234" },
                method: req.method.as_str(),
                uri: req.uri_str()?,
                body: &req.body,
                cnonce: "f0f0f0f0",
                nc: self.nc,
            },
        );
        let name = if status == 407 {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        };
        req.headers.push(name, creds.to_string());
        // A new transaction, as a phone answering a challenge sends: a fresh branch.
        if let Some(via) = req.headers.first_mut(&HeaderName::Via) {
            if let Some(v) = via.value_str() {
                let fresh = v.replacen("branch=", &format!("branch=z9hG4bKfz{}", self.nc), 1);
                via.value = Bytes::from(fresh);
            }
        }
        Some(req.to_bytes())
    }

    fn deliver(&mut self, peer: usize, raw: &[u8]) {
        let (transport, addr) = PEERS[peer];
        let source: SocketAddr = addr.parse().expect("peer address");
        let origin = Origin {
            transport,
            source,
            local: self.sim.local,
            connection: (transport == Transport::Tcp).then_some(ConnectionId(1)),
        };
        if transport == Transport::Tcp {
            // As the transport does: frame, then parse each message; a framing error closes
            // the connection (a fresh framer stands for the next one).
            self.framer.push(raw);
            loop {
                match self.framer.pop() {
                    Ok(Some(Frame::Message(m))) => {
                        let payload = received(parse_framed(m.clone()), &m, source);
                        self.answering = Some(m.len());
                        self.sim.handle(payload, origin);
                        self.drain();
                    }
                    Ok(Some(Frame::Ping | Frame::Pong)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        self.framer = StreamFramer::default();
                        break;
                    }
                }
            }
        } else {
            let payload = received(parse_datagram(raw), raw, source);
            self.answering = Some(raw.len());
            self.sim.handle(payload, origin);
            self.drain();
        }
        self.answering = None;
    }
}

/// `FUZZ_DEBUG=1`: print the engine's counters after each input (to check seeds reach
/// past authentication).
fn debug() -> bool {
    static DEBUG: OnceLock<bool> = OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("FUZZ_DEBUG").is_some())
}

fn chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                rest = Some(&r[i + SEP.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The check the fuzzer runs on every input; panics on a violation.
pub fn check(data: &[u8]) {
    let mut h = Harness::new();
    for chunk in chunks(data).take(64) {
        let Some((&ctrl, body)) = chunk.split_first() else {
            continue;
        };
        let peer = usize::from(ctrl & 3);
        h.advance(STEPS[usize::from((ctrl >> 2) & 7)]);
        let answered = if ctrl & 0x40 != 0 {
            h.answer(peer, body, ctrl & 0x80 != 0)
        } else {
            None
        };
        let raw = answered.as_deref().unwrap_or(body);
        h.deliver(peer, raw);
        if ctrl & 0x20 != 0 {
            h.deliver(peer, raw);
        }
    }
    if debug() {
        eprintln!("{:?}", h.sim.engine.stats());
    }
    // Long enough for every transaction timer and the longest registration (max_expires).
    h.advance(Duration::from_secs(2 * 3600));
    assert_eq!(
        h.sim.engine.transactions().len(),
        0,
        "transactions left after 2 h"
    );
    assert_eq!(h.store.counts(), (0, 0), "bindings left after 2 h");
}
