//! One line saying where a number goes, for `ferroswitch route`: the context, the rule (file
//! and line), the target and, for users, whether they exist, as the engine would see them.
//!
//! Only formats; never looks at registrations or places a call.

use super::{Decision, Target};
use crate::config::Users;

impl Decision {
    /// `default: rule "outbound" (dialplan.toml:7) -> gateway provider, number +1555…;
    /// caller id "Example Ltd" <+15551230000>`, with users looked up in `users`.
    pub fn describe(&self, number: &str, users: &Users) -> String {
        let how = match (&self.rule, &self.target) {
            (Some(r), _) => r.to_string(),
            (None, Target::NoMatch) => format!("no rule matches {number}"),
            (None, _) => "no dialplan, every number is a user".to_string(),
        };
        let mut out = format!("{}: {how} -> {}", self.context, target(&self.target, users));
        if let Some(c) = &self.caller_id {
            out.push_str(&format!("; caller id {c}"));
        }
        out
    }
}

fn target(t: &Target, users: &Users) -> String {
    match t {
        Target::User(u) => format!("user {}", user(u, users)),
        Target::Group {
            members,
            strategy,
            timeout,
        } => {
            let list: Vec<String> = members.iter().map(|m| user(m, users)).collect();
            let each = match strategy {
                super::Strategy::Parallel => "",
                super::Strategy::Sequential => " each",
            };
            format!(
                "{} group: {}; {} s{each}",
                strategy.as_str(),
                list.join(", "),
                timeout.as_secs()
            )
        }
        Target::Gateway { gateway, number } => format!("gateway {gateway}, number {number}"),
        Target::Redirect { contact } => format!("302 redirect to <{contact}>"),
        Target::Reject {
            status,
            reason: Some(r),
        } => format!("reject {status} {r:?}"),
        Target::Reject {
            status,
            reason: None,
        } => format!("reject {status}"),
        Target::NoMatch => "404".to_string(),
    }
}

/// `1000 (Alice)`, `1000`, `carol (disabled: 404)`, `1999 (no such user: 404)`: what the
/// engine does with a call to that user (480 when none of its phones is registered is only
/// known at run time).
fn user(id: &str, users: &Users) -> String {
    match users.get(id) {
        None => format!("{id} (no such user: 404)"),
        Some(u) if !u.enabled => format!("{id} (disabled: 404)"),
        Some(u) => match &u.display_name {
            Some(name) => format!("{id} ({name})"),
            None => id.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CallerId, RuleRef, Strategy};
    use super::*;
    use crate::config::parse_users_file;
    use std::path::Path;
    use std::time::Duration;

    fn users() -> Users {
        let text = "[[user]]\nid = \"1000\"\npassword = \"a long password\"\n\
                    display_name = \"Alice\"\n[[user]]\nid = \"1001\"\npassword = \"a long \
                    password\"\n[[user]]\nid = \"carol\"\npassword = \"a long password\"\n\
                    enabled = false\n";
        let list = parse_users_file(text, Path::new("u.toml"), None).unwrap();
        Users::from_list(list).unwrap()
    }

    fn decision(rule: bool, target: Target, caller_id: Option<CallerId>) -> Decision {
        Decision {
            context: "default".into(),
            rule: rule.then(|| RuleRef {
                name: "r".into(),
                file: "conf/dialplan.toml".into(),
                line: 7,
            }),
            target,
            caller_id,
        }
    }

    #[test]
    fn each_target_on_one_line() {
        let u = users();
        let line = |rule, t, c| decision(rule, t, c).describe("123", &u);
        assert_eq!(
            line(
                true,
                Target::Gateway {
                    gateway: "provider".into(),
                    number: "+15551234567".into()
                },
                Some(CallerId {
                    number: Some("+15551230000".into()),
                    name: Some("Example Ltd".into())
                })
            ),
            "default: rule \"r\" (conf/dialplan.toml:7) -> gateway provider, number \
             +15551234567; caller id \"Example Ltd\" <+15551230000>"
        );
        assert_eq!(
            line(false, Target::NoMatch, None),
            "default: no rule matches 123 -> 404"
        );
        assert_eq!(
            line(false, Target::User("1000".into()), None),
            "default: no dialplan, every number is a user -> user 1000 (Alice)"
        );
        let users_line = |id: &str| line(true, Target::User(id.into()), None);
        assert!(users_line("1001").ends_with("-> user 1001"));
        assert!(users_line("carol").ends_with("-> user carol (disabled: 404)"));
        assert!(users_line("1999").ends_with("-> user 1999 (no such user: 404)"));
        let group = Target::Group {
            members: vec!["1000".into(), "1999".into()],
            strategy: Strategy::Sequential,
            timeout: Duration::from_secs(15),
        };
        assert!(line(true, group, None)
            .ends_with("-> sequential group: 1000 (Alice), 1999 (no such user: 404); 15 s each"));
        let redirect = Target::Redirect {
            contact: "sip:1000@example.com".into(),
        };
        assert!(line(true, redirect, None).ends_with("-> 302 redirect to <sip:1000@example.com>"));
        let reject = Target::Reject {
            status: 403,
            reason: Some("Not Today".into()),
        };
        assert!(line(true, reject, None).ends_with("-> reject 403 \"Not Today\""));
        let only_name = Some(CallerId {
            number: None,
            name: Some("Sales".into()),
        });
        assert!(
            line(true, Target::User("1000".into()), only_name).ends_with("; caller id \"Sales\"")
        );
    }
}
