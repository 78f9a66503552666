//! The dialplan: ordered rules by context (parsed from `[[context.NAME.route]]` tables by
//! `parse`), and [`Dialplan::route`], which finds the first rule of a context that matches.
//!
//! Patterns are compiled by the `regex` crate (linear time, whatever a caller dials) under a
//! size limit, so neither a hostile number nor a careless pattern can stall or bloat the
//! switch. Routing reads no clock and no file; only [`Dialplan::load`] reads one.

use super::template::Template;
use super::{CallerId, Decision, RuleRef, Strategy, Target};
use crate::config::{ConfigError, ConfigErrors};
use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The routing rules, by context.
#[derive(Debug, Clone)]
pub struct Dialplan {
    /// The file the rules came from (empty for the builtin dialplan).
    pub(super) file: PathBuf,
    /// `None`: the builtin dialplan (every number is a user).
    pub(super) contexts: Option<BTreeMap<String, Vec<Rule>>>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub name: Option<String>,
    /// Position in its context, from 0.
    pub index: usize,
    /// `context.NAME.route[N]`, the prefix of this rule's keys in messages.
    pub key: String,
    /// The line of the rule (its `[[context.NAME.route]]` header, else its first key).
    pub line: usize,
    /// The line of `to` or `reject`.
    pub action_line: usize,
    pub regex: Regex,
    pub action: Action,
    pub caller_id: Option<CallerIdTemplate>,
}

/// What a rule does, with its templates parsed.
#[derive(Debug, Clone)]
pub(super) enum Action {
    User(Template),
    Group {
        members: Vec<Template>,
        strategy: Strategy,
        timeout: Duration,
    },
    Gateway {
        gateway: String,
        number: Template,
    },
    Redirect(Template),
    Reject {
        status: u16,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub(super) struct CallerIdTemplate {
    pub number: Option<Template>,
    pub name: Option<Template>,
}

impl Rule {
    pub(super) fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("#{}", self.index))
    }

    pub(super) fn rule_ref(&self, file: &Path) -> RuleRef {
        RuleRef {
            name: self.display_name(),
            file: file.to_path_buf(),
            line: self.line,
        }
    }
}

impl Action {
    fn expand(&self, caps: &regex::Captures<'_>) -> Target {
        match self {
            Action::User(t) => Target::User(t.expand(caps)),
            Action::Group {
                members,
                strategy,
                timeout,
            } => Target::Group {
                members: members.iter().map(|m| m.expand(caps)).collect(),
                strategy: *strategy,
                timeout: *timeout,
            },
            Action::Gateway { gateway, number } => Target::Gateway {
                gateway: gateway.clone(),
                number: number.expand(caps),
            },
            Action::Redirect(t) => Target::Redirect {
                contact: t.expand(caps),
            },
            Action::Reject { status, reason } => Target::Reject {
                status: *status,
                reason: reason.clone(),
            },
        }
    }
}

impl Dialplan {
    /// No dialplan file: today's behaviour (every context: the dialled number is a user).
    pub fn builtin() -> Dialplan {
        Dialplan {
            file: PathBuf::new(),
            contexts: None,
        }
    }

    pub fn is_builtin(&self) -> bool {
        self.contexts.is_none()
    }

    /// The file the rules were read from; `None` for the builtin dialplan.
    pub fn file(&self) -> Option<&Path> {
        self.contexts.as_ref().map(|_| self.file.as_path())
    }

    /// Whether the file defines `context` (the builtin dialplan serves every context).
    pub fn has_context(&self, context: &str) -> bool {
        self.contexts
            .as_ref()
            .is_none_or(|c| c.contains_key(context))
    }

    /// The contexts the file defines, sorted (none for the builtin dialplan).
    pub fn contexts(&self) -> impl Iterator<Item = &str> {
        self.contexts
            .iter()
            .flat_map(|c| c.keys().map(String::as_str))
    }

    /// Reads and compiles the dialplan at `path`.
    pub fn load(path: &Path) -> Result<Dialplan, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Dialplan::parse(&text, path)
    }

    /// Parse + compile (regexes, templates); errors carry file, line and key like
    /// `src/config` errors, every one at once, in line order.
    pub fn parse(text: &str, file: &Path) -> Result<Dialplan, ConfigErrors> {
        let contexts = super::parse::parse(text, file)?;
        Ok(Dialplan {
            file: file.to_path_buf(),
            contexts: Some(contexts),
        })
    }

    /// First matching rule of `context` for the dialled user part `number`; captures
    /// substituted. An unknown context behaves as an empty one (NoMatch).
    ///
    /// The pattern is searched for in the whole number: anchors (`^…$`) are the rule's to
    /// write, as in FreeSWITCH.
    pub fn route(&self, context: &str, number: &str) -> Decision {
        let decision = |rule, target, caller_id| Decision {
            context: context.to_string(),
            rule,
            target,
            caller_id,
        };
        let Some(contexts) = &self.contexts else {
            let target = if number.is_empty() {
                Target::NoMatch
            } else {
                Target::User(number.to_string())
            };
            return decision(None, target, None);
        };
        let rules = contexts.get(context).map_or(&[][..], Vec::as_slice);
        for rule in rules {
            if let Some(caps) = rule.regex.captures(number) {
                let caller_id = rule.caller_id.as_ref().map(|c| CallerId {
                    number: c.number.as_ref().map(|t| t.expand(&caps)),
                    name: c.name.as_ref().map(|t| t.expand(&caps)),
                });
                let target = rule.action.expand(&caps);
                return decision(Some(rule.rule_ref(&self.file)), target, caller_id);
            }
        }
        decision(None, Target::NoMatch, None)
    }

    /// Every rule with its context, in context then rule order.
    pub(super) fn rules(&self) -> impl Iterator<Item = (&str, &Rule)> {
        self.contexts
            .iter()
            .flatten()
            .flat_map(|(c, rules)| rules.iter().map(move |r| (c.as_str(), r)))
    }
}

/// Errors in line order (those without a line first), stable otherwise.
pub(super) fn line_key(e: &ConfigError) -> usize {
    match e {
        ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => line.unwrap_or(0),
        ConfigError::Read { .. } => 0,
    }
}

pub(super) fn invalid(file: &Path, line: usize, key: &str, sub: &str, msg: String) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_path_buf(),
        line: Some(line),
        key: if sub.is_empty() {
            key.to_string()
        } else {
            format!("{key}.{sub}")
        },
        message: msg,
    }
}
