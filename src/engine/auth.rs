//! Digest authentication of requests (RFC 3261 §22): 401 for REGISTER, 407 for requests a
//! proxy-like element challenges (INVITE, MESSAGE). One code path for both, so the nonce
//! rules and the answers to unknown users and wrong passwords are the same everywhere.
//!
//! Beyond the digest arithmetic (issue 17.6): nonces handed out over UDP are bound to the
//! source they were sent to (`nonce_bind_source`), so a sniffed nonce is useless from any
//! other address and failures are only counted against the address that was challenged;
//! `qop` is required (we always offer it); and the digest `uri` must name this request: equal
//! to the Request-URI as a SIP URI (RFC 3261 §19.1.4), or a `sip:`/`sips:` URI whose host is
//! the Request-URI's host or one of our own hosts. The second form admits SIPp, which puts
//! `sip:remote_ip:remote_port` there for INVITEs; `uri=sip:unrelated.example` gets 400.

use super::Engine;
use crate::auth::{parse_credentials, Account, Action, Credentials, DigestRequest, Outcome};
use crate::clock::unix_secs;
use crate::net::Transport;
use crate::registrar::canonical_host;
use crate::sip::uri::Uri;
use crate::sip::{HeaderName, Request, Response};
use std::net::IpAddr;
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
        if !self.digest_uri_ok(&creds.uri, req) {
            // RFC 7616 §3.4.6 / RFC 2617 §3.2.2.5: 400, and no verdict on the password.
            tracing::info!(
                target: "ferroswitch::auth",
                user = %creds.username, uri = %creds.uri, method = %req.method,
                "digest uri does not name this request"
            );
            return AuthVerdict::BadRequest;
        }
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
        let bind = self.nonce_bind();
        let outcome = self
            .verifier
            .verify_from(unix_secs(wall), &creds, &dreq, account, bind);
        match outcome.action() {
            // A locked account (security::Guard) answers a new source as a wrong password would.
            Action::Accept
                if self.current.is_some_and(|o| {
                    self.guard
                        .account_locked(now, o.source.ip(), &creds.username)
                }) =>
            {
                AuthVerdict::Forbidden
            }
            Action::Accept => {
                if let Some(o) = self.current {
                    self.guard
                        .auth_succeeded(now, o.source.ip(), &creds.username);
                    if let Some(c) = o.connection.filter(|c| self.trusted_conns.insert(*c)) {
                        self.trusted.push_back(c);
                    }
                }
                AuthVerdict::Ok(creds.username.clone())
            }
            Action::Challenge { stale } => AuthVerdict::Challenge { stale },
            Action::Forbidden => {
                self.stats.auth_failures += 1;
                // Only a wrong answer to a nonce this source was given counts against it
                // (issue 17.11): with nonce binding on, a nonce issued elsewhere never gets
                // this far (it is `InvalidNonce`: a fresh challenge), so spoofed UDP
                // failures cannot ban a victim's address. A missing qop proves nothing
                // about the password and is not counted either.
                let guessed = matches!(
                    outcome,
                    Outcome::WrongPassword | Outcome::UnknownUser | Outcome::CannotVerify(_)
                );
                if let Some(o) = self.current.filter(|_| guessed) {
                    self.guard.auth_failed(now, o.source.ip(), &creds.username);
                }
                tracing::warn!(
                    target: "ferroswitch::auth",
                    user = %crate::security::log_escape(&creds.username),
                    realm = %crate::security::log_escape(realm),
                    method = %crate::security::log_escape(&req.method),
                    outcome = %crate::security::log_escape_debug(&outcome), "authentication failed"
                );
                AuthVerdict::Forbidden
            }
            Action::BadRequest => AuthVerdict::BadRequest,
        }
    }

    /// 401/407 with one challenge per offered algorithm (in the configured order).
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
        let bind = self.nonce_bind();
        for c in self
            .verifier
            .challenges_for(unix_secs(wall), realm, stale, bind)
        {
            resp.headers.push(header.clone(), c.to_string());
        }
        resp
    }
}

impl Engine {
    /// Where the nonce of a challenge is bound: the UDP source of the request being handled
    /// (TCP peers cannot spoof their address, and their nonces stay unbound).
    pub(super) fn nonce_bind(&self) -> Option<IpAddr> {
        if !self.cfg.registrar.nonce_bind_source {
            return None;
        }
        self.current
            .filter(|o| o.transport == Transport::Udp)
            .map(|o| o.source.ip())
    }

    /// Whether a URI host names us: the domain, one of our addresses or aliases, or the
    /// address the request arrived on.
    pub(super) fn serves_host(&self, host: &str) -> bool {
        self.cfg
            .domain
            .as_deref()
            .is_some_and(|d| canonical_host(d) == canonical_host(host))
            || self
                .cfg
                .registrar
                .served
                .serves(host, self.current.map(|o| o.local))
    }

    /// The digest `uri` rule described in the module documentation.
    fn digest_uri_ok(&self, uri: &str, req: &Request) -> bool {
        let (Ok(duri), Ok(ruri)) = (Uri::parse(uri), req.request_uri()) else {
            return false;
        };
        if !duri.is_sip() {
            return false;
        }
        duri.equivalent(&ruri)
            || canonical_host(duri.host()) == canonical_host(ruri.host())
            || self.serves_host(duri.host())
    }
}
