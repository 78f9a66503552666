//! Routing: where a call goes. The dialplan (`[server] dialplan = "dialplan.toml"`) holds
//! ordered rules in named contexts, like FreeSWITCH's: the first rule of the caller's context
//! whose regex matches the dialled user part decides the [`Target`] (a user, a group of users
//! rung in parallel or in turn, a gateway with a rewritten number, a 302 redirect or a
//! reject), with captures substituted into it and an optional caller ID rewrite.
//!
//! Calls from our authenticated users run in [`DEFAULT_CONTEXT`] (or the user's own
//! `context`); calls from trunks and other unauthenticated callers run in
//! [`PUBLIC_CONTEXT`], which [`Dialplan::validate`] keeps away from gateways (toll fraud).
//! Without a dialplan file, [`Dialplan::builtin`] routes every number to the user of that
//! name, which is what the switch did before dialplans existed.
//!
//! Sans-IO and clockless: a [`Decision`] says where a call would go; this module never
//! places, rings or rejects anything, and reads no file except in [`Dialplan::load`].

mod dialplan;
mod parse;
mod show;
mod template;
#[cfg(test)]
mod tests;
mod validate;

pub use dialplan::Dialplan;

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The context of calls from our authenticated users (FreeSWITCH's `user_context`
/// default).
pub const DEFAULT_CONTEXT: &str = "default";
/// The context of calls from trunks and other unauthenticated callers: local destinations
/// only.
pub const PUBLIC_CONTEXT: &str = "public";

/// Where a dialled number goes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The context the number was routed in.
    pub context: String,
    /// The rule that matched; `None` for the builtin dialplan and when nothing matched.
    pub rule: Option<RuleRef>,
    pub target: Target,
    /// The caller ID the matching rule sets, if it sets one.
    pub caller_id: Option<CallerId>,
}

impl Decision {
    /// Whether a rule (or the builtin dialplan) took the number.
    pub fn matched(&self) -> bool {
        self.target != Target::NoMatch
    }
}

/// A rule of the dialplan, for logs, CDRs and `ferroswitch route`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// The rule's `name`, else `#<index>` (its index in the context, from 0, as in the
    /// `route[N]` of error messages).
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {:?} ({}:{})",
            self.name,
            self.file.display(),
            self.line
        )
    }
}

/// What the switch should do with the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Ring this user's registered contacts (404 when there is no such enabled user, 480
    /// when it has none registered).
    User(String),
    /// Ring several users: all at once, or one after another with `timeout` for each.
    Group {
        members: Vec<String>,
        strategy: Strategy,
        /// Parallel: how long all ring; sequential: how long each rings.
        #[serde(serialize_with = "seconds")]
        timeout: Duration,
    },
    /// Out through a `[[gateway]]` to `number`.
    Gateway { gateway: String, number: String },
    /// Answer 302 Moved Temporarily with this Contact.
    Redirect { contact: String },
    /// Answer with this final status (400–699) and reason phrase.
    Reject { status: u16, reason: Option<String> },
    /// No rule matched (the engine answers 404).
    NoMatch,
}

/// How a group rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// All members at once; the first to answer gets the call.
    Parallel,
    /// One member after another, each for the group's timeout.
    Sequential,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Parallel => "parallel",
            Strategy::Sequential => "sequential",
        }
    }
}

/// A caller ID rewrite: what the callee (or the trunk) is shown. `None` fields keep the
/// caller's own.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CallerId {
    pub number: Option<String>,
    pub name: Option<String>,
}

impl fmt::Display for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, &self.number) {
            (Some(name), Some(number)) => write!(f, "{name:?} <{number}>"),
            (Some(name), None) => write!(f, "{name:?}"),
            (None, Some(number)) => write!(f, "<{number}>"),
            (None, None) => f.write_str("unchanged"),
        }
    }
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}
