//! Issue 12's configuration: `[[gateway]]` tables, `[server] dialplan`, and the users' routing
//! keys (`forward_*`, `no_answer_timeout`, `context`). A bad value is refused with the file,
//! the line and the key; `check` reports the dialplan's own errors and its cross-checks.

use ferroswitch::config::{check, Config, ConfigErrors};
use ferroswitch::net::Transport;
use ferroswitch::routing::Target;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh directory with `ferroswitch.toml`, `users/a.toml` and, when given, `dialplan.toml`.
fn setup(name: &str, main: &str, users: &str, dialplan: Option<&str>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("config_routing")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("users")).unwrap();
    std::fs::write(dir.join("ferroswitch.toml"), main).unwrap();
    std::fs::write(dir.join("users/a.toml"), users).unwrap();
    if let Some(d) = dialplan {
        std::fs::write(dir.join("dialplan.toml"), d).unwrap();
    }
    dir.join("ferroswitch.toml")
}

const USERS: &str = "[[user]]\nid = \"1000\"\npassword = \"long enough pw\"\n\n[[user]]\nid = \"1001\"\npassword = \"long enough pw\"\n";

fn errors(name: &str, main: &str, users: &str) -> Vec<String> {
    let path = setup(name, main, users, None);
    let e: ConfigErrors = Config::load(&path).expect_err("config should be refused");
    e.0.iter().map(|e| e.to_string()).collect()
}

const GATEWAY: &str = r#"
[[gateway]]
name = "provider"
proxy = "sip.provider.example"
username = "acct1234"
password = "s3cret"
"#;

#[test]
fn gateways_parse_with_defaults_and_every_key() {
    let main = format!(
        "{GATEWAY}\n[[gateway]]\nname = \"backup.v6\"\nproxy = \"[2001:db8::7]:5080\"\n\
         transport = \"TCP\"\nusername = \"u2\"\npassword = \"p2\"\nrealm = \"sip.example\"\n\
         register = true\nexpires = 3600\nfrom_user = \"4420\"\ncaller_id_in_from = true\n\
         ping = 0\n\n[[gateway]]\nname = \"lan\"\nproxy = \"192.0.2.9:5070\"\nusername = \"u3\"\n\
         password = \"p3\"\nrealm = \"\"\n"
    );
    let c = Config::load(&setup("gateways_ok", &main, USERS, None)).unwrap();
    assert_eq!(c.gateways.len(), 3);
    let g = &c.gateways[0];
    assert_eq!(
        (g.name.as_str(), g.proxy.as_str(), g.host.as_str(), g.port),
        (
            "provider",
            "sip.provider.example",
            "sip.provider.example",
            None
        )
    );
    assert_eq!(
        (g.username.as_str(), g.password.as_str()),
        ("acct1234", "s3cret")
    );
    assert_eq!(g.transport, Transport::Udp);
    assert_eq!(g.realm, None);
    assert!(!g.register && !g.caller_id_in_from);
    assert_eq!(
        (g.expires, g.ping, g.from_user.clone(), g.line),
        (600, 30, None, 2)
    );
    let v6 = &c.gateways[1];
    assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::7", Some(5080)));
    assert_eq!(v6.transport, Transport::Tcp);
    assert_eq!(v6.realm.as_deref(), Some("sip.example"));
    assert!(v6.register && v6.caller_id_in_from);
    assert_eq!((v6.expires, v6.ping), (3600, 0));
    assert_eq!(v6.from_user.as_deref(), Some("4420"));
    let lan = &c.gateways[2];
    assert_eq!(
        (lan.host.as_str(), lan.port, lan.realm.clone()),
        ("192.0.2.9", Some(5070), None)
    );
}

#[test]
fn bad_gateways_are_named_by_index_line_and_key() {
    let main = r#"
[[gateway]]
name = "provider"
proxy = "sip.provider.example:0"
transport = "tls"
username = "acct 1234"
password = ""
expires = 30
ping = 2

[[gateway]]
name = "provider"
proxy = "sip2.provider.example"
username = "a"
password = "b"

[[gateway]]
name = "my provider"
proxy = "2001:db8::1"
transport = "sctp"
username = "a"
password = "b"
from_user = ""

[[gateway]]
proxy = "x.example"
"#;
    let lines = errors("gateways_bad", main, USERS);
    let all = lines.join("\n");
    for want in [
        "ferroswitch.toml:4: gateway[0].proxy: \"0\" is not a port (1 to 65535)",
        "ferroswitch.toml:5: gateway[0].transport: tls to a gateway is not supported yet; use \"udp\" or \"tcp\"",
        "ferroswitch.toml:6: gateway[0].username: \"acct 1234\" may not contain spaces",
        "ferroswitch.toml:7: gateway[0].password: must not be empty",
        "ferroswitch.toml:8: gateway[0].expires: 30 is out of range (60 to 86400 seconds)",
        "ferroswitch.toml:9: gateway[0].ping: 2 is out of range (0 = off, or 5 to 3600 seconds)",
        "ferroswitch.toml:18: gateway[2].name: \"my provider\" may hold only letters",
        "ferroswitch.toml:19: gateway[2].proxy: \"2001:db8::1\": write an IPv6 address in brackets",
        "ferroswitch.toml:20: gateway[2].transport: \"sctp\" is neither \"udp\" nor \"tcp\"",
        "ferroswitch.toml:23: gateway[2].from_user: \"\" must not be empty",
        "ferroswitch.toml:25: gateway[3].name: is missing",
        "ferroswitch.toml:25: gateway[3].username: is missing",
        "ferroswitch.toml:25: gateway[3].password: is missing",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    // The second "provider" is fine on its own: it is refused only as a duplicate, once
    // the first is valid.
    assert!(!all.contains("gateway[1]"), "{all}");
    let dup = format!("{GATEWAY}{GATEWAY}");
    let lines = errors("gateways_dup", &dup, USERS);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(
            "ferroswitch.toml:8: gateway[1].name: \"provider\" is also the name of the gateway at line 2"
        ),
        "{}",
        lines[0]
    );
    // Strict: an unknown key in a gateway is an error with its line.
    let typo = GATEWAY.replace("username", "user_name");
    let lines = errors("gateways_typo", &typo, USERS);
    assert!(
        lines.len() == 1 && lines[0].contains(":5: [[gateway]]: unknown field `user_name`"),
        "{lines:#?}"
    );
}

#[test]
fn users_parse_their_forwards_timeout_and_context() {
    let users = "[[user]]\nid = \"1000\"\npassword = \"long enough pw\"\nforward_all = \"1001\"\n\
                 forward_busy = \"+15551234567\"\nforward_no_answer = \"1001\"\n\
                 no_answer_timeout = 15\ncontext = \"office\"\n\n[[user]]\nid = \"1001\"\n\
                 password = \"long enough pw\"\n";
    let c = Config::load(&setup("user_forwards", "", users, None)).unwrap();
    let u = c.users.get("1000").unwrap();
    assert_eq!(u.forward_all.as_deref(), Some("1001"));
    assert_eq!(u.forward_busy.as_deref(), Some("+15551234567"));
    assert_eq!(u.forward_no_answer.as_deref(), Some("1001"));
    assert_eq!(u.no_answer_timeout, Some(Duration::from_secs(15)));
    assert_eq!(u.context.as_deref(), Some("office"));
    let plain = c.users.get("1001").unwrap();
    assert_eq!(
        (
            &plain.forward_all,
            &plain.forward_busy,
            &plain.forward_no_answer,
            plain.no_answer_timeout,
            &plain.context
        ),
        (&None, &None, &None, None, &None)
    );
}

#[test]
fn bad_user_routing_keys_are_named_with_line_and_key() {
    let users = "[[user]]\nid = \"1000\"\npassword = \"long enough pw\"\nforward_all = \"\"\n\
                 forward_busy = \"10 01\"\nno_answer_timeout = 0\ncontext = \"my context\"\n";
    let lines = errors("user_forwards_bad", "", users);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let all = lines.join("\n");
    for want in [
        "users/a.toml:4: user[0].forward_all: \"\" must be a number without spaces",
        "users/a.toml:5: user[0].forward_busy: \"10 01\" must be a number without spaces",
        "users/a.toml:6: user[0].no_answer_timeout: 0 is out of range (1 to 3600 seconds)",
        "users/a.toml:7: user[0].context: \"my context\" is not a context name",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    let typo = "[[user]]\nid = \"1000\"\npassword = \"long enough pw\"\nforward = \"1001\"\n";
    let lines = errors("user_forward_typo", "", typo);
    assert!(
        lines.len() == 1 && lines[0].contains("users/a.toml:4: [[user]]: unknown field `forward`"),
        "{lines:#?}"
    );
}

#[test]
fn the_dialplan_path_is_relative_to_the_config_file_and_must_exist() {
    let main = "[server]\ndialplan = \"dialplan.toml\"\n";
    let dialplan = "[[context.default.route]]\nmatch = '^(1\\d{3})$'\nto = { user = \"$1\" }\n";
    let path = setup("dialplan_ok", main, USERS, Some(dialplan));
    let c = Config::load(&path).unwrap();
    let want = path.parent().unwrap().join("dialplan.toml");
    assert_eq!(c.dialplan.as_deref(), Some(want.as_path()));
    let d = c.load_dialplan().unwrap();
    assert!(!d.is_builtin());
    assert_eq!(
        d.route("default", "1001").target,
        Target::User("1001".into())
    );
    assert_eq!(d.route("default", "2001").target, Target::NoMatch);

    let main = "[server]\nusers = \"users\"\ndialplan = \"nope.toml\"\n";
    let lines = errors("dialplan_missing", main, USERS);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("ferroswitch.toml:3: server.dialplan: ")
            && lines[0].contains("nope.toml is not a file"),
        "{}",
        lines[0]
    );
    let lines = errors("dialplan_empty", "[server]\ndialplan = \"\"\n", USERS);
    assert!(
        lines.len() == 1 && lines[0].contains(":2: server.dialplan: must not be empty"),
        "{lines:#?}"
    );
}

#[test]
fn check_reports_dialplan_errors_and_cross_checks() {
    let main = format!("[server]\ndialplan = \"dialplan.toml\"\n{GATEWAY}");
    // A syntax problem in the dialplan: reported by check with the dialplan's file and line.
    let bad = "[[context.default.route]]\nmatch = '^(1'\nto = { user = \"1000\" }\n";
    let report = check(&setup("check_dialplan_syntax", &main, USERS, Some(bad)));
    assert!(!report.is_ok());
    assert!(report.config.is_some(), "the main config itself loaded");
    let e: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        e.len() == 1
            && e[0].contains("dialplan.toml:2: context.default.route[0].match: not a valid regex"),
        "{e:#?}"
    );
    // Cross-checks: an unknown user, an unknown gateway, a gateway in public, a rule after a
    // catch-all, a user forwarding into nowhere.
    let dialplan = r#"
[[context.default.route]]
match = '^0$'
to = { user = "1999" }

[[context.default.route]]
match = '^9(\d+)$'
to = { gateway = "carrier", number = "$1" }

[[context.default.route]]
match = '^(.+)$'
to = { user = "$1" }

[[context.default.route]]
match = '^200$'
to = { user = "1000" }

[[context.public.route]]
match = '^9(\d+)$'
to = { gateway = "provider", number = "$1" }
"#;
    let users = format!("{USERS}forward_busy = \"0\"\n");
    let report = check(&setup(
        "check_dialplan_cross",
        &main,
        &users,
        Some(dialplan),
    ));
    let e: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(e.len(), 5, "{e:#?}");
    let all = e.join("\n");
    for want in [
        "dialplan.toml:4: context.default.route[0].to.user: no such user \"1999\"",
        "dialplan.toml:8: context.default.route[1].to.gateway: no [[gateway]] named \"carrier\" in the config (known: provider)",
        "dialplan.toml:14: context.default.route[3].match: unreachable (rule \"#2\" at line 10 is a catch-all)",
        "dialplan.toml:20: context.public.route[0].to.gateway: the public context must not reach a gateway",
        "users/a.toml:6: user \"1001\" forward_busy: \"0\" leads to no such user \"1999\"",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}
