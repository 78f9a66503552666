//! The SIP message model: requests, responses, and writing them back to bytes.
//!
//! A message is a start line, the ordered raw header list and the body octets. Nothing here
//! decodes header values; see `typed`, `access` and `uri` for that. Serialisation always writes
//! CRLF line ends, full header names in the order received, and one Content-Length (where the
//! first one stood) that matches the body.
//!
//! Serialisation is also the last guard on what we send (issue 9.7): a header line whose
//! value holds a control octet is left out, and a reason phrase that holds one or is longer
//! than [`MAX_REASON_LEN`] is replaced by the standard phrase for the code, so no message of
//! ours carries a bare CR, NUL or ESC in its head whatever a peer put in what we copy.

use super::header::{is_wire_safe, HeaderName, Headers};
use super::method::Method;
use bytes::{BufMut, Bytes, BytesMut};

/// The longest reason phrase we write; a longer one (a peer's, relayed) is replaced by the
/// standard phrase for its code.
pub const MAX_REASON_LEN: usize = 64;

/// The protocol version on a start line. Only SIP/2.0 is served; anything else is kept so
/// the layer above can answer 505 Version Not Supported (RFC 4475 §3.1.2.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    Sip20,
    Other(Box<str>),
}

impl Version {
    pub fn from_token(s: &str) -> Version {
        if s.eq_ignore_ascii_case("SIP/2.0") {
            Version::Sip20
        } else {
            Version::Other(s.into())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Version::Sip20 => "SIP/2.0",
            Version::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The Request-URI exactly as received (decode with `Request::request_uri`).
    pub uri: Bytes,
    pub version: Version,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub version: Version,
    pub status: u16,
    /// Reason phrase octets; may be empty or hold non-UTF-8 (RFC 4475 §3.1.1.12/13).
    pub reason: Bytes,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Request {
    pub fn new(method: Method, uri: impl Into<Bytes>) -> Request {
        Request {
            method,
            uri: uri.into(),
            version: Version::Sip20,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// Keeps only the headers named in `keep` (and the body when `keep_body`), each copied
    /// into an allocation of its own. A received request's parts are slices of the whole
    /// datagram; a long-lived copy that needs three headers should not pin 1.5 KB.
    pub fn keep_only(&mut self, keep: &[HeaderName], keep_body: bool) {
        self.headers.0.retain(|h| keep.contains(&h.name));
        if !keep_body {
            self.body = Bytes::new();
        }
        // Everything kept is copied into one buffer and sliced from it: one allocation
        // instead of one per value.
        let total = self.uri.len()
            + self.body.len()
            + self.headers.0.iter().map(|h| h.value.len()).sum::<usize>();
        let mut buf = BytesMut::with_capacity(total);
        buf.put_slice(&self.uri);
        buf.put_slice(&self.body);
        for h in &self.headers.0 {
            buf.put_slice(&h.value);
        }
        let buf = buf.freeze();
        let mut at = 0;
        let mut take = |len: usize| {
            let s = buf.slice(at..at + len);
            at += len;
            s
        };
        self.uri = take(self.uri.len());
        self.body = take(self.body.len());
        for h in &mut self.headers.0 {
            h.value = take(h.value.len());
        }
        self.headers.0.shrink_to_fit();
    }

    /// The Request-URI as text, or `None` when it holds non-UTF-8 octets.
    pub fn uri_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.uri).ok()
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(estimate(&self.headers, &self.body) + self.uri.len());
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(&self.uri);
        out.put_u8(b' ');
        out.put_slice(self.version.as_str().as_bytes());
        out.put_slice(b"\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out.freeze()
    }
}

impl Response {
    pub fn new(status: u16, reason: impl Into<Bytes>) -> Response {
        Response {
            version: Version::Sip20,
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// The reason phrase `to_bytes` writes: ours as set, or the standard one when it is
    /// longer than [`MAX_REASON_LEN`] or holds a control octet.
    pub fn wire_reason(&self) -> &[u8] {
        if self.reason.len() <= MAX_REASON_LEN && is_wire_safe(&self.reason) {
            &self.reason
        } else {
            super::status::reason_phrase(self.status).as_bytes()
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(estimate(&self.headers, &self.body));
        out.put_slice(self.version.as_str().as_bytes());
        out.put_u8(b' ');
        let mut code = itoa_buf(u64::from(self.status));
        out.put_slice(code.as_bytes_mut());
        out.put_u8(b' ');
        out.put_slice(self.wire_reason());
        out.put_slice(b"\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out.freeze()
    }
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }

    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }
}

fn estimate(headers: &Headers, body: &Bytes) -> usize {
    64 + body.len()
        + headers
            .iter()
            .map(|h| h.name.as_str().len() + h.value.len() + 4)
            .sum::<usize>()
}

/// Writes the headers in order with one Content-Length for the actual body, where the first
/// Content-Length stood (appended when there was none); other Content-Length lines are
/// dropped, and so is every line that is not wire-safe (module docs).
fn write_headers_and_body(out: &mut BytesMut, headers: &Headers, body: &Bytes) {
    let mut wrote_len = false;
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            if !wrote_len {
                write_content_length(out, body.len());
                wrote_len = true;
            }
            continue;
        }
        if !h.is_wire_safe() || !is_wire_safe(h.name.as_str().as_bytes()) {
            continue;
        }
        out.put_slice(h.name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(&h.value);
        out.put_slice(b"\r\n");
    }
    if !wrote_len {
        write_content_length(out, body.len());
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
}

fn write_content_length(out: &mut BytesMut, len: usize) {
    out.put_slice(b"Content-Length: ");
    let mut n = itoa_buf(len as u64);
    out.put_slice(n.as_bytes_mut());
    out.put_slice(b"\r\n");
}

/// Decimal formatting without going through `fmt` (hot path).
struct DecBuf {
    buf: [u8; 20],
    start: usize,
}

impl DecBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut v: u64) -> DecBuf {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    DecBuf { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_crlf_and_real_content_length() {
        let mut r = Request::new(Method::Options, "sip:bob@example.com");
        r.headers.push(HeaderName::CallId, "abc");
        r.headers.push(HeaderName::ContentLength, "999");
        r.headers.push(HeaderName::Expires, "5");
        r.body = Bytes::from_static(b"hello");
        let wire = r.to_bytes();
        assert_eq!(
            &wire[..],
            b"OPTIONS sip:bob@example.com SIP/2.0\r\nCall-ID: abc\r\nContent-Length: 5\r\nExpires: 5\r\n\r\nhello"
        );
        let resp = Response::new(100, "");
        assert_eq!(
            &resp.to_bytes()[..],
            b"SIP/2.0 100 \r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn control_octets_and_long_reasons_never_reach_the_wire() {
        let mut r = Response::new(400, &b"Bad\rTo: <sip:x@evil>"[..]);
        r.headers
            .push(HeaderName::From, &b"<sip:a@b>;tag=1\rTo: <sip:x@evil>"[..]);
        r.headers.push(HeaderName::CallId, &b"a\x00b"[..]);
        r.headers.push(HeaderName::CSeq, "1 OPTIONS");
        assert_eq!(
            &r.to_bytes()[..],
            b"SIP/2.0 400 Bad Request\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let long = "x".repeat(MAX_REASON_LEN + 1);
        assert_eq!(Response::new(486, long).wire_reason(), b"Busy Here");
        let just = "y".repeat(MAX_REASON_LEN);
        assert_eq!(
            Response::new(486, just.clone()).wire_reason(),
            just.as_bytes()
        );
    }
}
