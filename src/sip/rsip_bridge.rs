//! Conversions between our message model and rsip 0.4's, so that code written against rsip
//! types can work with messages this module parsed (and the other way round).
//!
//! Our parser does the framing and normalisation rsip cannot (see the table in `sip/mod.rs`):
//! lines unfolded, compact names expanded, `Via`/`Contact`/`Route`/`Record-Route` lists split
//! one value per header, Content-Length applied. The result is handed to rsip only where rsip
//! represents it faithfully: a conversion that rsip would alter (an unknown method, a URI it
//! re-renders differently, non-UTF-8 octets) fails with `RsipError` instead of changing the
//! message silently. Never used on the hot path; never panics.

use super::header::{HeaderName, Headers};
use super::message::{Message, Request, Response, Version};
use super::method::Method;
use super::name_addr::split_list;
use super::status::reason_phrase;
use super::uri::Uri;
use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsipError {
    #[error("rsip has no method {0}")]
    Method(Box<str>),
    #[error("rsip has no version {0}")]
    Version(Box<str>),
    #[error("rsip cannot hold the URI {0} unchanged")]
    Uri(String),
    #[error("rsip needs UTF-8 in {0}")]
    NotUtf8(String),
    #[error("rsip rejected {0}: {1}")]
    Rejected(String, String),
}

/// Headers whose comma-separated values rsip's typed decoders only see one at a time.
fn is_list(name: &HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Via | HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute
    )
}

/// A URI as rsip's type, only when rsip writes it back to the same text (rsip drops URI
/// headers, upper-cases `transport` values and cannot hold IPv6 references).
pub fn uri_to_rsip(uri: &Uri) -> Result<rsip::Uri, RsipError> {
    let text = uri.as_str();
    match rsip::Uri::try_from(text) {
        Ok(r) if r.to_string() == text => Ok(r),
        _ => Err(RsipError::Uri(text.to_string())),
    }
}

fn method_to_rsip(m: &Method) -> Result<rsip::Method, RsipError> {
    Ok(match m {
        Method::Invite => rsip::Method::Invite,
        Method::Ack => rsip::Method::Ack,
        Method::Bye => rsip::Method::Bye,
        Method::Cancel => rsip::Method::Cancel,
        Method::Register => rsip::Method::Register,
        Method::Options => rsip::Method::Options,
        Method::Info => rsip::Method::Info,
        Method::Update => rsip::Method::Update,
        Method::Prack => rsip::Method::PRack,
        Method::Subscribe => rsip::Method::Subscribe,
        Method::Notify => rsip::Method::Notify,
        Method::Refer => rsip::Method::Refer,
        Method::Message => rsip::Method::Message,
        Method::Publish => rsip::Method::Publish,
        Method::Other(s) => return Err(RsipError::Method(s.clone())),
    })
}

fn headers_to_rsip(headers: &Headers) -> Result<rsip::Headers, RsipError> {
    let mut out = rsip::Headers::default();
    for h in headers.iter() {
        let name = h.name.as_str();
        let values: Vec<&[u8]> = if is_list(&h.name) {
            split_list(&h.value).collect()
        } else {
            vec![&h.value[..]]
        };
        for v in values {
            // rsip's own name dispatch is right for full names, which is all it gets from us.
            let tok = rsip::headers::header::Tokenizer::from((name.as_bytes(), v));
            let header: rsip::Header = tok.try_into().map_err(|e: rsip::Error| match e {
                rsip::Error::Utf8Error(_) => RsipError::NotUtf8(name.to_string()),
                e => RsipError::Rejected(name.to_string(), e.to_string()),
            })?;
            out.push(header);
        }
    }
    Ok(out)
}

fn version_to_rsip(v: &Version) -> Result<rsip::Version, RsipError> {
    match v {
        Version::Sip20 => Ok(rsip::Version::V2),
        Version::Other(s) => Err(RsipError::Version(s.clone())),
    }
}

/// Our request as rsip's.
pub fn request_to_rsip(r: &Request) -> Result<rsip::Request, RsipError> {
    let uri = std::str::from_utf8(&r.uri).map_err(|_| RsipError::NotUtf8("Request-URI".into()))?;
    let uri = Uri::parse(uri).map_err(|_| RsipError::Uri(uri.to_string()))?;
    Ok(rsip::Request {
        method: method_to_rsip(&r.method)?,
        uri: uri_to_rsip(&uri)?,
        version: version_to_rsip(&r.version)?,
        headers: headers_to_rsip(&r.headers)?,
        body: r.body.to_vec(),
    })
}

/// Our response as rsip's. rsip keeps no reason phrase for the codes it knows (it writes its
/// own, e.g. `486 BusyHere`); for other codes ours is carried if it is UTF-8.
pub fn response_to_rsip(r: &Response) -> Result<rsip::Response, RsipError> {
    let status_code = match rsip::StatusCode::from(r.status) {
        rsip::StatusCode::Other(code, _) => {
            let reason = std::str::from_utf8(&r.reason)
                .map_err(|_| RsipError::NotUtf8("reason phrase".into()))?;
            rsip::StatusCode::Other(code, reason.to_string())
        }
        known => known,
    };
    Ok(rsip::Response {
        status_code,
        version: version_to_rsip(&r.version)?,
        headers: headers_to_rsip(&r.headers)?,
        body: r.body.to_vec(),
    })
}

/// Our message as rsip's; see `request_to_rsip` and `response_to_rsip`.
pub fn to_rsip(m: &Message) -> Result<rsip::SipMessage, RsipError> {
    Ok(match m {
        Message::Request(r) => rsip::SipMessage::Request(request_to_rsip(r)?),
        Message::Response(r) => rsip::SipMessage::Response(response_to_rsip(r)?),
    })
}

fn headers_from_rsip(h: &rsip::Headers) -> Headers {
    let mut out = Headers::new();
    for header in h.iter() {
        // rsip writes every header as `Name: value`.
        let line = header.to_string();
        let (name, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
        out.push(
            HeaderName::from_wire(name.trim()),
            Bytes::copy_from_slice(value.trim().as_bytes()),
        );
    }
    out
}

fn version_from_rsip(v: &rsip::Version) -> Version {
    Version::from_token(&v.to_string())
}

/// rsip's message as ours. Total: everything rsip can hold, we can.
pub fn from_rsip(m: &rsip::SipMessage) -> Message {
    match m {
        rsip::SipMessage::Request(r) => Message::Request(Request {
            method: Method::from_token(&r.method.to_string()),
            uri: Bytes::from(r.uri.to_string()),
            version: version_from_rsip(&r.version),
            headers: headers_from_rsip(&r.headers),
            body: Bytes::copy_from_slice(&r.body),
        }),
        rsip::SipMessage::Response(r) => {
            let status = r.status_code.code();
            let reason = match &r.status_code {
                rsip::StatusCode::Other(_, reason) => reason.clone(),
                _ => reason_phrase(status).to_string(),
            };
            Message::Response(Response {
                version: version_from_rsip(&r.version),
                status,
                reason: Bytes::from(reason),
                headers: headers_from_rsip(&r.headers),
                body: Bytes::copy_from_slice(&r.body),
            })
        }
    }
}

impl TryFrom<&Message> for rsip::SipMessage {
    type Error = RsipError;
    fn try_from(m: &Message) -> Result<rsip::SipMessage, RsipError> {
        to_rsip(m)
    }
}

impl From<&rsip::SipMessage> for Message {
    fn from(m: &rsip::SipMessage) -> Message {
        from_rsip(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;
    use rsip::prelude::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP p1.example.com;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\n\
f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\ni: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\nm: <sip:alice@pc33.atlanta.example.com>, <sip:alice@pc34.atlanta.example.com>\r\n\
Subject: lunch\r\n  today\r\nl: 4\r\n\r\nbodyTRAILING";

    #[test]
    fn normalised_message_gives_rsip_what_it_handles() {
        let ours = parse_datagram(INVITE).unwrap();
        let theirs = to_rsip(&ours).unwrap();
        let via: Vec<_> = theirs
            .headers()
            .iter()
            .filter_map(|h| match h {
                rsip::Header::Via(v) => Some(v.typed().unwrap().uri.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(via, ["pc33.atlanta.example.com", "p1.example.com"]);
        assert_eq!(theirs.call_id_header().unwrap().value(), "a84b4c76e66710");
        let tag = theirs
            .from_header()
            .unwrap()
            .typed()
            .unwrap()
            .tag()
            .cloned();
        assert_eq!(tag.unwrap().value(), "1928301774");
        assert_eq!(theirs.contact_headers().len(), 2);
        assert_eq!(theirs.body(), b"body");
        let back = from_rsip(&theirs);
        assert_eq!(back.headers().vias(), ours.headers().vias());
        assert_eq!(back.core().unwrap(), ours.core().unwrap());
        assert_eq!(back.body(), ours.body());
    }

    #[test]
    fn what_rsip_would_alter_is_refused() {
        let m = parse_datagram(b"FOO sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(to_rsip(&m), Err(RsipError::Method("FOO".into())));
        let m =
            parse_datagram(b"OPTIONS sip:a@[::1] SIP/2.0\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(matches!(to_rsip(&m), Err(RsipError::Uri(_))));
        let m = parse_datagram(b"OPTIONS sip:a@b;transport=tcp SIP/2.0\r\n\r\n").unwrap();
        assert!(
            matches!(to_rsip(&m), Err(RsipError::Uri(_))),
            "rsip writes TCP"
        );
        let m = parse_datagram(b"OPTIONS sip:a@b SIP/2.0\r\nSubject: \xff\r\n\r\n").unwrap();
        assert_eq!(to_rsip(&m), Err(RsipError::NotUtf8("Subject".into())));
    }

    #[test]
    fn responses_keep_our_reason_phrases() {
        let m = parse_datagram(b"SIP/2.0 486 Busy Here\r\nCall-ID: x\r\n\r\n").unwrap();
        let theirs = to_rsip(&m).unwrap();
        let back = from_rsip(&theirs);
        let r = back.as_response().unwrap();
        assert_eq!((r.status, &r.reason[..]), (486, &b"Busy Here"[..]));
        let odd = parse_datagram(b"SIP/2.0 299 Odd One\r\n\r\n").unwrap();
        let back = from_rsip(&to_rsip(&odd).unwrap());
        assert_eq!(&back.as_response().unwrap().reason[..], b"Odd One");
    }
}
