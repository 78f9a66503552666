//! Digest authentication of requests (RFC 3261 §22): 401 for REGISTER, 407 for requests a
//! proxy-like element challenges (INVITE, MESSAGE). One code path for both, so the nonce
//! rules and the answers to unknown users and wrong passwords are the same everywhere.

use super::Engine;
use crate::auth::{parse_credentials, Account, Action, Credentials, DigestRequest};
use crate::clock::unix_secs;
use crate::sip::{HeaderName, Request, Response};
use std::time::{Instant, SystemTime};

/// Which pair of headers: `WWW-Authenticate`/`Authorization` (401, registrar) or
/// `Proxy-Authenticate`/`Proxy-Authorization` (407, calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthKind {
    Www,
    /// INVITE/MESSAGE authentication (`auth_calls`); the B2BUA is the first user.
    #[allow(dead_code)]
    Proxy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthVerdict {
    /// Verified; the authenticated user id.
    Ok(String),
    Challenge {
        stale: bool,
    },
    Forbidden,
    BadRequest,
}

impl Engine {
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
        realm: &str,
        kind: AuthKind,
    ) -> AuthVerdict {
        let header = match kind {
            AuthKind::Www => HeaderName::Authorization,
            AuthKind::Proxy => HeaderName::ProxyAuthorization,
        };
        // Several credentials may be present (one per realm, RFC 3261 §22.3): take ours.
        let creds = req
            .headers
            .get_all(&header)
            .filter_map(|h| h.value_str())
            .filter_map(|v| match parse_credentials(v) {
                Ok(Credentials::Digest(c)) => Some(c),
                _ => None,
            })
            .find(|c| c.realm == realm);
        let Some(creds) = creds else {
            return AuthVerdict::Challenge { stale: false };
        };
        // Disabled and unknown accounts take the same path as a wrong password.
        let account = self
            .users
            .get(&creds.username)
            .filter(|u| u.enabled)
            .map(|u| Account {
                username: &u.id,
                secret: &u.secret,
            });
        let dreq = DigestRequest {
            method: req.method.as_str(),
            body: &req.body,
            realm,
        };
        let outcome = self
            .verifier
            .verify(unix_secs(wall), &creds, &dreq, account);
        match outcome.action() {
            Action::Accept => {
                if let Some(o) = self.current {
                    self.guard
                        .auth_succeeded(now, o.source.ip(), &creds.username);
                    self.trusted.extend(o.connection);
                }
                AuthVerdict::Ok(creds.username.clone())
            }
            Action::Challenge { stale } => AuthVerdict::Challenge { stale },
            Action::Forbidden => {
                self.stats.auth_failures += 1;
                if let Some(o) = self.current {
                    self.guard.auth_failed(now, o.source.ip(), &creds.username);
                }
                tracing::warn!(
                    target: "ferroswitch::auth",
                    user = %creds.username, %realm, method = %req.method,
                    outcome = ?outcome, "authentication failed"
                );
                AuthVerdict::Forbidden
            }
            Action::BadRequest => AuthVerdict::BadRequest,
        }
    }

    /// 401/407 with one challenge per offered algorithm (strongest first).
    pub(super) fn challenge(
        &mut self,
        wall: SystemTime,
        req: &Request,
        realm: &str,
        kind: AuthKind,
        stale: bool,
    ) -> Response {
        self.stats.auth_challenges += 1;
        let (code, phrase, header) = match kind {
            AuthKind::Www => (401, "Unauthorized", HeaderName::WwwAuthenticate),
            AuthKind::Proxy => (
                407,
                "Proxy Authentication Required",
                HeaderName::ProxyAuthenticate,
            ),
        };
        let mut resp = self.response(req, code, phrase);
        for c in self.verifier.challenges(unix_secs(wall), realm, stale) {
            resp.headers.push(header.clone(), c.to_string());
        }
        resp
    }
}
