//! Admission of a new call or MESSAGE: one path for both, so INVITE and MESSAGE honour the
//! same rules in the same order: RFC 3261 §16.3 steps 3 and 4 (483, 482), a usable
//! Request-URI and From, digest authentication with 407 when `auth_calls` is on (before
//! anything is routed, so an unauthenticated caller learns nothing about which users exist),
//! then the served domain (403 for any other: no open relay).
//!
//! Admission runs before the transaction layer, and a refusal is sent statelessly, as the
//! registrar's 401 is: no transaction, so no retransmitted 407 (or 403) and no Timer H; one
//! datagram in gives at most one out (no UDP reflection, whatever credentials it carries).
//! Its To tag is derived from the request, so a retransmission gets the same answer; the ACK
//! to it matches no transaction and is absorbed without state. An admitted request is handed
//! on with its verdict, so its credentials (and their nonce count) are checked once.
//! Never routes, never counts towards limits: what comes after admission is the caller's.

use super::auth::{AuthKind, AuthVerdict};
use super::Engine;
use crate::b2bua::headers::clean_value;
use crate::cdr::Party;
use crate::net::Peer;
use crate::registrar::canonical_host;
use crate::sip::{Method, Request, Response, Uri};
use crate::transaction::TransactionKey;
use std::time::{Instant, SystemTime};

/// Who sends a request that passed admission.
#[derive(Debug)]
pub(super) struct Admitted {
    pub ruri: Uri,
    /// The configured domain, else the Request-URI's host (`registrar::canonical_host`).
    pub realm: String,
    /// The caller: the authenticated user (display name from the directory, else its From),
    /// or with `auth_calls = false` whatever its From says.
    pub caller: Party,
    /// Digest verified: only then may the caller's identity be asserted to anyone.
    pub authenticated: bool,
}

impl Engine {
    /// The checks every new INVITE and MESSAGE passes; `Err` is the answer to send.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
    ) -> Result<Admitted, Response> {
        if let Some((code, phrase)) = self.invite_precheck(req) {
            return Err(self.response(req, code, phrase));
        }
        let Ok(ruri) = req.request_uri() else {
            return Err(self.response(req, 400, "Bad Request - Malformed Request-URI"));
        };
        // With no domain configured only our own hosts are served (issue 17.3), in the one
        // spelling the registrar files bindings under; refused before any digest work.
        let realm = match &self.cfg.domain {
            Some(d) => d.clone(),
            None if self.serves_host(ruri.host()) => canonical_host(ruri.host()),
            None => return Err(self.response(req, 403, "Forbidden - Domain Not Served")),
        };
        let Ok(from) = req.headers.from() else {
            return Err(self.response(req, 400, "Bad Request - Malformed From"));
        };
        let from_display = from
            .display_name_lossy()
            .and_then(|d| clean_value(d.as_bytes()))
            .map(|d| String::from_utf8_lossy(&d).into_owned());
        let caller = if self.cfg.calls.auth_calls {
            match self.authenticate(now, wall, req, &realm, AuthKind::Proxy) {
                AuthVerdict::Ok(user) => Party {
                    display_name: self
                        .users
                        .get(&user)
                        .and_then(|u| u.display_name.clone())
                        .or(from_display),
                    user,
                },
                AuthVerdict::Challenge { stale } => {
                    return Err(self.challenge(wall, req, &realm, AuthKind::Proxy, stale))
                }
                AuthVerdict::Forbidden => return Err(self.response(req, 403, "Forbidden")),
                AuthVerdict::BadRequest => {
                    return Err(self.response(req, 400, "Bad Request - Malformed Credentials"))
                }
            }
        } else {
            // Not verified: the From is only a claim, so the directory's name for that
            // user is not lent to it.
            Party {
                user: from.uri.user().unwrap_or_default().to_string(),
                display_name: from_display,
            }
        };
        if let Some(d) = &self.cfg.domain {
            if !ruri.host().eq_ignore_ascii_case(d) {
                return Err(self.response(req, 403, "Forbidden - Relaying Denied"));
            }
        }
        Ok(Admitted {
            ruri,
            realm,
            caller,
            authenticated: self.cfg.calls.auth_calls,
        })
    }

    /// A new INVITE or MESSAGE (not a retransmission of one we hold a transaction for) is
    /// admitted here, before the transaction layer sees it. A refusal (407, 403, 483, 482,
    /// 400) is sent statelessly and `true` returned; an admitted request is kept for
    /// `take_admitted` so its credentials are verified once only.
    pub(super) fn admit_statelessly(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
        dest: Peer,
    ) -> bool {
        self.admitted = None;
        if !matches!(req.method, Method::Invite | Method::Message) || req.headers.to_tag().is_some()
        {
            return false;
        }
        // Shutting down: a new call gets 503 (shutdown.rs) without any digest work.
        if self.draining && req.method == Method::Invite {
            return false;
        }
        let retransmission =
            TransactionKey::server_for_request(req).is_ok_and(|k| self.txl.state(&k).is_some());
        if retransmission {
            return false;
        }
        let mut resp = match self.admit(now, wall, req) {
            Ok(a) => {
                self.admitted = Some(a);
                return false;
            }
            Err(resp) => resp,
        };
        self.use_stateless_tag(req, &mut resp);
        self.send_stateless(dest, &resp);
        true
    }

    /// The source address a per-source limit counts the request being handled against:
    /// none for allow-listed addresses (trunks, monitors: `[security] allow`), whose users
    /// are still bounded per user.
    pub(super) fn limited_source(&self) -> Option<std::net::IpAddr> {
        self.current
            .map(|o| o.source.ip())
            .filter(|ip| !self.guard.is_allow_listed(*ip))
    }

    /// The admission of the request being handled, done by `admit_statelessly`, or done now.
    pub(super) fn take_admitted(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
    ) -> Result<Admitted, Response> {
        match self.admitted.take() {
            Some(a) => Ok(a),
            None => self.admit(now, wall, req),
        }
    }
}
