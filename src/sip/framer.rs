//! A sans-IO framer for SIP over stream transports (RFC 3261 §18.3, RFC 5626 §3.5.1).
//!
//! Push the bytes a connection delivers, pop whole messages. Content-Length frames the body;
//! a message without it is framed with an empty body and left for `parse_framed` to reject
//! (a missing Content-Length is an error on streams, but the stream stays in sync). CRLFCRLF is
//! a keep-alive ping to answer with CRLF; a lone CRLF is a pong. A malformed Content-Length or
//! a message over the size limit cannot be resynchronised: the connection must be closed.

use super::parse::MAX_MESSAGE_SIZE;
use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (head and body), ready for `parse_framed`.
    Message(Bytes),
    /// RFC 5626 keep-alive ping (CRLFCRLF): answer with a single CRLF.
    Ping,
    /// RFC 5626 keep-alive pong (CRLF) or a stray CRLF between messages (RFC 3261 §7.5).
    Pong,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message exceeds {0} bytes")]
    TooLarge(usize),
    #[error("malformed Content-Length")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    MultipleContentLength,
}

#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max: usize,
    /// Octets of the current head already searched for its end without finding it, so a
    /// peer trickling bytes costs linear time, not quadratic.
    scanned: usize,
    /// Total length of the current message once its head (and Content-Length) is known.
    pending: Option<usize>,
}

impl Default for StreamFramer {
    fn default() -> Self {
        StreamFramer::new(MAX_MESSAGE_SIZE)
    }
}

impl StreamFramer {
    /// A framer rejecting messages larger than `max` octets.
    pub fn new(max: usize) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            max,
            scanned: 0,
            pending: None,
        }
    }

    /// Octets buffered but not yet popped.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Pops the next frame; `Ok(None)` means more bytes are needed. After an `Err` the stream
    /// is out of sync and the connection must be closed.
    pub fn pop(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(total) = self.pending {
            if self.buf.len() < total {
                return Ok(None);
            }
            return Ok(Some(self.take(total)));
        }
        let b = &self.buf[..];
        if b.starts_with(b"\r\n") {
            if b.starts_with(b"\r\n\r\n") {
                let _ = self.buf.split_to(4);
                return Ok(Some(Frame::Ping));
            }
            // "\r\n" or "\r\n\r" may still become a ping: wait for the next octet.
            if b.len() == 2 || (b.len() == 3 && b[2] == b'\r') {
                return Ok(None);
            }
            let _ = self.buf.split_to(2);
            return Ok(Some(Frame::Pong));
        }
        if b.starts_with(b"\n") {
            let _ = self.buf.split_to(1);
            return Ok(Some(Frame::Pong));
        }
        // The terminator is at most 4 octets: resume a little before where the last scan
        // stopped.
        let from = self.scanned.saturating_sub(3);
        let Some(head_len) = find_head_end_from(b, from) else {
            if b.len() > self.max {
                return Err(FrameError::TooLarge(self.max));
            }
            self.scanned = b.len();
            return Ok(None);
        };
        let body_len = content_length(&b[..head_len])?.unwrap_or(0);
        let total = head_len.saturating_add(body_len);
        if total > self.max {
            return Err(FrameError::TooLarge(self.max));
        }
        if b.len() < total {
            self.pending = Some(total);
            return Ok(None);
        }
        Ok(Some(self.take(total)))
    }

    fn take(&mut self, total: usize) -> Frame {
        self.scanned = 0;
        self.pending = None;
        Frame::Message(self.buf.split_to(total).freeze())
    }
}

/// Length of the head including the blank line (CRLFCRLF, or LF LF from lax senders).
fn find_head_end_from(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = b.get(i..)?.iter().position(|&c| c == b'\n') {
        let nl = i + off;
        match b.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if b.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            Some(_) => i = nl + 1,
            None => return None,
        }
    }
    None
}

/// Finds Content-Length (or compact `l`) among the head's lines.
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    // The start line is not a header, even when it reads like one (`l :p SIP/2.0` is a
    // request with method `l`, not a compact Content-Length).
    for line in head.split(|&c| c == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let v = line[colon + 1..].trim_ascii();
        if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let n = v
            .iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
        match found {
            Some(prev) if prev != n => return Err(FrameError::MultipleContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_messages_and_keepalives_byte_by_byte() {
        let stream: &[u8] = b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabcBYE sip:b SIP/2.0\r\nContent-Length: 0\r\n\r\n\r\nX";
        let mut f = StreamFramer::default();
        let mut frames = Vec::new();
        for byte in stream {
            f.push(std::slice::from_ref(byte));
            while let Some(fr) = f.pop().unwrap() {
                frames.push(fr);
            }
        }
        assert_eq!(frames[0], Frame::Ping);
        assert!(matches!(&frames[1], Frame::Message(m) if m.ends_with(b"abc")));
        assert!(matches!(&frames[2], Frame::Message(m) if m.starts_with(b"BYE")));
        assert_eq!(frames[3], Frame::Pong);
        assert_eq!(frames.len(), 4);
        assert_eq!(f.buffered(), 1);
    }

    #[test]
    fn a_start_line_is_never_read_as_content_length() {
        // Found by the parse_message fuzzer: method `l` with a colon in its URI.
        let mut f = StreamFramer::default();
        f.push(b"l :p SIP/2.0\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(f.pop(), Ok(Some(Frame::Message(_)))));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn fatal_errors() {
        let mut f = StreamFramer::new(100);
        f.push(b"INVITE sip:a SIP/2.0\r\nContent-Length: -5\r\n\r\n");
        assert_eq!(f.pop(), Err(FrameError::BadContentLength));
        let mut f = StreamFramer::new(100);
        f.push(b"INVITE sip:a SIP/2.0\r\nContent-Length: 500\r\n\r\n");
        assert_eq!(f.pop(), Err(FrameError::TooLarge(100)));
        let mut f = StreamFramer::new(100);
        f.push(&[b'A'; 101]);
        assert_eq!(f.pop(), Err(FrameError::TooLarge(100)));
    }
}
