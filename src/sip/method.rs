//! SIP request methods. Unknown methods are kept verbatim (RFC 3261 §7.1: a method is any
//! token) so that the layer above can answer them with 501 Not Implemented. Never panics.

use std::fmt;

/// A request method. `Other` keeps any extension token exactly as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    /// An extension method, case preserved (methods are case-sensitive, RFC 3261 §7.1).
    Other(Box<str>),
}

impl Method {
    /// Parses a method token. Matching is case-sensitive as RFC 3261 requires, so `invite`
    /// and `RE%47IST%45R` are extension methods, not INVITE/REGISTER.
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }

    /// True for the methods RFC 3261 §7.1 defines plus the common extensions we know.
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Other(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_extension_methods_round_trip() {
        for m in ["INVITE", "ACK", "REGISTER", "PUBLISH"] {
            assert!(Method::from_token(m).is_known());
            assert_eq!(Method::from_token(m).as_str(), m);
        }
        let odd = "!interesting-Method0123456789_*+`.%indeed'~";
        assert_eq!(Method::from_token(odd), Method::Other(odd.into()));
        assert_eq!(Method::from_token("RE%47IST%45R").as_str(), "RE%47IST%45R");
        assert!(!Method::from_token("invite").is_known());
    }
}
