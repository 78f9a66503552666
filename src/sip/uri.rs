//! URIs as SIP carries them: `sip:`/`sips:` (RFC 3261 §19.1, IPv6 per RFC 5118), `tel:`
//! (RFC 3966) and any other scheme kept opaque, so that the layer above can answer 416.
//!
//! A `Uri` keeps its text exactly as received and records where each component lies in it:
//! writing it back gives the same octets (escapes, case and IPv6 brackets untouched), and
//! parsing costs one allocation. Escapes are decoded only on request, and only once (RFC 4475
//! esc01: `%25%34%31` is `%41`, never `A`). This module must never rewrite a URI implicitly
//! and never panics on input.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The port a `sip:` URI or a sent-by without one means, for UDP and TCP (RFC 3261 §19.1.2,
/// §18.2.2). The one definition in the daemon.
pub const DEFAULT_SIP_PORT: u16 = 5060;
/// The port a `sips:` URI without one means, and a sent-by naming TLS (§19.1.2: "the default
/// port ... is 5061 for TLS").
pub const DEFAULT_SIPS_PORT: u16 = 5061;

/// The scheme of a URI. Comparison is case-insensitive (RFC 3261 §19.1.4); `Other` keeps the
/// spelling received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(Box<str>),
}

impl Scheme {
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("empty URI")]
    Empty,
    #[error("missing or malformed scheme")]
    Scheme,
    #[error("malformed user part")]
    User,
    #[error("malformed host")]
    Host,
    #[error("malformed port")]
    Port,
    #[error("malformed URI parameter")]
    Param,
    #[error("malformed URI headers")]
    Headers,
    #[error("illegal character in URI")]
    Char,
}

/// Byte range inside `Uri::text`. u32 is plenty: messages are capped at 64 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        // Callers pass offsets into a string no longer than u32::MAX (checked in `parse`).
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    fn of<'a>(&self, s: &'a str) -> &'a str {
        s.get(self.start as usize..self.end as usize).unwrap_or("")
    }
}

/// A parsed URI; see the module docs. Equality (`==`) is textual; use `equivalent` for the
/// RFC 3261 §19.1.4 comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uri {
    text: Box<str>,
    scheme: Scheme,
    user: Option<Span>,
    password: Option<Span>,
    host: Span,
    port: Option<u16>,
    /// `;a=b;c` including the leading `;`, empty when there are none.
    params: Span,
    /// After the `?`, when present.
    headers: Option<Span>,
}

impl Uri {
    /// Parses a URI. SIP/SIPS URIs are checked against the RFC 3261 grammar (liberal only in
    /// allowing `#` in the user part, which deployed phones send); `tel` numbers and other
    /// schemes are checked for characters that cannot appear in any URI.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        if s.len() > u32::MAX as usize {
            return Err(UriError::Char);
        }
        let b = s.as_bytes();
        let colon = b.iter().position(|&c| c == b':').ok_or(UriError::Scheme)?;
        let name = &b[..colon];
        if name.is_empty()
            || !name[0].is_ascii_alphabetic()
            || !name
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(UriError::Scheme);
        }
        let scheme = match &s[..colon] {
            n if n.eq_ignore_ascii_case("sip") => Scheme::Sip,
            n if n.eq_ignore_ascii_case("sips") => Scheme::Sips,
            n if n.eq_ignore_ascii_case("tel") => Scheme::Tel,
            n => Scheme::Other(n.into()),
        };
        let mut uri = Uri {
            text: s.into(),
            scheme,
            user: None,
            password: None,
            host: Span::default(),
            port: None,
            params: Span::default(),
            headers: None,
        };
        match uri.scheme {
            Scheme::Sip | Scheme::Sips => parse_sip(&mut uri, b, colon + 1)?,
            Scheme::Tel => parse_tel(&mut uri, b, colon + 1)?,
            Scheme::Other(_) => {
                let rest = &b[colon + 1..];
                if rest.is_empty() || !rest.iter().all(|&c| is_visible(c) && !is_delim(c)) {
                    return Err(UriError::Char);
                }
            }
        }
        Ok(uri)
    }

    /// The URI exactly as received (or built).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// True for `sip:` and `sips:`, the schemes a SIP element can route on.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// Everything after `scheme:`, as written.
    pub fn opaque(&self) -> &str {
        &self.text[self.scheme.as_str().len() + 1..]
    }

    /// The user part as written (escapes kept). For `tel:` URIs, the telephone number.
    /// RFC 4475 semiuri: in `sip:user;par=u%40example.net@example.com` it is
    /// `user;par=u%40example.net`.
    pub fn user(&self) -> Option<&str> {
        self.user.map(|s| s.of(&self.text))
    }

    /// The user part with %-escapes decoded once. Octets, because `%00` or `%FF` are legal.
    pub fn decoded_user(&self) -> Option<Cow<'_, [u8]>> {
        self.user().map(percent_decode)
    }

    pub fn password(&self) -> Option<&str> {
        self.password.map(|s| s.of(&self.text))
    }

    /// The host as written: IPv6 references keep their brackets (RFC 5118). Empty for `tel:`
    /// and opaque URIs.
    pub fn host(&self) -> &str {
        self.host.of(&self.text)
    }

    /// The host as an IP address when it is one (brackets removed for IPv6).
    pub fn host_ip(&self) -> Option<IpAddr> {
        let h = self.host();
        match h.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            Some(v6) => v6.parse().ok(),
            None => h.parse().ok(),
        }
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The `;name[=value]` parameters in order, as written.
    pub fn params(&self) -> UriParams<'_> {
        UriParams {
            rest: self.params.of(&self.text),
        }
    }

    /// `Some(Some(v))` for `;name=v`, `Some(None)` for `;name`, `None` when absent. Names
    /// compare case-insensitively.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    /// The `transport` parameter value.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// The raw `?headers` part (without `?`).
    pub fn headers(&self) -> Option<&str> {
        self.headers.map(|s| s.of(&self.text))
    }

    /// The `?headers` as `(name, value)` pairs, as written.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers()
            .into_iter()
            .flat_map(|h| h.split('&'))
            .filter_map(|kv| kv.split_once('='))
    }

    /// A copy with one parameter added or replaced (e.g. `lr`, `transport=tcp`), keeping every
    /// other octet as it was.
    pub fn with_param(&self, name: &str, value: Option<&str>) -> Result<Uri, UriError> {
        let mut params = String::with_capacity(self.params.of(&self.text).len() + 16);
        for (k, v) in self.params().filter(|(k, _)| !k.eq_ignore_ascii_case(name)) {
            push_param(&mut params, k, v);
        }
        push_param(&mut params, name, value);
        let t = &self.text;
        let mut s = String::with_capacity(t.len() + params.len());
        s.push_str(&t[..self.params.start as usize]);
        s.push_str(&params);
        s.push_str(&t[self.params.end as usize..]);
        Uri::parse(&s)
    }

    /// RFC 3261 §19.1.4 equivalence: scheme, decoded userinfo (case-sensitive), host
    /// (case-insensitive), port present alike, the parameters `user`, `ttl`, `method`, `maddr`
    /// and `transport` present alike, other parameters compared only where both have them,
    /// and the same set of headers. Non-SIP URIs compare by scheme and exact text.
    pub fn equivalent(&self, other: &Uri) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        if !self.is_sip() {
            return self.opaque() == other.opaque();
        }
        if self.decoded_user() != other.decoded_user()
            || self.password().map(percent_decode) != other.password().map(percent_decode)
            || self.port != other.port
            || !hosts_equal(self.host(), other.host())
        {
            return false;
        }
        const MUST: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        for (k, v) in self.params() {
            let k = percent_decode(k);
            match find(other, &k) {
                Some(ov) if !opt_eq_ci(v.map(percent_decode).as_deref(), ov.as_deref()) => {
                    return false
                }
                None if MUST.iter().any(|m| k.eq_ignore_ascii_case(m.as_bytes())) => return false,
                _ => {}
            }
        }
        for (k, _) in other.params() {
            let k = percent_decode(k);
            if MUST.iter().any(|m| k.eq_ignore_ascii_case(m.as_bytes())) && find(self, &k).is_none()
            {
                return false;
            }
        }
        headers_equal(self, other) && headers_equal(other, self)
    }
}

/// The decoded value of the parameter whose decoded name is `name`.
fn find<'u>(u: &'u Uri, name: &[u8]) -> Option<Option<Cow<'u, [u8]>>> {
    u.params()
        .find(|(k, _)| percent_decode(k).eq_ignore_ascii_case(name))
        .map(|(_, v)| v.map(percent_decode))
}

fn opt_eq_ci(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

fn hosts_equal(a: &str, b: &str) -> bool {
    let ip = |h: &str| match h.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        Some(v6) => v6.parse::<IpAddr>().ok(),
        None => h.parse::<IpAddr>().ok(),
    };
    match (ip(a), ip(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Every header of `a` is in `b` (names case-insensitive, values exact after decoding).
fn headers_equal(a: &Uri, b: &Uri) -> bool {
    a.header_pairs().all(|(k, v)| {
        b.header_pairs().any(|(k2, v2)| {
            percent_decode(k).eq_ignore_ascii_case(&percent_decode(k2))
                && percent_decode(v) == percent_decode(v2)
        })
    })
}

fn push_param(out: &mut String, k: &str, v: Option<&str>) {
    out.push(';');
    out.push_str(k);
    if let Some(v) = v {
        out.push('=');
        out.push_str(v);
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Uri, UriError> {
        Uri::parse(s)
    }
}

impl TryFrom<&str> for Uri {
    type Error = UriError;
    fn try_from(s: &str) -> Result<Uri, UriError> {
        Uri::parse(s)
    }
}

/// Iterator over `;name[=value]` URI parameters.
#[derive(Debug, Clone)]
pub struct UriParams<'a> {
    rest: &'a str,
}

impl<'a> Iterator for UriParams<'a> {
    type Item = (&'a str, Option<&'a str>);
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.rest.strip_prefix(';')?;
        let end = r.find(';').unwrap_or(r.len());
        let (p, rest) = r.split_at(end);
        self.rest = rest;
        Some(match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        })
    }
}

/// Decodes `%HH` escapes once. A `%` not followed by two hex digits is kept literally.
pub fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn is_visible(c: u8) -> bool {
    c > 0x20 && c < 0x7f
}

/// Characters that end a URI inside a header value and never appear in one unescaped.
fn is_delim(c: u8) -> bool {
    matches!(c, b'<' | b'>' | b'"')
}

/// RFC 3261 `unreserved`.
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&c)
}

/// Checks `s[from..to]`: every octet satisfies `ok` or starts a valid `%HH` escape.
fn check_escaped(b: &[u8], from: usize, to: usize, ok: impl Fn(u8) -> bool) -> bool {
    let mut i = from;
    while i < to {
        let c = b[i];
        if c == b'%' {
            if i + 2 >= to || hex(b[i + 1]).is_none() || hex(b[i + 2]).is_none() {
                return false;
            }
            i += 3;
        } else if ok(c) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn parse_sip(uri: &mut Uri, b: &[u8], start: usize) -> Result<(), UriError> {
    let len = b.len();
    // '@' appears nowhere in a SIP URI except after the userinfo (it must be escaped in
    // parameters and headers), so the first one ends the userinfo, even when the user part
    // holds ';', '?' or ',' (RFC 4475 semiuri, intmeth).
    let mut i = start;
    if let Some(at) = b[start..].iter().position(|&c| c == b'@') {
        let at = start + at;
        let colon = b[start..at]
            .iter()
            .position(|&c| c == b':')
            .map(|p| start + p);
        let user_end = colon.unwrap_or(at);
        let user_ok = |c: u8| is_unreserved(c) || b"&=+$,;?/#".contains(&c);
        if user_end == start || !check_escaped(b, start, user_end, user_ok) {
            return Err(UriError::User);
        }
        uri.user = Some(Span::new(start, user_end));
        if let Some(c) = colon {
            let pw_ok = |c: u8| is_unreserved(c) || b"&=+$,".contains(&c);
            if !check_escaped(b, c + 1, at, pw_ok) {
                return Err(UriError::User);
            }
            uri.password = Some(Span::new(c + 1, at));
        }
        i = at + 1;
    }
    let host_start = i;
    if b.get(i) == Some(&b'[') {
        let close = b[i..]
            .iter()
            .position(|&c| c == b']')
            .ok_or(UriError::Host)?;
        let inner = &b[i + 1..i + close];
        // RFC 5118 §4.10 asks to tolerate the RFC 3261 ABNF's `:::` form, so the address is
        // checked for its alphabet, not parsed.
        if !inner.contains(&b':')
            || !inner
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return Err(UriError::Host);
        }
        i += close + 1;
    } else {
        while i < len && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'-' | b'.' | b'_')) {
            i += 1;
        }
    }
    if i == host_start {
        return Err(UriError::Host);
    }
    uri.host = Span::new(host_start, i);
    if b.get(i) == Some(&b':') {
        let p0 = i + 1;
        i = p0;
        while i < len && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[p0..i];
        if digits.is_empty() || digits.len() > 5 {
            return Err(UriError::Port);
        }
        let port = digits
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
        uri.port = Some(u16::try_from(port).map_err(|_| UriError::Port)?);
    }
    let params_start = i;
    i = parse_params(b, i)?;
    uri.params = Span::new(params_start, i);
    if b.get(i) == Some(&b'?') {
        let h0 = i + 1;
        let hnv = |c: u8| is_unreserved(c) || b"[]/?:+$".contains(&c);
        for pair in b[h0..].split(|&c| c == b'&') {
            let eq = pair
                .iter()
                .position(|&c| c == b'=')
                .ok_or(UriError::Headers)?;
            let ok_name = eq > 0 && check_escaped(pair, 0, eq, hnv);
            if !ok_name || !check_escaped(pair, eq + 1, pair.len(), hnv) {
                return Err(UriError::Headers);
            }
        }
        uri.headers = Some(Span::new(h0, len));
        i = len;
    }
    if i != len {
        return Err(UriError::Char);
    }
    Ok(())
}

/// Parses `;name[=value]` parameters from `i`; returns where they end.
fn parse_params(b: &[u8], mut i: usize) -> Result<usize, UriError> {
    let pchar = |c: u8| is_unreserved(c) || b"[]/:&+$".contains(&c);
    while b.get(i) == Some(&b';') {
        let n0 = i + 1;
        let mut j = n0;
        while j < b.len() && !matches!(b[j], b';' | b'?' | b'=') {
            j += 1;
        }
        if j == n0 || !check_escaped(b, n0, j, pchar) {
            return Err(UriError::Param);
        }
        if b.get(j) == Some(&b'=') {
            let v0 = j + 1;
            j = v0;
            while j < b.len() && !matches!(b[j], b';' | b'?') {
                j += 1;
            }
            if j == v0 || !check_escaped(b, v0, j, pchar) {
                return Err(UriError::Param);
            }
        }
        i = j;
    }
    Ok(i)
}

fn parse_tel(uri: &mut Uri, b: &[u8], start: usize) -> Result<(), UriError> {
    let end = b[start..]
        .iter()
        .position(|&c| c == b';')
        .map_or(b.len(), |p| start + p);
    let num = &b[start..end];
    if num.is_empty()
        || !num
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"+-.()*#".contains(&c))
    {
        return Err(UriError::User);
    }
    uri.user = Some(Span::new(start, end));
    uri.host = Span::new(end, end);
    let i = parse_params(b, end)?;
    if i != b.len() {
        return Err(UriError::Char);
    }
    uri.params = Span::new(end, i);
    Ok(())
}

#[cfg(test)]
#[path = "uri_tests.rs"]
mod tests;
