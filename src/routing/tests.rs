//! Unit tests of the dialplan: parsing with file:line:key errors, first-match routing with
//! captures, every action, contexts, and the cross-checks of `validate`.

use super::validate::is_catch_all;
use super::*;
use crate::auth::Secret;
use crate::config::{GatewayConfig, User, Users};
use std::path::Path;

const FILE: &str = "conf/dialplan.toml";

/// The issue's example, with a redirect and a named-capture rule added before the catch-all.
const EXAMPLE: &str = r#"
[[context.default.route]]
name = "extensions"
match = '^(1\d{3})$'
to = { user = "$1" }

[[context.default.route]]
name = "outbound"
match = '^9(\d{7,15})$'
to = { gateway = "provider", number = "+1$1" }
caller_id = { number = "+15551230000", name = "Example Ltd" }

[[context.default.route]]
name = "sales"
match = '^200$'
to = { group = ["1000", "1001", "1002"], strategy = "parallel", timeout = 20 }

[[context.public.route]]
name = "main number"
match = '^\+?15551230000$'
to = { group = ["1000", "1001"], strategy = "sequential", timeout = 15 }

[[context.default.route]]
name = "moved"
match = '^8(?P<ext>\d{4})$'
to = { redirect = "sip:${ext}@other.example.com" }

[[context.default.route]]
match = '.*'
reject = { status = 404 }
"#;

fn parse(text: &str) -> Result<Dialplan, Vec<String>> {
    Dialplan::parse(text, Path::new(FILE)).map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
}

fn errors(text: &str) -> Vec<String> {
    parse(text).expect_err("the dialplan should be refused")
}

fn one_error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

fn user(id: &str, line: usize) -> User {
    User {
        id: id.into(),
        secret: Secret::Password("a long password".into()),
        display_name: None,
        enabled: true,
        forward_all: None,
        forward_busy: None,
        forward_no_answer: None,
        no_answer_timeout: None,
        context: None,
        file: "users/u.toml".into(),
        line,
    }
}

fn users(ids: &[&str]) -> Users {
    Users::from_list(
        ids.iter()
            .enumerate()
            .map(|(i, id)| user(id, i + 1))
            .collect(),
    )
    .unwrap()
}

fn gateway(name: &str) -> GatewayConfig {
    GatewayConfig {
        name: name.into(),
        proxy: "sip.provider.example".into(),
        host: "sip.provider.example".into(),
        port: None,
        transport: crate::net::Transport::Udp,
        username: "acct1234".into(),
        password: "secret".into(),
        realm: None,
        register: true,
        expires: 600,
        from_user: None,
        caller_id_in_from: false,
        ping: 30,
        line: 1,
    }
}

fn validate(text: &str, ids: &[&str], gateways: &[&str]) -> Vec<String> {
    let d = parse(text).unwrap_or_else(|e| panic!("{e:#?}"));
    let gws: Vec<GatewayConfig> = gateways.iter().map(|g| gateway(g)).collect();
    d.validate(&users(ids), &gws)
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn rule_at(name: &str, line: usize) -> Option<RuleRef> {
    Some(RuleRef {
        name: name.into(),
        file: FILE.into(),
        line,
    })
}

#[test]
fn the_issue_example_routes_each_kind_of_number() {
    let d = parse(EXAMPLE).unwrap();
    assert!(!d.is_builtin());
    assert_eq!(d.file(), Some(Path::new(FILE)));
    assert_eq!(d.contexts().collect::<Vec<_>>(), ["default", "public"]);
    let ext = d.route(DEFAULT_CONTEXT, "1042");
    assert_eq!(
        ext,
        Decision {
            context: "default".into(),
            rule: rule_at("extensions", 2),
            target: Target::User("1042".into()),
            caller_id: None,
        }
    );
    let out = d.route(DEFAULT_CONTEXT, "95551234567");
    assert_eq!(out.rule, rule_at("outbound", 7));
    assert_eq!(
        out.target,
        Target::Gateway {
            gateway: "provider".into(),
            number: "+15551234567".into()
        }
    );
    assert_eq!(
        out.caller_id,
        Some(CallerId {
            number: Some("+15551230000".into()),
            name: Some("Example Ltd".into())
        })
    );
    let sales = d.route(DEFAULT_CONTEXT, "200");
    assert_eq!(
        sales.target,
        Target::Group {
            members: vec!["1000".into(), "1001".into(), "1002".into()],
            strategy: Strategy::Parallel,
            timeout: Duration::from_secs(20)
        }
    );
    let moved = d.route(DEFAULT_CONTEXT, "81234");
    assert_eq!(
        moved.target,
        Target::Redirect {
            contact: "sip:1234@other.example.com".into()
        }
    );
    // Too short for "outbound", no extension: the catch-all, rule #4 (no name), on line 28.
    let rest = d.route(DEFAULT_CONTEXT, "9555");
    assert_eq!(rest.rule, rule_at("#4", 28));
    assert_eq!(
        rest.target,
        Target::Reject {
            status: 404,
            reason: None
        }
    );
    assert!(rest.matched());
    // The public context reaches only its own rules.
    let did = d.route(PUBLIC_CONTEXT, "+15551230000");
    assert_eq!(did.context, "public");
    assert_eq!(
        did.target,
        Target::Group {
            members: vec!["1000".into(), "1001".into()],
            strategy: Strategy::Sequential,
            timeout: Duration::from_secs(15)
        }
    );
    let nothing = d.route(PUBLIC_CONTEXT, "95551234567");
    assert_eq!(
        (
            nothing.rule.clone(),
            nothing.target.clone(),
            nothing.caller_id.clone()
        ),
        (None, Target::NoMatch, None)
    );
    assert!(!nothing.matched());
}

#[test]
fn first_match_wins_in_file_order() {
    let d = parse(
        r#"
[[context.default.route]]
name = "specific"
match = '^1000$'
reject = { status = 403, reason = "Not Today" }
[[context.default.route]]
name = "general"
match = '^1\d{3}$'
to = { user = "$0" }
"#,
    )
    .unwrap();
    let r = d.route("default", "1000");
    assert_eq!(r.rule.unwrap().name, "specific");
    assert_eq!(
        r.target,
        Target::Reject {
            status: 403,
            reason: Some("Not Today".into())
        }
    );
    assert_eq!(d.route("default", "1001").rule.unwrap().name, "general");
    assert_eq!(
        d.route("default", "1001").target,
        Target::User("1001".into())
    );
}

#[test]
fn the_regex_decides_anchoring() {
    let d = parse(
        "[[context.default.route]]\nmatch = '555'\nto = { user = \"x$0y\" }\n\
         [[context.default.route]]\nmatch = '^(\\d+)$'\nto = { user = \"$1\" }\n",
    )
    .unwrap();
    // Unanchored: found anywhere in the number, $0 is the match only.
    assert_eq!(
        d.route("default", "0155599").target,
        Target::User("x555y".into())
    );
    assert_eq!(
        d.route("default", "0123").target,
        Target::User("0123".into())
    );
    assert_eq!(d.route("default", "01a23").target, Target::NoMatch);
}

#[test]
fn captures_numbered_named_and_literal_dollar() {
    let d = parse(
        r#"
[[context.default.route]]
match = '^\*(?P<code>\d{2})(\d+)$'
to = { gateway = "provider", number = "$$${code}-$2$$" }
caller_id = { name = "Code ${code}" }
[[context.default.route]]
match = '^0(\d+)$'
to = { gateway = "provider" }
"#,
    )
    .unwrap();
    let r = d.route("default", "*72555");
    assert_eq!(
        r.target,
        Target::Gateway {
            gateway: "provider".into(),
            number: "$72-555$".into()
        }
    );
    assert_eq!(
        r.caller_id,
        Some(CallerId {
            number: None,
            name: Some("Code 72".into())
        })
    );
    // No number: the dialled number unchanged.
    assert_eq!(
        d.route("default", "0123").target,
        Target::Gateway {
            gateway: "provider".into(),
            number: "0123".into()
        }
    );
}

#[test]
fn unknown_context_is_empty_and_builtin_is_every_user() {
    let d = parse(EXAMPLE).unwrap();
    let r = d.route("office", "1000");
    assert_eq!((r.context.as_str(), r.target), ("office", Target::NoMatch));
    assert!(!d.has_context("office") && d.has_context("public"));

    let b = Dialplan::builtin();
    assert!(b.is_builtin() && b.file().is_none() && b.has_context("anything"));
    for ctx in [DEFAULT_CONTEXT, PUBLIC_CONTEXT, "office"] {
        let r = b.route(ctx, "1000");
        assert_eq!(
            r,
            Decision {
                context: ctx.into(),
                rule: None,
                target: Target::User("1000".into()),
                caller_id: None
            }
        );
    }
    assert_eq!(b.route("default", "").target, Target::NoMatch);
    // An empty file is a dialplan with no rules, not the builtin one.
    let empty = parse("").unwrap();
    assert!(!empty.is_builtin());
    assert_eq!(empty.route("default", "1000").target, Target::NoMatch);
}

#[test]
fn group_defaults_are_parallel_and_20_seconds() {
    let d = parse(
        "[[context.default.route]]\nmatch = '^(7)(\\d)$'\nto = { group = [\"100$2\", \"1001\"] }\n",
    )
    .unwrap();
    assert_eq!(
        d.route("default", "70").target,
        Target::Group {
            members: vec!["1000".into(), "1001".into()],
            strategy: Strategy::Parallel,
            timeout: Duration::from_secs(20)
        }
    );
}

#[test]
fn errors_name_file_line_and_key() {
    let head = "[[context.default.route]]\n";
    let cases: &[(&str, &str)] = &[
        ("match = '^(1'\nto = { user = \"1\" }\n", ":2: context.default.route[0].match: not a valid regex"),
        ("to = { user = \"1\" }\n", ":1: context.default.route[0].match: is missing"),
        ("match = ''\nto = { user = \"1\" }\n", ":2: context.default.route[0].match: is empty"),
        ("match = '^1$'\n", ":1: context.default.route[0].to: is missing"),
        ("match = '^(1)$'\nto = { user = \"$2\" }\n", ":3: context.default.route[0].to.user: \"$2\" refers to group 2 but the pattern has 1 capture group"),
        ("match = '^(1)$'\nto = { user = \"${ext}\" }\n", "no group named \"ext\""),
        ("match = '^1$'\nto = { user = \"1 2\" }\n", ":3: context.default.route[0].to.user: \"1 2\" must not be empty nor hold spaces"),
        ("match = '^1$'\nto = { user = \"\" }\n", "to.user: \"\" must not be empty"),
        ("match = '^1$'\nto = { user = \"1\", gateway = \"g\" }\n", ":3: context.default.route[0].to: names user and gateway destinations; keep one"),
        ("match = '^1$'\nto = { strategy = \"parallel\" }\n", "names no destination"),
        ("match = '^1$'\nto = { user = \"1\", timeout = 5 }\n", "to.timeout: only goes with `group`, not with `user`"),
        ("match = '^1$'\nto = { group = [] }\n", ":3: context.default.route[0].to.group: must name at least one user"),
        ("match = '^1$'\nto = { group = [\"1\"], strategy = \"random\" }\n", "to.strategy: \"random\" is neither"),
        ("match = '^1$'\nto = { group = [\"1\"], timeout = 0 }\n", "to.timeout: 0 is out of range (1 to 3600 seconds)"),
        ("match = '^1$'\nto = { gateway = \"a b\" }\n", "to.gateway: \"a b\" is not a gateway name"),
        ("match = '^1$'\nto = { redirect = \"1000@example.com\" }\n", "to.redirect: \"1000@example.com\" must start with sip:, sips: or tel:"),
        ("match = '^1$'\nreject = { status = 302 }\n", ":3: context.default.route[0].reject.status: 302 is a redirect"),
        ("match = '^1$'\nreject = { status = 200 }\n", "reject.status: 200 is out of range (a final failure status, 400 to 699)"),
        ("match = '^1$'\nreject = { status = 700 }\n", "reject.status: 700 is out of range"),
        ("match = '^1$'\nreject = { status = 403, reason = \"a\\r\\nX-Evil: 1\" }\n", "reject.reason: must be 1 to 128 characters"),
        ("match = '^1$'\nto = { user = \"1\" }\nreject = { status = 404 }\n", ":4: context.default.route[0].reject: a rule has either `to` or `reject`"),
        ("match = '^1$'\nto = { user = \"1\" }\ncaller_id = {}\n", ":4: context.default.route[0].caller_id: sets nothing"),
        ("match = '^1$'\nto = { user = \"1\" }\ncaller_id = { number = \"US$\" }\n", "caller_id.number: \"US$\": \"$\" must be followed"),
        ("name = \"\"\nmatch = '^1$'\nto = { user = \"1\" }\n", ":2: context.default.route[0].name: must not be empty"),
        ("match = '^1$'\nto = { user = \"1\", color = \"red\" }\n", ":3: [[context.default.route]]: unknown field `color`"),
        ("match = '^1$'\ngoto = \"x\"\n", ":3: [[context.default.route]]: unknown field `goto`"),
        ("match = 1\n", ":2: [[context.default.route]]: invalid type: integer `1`, expected a string"),
    ];
    for (body, want) in cases {
        let e = one_error(&format!("{head}{body}"));
        assert!(
            e.starts_with(FILE) && e.contains(want),
            "{body}\nwant: {want}\ngot:  {e}"
        );
    }
}

#[test]
fn every_error_is_reported_in_line_order() {
    let e = errors(
        r#"
[[context.public.route]]
match = '^(1'
to = { user = "1" }

[[context.default.route]]
name = "a"
match = '^1$'
reject = { status = 404 }

[[context.default.route]]
name = "a"
match = '^2$'
to = { user = "2" }

[[context.default.route]]
match = '^3$'
reject = { status = 200 }

[[context."bad name".route]]
match = '^1$'
to = { user = "1" }
"#,
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].contains(":3: context.public.route[0].match"), "{e:#?}");
    assert!(
        e[1].contains(":11: context.default.route[1].name: \"a\" is the name of rule #0 (line 6)"),
        "{e:#?}"
    );
    assert!(
        e[2].contains(":18: context.default.route[2].reject.status"),
        "{e:#?}"
    );
    assert!(
        e[3].contains(":20: context.bad name: a context name is"),
        "{e:#?}"
    );
}

#[test]
fn regexes_are_size_limited() {
    // Fine: dial patterns, long ones included.
    for p in [
        r"^9(\d{7,15})$",
        r"^\+?(\d{1,32})$",
        r"^[0-9*#+]{1,64}$",
        r"(?i)^sip-user-[a-z0-9]{1,64}$",
        r"^(?:00|\+)(?:1|44|49|33)(\d{6,14})$",
    ] {
        assert!(super::parse::compile(p).is_ok(), "{p}");
    }
    // Unicode \w a hundred times is megabytes once compiled: the regex crate's own default
    // limit (10 MiB) would build it, ours refuses it.
    assert!(regex::Regex::new(r"\w{100}").is_ok());
    let e = one_error("[[context.default.route]]\nmatch = '\\w{100}'\nto = { user = \"1\" }\n");
    assert!(
        e.contains(":2: context.default.route[0].match: the pattern is too big once compiled"),
        "{e}"
    );
}

#[test]
fn hostile_numbers_match_in_linear_time() {
    // The classic catastrophic-backtracking pattern and input: instant with a linear engine.
    let d = parse("[[context.default.route]]\nmatch = '^(a+)+$'\nto = { user = \"1\" }\n").unwrap();
    let evil = format!("{}!", "a".repeat(50_000));
    let started = std::time::Instant::now();
    assert_eq!(d.route("default", &evil).target, Target::NoMatch);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn catch_alls_are_recognised_by_what_they_match() {
    for p in [
        ".*", "^.*$", "^(.*)$", ".+", "^(.+)$", ".", "(?s).*", r"^[^@]*$", "^",
    ] {
        assert!(is_catch_all(&regex::Regex::new(p).unwrap()), "{p}");
    }
    for p in [
        r"^\d+$",
        r"^(1\d{3})$",
        "^.{2,}$",
        r"^\+?\d*$",
        "^[a-z0-9]+$",
        "x",
    ] {
        assert!(!is_catch_all(&regex::Regex::new(p).unwrap()), "{p}");
    }
}

#[test]
fn rules_after_a_catch_all_are_unreachable() {
    let text = r#"
[[context.default.route]]
name = "anything"
match = '^(.*)$'
to = { user = "1000" }

[[context.default.route]]
name = "never"
match = '^200$'
to = { user = "1000" }

[[context.public.route]]
match = '^200$'
to = { user = "1000" }
"#;
    let e = validate(text, &["1000"], &[]);
    assert_eq!(
        e,
        [format!(
            "{FILE}:7: context.default.route[1].match: unreachable (rule \"anything\" at line 2 \
             is a catch-all)"
        )]
    );
    // The issue's example ends with its catch-all: nothing after it, all valid.
    let ok = validate(EXAMPLE, &["1000", "1001", "1002"], &["provider"]);
    assert!(ok.is_empty(), "{ok:#?}");
}

#[test]
fn unknown_users_and_gateways_are_reported_with_file_line_and_key() {
    let e = validate(EXAMPLE, &["1000", "1002"], &["other"]);
    assert_eq!(
        e,
        [
            format!(
                "{FILE}:10: context.default.route[1].to.gateway: no [[gateway]] named \"provider\" \
                 in the config (known: other)"
            ),
            format!(
                "{FILE}:16: context.default.route[2].to.group[1]: no such user \"1001\" in the \
                 users directory"
            ),
            format!(
                "{FILE}:21: context.public.route[0].to.group[1]: no such user \"1001\" in the \
                 users directory"
            ),
        ]
    );
    // A templated user cannot be checked: "$1" passes whatever the users are.
    let templated = "[[context.default.route]]\nmatch = '^(\\d+)$'\nto = { user = \"$1\" }\n";
    assert!(validate(templated, &["1000"], &[]).is_empty());
    let literal = "[[context.default.route]]\nmatch = '^0$'\nto = { user = \"1999\" }\n";
    assert_eq!(
        validate(literal, &["1000"], &[]),
        [format!(
            "{FILE}:3: context.default.route[0].to.user: no such user \"1999\" in the users \
             directory"
        )]
    );
}

#[test]
fn the_public_context_never_reaches_a_gateway() {
    let text = r#"
[[context.public.route]]
name = "open relay"
match = '^9(\d+)$'
to = { gateway = "provider", number = "$1" }
"#;
    let e = validate(text, &[], &["provider"]);
    assert_eq!(
        e,
        [format!(
            "{FILE}:5: context.public.route[0].to.gateway: the public context must not reach a \
             gateway (unauthenticated callers would dial out through it)"
        )]
    );
}

#[test]
fn users_forwards_and_contexts_are_checked_against_the_dialplan() {
    let d = parse(EXAMPLE).unwrap();
    let mut list: Vec<User> = ["1000", "1001", "1002"]
        .iter()
        .enumerate()
        .map(|(i, id)| user(id, i + 1))
        .collect();
    list[0].forward_busy = Some("1001".into()); // fine
    list[0].forward_no_answer = Some("95551234567".into()); // out through the gateway: fine
    list[1].forward_all = Some("1001".into()); // itself: a loop
    list[1].forward_busy = Some("1999".into()); // an extension nobody has
    list[2].forward_no_answer = Some(String::new());
    let u = Users::from_list(list).unwrap();
    let e: Vec<String> = d
        .validate(&u, &[gateway("provider")])
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with(
            "users/u.toml:2: user \"1001\" forward_all: \"1001\" leads back to \"1001\""
        ),
        "{e:#?}"
    );
    assert!(
        e[1].starts_with(
            "users/u.toml:2: user \"1001\" forward_busy: \"1999\" leads to no such user \"1999\""
        ),
        "{e:#?}"
    );
    assert!(
        e[2].starts_with("users/u.toml:3: user \"1002\" forward_no_answer: is empty"),
        "{e:#?}"
    );

    // A user in a context the file lacks: one error for the context.
    let mut list = vec![user("1000", 1), user("1001", 2), user("1002", 3)];
    list[1].context = Some("office".into());
    list[2].context = Some("office".into());
    let e: Vec<String> = d
        .validate(&Users::from_list(list).unwrap(), &[gateway("provider")])
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        e,
        [format!(
            "{FILE}: context.office: no such context, but 2 users call from it (the first: \
             \"1001\" at users/u.toml:2); every call of theirs would get 404"
        )]
    );

    // The builtin dialplan: a forward to a user that does not exist is caught too.
    let mut list = vec![user("1000", 1)];
    list[0].forward_no_answer = Some("2000".into());
    let e = Dialplan::builtin().validate(&Users::from_list(list).unwrap(), &[]);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].to_string().contains("\"2000\" leads to no such user"),
        "{}",
        e[0]
    );
}

#[test]
fn decisions_serialise_to_json_for_route_json() {
    let d = parse(EXAMPLE).unwrap();
    let v = serde_json::to_value(d.route("default", "200")).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "context": "default",
            "rule": {"name": "sales", "file": FILE, "line": 13},
            "target": {"group": {"members": ["1000", "1001", "1002"], "strategy": "parallel", "timeout": 20}},
            "caller_id": null
        })
    );
    let v = serde_json::to_value(d.route("public", "1")).unwrap();
    assert_eq!(v["target"], "no_match");
}
