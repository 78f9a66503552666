//! Building the engine's own responses: RFC 3261 §8.2.6 copying, a To tag, and the headers
//! every response of ours carries (Server, Allow/Supported where they inform the peer).
//!
//! Stateless responses get a To tag derived from the request (`Engine::stateless_tag`), so a
//! retransmitted request gets the same answer (§8.2.7: a stateless UAS "MUST ... generate
//! the same tag for the same request"); nothing is remembered for it.

use super::Engine;
use crate::b2bua::respond::{push_user_agent, response_with, ACCEPT, ALLOW, SUPPORTED};
use crate::sip::{set_to_tag, HeaderName, Request, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The per-run key of `Engine::stateless_tag`: random, so tags cannot be predicted from the
/// request alone (they must be unique, and a peer should not be able to pick ours).
#[derive(Clone)]
pub(super) struct TagKey([u8; 32]);

impl TagKey {
    /// A fresh key from the operating system's CSPRNG.
    pub(super) fn random() -> TagKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        TagKey(k)
    }

    /// A key drawn from `rng` (tests and the fuzz harness: deterministic per seed).
    pub(super) fn from_rng(rng: &mut impl RngCore) -> TagKey {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        TagKey(
            Sha256::new()
                .chain_update(b"ferroswitch stateless tag")
                .chain_update(k)
                .finalize()
                .into(),
        )
    }
}

impl std::fmt::Debug for TagKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TagKey(..)")
    }
}

impl Engine {
    /// The To tag of every stateless response to `req`: a keyed hash of its Call-ID, From
    /// tag, top Via branch and CSeq (which also tells apart RFC 2543 requests that carry no
    /// branch), as 16 lower-case hex digits like every tag we mint (`new_tag_with` says why).
    /// The same request, retransmitted, gets the same tag; another branch another one. Reads
    /// raw values where they do not parse: a malformed request is answered too.
    pub fn stateless_tag(&self, req: &Request) -> String {
        let h = &req.headers;
        let raw = |n: &HeaderName| h.get(n).map(|x| x.value.to_vec()).unwrap_or_default();
        let from_tag = h.from_tag().map(String::into_bytes);
        let branch = h
            .top_via()
            .and_then(|v| v.branch().map(|b| b.as_bytes().to_vec()));
        let mut hash = Sha256::new().chain_update(self.tag_key.0);
        for part in [
            raw(&HeaderName::CallId),
            from_tag.unwrap_or_else(|| raw(&HeaderName::From)),
            branch.unwrap_or_else(|| raw(&HeaderName::Via)),
            raw(&HeaderName::CSeq),
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(&part);
        }
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        format!("{:016x}", u64::from_be_bytes(first))
    }

    /// Puts the stateless tag on a response built for `req` (replacing a random one a shared
    /// builder put there), unless the request's To already had a tag, which stays (§8.2.6.2).
    pub(super) fn use_stateless_tag(&self, req: &Request, resp: &mut Response) {
        if resp.status <= 100 || req.headers.to_tag().is_some() {
            return;
        }
        let Some(to) = req.headers.get(&HeaderName::To) else {
            return;
        };
        if let Some(h) = resp.headers.first_mut(&HeaderName::To) {
            h.value = to.value.clone();
        }
        set_to_tag(resp, &self.stateless_tag(req));
    }

    /// A response to `req` with a To tag (except 100, §8.2.6.2) and our Server header.
    pub(super) fn response(&mut self, req: &Request, code: u16, phrase: &str) -> Response {
        response_with(&mut self.rng, &self.cfg.user_agent, req, code, phrase)
    }

    pub(super) fn finish_response(&self, resp: &mut Response) {
        push_user_agent(&mut resp.headers, HeaderName::Server, &self.cfg.user_agent);
    }

    /// OPTIONS to the server: 200 with what we can do (phones and monitors use it as a
    /// keep-alive, RFC 3261 §11.2).
    pub(super) fn options_response(&mut self, req: &Request) -> Response {
        let mut r = self.response(req, 200, "OK");
        r.headers.push(HeaderName::Allow, ALLOW);
        r.headers.push(HeaderName::Accept, ACCEPT);
        if !SUPPORTED.is_empty() {
            r.headers.push(HeaderName::Supported, SUPPORTED);
        }
        r
    }
}
