//! Digest authentication as a client (UAC): answering a provider's 401 or 407 with a
//! gateway's own credentials (RFC 3261 §22.2–§22.3, RFC 7616), for outbound registrations and
//! for calls sent through a trunk.
//!
//! [`UacAuth`] keeps, per protection space (which header answers it, and the realm), the last
//! challenge and the `nc` count on its nonce, so a refresh can reuse it ([`UacAuth::preemptive`])
//! and a second challenge can be told apart from a refused password. [`retry`] turns a
//! challenged request into its retry (CSeq + 1, new branch, credentials replaced per realm).
//!
//! Built on `challenge` (parsing) and `credentials` (the arithmetic); no hashing of its own.
//! Sans-IO: no clock, no randomness of its own (the caller passes the cnonce and the branch).
//! It must never panic on what a peer sends, never answer a realm the gateway is not
//! configured for, and never loop: a challenge that says our answer was wrong ends in an
//! error, not in another attempt.

use super::challenge::{parse_challenges, Challenge, DigestChallenge};
use super::credentials::{parse_credentials, Answer, Credentials, DigestCredentials};
use super::params::HeaderError;
use crate::sip::typed::split_values;
use crate::sip::{HeaderName, Request, Response, Via};
use std::fmt;
use thiserror::Error;

/// Consecutive `stale=true` challenges for one realm that we answer; the next one is refused
/// (a server that calls every nonce stale would otherwise keep us busy forever).
pub const MAX_STALE_IN_A_ROW: u8 = 3;

/// What a gateway authenticates with. The password never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct UacCredentials {
    pub username: String,
    pub password: String,
    /// Answer only challenges of this realm (ASCII case-insensitive); `None` or empty: any.
    pub realm: Option<String>,
}

impl fmt::Debug for UacCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UacCredentials")
            .field("username", &self.username)
            .field("password", &"..")
            .field("realm", &self.realm)
            .finish()
    }
}

impl UacCredentials {
    fn wanted_realm(&self) -> Option<&str> {
        self.realm.as_deref().filter(|r| !r.is_empty())
    }
}

/// Why a challenge was not answered. Every variant is worth one log line; none carries a
/// password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UacAuthError {
    #[error("status {0} is not a challenge (401 or 407)")]
    NotAChallenge(u16),
    #[error("{0} without a {1} header")]
    NoChallenge(u16, &'static str),
    #[error("malformed challenge: {0}")]
    Malformed(HeaderError),
    #[error("no challenge we can answer (offered: {0})")]
    Unsupported(String),
    #[error("challenged for realm(s) {offered}, configured to answer only {wanted:?}")]
    RealmMismatch { wanted: String, offered: String },
    #[error("realm {realm:?} refused our credentials ({why}): wrong username or password?")]
    Rejected { realm: String, why: &'static str },
    #[error("realm {0:?} called {MAX_STALE_IN_A_ROW} nonces in a row stale")]
    TooManyStale(String),
    #[error("the challenged request's URI is not UTF-8")]
    BadRequestUri,
}

/// One protection space we have been challenged in.
#[derive(Debug, Clone)]
struct Space {
    /// `Authorization` (the challenge came in a 401) or `Proxy-Authorization` (407).
    header: HeaderName,
    challenge: DigestChallenge,
    /// The last `nc` sent with `challenge.nonce`.
    nc: u32,
    /// True when the last credentials for this space answered a challenge to the request
    /// just before; false when they reused a remembered nonce (`preemptive`).
    fresh: bool,
    stale_in_a_row: u8,
    /// When this space was last challenged, in `UacAuth::counter` units.
    touched: u64,
}

/// Client-side auth state of one registration or one outgoing call: the last challenge per
/// protection space, the `nc` count on its nonce, and enough memory to give up instead of
/// looping (a second challenge on the same nonce without `stale=true` means the password is
/// wrong; so does a new nonce without `stale=true` right after a fresh answer, RFC 7616 §3.3).
#[derive(Debug, Default, Clone)]
pub struct UacAuth {
    spaces: Vec<Space>,
    counter: u64,
}

impl UacAuth {
    /// Answers the challenge in `resp` (401 → `Authorization`, 407 → `Proxy-Authorization`)
    /// to `challenged`, the request that got it. Among several challenges (in one line or
    /// several) the strongest algorithm we implement wins (SHA-512-256 > SHA-256 > MD5, `-sess`
    /// above plain), the first one on a tie; other schemes and unknown algorithms are skipped;
    /// with `creds.realm` set only that realm is answered. The digest-uri is `challenged`'s
    /// Request-URI, which [`retry`] keeps. One challenge is answered per response: a forking
    /// proxy's aggregate of several realms gets the best one only.
    pub fn answer(
        &mut self,
        creds: &UacCredentials,
        challenged: &Request,
        resp: &Response,
        cnonce: &str,
    ) -> Result<(HeaderName, String), UacAuthError> {
        let (asks, answers, label) = match resp.status {
            401 => (
                HeaderName::WwwAuthenticate,
                HeaderName::Authorization,
                "WWW-Authenticate",
            ),
            407 => (
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
                "Proxy-Authenticate",
            ),
            s => return Err(UacAuthError::NotAChallenge(s)),
        };
        let best = choose(creds, resp, &asks, label)?;
        let uri = challenged.uri_str().ok_or(UacAuthError::BadRequestUri)?;
        let sent = sent_nonce(challenged, &answers, &best.realm);
        let at = self
            .spaces
            .iter()
            .position(|s| s.header == answers && s.challenge.realm == best.realm);
        let prev = at.map(|i| &self.spaces[i]);
        let mut stale_in_a_row = 0;
        if let Some(sent) = &sent {
            if best.stale {
                stale_in_a_row = prev.map_or(0, |p| p.stale_in_a_row).saturating_add(1);
                if stale_in_a_row > MAX_STALE_IN_A_ROW {
                    return Err(UacAuthError::TooManyStale(best.realm));
                }
            } else if *sent == best.nonce {
                return Err(UacAuthError::Rejected {
                    realm: best.realm,
                    why: "challenged again on the same nonce",
                });
            } else if prev.is_some_and(|p| p.fresh && p.challenge.nonce == *sent) {
                return Err(UacAuthError::Rejected {
                    realm: best.realm,
                    why: "a new nonce without stale=true after a fresh answer",
                });
            }
        }
        let nc = match prev {
            Some(p) if p.challenge.nonce == best.nonce => p.nc.saturating_add(1),
            _ => 1,
        };
        self.counter += 1;
        let space = Space {
            header: answers.clone(),
            challenge: best,
            nc,
            fresh: true,
            stale_in_a_row,
            touched: self.counter,
        };
        let value = render(
            creds,
            &space,
            challenged.method.as_str(),
            uri,
            &challenged.body,
            cnonce,
        );
        match at {
            Some(i) => self.spaces[i] = space,
            None => self.spaces.push(space),
        }
        Ok((answers, value))
    }

    /// Credentials for a new request (a refresh REGISTER, say) from the most recently
    /// challenged protection space, with the next `nc` on its nonce, so the request need not
    /// be challenged first. `None` before any challenge.
    pub fn preemptive(
        &mut self,
        creds: &UacCredentials,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> Option<(HeaderName, String)> {
        let i = (0..self.spaces.len()).max_by_key(|&i| self.spaces[i].touched)?;
        Some(self.reuse(i, creds, method, uri, body, cnonce))
    }

    /// As [`UacAuth::preemptive`], for every protection space remembered (a proxy's and a
    /// registrar's, RFC 3261 §22.3), in the order they were first challenged.
    pub fn preemptive_all(
        &mut self,
        creds: &UacCredentials,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> Vec<(HeaderName, String)> {
        (0..self.spaces.len())
            .map(|i| self.reuse(i, creds, method, uri, body, cnonce))
            .collect()
    }

    /// True before the first challenge (nothing to send preemptively).
    pub fn is_empty(&self) -> bool {
        self.spaces.is_empty()
    }

    fn reuse(
        &mut self,
        i: usize,
        creds: &UacCredentials,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> (HeaderName, String) {
        let s = &mut self.spaces[i];
        s.nc = s.nc.saturating_add(1);
        s.fresh = false;
        let s = &self.spaces[i];
        (
            s.header.clone(),
            render(creds, s, method, uri, body, cnonce),
        )
    }
}

fn render(
    creds: &UacCredentials,
    s: &Space,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
) -> String {
    let a = Answer {
        username: &creds.username,
        password: &creds.password,
        method,
        uri,
        body,
        cnonce,
        nc: s.nc,
    };
    DigestCredentials::answer(&s.challenge, &a).to_string()
}

/// The challenge to answer among every `asks` line of `resp`. A malformed line does not spoil
/// a good one beside it; it is the error only when nothing else can be answered.
fn choose(
    creds: &UacCredentials,
    resp: &Response,
    asks: &HeaderName,
    label: &'static str,
) -> Result<DigestChallenge, UacAuthError> {
    let mut lines = 0;
    let mut malformed = None;
    let mut offered = Vec::new();
    for h in resp.headers.get_all(asks) {
        lines += 1;
        let parsed = match h.value_str() {
            Some(v) => parse_challenges(v),
            None => Err(HeaderError::Invalid {
                name: "challenge",
                value: String::from_utf8_lossy(&h.value).into_owned(),
            }),
        };
        match parsed {
            Ok(list) => offered.extend(list),
            Err(e) => malformed = Some(e),
        }
    }
    if lines == 0 {
        return Err(UacAuthError::NoChallenge(resp.status, label));
    }
    let digests: Vec<&DigestChallenge> = offered
        .iter()
        .filter_map(|c| match c {
            Challenge::Digest(d) => Some(d),
            Challenge::Other(_) => None,
        })
        .collect();
    if digests.is_empty() {
        return Err(match malformed {
            Some(e) => UacAuthError::Malformed(e),
            None => UacAuthError::Unsupported(describe(&offered)),
        });
    }
    let wanted = creds.wanted_realm();
    // `max_by_key` keeps the last of equals; reversed, the first offered wins a tie.
    digests
        .iter()
        .rev()
        .filter(|c| wanted.is_none_or(|w| c.realm.eq_ignore_ascii_case(w)))
        .max_by_key(|c| c.algorithm.strength())
        .map(|c| (*c).clone())
        .ok_or_else(|| UacAuthError::RealmMismatch {
            wanted: wanted.unwrap_or_default().to_string(),
            offered: digests
                .iter()
                .map(|c| format!("{:?}", c.realm))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// `Basic, Digest(SHA-1)`: what a response offered that we could not use, for the log.
fn describe(offered: &[Challenge]) -> String {
    let names: Vec<String> = offered
        .iter()
        .map(|c| match c {
            Challenge::Digest(d) => format!("Digest({})", d.algorithm),
            Challenge::Other(v) => match v.param("algorithm") {
                Some(a) => format!("{}({})", v.scheme, a.value),
                None => v.scheme.clone(),
            },
        })
        .collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// The realm of a credentials header value, when it parses as Digest.
fn realm_of(value: &[u8]) -> Option<String> {
    match parse_credentials(std::str::from_utf8(value).ok()?) {
        Ok(Credentials::Digest(c)) => Some(c.realm),
        _ => None,
    }
}

/// The nonce `req` answered `realm` with in its `header` lines, if it carried credentials.
fn sent_nonce(req: &Request, header: &HeaderName, realm: &str) -> Option<String> {
    req.headers
        .get_all(header)
        .find_map(|h| match parse_credentials(h.value_str()?) {
            Ok(Credentials::Digest(c)) if c.realm == realm => Some(c.nonce),
            _ => None,
        })
}

/// The retry of a challenged request (RFC 3261 §22.2, §8.1.3.5): a copy with CSeq + 1, the top
/// Via's branch replaced by `branch` (a new transaction), and `header` added in place of any
/// credentials of the same kind for the same realm; the others stay (a proxy's
/// `Proxy-Authorization` survives the registrar's 401, §22.3). Call-ID, tags, Request-URI
/// and body are kept, so a b-leg INVITE stays the same dialog attempt. A request without a
/// readable top Via (never one we built) keeps its Via as it is.
pub fn retry(challenged: &Request, header: (HeaderName, String), branch: &str) -> Request {
    let mut r = challenged.clone();
    let (name, value) = header;
    if let Some(realm) = realm_of(value.as_bytes()) {
        r.headers
            .retain(|h| h.name != name || realm_of(&h.value).as_deref() != Some(realm.as_str()));
    }
    r.headers.push(name, value);
    if let Some(c) = r.headers.cseq() {
        r.headers.set(
            HeaderName::CSeq,
            format!("{} {}", c.seq.saturating_add(1), c.method),
        );
    }
    if let Some(top) = r.headers.first_mut(&HeaderName::Via) {
        if let Some(line) = top.value_str().and_then(|v| rebranch(v, branch)) {
            top.value = line.into();
        }
    }
    r
}

/// The Via line with its first value's branch set to `branch`.
fn rebranch(line: &str, branch: &str) -> Option<String> {
    let mut values = split_values(line);
    let mut first = Via::parse(values.next()?)?;
    first.params.set("branch", Some(branch.to_string()));
    let mut out = first.to_string();
    for v in values {
        out.push_str(", ");
        out.push_str(v);
    }
    Some(out)
}

#[cfg(test)]
#[path = "uac_tests.rs"]
mod tests;
