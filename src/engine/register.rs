//! REGISTER in the engine: domain and AOR checks (only our own hosts, before any digest
//! work), digest authentication, then the sans-IO
//! registrar (`crate::registrar`) and the 200 listing every binding with its expiry and a
//! Date header, as the seed's FreeSWITCH does.

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
            return self.response(req, 400, "Bad Request - Malformed Contact");
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
                resp.headers.push(HeaderName::Date, sip_date(wall));
                resp.headers.push(HeaderName::Allow, ALLOW);
                if !SUPPORTED.is_empty() {
                    resp.headers.push(HeaderName::Supported, SUPPORTED);
                }
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
        Some(RegisterRequest {
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
