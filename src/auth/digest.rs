//! The digest arithmetic of RFC 2617, RFC 7616 and RFC 8760: HA1, HA2, the response value,
//! `userhash`, and a constant-time comparison.
//!
//! Pure functions over strings. Every input that the client hashed (username, realm, nonce,
//! digest-uri, nc, cnonce, qop) must be passed exactly as the client sent it: re-rendering or
//! re-casing any of them breaks real phones (the seed's digest-uri carries `;transport=UDP`).
//! Never parses headers, never reads a clock, never looks up users.

use sha2::{Digest, Sha256, Sha512_256};
use std::fmt;

/// A digest algorithm (RFC 7616 §6.1 registry). The `-sess` variants hash the HA1 once more
/// with the nonce and cnonce (RFC 7616 §3.4.2).
///
/// `SHA-512-256` is FIPS 180-4 SHA-512/256 (its own initial values), as RFC 7616 defines it.
/// The worked example printed in RFC 7616 §3.9.2 was computed with SHA-512 truncated to 256
/// bits instead, so that example does not verify here; see `tests/auth_vectors.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// Every algorithm we can verify, strongest first.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Sha512_256Sess,
        Algorithm::Sha512_256,
        Algorithm::Sha256Sess,
        Algorithm::Sha256,
        Algorithm::Md5Sess,
        Algorithm::Md5,
    ];

    /// Parses an `algorithm=` token, case-insensitively (RFC 7616 §3.3: tokens are
    /// case-insensitive). `None` for algorithms we do not implement.
    pub fn parse(token: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// The canonical token, as we write it in challenges.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// The hash function underneath, without the session variant.
    pub fn base(self) -> Algorithm {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => Algorithm::Sha512_256,
        }
    }

    /// Length of a hex digest (the `response` value) for this algorithm.
    pub fn hex_len(self) -> usize {
        match self.base() {
            Algorithm::Md5 => 32,
            _ => 64,
        }
    }

    /// Rank for "strongest first" ordering of challenges; higher is stronger.
    pub fn strength(self) -> u8 {
        let rank = Algorithm::ALL.iter().position(|&a| a == self);
        // ALL lists every variant, so the position always exists.
        (Algorithm::ALL.len() - rank.unwrap_or(Algorithm::ALL.len())) as u8
    }

    /// Lower-case hex digest of `data` with this algorithm's hash function.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self.base() {
            Algorithm::Md5 => hex(&md5::compute(data).0),
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
            _ => hex(&Sha512_256::digest(data)),
        }
    }

    /// Hash of several pieces joined by `:` without building the joined string first.
    fn hash_joined(self, parts: &[&[u8]]) -> String {
        let mut joined = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                joined.push(b':');
            }
            joined.extend_from_slice(p);
        }
        self.hash_hex(&joined)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// Authentication only; what every phone uses.
    Auth,
    /// Authentication with integrity protection of the message body.
    AuthInt,
}

impl Qop {
    /// Case-insensitive, like every quoted literal in the RFC's ABNF.
    pub fn parse(token: &str) -> Option<Qop> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `H(username:realm:password)`: the HA1 of the non-session algorithms.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm
        .base()
        .hash_joined(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// The `-sess` HA1: `H(H(username:realm:password):nonce:cnonce)`, computed from the inner
/// hash so that a stored HA1 also serves the session variant.
pub fn session_ha1(algorithm: Algorithm, inner_ha1: &str, nonce: &str, cnonce: &str) -> String {
    algorithm
        .base()
        .hash_joined(&[inner_ha1.as_bytes(), nonce.as_bytes(), cnonce.as_bytes()])
}

/// HA2: `H(method:uri)`, or `H(method:uri:H(body))` for `qop=auth-int`.
pub fn ha2(algorithm: Algorithm, qop: Option<Qop>, method: &str, uri: &str, body: &[u8]) -> String {
    let alg = algorithm.base();
    match qop {
        Some(Qop::AuthInt) => {
            let body_hash = alg.hash_hex(body);
            alg.hash_joined(&[method.as_bytes(), uri.as_bytes(), body_hash.as_bytes()])
        }
        _ => alg.hash_joined(&[method.as_bytes(), uri.as_bytes()]),
    }
}

/// The `qop`-dependent inputs of the response, as the client sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopInputs<'a> {
    pub nc: &'a str,
    pub cnonce: &'a str,
    pub qop: &'a str,
}

/// The response value: `H(HA1:nonce:nc:cnonce:qop:HA2)`, or `H(HA1:nonce:HA2)` when the
/// client used no qop (RFC 2069 compatibility, RFC 2617 §3.2.2.1).
pub fn response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<QopInputs<'_>>,
    ha2: &str,
) -> String {
    let alg = algorithm.base();
    match qop {
        Some(q) => alg.hash_joined(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            q.nc.as_bytes(),
            q.cnonce.as_bytes(),
            q.qop.as_bytes(),
            ha2.as_bytes(),
        ]),
        None => alg.hash_joined(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// RFC 7616 §3.4.4 `userhash`: `H(username:realm)`.
pub fn userhash(algorithm: Algorithm, username: &str, realm: &str) -> String {
    algorithm
        .base()
        .hash_joined(&[username.as_bytes(), realm.as_bytes()])
}

/// The MD5 HA1 an operator stores instead of a plaintext password (`ha1 = "..."` in a users
/// file, printed by `ferroswitch hash-password USER REALM`).
pub fn hash_password(username: &str, realm: &str, password: &str) -> String {
    ha1(Algorithm::Md5, username, realm, password)
}

/// True for a non-empty string of ASCII hex digits.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        let a1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(a1, "939e7578ed9e3c518a452acee763bce9");
        let a2 = ha2(
            Algorithm::Md5,
            Some(Qop::Auth),
            "GET",
            "/dir/index.html",
            b"",
        );
        let q = QopInputs {
            nc: "00000001",
            cnonce: "0a4f113b",
            qop: "auth",
        };
        let r = response(
            Algorithm::Md5,
            &a1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(q),
            &a2,
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn algorithm_tokens_round_trip_and_order() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
        }
        assert_eq!(Algorithm::parse("md5-SESS"), Some(Algorithm::Md5Sess));
        assert_eq!(Algorithm::parse("SHA-1"), None);
        assert!(Algorithm::Sha256.strength() > Algorithm::Md5Sess.strength());
        assert!(Algorithm::Md5Sess.strength() > Algorithm::Md5.strength());
        assert_eq!(Algorithm::Sha256Sess.base(), Algorithm::Sha256);
    }

    #[test]
    fn hex_and_hash_password() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert!(is_hex("00AbFf") && !is_hex("") && !is_hex("0g"));
        // The seed's alice, password 1234 (digest_vectors.tsv, freeswitch-alice-register).
        assert_eq!(
            hash_password("alice", "192.168.4.4", "1234"),
            "52568ce6a3d2fe06f08f75dad86a5e67"
        );
    }
}
