//! The syntax shared by the four authentication headers (`WWW-Authenticate`,
//! `Proxy-Authenticate`, `Authorization`, `Proxy-Authorization`): an auth-scheme followed by
//! a token68 or by comma-separated `name=value` parameters (RFC 7235 §2.1, RFC 3261 §25.1).
//!
//! Lenient where real phones are sloppy (no space after commas, unquoted `nc`/`qop`, empty
//! list elements) and total: bad input is an `Err`, never a panic. Knows nothing about Digest;
//! `challenge` and `credentials` give the parameters meaning.

use crate::sip::parse::is_token_char;
use thiserror::Error;

/// One `name=value` parameter. `quoted` records whether the value was a quoted-string, so
/// that a caller can tell `qop="auth"` (a list) from `qop=auth` (a single value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam {
    pub name: String,
    /// The value with quotes and backslash escapes removed.
    pub value: String,
    pub quoted: bool,
}

/// A challenge or credentials of any scheme: `Digest realm="x", nonce="y"`,
/// `Basic QWxhZGRpbg==`, `NoOneKnowsThisScheme opaque-data=here`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthValue {
    /// The scheme as sent; compare with [`AuthValue::is_scheme`] (schemes are case-insensitive).
    pub scheme: String,
    pub token68: Option<String>,
    pub params: Vec<AuthParam>,
}

impl AuthValue {
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first parameter with this name (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&AuthParam> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Why an authentication header could not be understood. The client is at fault for all of
/// these; the registrar answers 400 (or challenges again where the variant says so).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("empty authentication header")]
    Empty,
    #[error("unexpected {found:?} at byte {at}")]
    Unexpected { found: char, at: usize },
    #[error("parameter {0:?} has no value")]
    MissingValue(String),
    #[error("unterminated quoted string in parameter {0:?}")]
    UnterminatedQuote(String),
    #[error("several credentials in one header")]
    SeveralCredentials,
    #[error("scheme {0:?} is not Digest")]
    NotDigest(String),
    #[error("parameter {0:?} appears more than once")]
    Duplicate(String),
    #[error("required parameter {0:?} is missing")]
    Missing(&'static str),
    #[error("parameter {name} has an invalid value {value:?}")]
    Invalid { name: &'static str, value: String },
    #[error("algorithm {0:?} is not supported")]
    UnknownAlgorithm(String),
}

/// Parses a header value holding one or more challenges (`WWW-Authenticate`,
/// `Proxy-Authenticate`; RFC 7235 allows several in one value).
pub fn parse_list(value: &str) -> Result<Vec<AuthValue>, HeaderError> {
    let mut cur = Cursor {
        s: value.as_bytes(),
        src: value,
        pos: 0,
    };
    let mut out: Vec<AuthValue> = Vec::new();
    loop {
        // Empty list elements (`a, , b`) are allowed by the `#rule`.
        cur.skip(|b| is_ws(b) || b == b',');
        if cur.at_end() {
            break;
        }
        let name = cur.token();
        if name.is_empty() {
            return Err(cur.unexpected());
        }
        let after_name = cur.pos;
        cur.skip(is_ws);
        let is_param = cur.peek() == Some(b'=') && !out.is_empty();
        if is_param {
            let param = cur.param_value(name)?;
            let last = out.len() - 1;
            out[last].params.push(param);
            cur.end_of_element()?;
            continue;
        }
        // A new scheme. Its first item may be a token68 or the first parameter.
        cur.pos = after_name;
        if cur.peek().is_some_and(|b| !is_ws(b) && b != b',') {
            return Err(cur.unexpected());
        }
        let mut auth = AuthValue {
            scheme: name.to_string(),
            token68: None,
            params: Vec::new(),
        };
        cur.skip(is_ws);
        let first = cur.pos;
        let t68 = cur.take(is_token68_char);
        cur.take(|b| b == b'=');
        let pad_end = cur.pos;
        cur.skip(is_ws);
        if !t68.is_empty() && (cur.at_end() || cur.peek() == Some(b',')) {
            auth.token68 = Some(cur.src[first..pad_end].to_string());
            out.push(auth);
            cur.end_of_element()?;
            continue;
        }
        // Not a token68: rewind and read `name=value` if there is one.
        cur.pos = first;
        if !(cur.at_end() || cur.peek() == Some(b',')) {
            let pname = cur.token();
            if pname.is_empty() {
                return Err(cur.unexpected());
            }
            cur.skip(is_ws);
            if cur.peek() != Some(b'=') {
                return Err(cur.unexpected());
            }
            let param = cur.param_value(pname)?;
            auth.params.push(param);
        }
        out.push(auth);
        cur.end_of_element()?;
    }
    if out.is_empty() {
        return Err(HeaderError::Empty);
    }
    Ok(out)
}

/// Parses an `Authorization`/`Proxy-Authorization` value: exactly one credentials.
pub fn parse_one(value: &str) -> Result<AuthValue, HeaderError> {
    let mut all = parse_list(value)?;
    if all.len() > 1 {
        return Err(HeaderError::SeveralCredentials);
    }
    all.pop().ok_or(HeaderError::Empty)
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
    }

    /// Consumes bytes while `f` holds. Only ever stops on an ASCII byte or the end, so the
    /// returned slice is on UTF-8 boundaries.
    fn take(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        self.skip(f);
        &self.src[start..self.pos]
    }

    fn token(&mut self) -> &'a str {
        self.take(is_token_char)
    }

    fn unexpected(&self) -> HeaderError {
        let found = self.src[self.pos.min(self.src.len())..]
            .chars()
            .next()
            .unwrap_or('\0');
        HeaderError::Unexpected {
            found,
            at: self.pos,
        }
    }

    /// At `=` after a parameter name: reads the value (quoted-string or bare word).
    fn param_value(&mut self, name: &str) -> Result<AuthParam, HeaderError> {
        self.pos += 1; // the '='
        self.skip(is_ws);
        if self.peek() == Some(b'"') {
            self.pos += 1;
            let mut value = String::new();
            let mut run = self.pos;
            loop {
                match self.peek() {
                    None => return Err(HeaderError::UnterminatedQuote(name.to_string())),
                    Some(b'"') => {
                        value.push_str(&self.src[run..self.pos]);
                        self.pos += 1;
                        break;
                    }
                    Some(b'\\') => {
                        value.push_str(&self.src[run..self.pos]);
                        self.pos += 1;
                        // quoted-pair: the next character stands for itself.
                        let rest = &self.src[self.pos..];
                        let c = rest
                            .chars()
                            .next()
                            .ok_or_else(|| HeaderError::UnterminatedQuote(name.to_string()))?;
                        value.push(c);
                        self.pos += c.len_utf8();
                        run = self.pos;
                    }
                    Some(_) => self.pos += 1,
                }
            }
            return Ok(AuthParam {
                name: name.to_string(),
                value,
                quoted: true,
            });
        }
        let value = self.take(|b| !is_ws(b) && b != b',' && b != b'"');
        if value.is_empty() {
            return Err(HeaderError::MissingValue(name.to_string()));
        }
        Ok(AuthParam {
            name: name.to_string(),
            value: value.to_string(),
            quoted: false,
        })
    }

    /// After an element: only whitespace, then a comma or the end.
    fn end_of_element(&mut self) -> Result<(), HeaderError> {
        self.skip(is_ws);
        match self.peek() {
            None | Some(b',') => Ok(()),
            Some(_) => Err(self.unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_with_and_without_spaces() {
        let a = parse_one(r#"Digest username="alice",realm="r",nc=00000001,qop=auth"#).unwrap();
        assert!(a.is_scheme("digest"));
        assert_eq!(a.params.len(), 4);
        assert_eq!(a.param("NC").unwrap().value, "00000001");
        assert!(!a.param("qop").unwrap().quoted);
        let b = parse_one("Digest  realm = \"r\" ,\tnonce=\"n\"").unwrap();
        assert_eq!(b.param("nonce").unwrap().value, "n");
    }

    #[test]
    fn quoted_pairs_and_utf8() {
        let a = parse_one(r#"Digest realm="a \"b\" \\ c", username="Jäsøn Doe""#).unwrap();
        assert_eq!(a.param("realm").unwrap().value, r#"a "b" \ c"#);
        assert_eq!(a.param("username").unwrap().value, "Jäsøn Doe");
        assert_eq!(quote(r#"a "b" \ c"#), r#""a \"b\" \\ c""#);
    }

    #[test]
    fn several_challenges_and_token68() {
        let v = r#"Digest realm="a", nonce="1", algorithm=SHA-256, Digest realm="a", nonce="1", Basic QWxh+/Zw==, Negotiate"#;
        let list = parse_list(v).unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0].param("algorithm").unwrap().value, "SHA-256");
        assert_eq!(list[1].params.len(), 2);
        assert_eq!(list[2].token68.as_deref(), Some("QWxh+/Zw=="));
        assert!(list[3].is_scheme("negotiate") && list[3].params.is_empty());
        assert_eq!(parse_one(v), Err(HeaderError::SeveralCredentials));
    }

    #[test]
    fn unknown_scheme_rfc4475_regaut01() {
        let a = parse_one("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert_eq!(a.scheme, "NoOneKnowsThisScheme");
        assert_eq!(a.param("opaque-data").unwrap().value, "here");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "   ",
            "Digest realm=\"open",
            "Digest nonce=\"x\", realm=",
            "Digest realm=\"a\" nonce=\"b\"",
            "=x",
            "Digest \"x\"",
            "Digest realm=\"a\\",
            "Dïgest realm=\"a\"",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} parsed");
        }
        // RFC 7235: `name=` alone after a scheme is a token68, not an empty parameter.
        let t = parse_one("Digest realm=").unwrap();
        assert_eq!(t.token68.as_deref(), Some("realm="));
    }
}
