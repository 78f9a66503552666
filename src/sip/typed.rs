//! Typed views of the headers the layers need, decoded on demand from the raw values.
//!
//! Every decoder here is total: bad input gives `None`/`Err`, never a panic. Multi-valued
//! headers (several Vias or Contacts on one line) are split on commas outside quotes and
//! angle brackets.

use super::header::{HeaderName, Headers};
use super::method::Method;
use super::name_addr::split_list;
use super::parse::is_token_char;
use std::fmt;

/// The RFC 3261 §8.1.1.7 magic cookie that marks an RFC 3261 branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Splits `s` on `sep` outside quoted strings (always yields at least one piece).
pub(crate) fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    // `sep` is ASCII, so every range starts and ends on a char boundary.
    unquoted_ranges(s.as_bytes(), sep, false).map(move |r| &s[r])
}

/// The one quote-aware scanner of the daemon (`split_unquoted`, `name_addr::split_list`, the
/// Via stamping in `transport::via`): the ranges of `b` between the `sep` octets that lie
/// outside quoted strings (a `\` escapes the next octet inside one) and, with `angles`,
/// outside `<...>`. Always yields at least one range.
pub(crate) fn unquoted_ranges(b: &[u8], sep: u8, angles: bool) -> UnquotedRanges<'_> {
    let plain = if angles {
        memchr::memchr2(b'"', b'<', b).is_none()
    } else {
        memchr::memchr(b'"', b).is_none()
    };
    UnquotedRanges {
        b,
        plain,
        angles,
        start: 0,
        i: 0,
        in_quote: false,
        in_angle: false,
        escaped: false,
        done: false,
        sep,
    }
}

/// The iterator of [`unquoted_ranges`]. Text without a `"` (and, with `angles`, without a
/// `<`), which is nearly every Via, From, To and Contact, is split with `memchr`; only the
/// rest walks octet by octet.
pub(crate) struct UnquotedRanges<'a> {
    b: &'a [u8],
    plain: bool,
    angles: bool,
    start: usize,
    i: usize,
    in_quote: bool,
    in_angle: bool,
    escaped: bool,
    done: bool,
    sep: u8,
}

impl Iterator for UnquotedRanges<'_> {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<std::ops::Range<usize>> {
        if self.done {
            return None;
        }
        let b = self.b;
        if self.plain {
            return match memchr::memchr(self.sep, &b[self.start..]) {
                Some(k) => {
                    let piece = self.start..self.start + k;
                    self.start += k + 1;
                    Some(piece)
                }
                None => {
                    self.done = true;
                    Some(self.start..b.len())
                }
            };
        }
        while self.i < b.len() {
            let c = b[self.i];
            self.i += 1;
            if self.escaped {
                self.escaped = false;
            } else if self.in_quote && c == b'\\' {
                self.escaped = true;
            } else if c == b'"' {
                self.in_quote = !self.in_quote;
            } else if self.angles && !self.in_quote && (c == b'<' || c == b'>') {
                self.in_angle = c == b'<';
            } else if c == self.sep && !self.in_quote && !self.in_angle {
                let piece = self.start..self.i - 1;
                self.start = self.i;
                return Some(piece);
            }
        }
        self.done = true;
        Some(self.start..b.len())
    }
}

/// Length of the quoted string at the start of `b` (quotes included), `None` when `b` does
/// not start with one or it is unterminated.
pub fn quoted_len(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Splits a header value on commas that are outside quoted strings and `<...>`; empty
/// elements are dropped. Allocation-free.
pub fn split_values(v: &str) -> impl Iterator<Item = &str> {
    split_list(v.as_bytes()).filter_map(move |piece| {
        // `piece` is a sub-slice of `v` cut at ASCII commas and LWS, so its bounds are char
        // boundaries; recover them from the addresses.
        let off = piece.as_ptr() as usize - v.as_ptr() as usize;
        let s = v.get(off..off + piece.len())?;
        (!s.is_empty()).then_some(s)
    })
}

/// `;name=value` parameters, names compared case-insensitively, values kept verbatim
/// (quotes included, so they are written back unchanged).
///
/// Stored as one string in the form it is written back (`;a=b;c`) and searched on each
/// lookup: a Via, From or Contact is parsed several times per message, and one allocation
/// per parameter list instead of two per parameter is most of what that costs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    text: String,
}

impl Params {
    /// Parses `;a=b;c` (leading `;` optional), leniently: empty pieces are skipped. Quoted
    /// values may contain `;`.
    pub fn parse(s: &str) -> Params {
        let mut out = Params::default();
        for p in split_unquoted(s, b';') {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            match p.split_once('=') {
                Some((k, v)) => out.push(k.trim(), Some(v.trim())),
                None => out.push(p, None),
            }
        }
        out
    }

    /// Parses `;a=b;c` strictly: the text must start with `;` (after LWS), every name must
    /// be a token and every value a token, a bracketed host or a quoted string. `None` when
    /// anything is off.
    pub fn parse_strict(s: &str) -> Option<Params> {
        let mut out = Params {
            text: String::with_capacity(s.len()),
        };
        let mut pieces = split_unquoted(s, b';');
        if !pieces.next()?.trim().is_empty() {
            return None;
        }
        for p in pieces {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p.trim(), None),
            };
            if k.is_empty() || !k.bytes().all(is_token_char) {
                return None;
            }
            if let Some(v) = v {
                let ok = if v.starts_with('"') {
                    quoted_len(v.as_bytes()) == Some(v.len())
                } else {
                    !v.is_empty() && v.bytes().all(|c| is_token_char(c) || b"[]:".contains(&c))
                };
                if !ok {
                    return None;
                }
            }
            out.push(k, v);
        }
        Some(out)
    }

    /// Parameters from `(name, value)` pairs, in order.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, Option<V>)>,
    ) -> Params {
        let mut out = Params::default();
        for (k, v) in pairs {
            out.push(k.as_ref(), v.as_ref().map(|v| v.as_ref()));
        }
        out
    }

    fn push(&mut self, k: &str, v: Option<&str>) {
        self.text.push(';');
        self.text.push_str(k);
        if let Some(v) = v {
            self.text.push('=');
            self.text.push_str(v);
        }
    }

    /// Every `(name, value)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        split_unquoted(&self.text, b';')
            .skip(1)
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            })
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// `None` when absent, `Some(None)` for a parameter without a value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value with surrounding quotes removed.
    pub fn get_unquoted(&self, name: &str) -> Option<&str> {
        self.get(name).flatten().map(unquote)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (or adds, at the end) a parameter; the name keeps its first spelling.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        let mut out = Params {
            text: String::with_capacity(self.text.len() + name.len() + 16),
        };
        let mut found = false;
        for (k, v) in self.iter() {
            if !found && k.eq_ignore_ascii_case(name) {
                found = true;
                out.push(k, value.as_deref());
            } else {
                out.push(k, v);
            }
        }
        if !found {
            out.push(name, value.as_deref());
        }
        *self = out;
    }

    pub fn remove(&mut self, name: &str) {
        if !self.contains(name) {
            return;
        }
        let mut out = Params::default();
        for (k, v) in self.iter().filter(|(k, _)| !k.eq_ignore_ascii_case(name)) {
            out.push(k, v);
        }
        *self = out;
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Trims whitespace and removes one level of surrounding double quotes; text that is not
/// quoted comes back trimmed. Backslash escapes inside the quotes (`\"`, `\\`) are kept as
/// written: the result borrows from `s`, so it cannot resolve them. Where the escaped text
/// matters (display names), `name_addr::unquote_bytes` resolves them.
pub fn unquote(s: &str) -> &str {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// One Via value: `SIP/2.0/UDP host:port;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as received (`UDP`, `TCP`, `SCTP`, unknown ones too), upper-cased.
    pub transport: String,
    /// Host as written, IPv6 references keep their brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// Parses one Via value; `None` when any part is malformed (RFC 4475 badinv01). LWS is
    /// allowed around the slashes and before `;` (RFC 4475 wsinv), transports are any token.
    pub fn parse(v: &str) -> Option<Via> {
        let v = v.trim();
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport
        let (name, rest) = v.split_once('/')?;
        let (version, rest) = rest.split_once('/')?;
        if !name.trim_end().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return None;
        }
        let rest = rest.trim_start();
        let t_end = rest.find([' ', '\t'])?;
        let transport = &rest[..t_end];
        if !transport.bytes().all(is_token_char) {
            return None;
        }
        let rest = rest[t_end..].trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim_end(), Params::parse_strict(&rest[i..])?),
            None => (rest, Params::default()),
        };
        let (host, port) = split_host_port(sent_by)?;
        if !valid_host(host) {
            return None;
        }
        Some(Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }

    /// `None` when absent, `Some(None)` for a bare `;rport`, `Some(Some(p))` when filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// True when the branch carries the RFC 3261 magic cookie and something after it.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// `host[:port]` as written in the Via.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SIP/2.0/{} {}{}",
            self.transport,
            self.sent_by(),
            self.params
        )
    }
}

/// A hostname, IPv4 address or bracketed IPv6 reference (RFC 5118 §4.10's `:::` tolerated).
pub fn valid_host(h: &str) -> bool {
    match h.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        Some(v6) => {
            v6.contains(':')
                && v6
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        }
        None => {
            !h.is_empty()
                && h.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        }
    }
}

/// Splits `host[:port]`, keeping IPv6 brackets: `[::1]:5060` → (`[::1]`, 5060).
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.starts_with('[') {
        let close = s.find(']')?;
        let host = &s[..=close];
        let rest = &s[close + 1..];
        if rest.is_empty() {
            return Some((host, None));
        }
        let port = rest.strip_prefix(':')?.trim().parse().ok()?;
        return Some((host, Some(port)));
    }
    match s.rsplit_once(':') {
        // More than one colon without brackets: not a host:port we understand.
        Some((h, _)) if h.contains(':') => None,
        Some((h, p)) => Some((h.trim(), Some(p.trim().parse().ok()?))),
        None => Some((s, None)),
    }
}

/// CSeq: sequence number and method (RFC 3261 §8.1.1.5; the number must fit 32 bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(v: &str) -> Option<CSeq> {
        let mut it = v.split_whitespace();
        let seq = it.next()?;
        if !seq.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let seq = seq.parse::<u32>().ok()?;
        let method = it.next()?;
        if !method.bytes().all(is_token_char) {
            return None;
        }
        let method = Method::from_token(method);
        if it.next().is_some() {
            return None;
        }
        Some(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Convenience accessors over a header list.
impl Headers {
    /// Every Via value in order, across lines and comma-separated values.
    pub fn vias(&self) -> Vec<Via> {
        self.get_all(&HeaderName::Via)
            .filter_map(|h| h.value_str())
            .flat_map(split_values)
            .filter_map(Via::parse)
            .collect()
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Option<Via> {
        let first = self.get(&HeaderName::Via)?.value_str()?;
        Via::parse(split_values(first).next()?)
    }

    pub fn call_id(&self) -> Option<&str> {
        self.get_str(&HeaderName::CallId)
    }

    pub fn cseq(&self) -> Option<CSeq> {
        CSeq::parse(self.get_str(&HeaderName::CSeq)?)
    }

    /// The `tag` parameter of From.
    pub fn from_tag(&self) -> Option<String> {
        tag_of(self.get_str(&HeaderName::From)?)
    }

    /// The `tag` parameter of To.
    pub fn to_tag(&self) -> Option<String> {
        tag_of(self.get_str(&HeaderName::To)?)
    }
}

/// The header parameters of a name-addr / addr-spec value (those after `>` or, without
/// brackets, after the first `;`).
pub fn header_params(v: &str) -> Params {
    let after = match v.rfind('>') {
        Some(i) => &v[i + 1..],
        None => match v.find(';') {
            Some(i) => &v[i..],
            None => "",
        },
    };
    Params::parse(after)
}

fn tag_of(v: &str) -> Option<String> {
    header_params(v).get("tag").flatten().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_unquoted_with_and_without_quotes() {
        fn split(s: &str) -> Vec<&str> {
            split_unquoted(s, b';').collect()
        }
        assert_eq!(split(""), [""]);
        assert_eq!(split("a;b"), ["a", "b"]);
        assert_eq!(split(";a;"), ["", "a", ""]);
        assert_eq!(split("x=\"a;b\";c"), ["x=\"a;b\"", "c"]);
        assert_eq!(split("x=\"a\\\";b\";c;d"), ["x=\"a\\\";b\"", "c", "d"]);
        assert_eq!(
            split("x=\"open;c"),
            ["x=\"open;c"],
            "an unclosed quote runs to the end"
        );
    }

    #[test]
    fn via_with_ipv6_rport_and_lws() {
        let v = Via::parse("SIP / 2.0 / udp [2001:db8::9:1]:5070 ;branch=z9hG4bKas;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "[2001:db8::9:1]");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bKas"));
        assert_eq!(v.rport(), Some(None));
        assert!(v.has_rfc3261_branch());
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas;rport"
        );
        let bare = Via::parse("SIP/2.0/UDP h;branch=z9hG4bK").unwrap();
        assert!(!bare.has_rfc3261_branch());
    }

    #[test]
    fn split_respects_quotes_and_brackets() {
        let v: Vec<_> =
            split_values(r#""a, b" <sip:x@y;p=1,2>;q=1, <sip:z@w>;+sip.instance="<urn:a,b>""#)
                .collect();
        assert_eq!(v.len(), 2);
        assert!(v[1].ends_with(r#""<urn:a,b>""#));
    }

    #[test]
    fn cseq_rejects_overlarge() {
        assert_eq!(CSeq::parse("0009 INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 INVITE").is_none());
    }

    #[test]
    fn tags_from_name_addr_and_addr_spec() {
        assert_eq!(
            tag_of("\"A\" <sip:a@b;tag=no>;tag=yes").as_deref(),
            Some("yes")
        );
        assert_eq!(tag_of("sip:a@b;tag=t1").as_deref(), Some("t1"));
        assert_eq!(tag_of("<sip:a@b>"), None);
    }
}
