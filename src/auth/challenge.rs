//! Digest challenges: what goes into `WWW-Authenticate` (401) and `Proxy-Authenticate` (407).
//!
//! Renders exactly like the FreeSWITCH responses in the seed trace
//! (`Digest realm="…", nonce="…", algorithm=MD5, qop="auth"`), and parses challenges from
//! others (for tests and for a future client side). Never chooses nonces or algorithms itself:
//! `verify::Verifier` does.

use super::digest::{Algorithm, Qop};
use super::params::{self, quote, AuthValue, HeaderError};
use std::fmt;

/// One Digest challenge (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    /// RFC 7616 `domain`: space-separated URIs the challenge protects. Rarely used in SIP.
    pub domain: Option<String>,
    pub nonce: String,
    pub opaque: Option<String>,
    /// The previous request had a right answer but an expired nonce: retry without asking
    /// the user (RFC 7616 §3.3).
    pub stale: bool,
    pub algorithm: Algorithm,
    /// Offered qop values; empty means none (RFC 2069 style).
    pub qop: Vec<Qop>,
    /// RFC 7616 §3.4.4: the server accepts a hashed username.
    pub userhash: bool,
}

impl DigestChallenge {
    /// A challenge offering `qop="auth"`, as FreeSWITCH and every phone expect.
    pub fn new(realm: &str, nonce: &str, algorithm: Algorithm) -> DigestChallenge {
        DigestChallenge {
            realm: realm.to_string(),
            domain: None,
            nonce: nonce.to_string(),
            opaque: None,
            stale: false,
            algorithm,
            qop: vec![Qop::Auth],
            userhash: false,
        }
    }

    /// Reads the typed challenge out of a parsed Digest auth value. A missing `algorithm`
    /// means MD5 (RFC 7616 §3.3); unknown qop tokens are ignored as the RFC requires.
    pub fn from_auth_value(v: &AuthValue) -> Result<DigestChallenge, HeaderError> {
        if !v.is_scheme("Digest") {
            return Err(HeaderError::NotDigest(v.scheme.clone()));
        }
        reject_duplicates(v)?;
        let get = |n: &str| v.param(n).map(|p| p.value.clone());
        let realm = get("realm").ok_or(HeaderError::Missing("realm"))?;
        let nonce = get("nonce").ok_or(HeaderError::Missing("nonce"))?;
        let algorithm = match v.param("algorithm") {
            None => Algorithm::Md5,
            Some(p) => Algorithm::parse(&p.value)
                .ok_or_else(|| HeaderError::UnknownAlgorithm(p.value.clone()))?,
        };
        let qop = v
            .param("qop")
            .map(|p| {
                p.value
                    .split(',')
                    .filter_map(|t| Qop::parse(t.trim()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(DigestChallenge {
            realm,
            domain: get("domain"),
            nonce,
            opaque: get("opaque"),
            stale: flag(v, "stale", "stale")?,
            algorithm,
            qop,
            userhash: flag(v, "userhash", "userhash")?,
        })
    }
}

/// Renders the header value. The order (realm, nonce, algorithm, qop) and the `, ` separator
/// match the seed's 401 and 407 byte for byte.
impl fmt::Display for DigestChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}", quote(&self.realm))?;
        if let Some(d) = &self.domain {
            write!(f, ", domain={}", quote(d))?;
        }
        write!(f, ", nonce={}", quote(&self.nonce))?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", quote(o))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            write!(f, ", qop=\"{}\"", list.join(","))?;
        }
        if self.userhash {
            f.write_str(", userhash=true")?;
        }
        Ok(())
    }
}

/// A challenge of any scheme, as found in a `WWW-Authenticate`/`Proxy-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Digest(DigestChallenge),
    /// Another scheme, or a Digest challenge we cannot answer (unknown algorithm).
    Other(AuthValue),
}

/// Parses every challenge in one header value. A malformed Digest challenge (no realm, say)
/// is an error; one with an algorithm we do not implement is kept as `Other` so that its
/// neighbours can still be answered.
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, HeaderError> {
    params::parse_list(value)?
        .into_iter()
        .map(|v| {
            if !v.is_scheme("Digest") {
                return Ok(Challenge::Other(v));
            }
            match DigestChallenge::from_auth_value(&v) {
                Ok(c) => Ok(Challenge::Digest(c)),
                Err(HeaderError::UnknownAlgorithm(_)) => Ok(Challenge::Other(v)),
                Err(e) => Err(e),
            }
        })
        .collect()
}

/// RFC 7616 §3.3: "Each parameter MUST NOT appear more than once" in a challenge or in
/// credentials; taking the first or the last would let two parties read different values.
pub(crate) fn reject_duplicates(v: &AuthValue) -> Result<(), HeaderError> {
    for (i, p) in v.params.iter().enumerate() {
        if v.params[..i]
            .iter()
            .any(|q| q.name.eq_ignore_ascii_case(&p.name))
        {
            return Err(HeaderError::Duplicate(p.name.clone()));
        }
    }
    Ok(())
}

/// A `true`/`false` parameter (case-insensitive); absent means false.
pub(crate) fn flag(v: &AuthValue, name: &str, label: &'static str) -> Result<bool, HeaderError> {
    match v.param(name) {
        None => Ok(false),
        Some(p) if p.value.eq_ignore_ascii_case("true") => Ok(true),
        Some(p) if p.value.eq_ignore_ascii_case("false") => Ok(false),
        Some(p) => Err(HeaderError::Invalid {
            name: label,
            value: p.value.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_401: &str = r#"Digest realm="192.168.4.4", nonce="62fb812c-71d2-4a36-93d6-e0008e6a63ee", algorithm=MD5, qop="auth""#;

    #[test]
    fn seed_challenge_round_trips_byte_for_byte() {
        let list = parse_challenges(SEED_401).unwrap();
        let Challenge::Digest(c) = &list[0] else {
            panic!("not digest")
        };
        assert_eq!(c.realm, "192.168.4.4");
        assert_eq!(c.qop, vec![Qop::Auth]);
        assert_eq!(c.to_string(), SEED_401);
        let built = DigestChallenge::new(
            "192.168.4.4",
            "62fb812c-71d2-4a36-93d6-e0008e6a63ee",
            Algorithm::Md5,
        );
        assert_eq!(built.to_string(), SEED_401);
    }

    #[test]
    fn stale_opaque_and_unknown_algorithm() {
        let mut c = DigestChallenge::new("r", "n", Algorithm::Sha256);
        c.stale = true;
        c.opaque = Some("o\"q".into());
        c.qop = vec![Qop::Auth, Qop::AuthInt];
        let text = c.to_string();
        assert_eq!(
            text,
            r#"Digest realm="r", nonce="n", opaque="o\"q", stale=true, algorithm=SHA-256, qop="auth,auth-int""#
        );
        assert_eq!(parse_challenges(&text).unwrap(), vec![Challenge::Digest(c)]);
        let odd = parse_challenges(r#"Digest realm="r", nonce="n", algorithm=SHA-1"#).unwrap();
        assert!(matches!(odd[0], Challenge::Other(_)));
        assert_eq!(
            parse_challenges(r#"Digest realm="r", realm="s", nonce="n""#),
            Err(HeaderError::Duplicate("realm".into()))
        );
    }
}
