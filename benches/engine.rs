//! Engine throughput without sockets (issue 15): the sans-IO engine alone, on the virtual
//! clock of `engine::sim`, fed the datagrams of the seed's digest registration and of its
//! authenticated call (X-Lite calling, Zoiper answering), each with fresh Call-IDs, tags and
//! branches. What it separates: the loopback suite (`benches/load/`) measures the daemon with
//! the kernel's share in it; this measures only our user-space cost per registration and per
//! call, in seconds, so a regression shows before a full run.
//!
//! Each inbound datagram goes in as raw bytes through `parse_datagram` + `received` (parsing
//! is the engine's cost, as in the daemon), and what the engine sends is taken with
//! `poll_transmit` as the driver does. Only that is timed (wall clock of the engine work,
//! timers included); the scripted phones (building their requests, answering the engine's
//! b-leg from what it sent) run between the timed spans. A counting `#[global_allocator]`
//! reads allocations and bytes over the same spans.
//!
//! Every step checks what came out (status codes, methods, destinations) and the run aborts
//! with the ladder if a flow deviates, so a broken flow cannot pass for a fast one. The clock
//! moves `1/rate` virtual seconds per flow, firing timers on their deadlines; at the end of
//! each phase it runs 2 virtual minutes on (timed: reaping is part of the cost) and checks the
//! transaction table and the call table are empty.
//!
//! `cargo bench --bench engine -- [calls] [registrations] [rate] [held]` (defaults 5000,
//! 10000, 1000 flows per virtual second and 10000 held calls). After the calls it holds
//! `held` answered calls and reports the octets the engine keeps per held call, with and
//! without their finished transactions (the requested sizes, as the counting allocator sees
//! them: malloc's own overhead per block comes on top). Without `--bench` (as `cargo test --all-targets` runs it)
//! it does a short smoke run of both flows. The summary lines start with `engine-bench:`.

use bytes::Bytes;
use ferroswitch::auth::{parse_challenges, Answer, Challenge, DigestCredentials, NonceSecret};
use ferroswitch::clock::from_unix;
use ferroswitch::config::Config;
use ferroswitch::engine::sim::{received, Sim};
use ferroswitch::engine::Engine;
use ferroswitch::net::{Origin, Transport};
use ferroswitch::registrar::{LocationStore, MemoryStore};
use ferroswitch::sip::{
    parse_datagram, parse_datagram_bytes, HeaderName, Message, Method, Request, Response,
};
use ferroswitch::transaction::Transmit;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The system allocator, counting calls and requested bytes (a `realloc` counts as one
/// allocation of its new size). Per thread, in plain cells: the engine runs on this one, and
/// an atomic read-modify-write per allocation would itself cost a measurable share.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
    /// Octets allocated and not yet freed on this thread (requested sizes, not the
    /// allocator's own overhead).
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Blocks allocated and not yet freed on this thread.
    static BLOCKS: Cell<i64> = const { Cell::new(0) };
}

fn count(size: usize) {
    // `try_with`: nothing to count into while the thread's locals are being torn down.
    let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
    let _ = BYTES.try_with(|b| b.set(b.get() + size as u64));
    let _ = LIVE.try_with(|l| l.set(l.get() + size as i64));
    let _ = BLOCKS.try_with(|l| l.set(l.get() + 1));
}

fn uncount(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get() - size as i64));
    let _ = BLOCKS.try_with(|l| l.set(l.get() - 1));
}

/// (octets, blocks) live on this thread.
fn live() -> (i64, i64) {
    (LIVE.with(Cell::get), BLOCKS.with(Cell::get))
}

/// (allocations, bytes) counted on this thread so far.
fn counted() -> (u64, u64) {
    (ALLOCS.with(Cell::get), BYTES.with(Cell::get))
}

// SAFETY: every call is passed on unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        uncount(layout.size());
        count(new_size);
        // A realloc is one block before and after: the two calls above cancel out in BLOCKS.
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        uncount(layout.size());
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The server, as the load suite runs it: on loopback, domain 127.0.0.1.
const SERVER: &str = "127.0.0.1:5060";
const DOMAIN: &str = "127.0.0.1";
/// The callee (the suite's SIPp UAS, Zoiper's shape here), registered before the calls.
const CALLEE: &str = "callee";
const CALLEE_AT: &str = "127.0.0.1:5999";
/// Unix time the virtual wall clock starts at (the seed trace's Date).
const WALL0: u64 = 1_272_371_457;
/// Users in the Users list, cycled through by registrations and callers.
const USERS: usize = 1000;
/// How long the clock runs on after a phase: past every transaction's linger (Timers D, J,
/// K, L, M: at most 64·T1 = 32 s).
const DRAIN: Duration = Duration::from_secs(120);
/// The callee re-registers (untimed) this often on the virtual clock, so long runs keep it.
const CALLEE_REFRESH: Duration = Duration::from_secs(1800);

/// The daemon's own configuration path and defaults, with the load suite's settings
/// (`benches/load/lib.sh`): calls authenticated, no per-user or per-source bound, media
/// bypassed (the engine has no relay here).
const CONFIG: &str = r#"
[server]
domain = "127.0.0.1"
listen = ["udp:127.0.0.1:5060"]
users = "users"
[registrar]
min_expires = 60
max_expires = 3600
default_expires = 3600
digest_algorithms = ["MD5"]
[calls]
auth_calls = true
max_calls = 200000
max_calls_per_user = 0
max_calls_per_source = 0
[media]
mode = "bypass"
"#;

fn user_id(i: usize) -> String {
    format!("{}", 1000 + i % USERS)
}

fn password(user: &str) -> String {
    format!("bench-{user}-Secret-7")
}

/// Where user `i`'s phone sends from (one address per user, on loopback as in the suite).
fn phone_at(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 10_000 + (i % USERS) as u16))
}

fn config() -> Config {
    let dir = std::env::temp_dir().join(format!("ferroswitch-enginebench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("users")).expect("bench temp dir");
    let mut users = String::new();
    for id in (0..USERS).map(user_id).chain([CALLEE.to_string()]) {
        let _ = writeln!(
            users,
            "[[user]]\nid = \"{id}\"\npassword = \"{}\"",
            password(&id)
        );
    }
    std::fs::write(dir.join("users/bench.toml"), users).expect("users file");
    // ENGINE_BENCH_TOML: more configuration appended, for A/B runs of one setting
    // (e.g. "[trace]\ncalls = 0" to leave out the recent-calls trace).
    let extra = std::env::var("ENGINE_BENCH_TOML").unwrap_or_default();
    let text = format!("{CONFIG}\n{}\n", extra.replace("\\n", "\n"));
    let cfg = Config::from_toml(&text, &dir.join("ferroswitch.toml"));
    // The users are in memory now; leave nothing behind.
    let _ = std::fs::remove_dir_all(&dir);
    match cfg {
        Ok(c) => c,
        Err(e) => panic!("the bench's configuration is refused: {e}"),
    }
}

/// Wall time and allocations of the engine's work, summed over the timed spans.
#[derive(Default, Clone, Copy)]
struct Meter {
    wall: Duration,
    allocs: u64,
    bytes: u64,
    /// Octets allocated and not freed within the spans: what the engine keeps (the
    /// phones' own data, built between the spans, is not in it).
    retained: i64,
    retained_blocks: i64,
}

impl Meter {
    fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let (a0, b0) = counted();
        let (l0, k0) = live();
        let t0 = Instant::now();
        let r = f();
        self.wall += t0.elapsed();
        let (a1, b1) = counted();
        let (l1, k1) = live();
        self.retained += l1 - l0;
        self.retained_blocks += k1 - k0;
        self.allocs += a1 - a0;
        self.bytes += b1 - b0;
        r
    }
}

/// The engine on the virtual network, what it last sent, and the meter of its work.
struct Bench {
    sim: Sim,
    store: Arc<MemoryStore>,
    out: Vec<Transmit>,
    meter: Meter,
    /// Virtual time per flow (`1/rate`).
    step: Duration,
    /// Flow counter: fresh Call-IDs, tags and branches.
    seq: u64,
    /// When the callee last registered (virtual clock): refreshed well before it expires.
    callee_registered: Option<Instant>,
}

/// One message the engine sent, parsed the way a phone reads it.
struct Got {
    to: SocketAddr,
    msg: Message,
}

impl Bench {
    fn new(cfg: &Config, rate: f64) -> Bench {
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
        Bench {
            sim: Sim::new(engine, local, Instant::now(), from_unix(WALL0)),
            store,
            out: Vec::new(),
            meter: Meter::default(),
            step: Duration::from_secs_f64(1.0 / rate),
            seq: 0,
            callee_registered: None,
        }
    }

    /// Hands the engine the datagram `raw` from `source` as the UDP transport does (parse,
    /// stamp the Via, `handle_inbound`, then every transmit), timed. The previous transmits
    /// are dropped inside the span, as the transport drops them once sent.
    fn deliver(&mut self, source: SocketAddr, raw: &[u8]) -> Vec<Got> {
        let (sim, out) = (&mut self.sim, &mut self.out);
        self.meter.time(|| {
            out.clear();
            let origin = Origin {
                transport: Transport::Udp,
                source,
                local: sim.local,
                connection: None,
            };
            // One copy of the datagram, shared by the parsed message and `Inbound::raw`.
            let bytes = Bytes::copy_from_slice(raw);
            let payload = received(parse_datagram_bytes(bytes.clone()), raw, source);
            sim.handle_raw(payload, origin, bytes);
            while let Some(t) = sim.engine.poll_transmit() {
                out.push(t);
            }
        });
        self.read_out()
    }

    /// Moves the virtual clock by `by`, timers firing on their deadlines (timed).
    fn advance(&mut self, by: Duration) -> Vec<Got> {
        let (sim, out) = (&mut self.sim, &mut self.out);
        self.meter.time(|| {
            out.clear();
            let until = sim.now + by;
            out.extend(sim.run_until(until));
        });
        self.read_out()
    }

    /// The phones' reading of what the engine sent (untimed).
    fn read_out(&self) -> Vec<Got> {
        self.out
            .iter()
            .map(|t| {
                assert_eq!(t.to.transport, Transport::Udp, "UDP only here");
                match parse_datagram(&t.bytes) {
                    Ok(msg) => Got { to: t.to.addr, msg },
                    Err(e) => fail(&format!(
                        "the engine sent something that does not parse ({e:?}): {}",
                        String::from_utf8_lossy(&t.bytes)
                    )),
                }
            })
            .collect()
    }

    /// One flow's worth of virtual time; timers must send nothing (no retransmission: every
    /// answer came at once).
    fn tick(&mut self, what: &str) {
        let sent = self.advance(self.step);
        expect(&sent, &[], &[], what);
    }

    fn fresh(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// Aborts the run: the flow deviated, so no figure would mean anything.
fn fail(why: &str) -> ! {
    eprintln!("engine-bench: ABORTED: {why}");
    std::process::exit(1)
}

/// `caller<-407 INVITE`, `callee<-INVITE` … naming each destination by `names`.
fn ladder(sent: &[Got], names: &[(SocketAddr, &str)]) -> Vec<String> {
    sent.iter()
        .map(|g| {
            let who = names
                .iter()
                .find(|(a, _)| *a == g.to)
                .map_or_else(|| g.to.to_string(), |(_, n)| n.to_string());
            match &g.msg {
                Message::Request(r) => format!("{who}<-{}", r.method.as_str()),
                Message::Response(r) => format!(
                    "{who}<-{} {}",
                    r.status,
                    r.headers
                        .cseq()
                        .map_or("?".to_string(), |c| c.method.as_str().to_string())
                ),
            }
        })
        .collect()
}

/// Checks the engine sent exactly `want` (in order); aborts with what it sent otherwise.
fn expect(sent: &[Got], names: &[(SocketAddr, &str)], want: &[&str], step: &str) {
    let got = ladder(sent, names);
    if got != want {
        let shown: Vec<String> = sent
            .iter()
            .map(|g| match &g.msg {
                Message::Request(r) => String::from_utf8_lossy(&r.to_bytes()).into_owned(),
                Message::Response(r) => String::from_utf8_lossy(&r.to_bytes()).into_owned(),
            })
            .collect();
        fail(&format!(
            "{step}: expected {want:?}, the engine sent {got:?}\n{}",
            shown.join("\n----\n")
        ));
    }
}

fn response(sent: &[Got], i: usize) -> &Response {
    match sent.get(i).map(|g| &g.msg) {
        Some(Message::Response(r)) => r,
        _ => fail("checked to be a response"),
    }
}

fn request(sent: &[Got], i: usize) -> &Request {
    match sent.get(i).map(|g| &g.msg) {
        Some(Message::Request(r)) => r,
        _ => fail("checked to be a request"),
    }
}

/// The digest challenge of a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`).
fn challenge(r: &Response, name: &HeaderName) -> ferroswitch::auth::DigestChallenge {
    r.headers
        .get_all(name)
        .filter_map(|h| h.value_str())
        .find_map(|v| {
            parse_challenges(v).ok()?.into_iter().find_map(|c| match c {
                Challenge::Digest(d) => Some(d),
                Challenge::Other(_) => None,
            })
        })
        .unwrap_or_else(|| fail(&format!("no Digest challenge in the {}", r.status)))
}

fn header<'a>(headers: &'a ferroswitch::sip::Headers, name: &HeaderName) -> &'a str {
    headers
        .get_str(name)
        .unwrap_or_else(|| fail(&format!("no {} header", name.as_str())))
}

/// The URI inside a Contact value.
fn contact_uri(v: &str) -> &str {
    let start = v.find('<').map_or(0, |i| i + 1);
    let end = v[start..].find('>').map_or(v.len(), |i| start + i);
    &v[start..end]
}

/// A message head (lines ending in CRLF) with `body` and its Content-Length.
fn with_body(head: &str, body: &str) -> String {
    format!("{head}Content-Length: {}\r\n\r\n{body}", body.len())
}

/// X-Lite's offer in the seed's shape (audio, several codecs, telephone-event).
fn sdp(who: &str, port: u16, id: u64) -> String {
    format!(
        "v=0\r\no={who} {id} 1 IN IP4 127.0.0.1\r\ns=CounterPath X-Lite 3.0\r\n\
         c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 107 0 8 101\r\n\
         a=alt:1 1 : ZbtYO9ko 6MwHaEat 127.0.0.1 {port}\r\na=fmtp:101 0-15\r\n\
         a=rtpmap:107 BV32/16000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

// ---------------------------------------------------------------- registrations

/// The seed's Zoiper REGISTER (trace 01/03) for user `i`, fresh Call-ID, tag and branch.
fn register(i: usize, n: u64, cseq: u32, auth: Option<&str>) -> String {
    let user = user_id(i);
    let at = phone_at(i);
    let mut m = String::with_capacity(1024);
    let _ = write!(
        m,
        "REGISTER sip:{DOMAIN};transport=UDP SIP/2.0\r\n\
         Via: SIP/2.0/UDP {at};branch=z9hG4bK-d8754z-r{n}c{cseq}-1---d8754z-;rport\r\n\
         Max-Forwards: 70\r\n\
         Contact: <sip:{user}@{at};rinstance=d42207a765c0626b;transport=UDP>\r\n\
         To: <sip:{user}@{DOMAIN};transport=UDP>\r\n\
         From: <sip:{user}@{DOMAIN};transport=UDP>;tag=r{n}\r\n\
         Call-ID: reg-{n}-NmFjNzA3MWY1MDI3NGViMjY1N2QwZDlmZWQ5ZGY2OGE.\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Expires: 3600\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
         User-Agent: Zoiper rev.5415\r\n"
    );
    if let Some(a) = auth {
        let _ = write!(m, "Authorization: {a}\r\n");
    }
    m.push_str("Allow-Events: presence\r\n");
    with_body(&m, "")
}

/// REGISTER → 401 → REGISTER with Authorization → 200, for user `i` (cycled over the Users
/// list) from its own address.
fn registration(b: &mut Bench, i: usize) {
    let n = b.fresh();
    let at = phone_at(i);
    let names = [(at, "phone")];
    let sent = b.deliver(at, register(i, n, 1, None).as_bytes());
    expect(&sent, &names, &["phone<-401 REGISTER"], "REGISTER");
    let ch = challenge(response(&sent, 0), &HeaderName::WwwAuthenticate);
    let user = user_id(i);
    let uri = format!("sip:{DOMAIN};transport=UDP");
    let creds = DigestCredentials::answer(
        &ch,
        &Answer {
            username: &user,
            password: &password(&user),
            method: "REGISTER",
            uri: &uri,
            body: b"",
            cnonce: "b4c6ac7e57fc76b85df9440994e2ede8",
            nc: 1,
        },
    )
    .to_string();
    let sent = b.deliver(at, register(i, n, 2, Some(&creds)).as_bytes());
    expect(
        &sent,
        &names,
        &["phone<-200 REGISTER"],
        "REGISTER with Authorization",
    );
    b.tick("timers after a registration");
}

/// The callee's binding (untimed: set-up, not measured).
fn register_callee(b: &mut Bench) {
    let at: SocketAddr = CALLEE_AT.parse().expect("callee address");
    let n = b.fresh();
    let meter = b.meter;
    let reg = |cseq: u32, auth: Option<&str>| {
        let mut m = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {at};branch=z9hG4bK-callee-{n}-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             Contact: <sip:{CALLEE}@{at};transport=UDP>\r\n\
             To: <sip:{CALLEE}@{DOMAIN}>\r\n\
             From: <sip:{CALLEE}@{DOMAIN}>;tag=c{n}\r\n\
             Call-ID: callee-reg-{n}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Expires: 3600\r\n"
        );
        if let Some(a) = auth {
            let _ = write!(m, "Authorization: {a}\r\n");
        }
        with_body(&m, "")
    };
    let names = [(at, "callee")];
    let sent = b.deliver(at, reg(1, None).as_bytes());
    expect(&sent, &names, &["callee<-401 REGISTER"], "callee REGISTER");
    let ch = challenge(response(&sent, 0), &HeaderName::WwwAuthenticate);
    let uri = format!("sip:{DOMAIN}");
    let creds = DigestCredentials::answer(
        &ch,
        &Answer {
            username: CALLEE,
            password: &password(CALLEE),
            method: "REGISTER",
            uri: &uri,
            body: b"",
            cnonce: "0a4f113b",
            nc: 1,
        },
    )
    .to_string();
    let sent = b.deliver(at, reg(2, Some(&creds)).as_bytes());
    expect(&sent, &names, &["callee<-200 REGISTER"], "callee REGISTER");
    b.meter = meter;
    b.callee_registered = Some(b.sim.now);
}

// ---------------------------------------------------------------- calls

/// The caller's INVITE in the seed's X-Lite shape (trace 06/09), fresh Call-ID, tag, branch.
fn invite(i: usize, n: u64, cseq: u32, body: &str, auth: Option<&str>) -> String {
    let user = user_id(i);
    let at = phone_at(i);
    let mut m = String::with_capacity(1536);
    let _ = write!(
        m,
        "INVITE sip:{CALLEE}@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {at};branch=z9hG4bK-d8754z-i{n}c{cseq}-1---d8754z-;rport\r\n\
         Max-Forwards: 70\r\n\
         Contact: <sip:{user}@{at}>\r\n\
         To: \"{CALLEE}\"<sip:{CALLEE}@{DOMAIN}>\r\n\
         From: \"User {user}\"<sip:{user}@{DOMAIN}>;tag=t{n}\r\n\
         Call-ID: call-{n}-YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.\r\n\
         CSeq: {cseq} INVITE\r\n\
         Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n\
         Content-Type: application/sdp\r\n"
    );
    if let Some(a) = auth {
        let _ = write!(m, "Proxy-Authorization: {a}\r\n");
    }
    m.push_str("User-Agent: X-Lite release 1014k stamp 47051\r\n");
    with_body(&m, body)
}

/// A request of the caller in its dialog (ACK or BYE, CSeq `cseq`), to the target and route
/// set the 200 gave.
fn caller_in_dialog(i: usize, n: u64, method: &str, cseq: u32, ok: &Response) -> String {
    let user = user_id(i);
    let at = phone_at(i);
    let target = contact_uri(header(&ok.headers, &HeaderName::Contact));
    let to = header(&ok.headers, &HeaderName::To);
    let mut m = String::with_capacity(768);
    let _ = write!(
        m,
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {at};branch=z9hG4bK-d8754z-{method}{n}-1---d8754z-;rport\r\n\
         Max-Forwards: 70\r\n"
    );
    // The route set is the 200's Record-Route in reverse (§12.1.2).
    let routes: Vec<&str> = ok
        .headers
        .get_all(&HeaderName::RecordRoute)
        .filter_map(|h| h.value_str())
        .collect();
    for r in routes.iter().rev() {
        let _ = write!(m, "Route: {r}\r\n");
    }
    let _ = write!(
        m,
        "Contact: <sip:{user}@{at}>\r\n\
         To: {to}\r\n\
         From: \"User {user}\"<sip:{user}@{DOMAIN}>;tag=t{n}\r\n\
         Call-ID: call-{n}-YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.\r\n\
         CSeq: {cseq} {method}\r\n\
         User-Agent: X-Lite release 1014k stamp 47051\r\n"
    );
    with_body(&m, "")
}

/// The callee's answer to a request the engine sent it, built from that request as a phone
/// does: its Via lines, Record-Route, From, To (with our tag beyond 100), Call-ID and CSeq,
/// our Contact on 1xx/2xx, `body` as SDP.
fn callee_answer(req: &Request, status: u16, tag: &str, body: &str) -> String {
    let mut m = String::with_capacity(1024);
    let _ = write!(
        m,
        "SIP/2.0 {status} {}\r\n",
        ferroswitch::sip::reason_phrase(status)
    );
    for h in req.headers.iter() {
        let copied = matches!(
            h.name,
            HeaderName::Via
                | HeaderName::RecordRoute
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        );
        if !copied {
            continue;
        }
        let Some(v) = h.value_str() else {
            fail(&format!("a {} header that is not text", h.name.as_str()));
        };
        let _ = write!(m, "{}: {v}", h.name.as_str());
        if h.name == HeaderName::To && status > 100 && !v.contains(";tag=") {
            let _ = write!(m, ";tag={tag}");
        }
        m.push_str("\r\n");
    }
    if (101..300).contains(&status) && req.method == Method::Invite {
        let _ = write!(
            m,
            "Contact: <sip:{CALLEE}@{CALLEE_AT};rinstance=e7d5364c81f2b879;transport=UDP>\r\n"
        );
    }
    m.push_str("User-Agent: Zoiper rev.5415\r\n");
    if !body.is_empty() {
        m.push_str("Content-Type: application/sdp\r\n");
    }
    with_body(&m, body)
}

/// The seed's authenticated call from user `i` to the callee, ended by the caller:
/// INVITE → 407 → ACK → INVITE with Proxy-Authorization → 100 + b-leg INVITE → 100, 180,
/// 200 from the callee → ACK to the callee, 180 and 200 to the caller → ACK → BYE → 200 both
/// legs. The 407 is sent statelessly, without a 100 before it (unlike the seed's FreeSWITCH).
fn call(b: &mut Bench, i: usize) {
    let held = answered_call(b, i);
    hang_up(b, held);
    b.tick("timers after a call");
}

/// A call answered and not yet ended: what the caller needs to end it.
struct Held {
    i: usize,
    n: u64,
    at: SocketAddr,
    tag: String,
    ok: Response,
}

/// The call's setup, up to the caller's ACK of the 200.
fn answered_call(b: &mut Bench, i: usize) -> Held {
    if b.callee_registered
        .is_none_or(|t| b.sim.now.duration_since(t) >= CALLEE_REFRESH)
    {
        register_callee(b);
    }
    let n = b.fresh();
    let at = phone_at(i);
    let callee: SocketAddr = CALLEE_AT.parse().expect("callee address");
    let names = [(at, "caller"), (callee, "callee")];
    let offer = sdp(&format!("{}", 1000 + i % USERS), 8000, n);
    let first = invite(i, n, 1, &offer, None);

    let sent = b.deliver(at, first.as_bytes());
    expect(&sent, &names, &["caller<-407 INVITE"], "INVITE");
    let r407 = response(&sent, 0);
    let ch = challenge(r407, &HeaderName::ProxyAuthenticate);
    // The ACK of a non-2xx: the INVITE's branch, the 407's To (§17.1.1.3).
    let ack407 = with_body(
        &format!(
            "ACK sip:{CALLEE}@{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {at};branch=z9hG4bK-d8754z-i{n}c1-1---d8754z-;rport\r\n\
             To: {}\r\n\
             From: \"User {u}\"<sip:{u}@{DOMAIN}>;tag=t{n}\r\n\
             Call-ID: call-{n}-YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.\r\n\
             CSeq: 1 ACK\r\n",
            header(&r407.headers, &HeaderName::To),
            u = user_id(i),
        ),
        "",
    );
    let user = user_id(i);
    let ruri = format!("sip:{CALLEE}@{DOMAIN}");
    let creds = DigestCredentials::answer(
        &ch,
        &Answer {
            username: &user,
            password: &password(&user),
            method: "INVITE",
            uri: &ruri,
            body: offer.as_bytes(),
            cnonce: "c164b74f625ff2161bd8d47dba3a0ee2",
            nc: 1,
        },
    )
    .to_string();
    let second = invite(i, n, 2, &offer, Some(&creds));

    let sent = b.deliver(at, ack407.as_bytes());
    expect(&sent, &names, &[], "ACK of the 407");
    let sent = b.deliver(at, second.as_bytes());
    expect(
        &sent,
        &names,
        &["caller<-100 INVITE", "callee<-INVITE"],
        "INVITE with Proxy-Authorization",
    );
    let b_invite = request(&sent, 1).clone();

    let tag = format!("z{n}");
    let answer = sdp(CALLEE, 9000, n);
    let r100 = callee_answer(&b_invite, 100, &tag, "");
    let r180 = callee_answer(&b_invite, 180, &tag, "");
    let r200 = callee_answer(&b_invite, 200, &tag, &answer);
    let sent = b.deliver(callee, r100.as_bytes());
    expect(&sent, &names, &[], "100 from the callee");
    let sent = b.deliver(callee, r180.as_bytes());
    expect(
        &sent,
        &names,
        &["caller<-180 INVITE"],
        "180 from the callee",
    );
    let sent = b.deliver(callee, r200.as_bytes());
    expect(
        &sent,
        &names,
        &["callee<-ACK", "caller<-200 INVITE"],
        "200 from the callee",
    );
    let ok = response(&sent, 1).clone();
    let ack = caller_in_dialog(i, n, "ACK", 2, &ok);
    let sent = b.deliver(at, ack.as_bytes());
    expect(&sent, &names, &[], "the caller's ACK");
    Held { i, n, at, tag, ok }
}

/// The caller's BYE of a held call, and the callee's 200 to the b-leg BYE.
fn hang_up(b: &mut Bench, held: Held) {
    let Held { i, n, at, tag, ok } = held;
    let callee: SocketAddr = CALLEE_AT.parse().expect("callee address");
    let names = [(at, "caller"), (callee, "callee")];
    let bye = caller_in_dialog(i, n, "BYE", 3, &ok);
    let sent = b.deliver(at, bye.as_bytes());
    expect(
        &sent,
        &names,
        &["caller<-200 BYE", "callee<-BYE"],
        "BYE from the caller",
    );
    let bye_ok = callee_answer(request(&sent, 1), 200, &tag, "");
    let sent = b.deliver(callee, bye_ok.as_bytes());
    expect(&sent, &names, &[], "200 to the b-leg BYE");
}

// ---------------------------------------------------------------- driver

/// Runs the clock on past every linger (timed) and checks nothing is left.
fn finish(b: &mut Bench, phase: &str) {
    let sent = b.advance(DRAIN);
    // Only the callee's binding outlives the phase; nothing may be sent on the way.
    expect(
        &sent,
        &[],
        &[],
        &format!("{phase}: timers after the last flow"),
    );
    if b.sim.engine.call_table_sizes() != (0, 0, 0) || b.sim.engine.active_calls() != 0 {
        fail(&format!(
            "{phase}: the call table is not empty: {:?}",
            b.sim.engine.call_table_sizes()
        ));
    }
    if !b.sim.engine.transactions().is_empty() {
        fail(&format!(
            "{phase}: {} transactions left after {DRAIN:?}",
            b.sim.engine.transactions().len()
        ));
    }
    while b.sim.engine.poll_cdr().is_some() {}
}

/// CPU time of this thread so far (one read per phase: too slow a call to time each span).
fn thread_cpu() -> Duration {
    // SAFETY: clock_gettime fills the struct it is given.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How much of a core the bench thread got over a phase (phones included): well under 100 %
/// means other load took the core and the wall figures are inflated.
struct Phase {
    wall0: Instant,
    cpu0: Duration,
}

impl Phase {
    fn start() -> Phase {
        Phase {
            wall0: Instant::now(),
            cpu0: thread_cpu(),
        }
    }

    fn share(&self) -> f64 {
        (thread_cpu() - self.cpu0).as_secs_f64() / self.wall0.elapsed().as_secs_f64() * 100.0
    }
}

fn report(what: &str, unit: &str, n: usize, m: Meter, share: f64) {
    let secs = m.wall.as_secs_f64();
    let per = n.max(1) as f64;
    println!(
        "engine-bench: {what}/s {:.0} ({n} {what} in {:.3} s of engine work, one core)",
        per / secs,
        secs
    );
    println!("engine-bench: us per {unit} {:.2}", secs * 1e6 / per);
    println!(
        "engine-bench: allocations per {unit} {:.1}",
        m.allocs as f64 / per
    );
    println!(
        "engine-bench: bytes allocated per {unit} {:.0}",
        m.bytes as f64 / per
    );
    println!("engine-bench: cpu share during {what} {share:.0} % of a core");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let bench = std::env::args().any(|a| a == "--bench");
    let arg = |i: usize, d: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (calls, regs, rate, holds) = if bench {
        (
            arg(0, 5000.0) as usize,
            arg(1, 10_000.0) as usize,
            arg(2, 1000.0),
            arg(3, 10_000.0) as usize,
        )
    } else {
        (200, 200, 1000.0, 200)
    };
    if !(rate > 0.0 && rate.is_finite()) {
        fail("the rate must be a positive number of flows per virtual second");
    }
    let cfg = config();
    let mut b = Bench::new(&cfg, rate);

    let phase = Phase::start();
    for i in 0..regs {
        registration(&mut b, i);
    }
    finish(&mut b, "registrations");
    let reg_meter = b.meter;
    let reg_share = phase.share();
    let bindings = b.store.counts();

    b.meter = Meter::default();
    let phase = Phase::start();
    for i in 0..calls {
        call(&mut b, i);
    }
    finish(&mut b, "calls");
    let call_meter = b.meter;
    let call_share = phase.share();

    // Memory per held call: `holds` calls answered and left up; what the engine keeps for
    // them right after the last is answered, and after the clock has run past every
    // transaction's linger (64·T1 = 32 s), when only the calls themselves remain.
    let (bytes0, blocks0) = (b.meter.retained, b.meter.retained_blocks);
    let mut held = Vec::with_capacity(holds);
    for i in 0..holds {
        held.push(answered_call(&mut b, i));
        b.tick("timers while calls are held");
    }
    let bytes1 = b.meter.retained;
    let sent = b.advance(Duration::from_secs(40));
    expect(&sent, &[], &[], "the clock run on over held calls");
    let (bytes2, blocks2) = (b.meter.retained, b.meter.retained_blocks);
    if b.sim.engine.active_calls() != holds {
        fail(&format!(
            "{} calls up, {holds} held",
            b.sim.engine.active_calls()
        ));
    }
    if std::env::var_os("ENGINE_BENCH_EXIT_HELD").is_some() {
        println!(
            "engine-bench: held {}",
            (bytes2 - bytes0) / holds.max(1) as i64
        );
        std::process::exit(0);
    }
    for h in held {
        hang_up(&mut b, h);
    }
    finish(&mut b, "held calls");

    println!(
        "engine-bench: {regs} digest registrations over {USERS} users, then {calls} \
         authenticated calls, {rate} flows per virtual second; bindings after the \
         registrations {bindings:?}; every flow checked, call and transaction tables empty \
         at the end"
    );
    report("registrations", "registration", regs, reg_meter, reg_share);
    report("calls", "call", calls, call_meter, call_share);
    let per = holds.max(1) as f64;
    println!(
        "engine-bench: held calls {holds}: octets per held call {:.0} with their transactions, \
         {:.0} after the transactions' linger ({:.1} blocks), requested sizes (no allocator \
         overhead)",
        (bytes1 - bytes0) as f64 / per,
        (bytes2 - bytes0) as f64 / per,
        (blocks2 - blocks0) as f64 / per,
    );
}
