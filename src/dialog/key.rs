//! Dialog keys (RFC 3261 §12): Call-ID + local tag + remote tag, seen from our side.
//!
//! Which header holds which tag depends on the direction: in a request we receive the local
//! tag is in To and the remote tag in From; in a response we receive (to a request we sent)
//! it is the other way round. The constructors here know that so that callers never swap
//! them. A missing remote tag (an RFC 2543 peer) is the empty string, as §12.1.1 allows.
//! Call-IDs and tags compare byte for byte. Never panics on what a peer sends.

use super::error::DialogError;
use crate::sip::{HeaderError, HeaderName, Headers, Request, Response};
use std::fmt;
use std::sync::Arc;

/// Identifies one dialog from our side. Cheap to hash; compare it, don't take it apart.
/// Shared strings: the call table keeps a key in its index and in its bookkeeping as well as
/// in the dialog, and a clone must not allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogKey {
    pub call_id: Arc<str>,
    pub local_tag: Arc<str>,
    /// Empty when the peer sent no tag (RFC 2543, §12.1.1 "null").
    pub remote_tag: Arc<str>,
}

impl DialogKey {
    pub fn new(
        call_id: impl Into<String>,
        local_tag: impl Into<String>,
        remote_tag: impl Into<String>,
    ) -> DialogKey {
        DialogKey {
            call_id: Arc::from(call_id.into()),
            local_tag: Arc::from(local_tag.into()),
            remote_tag: Arc::from(remote_tag.into()),
        }
    }

    /// The key of the dialog a received request belongs to: local tag from To, remote tag
    /// from From. `NotInDialog` when To has no tag.
    pub fn for_received_request(req: &Request) -> Result<DialogKey, DialogError> {
        let call_id = call_id(&req.headers)?;
        let local = req.headers.to_tag().ok_or(DialogError::NotInDialog)?;
        let remote = req.headers.from_tag().unwrap_or_default();
        Ok(DialogKey::new(call_id, local, remote))
    }

    /// The key of the dialog a received response belongs to (the request was ours): local
    /// tag from From, remote tag from To (empty when absent).
    pub fn for_received_response(resp: &Response) -> Result<DialogKey, DialogError> {
        let call_id = call_id(&resp.headers)?;
        let local = resp.headers.from_tag().ok_or(DialogError::Mismatch)?;
        let remote = resp.headers.to_tag().unwrap_or_default();
        Ok(DialogKey::new(call_id, local, remote))
    }

    /// The key of the dialog a request we send belongs to: local tag from From, remote tag
    /// from To.
    pub fn for_sent_request(req: &Request) -> Result<DialogKey, DialogError> {
        let call_id = call_id(&req.headers)?;
        let local = req.headers.from_tag().ok_or(DialogError::Mismatch)?;
        let remote = req.headers.to_tag().unwrap_or_default();
        Ok(DialogKey::new(call_id, local, remote))
    }

    /// Call-ID + local tag: what the early dialogs of one forked INVITE share.
    pub fn set_key(&self) -> (&str, &str) {
        (&self.call_id, &self.local_tag)
    }
}

fn call_id(h: &Headers) -> Result<String, DialogError> {
    let v = h.single(&HeaderName::CallId)?;
    v.value_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or(DialogError::Header(HeaderError::Malformed(
            HeaderName::CallId,
            "empty or not UTF-8",
        )))
}

impl fmt::Display for DialogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};local={};remote={}",
            self.call_id, self.local_tag, self.remote_tag
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;

    fn msg(text: &str) -> crate::sip::Message {
        parse_datagram(text.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    const HEAD: &str = "Via: SIP/2.0/UDP h;branch=z9hG4bK1\nCall-ID: c1\nCSeq: 2 BYE\n";

    #[test]
    fn request_key_takes_local_from_to_and_remote_from_from() {
        let m = msg(&format!(
            "BYE sip:x@h SIP/2.0\n{HEAD}From: <sip:a@h>;tag=them\nTo: <sip:b@h>;tag=us\n\n"
        ));
        let k = DialogKey::for_received_request(m.as_request().unwrap()).unwrap();
        assert_eq!(k, DialogKey::new("c1", "us", "them"));
        assert_eq!(k.to_string(), "c1;local=us;remote=them");
        assert_eq!(
            DialogKey::for_sent_request(m.as_request().unwrap()).unwrap(),
            DialogKey::new("c1", "them", "us")
        );
    }

    #[test]
    fn request_without_to_tag_is_outside_dialogs_and_2543_from_is_null() {
        let m = msg(&format!(
            "BYE sip:x@h SIP/2.0\n{HEAD}From: <sip:a@h>\nTo: <sip:b@h>\n\n"
        ));
        assert_eq!(
            DialogKey::for_received_request(m.as_request().unwrap()),
            Err(DialogError::NotInDialog)
        );
        let m = msg(&format!(
            "BYE sip:x@h SIP/2.0\n{HEAD}From: <sip:a@h>\nTo: <sip:b@h>;tag=us\n\n"
        ));
        let k = DialogKey::for_received_request(m.as_request().unwrap()).unwrap();
        assert_eq!(&*k.remote_tag, "");
    }

    #[test]
    fn response_key_is_seen_from_the_requester() {
        let m = msg(&format!(
            "SIP/2.0 200 OK\n{HEAD}From: <sip:a@h>;tag=us\nTo: <sip:b@h>;tag=them\n\n"
        ));
        let k = DialogKey::for_received_response(m.as_response().unwrap()).unwrap();
        assert_eq!(k, DialogKey::new("c1", "us", "them"));
        assert_eq!(k.set_key(), ("c1", "us"));
        let no_call_id = msg("SIP/2.0 200 OK\nFrom: <sip:a@h>;tag=us\nTo: <sip:b@h>\n\n");
        assert!(matches!(
            DialogKey::for_received_response(no_call_id.as_response().unwrap()),
            Err(DialogError::Header(HeaderError::Missing(
                HeaderName::CallId
            )))
        ));
    }
}
