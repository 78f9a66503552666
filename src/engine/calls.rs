//! New calls and MESSAGEs, the engine's part: the admission verdict (taken before the
//! transaction layer, or now for a request that reached it another way), the routing (the
//! users directory and the location store, only after admission, so an unauthenticated
//! caller learns nothing about which users exist), where the request arrived, and the hand
//! over to the call core (`b2bua`), which does the rest.

use super::{Engine, Handled};
use crate::b2bua::{Admitted, Arrival, Route};
use crate::cdr::Party;
use crate::net::Peer;
use crate::sip::{Method, Request};
use crate::transaction::TransactionKey;
use std::time::{Instant, SystemTime};

impl Engine {
    /// An out-of-dialog INVITE or MESSAGE on server transaction `key`.
    pub(super) fn new_call_or_message(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: TransactionKey,
        req: Request,
        from: Peer,
        handled: Option<Handled>,
    ) {
        let (origin, admitted) = match handled {
            Some(h) => (Some(h.origin), h.admitted),
            None => (None, None),
        };
        let adm = match admitted.map_or_else(|| self.admit(now, wall, &req), Ok) {
            Ok(a) => a,
            Err(refusal) => {
                let resp = self.refusal_response(wall, &req, refusal);
                return self.send_response(now, &key, resp);
            }
        };
        let route = self.route(now, &adm, req.method == Method::Message);
        let arrival = Arrival {
            from,
            local: origin.map_or(from.addr, |o| o.local),
            transport: origin.map_or(from.transport, |o| o.transport),
            limited_source: origin
                .map(|o| o.source.ip())
                .filter(|ip| !self.guard.is_allow_listed(*ip))
                // A trunk carries many callers: its calls are not counted per source.
                .filter(|_| adm.trunk.is_none()),
        };
        if req.method == Method::Message {
            self.b2bua
                .handle_message(now, key, req, arrival, adm, route);
        } else {
            let traced = self.trace.is_on().then(|| {
                let call_id = req.headers.call_id().unwrap_or_default().to_string();
                (key.clone(), call_id)
            });
            self.b2bua
                .handle_invite(now, wall, key, req, arrival, adm, route);
            if let Some((key, call_id)) = traced {
                self.trace_call_started(&key, &call_id);
            }
        }
    }
}

impl Engine {
    /// Where the call goes: the dialled number through the caller's context of the dialplan
    /// (`routing`); a MESSAGE goes to the user the Request-URI names.
    fn route(&self, now: Instant, adm: &Admitted, message: bool) -> Route {
        if message {
            let user = adm.ruri.user().unwrap_or_default();
            let Some(u) = self.users.get(user).filter(|u| u.enabled) else {
                return Route::NoSuchUser {
                    user: user.to_string(),
                };
            };
            let bindings = self.store.lookup(&format!("{user}@{}", adm.realm), now);
            return Route::User {
                callee: Party {
                    user: u.id.clone(),
                    display_name: u.display_name.clone(),
                },
                bindings,
            };
        }
        self.route_call(now, &adm.context, &adm.number, &adm.realm)
    }
}
