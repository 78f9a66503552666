//! `name-addr` / `addr-spec` values (RFC 3261 §20.10, §25.1): From, To, Contact, Route,
//! Record-Route, Remote-Party-ID, P-Asserted-Identity.
//!
//! The display name is kept as the octets received (it may hold non-UTF-8, RFC 4475 §3.1.1),
//! quoted or not, and decoded on request. Without `<>`, everything after the URI's first `;`
//! is a header parameter, not a URI parameter (RFC 4475 cparam01), and a URI holding `?` must
//! be bracketed (regbadct). Header parameters are strict `generic-param`s, quoted values kept
//! with their quotes (`+sip.instance="<urn:...>"`). Never panics on input.

use super::parse::is_token_char;
use super::typed::{quoted_len, Params};
use super::uri::{Uri, UriError};
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("empty value")]
    Empty,
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    #[error("display name needs quoting")]
    BadDisplayName,
    #[error("missing '<' after a quoted display name")]
    MissingAngle,
    #[error("missing '>'")]
    UnclosedAngle,
    #[error("URI with '?' or ',' outside '<>'")]
    NeedsAngle,
    #[error("malformed header parameters")]
    BadParams,
    #[error("non-UTF-8 octets outside the display name")]
    NotUtf8,
    #[error("bad URI: {0}")]
    Uri(#[from] UriError),
}

/// A display name, a URI and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written (quotes and escapes included), never empty.
    display: Option<Bytes>,
    pub uri: Uri,
    /// Header parameters (after `>`, or after the URI of an addr-spec).
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::default(),
        }
    }

    /// Sets the display name, quoting and escaping it.
    pub fn with_display_name(mut self, name: &[u8]) -> NameAddr {
        let mut q = Vec::with_capacity(name.len() + 2);
        q.push(b'"');
        for &c in name {
            if c == b'"' || c == b'\\' {
                q.push(b'\\');
            }
            q.push(c);
        }
        q.push(b'"');
        self.display = Some(Bytes::from(q));
        self
    }

    /// Parses one value (not a comma-separated list).
    pub fn parse(v: &[u8]) -> Result<NameAddr, AddrError> {
        parse_in(v, None)
    }

    /// Like `parse`. The display name is copied, not shared with `v`'s buffer: a dialog
    /// keeps its NameAddrs for the whole call, and a slice would pin the entire datagram
    /// the header came in.
    pub fn parse_shared(v: &Bytes) -> Result<NameAddr, AddrError> {
        parse_in(v, None)
    }

    /// The display name as written, e.g. `"J Rosenberg \\\""` with its quotes.
    pub fn display_raw(&self) -> Option<&[u8]> {
        self.display.as_deref()
    }

    /// The display name with quotes removed and `\x` escapes resolved, as octets.
    pub fn display_name(&self) -> Option<Cow<'_, [u8]>> {
        self.display.as_deref().map(unquote_bytes)
    }

    /// The display name as text, invalid UTF-8 replaced.
    pub fn display_name_lossy(&self) -> Option<String> {
        self.display_name()
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// The `expires` parameter; `None` when absent, malformed or beyond 2^32-1 (RFC 4475
    /// scalar02: the registrar then applies its default).
    pub fn expires(&self) -> Option<u32> {
        parse_u32(self.params.get("expires")??)
    }

    /// The `q` parameter (0.0 ..= 1.0).
    pub fn q(&self) -> Option<f32> {
        let q: f32 = self.params.get("q")??.parse().ok()?;
        (0.0..=1.0).contains(&q).then_some(q)
    }

    /// The `+sip.instance` value (RFC 5626) without its quotes, e.g. `<urn:uuid:...>`.
    pub fn instance(&self) -> Option<&str> {
        self.params.get_unquoted("+sip.instance")
    }
}

/// `1*DIGIT` as u32; `None` when empty, not digits or overlarge.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{} ", String::from_utf8_lossy(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

impl NameAddr {
    /// Writes the value to octets, keeping a non-UTF-8 display name intact.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.uri.as_str().len() + 32);
        if let Some(d) = &self.display {
            out.extend_from_slice(d);
            out.push(b' ');
        }
        out.push(b'<');
        out.extend_from_slice(self.uri.as_str().as_bytes());
        out.push(b'>');
        out.extend_from_slice(self.params.to_string().as_bytes());
        out
    }
}

/// A Contact value: `*` (only in REGISTER, RFC 3261 §10.2.2) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Wildcard,
    Address(NameAddr),
}

impl Contact {
    pub fn address(&self) -> Option<&NameAddr> {
        match self {
            Contact::Address(a) => Some(a),
            Contact::Wildcard => None,
        }
    }
}

fn is_lws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|&c| !is_lws(c)).unwrap_or(b.len());
    let e = b.iter().rposition(|&c| !is_lws(c)).map_or(s, |i| i + 1);
    &b[s..e]
}

fn parse_in(v: &[u8], src: Option<&Bytes>) -> Result<NameAddr, AddrError> {
    let v = trim(v);
    if v.is_empty() {
        return Err(AddrError::Empty);
    }
    let mut display: Option<&[u8]> = None;
    let lt = if v[0] == b'"' {
        let end = quoted_len(v).ok_or(AddrError::UnterminatedQuote)?;
        display = Some(&v[..end]);
        let rest = end + v[end..].iter().take_while(|&&c| is_lws(c)).count();
        if v.get(rest) != Some(&b'<') {
            return Err(AddrError::MissingAngle);
        }
        Some(rest)
    } else {
        // A '<' after a quote belongs to a quoted parameter value of an addr-spec.
        let limit = v.iter().position(|&c| c == b'"').unwrap_or(v.len());
        v[..limit].iter().position(|&c| c == b'<').inspect(|&lt| {
            let d = trim(&v[..lt]);
            if !d.is_empty() {
                display = Some(d);
            }
        })
    };
    // Token words only (RFC 4475 baddn); octets >= 0x80 pass, as deployed phones send UTF-8.
    if let Some(d) = display.filter(|d| d[0] != b'"') {
        if !d
            .iter()
            .all(|&c| is_token_char(c) || is_lws(c) || c >= 0x80)
        {
            return Err(AddrError::BadDisplayName);
        }
    }
    let (uri_text, after) = match lt {
        Some(lt) => {
            let gt = v[lt..]
                .iter()
                .position(|&c| c == b'>')
                .ok_or(AddrError::UnclosedAngle)?;
            (&v[lt + 1..lt + gt], &v[lt + gt + 1..])
        }
        None => {
            // addr-spec: the first ';' after the userinfo ends the URI (the user part may hold
            // ';', but only before an '@' that precedes any quoted parameter value).
            let limit = v.iter().position(|&c| c == b'"').unwrap_or(v.len());
            let from = v[..limit].iter().position(|&c| c == b'@').unwrap_or(0);
            let end = v[from..]
                .iter()
                .position(|&c| c == b';')
                .map_or(v.len(), |p| from + p);
            let uri = trim(&v[..end]);
            if uri.iter().any(|&c| c == b'?' || c == b',') {
                return Err(AddrError::NeedsAngle);
            }
            (uri, &v[end..])
        }
    };
    let uri = Uri::parse(std::str::from_utf8(uri_text).map_err(|_| AddrError::NotUtf8)?)?;
    let after = std::str::from_utf8(after).map_err(|_| AddrError::NotUtf8)?;
    let params = Params::parse_strict(after).ok_or(AddrError::BadParams)?;
    let display = display.map(|d| match src {
        Some(b) => b.slice_ref(d),
        None => Bytes::copy_from_slice(d),
    });
    Ok(NameAddr {
        display,
        uri,
        params,
    })
}

/// Removes surrounding quotes and resolves `\x` escapes; unquoted text is returned as is.
pub fn unquote_bytes(b: &[u8]) -> Cow<'_, [u8]> {
    let Some(inner) = b
        .strip_prefix(b"\"")
        .and_then(|x| x.strip_suffix(b"\""))
        .filter(|_| b.len() >= 2)
    else {
        return Cow::Borrowed(b);
    };
    if !inner.contains(&b'\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut it = inner.iter();
    while let Some(&c) = it.next() {
        if c == b'\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits a list header value (Contact, Route …) on commas outside quotes and `<>`, keeping
/// empty elements (trimmed) so that strict callers can reject `a,,b`.
pub fn split_list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    super::typed::unquoted_ranges(v, b',', true).map(move |r| trim(&v[r]))
}

#[cfg(test)]
#[path = "name_addr_tests.rs"]
mod tests;
