//! The two SIP-over-TCP stream corpora (`tests/data/streams`) fed to the framer in chunks of
//! 2^i octets for i = 0..=17 must split into exactly 227 and 26 messages every time, at the
//! same places, with nothing left over; every head parses.

mod sip_util;

use ferroswitch::sip::parse::parse_head;
use ferroswitch::sip::{parse_framed, Frame, ParseError, StreamFramer};
use sip_util::data;

fn split(stream: &[u8], chunk: usize) -> Vec<bytes::Bytes> {
    let mut f = StreamFramer::default();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        f.push(piece);
        while let Some(frame) = f.pop().expect("framing error") {
            if let Frame::Message(m) = frame {
                out.push(m);
            }
        }
    }
    assert_eq!(f.buffered(), 0, "chunk {chunk}: octets left over");
    out
}

fn check(file: &str, expected: usize) {
    let stream = data(&format!("streams/{file}"));
    let reference = split(&stream, stream.len());
    assert_eq!(reference.len(), expected, "{file} in one piece");
    for i in 0..=17 {
        let msgs = split(&stream, 1 << i);
        assert_eq!(msgs.len(), expected, "{file} in chunks of {}", 1 << i);
        assert_eq!(msgs, reference, "{file}: same cuts whatever the chunk size");
    }
    // Many corpus messages omit Content-Length: framed with an empty body, then refused by
    // `parse_framed` (RFC 3261 §18.3 requires it on streams), but their heads parse.
    let mut framed_ok = 0;
    for (n, m) in reference.iter().enumerate() {
        let head = parse_head(m).unwrap_or_else(|e| panic!("{file} message {n}: {e}"));
        match parse_framed(m.clone()) {
            Ok(_) => framed_ok += 1,
            Err(ParseError::MissingContentLength) => assert_eq!(head.content_length, None),
            Err(e) => panic!("{file} message {n}: {e}"),
        }
    }
    assert!(framed_ok > 0);
    let total: usize = reference.iter().map(|m| m.len()).sum();
    assert!(total <= stream.len());
}

#[test]
fn generic_stream_has_227_messages() {
    check("generic-227-messages.txt", 227);
}

#[test]
fn lioneagle_stream_has_26_messages() {
    check("lioneagle-sipparser-26-messages.txt", 26);
}
