//! Parsing the dialplan file: strict TOML into raw structs, then compiled rules (regexes under
//! a size limit, templates checked against their regex), every problem collected with its file,
//! line and key, in line order.
//!
//! Never routes anything; [`super::Dialplan`] does, with what this returns.

use super::dialplan::{invalid, line_key, Action, CallerIdTemplate, Rule};
use super::template::Template;
use super::Strategy;
use crate::config::{ConfigError, ConfigErrors};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// Compiled size one pattern may reach (the regex crate's own default is 10 MiB): plenty for
/// any dial string pattern, and a bound on what a config can make the switch allocate.
pub(super) const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// A group's ring timeout when the rule names none.
pub(super) const DEFAULT_GROUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest group ring timeout, in seconds.
const MAX_GROUP_TIMEOUT: i64 = 3600;
/// Longest reject reason phrase.
const MAX_REASON: usize = 128;

/// The rules of `text` by context, or every problem in it.
pub(super) fn parse(text: &str, file: &Path) -> Result<BTreeMap<String, Vec<Rule>>, ConfigErrors> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigErrors::from(ConfigError::syntax(file, text, &e)))?;
    let mut p = Parser {
        file,
        text,
        errors: Vec::new(),
    };
    let mut contexts = BTreeMap::new();
    for (name, ctx) in raw.context {
        if !valid_context_name(&name) {
            let first = ctx.route.first().map(|r| r.span());
            p.bad(
                first,
                &format!("context.{name}"),
                "a context name is letters, digits, '_' and '-' only".into(),
            );
        }
        let mut rules: Vec<Rule> = Vec::new();
        for (index, raw) in ctx.route.into_iter().enumerate() {
            let key = format!("context.{name}.route[{index}]");
            if let Some(rule) = p.rule(raw, index, key) {
                let dup = rule
                    .name
                    .as_ref()
                    .and_then(|n| rules.iter().find(|r| r.name.as_ref() == Some(n)));
                if let Some(first) = dup {
                    let msg = format!(
                        "{:?} is the name of rule #{} (line {}) too; names must be unique \
                         in a context",
                        rule.display_name(),
                        first.index,
                        first.line
                    );
                    p.errors
                        .push(invalid(file, rule.line, &rule.key, "name", msg));
                }
                rules.push(rule);
            }
        }
        contexts.insert(name, rules);
    }
    if p.errors.is_empty() {
        Ok(contexts)
    } else {
        p.errors.sort_by_key(line_key);
        Err(ConfigErrors(p.errors))
    }
}

fn valid_context_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    context: BTreeMap<String, RawContext>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    #[serde(default)]
    route: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<Spanned<String>>,
    #[serde(rename = "match")]
    pattern: Option<Spanned<String>>,
    to: Option<Spanned<RawTo>>,
    reject: Option<Spanned<RawReject>>,
    caller_id: Option<Spanned<RawCallerId>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTo {
    user: Option<Spanned<String>>,
    group: Option<Spanned<Vec<Spanned<String>>>>,
    strategy: Option<Spanned<String>>,
    timeout: Option<Spanned<i64>>,
    gateway: Option<Spanned<String>>,
    number: Option<Spanned<String>>,
    redirect: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReject {
    status: Spanned<i64>,
    reason: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallerId {
    number: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
}

/// Compiles rules, collecting problems.
struct Parser<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Parser<'_> {
    fn bad(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        let e = ConfigError::invalid(self.file, self.text, span, key, message);
        self.errors.push(e);
    }

    fn line(&self, span: &Range<usize>) -> usize {
        crate::config::error::line_of(self.text, span.start)
    }

    /// One rule; `None` when it has errors (all of them recorded).
    fn rule(&mut self, raw: Spanned<RawRule>, index: usize, key: String) -> Option<Rule> {
        let span = raw.span();
        let raw = raw.into_inner();
        let before = self.errors.len();
        let name = raw.name.and_then(|n| {
            let bad = n.get_ref().trim().is_empty() || n.get_ref().chars().any(char::is_control);
            if bad {
                let msg = "must not be empty nor hold control characters (leave it out \
                           to call the rule by its index)";
                self.bad(Some(n.span()), &format!("{key}.name"), msg.into());
                return None;
            }
            Some(n.into_inner())
        });
        let regex = match raw.pattern {
            None => {
                let msg = "is missing (a regex on the dialled number, e.g. '^(1\\d{3})$')";
                self.bad(Some(span.clone()), &format!("{key}.match"), msg.into());
                None
            }
            Some(m) => match compile(m.get_ref()) {
                Ok(re) => Some(re),
                Err(msg) => {
                    self.bad(Some(m.span()), &format!("{key}.match"), msg);
                    None
                }
            },
        };
        let (action, action_span) = match (raw.to, raw.reject) {
            (Some(to), None) => {
                let s = to.span();
                (regex.as_ref().and_then(|re| self.to(to, re, &key)), s)
            }
            (None, Some(r)) => {
                let s = r.span();
                (self.reject(r, &key), s)
            }
            (Some(_), Some(r)) => {
                let msg = "a rule has either `to` or `reject`, not both";
                self.bad(Some(r.span()), &format!("{key}.reject"), msg.into());
                (None, span.clone())
            }
            (None, None) => {
                let msg = "is missing: where the call goes (`to = { user = \"$1\" }`, a group, \
                           a gateway or a redirect) or `reject = { status = 404 }`";
                self.bad(Some(span.clone()), &format!("{key}.to"), msg.into());
                (None, span.clone())
            }
        };
        let caller_id = match (raw.caller_id, &regex) {
            (Some(c), Some(re)) => self.caller_id(c, re, &key),
            _ => None,
        };
        if self.errors.len() > before {
            return None;
        }
        // The header line of `[[context.x.route]]`; a span that starts on a `[` line is the
        // table's, otherwise (an inline table) the span's own line.
        let line = self.line(&span);
        Some(Rule {
            name,
            index,
            line,
            action_line: self.line(&action_span),
            key,
            regex: regex?,
            action: action?,
            caller_id,
        })
    }

    fn template(&mut self, v: &Spanned<String>, re: &Regex, key: &str) -> Option<Template> {
        match Template::parse(v.get_ref(), re) {
            Ok(t) => Some(t),
            Err(msg) => {
                self.bad(Some(v.span()), key, msg);
                None
            }
        }
    }

    /// A template that must not come out empty or hold characters no SIP URI user part
    /// or header may: checked on its literal text.
    fn target(&mut self, v: &Spanned<String>, re: &Regex, key: &str) -> Option<Template> {
        let s = v.get_ref();
        if s.trim().is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let msg = format!("{s:?} must not be empty nor hold spaces or control characters");
            self.bad(Some(v.span()), key, msg);
            return None;
        }
        self.template(v, re, key)
    }

    fn to(&mut self, to: Spanned<RawTo>, re: &Regex, key: &str) -> Option<Action> {
        let span = to.span();
        let to = to.into_inner();
        let key = format!("{key}.to");
        let kinds: Vec<&str> = [
            ("user", to.user.is_some()),
            ("group", to.group.is_some()),
            ("gateway", to.gateway.is_some()),
            ("redirect", to.redirect.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if kinds.len() != 1 {
            let msg = if kinds.is_empty() {
                "names no destination: one of user, group, gateway or redirect".to_string()
            } else {
                format!("names {} destinations; keep one", kinds.join(" and "))
            };
            self.bad(Some(span), &key, msg);
            return None;
        }
        let kind = kinds[0];
        // Keys that only go with another kind of destination are mistakes, not ignored.
        for (k, set, with) in [
            ("strategy", to.strategy.is_some(), "group"),
            ("timeout", to.timeout.is_some(), "group"),
            ("number", to.number.is_some(), "gateway"),
        ] {
            if set && kind != with {
                let msg = format!("only goes with `{with}`, not with `{kind}`");
                self.bad(Some(span.clone()), &format!("{key}.{k}"), msg);
            }
        }
        match kind {
            "user" => {
                let u = to.user?;
                self.target(&u, re, &format!("{key}.user"))
                    .map(Action::User)
            }
            "group" => self.group(to, re, &key),
            "gateway" => {
                let g = to.gateway?;
                if crate::config::gateway::bad_name(g.get_ref()).is_some() {
                    let msg = format!("{:?} is not a gateway name", g.get_ref());
                    self.bad(Some(g.span()), &format!("{key}.gateway"), msg);
                    return None;
                }
                // No number: the dialled number unchanged.
                let number = match &to.number {
                    Some(n) => self.target(n, re, &format!("{key}.number"))?,
                    None => Template::parse("$0", re).ok()?,
                };
                Some(Action::Gateway {
                    gateway: g.into_inner(),
                    number,
                })
            }
            _ => {
                let r = to.redirect?;
                let t = self.target(&r, re, &format!("{key}.redirect"))?;
                let scheme = t.prefix().to_ascii_lowercase();
                if !["sip:", "sips:", "tel:"]
                    .iter()
                    .any(|s| scheme.starts_with(s))
                {
                    let msg = format!(
                        "{:?} must start with sip:, sips: or tel: (the Contact of the 302)",
                        r.get_ref()
                    );
                    self.bad(Some(r.span()), &format!("{key}.redirect"), msg);
                    return None;
                }
                Some(Action::Redirect(t))
            }
        }
    }

    fn group(&mut self, to: RawTo, re: &Regex, key: &str) -> Option<Action> {
        let list = to.group?;
        if list.get_ref().is_empty() {
            let msg = "must name at least one user".to_string();
            self.bad(Some(list.span()), &format!("{key}.group"), msg);
        }
        let mut members = Vec::new();
        for (i, m) in list.get_ref().iter().enumerate() {
            if let Some(t) = self.target(m, re, &format!("{key}.group[{i}]")) {
                members.push(t);
            }
        }
        let strategy = match to.strategy {
            None => Strategy::Parallel,
            Some(s) => match s.get_ref().as_str() {
                "parallel" => Strategy::Parallel,
                "sequential" => Strategy::Sequential,
                other => {
                    let msg = format!("{other:?} is neither \"parallel\" nor \"sequential\"");
                    self.bad(Some(s.span()), &format!("{key}.strategy"), msg);
                    Strategy::Parallel
                }
            },
        };
        let timeout = match to.timeout {
            None => DEFAULT_GROUP_TIMEOUT,
            Some(t) if (1..=MAX_GROUP_TIMEOUT).contains(t.get_ref()) => {
                Duration::from_secs(*t.get_ref() as u64)
            }
            Some(t) => {
                let msg = format!(
                    "{} is out of range (1 to {MAX_GROUP_TIMEOUT} seconds)",
                    t.get_ref()
                );
                self.bad(Some(t.span()), &format!("{key}.timeout"), msg);
                DEFAULT_GROUP_TIMEOUT
            }
        };
        (members.len() == list.get_ref().len() && !members.is_empty()).then_some(Action::Group {
            members,
            strategy,
            timeout,
        })
    }

    fn reject(&mut self, r: Spanned<RawReject>, key: &str) -> Option<Action> {
        let r = r.into_inner();
        let status = *r.status.get_ref();
        if !(400..=699).contains(&status) {
            let msg = if (300..=399).contains(&status) {
                format!("{status} is a redirect: use to = {{ redirect = \"sip:…\" }}")
            } else {
                format!("{status} is out of range (a final failure status, 400 to 699)")
            };
            self.bad(Some(r.status.span()), &format!("{key}.reject.status"), msg);
            return None;
        }
        let reason = match r.reason {
            None => None,
            Some(v) => {
                let s = v.get_ref();
                if s.trim().is_empty() || s.len() > MAX_REASON || s.chars().any(char::is_control) {
                    let msg = format!(
                        "must be 1 to {MAX_REASON} characters without control characters \
                         (leave it out for the standard phrase)"
                    );
                    self.bad(Some(v.span()), &format!("{key}.reject.reason"), msg);
                    return None;
                }
                Some(v.into_inner())
            }
        };
        Some(Action::Reject {
            status: status as u16,
            reason,
        })
    }

    fn caller_id(
        &mut self,
        c: Spanned<RawCallerId>,
        re: &Regex,
        key: &str,
    ) -> Option<CallerIdTemplate> {
        let span = c.span();
        let c = c.into_inner();
        if c.number.is_none() && c.name.is_none() {
            let msg = "sets nothing: give number, name or both".to_string();
            self.bad(Some(span), &format!("{key}.caller_id"), msg);
            return None;
        }
        let number = match &c.number {
            Some(n) => Some(self.target(n, re, &format!("{key}.caller_id.number"))?),
            None => None,
        };
        let name = match &c.name {
            Some(n) if n.get_ref().chars().any(char::is_control) => {
                let msg = "must not hold control characters".to_string();
                self.bad(Some(n.span()), &format!("{key}.caller_id.name"), msg);
                return None;
            }
            Some(n) => Some(self.template(n, re, &format!("{key}.caller_id.name"))?),
            None => None,
        };
        Some(CallerIdTemplate { number, name })
    }
}

/// Compiles a rule's pattern under the size limit.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("is empty (use '.*' to match every number)".into());
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "the pattern is too big once compiled (over {limit} bytes); simplify it \
                 (a counted repetition such as \\w{{1000}} multiplies its size)"
            ),
            e => format!("not a valid regex: {}", one_line(&e.to_string())),
        })
}

/// The regex crate's multi-line error (pattern, caret, message) on one line.
fn one_line(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let message = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map_or_else(
            || lines.join(" "),
            |l| l.trim_start_matches("error:").trim().into(),
        );
    message
}
