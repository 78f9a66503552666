//! Every refusal the switch answers with, named once: `Reject` maps each to its status,
//! its reason phrase and the headers that must go with it (Retry-After on a 503 that asks
//! the caller to come back, Allow on a 501, a Warning on the per-user limit). Call code
//! and admission return a `Reject` and `?` it; the response is built in one place
//! (`B2bua::reject_response`, `Engine::reject_response`), so a phrase cannot drift between
//! two copies of the same refusal.

use super::respond::ALLOW;
use crate::sip::{HeaderName, Headers};

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// 400: the Request-URI does not parse.
    MalformedRequestUri,
    /// 400: the From does not parse.
    MalformedFrom,
    /// 400: the Authorization / Proxy-Authorization does not parse.
    MalformedCredentials,
    /// 400: a Contact of a REGISTER does not parse.
    MalformedContact,
    /// 400: a REGISTER whose To or Request-URI cannot name an address-of-record.
    MalformedToOrRequestUri,
    /// 400: a REGISTER whose To has no user.
    NoUserInTo,
    /// 400: a REFER without exactly one Refer-To that parses (RFC 3515 §2.4.1).
    BadReferTo,
    /// 403: the credentials are wrong (or the account is locked).
    Forbidden,
    /// 403: the Request-URI names a domain we do not serve.
    DomainNotServed,
    /// 403: a call for another domain than ours (no open relay).
    RelayingDenied,
    /// 403: a Contact the operator's `contact_allow`/`contact_deny` refuses.
    ContactNotAllowed,
    /// 403: more contacts than `max_contacts` for one address-of-record.
    TooManyContacts,
    /// 404: no such user.
    NotFound,
    /// 480: the user exists but no phone of theirs is registered.
    NotRegistered,
    /// 481: no dialog or transaction of ours matches (RFC 3261 §12.2.2).
    NoSuchDialog,
    /// 482: the request came back to us (§16.3 step 4).
    LoopDetected,
    /// 483: Max-Forwards reached 0 (§16.3 step 3).
    TooManyHops,
    /// 486 with a Warning: the caller holds `max_calls_per_user` calls already.
    UserOverLimit,
    /// 487: the INVITE was cancelled (§9.2).
    RequestTerminated,
    /// 488: an SDP offer we cannot read (the media relay must understand it).
    NotAcceptableHere,
    /// 491: our own re-INVITE is pending in that dialog (glare, §14.1).
    RequestPending,
    /// 501 with Allow: a method we do not implement.
    NotImplemented,
    /// 503: the request could not be passed on (a send refused, a table full).
    Unavailable,
    /// 503 with Retry-After: `max_calls` reached, or the source holds
    /// `max_calls_per_source` calls.
    TooManyCalls,
    /// 503 with `Retry-After: 30`: we are shutting down (§21.5.4).
    ShuttingDown,
    /// 503 with Retry-After: no RTP port pair left for the media relay.
    NoMediaPorts,
}

impl Reject {
    /// Every refusal, for tests and listings.
    pub const ALL: [Reject; 26] = {
        use Reject::*;
        [
            MalformedRequestUri,
            MalformedFrom,
            MalformedCredentials,
            MalformedContact,
            MalformedToOrRequestUri,
            NoUserInTo,
            BadReferTo,
            Forbidden,
            DomainNotServed,
            RelayingDenied,
            ContactNotAllowed,
            TooManyContacts,
            NotFound,
            NotRegistered,
            NoSuchDialog,
            LoopDetected,
            TooManyHops,
            UserOverLimit,
            RequestTerminated,
            NotAcceptableHere,
            RequestPending,
            NotImplemented,
            Unavailable,
            TooManyCalls,
            ShuttingDown,
            NoMediaPorts,
        ]
    };

    pub fn status(self) -> u16 {
        use Reject::*;
        match self {
            MalformedRequestUri
            | MalformedFrom
            | MalformedCredentials
            | MalformedContact
            | MalformedToOrRequestUri
            | NoUserInTo
            | BadReferTo => 400,
            Forbidden | DomainNotServed | RelayingDenied | ContactNotAllowed | TooManyContacts => {
                403
            }
            NotFound => 404,
            NotRegistered => 480,
            NoSuchDialog => 481,
            LoopDetected => 482,
            TooManyHops => 483,
            UserOverLimit => 486,
            RequestTerminated => 487,
            NotAcceptableHere => 488,
            RequestPending => 491,
            NotImplemented => 501,
            Unavailable | TooManyCalls | ShuttingDown | NoMediaPorts => 503,
        }
    }

    pub fn phrase(self) -> &'static str {
        use Reject::*;
        match self {
            MalformedRequestUri => "Bad Request - Malformed Request-URI",
            MalformedFrom => "Bad Request - Malformed From",
            MalformedCredentials => "Bad Request - Malformed Credentials",
            MalformedContact => "Bad Request - Malformed Contact",
            MalformedToOrRequestUri => "Bad Request - Malformed To or Request-URI",
            NoUserInTo => "Bad Request - No User in To",
            BadReferTo => "Bad Request - Missing or Malformed Refer-To",
            Forbidden => "Forbidden",
            DomainNotServed => "Forbidden - Domain Not Served",
            RelayingDenied => "Forbidden - Relaying Denied",
            ContactNotAllowed => "Forbidden - Contact Not Allowed",
            TooManyContacts => "Forbidden - Too Many Contacts",
            NotFound => "Not Found",
            NotRegistered => "Temporarily Unavailable",
            NoSuchDialog => "Call/Transaction Does Not Exist",
            LoopDetected => "Loop Detected",
            TooManyHops => "Too Many Hops",
            UserOverLimit => "Busy Here",
            RequestTerminated => "Request Terminated",
            RequestPending => "Request Pending",
            NotAcceptableHere => "Not Acceptable Here",
            NoMediaPorts => "Service Unavailable - No Media Ports",
            NotImplemented => "Not Implemented",
            Unavailable | ShuttingDown => "Service Unavailable",
            TooManyCalls => "Service Unavailable - Too Many Calls",
        }
    }

    /// The headers this refusal carries besides the usual ones.
    pub fn add_headers(self, h: &mut Headers) {
        match self {
            Reject::TooManyCalls | Reject::NoMediaPorts => h.push(HeaderName::RetryAfter, "5"),
            Reject::ShuttingDown => h.push(HeaderName::RetryAfter, "30"),
            Reject::NotImplemented => h.push(HeaderName::Allow, ALLOW),
            Reject::UserOverLimit => h.push(
                HeaderName::Warning,
                "399 ferroswitch \"Too many calls for this user\"",
            ),
            _ => {}
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.phrase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_a_4xx_or_5xx_with_its_headers() {
        for r in Reject::ALL {
            assert!((400..600).contains(&r.status()), "{r}");
            assert!(
                r.phrase()
                    .starts_with(crate::sip::reason_phrase(r.status())),
                "{r}"
            );
        }
        let mut h = Headers::new();
        Reject::TooManyCalls.add_headers(&mut h);
        assert_eq!(h.get_str(&HeaderName::RetryAfter), Some("5"));
        let mut h = Headers::new();
        Reject::NotImplemented.add_headers(&mut h);
        assert_eq!(h.get_str(&HeaderName::Allow), Some(ALLOW));
    }
}
