//! Outbound registration with a provider (RFC 3261 §10.2), sans-IO: the REGISTERs to send
//! come out of [`Registration::poll_request`], their final responses (or their failure) go
//! back in, and [`Registration::poll_timeout`] says when to ask again.
//!
//! One Call-ID and From tag for the registration's life, CSeq + 1 per request (§10.2.4).
//! A 401/407 is answered at once with the gateway's credentials (`auth::uac`); the refresh
//! reuses the nonce (`nc` + 1) so that it is not challenged again. A 423 raises Expires to the
//! registrar's Min-Expires (§10.3 step 7) and retries at once. A 2xx grants the Contact's
//! `expires` (ours, matched by URI equivalence), else the Expires header, else what we asked
//! for; the refresh goes out at half of that up to 120 s, else `max(60 s, 10 %)` before the
//! end (600 s → 540 s, as Kamailio's uac module refreshes at 90 %; 3600 s → 3240 s). Anything
//! else (a refused password, 403, 5xx, 6xx, a timeout) is a failure retried after 30 s, 60 s,
//! 120 s … capped at 30 min, ±10 % jitter, or after Retry-After when that is longer; but a
//! refresh lost to a timeout or a 5xx without Retry-After while the binding still holds is
//! retried at half the time left (at least 1 s) when that is sooner, so one lost refresh
//! does not let the binding lapse.
//!
//! State changes are logged once on target `ferroswitch::gateway` (registered; failed with a
//! status; unregistered), never once per retry: a provider that refuses us every 30 minutes
//! for a week writes one warning. The password is never logged. Never reads a clock, never
//! touches a socket: the engine sends what comes out as a client transaction.

use crate::auth::uac::{retry, UacAuth, UacCredentials};
use crate::dialog::ids::{new_branch_for, new_call_id_with, new_tag_with};
use crate::dialog::ViaSpec;
use crate::net::Transport;
use crate::sip::{Contact, HeaderName, Method, Request, Response, Uri};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const TARGET: &str = "ferroswitch::gateway";

/// The first retry after a failure; each further failure doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between attempts (before jitter).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// Challenges and 423s answered for one registration attempt; one more is a failure (a
/// proxy's 407, the registrar's 401, a stale nonce and a 423 fit).
pub const MAX_ROUNDS: u32 = 4;

/// What a gateway registration needs; built by the engine from the gateway's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// The gateway's name, for logs.
    pub gateway: String,
    /// The Request-URI: `sip:host[:port]` of the registrar.
    pub registrar_uri: Uri,
    /// The address-of-record (From and To): `sip:username@host`.
    pub aor: Uri,
    /// Our Contact: `sip:username@advertised-host:port;transport=…`. Its host and port are
    /// the Via's sent-by too.
    pub contact: Uri,
    /// Expires we ask for, in seconds; 0 is taken as 1 (0 would be an un-REGISTER).
    pub expires: u32,
    pub creds: UacCredentials,
    pub transport: Transport,
    /// `User-Agent` value; empty for none.
    pub user_agent: String,
    /// `[server] node_id`, put in our branches.
    pub node_id: Option<String>,
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegState {
    /// Not started, or unregistered.
    Idle,
    /// A REGISTER is on its way and we hold no binding we know of.
    Registering,
    /// The registrar holds our binding until `expires_at`; a refresh in flight keeps this.
    Registered { expires_at: Instant },
    /// The last attempt failed with `status` (408 for a timeout); the next one is at
    /// `retry_at`.
    Failed { status: u16, retry_at: Instant },
}

impl RegState {
    /// A short name for logs and the control interface.
    pub fn as_str(&self) -> &'static str {
        match self {
            RegState::Idle => "idle",
            RegState::Registering => "registering",
            RegState::Registered { .. } => "registered",
            RegState::Failed { .. } => "failed",
        }
    }
}

/// When `poll_request` has a REGISTER to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// As soon as asked (the start, a changed contact).
    Now,
    At(Instant),
    /// Not until a response or failure comes in (one in flight, or stopped).
    Never,
}

/// The REGISTER whose answer we wait for.
#[derive(Debug, Clone)]
struct InFlight {
    request: Request,
    branch: String,
    seq: u32,
    /// Expires it asked for (0: an un-REGISTER).
    expires: u32,
}

/// What was last logged, so each state is logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logged {
    Registered,
    Failed(u16),
    Unregistered,
}

/// One gateway's registration; see the module docs.
#[derive(Debug)]
pub struct Registration {
    cfg: RegistrationConfig,
    rng: StdRng,
    call_id: String,
    from_tag: String,
    /// CSeq of the last REGISTER built.
    cseq: u32,
    state: RegState,
    auth: UacAuth,
    in_flight: Option<InFlight>,
    /// A retry prepared by `handle_response` (challenge answered, 423), sent by the next
    /// `poll_request`.
    queued: Option<InFlight>,
    due: Due,
    /// Expires we ask for now (raised by a 423).
    expires: u32,
    /// Failures in a row, for the back-off.
    failures: u32,
    /// Challenges and 423s in the current attempt.
    rounds: u32,
    /// Until when the registrar may hold a binding of ours (what to un-REGISTER).
    bound_until: Option<Instant>,
    /// The contact changed while a REGISTER was in flight: register again once it is done.
    contact_changed: bool,
    /// `unregister` was called: nothing more is sent but the un-REGISTER and its retries.
    stopping: bool,
    /// The latest `now` seen, what `poll_timeout` answers when a REGISTER is due at once.
    last_now: Option<Instant>,
    logged: Option<Logged>,
}

impl Registration {
    /// A registration that sends its first REGISTER at the first `poll_request`. Tags,
    /// Call-ID, branches, cnonces and jitter come from an RNG seeded with `seed`.
    pub fn new(cfg: RegistrationConfig, seed: u64) -> Registration {
        let mut rng = StdRng::seed_from_u64(seed);
        let call_id = new_call_id_with(&mut rng, Some(cfg.contact.host()));
        let from_tag = new_tag_with(&mut rng);
        Registration {
            expires: cfg.expires.max(1),
            cfg,
            rng,
            call_id,
            from_tag,
            cseq: 0,
            state: RegState::Idle,
            auth: UacAuth::default(),
            in_flight: None,
            queued: None,
            due: Due::Now,
            failures: 0,
            rounds: 0,
            bound_until: None,
            contact_changed: false,
            stopping: false,
            last_now: None,
            logged: None,
        }
    }

    pub fn config(&self) -> &RegistrationConfig {
        &self.cfg
    }

    pub fn state(&self) -> &RegState {
        &self.state
    }

    /// The Call-ID of every REGISTER of this registration.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The REGISTER (or un-REGISTER) to send now, if any. At most one is in flight; the
    /// engine calls this at start, after each `handle_*`, and when `poll_timeout` passes.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        self.last_now = Some(now);
        if self.in_flight.is_some() {
            return None;
        }
        if let Some(q) = self.queued.take() {
            return Some(self.launch(q));
        }
        let due = match self.due {
            Due::Now => true,
            Due::At(t) => now >= t,
            Due::Never => false,
        };
        if !due || self.stopping {
            return None;
        }
        self.due = Due::Never;
        if !matches!(self.state, RegState::Registered { .. }) {
            self.state = RegState::Registering;
        }
        let f = self.build(self.expires);
        Some(self.launch(f))
    }

    /// When `poll_request` has something to send; `None` while a REGISTER is in flight (its
    /// transaction times out instead), when nothing is left to do, and before the first
    /// `poll_request` (which the engine makes at start).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        if self.queued.is_some() {
            return self.last_now;
        }
        match self.due {
            _ if self.stopping => None,
            Due::Now => self.last_now,
            Due::At(t) => Some(t),
            Due::Never => None,
        }
    }

    /// A response to the REGISTER in flight. Provisional ones and strays (another CSeq,
    /// branch or Call-ID: a late answer to a REGISTER we gave up on) are ignored.
    pub fn handle_response(&mut self, now: Instant, resp: &Response) {
        self.last_now = Some(now);
        if resp.status < 200 {
            return;
        }
        let Some(f) = self.in_flight.take_if(|f| answers(resp, f, &self.call_id)) else {
            tracing::debug!(target: TARGET, gateway = %self.cfg.gateway, status = resp.status, "stray REGISTER response ignored");
            return;
        };
        match resp.status {
            200..=299 => self.on_success(now, &f, resp),
            401 | 407 => self.on_challenge(now, f, resp),
            423 => self.on_too_brief(now, f, resp),
            s => {
                let wait = resp
                    .headers
                    .get_str(&HeaderName::RetryAfter)
                    .and_then(retry_after_secs);
                let reason = String::from_utf8_lossy(&resp.reason).into_owned();
                self.fail(now, &f, s, &reason, wait);
            }
        }
    }

    /// The REGISTER in flight got no final response: Timer F (408) or a transport error
    /// (503). Ignored when none is in flight.
    pub fn handle_failure(&mut self, now: Instant, status: u16) {
        self.last_now = Some(now);
        if let Some(f) = self.in_flight.take() {
            let reason = if status == 408 {
                "no response"
            } else {
                "transport error"
            };
            self.fail(now, &f, status, reason, None);
        }
    }

    /// After a failure: the next attempt goes at the next `poll_request` instead of after
    /// the back-off (the engine sends it to the gateway's next address, RFC 3263 §4.3).
    /// Nothing when a REGISTER is in flight or queued, or after `unregister`. True when it
    /// will go at once.
    pub fn retry_now(&mut self) -> bool {
        if self.stopping || self.in_flight.is_some() || self.queued.is_some() {
            return false;
        }
        if !matches!(self.state, RegState::Failed { .. }) {
            return false;
        }
        self.due = Due::Now;
        true
    }

    /// On shutdown: the un-REGISTER (Expires: 0, with the credentials we hold) when the
    /// registrar may hold a binding of ours, else `None`. Nothing else is sent afterwards
    /// except its challenge retries; its final response leaves the registration `Idle`.
    pub fn unregister(&mut self, now: Instant) -> Option<Request> {
        self.last_now = Some(now);
        self.stopping = true;
        self.queued = None;
        self.due = Due::Never;
        // A REGISTER in flight may have created a binding; its answer becomes a stray.
        let may_be_bound = self.in_flight.take().is_some_and(|f| f.expires > 0)
            || self.bound_until.is_some_and(|t| now < t);
        if !may_be_bound {
            self.stopped();
            return None;
        }
        self.rounds = 0;
        let f = self.build(0);
        Some(self.launch(f))
    }

    /// Uses `contact` from the next REGISTER on (e.g. the public address a registrar showed
    /// in `received`/`rport`). When registered, re-registers at once; the old binding is
    /// left to expire at the registrar.
    pub fn update_contact(&mut self, contact: Uri) {
        if contact == self.cfg.contact {
            return;
        }
        self.cfg.contact = contact;
        if self.stopping {
            return;
        }
        if self.in_flight.is_some() || self.queued.is_some() {
            self.contact_changed = true;
        } else if matches!(self.state, RegState::Registered { .. }) {
            self.due = Due::Now;
        }
    }

    fn on_success(&mut self, now: Instant, f: &InFlight, resp: &Response) {
        self.rounds = 0;
        if f.expires == 0 {
            self.stopped();
            return;
        }
        let granted = granted_expires(resp, &self.cfg.contact, f.expires);
        if granted == 0 {
            self.fail(now, f, resp.status, "the registrar granted 0 s", None);
            return;
        }
        self.failures = 0;
        let expires_at = now + Duration::from_secs(u64::from(granted));
        self.bound_until = Some(expires_at);
        self.state = RegState::Registered { expires_at };
        self.due = if std::mem::take(&mut self.contact_changed) {
            Due::Now
        } else {
            Due::At(now + refresh_after(granted))
        };
        if self.logged != Some(Logged::Registered) {
            self.logged = Some(Logged::Registered);
            tracing::info!(target: TARGET, gateway = %self.cfg.gateway, expires = granted, "gateway registered");
        } else {
            tracing::debug!(target: TARGET, gateway = %self.cfg.gateway, expires = granted, "gateway registration refreshed");
        }
    }

    fn on_challenge(&mut self, now: Instant, f: InFlight, resp: &Response) {
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            self.fail(now, &f, resp.status, "challenged too many times", None);
            return;
        }
        let cnonce = self.cnonce();
        match self.auth.answer(&self.cfg.creds, &f.request, resp, &cnonce) {
            Ok(header) => {
                let branch = new_branch_for(&mut self.rng, self.cfg.node_id.as_deref());
                let request = retry(&f.request, header, &branch);
                let seq = f.seq.saturating_add(1);
                self.cseq = self.cseq.max(seq);
                self.queued = Some(InFlight {
                    request,
                    branch,
                    seq,
                    expires: f.expires,
                });
            }
            Err(e) => self.fail(now, &f, resp.status, &e.to_string(), None),
        }
    }

    /// 423 Interval Too Brief: ask again at once with the registrar's Min-Expires, unless
    /// it names none above what we asked (then it is a failure, not a loop).
    fn on_too_brief(&mut self, now: Instant, f: InFlight, resp: &Response) {
        let min = resp
            .headers
            .get_str(&HeaderName::MinExpires)
            .and_then(|v| v.trim().parse::<u32>().ok());
        self.rounds += 1;
        match min {
            Some(m) if m > f.expires && f.expires > 0 && self.rounds <= MAX_ROUNDS => {
                tracing::debug!(target: TARGET, gateway = %self.cfg.gateway, min_expires = m, "423: asking for Min-Expires");
                self.expires = m;
                self.queued = Some(self.build(m));
            }
            _ => self.fail(now, &f, 423, "423 without a usable Min-Expires", None),
        }
    }

    /// Schedules the next attempt after a failure (or stops, for an un-REGISTER).
    fn fail(&mut self, now: Instant, f: &InFlight, status: u16, reason: &str, wait: Option<u32>) {
        self.rounds = 0;
        let transient = status == 408 || (500..600).contains(&status);
        if !transient {
            // Start the next attempt without credentials: refused ones are not worth reusing.
            self.auth = UacAuth::default();
        }
        if f.expires == 0 || self.stopping {
            tracing::debug!(target: TARGET, gateway = %self.cfg.gateway, status, reason, "un-REGISTER failed");
            self.stopped();
            return;
        }
        let mut delay = backoff(self.failures.saturating_add(1), &mut self.rng);
        if let Some(w) = wait {
            delay = delay.max(Duration::from_secs(u64::from(w)).min(MAX_BACKOFF));
        }
        // A refresh lost to the network or a server hiccup while the binding still holds:
        // try again before it lapses (half the time left, at least 1 s), without growing
        // the back-off. Bounded: the time left halves with each try.
        let left = self.bound_until.and_then(|t| t.checked_duration_since(now));
        match left {
            Some(left) if transient && wait.is_none() && left / 2 < delay => {
                delay = (left / 2).max(Duration::from_secs(1));
            }
            _ => self.failures = self.failures.saturating_add(1),
        }
        let retry_at = now + delay;
        self.state = RegState::Failed { status, retry_at };
        self.due = Due::At(retry_at);
        if self.logged != Some(Logged::Failed(status)) {
            self.logged = Some(Logged::Failed(status));
            tracing::warn!(target: TARGET, gateway = %self.cfg.gateway, status, reason, retry_in_s = delay.as_secs(), "gateway registration failed");
        } else {
            tracing::debug!(target: TARGET, gateway = %self.cfg.gateway, status, reason, retry_in_s = delay.as_secs(), "gateway registration failed again");
        }
    }

    fn stopped(&mut self) {
        self.state = RegState::Idle;
        self.due = Due::Never;
        self.queued = None;
        self.bound_until = None;
        if self.stopping && self.logged != Some(Logged::Unregistered) {
            self.logged = Some(Logged::Unregistered);
            tracing::info!(target: TARGET, gateway = %self.cfg.gateway, "gateway unregistered");
        }
    }

    fn launch(&mut self, f: InFlight) -> Request {
        let req = f.request.clone();
        self.in_flight = Some(f);
        req
    }

    fn cnonce(&mut self) -> String {
        format!("{:016x}", self.rng.gen::<u64>())
    }

    /// A new REGISTER asking for `expires`, with the credentials we hold (nc + 1).
    fn build(&mut self, expires: u32) -> InFlight {
        self.cseq = self.cseq.saturating_add(1);
        // This one carries the current contact.
        self.contact_changed = false;
        let branch = new_branch_for(&mut self.rng, self.cfg.node_id.as_deref());
        let cfg = &self.cfg;
        let uri = cfg.registrar_uri.as_str().to_string();
        let mut r = Request::new(Method::Register, uri.clone());
        let h = &mut r.headers;
        let via = ViaSpec::new(cfg.transport, sent_by(&cfg.contact), branch.clone());
        h.push(HeaderName::Via, via.to_value());
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            format!("<{}>;tag={}", cfg.aor, self.from_tag),
        );
        h.push(HeaderName::To, format!("<{}>", cfg.aor));
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        h.push(HeaderName::Contact, format!("<{}>", cfg.contact));
        h.push(HeaderName::Expires, expires.to_string());
        if !cfg.user_agent.is_empty() {
            h.push(HeaderName::UserAgent, cfg.user_agent.clone());
        }
        if !self.auth.is_empty() {
            let cnonce = format!("{:016x}", self.rng.gen::<u64>());
            for (name, value) in
                self.auth
                    .preemptive_all(&self.cfg.creds, "REGISTER", &uri, b"", &cnonce)
            {
                r.headers.push(name, value);
            }
        }
        InFlight {
            request: r,
            branch,
            seq: self.cseq,
            expires,
        }
    }
}

/// `host[:port]` of a URI, for a Via's sent-by.
pub(crate) fn sent_by(uri: &Uri) -> String {
    match uri.port() {
        Some(p) => format!("{}:{p}", uri.host()),
        None => uri.host().to_string(),
    }
}

/// Whether `resp` answers the REGISTER `f` (same branch, CSeq and Call-ID).
fn answers(resp: &Response, f: &InFlight, call_id: &str) -> bool {
    let h = &resp.headers;
    h.cseq()
        .is_some_and(|c| c.seq == f.seq && c.method == Method::Register)
        && h.top_via()
            .is_some_and(|v| v.branch() == Some(f.branch.as_str()))
        && h.call_id() == Some(call_id)
}

/// The seconds a 2xx to a REGISTER grants `contact` (RFC 3261 §10.2.4): the `expires` of
/// our Contact in the list (equivalent URI; the only Contact when there is one, since
/// registrars behind NAT helpers rewrite it), else the Expires header, else `requested`.
pub fn granted_expires(resp: &Response, contact: &Uri, requested: u32) -> u32 {
    let listed: Vec<_> = resp
        .headers
        .contacts()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| match c {
            Contact::Address(a) => Some(a),
            Contact::Wildcard => None,
        })
        .collect();
    let ours = listed
        .iter()
        .find(|a| a.uri.equivalent(contact))
        .or(match listed.as_slice() {
            [only] => Some(only),
            _ => None,
        });
    ours.and_then(|a| a.expires())
        .or_else(|| resp.headers.expires())
        .unwrap_or(requested)
}

/// How long after a 2xx granting `granted` seconds the refresh goes out: half of it up to
/// 120 s, else `max(60 s, 10 %)` before the end.
pub fn refresh_after(granted: u32) -> Duration {
    let g = u64::from(granted);
    if g <= 120 {
        Duration::from_millis(g * 500)
    } else {
        Duration::from_secs(g - (g / 10).max(60))
    }
}

/// The wait before attempt `failures + 1`: 30 s doubled per failure in a row, capped at
/// 30 min, then ±10 % jitter so that gateways failing together do not retry together.
pub fn backoff(failures: u32, rng: &mut impl Rng) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let base = FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF);
    base.mul_f64(rng.gen_range(0.9..=1.1))
}

/// Retry-After's delta-seconds (RFC 3261 §20.33), comments and parameters ignored.
fn retry_after_secs(v: &str) -> Option<u32> {
    let digits = v.trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
