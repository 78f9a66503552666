//! Transaction keys: how a message finds its transaction (RFC 3261 §17.1.3, §17.2.3).
//!
//! A server key is the top Via branch + sent-by + method, with ACK folded into INVITE so the
//! ACK for a non-2xx lands in the INVITE's transaction; a request without the magic cookie
//! falls back to the RFC 2543 fields. A client key is branch + CSeq method. Building a key
//! never panics: a message without the fields a key needs is reported as malformed.

use super::error::TransactionError;
use crate::sip::{Method, Request, Response};
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// Which side of the exchange a transaction is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// Identifies one transaction. Cheap to clone; compare and hash it, don't take it apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    role: Role,
    /// The method of the request that created the transaction (never ACK).
    method: Method,
    id: KeyId,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyId {
    /// RFC 3261 branch (lower-cased: tokens compare case-insensitively, §7.3.1). Server keys
    /// add the top Via sent-by, because only our own client branches are known to be unique.
    ///
    /// Shared strings: a key is cloned into the timer index, events and transmits, and a
    /// clone must not allocate.
    Branch {
        branch: Arc<str>,
        sent_by: Option<Arc<str>>,
    },
    /// §17.2.3 fallback for requests from RFC 2543 elements.
    Rfc2543(Box<Rfc2543Id>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Rfc2543Id {
    request_uri: Bytes,
    to_tag: Option<String>,
    from_tag: Option<String>,
    call_id: String,
    cseq: u32,
    sent_by: String,
}

/// What an ICMP error's quote of one of our datagrams names (`client_for_quote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Quoted {
    /// A request of ours: its client transaction.
    Request(TransactionKey),
    /// A response or an ACK: no client transaction sent it.
    Other,
    /// Nothing usable was quoted.
    Unreadable,
}

impl TransactionKey {
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The RFC 3261 branch, or `None` for an RFC 2543 key.
    pub fn branch(&self) -> Option<&str> {
        match &self.id {
            KeyId::Branch { branch, .. } => Some(branch),
            KeyId::Rfc2543(_) => None,
        }
    }

    pub fn is_rfc2543(&self) -> bool {
        matches!(self.id, KeyId::Rfc2543(_))
    }

    /// The key of the client transaction a request we send creates. We only send requests
    /// with an RFC 3261 branch, so that responses can be matched by it (§17.1.3).
    pub(crate) fn client_for_request(req: &Request) -> Result<TransactionKey, TransactionError> {
        let via = req
            .headers
            .top_via()
            .ok_or(TransactionError::MissingBranch)?;
        if !via.has_rfc3261_branch() {
            return Err(TransactionError::MissingBranch);
        }
        let branch = via.branch().unwrap_or_default().to_ascii_lowercase();
        Ok(TransactionKey {
            role: Role::Client,
            method: req.method.clone(),
            id: KeyId::Branch {
                branch: branch.into(),
                sent_by: None,
            },
        })
    }

    /// §17.1.3: a response matches the client transaction whose branch equals the top Via
    /// branch and whose method equals the CSeq method. `None` when it cannot match any.
    pub(crate) fn client_for_response(resp: &Response) -> Option<TransactionKey> {
        let via = resp.headers.top_via()?;
        if !via.has_rfc3261_branch() {
            return None;
        }
        let method = resp.headers.cseq()?.method;
        Some(TransactionKey {
            role: Role::Client,
            method,
            id: KeyId::Branch {
                branch: via.branch()?.to_ascii_lowercase().into(),
                sent_by: None,
            },
        })
    }

    /// The client transaction an ICMP error's quote of our datagram belongs to (RFC 3261
    /// §18.4): the kernel hands back the start of what we sent, often cut short, so only
    /// whole lines are read. `Quoted::Other` for a quoted response or ACK (no client
    /// transaction sent it); `Quoted::Unreadable` when no whole top Via with a branch is in
    /// the quote (an empty quote, or one cut before the Via).
    pub(crate) fn client_for_quote(data: &[u8]) -> Quoted {
        let start = data
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(data.len());
        let mut lines = data[start..].split(|&b| b == b'\n');
        let Some(first) = lines.next() else {
            return Quoted::Unreadable;
        };
        if first.len() >= 4 && first[..4].eq_ignore_ascii_case(b"SIP/") {
            return Quoted::Other;
        }
        let Some(method) = first
            .split(|&b| b == b' ')
            .next()
            .and_then(|w| std::str::from_utf8(w).ok())
            .filter(|w| !w.is_empty())
            .map(Method::from_token)
        else {
            return Quoted::Unreadable;
        };
        if method == Method::Ack {
            return Quoted::Other;
        }
        // Every line but the last ended with LF, so it is whole; the last may be cut.
        let whole: Vec<&[u8]> = lines.collect();
        let n = whole.len().saturating_sub(1);
        for line in &whole[..n] {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = line[..colon].trim_ascii();
            if !(name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")) {
                continue;
            }
            let Ok(value) = std::str::from_utf8(&line[colon + 1..]) else {
                return Quoted::Unreadable;
            };
            let via = crate::sip::typed::split_values(value)
                .next()
                .and_then(crate::sip::Via::parse);
            return match via {
                Some(v) if v.has_rfc3261_branch() => Quoted::Request(TransactionKey {
                    role: Role::Client,
                    method,
                    id: KeyId::Branch {
                        branch: v.branch().unwrap_or_default().to_ascii_lowercase().into(),
                        sent_by: None,
                    },
                }),
                _ => Quoted::Unreadable,
            };
        }
        Quoted::Unreadable
    }

    /// §17.2.3: the server key of a received request, ACK folded into INVITE.
    pub(crate) fn server_for_request(req: &Request) -> Result<TransactionKey, TransactionError> {
        let via = req
            .headers
            .top_via()
            .ok_or(TransactionError::Malformed("Via"))?;
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        let sent_by = via.sent_by().to_ascii_lowercase();
        let id = if via.has_rfc3261_branch() {
            KeyId::Branch {
                branch: via.branch().unwrap_or_default().to_ascii_lowercase().into(),
                sent_by: Some(sent_by.into()),
            }
        } else {
            let call_id = req
                .headers
                .call_id()
                .ok_or(TransactionError::Malformed("Call-ID"))?;
            let cseq = req
                .headers
                .cseq()
                .ok_or(TransactionError::Malformed("CSeq"))?;
            KeyId::Rfc2543(Box::new(Rfc2543Id {
                request_uri: req.uri.clone(),
                to_tag: req.headers.to_tag(),
                from_tag: req.headers.from_tag(),
                call_id: call_id.to_string(),
                cseq: cseq.seq,
                sent_by,
            }))
        };
        Ok(TransactionKey {
            role: Role::Server,
            method,
            id,
        })
    }

    /// The same key for another method: a CANCEL's key with `Invite` is the key of the
    /// INVITE it cancels (§9.2: same branch, or same 2543 fields, CSeq number alike).
    pub(crate) fn with_method(&self, method: Method) -> TransactionKey {
        TransactionKey {
            method,
            ..self.clone()
        }
    }

    /// An RFC 2543 key with another To tag: the ACK carries the tag of the server's final
    /// response, which the INVITE that created the transaction did not have (§17.2.3).
    /// `None` for RFC 3261 keys, where the tag plays no part.
    pub(crate) fn with_to_tag(&self, tag: Option<String>) -> Option<TransactionKey> {
        match &self.id {
            KeyId::Rfc2543(id) => Some(TransactionKey {
                id: KeyId::Rfc2543(Box::new(Rfc2543Id {
                    to_tag: tag,
                    ..(**id).clone()
                })),
                ..self.clone()
            }),
            KeyId::Branch { .. } => None,
        }
    }

    /// The To tag an RFC 2543 key was built with.
    pub(crate) fn rfc2543_to_tag(&self) -> Option<&str> {
        match &self.id {
            KeyId::Rfc2543(id) => id.to_tag.as_deref(),
            KeyId::Branch { .. } => None,
        }
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Client => "client",
            Role::Server => "server",
        };
        match &self.id {
            KeyId::Branch { branch, .. } => write!(f, "{role}/{}/{branch}", self.method),
            KeyId::Rfc2543(id) => write!(
                f,
                "{role}/{}/2543:{}:{}:{}",
                self.method, id.call_id, id.cseq, id.sent_by
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;

    fn req(text: &str) -> Request {
        match parse_datagram(text.as_bytes()).unwrap() {
            crate::sip::Message::Request(r) => r,
            _ => panic!("not a request"),
        }
    }

    const HEAD: &str = "Max-Forwards: 70\r\nTo: <sip:b@b>\r\nFrom: <sip:a@a>;tag=f\r\n\
Call-ID: c1\r\n";

    #[test]
    fn ack_folds_into_invite_and_cancel_finds_it() {
        let via = "Via: SIP/2.0/UDP a.example:5060;branch=z9hG4bKAbC\r\n";
        let inv = req(&format!(
            "INVITE sip:b@b SIP/2.0\r\n{via}{HEAD}CSeq: 1 INVITE\r\n\r\n"
        ));
        let ack = req(&format!(
            "ACK sip:b@b SIP/2.0\r\n{via}{HEAD}CSeq: 1 ACK\r\n\r\n"
        ));
        let cancel = req(&format!(
            "CANCEL sip:b@b SIP/2.0\r\n{via}{HEAD}CSeq: 1 CANCEL\r\n\r\n"
        ));
        let k = TransactionKey::server_for_request(&inv).unwrap();
        assert_eq!(TransactionKey::server_for_request(&ack).unwrap(), k);
        let c = TransactionKey::server_for_request(&cancel).unwrap();
        assert_ne!(c, k);
        assert_eq!(c.with_method(Method::Invite), k);
        assert_eq!(k.branch(), Some("z9hg4bkabc"));
        assert_ne!(TransactionKey::client_for_request(&inv).unwrap(), k);
    }

    #[test]
    fn rfc2543_fallback_uses_dialog_fields() {
        let inv = req(&format!(
            "INVITE sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP old.example\r\n{HEAD}CSeq: 7 INVITE\r\n\r\n"
        ));
        let k = TransactionKey::server_for_request(&inv).unwrap();
        assert!(k.is_rfc2543());
        assert_eq!(
            k.with_to_tag(Some("x".into())).unwrap().rfc2543_to_tag(),
            Some("x")
        );
        let other = req(&format!(
            "INVITE sip:b@b SIP/2.0\r\nVia: SIP/2.0/UDP old.example\r\n{HEAD}CSeq: 8 INVITE\r\n\r\n"
        ));
        assert_ne!(TransactionKey::server_for_request(&other).unwrap(), k);
        assert!(matches!(
            TransactionKey::client_for_request(&inv),
            Err(TransactionError::MissingBranch)
        ));
    }
}
