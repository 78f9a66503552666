//! Digest credentials: what a client puts in `Authorization` / `Proxy-Authorization`.
//!
//! Parses what real phones send (the seed: no spaces after commas, unquoted `nc` and `qop`,
//! `algorithm=MD5` last) into typed fields while keeping every hashed value exactly as sent,
//! and computes the response those fields call for. Never decides whether credentials are
//! acceptable: that is `verify`.

use super::challenge::{flag, reject_duplicates, DigestChallenge};
use super::digest::{self, Algorithm, Qop, QopInputs};
use super::params::{self, quote, AuthValue, HeaderError};
use std::fmt;

/// A parsed value together with the text the client sent, which is what gets hashed
/// (`nc=0000000A` and `nc=0000000a` are the same count but different digests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent<T> {
    pub value: T,
    pub text: String,
}

/// One Digest credentials (RFC 7616 §3.4, RFC 3261 §22.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// The username as sent: the user's name, or `H(username:realm)` when `userhash`.
    /// Decoded from `username*` (RFC 7616 §3.4.4, UTF-8 only) when that form was used.
    pub username: String,
    pub userhash: bool,
    pub realm: String,
    pub nonce: String,
    /// The digest-uri exactly as sent; it is hashed verbatim, never re-rendered.
    pub uri: String,
    /// Lower-case hex, of the length the algorithm produces.
    pub response: String,
    /// MD5 when the client sent no `algorithm` (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<Sent<Qop>>,
    /// `nc`: exactly 8 hex digits on the wire.
    pub nc: Option<Sent<u32>>,
}

/// Credentials of any scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Digest(DigestCredentials),
    /// Another scheme (RFC 4475 regaut01's `NoOneKnowsThisScheme`): answer with a challenge.
    Other(AuthValue),
}

/// Parses an `Authorization` or `Proxy-Authorization` header value.
pub fn parse_credentials(value: &str) -> Result<Credentials, HeaderError> {
    let v = params::parse_one(value)?;
    if v.is_scheme("Digest") {
        DigestCredentials::from_auth_value(&v).map(Credentials::Digest)
    } else {
        Ok(Credentials::Other(v))
    }
}

impl DigestCredentials {
    pub fn from_auth_value(v: &AuthValue) -> Result<DigestCredentials, HeaderError> {
        if !v.is_scheme("Digest") {
            return Err(HeaderError::NotDigest(v.scheme.clone()));
        }
        reject_duplicates(v)?;
        let get = |n: &str| v.param(n).map(|p| p.value.clone());
        let username = match (v.param("username"), v.param("username*")) {
            (Some(p), None) => p.value.clone(),
            (None, Some(p)) => decode_ext_value(&p.value).ok_or_else(|| HeaderError::Invalid {
                name: "username*",
                value: p.value.clone(),
            })?,
            (Some(_), Some(_)) => return Err(HeaderError::Duplicate("username".into())),
            (None, None) => return Err(HeaderError::Missing("username")),
        };
        let algorithm = match v.param("algorithm") {
            None => Algorithm::Md5,
            Some(p) => Algorithm::parse(&p.value)
                .ok_or_else(|| HeaderError::UnknownAlgorithm(p.value.clone()))?,
        };
        let response = get("response").ok_or(HeaderError::Missing("response"))?;
        if response.len() != algorithm.hex_len() || !digest::is_hex(&response) {
            return Err(HeaderError::Invalid {
                name: "response",
                value: response,
            });
        }
        let qop = match v.param("qop") {
            None => None,
            Some(p) => Some(Sent {
                value: Qop::parse(&p.value).ok_or_else(|| HeaderError::Invalid {
                    name: "qop",
                    value: p.value.clone(),
                })?,
                text: p.value.clone(),
            }),
        };
        let nc = match v.param("nc") {
            None => None,
            Some(p) => Some(Sent {
                value: parse_nc(&p.value).ok_or_else(|| HeaderError::Invalid {
                    name: "nc",
                    value: p.value.clone(),
                })?,
                text: p.value.clone(),
            }),
        };
        let cnonce = get("cnonce");
        // RFC 7616 §3.4: with a qop, cnonce and nc MUST be present.
        if qop.is_some() {
            if cnonce.is_none() {
                return Err(HeaderError::Missing("cnonce"));
            }
            if nc.is_none() {
                return Err(HeaderError::Missing("nc"));
            }
        }
        Ok(DigestCredentials {
            username,
            userhash: flag(v, "userhash", "userhash")?,
            realm: get("realm").ok_or(HeaderError::Missing("realm"))?,
            nonce: get("nonce").ok_or(HeaderError::Missing("nonce"))?,
            uri: get("uri").ok_or(HeaderError::Missing("uri"))?,
            response: response.to_ascii_lowercase(),
            algorithm,
            cnonce,
            opaque: get("opaque"),
            qop,
            nc,
        })
    }

    /// The response these credentials should carry, given the inner HA1
    /// (`H(username:realm:password)`, or a stored one) and the request's method and body.
    pub fn expected_response(&self, inner_ha1: &str, method: &str, body: &[u8]) -> String {
        let alg = self.algorithm;
        let cnonce = self.cnonce.as_deref().unwrap_or("");
        let ha1 = if alg.is_session() {
            digest::session_ha1(alg, inner_ha1, &self.nonce, cnonce)
        } else {
            inner_ha1.to_string()
        };
        let qop = self.qop.as_ref().map(|q| q.value);
        let ha2 = digest::ha2(alg, qop, method, &self.uri, body);
        let inputs = match (&self.qop, &self.nc) {
            (Some(q), Some(nc)) => Some(QopInputs {
                nc: &nc.text,
                cnonce,
                qop: &q.text,
            }),
            _ => None,
        };
        digest::response(alg, &ha1, &self.nonce, inputs, &ha2)
    }

    /// Client side: answers `challenge` (qop=auth when offered, else auth-int, else none).
    pub fn answer(challenge: &DigestChallenge, a: &Answer<'_>) -> DigestCredentials {
        let qop = [Qop::Auth, Qop::AuthInt]
            .into_iter()
            .find(|q| challenge.qop.contains(q));
        let alg = challenge.algorithm;
        let mut c = DigestCredentials {
            username: if challenge.userhash {
                digest::userhash(alg, a.username, &challenge.realm)
            } else {
                a.username.to_string()
            },
            userhash: challenge.userhash,
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: a.uri.to_string(),
            response: String::new(),
            algorithm: alg,
            cnonce: qop.map(|_| a.cnonce.to_string()),
            opaque: challenge.opaque.clone(),
            qop: qop.map(|q| Sent {
                value: q,
                text: q.as_str().to_string(),
            }),
            nc: qop.map(|_| Sent {
                value: a.nc,
                text: format!("{:08x}", a.nc),
            }),
        };
        let inner = digest::ha1(alg, a.username, &challenge.realm, a.password);
        c.response = c.expected_response(&inner, a.method, a.body);
        c
    }
}

/// What a client needs to answer a challenge; see [`DigestCredentials::answer`].
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
    pub cnonce: &'a str,
    pub nc: u32,
}

/// Renders in the seed's style: no spaces after commas, unquoted `nc`/`qop`/`algorithm`,
/// in the order Zoiper and X-Lite use.
impl fmt::Display for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={},realm={},nonce={},uri={},response={}",
            quote(&self.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(&self.uri),
            quote(&self.response)
        )?;
        if let Some(c) = &self.cnonce {
            write!(f, ",cnonce={}", quote(c))?;
        }
        if let Some(nc) = &self.nc {
            write!(f, ",nc={}", nc.text)?;
        }
        if let Some(q) = &self.qop {
            write!(f, ",qop={}", q.text)?;
        }
        write!(f, ",algorithm={}", self.algorithm)?;
        if let Some(o) = &self.opaque {
            write!(f, ",opaque={}", quote(o))?;
        }
        if self.userhash {
            f.write_str(",userhash=true")?;
        }
        Ok(())
    }
}

/// `nc`: exactly 8 hex digits (RFC 7616 §3.4 `nc-value = 8LHEX`; upper case tolerated).
pub fn parse_nc(s: &str) -> Option<u32> {
    if s.len() == 8 && digest::is_hex(s) {
        u32::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// RFC 8187 ext-value `UTF-8'lang'percent-encoded`; other charsets are refused.
fn decode_ext_value(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let charset = parts.next()?;
    let _lang = parts.next()?;
    let encoded = parts.next()?;
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_credentials_parse_back_equal() {
        use crate::auth::challenge::DigestChallenge;
        for (alg, qop, userhash, opaque) in [
            (Algorithm::Md5, vec![Qop::Auth], false, None),
            (Algorithm::Md5Sess, vec![], false, Some("o\\p\"q")),
            (Algorithm::Sha256, vec![Qop::AuthInt], true, None),
            (
                Algorithm::Sha512_256Sess,
                vec![Qop::Auth, Qop::AuthInt],
                false,
                Some("x"),
            ),
        ] {
            let mut ch = DigestChallenge::new("realm \"with\" quotes", "n,once", alg);
            ch.qop = qop;
            ch.userhash = userhash;
            ch.opaque = opaque.map(str::to_string);
            let a = Answer {
                username: "we\\ird \"user\"",
                password: "pw",
                method: "INVITE",
                uri: "sip:bob@example.org;transport=tcp",
                body: b"body",
                cnonce: "c,n",
                nc: 0xabc,
            };
            let c = DigestCredentials::answer(&ch, &a);
            let text = c.to_string();
            assert_eq!(
                parse_credentials(&text),
                Ok(Credentials::Digest(c)),
                "{text}"
            );
        }
    }

    #[test]
    fn nc_is_eight_hex_digits() {
        assert_eq!(parse_nc("00000001"), Some(1));
        assert_eq!(parse_nc("0000000A"), Some(10));
        assert_eq!(parse_nc("ffffffff"), Some(u32::MAX));
        assert_eq!(parse_nc("1"), None);
        assert_eq!(parse_nc("000000001"), None);
        assert_eq!(parse_nc("+0000001"), None);
    }

    #[test]
    fn username_star_is_decoded() {
        let v = r#"Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm="r", nonce="n", uri="/", response="00000000000000000000000000000000""#;
        let Credentials::Digest(c) = parse_credentials(v).unwrap() else {
            panic!("not digest")
        };
        assert_eq!(c.username, "Jäsøn Doe");
        assert!(parse_credentials(&v.replace("UTF-8", "ISO-8859-1")).is_err());
    }

    #[test]
    fn qop_requires_cnonce_and_nc() {
        let base = r#"Digest username="a",realm="r",nonce="n",uri="/",response="00000000000000000000000000000000",qop=auth"#;
        assert_eq!(parse_credentials(base), Err(HeaderError::Missing("cnonce")));
        assert_eq!(
            parse_credentials(&format!("{base},cnonce=\"c\"")),
            Err(HeaderError::Missing("nc"))
        );
        assert!(parse_credentials(&format!("{base},cnonce=\"c\",nc=00000001")).is_ok());
        assert!(matches!(
            parse_credentials(&format!("{base},cnonce=\"c\",nc=1")),
            Err(HeaderError::Invalid { name: "nc", .. })
        ));
    }
}
