//! Routing, the engine's part: the dialplan's decision for a dialled number in a context,
//! turned into a `b2bua::Route` with what only the engine knows — which users exist and are
//! enabled, where they are registered now, their forwarding, and where each trunk is.
//!
//! Toll-fraud rules live here as well as in the dialplan's validation: a call running in the
//! `public` context (trunks, unauthenticated callers) never reaches a gateway, whatever the
//! dialplan says, and forwarding runs in the forwarding user's own context.

use super::gateways::{GatewaySpec, Gateways};
use super::Engine;
use crate::b2bua::{CallerId, LegTarget, Lookup, Next, Plan, Query, Route, MAX_HOPS};
use crate::cdr::Party;
use crate::config::Users;
use crate::registrar::LocationStore;
use crate::routing::Dialplan;
use crate::routing::{Decision, Strategy, Target, DEFAULT_CONTEXT, PUBLIC_CONTEXT};
use std::time::Instant;

/// What routing reads: borrowed from the engine's fields, so the call core can be handed a
/// router (a transfer's Refer-To) while the engine lends it the core mutably.
pub(super) struct RoutingView<'a> {
    pub dialplan: &'a Dialplan,
    pub users: &'a Users,
    pub store: &'a dyn LocationStore,
    pub gateways: &'a Gateways,
}

impl Engine {
    pub(super) fn routing(&self) -> RoutingView<'_> {
        RoutingView {
            dialplan: &self.dialplan,
            users: &self.users,
            store: &*self.store,
            gateways: &self.gateways,
        }
    }

    /// The route of a new call: `number` run through `context`.
    pub(super) fn route_call(
        &self,
        now: Instant,
        context: &str,
        number: &str,
        realm: &str,
    ) -> Route {
        self.routing().route_dial(now, context, number, realm, 0)
    }

    /// The answer to the call core's `Command::Route`.
    pub(super) fn route_lookup(&self, now: Instant, l: &Lookup) -> Route {
        let realm = l.domain.as_str();
        let view = self.routing();
        match &l.query {
            Query::User(user) => view.route_user(now, user, realm, l.hops, None),
            Query::Dial { context, number } => view.route_dial(now, context, number, realm, l.hops),
        }
    }

    /// Whether a request comes from one of our trunks: from a gateway's resolved address and
    /// port, or addressed to the Contact we register with it (its user part is the account).
    /// Such a call runs in `public`; the number is To's user when it came to our Contact.
    pub(super) fn trunk_of(
        &self,
        source: Option<std::net::SocketAddr>,
        ruri_user: Option<&str>,
    ) -> Option<&GatewaySpec> {
        self.gateways.recognise(source, ruri_user)
    }
}

impl RoutingView<'_> {
    /// The context a transfer by `user` runs in: an enabled user's own (or `default`).
    /// Anything else (a trunk's number, a group number, a name that is no user of ours)
    /// gets `public`, which never reaches a gateway: a transfer is never routed with
    /// privileges nobody proved.
    pub fn context_of(&self, user: &str) -> &str {
        match self.users.get(user).filter(|u| u.enabled) {
            Some(u) => u.context.as_deref().unwrap_or(DEFAULT_CONTEXT),
            None => PUBLIC_CONTEXT,
        }
    }

    pub fn route_dial(
        &self,
        now: Instant,
        context: &str,
        number: &str,
        realm: &str,
        hops: u8,
    ) -> Route {
        let d: Decision = self.dialplan.route(context, number);
        let rule = d.rule.as_ref().map(|r| r.name.as_str()).unwrap_or("-");
        tracing::debug!(target: "ferroswitch::routing", context, number = %crate::security::log_escape(number), rule, target = ?d.target, "routed");
        let caller_id = d.caller_id.map(|c| CallerId {
            number: c.number,
            name: c.name,
        });
        let callee = |user: &str| Party {
            user: user.to_string(),
            display_name: None,
        };
        match d.target {
            Target::NoMatch => Route::NoSuchUser {
                user: number.to_string(),
            },
            Target::User(user) => self.route_user(now, &user, realm, hops, caller_id),
            Target::Group {
                members,
                strategy,
                timeout,
            } => {
                let mut plan = Plan {
                    callee: callee(number),
                    legs: Vec::new(),
                    timeout: Some(timeout),
                    next: Vec::new(),
                    caller_id,
                    empty_status: 480,
                };
                match strategy {
                    Strategy::Parallel => {
                        for m in &members {
                            plan.legs.extend(self.user_legs(now, m, realm));
                        }
                    }
                    Strategy::Sequential => {
                        let mut it = members.iter();
                        if let Some(first) = it.next() {
                            plan.legs = self.user_legs(now, first, realm);
                        }
                        plan.next = it
                            .map(|m| Next::Member {
                                user: m.clone(),
                                timeout,
                            })
                            .collect();
                    }
                }
                Route::Plan(Box::new(plan))
            }
            Target::Gateway {
                gateway,
                number: out,
            } => {
                if context == PUBLIC_CONTEXT {
                    // Never, whatever the dialplan says: an unauthenticated caller dialling
                    // out through our account is toll fraud.
                    tracing::warn!(target: "ferroswitch::routing", gateway = %gateway, number = %crate::security::log_escape(number), "public context reached a gateway: refused");
                    return Route::Reject {
                        callee: callee(number),
                        status: 403,
                        reason: None,
                    };
                }
                match self.gateways.leg(&gateway, &out) {
                    Some(leg) => Route::Plan(Box::new(Plan {
                        callee: callee(&out),
                        legs: vec![leg],
                        timeout: None,
                        next: Vec::new(),
                        caller_id,
                        empty_status: 503,
                    })),
                    None => {
                        tracing::warn!(target: "ferroswitch::routing", gateway = %gateway, "gateway unavailable");
                        Route::Reject {
                            callee: callee(&out),
                            status: 503,
                            reason: Some("Gateway Unavailable".into()),
                        }
                    }
                }
            }
            Target::Redirect { contact } => Route::Redirect {
                callee: callee(number),
                contact,
            },
            Target::Reject { status, reason } => Route::Reject {
                callee: callee(number),
                status,
                reason,
            },
        }
    }

    /// A user of ours: its contacts now, after its unconditional forwarding, with forwarding
    /// on busy and on no answer following.
    fn route_user(
        &self,
        now: Instant,
        user: &str,
        realm: &str,
        hops: u8,
        caller_id: Option<CallerId>,
    ) -> Route {
        let Some(u) = self.users.get(user).filter(|u| u.enabled) else {
            return Route::NoSuchUser {
                user: user.to_string(),
            };
        };
        let callee = Party {
            user: u.id.clone(),
            display_name: u.display_name.clone(),
        };
        let context = u.context.as_deref().unwrap_or(DEFAULT_CONTEXT);
        if let Some(to) = u.forward_all.as_deref().filter(|s| !s.is_empty()) {
            if hops >= MAX_HOPS {
                tracing::info!(target: "ferroswitch::routing", user, "forwarding loop: refused");
                return Route::Reject {
                    callee,
                    status: 482,
                    reason: None,
                };
            }
            tracing::info!(target: "ferroswitch::routing", user, to = %crate::security::log_escape(to), "forward_all");
            return self.route_dial(now, context, to, realm, hops + 1);
        }
        let bindings = self.store.lookup(&format!("{user}@{realm}"), now);
        let mut next = Vec::new();
        if let Some(n) = u.forward_busy.as_deref().filter(|s| !s.is_empty()) {
            next.push(Next::OnBusy {
                number: n.to_string(),
                context: context.to_string(),
            });
        }
        let mut timeout = None;
        if let Some(n) = u.forward_no_answer.as_deref().filter(|s| !s.is_empty()) {
            next.push(Next::OnNoAnswer {
                number: n.to_string(),
                context: context.to_string(),
            });
            timeout = u.no_answer_timeout;
        }
        if next.is_empty() && caller_id.is_none() {
            return Route::User { callee, bindings };
        }
        Route::Plan(Box::new(Plan {
            callee,
            legs: bindings
                .iter()
                .map(|b| LegTarget::of_user(b, user))
                .collect(),
            timeout,
            next,
            caller_id,
            empty_status: 480,
        }))
    }

    /// The contacts of an enabled user (a group member; no forwarding of its own).
    fn user_legs(&self, now: Instant, user: &str, realm: &str) -> Vec<LegTarget> {
        if !self.users.get(user).is_some_and(|u| u.enabled) {
            return Vec::new();
        }
        self.store
            .lookup(&format!("{user}@{realm}"), now)
            .iter()
            .map(|b| LegTarget::of_user(b, user))
            .collect()
    }
}
