//! Typed accessors on a header list, and the once-per-message extraction of the fields every
//! layer needs (top Via, From, To, Call-ID, CSeq: STYLE habit 7).
//!
//! Accessors decode on demand and report what is wrong with a typed `HeaderError` (missing,
//! repeated where one is allowed, malformed) so that `validate` can answer 400 and others can
//! simply drop. Digest headers are decoded in `auth`, not here. Never panics on input.

use super::header::{Header, HeaderName, Headers};
use super::message::{Message, Request};
use super::name_addr::{parse_u32, split_list, AddrError, Contact, NameAddr};
use super::typed::{split_values, CSeq, Via};
use super::uri::{Uri, UriError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("missing {0} header")]
    Missing(HeaderName),
    #[error("more than one {0} header")]
    Multiple(HeaderName),
    #[error("malformed {0} header: {1}")]
    Malformed(HeaderName, &'static str),
}

impl HeaderError {
    /// The header concerned.
    pub fn header(&self) -> &HeaderName {
        match self {
            HeaderError::Missing(n) | HeaderError::Multiple(n) | HeaderError::Malformed(n, _) => n,
        }
    }
}

fn addr_reason(e: AddrError) -> &'static str {
    match e {
        AddrError::Empty => "empty value",
        AddrError::UnterminatedQuote => "unterminated quoted string",
        AddrError::BadDisplayName => "display name needs quoting",
        AddrError::MissingAngle => "missing '<' after display name",
        AddrError::UnclosedAngle => "missing '>'",
        AddrError::NeedsAngle => "URI with '?' or ',' must be in '<>'",
        AddrError::BadParams => "malformed parameters",
        AddrError::NotUtf8 => "non-UTF-8 octets",
        AddrError::Uri(u) => uri_reason(u),
    }
}

fn uri_reason(e: UriError) -> &'static str {
    match e {
        UriError::Empty => "empty URI",
        UriError::Scheme => "bad URI scheme",
        UriError::User => "bad URI user part",
        UriError::Host => "bad URI host",
        UriError::Port => "bad URI port",
        UriError::Param => "bad URI parameter",
        UriError::Headers => "bad URI headers",
        UriError::Char => "illegal character in URI",
    }
}

/// The fields extracted once per message on the hot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreHeaders {
    /// The topmost Via value.
    pub via: Via,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: CSeq,
}

impl Headers {
    /// The one line of a single-valued header.
    pub fn single(&self, name: &HeaderName) -> Result<&Header, HeaderError> {
        let mut it = self.iter().filter(|h| &h.name == name);
        let first = it
            .next()
            .ok_or_else(|| HeaderError::Missing(name.clone()))?;
        match it.next() {
            Some(_) => Err(HeaderError::Multiple(name.clone())),
            None => Ok(first),
        }
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr, HeaderError> {
        let h = self.single(&name)?;
        NameAddr::parse_shared(&h.value).map_err(|e| HeaderError::Malformed(name, addr_reason(e)))
    }

    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        self.name_addr(HeaderName::From)
    }

    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        self.name_addr(HeaderName::To)
    }

    /// Every value of a list-valued address header, across lines, in order. Empty when the
    /// header is absent; an error when any value is malformed or empty (`a,,b`).
    pub fn name_addrs(&self, name: HeaderName) -> Result<Vec<NameAddr>, HeaderError> {
        let mut out = Vec::new();
        for h in self.get_all(&name) {
            for v in split_list(&h.value) {
                let a = NameAddr::parse_shared(&h.value.slice_ref(v))
                    .map_err(|e| HeaderError::Malformed(name.clone(), addr_reason(e)))?;
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Contact values; `*` must stand alone (RFC 3261 §10.2.2).
    pub fn contacts(&self) -> Result<Vec<Contact>, HeaderError> {
        let lines: Vec<&Header> = self.get_all(&HeaderName::Contact).collect();
        if lines.iter().any(|h| h.value.as_ref() == b"*") {
            if lines.len() != 1 {
                return Err(HeaderError::Malformed(
                    HeaderName::Contact,
                    "'*' mixed with addresses",
                ));
            }
            return Ok(vec![Contact::Wildcard]);
        }
        Ok(self
            .name_addrs(HeaderName::Contact)?
            .into_iter()
            .map(Contact::Address)
            .collect())
    }

    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs(HeaderName::Route)
    }

    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs(HeaderName::RecordRoute)
    }

    pub fn remote_party_ids(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs(HeaderName::RemotePartyId)
    }

    pub fn p_asserted_identities(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs(HeaderName::PAssertedIdentity)
    }

    /// Max-Forwards; `None` when absent, malformed or beyond 2^32-1.
    pub fn max_forwards(&self) -> Option<u32> {
        parse_u32(self.get_str(&HeaderName::MaxForwards)?)
    }

    /// Expires; `None` when absent, malformed or beyond 2^32-1 (RFC 4475 scalar02 lets the
    /// registrar apply its default then).
    pub fn expires(&self) -> Option<u32> {
        parse_u32(self.get_str(&HeaderName::Expires)?)
    }

    /// The comma-separated tokens of every line of `name` (Require, Supported, Allow …).
    pub fn tokens<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .filter_map(Header::value_str)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Every Via value, failing on the first malformed one (`vias` skips them instead).
    pub fn try_vias(&self) -> Result<Vec<Via>, HeaderError> {
        let bad = || HeaderError::Malformed(HeaderName::Via, "malformed Via");
        let mut out = Vec::with_capacity(2);
        for h in self.get_all(&HeaderName::Via) {
            for v in split_list(&h.value) {
                let v = std::str::from_utf8(v).map_err(|_| bad())?;
                out.push(Via::parse(v).ok_or_else(bad)?);
            }
        }
        Ok(out)
    }

    /// Extracts top Via, From, To, Call-ID and CSeq in one pass over the headers: each must be
    /// present, well-formed, and (except Via) appear once.
    pub fn core(&self) -> Result<CoreHeaders, HeaderError> {
        let mut slots: [Option<&Header>; 5] = [None; 5];
        for h in self.iter() {
            let i = match h.name {
                HeaderName::Via => 0,
                HeaderName::From => 1,
                HeaderName::To => 2,
                HeaderName::CallId => 3,
                HeaderName::CSeq => 4,
                _ => continue,
            };
            match slots[i] {
                None => slots[i] = Some(h),
                Some(_) if i == 0 => {}
                Some(_) => return Err(HeaderError::Multiple(h.name.clone())),
            }
        }
        let get = |i: usize, name: HeaderName| slots[i].ok_or(HeaderError::Missing(name));
        let via_h = get(0, HeaderName::Via)?;
        let bad_via = || HeaderError::Malformed(HeaderName::Via, "malformed Via");
        let via = via_h
            .value_str()
            .and_then(|v| split_values(v).next())
            .and_then(Via::parse)
            .ok_or_else(bad_via)?;
        // Port 0 names no socket: a response could only fail to go there (issue 9.9).
        if via.port == Some(0) || via.rport() == Some(Some(0)) {
            return Err(HeaderError::Malformed(HeaderName::Via, "port 0"));
        }
        let addr = |i: usize, name: HeaderName| {
            NameAddr::parse_shared(&get(i, name.clone())?.value)
                .map_err(|e| HeaderError::Malformed(name, addr_reason(e)))
        };
        let from = addr(1, HeaderName::From)?;
        let to = addr(2, HeaderName::To)?;
        let call_id = get(3, HeaderName::CallId)?
            .value_str()
            .filter(|v| !v.is_empty() && v.bytes().all(|c| c > 0x20 && c < 0x7f))
            .ok_or(HeaderError::Malformed(
                HeaderName::CallId,
                "not a word[@word]",
            ))?
            .to_string();
        let cseq = get(4, HeaderName::CSeq)?
            .value_str()
            .and_then(CSeq::parse)
            .ok_or(HeaderError::Malformed(
                HeaderName::CSeq,
                "not a 32-bit number and a method",
            ))?;
        Ok(CoreHeaders {
            via,
            from,
            to,
            call_id,
            cseq,
        })
    }
}

impl Message {
    /// See `Headers::core`.
    pub fn core(&self) -> Result<CoreHeaders, HeaderError> {
        self.headers().core()
    }
}

impl Request {
    /// The Request-URI decoded (RFC 4475 unkscm: an unknown scheme parses, as `Scheme::Other`).
    pub fn request_uri(&self) -> Result<Uri, UriError> {
        Uri::parse(std::str::from_utf8(&self.uri).map_err(|_| UriError::Char)?)
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
