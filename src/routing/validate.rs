//! Cross-checks of a dialplan against the users and gateways it routes to (what `check-config`
//! reports): literal users and gateways exist, the public context never reaches a gateway, no
//! rule hides behind a catch-all, and the users' own contexts and forwards lead somewhere.
//!
//! Only reports; never changes the dialplan or the users.

use super::dialplan::{invalid, line_key, Action, Dialplan, Rule};
use super::{Target, DEFAULT_CONTEXT, PUBLIC_CONTEXT};
use crate::config::{ConfigError, GatewayConfig, User, Users};
use regex::Regex;
use std::collections::BTreeMap;

/// Numbers a catch-all matches (all of them, except perhaps the empty one): an extension, a
/// service code, an E.164 number, letters, a one-character number.
const PROBES: &[&str] = &[
    "",
    "x",
    "0",
    "+1",
    "*97",
    "1000",
    "#",
    "15551230000",
    "+445550100",
    "alice",
    "9",
];

/// Whether `re` takes every number, so that rules after it can never match.
pub(super) fn is_catch_all(re: &Regex) -> bool {
    PROBES.iter().all(|p| p.is_empty() || re.is_match(p))
}

impl Dialplan {
    /// Cross-checks against the users and gateway names: literal user targets exist, gateways
    /// exist, no gateway action in the public context (toll fraud), no rule after a catch-all
    /// in a context, forward_* of users are non-empty (and lead somewhere).
    pub fn validate(&self, users: &Users, gateways: &[GatewayConfig]) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut catch_all: BTreeMap<&str, &Rule> = BTreeMap::new();
        for (context, rule) in self.rules() {
            let err = |sub: &str, msg: String| invalid(&self.file, rule.line, &rule.key, sub, msg);
            if let Some(first) = catch_all.get(context) {
                errors.push(err(
                    "match",
                    format!(
                        "unreachable (rule {:?} at line {} is a catch-all)",
                        first.display_name(),
                        first.line
                    ),
                ));
            } else if is_catch_all(&rule.regex) {
                catch_all.insert(context, rule);
            }
            let err =
                |sub: &str, msg: String| invalid(&self.file, rule.action_line, &rule.key, sub, msg);
            match &rule.action {
                Action::User(t) => {
                    if let Some(u) = t.literal().filter(|u| users.get(u).is_none()) {
                        errors.push(err("to.user", no_such_user(&u)));
                    }
                }
                Action::Group { members, .. } => {
                    for (i, m) in members.iter().enumerate() {
                        if let Some(u) = m.literal().filter(|u| users.get(u).is_none()) {
                            errors.push(err(&format!("to.group[{i}]"), no_such_user(&u)));
                        }
                    }
                }
                Action::Gateway { gateway, .. } => {
                    if context == PUBLIC_CONTEXT {
                        errors.push(err(
                            "to.gateway",
                            "the public context must not reach a gateway (unauthenticated \
                             callers would dial out through it)"
                                .into(),
                        ));
                    }
                    if !gateways.iter().any(|g| &g.name == gateway) {
                        let known: Vec<&str> = gateways.iter().map(|g| g.name.as_str()).collect();
                        let known = if known.is_empty() {
                            "there are none".to_string()
                        } else {
                            format!("known: {}", known.join(", "))
                        };
                        errors.push(err(
                            "to.gateway",
                            format!("no [[gateway]] named {gateway:?} in the config ({known})"),
                        ));
                    }
                }
                Action::Redirect(_) | Action::Reject { .. } => {}
            }
        }
        errors.extend(self.missing_contexts(users));
        errors.sort_by_key(line_key);
        for u in users.iter() {
            errors.extend(self.check_forwards(u, users));
        }
        errors
    }

    /// A context our users call from that the file does not define: all their calls would
    /// get 404. One error per context, naming the first such user.
    fn missing_contexts(&self, users: &Users) -> Vec<ConfigError> {
        let mut missing: BTreeMap<&str, (usize, &User)> = BTreeMap::new();
        for u in users.iter() {
            let c = u.context.as_deref().unwrap_or(DEFAULT_CONTEXT);
            if !self.has_context(c) {
                missing.entry(c).or_insert((0, u)).0 += 1;
            }
        }
        missing
            .into_iter()
            .map(|(c, (n, first))| ConfigError::Invalid {
                file: self.file.clone(),
                line: None,
                key: format!("context.{c}"),
                message: format!(
                    "no such context, but {n} user{} call from it (the first: {:?} at {}:{}); \
                     every call of theirs would get 404",
                    if n == 1 { "" } else { "s" },
                    first.id,
                    first.file.display(),
                    first.line
                ),
            })
            .collect()
    }

    /// A user's forward_* must be a number that its context routes somewhere real.
    fn check_forwards(&self, u: &User, users: &Users) -> Vec<ConfigError> {
        let context = u.context.as_deref().unwrap_or(DEFAULT_CONTEXT);
        let mut out = Vec::new();
        for (key, value) in [
            ("forward_all", &u.forward_all),
            ("forward_busy", &u.forward_busy),
            ("forward_no_answer", &u.forward_no_answer),
        ] {
            let Some(number) = value else { continue };
            let err = |message: String| ConfigError::Invalid {
                file: u.file.clone(),
                line: Some(u.line),
                key: format!("user {:?} {key}", u.id),
                message,
            };
            if number.trim().is_empty() {
                out.push(err("is empty (leave it out for no forwarding)".into()));
                continue;
            }
            let d = self.route(context, number);
            let how = match &d.rule {
                Some(r) => format!("(context {context:?}, {r})"),
                None => format!("(context {context:?})"),
            };
            match &d.target {
                Target::NoMatch => out.push(err(format!(
                    "{number:?} matches no rule of context {context:?}: the forward would get 404"
                ))),
                Target::User(t) if t == &u.id && key == "forward_all" => out.push(err(format!(
                    "{number:?} leads back to {:?} {how}: a forwarding loop",
                    u.id
                ))),
                Target::User(t) if users.get(t).is_none() => out.push(err(format!(
                    "{number:?} leads to {} {how}",
                    no_such_user(t)
                ))),
                _ => {}
            }
        }
        out
    }
}

fn no_such_user(id: &str) -> String {
    format!("no such user {id:?} in the users directory")
}
