//! Every configuration file shipped in `conf/` parses, and says what the README and issue 3
//! promise: UDP and TCP on 0.0.0.0:5060, no domain (any local address), registrar defaults,
//! the seed's alice and bob (shipped disabled: their password is public and weak) and
//! extensions 1000-1019 (not flagged). The commented dialplan and gateway examples work once
//! uncommented.

use ferroswitch::auth::{
    parse_credentials, verify, Account, Credentials, DigestRequest, NonceStatus, Outcome,
};
use ferroswitch::config::{check, parse_users_file, Config, LogLevel};
use ferroswitch::net::Transport;
use ferroswitch::routing::{Dialplan, Strategy, Target, DEFAULT_CONTEXT, PUBLIC_CONTEXT};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf")
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

#[test]
fn every_shipped_toml_file_parses() {
    let mut files = Vec::new();
    toml_files(&conf(), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let in_users_dir = f.parent().and_then(|p| p.file_name()) == Some("users".as_ref());
        let in_cluster_dir = f.parent().and_then(|p| p.file_name()) == Some("cluster".as_ref());
        if in_cluster_dir {
            // A node's config names files it expects beside it (users, nonce.key):
            // tests/cli.rs checks it in a directory that has them.
            continue;
        } else if in_users_dir {
            let users = parse_users_file(&text, &f, None).unwrap_or_else(|e| panic!("{e}"));
            assert!(!users.is_empty(), "{} holds no users", f.display());
        } else if f.file_name() == Some("dialplan.toml".as_ref()) {
            Dialplan::parse(&text, &f).unwrap_or_else(|e| panic!("{e}"));
        } else {
            Config::from_toml(&text, &f).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn main_config_has_the_documented_values() {
    let c = Config::load(&conf().join("ferroswitch.toml")).unwrap();
    let listen: Vec<String> = c.server.listen.iter().map(|l| l.to_string()).collect();
    assert_eq!(listen, ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]);
    assert_eq!(c.server.domain, None);
    assert_eq!(c.realm_for("192.168.4.4"), "192.168.4.4");
    assert_eq!(c.server.users_dir, conf().join("users"));
    let r = &c.registrar;
    assert_eq!(
        (r.min_expires, r.max_expires, r.default_expires),
        (60, 3600, 3600)
    );
    assert_eq!(r.digest_algorithms, [ferroswitch::auth::Algorithm::Md5]);
    assert_eq!(r.nonce_lifetime, Duration::from_secs(300));
    assert!(r.auth_calls);
    assert_eq!(c.log.level, LogLevel::Info);
    assert!(!c.log.sip_trace);
    assert_eq!(c.server.user_agent, "ferroswitch", "no version disclosed");
    let sec = &c.security;
    assert!(!sec.allow_weak_passwords);
    assert_eq!(
        (
            sec.max_account_failures,
            sec.account_failure_window,
            sec.account_lock_time,
            sec.global_failure_alarm
        ),
        (20, Duration::from_secs(300), Duration::from_secs(600), 100)
    );
    assert_eq!(*sec, ferroswitch::security::SecurityConfig::default());
    // The [tcp] table shows the defaults too.
    assert_eq!(c.tcp, ferroswitch::config::TcpConfig::default());
    assert_eq!(c.tcp.untrusted_idle_timeout, Duration::from_secs(30));
    // So does [media] (issue 11), with the addresses left to the SIP leg.
    assert_eq!(c.media, ferroswitch::media::MediaConfig::default());
}

#[test]
fn shipped_users_are_alice_bob_and_1000_to_1019() {
    let c = Config::load(&conf().join("ferroswitch.toml")).unwrap();
    assert_eq!(c.users.len(), 22);
    for n in 1000..1020 {
        assert!(c.users.get(&n.to_string()).unwrap().enabled);
    }
    for n in 1000..1020 {
        let u = c
            .users
            .get(&n.to_string())
            .unwrap_or_else(|| panic!("user {n}"));
        assert_eq!(
            u.display_name.as_deref(),
            Some(format!("Extension {n}").as_str())
        );
    }
    assert!(c.users.get("1020").is_none());
}

/// Issue 17.4: `alice`/`1234` must not register from anywhere on a fresh install.
#[test]
fn shipped_demo_users_are_disabled() {
    let c = Config::load(&conf().join("ferroswitch.toml")).unwrap();
    for id in ["alice", "bob"] {
        let u = c.users.get(id).unwrap();
        assert!(!u.enabled, "{id} is shipped enabled");
        assert!(u.file.ends_with("users/demo.toml"), "{}", u.file.display());
    }
}

#[test]
fn no_enabled_shipped_user_has_a_weak_password() {
    let report = check(&conf().join("ferroswitch.toml"));
    assert!(report.is_ok(), "{:?}", report.errors);
    let c = report.config.as_ref().unwrap();
    for u in c.users.iter().filter(|u| u.enabled) {
        let why = ferroswitch::config::weak_password_reasons(&u.id, &u.secret);
        assert!(why.is_empty(), "{}: {why:?}", u.id);
    }
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Enabling the demo users as shipped (weak, on 0.0.0.0) is refused, naming both.
    let demo = std::fs::read_to_string(conf().join("users/demo.toml")).unwrap();
    let enabled = demo.replace("enabled = false", "enabled = true");
    let dir = std::env::temp_dir().join(format!("ferroswitch-shipped-demo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("users")).unwrap();
    std::fs::write(dir.join("users/demo.toml"), enabled).unwrap();
    let main = std::fs::read_to_string(conf().join("ferroswitch.toml")).unwrap();
    let e = Config::from_toml(&main, &dir.join("ferroswitch.toml"))
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(e.contains("user \"alice\": weak password"), "{e}");
    assert!(e.contains("user \"bob\": weak password"), "{e}");
}

#[test]
fn shipped_alice_authenticates_the_seed_register() {
    let c = Config::load(&conf().join("ferroswitch.toml")).unwrap();
    // trace/03's Authorization, sent to 192.168.4.4 (our realm when no domain is set).
    let value = r#"Digest username="alice",realm="192.168.4.4",nonce="62fb812c-71d2-4a36-93d6-e0008e6a63ee",uri="sip:192.168.4.4;transport=UDP",response="32b5ddaea8647a3becd25cb84346b1c3",cnonce="b4c6ac7e57fc76b85df9440994e2ede8",nc=00000001,qop=auth,algorithm=MD5"#;
    let Credentials::Digest(creds) = parse_credentials(value).unwrap() else {
        panic!("not digest")
    };
    let user = c.users.get(&creds.username).unwrap();
    let req = DigestRequest {
        method: "REGISTER",
        body: b"",
        realm: c.realm_for("192.168.4.4"),
    };
    let account = Account {
        username: &user.id,
        secret: &user.secret,
    };
    assert_eq!(
        verify(&creds, &req, Some(account), NonceStatus::Valid),
        Outcome::Ok
    );
}

#[test]
fn systemd_unit_runs_the_daemon_with_its_config() {
    let unit = std::fs::read_to_string(conf().join("ferroswitch.service")).unwrap();
    assert!(unit.contains(
        "\nExecStart=/usr/local/bin/ferroswitch --config /etc/ferroswitch/ferroswitch.toml\n"
    ));
    assert!(unit.contains("\n[Install]\nWantedBy=multi-user.target\n"));
}

/// Issue 13: the registrations database needs a writable directory under the unit's
/// ProtectSystem=strict; StateDirectory gives it one, and the install steps point the store
/// there.
#[test]
fn systemd_unit_gives_the_registrations_database_a_state_directory() {
    let unit = std::fs::read_to_string(conf().join("ferroswitch.service")).unwrap();
    assert!(unit.contains("\nStateDirectory=ferroswitch\n"));
    assert!(unit.contains("store = \"sqlite:/var/lib/ferroswitch/registrations.db\""));
    let shipped = std::fs::read_to_string(conf().join("ferroswitch.toml")).unwrap();
    assert!(shipped.contains("\nstore = \"sqlite:registrations.db\"\n"));
}

/// Issue 12: the shipped config sets no dialplan (the builtin one: every number is a user) and
/// no gateway, so it behaves as before dialplans existed.
#[test]
fn shipped_config_routes_every_number_to_a_user() {
    let c = Config::load(&conf().join("ferroswitch.toml")).unwrap();
    assert_eq!(c.dialplan, None);
    assert!(c.gateways.is_empty());
    let d = c.load_dialplan().unwrap();
    assert!(d.is_builtin());
    assert_eq!(
        d.route(DEFAULT_CONTEXT, "1000").target,
        Target::User("1000".into())
    );
    assert_eq!(
        d.route(PUBLIC_CONTEXT, "bob").target,
        Target::User("bob".into())
    );
}

/// The shipped dialplan validates against the shipped users, and with the commented
/// `dialplan` line, `[[gateway]]` example and outbound rule uncommented, everything still
/// loads, validates and routes as the comments say.
#[test]
fn shipped_dialplan_and_gateway_examples_validate_once_uncommented() {
    let c = Config::load(&conf().join("ferroswitch.toml")).unwrap();
    let path = conf().join("dialplan.toml");
    let d = Dialplan::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let errors = d.validate(&c.users, &c.gateways);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        d.route(DEFAULT_CONTEXT, "1019").target,
        Target::User("1019".into())
    );
    let r = d.route(DEFAULT_CONTEXT, "95551234567");
    assert_eq!(
        r.target,
        Target::Reject {
            status: 404,
            reason: None
        }
    );
    assert_eq!(r.rule.unwrap().name, "not found");
    let did = d.route(PUBLIC_CONTEXT, "+15551230000").target;
    assert!(
        matches!(
            did,
            Target::Group {
                strategy: Strategy::Sequential,
                ..
            }
        ),
        "{did:?}"
    );

    // Uncommented: `# key = ...` lines become `key = ...`, `# [[...]]` headers become tables.
    let uncomment = |text: &str, from: &str| -> String {
        let start = text
            .find(from)
            .unwrap_or_else(|| panic!("{from:?} not shipped"));
        let (head, tail) = text.split_at(start);
        let mut out = head.to_string();
        for line in tail.lines() {
            let l = line.strip_prefix("# ").unwrap_or(line);
            let is_code = l.starts_with('[')
                || l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                });
            out.push_str(if is_code { l } else { line });
            out.push('\n');
        }
        out
    };
    let main = std::fs::read_to_string(conf().join("ferroswitch.toml")).unwrap();
    let main = main.replace(
        "# dialplan = \"dialplan.toml\"",
        "dialplan = \"dialplan.toml\"",
    );
    let main = uncomment(&main, "# [[gateway]]");
    let c = Config::from_toml(&main, &conf().join("ferroswitch.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.dialplan.as_deref(), Some(path.as_path()));
    assert_eq!(c.gateways.len(), 1);
    let g = &c.gateways[0];
    assert_eq!(
        (g.name.as_str(), g.host.as_str(), g.port, g.transport),
        ("provider", "sip.provider.example", None, Transport::Udp)
    );
    assert_eq!(
        (g.register, g.expires, g.ping, g.realm.clone()),
        (true, 600, 30, None)
    );
    assert_eq!(c.load_dialplan().unwrap().file(), Some(path.as_path()));

    let text = std::fs::read_to_string(&path).unwrap();
    let text = uncomment(&text, "# [[context.default.route]]\n# name = \"outbound\"");
    let d = Dialplan::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    let errors = d.validate(&c.users, &c.gateways);
    assert!(errors.is_empty(), "{errors:?}");
    let r = d.route(DEFAULT_CONTEXT, "95551234567");
    assert_eq!(
        r.target,
        Target::Gateway {
            gateway: "provider".into(),
            number: "+15551234567".into()
        }
    );
    assert_eq!(r.caller_id.unwrap().name.as_deref(), Some("Example Ltd"));
    assert!(matches!(
        d.route(DEFAULT_CONTEXT, "200").target,
        Target::Group {
            strategy: Strategy::Parallel,
            ..
        }
    ));
    // Without the gateway, the outbound rule is an error naming it.
    let e = d.validate(&c.users, &[]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].to_string()
            .contains("no [[gateway]] named \"provider\""),
        "{}",
        e[0]
    );
}
