//! REGISTER in the engine: domain and AOR checks (only our own hosts, before any digest
//! work), digest authentication, then the sans-IO
//! registrar (`crate::registrar`) and the 200 listing every binding with its expiry and a
//! Date header, as the seed's FreeSWITCH does.
//!
//! RFC 3327 Path. A Path header lets whoever sends the REGISTER choose where calls to that
//! user are sent, so it is honoured only on REGISTERs whose source is a trusted edge proxy
//! (`[registrar] trusted_proxies`). From anyone else it is ignored and logged at debug, not
//! refused: RFC 3327 gives a registrar no status code that would tell a phone what to fix
//! (420 is for a `Require: path` it does not support, and it does support it), refusing would
//! cost the phone its registration, and ignoring the Path leaves routing exactly as it is for
//! a phone registered directly: to the REGISTER's source or Contact, which the
//! `contact_allow`/`contact_deny` rules already judge.
//! The Path is stored with every binding the REGISTER adds or refreshes. The 200 echoes it
//! only when the REGISTER listed `path` in Supported (RFC 3327 §5.3): RFC 3261 §8.2.2.3
//! forbids a UAS to apply an extension in a response unless the request said it supports
//! it. Without `Supported: path` the Path is still stored and used, as Kamailio's registrar
//! does in `path_mode` 1 ("lazy"); refusing with 420 (its "strict" mode) would lock out the
//! many phones that never send `Supported: path`, though the edge proxy added the Path for
//! them. `Require: path` is accepted (the extension is implemented).

use super::auth::{AuthKind, AuthVerdict};
use super::Engine;
use crate::b2bua::{ALLOW, SUPPORTED};
use crate::clock::sip_date;
use crate::net::Peer;
use crate::registrar::{
    self, canonical_host, ContactSpec, Contacts, RegisterOutcome, RegisterRequest,
};
use crate::sip::name_addr::Contact;
use crate::sip::validate::validate_register;
use crate::sip::{HeaderName, Request, Response};
use std::time::{Instant, SystemTime};

/// Seconds a phone is asked to wait when the location store cannot take writes: long enough
/// not to hammer a node whose Redis is restarting, short enough to be back soon after.
const STORE_RETRY_AFTER: u32 = 5;

impl Engine {
    pub(super) fn handle_register(
        &mut self,
        now: Instant,
        wall: SystemTime,
        req: &Request,
        from: Peer,
    ) -> Response {
        if let Err(rej) = validate_register(req) {
            let phrase = rej.reason_phrase();
            return self.response(req, rej.status(), &phrase);
        }
        let (Ok(to), Ok(ruri)) = (req.headers.to(), req.request_uri()) else {
            return self.response(req, 400, "Bad Request - Malformed To or Request-URI");
        };
        let realm = match &self.cfg.domain {
            Some(d) => d.clone(),
            // Issue 17.3: only our own hosts are realms (else every host would be a new
            // address-of-record), refused statelessly before any authentication work.
            None if self.serves_host(ruri.host()) => canonical_host(ruri.host()),
            None => return self.response(req, 403, "Forbidden - Domain Not Served"),
        };
        if canonical_host(to.uri.host()) != canonical_host(&realm) {
            return self.response(req, 403, "Forbidden - Domain Not Served");
        }
        let Some(user) = to.uri.user().map(str::to_string) else {
            return self.response(req, 400, "Bad Request - No User in To");
        };
        match self.authenticate(now, wall, req, &realm, AuthKind::Www) {
            AuthVerdict::Ok(auth_user) if auth_user == user => {}
            // Authenticated as someone else: nobody registers another user's phone.
            AuthVerdict::Ok(_) | AuthVerdict::Forbidden => {
                return self.response(req, 403, "Forbidden")
            }
            AuthVerdict::Challenge { stale } => {
                return self.challenge(wall, req, &realm, AuthKind::Www, stale)
            }
            AuthVerdict::BadRequest => {
                return self.response(req, 400, "Bad Request - Malformed Credentials")
            }
        }

        let Some(rreq) = self.register_request(req, format!("{user}@{realm}"), from) else {
            return self.response(req, 400, "Bad Request - Malformed Contact or Path");
        };
        let outcome = registrar::process(&self.cfg.registrar, &*self.store, &rreq, now);
        match outcome {
            RegisterOutcome::Ok(bindings) => {
                let removed = matches!(rreq.contacts, Contacts::Star)
                    || matches!(&rreq.contacts, Contacts::List(l) if !l.is_empty())
                        && bindings.is_empty();
                if removed {
                    self.stats.unregistrations += 1;
                } else {
                    self.stats.registrations += 1;
                }
                tracing::info!(
                    target: "ferroswitch::registrar",
                    "registered aor={} bindings={} source={} contacts=[{}]",
                    crate::security::log_escape(&rreq.aor),
                    bindings.len(),
                    rreq.source,
                    bindings.iter().map(|b| crate::security::log_escape(&b.contact).to_string()).collect::<Vec<_>>().join(", ")
                );
                self.keepalive_registered(&rreq.aor, &bindings, now);
                let mut resp = self.response(req, 200, "OK");
                for v in registrar::register::contact_values(&bindings, now) {
                    resp.headers.push(HeaderName::Contact, v);
                }
                if !rreq.path.is_empty() && ua_supports_path(req) {
                    for v in &rreq.path {
                        resp.headers.push(path_header(), v.clone());
                    }
                }
                resp.headers.push(HeaderName::Date, sip_date(wall));
                resp.headers.push(HeaderName::Allow, ALLOW);
                resp.headers
                    .push(HeaderName::Supported, format!("{SUPPORTED}, path"));
                resp
            }
            RegisterOutcome::IntervalTooBrief(min) => {
                let mut resp = self.response(req, 423, "Interval Too Brief");
                resp.headers.push(HeaderName::MinExpires, min.to_string());
                resp
            }
            RegisterOutcome::BadRequest(phrase) => self.response(req, 400, phrase),
            RegisterOutcome::OutOfOrder => {
                self.response(req, 500, "Server Internal Error - CSeq Out of Order")
            }
            RegisterOutcome::TooManyBindings => {
                self.response(req, 403, "Forbidden - Too Many Contacts")
            }
            RegisterOutcome::ContactForbidden => {
                tracing::warn!(
                    target: "ferroswitch::registrar",
                    "contact refused aor={} source={}", rreq.aor, rreq.source
                );
                self.response(req, 403, "Forbidden - Contact Not Allowed")
            }
            RegisterOutcome::StoreUnavailable => {
                // Logged by the store once when it went down, not here per REGISTER.
                let mut resp = self.response(
                    req,
                    500,
                    "Server Internal Error - Location Store Unavailable",
                );
                resp.headers
                    .push(HeaderName::RetryAfter, STORE_RETRY_AFTER.to_string());
                resp
            }
        }
    }

    /// The Path values of `req` to store: all of them, in order, when its source is a
    /// trusted proxy; none otherwise (see the module docs). `None` when a trusted proxy sent
    /// a Path that does not parse.
    fn register_path(&self, req: &Request, source: Peer) -> Option<Vec<String>> {
        let mut lines = req
            .headers
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case("Path"))
            .peekable();
        if lines.peek().is_none() {
            return Some(Vec::new());
        }
        if !self.cfg.registrar.is_trusted_proxy(source.addr.ip()) {
            tracing::debug!(
                target: "ferroswitch::registrar",
                source = %source,
                "Path ignored: the REGISTER does not come from a trusted proxy"
            );
            return Some(Vec::new());
        }
        let mut out = Vec::new();
        for h in lines {
            for v in crate::sip::name_addr::split_list(&h.value) {
                crate::sip::NameAddr::parse(v).ok()?;
                out.push(std::str::from_utf8(v).ok()?.trim().to_string());
            }
        }
        Some(out)
    }

    /// Decodes what §10.3 needs; `None` when a Contact cannot be decoded.
    fn register_request(&self, req: &Request, aor: String, from: Peer) -> Option<RegisterRequest> {
        let core = req.headers.core().ok()?;
        let parsed = req.headers.contacts().ok()?;
        let contacts = if parsed.iter().any(|c| matches!(c, Contact::Wildcard)) {
            if parsed.len() > 1 {
                return None;
            }
            Contacts::Star
        } else {
            Contacts::List(
                parsed
                    .iter()
                    .filter_map(Contact::address)
                    .map(|a| {
                        let mut params = a.params.clone();
                        params.remove("expires");
                        ContactSpec {
                            uri: a.uri.as_str().to_string(),
                            host: a.uri.host().to_string(),
                            port: a.uri.port(),
                            expires: a.expires().or_else(|| {
                                // Present but beyond 2^32-1 (RFC 4475 scalar02): saturate.
                                a.params
                                    .get("expires")
                                    .flatten()
                                    .filter(|v| {
                                        !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit())
                                    })
                                    .map(|_| u32::MAX)
                            }),
                            instance: a.params.get("+sip.instance").flatten().map(str::to_string),
                            params: params.to_string(),
                        }
                    })
                    .collect(),
            )
        };
        let origin = self.current;
        let path = self.register_path(req, origin.map_or(from, |o| o.peer()))?;
        Some(RegisterRequest {
            path,
            aor,
            call_id: core.call_id.clone(),
            cseq: core.cseq.seq,
            contacts,
            expires: req.headers.expires(),
            source: origin.map_or(from, |o| o.peer()),
            local: origin.map_or(from.addr, |o| o.local),
            connection: origin.and_then(|o| o.connection).map(|c| c.0),
            via_host: core.via.host.clone(),
            via_port: core.via.port,
            user_agent: req
                .headers
                .get_str(&HeaderName::UserAgent)
                .map(str::to_string),
            advertised: crate::b2bua::advertised(
                origin.map_or(from.addr, |o| o.local),
                req.request_uri()
                    .map(|u| u.host().to_string())
                    .as_deref()
                    .unwrap_or(""),
                from.transport,
            ),
        })
    }
}

/// Option tags a REGISTER may require: ours for calls, and RFC 3327 `path`.
pub(super) const REGISTER_SUPPORTED_TAGS: &[&str] = &["timer", "path"];

/// The RFC 3327 header (not among the names the parser knows by heart).
fn path_header() -> HeaderName {
    HeaderName::Other("Path".into())
}

/// Whether the REGISTER lists `path` in Supported (RFC 3327 §5.3).
fn ua_supports_path(req: &Request) -> bool {
    req.headers
        .tokens(&HeaderName::Supported)
        .any(|t| t.eq_ignore_ascii_case("path"))
}
