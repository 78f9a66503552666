//! Deciding whether Digest credentials authenticate a request, and what to answer if not.
//!
//! [`verify`] is a pure function of the credentials, the request, the account and the nonce's
//! status; [`Verifier`] wraps it with our nonces, the offered algorithms and `nc` replay
//! tracking. Both are sans-IO (`now` is passed in) and never look users up themselves: the
//! caller resolves the account. An unknown user costs the same hashing as a wrong password and
//! maps to the same answer, so responses do not reveal which accounts exist.

use super::challenge::DigestChallenge;
use super::credentials::{parse_credentials, Credentials, DigestCredentials};
use super::digest::{self, Algorithm};
use super::nonce::{NcTracker, NonceManager, NonceStatus};
use super::params::HeaderError;
use rand::rngs::StdRng;
use std::fmt;
use std::net::IpAddr;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// What the server knows about a user's password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    /// A stored MD5 `H(user:realm:password)`, 32 hex digits. It only serves MD5 and MD5-sess,
    /// and only for the realm it was computed for (`None`: not known, trusted as is).
    Ha1 {
        hex: String,
        realm: Option<String>,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(..)"),
            Secret::Ha1 { realm, .. } => write!(f, "Ha1 {{ realm: {realm:?}, .. }}"),
        }
    }
}

impl Secret {
    /// The inner HA1 `H(username:realm:password)` for `algorithm`.
    pub fn inner_ha1(
        &self,
        algorithm: Algorithm,
        username: &str,
        realm: &str,
    ) -> Result<String, AuthError> {
        match self {
            Secret::Password(p) => Ok(digest::ha1(algorithm, username, realm, p)),
            Secret::Ha1 { hex, realm: stored } => {
                if algorithm.base() != Algorithm::Md5 {
                    return Err(AuthError::Ha1NeedsMd5(algorithm));
                }
                if let Some(stored) = stored.as_deref().filter(|s| *s != realm) {
                    return Err(AuthError::Ha1WrongRealm {
                        stored: stored.to_string(),
                        realm: realm.to_string(),
                    });
                }
                if hex.len() != 32 || !digest::is_hex(hex) {
                    return Err(AuthError::Ha1Invalid);
                }
                Ok(hex.to_ascii_lowercase())
            }
        }
    }
}

/// Why a stored secret cannot check these credentials. The server's configuration is at
/// fault, not the client; the answer is 403 and the operator should see a log line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("a stored HA1 is an MD5 hash and cannot verify {0}")]
    Ha1NeedsMd5(Algorithm),
    #[error("the stored HA1 was computed for realm {stored:?}, not {realm:?}")]
    Ha1WrongRealm { stored: String, realm: String },
    #[error("the stored HA1 is not 32 hex digits")]
    Ha1Invalid,
}

/// The account the caller found for the credentials' username.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// The user's real name; with `userhash` the credentials only carry its hash.
    pub username: &'a str,
    pub secret: &'a Secret,
}

/// The parts of the request that the digest covers, and the realm we expect.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    pub method: &'a str,
    /// The message body, hashed only for `qop=auth-int`.
    pub body: &'a [u8],
    pub realm: &'a str,
}

/// The verdict on one set of credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    WrongPassword,
    UnknownUser,
    /// Right password, expired nonce.
    Stale,
    /// Right password, but this `nc` was already used with this nonce.
    Replayed,
    /// No `qop` although we offered one (we always offer `qop="auth"`): RFC 7616 §3.4 makes
    /// it mandatory then, and without it there is no `nc`, so the answer would replay freely
    /// for the nonce's lifetime. Refused before the password is checked (no oracle).
    QopMissing,
    /// The nonce is not one of ours (forged, from before a restart, other realm).
    InvalidNonce,
    WrongRealm,
    AlgorithmNotOffered(Algorithm),
    /// Credentials of another scheme (RFC 4475 regaut01).
    UnsupportedScheme(String),
    CannotVerify(AuthError),
    Malformed(HeaderError),
}

/// What the server does about an [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Send a fresh 401/407; `stale` tells the phone to retry without asking its user.
    Challenge {
        stale: bool,
    },
    /// 403 Forbidden.
    Forbidden,
    /// 400 Bad Request.
    BadRequest,
}

impl Outcome {
    pub fn action(&self) -> Action {
        match self {
            Outcome::Ok => Action::Accept,
            // The client proved it knows the password; a new nonce is all it needs.
            Outcome::Stale | Outcome::Replayed => Action::Challenge { stale: true },
            Outcome::InvalidNonce
            | Outcome::WrongRealm
            | Outcome::AlgorithmNotOffered(_)
            | Outcome::UnsupportedScheme(_)
            | Outcome::Malformed(HeaderError::UnknownAlgorithm(_)) => {
                Action::Challenge { stale: false }
            }
            Outcome::WrongPassword
            | Outcome::UnknownUser
            | Outcome::CannotVerify(_)
            | Outcome::QopMissing => Action::Forbidden,
            Outcome::Malformed(_) => Action::BadRequest,
        }
    }
}

/// True when the credentials' response is right for this account. Hashes the username as
/// the client sent it (never re-cased) and the digest-uri verbatim.
pub fn check_response(
    creds: &DigestCredentials,
    req: &DigestRequest<'_>,
    account: Account<'_>,
) -> Result<bool, AuthError> {
    let alg = creds.algorithm;
    let name_ok = if creds.userhash {
        let expected = digest::userhash(alg, account.username, &creds.realm);
        // In time that depends only on the lengths: a wrong `response` does not reveal how
        // many leading characters were right.
        bool::from(
            expected
                .as_bytes()
                .ct_eq(creds.username.to_ascii_lowercase().as_bytes()),
        )
    } else {
        true
    };
    let hashed_name = if creds.userhash {
        account.username
    } else {
        &creds.username
    };
    let inner = account.secret.inner_ha1(alg, hashed_name, &creds.realm)?;
    let expected = creds.expected_response(&inner, req.method, req.body);
    let response_ok = bool::from(expected.as_bytes().ct_eq(creds.response.as_bytes()));
    Ok(name_ok & response_ok)
}

/// The whole verdict, given the nonce's status from whoever issued it.
pub fn verify(
    creds: &DigestCredentials,
    req: &DigestRequest<'_>,
    account: Option<Account<'_>>,
    nonce: NonceStatus,
) -> Outcome {
    if creds.realm != req.realm {
        return Outcome::WrongRealm;
    }
    if nonce == NonceStatus::Invalid {
        return Outcome::InvalidNonce;
    }
    let right = match account {
        Some(a) => match check_response(creds, req, a) {
            Ok(right) => right,
            Err(e) => return Outcome::CannotVerify(e),
        },
        None => {
            // Same work as for a real account, so timing does not tell the two apart.
            let decoy = Secret::Password(String::new());
            let a = Account {
                username: &creds.username,
                secret: &decoy,
            };
            let _ = check_response(creds, req, a);
            return Outcome::UnknownUser;
        }
    };
    match (right, nonce) {
        (false, _) => Outcome::WrongPassword,
        (true, NonceStatus::Stale | NonceStatus::OtherRun) => Outcome::Stale,
        (true, _) => Outcome::Ok,
    }
}

/// Counters for the driver to publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierStats {
    pub ok: u64,
    pub wrong_password: u64,
    pub unknown_user: u64,
    pub stale: u64,
    pub replayed: u64,
    pub invalid_nonce: u64,
    pub other: u64,
}

/// Our side of Digest authentication: issues challenges and checks the answers.
#[derive(Debug)]
pub struct Verifier {
    nonces: NonceManager,
    /// Where the random part of each nonce comes from: seeded by the owner (the engine seeds
    /// it from its own RNG), so a seeded engine challenges the same way every run.
    rng: StdRng,
    algorithms: Vec<Algorithm>,
    nc: NcTracker,
    stats: VerifierStats,
}

impl Verifier {
    /// `algorithms` are offered in the order given (RFC 8760 §2.4: the server lists them in
    /// its order of preference, and the operator decides); duplicates are dropped and an
    /// empty list means MD5 only. Nonces draw their random part from `rng`.
    pub fn new(nonces: NonceManager, algorithms: &[Algorithm], rng: StdRng) -> Verifier {
        let mut algs: Vec<Algorithm> = Vec::new();
        for a in algorithms {
            if !algs.contains(a) {
                algs.push(*a);
            }
        }
        if algs.is_empty() {
            algs.push(Algorithm::Md5);
        }
        Verifier {
            nonces,
            rng,
            algorithms: algs,
            nc: NcTracker::new(),
            stats: VerifierStats::default(),
        }
    }

    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub fn nonces(&self) -> &NonceManager {
        &self.nonces
    }

    pub fn stats(&self) -> VerifierStats {
        self.stats
    }

    /// One challenge per offered algorithm, in the configured order, sharing one fresh
    /// nonce bound to no address. Each goes into its own `WWW-Authenticate` /
    /// `Proxy-Authenticate` header.
    pub fn challenges(&mut self, now: u64, realm: &str, stale: bool) -> Vec<DigestChallenge> {
        self.challenges_for(now, realm, stale, None)
    }

    /// The same with the nonce bound to `bind`: answers presented from any other address
    /// get [`Outcome::InvalidNonce`] (a fresh challenge), never a verdict on the password.
    pub fn challenges_for(
        &mut self,
        now: u64,
        realm: &str,
        stale: bool,
        bind: Option<IpAddr>,
    ) -> Vec<DigestChallenge> {
        let nonce = self.nonces.issue_with(&mut self.rng, now, realm, bind);
        self.algorithms
            .iter()
            .map(|&a| {
                let mut c = DigestChallenge::new(realm, &nonce, a);
                c.stale = stale;
                c
            })
            .collect()
    }

    /// Checks credentials against our (unbound) nonces, the offered algorithms and the nc
    /// history.
    pub fn verify(
        &mut self,
        now: u64,
        creds: &DigestCredentials,
        req: &DigestRequest<'_>,
        account: Option<Account<'_>>,
    ) -> Outcome {
        self.verify_from(now, creds, req, account, None)
    }

    /// The same for credentials presented from `bind`, against nonces issued to it
    /// (see [`Verifier::challenges_for`]).
    pub fn verify_from(
        &mut self,
        now: u64,
        creds: &DigestCredentials,
        req: &DigestRequest<'_>,
        account: Option<Account<'_>>,
        bind: Option<IpAddr>,
    ) -> Outcome {
        let outcome = self.verify_inner(now, creds, req, account, bind);
        let s = &mut self.stats;
        match outcome {
            Outcome::Ok => s.ok += 1,
            Outcome::WrongPassword => s.wrong_password += 1,
            Outcome::UnknownUser => s.unknown_user += 1,
            Outcome::Stale => s.stale += 1,
            Outcome::Replayed => s.replayed += 1,
            Outcome::InvalidNonce => s.invalid_nonce += 1,
            _ => s.other += 1,
        }
        outcome
    }

    fn verify_inner(
        &mut self,
        now: u64,
        creds: &DigestCredentials,
        req: &DigestRequest<'_>,
        account: Option<Account<'_>>,
        bind: Option<IpAddr>,
    ) -> Outcome {
        // The nonce does not name the algorithm, so accepting one we did not offer would
        // let a client downgrade from SHA-256 to MD5.
        if !self.algorithms.contains(&creds.algorithm) {
            return Outcome::AlgorithmNotOffered(creds.algorithm);
        }
        let status = self.nonces.check_bound(now, req.realm, bind, &creds.nonce);
        // Our challenges always offer qop; an answer without one is refused, but only once
        // the nonce is known to be ours (a foreign nonce just earns a fresh challenge).
        if creds.qop.is_none() && creds.realm == req.realm && status != NonceStatus::Invalid {
            return Outcome::QopMissing;
        }
        let outcome = verify(creds, req, account, status);
        if outcome != Outcome::Ok {
            return outcome;
        }
        if let Some(nc) = &creds.nc {
            let expires = self
                .nonces
                .expires_at_bound(req.realm, bind, &creds.nonce)
                .unwrap_or(now);
            if !self.nc.accept(now, &creds.nonce, nc.value, expires) {
                return Outcome::Replayed;
            }
        }
        Outcome::Ok
    }

    /// Parses an `Authorization`/`Proxy-Authorization` value and verifies it. `lookup`
    /// finds the account for the parsed credentials (by `username`, or by `userhash`).
    pub fn verify_header<'a>(
        &mut self,
        now: u64,
        value: &str,
        req: &DigestRequest<'_>,
        lookup: impl FnOnce(&DigestCredentials) -> Option<Account<'a>>,
    ) -> Outcome {
        match parse_credentials(value) {
            Ok(Credentials::Digest(c)) => {
                let account = lookup(&c);
                self.verify(now, &c, req, account)
            }
            Ok(Credentials::Other(v)) => Outcome::UnsupportedScheme(v.scheme),
            Err(e) => Outcome::Malformed(e),
        }
    }
}
