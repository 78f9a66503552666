//! Media types (RFC 3261 §20.15 Content-Type, §20.1 Accept) and the RFC 3326 Reason header:
//! small typed views decoded on demand from raw header values. Never panics on input.

use super::header::{HeaderName, Headers};
use super::name_addr::unquote_bytes;
use super::parse::is_token_char;
use super::typed::{split_values, Params};
use std::fmt;

/// `type/subtype;params`, e.g. `application/sdp` or `multipart/mixed;boundary=xyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub mtype: String,
    pub subtype: String,
    pub params: Params,
}

impl MediaType {
    pub fn parse(v: &str) -> Option<MediaType> {
        let (essence, params) = match v.find(';') {
            Some(i) => (&v[..i], Params::parse_strict(&v[i..])?),
            None => (v, Params::default()),
        };
        let (t, s) = essence.split_once('/')?;
        let (t, s) = (t.trim(), s.trim());
        let token = |x: &str| !x.is_empty() && x.bytes().all(is_token_char);
        if !token(t) || !token(s) {
            return None;
        }
        Some(MediaType {
            mtype: t.to_string(),
            subtype: s.to_string(),
            params,
        })
    }

    /// True when this is `essence` (`type/subtype`, compared case-insensitively).
    pub fn is(&self, essence: &str) -> bool {
        essence.split_once('/').is_some_and(|(t, s)| {
            t.eq_ignore_ascii_case(&self.mtype) && s.eq_ignore_ascii_case(&self.subtype)
        })
    }

    /// True when this range (possibly `*/*` or `type/*`, as in Accept) covers `essence`.
    pub fn covers(&self, essence: &str) -> bool {
        let Some((t, s)) = essence.split_once('/') else {
            return false;
        };
        (self.mtype == "*" || self.mtype.eq_ignore_ascii_case(t))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

/// One Reason value (RFC 3326): `Q.850;cause=16;text="Terminated"` or `SIP;cause=200`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `SIP`, `Q.850` or an extension token, as written.
    pub protocol: String,
    pub params: Params,
}

impl Reason {
    pub fn parse(v: &str) -> Option<Reason> {
        let v = v.trim();
        let (proto, params) = match v.find(';') {
            Some(i) => (v[..i].trim_end(), Params::parse_strict(&v[i..])?),
            None => (v, Params::default()),
        };
        if proto.is_empty() || !proto.bytes().all(is_token_char) {
            return None;
        }
        Some(Reason {
            protocol: proto.to_string(),
            params,
        })
    }

    /// The `cause` parameter: a SIP status code or a Q.850 cause value.
    pub fn cause(&self) -> Option<u16> {
        self.params.get("cause")??.parse().ok()
    }

    /// The `text` parameter with quotes and escapes removed.
    pub fn text(&self) -> Option<String> {
        let raw = self.params.get("text")??;
        Some(String::from_utf8_lossy(&unquote_bytes(raw.as_bytes())).into_owned())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.protocol, self.params)
    }
}

impl Headers {
    /// The Content-Type, when present and well-formed.
    pub fn content_type(&self) -> Option<MediaType> {
        MediaType::parse(self.get_str(&HeaderName::ContentType)?)
    }

    /// Every Reason value, in order; malformed ones are skipped.
    pub fn reasons(&self) -> Vec<Reason> {
        self.get_all(&HeaderName::Reason)
            .filter_map(|h| h.value_str())
            .flat_map(split_values)
            .filter_map(Reason::parse)
            .collect()
    }

    /// The first well-formed Reason value.
    pub fn reason(&self) -> Option<Reason> {
        self.get_all(&HeaderName::Reason)
            .filter_map(|h| h.value_str())
            .flat_map(split_values)
            .find_map(Reason::parse)
    }

    /// Whether the sender accepts `essence` in a response body (RFC 3261 §8.2.3: without an
    /// Accept header, only `application/sdp` is assumed; RFC 4475 sdp01).
    pub fn accepts(&self, essence: &str) -> bool {
        let mut any = false;
        for v in self
            .get_all(&HeaderName::Accept)
            .filter_map(|h| h.value_str())
            .flat_map(split_values)
        {
            any = true;
            if MediaType::parse(v).is_some_and(|m| m.covers(essence)) {
                return true;
            }
        }
        !any && essence.eq_ignore_ascii_case("application/sdp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        let m = MediaType::parse("multipart/mixed;boundary=unique-boundary-1").unwrap();
        assert!(m.is("Multipart/Mixed"));
        assert_eq!(m.params.get("boundary"), Some(Some("unique-boundary-1")));
        assert!(MediaType::parse("*/*").unwrap().covers("text/plain"));
        assert!(MediaType::parse("application/*")
            .unwrap()
            .covers("application/sdp"));
        assert!(!MediaType::parse("text/nobodyKnowsThis")
            .unwrap()
            .covers("application/sdp"));
        assert!(MediaType::parse("application").is_none());
        assert!(MediaType::parse("a b/c").is_none());
    }

    #[test]
    fn reason_rfc3326() {
        let mut h = Headers::new();
        h.push(
            HeaderName::Reason,
            r#"Q.850;cause=16;text="Normal \"call\" clearing", SIP ;cause=200 ;text="Call completed elsewhere""#,
        );
        let r = h.reason().unwrap();
        assert_eq!((r.protocol.as_str(), r.cause()), ("Q.850", Some(16)));
        assert_eq!(r.text().as_deref(), Some(r#"Normal "call" clearing"#));
        let all = h.reasons();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].cause(), Some(200));
        assert_eq!(
            all[1].to_string(),
            r#"SIP;cause=200;text="Call completed elsewhere""#
        );
    }

    #[test]
    fn accept_defaults_to_sdp() {
        let mut h = Headers::new();
        assert!(h.accepts("application/sdp") && !h.accepts("text/plain"));
        h.push(HeaderName::Accept, "text/nobodyKnowsThis");
        assert!(!h.accepts("application/sdp"));
        h.push(HeaderName::Accept, "application/sdp, message/sipfrag");
        assert!(h.accepts("application/sdp") && h.accepts("message/sipfrag"));
    }
}
