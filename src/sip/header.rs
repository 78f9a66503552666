//! Header names and the raw header list of a message.
//!
//! Headers are kept as received (value bytes untouched, order kept); compact forms are mapped
//! to their full names (RFC 3261 §7.3.3) so the rest of the daemon never sees `v:` or `i:`.
//! Typed views (Via, From, CSeq …) are decoded on demand by `typed`. Never panics on input.

use bytes::Bytes;
use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header field name: the ones the daemon looks at are variants, anything else is
        /// `Other` with the spelling received.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $variant, )*
            Other(Box<str>),
        }

        impl HeaderName {
            /// Maps a received name (any case, compact or full) to a `HeaderName`.
            pub fn from_wire(name: &str) -> HeaderName {
                // Hot path: compare the first letter before the whole name (the constants
                // fold, so a miss costs one byte comparison).
                let first = name.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
                $(
                    if (first == const { $canon.as_bytes()[0].to_ascii_lowercase() }
                        && name.eq_ignore_ascii_case($canon))
                        $(|| name.eq_ignore_ascii_case($compact))?
                    {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other(name.into())
            }

            /// The canonical full name written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    Contact => "Contact", "m";
    MaxForwards => "Max-Forwards";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Route => "Route";
    RecordRoute => "Record-Route";
    ContentType => "Content-Type", "c";
    ContentLength => "Content-Length", "l";
    ContentEncoding => "Content-Encoding", "e";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    Reason => "Reason";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Supported => "Supported", "k";
    Unsupported => "Unsupported";
    Allow => "Allow";
    Accept => "Accept";
    UserAgent => "User-Agent";
    Server => "Server";
    Date => "Date";
    Subject => "Subject", "s";
    Event => "Event", "o";
    AllowEvents => "Allow-Events", "u";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    SessionExpires => "Session-Expires", "x";
    MinSe => "Min-SE";
    RetryAfter => "Retry-After";
    Warning => "Warning";
    RemotePartyId => "Remote-Party-ID";
    PAssertedIdentity => "P-Asserted-Identity";
    AcceptContact => "Accept-Contact", "a";
    RejectContact => "Reject-Contact", "j";
    RequestDisposition => "Request-Disposition", "d";
    Identity => "Identity", "y";
    IdentityInfo => "Identity-Info", "n";
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header field line (after unfolding). `value` holds the bytes after the colon with
/// surrounding whitespace removed; it may contain non-UTF-8 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: Bytes,
}

impl Header {
    pub fn new(name: HeaderName, value: impl Into<Bytes>) -> Header {
        Header {
            name,
            value: value.into(),
        }
    }

    /// The value as UTF-8 text, or `None` when it holds other octets.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    /// True when the line may go on the wire as it is: see [`is_wire_safe`].
    pub fn is_wire_safe(&self) -> bool {
        is_wire_safe(&self.value)
    }
}

/// True when `b` holds no control octet (0x00-0x1F other than HTAB, and 0x7F). What a peer
/// sent may hold NUL, ESC or a bare CR inside a line (only LF ends one here); copied back,
/// a bare CR starts a new header for any parser that takes CR as a line end (header
/// injection), so no such value goes out. Written without an early exit so that it
/// vectorises: it runs over every header value we serialise.
pub fn is_wire_safe(b: &[u8]) -> bool {
    !b.iter().fold(false, |bad, &c| bad | is_ctl(c))
}

/// A control octet: 0x00-0x1F other than HTAB, and DEL (RFC 3261 §25.1 allows neither in a
/// header value).
#[inline]
pub fn is_ctl(c: u8) -> bool {
    (c < 0x20 && c != b'\t') | (c == 0x7f)
}

/// The ordered header list of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub(in crate::sip) Vec<Header>);

impl Extend<Header> for Headers {
    fn extend<I: IntoIterator<Item = Header>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::with_capacity(16))
    }

    /// Appends one header line as it is.
    pub fn push_header(&mut self, h: Header) {
        self.0.push(h);
    }

    /// The first line named `name`, to change in place.
    pub fn first_mut(&mut self, name: &HeaderName) -> Option<&mut Header> {
        self.0.iter_mut().find(|h| &h.name == name)
    }

    /// Keeps only the lines `keep` approves, and gives back the room the others took.
    pub fn retain(&mut self, keep: impl FnMut(&Header) -> bool) {
        self.0.retain(keep);
        self.0.shrink_to_fit();
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// First header line with this name.
    pub fn get(&self, name: &HeaderName) -> Option<&Header> {
        self.0.iter().find(|h| &h.name == name)
    }

    /// First value with this name as text.
    pub fn get_str(&self, name: &HeaderName) -> Option<&str> {
        self.get(name).and_then(Header::value_str)
    }

    /// Every header line with this name, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Header> + 'a {
        self.0.iter().filter(move |h| &h.name == name)
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.push(Header::new(name, value));
    }

    /// Inserts before every other header (used for a new top Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.insert(0, Header::new(name, value));
    }

    /// Replaces all lines of `name` by one line with `value`, at the position of the first.
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(pos) => {
                self.0[pos].value = value;
                let mut i = 0;
                self.0.retain(|h| {
                    let keep = i <= pos || h.name != name;
                    i += 1;
                    keep
                });
            }
            None => self.0.push(Header { name, value }),
        }
    }

    /// Removes every line with this name; returns how many were removed.
    pub fn remove(&mut self, name: &HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| &h.name != name);
        before - self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive_names() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("I"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire("cALL-iD"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire("m"), HeaderName::Contact);
        assert_eq!(HeaderName::from_wire("l").as_str(), "Content-Length");
        // RFC 4475 esc02: an escaped name is not the header it spells.
        assert_eq!(
            HeaderName::from_wire("C%6Fntact"),
            HeaderName::Other("C%6Fntact".into())
        );
    }

    #[test]
    fn control_octets_are_not_wire_safe() {
        assert!(is_wire_safe(b"SIP/2.0/UDP h;branch=z9hG4bK1\tx \xc3\xa9"));
        for bad in [
            &b"a\rTo: x"[..],
            b"a\x00b",
            b"\x1b[31m",
            b"a\x08",
            b"\x7f",
            b"a\nb",
        ] {
            assert!(!is_wire_safe(bad), "{bad:?}");
        }
        assert!(Header::new(HeaderName::CallId, "x").is_wire_safe());
    }

    #[test]
    fn set_replaces_all_lines_in_place() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "a");
        h.push(HeaderName::Expires, "1");
        h.push(HeaderName::To, "b");
        h.push(HeaderName::Expires, "2");
        h.set(HeaderName::Expires, "3");
        let names: Vec<_> = h.iter().map(|x| x.name.as_str().to_string()).collect();
        assert_eq!(names, ["Via", "Expires", "To"]);
        assert_eq!(h.get_str(&HeaderName::Expires), Some("3"));
        assert_eq!(h.remove(&HeaderName::Via), 1);
    }
}
