//! The call core: `B2bua` owns every call and every MESSAGE in flight and decides what they
//! do. Events go in (`handle_*`: a new admitted INVITE or MESSAGE, a response or failure on
//! one of its client transactions, a request, ACK or CANCEL in one of its dialogs, the clock),
//! and what must happen comes out as `Command`s (`poll_command`): send this request in a new
//! client transaction, answer that server transaction, cancel that INVITE, send these octets
//! outside any transaction, write this CDR. Deadlines come out of `poll_timeout`.
//!
//! Calling contract (quinn's Connection, str0m's Output): after every `handle_*` call the
//! engine drains `poll_command` and carries each command out in order. A `SendRequest` the
//! transaction layer refuses is reported back with `handle_client_failure(key, 503)`, as a
//! transport error would be; the key of every request is known before it is sent
//! (`TransactionKey::client_for_request`), so the core indexes its legs without waiting.
//!
//! Never touches a socket, never reads a clock, never reads the transaction layer except
//! through the `TxView` it is handed for a stray 2xx. Never panics on what a peer sends.

use super::message::Messages;
use super::{Calls, Limits};
use crate::cdr::CdrRecord;
use crate::dialog::SessionTimerConfig;
use crate::net::Peer;
use crate::sip::{Request, Response};
use crate::transaction::{TimerConfig, TransactionKey, TransactionLayer};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// The B2BUA's settings (`[calls]`).
#[derive(Debug, Clone, Copy)]
pub struct CallSettings {
    pub auth_calls: bool,
    pub call_timeout: Duration,
    pub max_calls: usize,
    pub session: SessionTimerConfig,
    /// Build a CDR for every call (`Command::Cdr`); off when no CDR file is configured.
    pub cdrs: bool,
    /// Calls (and pending MESSAGEs) per authenticated user / per source address; 0 = off.
    pub max_calls_per_user: usize,
    pub max_calls_per_source: usize,
}

impl Default for CallSettings {
    fn default() -> CallSettings {
        CallSettings {
            auth_calls: true,
            call_timeout: Duration::from_secs(60),
            max_calls: 10_000,
            session: SessionTimerConfig::default(),
            cdrs: true,
            max_calls_per_user: 10,
            max_calls_per_source: 50,
        }
    }
}

/// What the core needs to know: the call settings, the transaction timers (T1 for the 2xx
/// retransmissions it runs itself, T2 for their cap) and the `User-Agent`/`Server` value.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    pub calls: CallSettings,
    pub timers: TimerConfig,
    /// Empty: no `Server`/`User-Agent` header at all.
    pub user_agent: String,
    /// `[server] node_id`: in our branches, b-leg Call-IDs and CDRs (several nodes behind
    /// one edge proxy tell their traffic apart by it).
    pub node_id: Option<String>,
}

/// What the core asks the engine to do, in order.
#[derive(Debug)]
pub enum Command {
    /// Send `request` to `to` in a new client transaction whose key is `key` (computed from
    /// the request). A refusal comes back as `handle_client_failure(key, 503)`.
    SendRequest {
        key: TransactionKey,
        request: Request,
        to: Peer,
    },
    /// Answer server transaction `key`.
    Respond {
        key: TransactionKey,
        response: Response,
    },
    /// Send a 2xx we answered an INVITE with again: through its server transaction `key`,
    /// or, once that is gone (Timer L), statelessly to `fallback`.
    Resend2xx {
        key: TransactionKey,
        response: Response,
        fallback: Option<Peer>,
    },
    /// CANCEL the INVITE of client transaction `key` (RFC 3261 §9.1).
    Cancel { key: TransactionKey },
    /// Octets outside any transaction: the ACK of a 2xx (§13.2.2.4).
    Transmit { to: Peer, bytes: Bytes },
    /// A finished call's record, for the CDR file.
    Cdr(Box<CdrRecord>),
    /// Route a call's next step (`plan`): answer with `continue_call` before anything else.
    Route(super::plan::Lookup),
}

/// Read access to the transaction layer, for the one decision that needs it: a 2xx no call
/// owns, whose INVITE (and where it went) only the transaction layer still remembers.
pub trait TxView {
    fn request(&self, key: &TransactionKey) -> Option<&Request>;
    fn peer(&self, key: &TransactionKey) -> Option<Peer>;
}

impl TxView for TransactionLayer {
    fn request(&self, key: &TransactionKey) -> Option<&Request> {
        TransactionLayer::request(self, key)
    }
    fn peer(&self, key: &TransactionKey) -> Option<Peer> {
        TransactionLayer::peer(self, key)
    }
}

/// Counters of the call core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct B2buaStats {
    pub calls_ended: u64,
    /// Started, answered, ended by cause, post-dial delay (`stats`).
    pub calls: super::CallStats,
}

/// Branches we mint start with this and this run's id, so a request that comes back to us
/// is recognised (RFC 3261 §16.3 step 4 loop detection, done the B2BUA way) and a foreign
/// branch that merely starts like ours is not.
pub const BRANCH_PREFIX: &str = "z9hG4bKfs";

/// Every call, every MESSAGE in flight, and what they need to live.
pub struct B2bua {
    pub(super) cfg: B2buaConfig,
    pub(super) calls: Calls,
    /// INVITE client transactions of b-legs whose call has ended after they answered: a
    /// repeated 2xx from them only needs an ACK (bounded, oldest forgotten first).
    pub(super) ended_b: crate::FastSet<TransactionKey>,
    pub(super) ended_b_order: VecDeque<TransactionKey>,
    pub(super) messages: Messages,
    /// `max_calls_per_user` / `max_calls_per_source` for calls and for pending MESSAGEs.
    pub(super) call_limits: Limits,
    pub(super) message_limits: Limits,
    /// Tags, Call-IDs, branches and CSeq numbers of our requests and answers.
    pub(super) rng: StdRng,
    /// Distinguishes this run's call ids in CDRs and its branches (loop detection).
    pub(super) run_id: u64,
    pub(super) out: VecDeque<Command>,
    pub(super) stats: B2buaStats,
    /// The media relay when media is anchored (`[media] mode = "relay"`), else `None`.
    pub(super) media: Option<super::RelayHandle>,
    /// Relay sessions by the call they belong to (media timeouts name the session).
    pub(super) media_calls: crate::FastMap<crate::media::SessionId, super::CallId>,
}

impl B2bua {
    pub fn new(cfg: B2buaConfig, rng: StdRng, run_id: u64) -> B2bua {
        let (per_user, per_source) = (cfg.calls.max_calls_per_user, cfg.calls.max_calls_per_source);
        B2bua {
            cfg,
            calls: Calls::new(),
            ended_b: Default::default(),
            ended_b_order: VecDeque::new(),
            messages: Messages::default(),
            call_limits: Limits::new(per_user, per_source),
            message_limits: Limits::new(per_user, per_source),
            rng,
            run_id,
            out: VecDeque::new(),
            stats: B2buaStats::default(),
            media: None,
            media_calls: Default::default(),
        }
    }

    /// Anchors the media of calls set up from now on in `relay` (`[media] mode = "relay"`).
    pub fn set_media(&mut self, relay: super::RelayHandle) {
        self.media = Some(relay);
    }

    pub fn config(&self) -> &B2buaConfig {
        &self.cfg
    }

    pub fn stats(&self) -> B2buaStats {
        self.stats
    }

    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// (calls, dialogs, relayed requests) in the call table: all zero once every call ended.
    pub fn table_sizes(&self) -> (usize, usize, usize) {
        self.calls.table_sizes()
    }

    /// The next thing to do.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.out.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls.poll_timeout()
    }

    /// Timer-driven events of calls.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.handle_call_timers(now, wall);
    }

    /// Whether `req` came back to us: one of its Vias carries a branch of this run (RFC 3261
    /// §16.3 step 4, the B2BUA way).
    pub fn is_our_loop(&self, req: &Request) -> bool {
        let stem = self.branch_stem();
        req.headers
            .vias()
            .iter()
            .any(|v| v.branch().is_some_and(|b| b.starts_with(&stem)))
    }

    /// A fresh branch of this run (RFC 3261 §8.1.1.7), for every request we send, the
    /// engine's keep-alives included, so loop detection knows them all.
    pub fn our_branch(&mut self) -> String {
        format!("{}{:016x}", self.branch_stem(), self.rng.gen::<u64>())
    }

    /// What every branch of this run starts with: with a node id, `z9hG4bKfs-<node>-<run>`
    /// (the id's characters are all RFC 3261 token characters).
    fn branch_stem(&self) -> String {
        match &self.cfg.node_id {
            Some(node) => format!("{BRANCH_PREFIX}-{node}-{:08x}", self.run_id),
            None => format!("{BRANCH_PREFIX}{:08x}", self.run_id),
        }
    }

    /// A Call-ID for a b-leg or a relayed MESSAGE: 128 random bits, `@<node>` appended
    /// when a node id is set (so a trace on the edge proxy tells which node placed it).
    pub(super) fn new_call_id(&mut self) -> String {
        crate::dialog::ids::new_call_id_with(&mut self.rng, self.cfg.node_id.as_deref())
    }

    /// Sends `request` to `to` in a new client transaction; its key, or `None` when the
    /// request cannot start one (no branch: never for requests we build).
    pub(super) fn send_request(&mut self, request: Request, to: Peer) -> Option<TransactionKey> {
        let key = TransactionKey::client_for_request(&request).ok()?;
        self.out.push_back(Command::SendRequest {
            key: key.clone(),
            request,
            to,
        });
        Some(key)
    }

    /// Enters call `id`'s span until the guard drops (nothing when the call is gone).
    pub(super) fn enter(&self, id: super::CallId) -> Option<tracing::span::EnteredSpan> {
        self.calls.get(id).map(|c| c.span.clone().entered())
    }

    pub(super) fn send_response(&mut self, key: &TransactionKey, response: Response) {
        self.out.push_back(Command::Respond {
            key: key.clone(),
            response,
        });
    }

    pub(super) fn transmit(&mut self, to: Peer, bytes: Bytes) {
        self.out.push_back(Command::Transmit { to, bytes });
    }

    /// A response to `req` with a To tag (except 100, §8.2.6.2) and our Server header.
    pub(super) fn response(&mut self, req: &Request, code: u16, phrase: &str) -> Response {
        super::respond::response_with(&mut self.rng, &self.cfg.user_agent, req, code, phrase)
    }

    /// A refusal as its response (`Reject` names the status, phrase and extra headers).
    pub(super) fn reject_response(&mut self, req: &Request, rej: super::Reject) -> Response {
        let mut r = self.response(req, rej.status(), rej.phrase());
        rej.add_headers(&mut r.headers);
        r
    }

    pub(super) fn finish_response(&self, resp: &mut Response) {
        super::respond::push_user_agent(
            &mut resp.headers,
            crate::sip::HeaderName::Server,
            &self.cfg.user_agent,
        );
    }
}

/// The command that sends `request` to `to` in a new client transaction, or `None` when it
/// has no RFC 3261 branch (never for requests we build). A free function so that code
/// holding a borrow of one call can still queue a request.
pub(super) fn request_command(request: Request, to: Peer) -> Option<Command> {
    let key = TransactionKey::client_for_request(&request).ok()?;
    Some(Command::SendRequest { key, request, to })
}

/// The events the engine routes here.
impl B2bua {
    /// A response on one of our client transactions. False when `key` belongs to none of
    /// our calls or MESSAGEs (and the response is not a 2xx to an INVITE, which is ours to
    /// ACK whoever sent the INVITE).
    pub fn handle_client_response(
        &mut self,
        now: Instant,
        wall: SystemTime,
        tx: &dyn TxView,
        key: &TransactionKey,
        resp: Response,
    ) -> bool {
        if let Some((id, leg)) = self.calls.by_b_invite(key) {
            self.on_b_response(now, wall, id, leg, resp);
            return true;
        }
        if self.on_message_answer(key, resp.status) {
            return true;
        }
        if self.on_refresh_response(now, wall, key, Some(&resp)) {
            return true;
        }
        if self.calls.peek_relay(key).is_some() {
            self.on_relay_response(now, key, resp);
            return true;
        }
        // A 2xx to an INVITE: a retransmission in a live call, or a call that is gone.
        if is_2xx_to_invite(&resp) {
            self.unclaimed_2xx(now, wall, Some((key, tx)), resp);
            return true;
        }
        false
    }

    /// A response no transaction claims: a retransmitted 2xx in a call (re-ACK it).
    pub fn handle_stray_response(&mut self, now: Instant, wall: SystemTime, resp: Response) {
        if is_2xx_to_invite(&resp) {
            self.unclaimed_2xx(now, wall, None, resp);
        }
    }

    /// A client transaction of ours timed out (408) or could not be sent (503).
    pub fn handle_client_failure(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: &TransactionKey,
        status: u16,
    ) {
        self.on_client_failure(now, wall, key, status);
    }

    /// CANCEL on server transaction `key` for the INVITE of server transaction `invite` (if
    /// the transaction layer found it; RFC 3261 §9.2).
    pub fn handle_cancel(
        &mut self,
        wall: SystemTime,
        tx: &dyn TxView,
        key: &TransactionKey,
        cancel: &Request,
        invite: Option<TransactionKey>,
    ) {
        if let Some(id) = invite.as_ref().and_then(|k| self.calls.by_a_invite(k)) {
            let resp = self.response(cancel, 200, "OK");
            self.send_response(key, resp);
            return self.on_a_cancel(wall, id);
        }
        let resp = match invite {
            Some(_) => self.response(cancel, 200, "OK"),
            None => self.reject_response(cancel, super::Reject::NoSuchDialog),
        };
        self.send_response(key, resp);
        // An INVITE no call owns (still being admitted, or refused): 487 ends it.
        if let Some(inv) = invite {
            if let Some(invite_req) = tx.request(&inv).cloned() {
                let resp = self.reject_response(&invite_req, super::Reject::RequestTerminated);
                self.send_response(&inv, resp);
            }
        }
    }

    /// An ACK the transaction layer passed up (for a 2xx; `invite`: the server transaction
    /// of the INVITE it acknowledges, while it lives).
    pub fn handle_ack(&mut self, now: Instant, invite: Option<TransactionKey>, ack: &Request) {
        self.on_ack(now, invite, ack);
    }

    /// Ends call `id` from the switch's side (an operator's hang-up, a media timeout): BYE
    /// on both legs with `cause` as the Q.850 Reason, CDR with hangup side "system"; a call
    /// still ringing gets its b-legs cancelled and the caller the final response `cause`
    /// maps to (`end_ringing`). False when no such call is up.
    pub fn hang_up_call(
        &mut self,
        wall: SystemTime,
        id: super::CallId,
        cause: crate::cdr::HangupCause,
    ) -> bool {
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        if call.state == super::CallState::Ringing {
            let _span = self.enter(id);
            self.end_ringing(wall, id, cause, None);
        } else {
            self.hang_up(wall, id, crate::cdr::Side::System, cause);
        }
        true
    }

    /// The ids of the calls in the table.
    pub fn call_ids(&self) -> Vec<super::CallId> {
        self.calls.ids()
    }

    /// A request with a To tag (not ACK/CANCEL) on server transaction `key`. `router` says
    /// where a number dialled in the middle of a call leads (a transfer's Refer-To); the core
    /// never routes by itself.
    pub fn handle_dialog_request(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        req: Request,
        router: super::Router<'_>,
    ) {
        self.handle_in_dialog(now, wall, key, req, router);
    }
}

fn is_2xx_to_invite(resp: &Response) -> bool {
    (200..300).contains(&resp.status)
        && resp
            .headers
            .cseq()
            .is_some_and(|c| c.method == crate::sip::Method::Invite)
}
