//! Checks a parsed request the way RFC 3261 §8.2 (UAS) and §16.3 (proxy) and RFC 4475 expect
//! before any layer acts on it, and says how to refuse it: a typed `Rejection` carrying the
//! status code, reason phrase and extra headers (Unsupported, Accept).
//!
//! Cheap by design: one pass for the core headers, the rest only looks at headers that are
//! present. It never answers by itself (the caller sends the response statelessly, and must
//! not answer an ACK), and never panics on input.

use super::access::HeaderError;
use super::builder::response_to_bad;
use super::header::{Header, HeaderName};
use super::message::{Request, Response, Version, MAX_REASON_LEN};
use super::method::Method;
use super::status::reason_phrase;
use super::uri::{Scheme, UriError};
use std::borrow::Cow;

/// Why a request is refused; `status()` maps each to the wire once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// 505 (RFC 4475 badvers).
    #[error("SIP version {0} not supported")]
    VersionNotSupported(Box<str>),
    /// 400: a mandatory header missing, repeated or undecodable (insuf, multi01, quotbal,
    /// badaspec, baddn, scalar02, badinv01, regbadct).
    #[error(transparent)]
    BadHeader(#[from] HeaderError),
    /// 400: CSeq method differs from the request method (mismatch01/02).
    #[error("CSeq method {cseq} does not match request method {method}")]
    MethodMismatch { method: Method, cseq: Method },
    /// 400: a sip/sips Request-URI that does not parse (RFC 5118 ipv6-bad).
    #[error("malformed Request-URI: {0}")]
    BadRequestUri(UriError),
    /// 400: headers are not allowed in a Request-URI (RFC 3261 §19.1.1 table; escruri).
    #[error("headers in the Request-URI")]
    RequestUriHeaders,
    /// 416 (unkscm, novelsc).
    #[error("Request-URI scheme {0} not supported")]
    UnsupportedScheme(Box<str>),
    /// 420 with `Unsupported` listing the tags (bext01).
    #[error("unsupported option tags: {0:?}")]
    BadExtension(Vec<String>),
    /// 415 with `Accept` listing what we take (invut).
    #[error("unsupported body type {0}")]
    UnsupportedMediaType(String),
    /// 483 (zeromf), from `check_max_forwards`.
    #[error("Max-Forwards exhausted")]
    TooManyHops,
    /// 400 from `validate_register`: a REGISTER the registrar cannot act on (unksm2).
    #[error("bad REGISTER: {0}")]
    BadRegister(&'static str),
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::VersionNotSupported(_) => 505,
            Rejection::UnsupportedScheme(_) => 416,
            Rejection::BadExtension(_) => 420,
            Rejection::UnsupportedMediaType(_) => 415,
            Rejection::TooManyHops => 483,
            Rejection::BadHeader(_)
            | Rejection::MethodMismatch { .. }
            | Rejection::BadRequestUri(_)
            | Rejection::RequestUriHeaders
            | Rejection::BadRegister(_) => 400,
        }
    }

    /// The reason phrase: the standard one, with the cause appended for a 400. Fixed text
    /// naming the header at fault, never a value from the request (issue 9.6: echoing the
    /// value made a 400 twice the size of the request), and at most `MAX_REASON_LEN` octets.
    pub fn reason_phrase(&self) -> Cow<'static, str> {
        if self.status() != 400 {
            return Cow::Borrowed(reason_phrase(self.status()));
        }
        let (full, short) = match self {
            Rejection::BadHeader(HeaderError::Missing(n)) => {
                (format!("missing {} header", shown(n)), String::new())
            }
            Rejection::BadHeader(HeaderError::Multiple(n)) => {
                (format!("more than one {} header", shown(n)), String::new())
            }
            Rejection::BadHeader(HeaderError::Malformed(n, why)) => (
                format!("malformed {} header: {why}", shown(n)),
                format!("malformed {} header", shown(n)),
            ),
            Rejection::MethodMismatch { .. } => (
                "CSeq method does not match the request".into(),
                String::new(),
            ),
            Rejection::BadRequestUri(e) => (
                format!("malformed Request-URI: {e}"),
                "malformed Request-URI".into(),
            ),
            Rejection::BadRegister(why) => (format!("bad REGISTER: {why}"), "bad REGISTER".into()),
            other => (other.to_string(), String::new()),
        };
        let mut phrase = format!("Bad Request - {full}");
        if phrase.len() > MAX_REASON_LEN && !short.is_empty() {
            phrase = format!("Bad Request - {short}");
        }
        if phrase.len() > MAX_REASON_LEN {
            let mut end = MAX_REASON_LEN;
            while !phrase.is_char_boundary(end) {
                end -= 1;
            }
            phrase.truncate(end);
        }
        Cow::Owned(phrase)
    }

    /// Headers the response must carry besides the copied ones.
    pub fn extra_headers(&self, policy: &Policy<'_>) -> Vec<Header> {
        match self {
            Rejection::BadExtension(tags) => {
                vec![Header::new(HeaderName::Unsupported, tags.join(", "))]
            }
            Rejection::UnsupportedMediaType(_) => vec![Header::new(
                HeaderName::Accept,
                policy.accepted_bodies.unwrap_or(&[]).join(", "),
            )],
            _ => Vec::new(),
        }
    }

    /// The stateless response (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq copied as
    /// far as they can be (`response_to_bad`), the extra headers added, and `to_tag` put on
    /// To when given.
    pub fn response_to(
        &self,
        req: &Request,
        policy: &Policy<'_>,
        to_tag: Option<&str>,
    ) -> Response {
        let mut resp = response_to_bad(req, self.status(), &self.reason_phrase());
        if let Some(tag) = to_tag {
            super::builder::set_to_tag(&mut resp, tag);
        }
        resp.headers.0.extend(self.extra_headers(policy));
        resp
    }
}

/// A header name as a reason phrase may show it: ours, never a name a peer spelt.
fn shown(n: &HeaderName) -> &str {
    match n {
        HeaderName::Other(_) => "unknown",
        known => known.as_str(),
    }
}

/// What the element supports; the checks that depend on it are skipped when left empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'a> {
    /// Option tags we implement: any other tag in Require is answered with 420.
    pub supported: &'a [&'a str],
    /// Acting as a proxy: check Proxy-Require instead of Require (RFC 3261 §16.3 step 5).
    pub proxy: bool,
    /// Body types we accept (`type/subtype`); `None` skips the 415 check.
    pub accepted_bodies: Option<&'a [&'a str]>,
}

/// Validates a request; see the module docs and the `Rejection` variants for what is checked.
/// A missing Max-Forwards is accepted (RFC 4475 inv2543: RFC 2543 senders), an overlarge one
/// is left to the caller; a Date header is not looked at (baddate: liberal and forwarded).
pub fn validate_request(req: &Request, policy: &Policy<'_>) -> Result<(), Rejection> {
    if let Version::Other(v) = &req.version {
        return Err(Rejection::VersionNotSupported(v.clone()));
    }
    let core = req.headers.core()?;
    if req.headers.count(&HeaderName::Via) > 1
        || req
            .headers
            .get(&HeaderName::Via)
            .is_some_and(|h| h.value.contains(&b','))
    {
        req.headers.try_vias()?;
    }
    if core.cseq.method != req.method {
        return Err(Rejection::MethodMismatch {
            method: req.method.clone(),
            cseq: core.cseq.method,
        });
    }
    if let Some(mf) = req.headers.get(&HeaderName::MaxForwards) {
        if mf.value.is_empty() || !mf.value.iter().all(u8::is_ascii_digit) {
            return Err(HeaderError::Malformed(HeaderName::MaxForwards, "not a number").into());
        }
    }
    match req.request_uri() {
        Ok(uri) => match uri.scheme() {
            Scheme::Sip | Scheme::Sips if uri.headers().is_some() => {
                return Err(Rejection::RequestUriHeaders)
            }
            Scheme::Sip | Scheme::Sips => {}
            other => return Err(Rejection::UnsupportedScheme(other.as_str().into())),
        },
        Err(e) => return Err(Rejection::BadRequestUri(e)),
    }
    if req.headers.get(&HeaderName::Contact).is_some() {
        req.headers.contacts()?;
    }
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let mut unknown: Vec<String> = Vec::new();
        // A UAS answers for Require (§8.2.2.3); a proxy only for Proxy-Require and leaves
        // Require to the UAS (§16.3 step 5).
        let name = if policy.proxy {
            &HeaderName::ProxyRequire
        } else {
            &HeaderName::Require
        };
        for tag in req.headers.tokens(name) {
            // The tags go back in Unsupported: only option-tags (tokens) are echoed.
            if !tag.bytes().all(super::parse::is_token_char) {
                return Err(
                    HeaderError::Malformed(name.clone(), "not a list of option tags").into(),
                );
            }
            if !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(tag))
                && !unknown.iter().any(|u| u == tag)
            {
                unknown.push(tag.to_string());
            }
        }
        // A Require line that is not UTF-8 yields no tokens: refuse it rather than ignore it.
        if req.headers.get_all(name).any(|h| h.value_str().is_none()) {
            return Err(HeaderError::Malformed(name.clone(), "not a list of option tags").into());
        }
        if !unknown.is_empty() {
            return Err(Rejection::BadExtension(unknown));
        }
    }
    if let (Some(accepted), false) = (policy.accepted_bodies, req.body.is_empty()) {
        let ct = req.headers.content_type();
        if !ct
            .as_ref()
            .is_some_and(|ct| accepted.iter().any(|a| ct.is(a)))
        {
            let shown = req
                .headers
                .get_str(&HeaderName::ContentType)
                .unwrap_or("none");
            return Err(Rejection::UnsupportedMediaType(shown.to_string()));
        }
    }
    Ok(())
}

/// 483 when Max-Forwards is 0. The caller decides when this applies (a proxy forwarding, or
/// not for an OPTIONS it answers itself, RFC 4475 zeromf).
pub fn check_max_forwards(req: &Request) -> Result<(), Rejection> {
    match req.headers.max_forwards() {
        Some(0) => Err(Rejection::TooManyHops),
        _ => Ok(()),
    }
}

/// The registrar's extra checks (RFC 3261 §10.3 steps 5-6): To must be a sip/sips
/// address-of-record (RFC 4475 unksm2), and `Contact: *` needs `Expires: 0` and no other
/// Contact.
pub fn validate_register(req: &Request) -> Result<(), Rejection> {
    let to = req.headers.to()?;
    if !to.uri.is_sip() {
        return Err(Rejection::BadRegister("To is not a sip or sips URI"));
    }
    let contacts = req.headers.contacts()?;
    if contacts.contains(&super::name_addr::Contact::Wildcard) && req.headers.expires() != Some(0) {
        return Err(Rejection::BadRegister("Contact '*' without Expires: 0"));
    }
    Ok(())
}

/// Why a received response must be dropped (RFC 4475 scalarlg: "simply discards").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseDefect {
    #[error("SIP version {0} not supported")]
    Version(Box<str>),
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// Checks what the transaction layer needs of a response: SIP/2.0 and the core headers.
pub fn validate_response(resp: &Response) -> Result<(), ResponseDefect> {
    if let Version::Other(v) = &resp.version {
        return Err(ResponseDefect::Version(v.clone()));
    }
    resp.headers.core()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;

    fn req(raw: &str) -> Request {
        match parse_datagram(raw.as_bytes()).unwrap() {
            crate::sip::Message::Request(r) => r,
            crate::sip::Message::Response(_) => panic!("not a request"),
        }
    }

    const BASE: &str = "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:c@d>\r\nCall-ID: x\r\n";

    #[test]
    fn accepts_a_plain_request_and_maps_statuses() {
        let r = req(&format!(
            "OPTIONS sip:c@d SIP/2.0\r\n{BASE}CSeq: 1 OPTIONS\r\n\r\n"
        ));
        assert_eq!(validate_request(&r, &Policy::default()), Ok(()));
        let e = Rejection::BadExtension(vec!["foo".into(), "bar".into()]);
        let resp = e.response_to(&r, &Policy::default(), Some("t1"));
        assert_eq!(resp.status, 420);
        assert_eq!(&resp.reason[..], b"Bad Extension");
        assert_eq!(
            resp.headers.get_str(&HeaderName::Unsupported),
            Some("foo, bar")
        );
        assert_eq!(resp.headers.to_tag().as_deref(), Some("t1"));
    }

    #[test]
    fn require_proxy_require_and_body_type() {
        let r = req(&format!(
            "INVITE sip:c@d SIP/2.0\r\n{BASE}CSeq: 1 INVITE\r\nRequire: 100rel, timer\r\n\
Proxy-Require: p1\r\nContent-Type: application/unknownformat\r\nContent-Length: 3\r\n\r\nabc"
        ));
        let uas = Policy {
            supported: &["timer"],
            ..Policy::default()
        };
        assert_eq!(
            validate_request(&r, &uas),
            Err(Rejection::BadExtension(vec!["100rel".into()]))
        );
        let proxy = Policy {
            supported: &[],
            proxy: true,
            accepted_bodies: Some(&["application/sdp"]),
        };
        assert_eq!(
            validate_request(&r, &proxy),
            Err(Rejection::BadExtension(vec!["p1".into()]))
        );
        let uas2 = Policy {
            supported: &["timer", "100rel"],
            accepted_bodies: Some(&["application/sdp"]),
            ..Policy::default()
        };
        let e = validate_request(&r, &uas2).unwrap_err();
        assert_eq!(e.status(), 415);
        assert_eq!(
            e.extra_headers(&uas2),
            vec![Header::new(HeaderName::Accept, "application/sdp")]
        );
    }

    #[test]
    fn reason_phrases_are_short_fixed_text() {
        let huge = "9".repeat(17_000);
        let r = req(&format!(
            "OPTIONS sip:c@d SIP/2.0\r\n{BASE}CSeq: {huge} OPTIONS\r\n\r\n"
        ));
        let e = validate_request(&r, &Policy::default()).unwrap_err();
        assert_eq!(e.reason_phrase(), "Bad Request - malformed CSeq header");
        let long_method = "X".repeat(5_000);
        let r = req(&format!(
            "OPTIONS sip:c@d SIP/2.0\r\n{BASE}CSeq: 1 {long_method}\r\n\r\n"
        ));
        let e = validate_request(&r, &Policy::default()).unwrap_err();
        assert_eq!(
            e.reason_phrase(),
            "Bad Request - CSeq method does not match the request"
        );
        let resp = e.response_to(&r, &Policy::default(), None);
        assert!(resp.to_bytes().len() < r.to_bytes().len() + 100);
        for e in [
            Rejection::BadHeader(HeaderError::Malformed(
                HeaderName::PAssertedIdentity,
                "URI with '?' or ',' must be in '<>'",
            )),
            Rejection::BadHeader(HeaderError::Missing(HeaderName::Other(
                "X".repeat(99).into(),
            ))),
            Rejection::BadRequestUri(UriError::Headers),
            Rejection::BadRegister("Contact '*' without Expires: 0"),
        ] {
            let p = e.reason_phrase();
            assert!(
                p.len() <= MAX_REASON_LEN && p.starts_with("Bad Request - "),
                "{p}"
            );
            assert!(!p.contains("XX"), "{p}");
        }
        // Require tags are echoed in Unsupported, so only tokens are taken.
        let r = req(&format!(
            "OPTIONS sip:c@d SIP/2.0\r\n{BASE}CSeq: 1 OPTIONS\r\nRequire: a b\r\n\r\n"
        ));
        let e = validate_request(&r, &Policy::default()).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn max_forwards_and_register_helpers() {
        let r = req(
            "REGISTER sip:d SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\n\
To: <sip:c@d>\r\nCall-ID: x\r\nMax-Forwards: 0\r\nCSeq: 1 REGISTER\r\nContact: *\r\nExpires: 5\r\n\r\n",
        );
        assert_eq!(validate_request(&r, &Policy::default()), Ok(()));
        assert_eq!(check_max_forwards(&r), Err(Rejection::TooManyHops));
        assert_eq!(check_max_forwards(&r).unwrap_err().status(), 483);
        assert!(matches!(
            validate_register(&r),
            Err(Rejection::BadRegister(_))
        ));
        let bad = req(&format!(
            "OPTIONS sip:c@d SIP/2.0\r\n{BASE}CSeq: 1 OPTIONS\r\nMax-Forwards: x\r\n\r\n"
        ));
        assert_eq!(
            validate_request(&bad, &Policy::default())
                .unwrap_err()
                .status(),
            400
        );
    }
}
