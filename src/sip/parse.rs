//! Parsing SIP messages from bytes (RFC 3261 §7, §18.3).
//!
//! Our own tolerant line layer runs first: leading CRLFs skipped, CRLF or bare LF line ends,
//! folded lines joined, compact names mapped, whitespace around the colon dropped. Content-Length
//! decides where the body ends: over UDP a shorter body is an error and extra octets are
//! ignored; over a stream the framer has already cut the message. Never panics on any input.

use super::header::{Header, HeaderName, Headers};
use super::message::{Message, Request, Response, Version};
use super::method::Method;
use bytes::{BufMut, Bytes, BytesMut};

/// Largest message we accept on any transport.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message larger than 64 KiB")]
    TooLarge,
    #[error("header section not terminated")]
    UnterminatedHead,
    #[error("malformed start line: {0}")]
    BadStartLine(&'static str),
    #[error("malformed header line")]
    BadHeaderLine,
    #[error("malformed Content-Length")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    MultipleContentLength,
    #[error("body shorter than Content-Length")]
    BodyTruncated,
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
}

impl ParseError {
    /// The reason phrase we put on the 400 that answers a request failing this way.
    pub fn reason_phrase(&self) -> &'static str {
        match self {
            ParseError::Empty => "Bad Request - Empty Message",
            ParseError::TooLarge => "Bad Request - Message Too Large",
            ParseError::UnterminatedHead => "Bad Request - Unterminated Header Section",
            ParseError::BadStartLine(_) => "Bad Request - Malformed Request-Line",
            ParseError::BadHeaderLine => "Bad Request - Malformed Header",
            ParseError::BadContentLength => "Bad Request - Malformed Content-Length",
            ParseError::MultipleContentLength => "Bad Request - Multiple Content-Length",
            ParseError::BodyTruncated => "Bad Request - Content-Length Larger Than Message",
            ParseError::MissingContentLength => "Bad Request - Missing Content-Length",
        }
    }
}

/// The start line and headers of a message, plus where the head ended in the input.
pub struct Head {
    pub message: Message,
    /// Offset of the first body octet.
    pub body_start: usize,
    /// The Content-Length value, when present and valid.
    pub content_length: Option<usize>,
}

/// Parses one UDP datagram (RFC 3261 §18.3): Content-Length, when present, decides the body;
/// bytes after it are discarded; a missing Content-Length means "to the end of the datagram".
pub fn parse_datagram(buf: &[u8]) -> Result<Message, ParseError> {
    if buf.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge);
    }
    parse_datagram_bytes(Bytes::copy_from_slice(buf))
}

/// `parse_datagram` over octets the caller already holds as `Bytes` (the transport keeps a
/// clone as the message's raw form): the parsed message's fields are slices of `buf`.
pub fn parse_datagram_bytes(buf: Bytes) -> Result<Message, ParseError> {
    if buf.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge);
    }
    let head = parse_head(&buf)?;
    let available = buf.len() - head.body_start;
    let len = match head.content_length {
        Some(n) if n > available => return Err(ParseError::BodyTruncated),
        Some(n) => n,
        None => available,
    };
    Ok(with_body(
        head.message,
        buf.slice(head.body_start..head.body_start + len),
    ))
}

/// Parses one message already cut out of a stream by the framer: Content-Length is required
/// and must match the octets after the head exactly.
pub fn parse_framed(buf: Bytes) -> Result<Message, ParseError> {
    if buf.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge);
    }
    let head = parse_head(&buf)?;
    let n = head
        .content_length
        .ok_or(ParseError::MissingContentLength)?;
    if buf.len() - head.body_start < n {
        return Err(ParseError::BodyTruncated);
    }
    Ok(with_body(
        head.message,
        buf.slice(head.body_start..head.body_start + n),
    ))
}

fn with_body(mut m: Message, body: Bytes) -> Message {
    match &mut m {
        Message::Request(r) => r.body = body,
        Message::Response(r) => r.body = body,
    }
    m
}

/// Parses the start line and headers. Useful on its own to answer 400 to a request whose
/// body is broken.
pub fn parse_head(buf: &Bytes) -> Result<Head, ParseError> {
    let mut pos = 0;
    // RFC 3261 §7.5: ignore CRLFs before the start line.
    while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
        pos += 1;
    }
    if pos == buf.len() {
        return Err(ParseError::Empty);
    }
    let (line, next) = next_line(buf, pos).ok_or(ParseError::UnterminatedHead)?;
    let start = parse_start_line(buf, line)?;
    let section = parse_headers(buf, next)?;
    if let Some(e) = section.cl_error {
        return Err(e);
    }
    let headers = section.headers;
    let message = match start {
        StartLine::Request(method, uri, version) => Message::Request(Request {
            method,
            uri,
            version,
            headers,
            body: Bytes::new(),
        }),
        StartLine::Response(version, status, reason) => Message::Response(Response {
            version,
            status,
            reason,
            headers,
            body: Bytes::new(),
        }),
    };
    Ok(Head {
        message,
        body_start: section.body_start,
        content_length: section.content_length,
    })
}

/// The header section of a request whose start line or Content-Length is broken, read only
/// as far as a 400 needs (RFC 4475 ltgtruri, lwsruri, lwsstart, trws, ncl, mcl01: "respond
/// with 400"). The method is the start line's first word; the URI is left empty. `None` for
/// responses, when that word is not a token, or when the header lines themselves are broken.
pub fn request_head_for_reply(buf: &Bytes) -> Option<Request> {
    let pos = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let ((s, e), next) = next_line(buf, pos)?;
    let line = &buf[s..e];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    let word = line.split(|&b| b == b' ').next()?;
    if word.is_empty() || !word.iter().all(|&b| is_token_char(b)) {
        return None;
    }
    let section = parse_headers(buf, next).ok()?;
    Some(Request {
        method: Method::from_token(ascii(word)?),
        uri: Bytes::new(),
        version: Version::Sip20,
        headers: section.headers,
        body: Bytes::new(),
    })
}

/// The header lines after the start line, up to the empty line.
struct HeaderSection {
    headers: Headers,
    /// Offset of the first body octet.
    body_start: usize,
    content_length: Option<usize>,
    /// A Content-Length that is malformed or contradicts an earlier one.
    cl_error: Option<ParseError>,
}

fn parse_headers(buf: &Bytes, mut pos: usize) -> Result<HeaderSection, ParseError> {
    let mut headers = Headers::new();
    let mut content_length: Option<usize> = None;
    let mut cl_error: Option<ParseError> = None;
    // A folded line extends the previous header; we collect into an owned buffer then.
    let mut folded: Option<BytesMut> = None;
    loop {
        let (line, next) = next_line(buf, pos).ok_or(ParseError::UnterminatedHead)?;
        pos = next;
        let bytes = &buf[line.0..line.1];
        if bytes.is_empty() {
            break;
        }
        if bytes[0] == b' ' || bytes[0] == b'\t' {
            let Some(last) = headers.0.last_mut() else {
                return Err(ParseError::BadHeaderLine);
            };
            let cont = trim(bytes);
            if cont.is_empty() {
                continue;
            }
            let acc = folded.get_or_insert_with(|| BytesMut::from(&last.value[..]));
            if !acc.is_empty() {
                acc.put_u8(b' ');
            }
            acc.put_slice(cont);
            last.value = Bytes::copy_from_slice(acc);
            continue;
        }
        folded = None;
        let colon = memchr::memchr(b':', bytes).ok_or(ParseError::BadHeaderLine)?;
        let name = trim_end(&bytes[..colon]);
        if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
            return Err(ParseError::BadHeaderLine);
        }
        // Token characters are ASCII, so this cannot fail.
        let name = std::str::from_utf8(name).map_err(|_| ParseError::BadHeaderLine)?;
        let name = HeaderName::from_wire(name);
        let vstart = line.0 + colon + 1;
        let (vs, ve) = trim_range(buf, vstart, line.1);
        let value = buf.slice(vs..ve);
        if name == HeaderName::ContentLength {
            match parse_content_length(&value) {
                Some(n) => match content_length {
                    Some(prev) if prev != n => cl_error = Some(ParseError::MultipleContentLength),
                    _ => content_length = Some(n),
                },
                None => cl_error = Some(ParseError::BadContentLength),
            }
        }
        headers.0.push(Header { name, value });
    }
    Ok(HeaderSection {
        headers,
        body_start: pos,
        content_length,
        cl_error,
    })
}

enum StartLine {
    Request(Method, Bytes, Version),
    Response(Version, u16, Bytes),
}

fn parse_start_line(buf: &Bytes, (s, e): (usize, usize)) -> Result<StartLine, ParseError> {
    let line = &buf[s..e];
    if line.len() > 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp1 = line
            .iter()
            .position(|&b| b == b' ')
            .ok_or(ParseError::BadStartLine("no status code"))?;
        let version = ascii(&line[..sp1]).ok_or(ParseError::BadStartLine("version"))?;
        let rest = &line[sp1 + 1..];
        if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
            return Err(ParseError::BadStartLine("status code"));
        }
        if rest.len() > 3 && rest[3] != b' ' {
            return Err(ParseError::BadStartLine("status code"));
        }
        let status = u16::from(rest[0] - b'0') * 100
            + u16::from(rest[1] - b'0') * 10
            + u16::from(rest[2] - b'0');
        if !(100..=699).contains(&status) {
            return Err(ParseError::BadStartLine("status code out of range"));
        }
        let reason_start = s + sp1 + 1 + 3 + usize::from(rest.len() > 3);
        return Ok(StartLine::Response(
            Version::from_token(version),
            status,
            buf.slice(reason_start..e),
        ));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly two single spaces.
    let mut parts = line.split(|&b| b == b' ');
    let (Some(m), Some(u), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine(
            "request line must have three parts",
        ));
    };
    if m.is_empty() || !m.iter().all(|&b| is_token_char(b)) {
        return Err(ParseError::BadStartLine("method"));
    }
    if u.is_empty() || u[0] == b'<' || u.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::BadStartLine("request-uri"));
    }
    let version = ascii(v).ok_or(ParseError::BadStartLine("version"))?;
    if version.len() < 5 || !version[..4].eq_ignore_ascii_case("SIP/") {
        return Err(ParseError::BadStartLine("version"));
    }
    let method = Method::from_token(ascii(m).ok_or(ParseError::BadStartLine("method"))?);
    let uri_start = s + m.len() + 1;
    Ok(StartLine::Request(
        method,
        buf.slice(uri_start..uri_start + u.len()),
        Version::from_token(version),
    ))
}

/// Finds the line starting at `pos`: returns its content range (without CR/LF) and the
/// offset after its LF. `None` when no LF follows.
fn next_line(buf: &[u8], pos: usize) -> Option<((usize, usize), usize)> {
    let nl = pos + memchr::memchr(b'\n', buf.get(pos..)?)?;
    let end = if nl > pos && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some(((pos, end), nl + 1))
}

fn parse_content_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
    )
}

fn ascii(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        std::str::from_utf8(b).ok()
    } else {
        None
    }
}

/// RFC 3261 §25.1 `token` characters.
#[inline]
pub fn is_token_char(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Lookup table for `is_token_char` (called per octet of every header name).
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        c += 1;
    }
    t
};

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|&c| !is_ws(c)).unwrap_or(b.len());
    trim_end(&b[s..])
}

fn trim_end(b: &[u8]) -> &[u8] {
    let e = b.iter().rposition(|&c| !is_ws(c)).map_or(0, |i| i + 1);
    &b[..e]
}

fn trim_range(buf: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && is_ws(buf[s]) {
        s += 1;
    }
    while e > s && is_ws(buf[e - 1]) {
        e -= 1;
    }
    (s, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] =
        b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody-extra";

    #[test]
    fn udp_body_is_cut_at_content_length() {
        let m = parse_datagram(OPTIONS).unwrap();
        assert_eq!(&m.body()[..], b"body");
        let r = m.as_request().unwrap();
        assert_eq!(r.method, Method::Options);
        assert_eq!(&r.uri[..], b"sip:bob@example.com");
    }

    #[test]
    fn lf_only_folding_and_space_before_colon() {
        let raw = b"\r\nINVITE sip:a@b SIP/2.0\nSubject : hello\n  world\nv: SIP/2.0/UDP h\n\n";
        let m = parse_datagram(raw).unwrap();
        assert_eq!(
            m.headers().get_str(&HeaderName::Subject),
            Some("hello world")
        );
        assert!(m.headers().get(&HeaderName::Via).is_some());
        assert!(m.body().is_empty());
    }

    #[test]
    fn rejects_what_rfc4475_says_to_reject() {
        let short = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(parse_datagram(short), Err(ParseError::BodyTruncated));
        let neg = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(parse_datagram(neg), Err(ParseError::BadContentLength));
        let two = b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(parse_datagram(two), Err(ParseError::MultipleContentLength));
        assert!(parse_datagram(b"INVITE <sip:a@b> SIP/2.0\r\n\r\n").is_err());
        assert!(parse_datagram(b"INVITE sip:a@b; lr SIP/2.0\r\n\r\n").is_err());
        assert!(parse_datagram(b"SIP/2.0 4294967301 Huge\r\n\r\n").is_err());
    }

    #[test]
    fn a_broken_request_line_or_content_length_still_yields_headers_for_a_400() {
        let heads = [
            &b"INVITE <sip:a@b> SIP/2.0\r\nCall-ID: x\r\n\r\n"[..],
            b"\r\nINVITE  sip:a@b  SIP/2.0\r\nCall-ID: x\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nl: -1\r\n\r\n",
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nCall-ID: x\r\nl: 2\r\n\r\nab",
        ];
        for raw in heads {
            assert!(parse_datagram(raw).is_err());
            let r = request_head_for_reply(&Bytes::from_static(raw)).expect("a request head");
            assert_eq!(r.headers.get_str(&HeaderName::CallId), Some("x"));
        }
        let r = request_head_for_reply(&Bytes::from_static(b"INVITE <x> SIP/2.0\r\n\r\n"));
        assert_eq!(r.map(|r| r.method), Some(Method::Invite));
        for raw in [
            &b"SIP/2.0 4294967301 Huge\r\nCall-ID: x\r\n\r\n"[..],
            b"<sip:a@b> INVITE SIP/2.0\r\nCall-ID: x\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(request_head_for_reply(&Bytes::from_static(raw)), None);
        }
    }

    #[test]
    fn response_reason_may_be_empty_or_binary() {
        let m = parse_datagram(b"SIP/2.0 100 \r\nCall-ID: a\r\n\r\n").unwrap();
        let r = m.as_response().unwrap();
        assert_eq!((r.status, &r.reason[..]), (100, &b""[..]));
        let m = parse_datagram(b"SIP/2.0 200 \xd0\x9e\xff ok\r\n\r\n").unwrap();
        assert_eq!(&m.as_response().unwrap().reason[..], b"\xd0\x9e\xff ok");
    }
}
