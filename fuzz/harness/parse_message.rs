//! Message parser round trip: whatever `parse_datagram` accepts, `to_bytes` writes back in a
//! form that parses to the same message (Content-Length aside, which `to_bytes` rewrites from
//! the body; and what serialisation never lets out: header lines with control octets, unsafe
//! or overlong reason phrases), that writes back byte for byte the same, and that the stream
//! path (framer + `parse_framed`) reads the same way. Never panics on any input.

use bytes::Bytes;
use ferroswitch::sip::{
    parse_datagram, parse_framed, Frame, HeaderName, Message, StreamFramer, MAX_MESSAGE_SIZE,
};

/// The message without its Content-Length headers (recomputed on writing) and as
/// serialisation lets it out: no header line with a control octet, a reason phrase that is
/// wire-safe and short.
fn without_content_length(m: &Message) -> Message {
    let mut m = m.clone();
    m.headers_mut().remove(&HeaderName::ContentLength);
    m.headers_mut().retain(|h| h.is_wire_safe());
    if let Message::Response(r) = &mut m {
        r.reason = Bytes::copy_from_slice(r.wire_reason());
    }
    m
}

/// The check the fuzzer runs on every input; panics on a violation.
pub fn check(data: &[u8]) {
    let Ok(first) = parse_datagram(data) else {
        return;
    };
    let wire = first.to_bytes();
    if wire.len() > MAX_MESSAGE_SIZE {
        // Expanding compact names can push a message at the limit over it.
        return;
    }
    let second = parse_datagram(&wire).unwrap_or_else(|e| {
        panic!(
            "our own output does not parse: {e}\n{:?}",
            String::from_utf8_lossy(&wire)
        )
    });
    assert_eq!(
        without_content_length(&first),
        without_content_length(&second),
        "round trip changed the message; wire: {:?}",
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(
        second.to_bytes(),
        wire,
        "serialisation is not a fixed point"
    );

    let framed = parse_framed(wire.clone()).expect("our output carries Content-Length");
    assert_eq!(framed, second, "stream and datagram parsing disagree");
    let mut framer = StreamFramer::default();
    framer.push(&wire);
    assert_eq!(
        framer.pop(),
        Ok(Some(Frame::Message(Bytes::clone(&wire)))),
        "the framer cuts our own output differently"
    );
    assert_eq!(framer.buffered(), 0);
}
