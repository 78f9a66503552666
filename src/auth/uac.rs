//! PLACEHOLDER (replaced by the gwclient branch): answering challenges as a UAC.
use super::challenge::{parse_challenges, Challenge};
use super::credentials::{Answer, DigestCredentials};
use crate::sip::{HeaderName, Request, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UacCredentials {
    pub username: String,
    pub password: String,
    pub realm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacAuthError {
    NoChallenge,
    Rejected,
}

impl std::fmt::Display for UacAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Debug, Default, Clone)]
pub struct UacAuth {
    nonce: Option<String>,
    nc: u32,
}

impl UacAuth {
    pub fn answer(
        &mut self,
        creds: &UacCredentials,
        challenged: &Request,
        resp: &Response,
        cnonce: &str,
    ) -> Result<(HeaderName, String), UacAuthError> {
        let (hdr, out) = if resp.status == 407 {
            (
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            )
        } else {
            (HeaderName::WwwAuthenticate, HeaderName::Authorization)
        };
        let ch = resp
            .headers
            .get_all(&hdr)
            .filter_map(|v| v.value_str().and_then(|s| parse_challenges(s).ok()))
            .flatten()
            .find_map(|c| match c {
                Challenge::Digest(d) => Some(d),
                Challenge::Other(_) => None,
            })
            .ok_or(UacAuthError::NoChallenge)?;
        if self.nonce.as_deref() == Some(&ch.nonce) && !ch.stale {
            return Err(UacAuthError::Rejected);
        }
        self.nonce = Some(ch.nonce.clone());
        self.nc = 1;
        let uri = challenged.uri_str().unwrap_or_default().to_string();
        let c = DigestCredentials::answer(
            &ch,
            &Answer {
                username: &creds.username,
                password: &creds.password,
                method: challenged.method.as_str(),
                uri: &uri,
                body: &challenged.body,
                cnonce,
                nc: self.nc,
            },
        );
        Ok((out, c.to_string()))
    }
}

pub fn retry(challenged: &Request, header: (HeaderName, String), branch: &str) -> Request {
    let mut r = challenged.clone();
    let via = r
        .headers
        .get(&HeaderName::Via)
        .and_then(|v| v.value_str())
        .map(|v| v.split(";branch=").next().unwrap_or(v).to_string());
    if let Some(v) = via {
        r.headers
            .set(HeaderName::Via, format!("{v};branch={branch}"));
    }
    let seq = r.headers.cseq().map(|c| c.seq).unwrap_or(1);
    r.headers.set(
        HeaderName::CSeq,
        format!("{} {}", seq + 1, r.method.as_str()),
    );
    r.headers.remove(&header.0);
    r.headers.push(header.0, header.1);
    r
}
