//! Typed views of the headers the layers need, decoded on demand from the raw values.
//!
//! Every decoder here is total: bad input gives `None`/`Err`, never a panic. Multi-valued
//! headers (several Vias or Contacts on one line) are split on commas outside quotes and
//! angle brackets.

use super::header::{HeaderName, Headers};
use super::method::Method;
use std::fmt;

/// The RFC 3261 §8.1.1.7 magic cookie that marks an RFC 3261 branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Splits a header value on commas that are outside quoted strings and `<...>`.
pub fn split_values(v: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut depth_angle, mut in_quote, mut escaped, mut start) = (false, false, false, 0);
    for (i, c) in v.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => depth_angle = true,
            '>' if !in_quote => depth_angle = false,
            ',' if !in_quote && !depth_angle => {
                parts.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&v[start..]);
    parts.into_iter().map(str::trim).filter(|s| !s.is_empty())
}

/// `;name=value` parameters, names compared case-insensitively, values kept verbatim
/// (quotes included, so they are written back unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (leading `;` optional). Quoted values may contain `;`.
    pub fn parse(s: &str) -> Params {
        let mut out = Vec::new();
        let mut in_quote = false;
        let mut escaped = false;
        let mut start = 0;
        let mut pieces = Vec::new();
        for (i, c) in s.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if in_quote => escaped = true,
                '"' => in_quote = !in_quote,
                ';' if !in_quote => {
                    pieces.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        pieces.push(&s[start..]);
        for p in pieces {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            match p.split_once('=') {
                Some((k, v)) => out.push((k.trim().to_string(), Some(v.trim().to_string()))),
                None => out.push((p.to_string(), None)),
            }
        }
        Params(out)
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value with surrounding quotes removed.
    pub fn get_unquoted(&self, name: &str) -> Option<&str> {
        self.get(name).flatten().map(unquote)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (or adds) a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// Removes one level of surrounding double quotes and backslash escapes.
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
    pub fn parse(v: &str) -> Option<Via> {
        let v = v.trim();
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS allowed.
        let mut rest = v;
        let mut fields = Vec::with_capacity(3);
        for _ in 0..2 {
            let slash = rest.find('/')?;
            fields.push(rest[..slash].trim());
            rest = rest[slash + 1..].trim_start();
        }
        if !fields[0].eq_ignore_ascii_case("SIP") || fields[1] != "2.0" {
            return None;
        }
        let t_end = rest.find(|c: char| c.is_whitespace())?;
        let transport = rest[..t_end].to_ascii_uppercase();
        let rest = rest[t_end..].trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), Params::parse(&rest[i..])),
            None => (rest.trim(), Params::default()),
        };
        let (host, port) = split_host_port(sent_by)?;
        Some(Via {
            transport,
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
        let seq = it.next()?.parse::<u32>().ok()?;
        let method = Method::from_token(it.next()?);
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
