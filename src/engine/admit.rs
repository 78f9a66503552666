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
use crate::b2bua::{Admitted, Reject};
use crate::cdr::Party;
use crate::net::Peer;
use crate::registrar::canonical_host;
use crate::sip::{Method, Request, Response};
use crate::transaction::TransactionKey;
use std::time::{Instant, SystemTime};

/// Why admission refused a request: a refusal, or a digest challenge (407) to answer first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    Reject(Reject),
    Challenge { realm: String, stale: bool },
}

impl From<Reject> for Refusal {
    fn from(r: Reject) -> Refusal {
        Refusal::Reject(r)
    }
}

impl Engine {
    /// The one admission path of every request that needs a caller identity (INVITE,
    /// MESSAGE; later REFER and SUBSCRIBE): RFC 3261 §16.3 steps 3 and 4, a usable
    /// Request-URI and From, the served domain, digest authentication when `auth_calls` is
    /// on, and no relaying for other domains.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
    ) -> Result<Admitted, Refusal> {
        if req.headers.max_forwards() == Some(0) {
            return Err(Reject::TooManyHops.into());
        }
        if self.b2bua.is_our_loop(req) {
            return Err(Reject::LoopDetected.into());
        }
        let ruri = req.request_uri().map_err(|_| Reject::MalformedRequestUri)?;
        let from = req.headers.from().map_err(|_| Reject::MalformedFrom)?;
        // A call from one of our trunks: no digest (the provider authenticated its caller),
        // and it runs in `public`, which reaches only our own users.
        let source = self.current.map(|o| o.source);
        if let Some(g) = self.trunk_of(source, ruri.user()) {
            let by_contact = ruri.user() == Some(g.username.as_str());
            let number = if by_contact {
                req.headers
                    .to()
                    .ok()
                    .and_then(|t| t.uri.user().map(str::to_string))
                    .unwrap_or_default()
            } else {
                ruri.user().unwrap_or_default().to_string()
            };
            let trunk = g.name.clone();
            let realm = match &self.cfg.domain {
                Some(d) => d.clone(),
                None => canonical_host(ruri.host()),
            };
            return Ok(Admitted {
                ruri,
                realm,
                caller: Party {
                    user: from.uri.user().unwrap_or_default().to_string(),
                    display_name: from
                        .display_name_lossy()
                        .and_then(|d| clean_value(d.as_bytes()))
                        .map(|d| String::from_utf8_lossy(&d).into_owned()),
                },
                authenticated: false,
                context: crate::routing::PUBLIC_CONTEXT.to_string(),
                number,
                trunk: Some(trunk),
            });
        }
        // With no domain configured only our own hosts are served (issue 17.3), in the one
        // spelling the registrar files bindings under; refused before any digest work.
        let realm = match &self.cfg.domain {
            Some(d) => d.clone(),
            None if self.serves_host(ruri.host()) => canonical_host(ruri.host()),
            None => return Err(Reject::DomainNotServed.into()),
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
                    return Err(Refusal::Challenge { realm, stale })
                }
                AuthVerdict::Forbidden => return Err(Reject::Forbidden.into()),
                AuthVerdict::BadRequest => return Err(Reject::MalformedCredentials.into()),
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
                return Err(Reject::RelayingDenied.into());
            }
        }
        let authenticated = self.cfg.calls.auth_calls;
        let context = if authenticated {
            self.users
                .get(&caller.user)
                .and_then(|u| u.context.clone())
                .unwrap_or_else(|| crate::routing::DEFAULT_CONTEXT.to_string())
        } else {
            crate::routing::PUBLIC_CONTEXT.to_string()
        };
        Ok(Admitted {
            number: ruri.user().unwrap_or_default().to_string(),
            ruri,
            realm,
            caller,
            authenticated,
            context,
            trunk: None,
        })
    }

    /// The answer to a refused admission.
    pub(super) fn refusal_response(
        &mut self,
        wall: SystemTime,
        req: &Request,
        refusal: Refusal,
    ) -> Response {
        match refusal {
            Refusal::Reject(r) => self.reject_response(req, r),
            Refusal::Challenge { realm, stale } => {
                self.challenge(wall, req, &realm, AuthKind::Proxy, stale)
            }
        }
    }

    /// A new INVITE or MESSAGE (not a retransmission of one we hold a transaction for) is
    /// admitted here, before the transaction layer sees it. A refusal (407, 403, 483, 482,
    /// 400) is sent statelessly and `Err` returned; an admitted request's verdict is
    /// returned, to go with it to the call core, so its credentials are verified once only.
    /// `Ok(None)`: not a request admission looks at here.
    pub(super) fn admit_statelessly(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
        dest: Peer,
    ) -> Result<Option<Admitted>, ()> {
        if !matches!(req.method, Method::Invite | Method::Message) || req.headers.to_tag().is_some()
        {
            return Ok(None);
        }
        // Shutting down: a new call gets 503 (shutdown.rs) without any digest work.
        if self.drain.refusing && req.method == Method::Invite {
            return Ok(None);
        }
        let retransmission =
            TransactionKey::server_for_request(req).is_ok_and(|k| self.txl.state(&k).is_some());
        if retransmission {
            return Ok(None);
        }
        match self.admit(now, wall, req) {
            Ok(a) => Ok(Some(a)),
            Err(refusal) => {
                let mut resp = self.refusal_response(wall, req, refusal);
                self.use_stateless_tag(req, &mut resp);
                self.send_stateless(dest, &resp);
                Err(())
            }
        }
    }
}
