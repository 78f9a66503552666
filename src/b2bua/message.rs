//! Out-of-dialog MESSAGE (RFC 3428): softphone chat from one user to another. Admitted like
//! an INVITE (`admit`: 407 when `auth_calls` is on, routing only after authentication; held
//! to the same per-user / per-source limits while pending), then sent to every registered
//! contact of the callee; the sender gets the first 2xx, or the best failure once every
//! contact has answered (RFC 3261 §16.7).

use super::core::B2bua;
use super::headers::clean_value;
use super::setup::{binding_peer, identity, push_route_set, Arrival, Route};
use super::{best_response, Admitted, Hold, Reject};
use crate::cdr::Party;
use crate::dialog::ids::new_tag_with;
use crate::dialog::ViaSpec;
use crate::net::Peer;
use crate::sip::{reason_phrase, HeaderName, Method, Request, Response};
use crate::transaction::TransactionKey;
use crate::FastMap;
use std::time::Instant;

/// Bounded: more MESSAGEs waiting for answers than this get 503.
const MAX_PENDING: usize = 10_000;

/// One MESSAGE being delivered.
#[derive(Debug)]
struct Pending {
    server_key: TransactionKey,
    original: Request,
    outstanding: usize,
    failures: Vec<u16>,
    answered: bool,
    /// The sender's per-user / per-source count, given back when the last answer is in.
    hold: Hold,
}

/// MESSAGEs in flight, by the client transactions that carry them.
#[derive(Debug, Default)]
pub(super) struct Messages {
    next: u64,
    pending: FastMap<u64, Pending>,
    by_client: FastMap<TransactionKey, u64>,
}

impl B2bua {
    fn refuse(&mut self, key: &TransactionKey, req: &Request, rej: Reject) {
        let resp = self.reject_response(req, rej);
        self.send_response(key, resp);
    }

    /// An admitted out-of-dialog MESSAGE on server transaction `key`, routed by the engine.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_message(
        &mut self,
        now: Instant,
        key: TransactionKey,
        req: Request,
        arrival: Arrival,
        adm: Admitted,
        route: Route,
    ) {
        // Forwarded with Max-Forwards decremented but never below 0: admission answered 483
        // to a MESSAGE arriving with 0, so a loop ends by hop count.
        let (realm, from) = (adm.realm, adm.caller);
        let (callee, bindings) = match route {
            Route::NoSuchUser { .. } => return self.refuse(&key, &req, Reject::NotFound),
            Route::User { callee, bindings } => (callee.user, bindings),
            // Messages go to users only: the dialplan's trunks and groups are for calls.
            Route::Plan(_) | Route::Reject { .. } | Route::Redirect { .. } => {
                return self.refuse(&key, &req, Reject::NotFound)
            }
        };
        if bindings.is_empty() {
            return self.refuse(&key, &req, Reject::NotRegistered);
        }
        if self.messages.pending.len() >= MAX_PENDING {
            return self.refuse(&key, &req, Reject::Unavailable);
        }
        let limited_user = adm.authenticated.then_some(from.user.as_str());
        let hold = match self
            .message_limits
            .try_acquire(limited_user, arrival.limited_source)
        {
            Ok(h) => h,
            Err(over) => return self.over_limit(now, &key, &req, &from.user, arrival, over, false),
        };
        let to = Party {
            user: callee,
            display_name: None,
        };
        self.messages.next += 1;
        let id = self.messages.next;
        let mut sent = 0;
        for b in &bindings {
            let peer: Peer = binding_peer(b);
            let via = ViaSpec::new(peer.transport, b.advertised.clone(), self.our_branch());
            let mut m = Request::new(Method::Message, b.contact.clone());
            let h = &mut m.headers;
            h.push(HeaderName::Via, via.to_value());
            let mf = req.headers.max_forwards().unwrap_or(70).clamp(1, 256) - 1;
            h.push(HeaderName::MaxForwards, mf.to_string());
            // RFC 3327 §5.4: through the edge proxy the phone registered by.
            push_route_set(h, &b.path);
            let tag = new_tag_with(&mut self.rng);
            h.push(
                HeaderName::From,
                format!("{};tag={tag}", identity(&from, &realm)),
            );
            h.push(HeaderName::To, identity(&to, &realm));
            h.push(HeaderName::CallId, self.new_call_id());
            h.push(HeaderName::CSeq, "1 MESSAGE");
            if adm.authenticated {
                h.push(HeaderName::PAssertedIdentity, identity(&from, &realm));
            }
            super::respond::push_user_agent(h, HeaderName::UserAgent, &self.cfg.user_agent);
            for v in req.headers.get_all(&HeaderName::ContentType) {
                if let Some(v) = clean_value(&v.value) {
                    h.push(HeaderName::ContentType, v);
                }
            }
            m.body = req.body.clone();
            if let Some(ckey) = self.send_request(m, peer) {
                self.messages.by_client.insert(ckey, id);
                sent += 1;
            }
        }
        if sent == 0 {
            self.message_limits.release(hold);
            return self.refuse(&key, &req, Reject::Unavailable);
        }
        self.messages.pending.insert(
            id,
            Pending {
                server_key: key,
                original: req,
                outstanding: sent,
                failures: Vec::new(),
                answered: false,
                hold,
            },
        );
    }

    /// A final answer (or a failure status for a timeout / transport error) from one contact.
    /// Returns false when `key` carries no MESSAGE of ours.
    pub(super) fn on_message_answer(&mut self, key: &TransactionKey, status: u16) -> bool {
        if status < 200 {
            return self.messages.by_client.contains_key(key);
        }
        let Some(id) = self.messages.by_client.remove(key) else {
            return false;
        };
        let Some(p) = self.messages.pending.get_mut(&id) else {
            return true;
        };
        p.outstanding = p.outstanding.saturating_sub(1);
        let mut answer = None;
        if (200..300).contains(&status) {
            if !p.answered {
                p.answered = true;
                answer = Some(status);
            }
        } else {
            p.failures.push(status);
            if p.outstanding == 0 && !p.answered {
                answer = best_response(p.failures.iter().copied());
            }
        }
        let done = p.outstanding == 0;
        let (server_key, original) = (p.server_key.clone(), p.original.clone());
        if done {
            if let Some(p) = self.messages.pending.remove(&id) {
                self.message_limits.release(p.hold);
            }
        }
        if let Some(code) = answer {
            let resp: Response = self.response(&original, code, reason_phrase(code));
            self.send_response(&server_key, resp);
        }
        true
    }
}
