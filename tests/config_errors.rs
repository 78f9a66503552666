//! A bad configuration is refused with messages that name the file, the line, the key and
//! what is wrong, and every problem is reported at once. Each test writes its own files
//! under Cargo's per-target scratch directory.

use ferroswitch::auth::Secret;
use ferroswitch::config::{check, Config, ConfigErrors};
use std::path::{Path, PathBuf};

/// A fresh directory with `ferroswitch.toml` and a `users/` directory holding `files`.
fn setup(name: &str, main: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("config_errors")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("users")).unwrap();
    std::fs::write(dir.join("ferroswitch.toml"), main).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join("users").join(f), text).unwrap();
    }
    dir.join("ferroswitch.toml")
}

const ALICE: &str = "[[user]]\nid = \"alice\"\npassword = \"long enough pw\"\n";

fn errors(name: &str, main: &str, files: &[(&str, &str)]) -> (PathBuf, Vec<String>) {
    let path = setup(name, main, files);
    let e: ConfigErrors = Config::load(&path).expect_err("config should be refused");
    let lines = e.0.iter().map(|e| e.to_string()).collect();
    (path, lines)
}

fn one_error(name: &str, main: &str, files: &[(&str, &str)]) -> String {
    let (path, lines) = errors(name, main, files);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let msg = lines.into_iter().next().unwrap();
    assert!(
        msg.contains(&path.parent().unwrap().display().to_string()),
        "{msg}"
    );
    msg
}

#[test]
fn a_minimal_config_loads_with_defaults() {
    let path = setup("minimal", "", &[("a.toml", ALICE)]);
    let c = Config::load(&path).unwrap();
    assert_eq!(c.server.listen.len(), 2);
    assert_eq!(c.registrar.min_expires, 60);
    assert_eq!(c.users.len(), 1);
}

#[test]
fn unknown_key_names_file_line_table_and_key() {
    let main = "[server]\nlisten = [\"udp:0.0.0.0:5060\"]\n\n[registrar]\nmin_expire = 60\n";
    let msg = one_error("unknown_key", main, &[("a.toml", ALICE)]);
    assert!(
        msg.contains("ferroswitch.toml:5: [registrar]: unknown field `min_expire`"),
        "{msg}"
    );
    assert!(
        msg.contains("`min_expires`"),
        "the message lists the valid keys: {msg}"
    );
    let msg = one_error("unknown_table", "[sever]\n", &[("a.toml", ALICE)]);
    assert!(
        msg.contains("ferroswitch.toml:1: unknown field `sever`"),
        "{msg}"
    );
}

#[test]
fn bad_listen_entries_are_named_by_index() {
    let main = "[server]\nlisten = [\n  \"udp:0.0.0.0:5060\",\n  \"sctp:0.0.0.0:5060\",\n  \"tcp:::5060\",\n  \"udp:0.0.0.0:5060\",\n]\n";
    let (_, lines) = errors("bad_listen", main, &[("a.toml", ALICE)]);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains(
            "ferroswitch.toml:4: server.listen[1]: \"sctp:0.0.0.0:5060\": unknown transport"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("ferroswitch.toml:5: server.listen[2]:") && lines[1].contains("brackets"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("ferroswitch.toml:6: server.listen[3]: udp:0.0.0.0:5060 is listed twice"),
        "{}",
        lines[2]
    );
    let msg = one_error(
        "empty_listen",
        "[server]\nlisten = []\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains(":2: server.listen: must list at least one address"),
        "{msg}"
    );
}

#[test]
fn duplicate_users_across_files_name_both() {
    let other =
        "# second file\n[[user]]\nid = \"alice\"\nha1 = \"52568ce6a3d2fe06f08f75dad86a5e67\"\n";
    let msg = one_error("dup_user", "", &[("a.toml", ALICE), ("b.toml", other)]);
    assert!(
        msg.contains("users/b.toml:3: user.id: duplicate user \"alice\" (first defined at "),
        "{msg}"
    );
    assert!(msg.ends_with("users/a.toml:2)"), "{msg}");
}

#[test]
fn password_and_ha1_together_are_refused() {
    let both = "[[user]]\nid = \"carol\"\npassword = \"long enough pw\"\nha1 = \"52568ce6a3d2fe06f08f75dad86a5e67\"\n";
    let msg = one_error("both", "", &[("c.toml", both)]);
    assert!(
        msg.contains("users/c.toml:4: user[0].ha1: user \"carol\" has both password and ha1"),
        "{msg}"
    );
}

#[test]
fn registrar_values_are_checked() {
    let main = "[registrar]\nmin_expires = 0\nmax_expires = 30\ndefault_expires = 3600\ndigest_algorithms = [\"MD5\", \"SHA-1\", \"md5\"]\nnonce_lifetime = 1\n\n[log]\nlevel = \"loud\"\n";
    let (_, lines) = errors("registrar", main, &[("a.toml", ALICE)]);
    assert_eq!(
        lines.len(),
        5,
        "an invalid min_expires must not cascade: {lines:#?}"
    );
    let all = lines.join("\n");
    for want in [
        ":2: registrar.min_expires: 0 is out of range",
        ":5: registrar.digest_algorithms[1]: unknown algorithm \"SHA-1\"",
        ":5: registrar.digest_algorithms[2]: MD5 is listed twice",
        ":6: registrar.nonce_lifetime: 1 is out of range",
        ":9: log.level: unknown level \"loud\"",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    let msg = one_error(
        "minmax",
        "[registrar]\nmin_expires = 600\nmax_expires = 60\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains(":3: registrar.max_expires: 60 is below min_expires (600)"),
        "{msg}"
    );
    let main = "[registrar]\nmax_expires = 600\ndefault_expires = 3600\n";
    let msg = one_error("default", main, &[("a.toml", ALICE)]);
    let want = ":3: registrar.default_expires: 3600 is outside min_expires..max_expires (60..600)";
    assert!(msg.contains(want), "{msg}");
}

#[test]
fn wrong_types_and_domains() {
    let msg = one_error(
        "type",
        "[registrar]\nmin_expires = \"60\"\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains("ferroswitch.toml:2: [registrar]: invalid type: string \"60\""),
        "{msg}"
    );
    let msg = one_error(
        "domain",
        "[server]\ndomain = \"sip.example.org:5060\"\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains(":2: server.domain: \"sip.example.org:5060\" must be a host without a port"),
        "{msg}"
    );
}

#[test]
fn users_dir_is_relative_to_the_config_file_and_must_exist() {
    let msg = one_error("nodir", "[server]\nusers = \"people\"\n", &[]);
    assert!(
        msg.contains(":2: server.users: ") && msg.contains("people is not a directory"),
        "{msg}"
    );
    // The default `users` exists next to the file even though the cwd is elsewhere.
    let path = setup(
        "reldir",
        "[server]\nusers = \"users\"\n",
        &[("a.toml", ALICE)],
    );
    assert_eq!(
        Config::load(&path).unwrap().server.users_dir,
        path.parent().unwrap().join("users")
    );
}

#[test]
fn problems_in_several_files_are_all_reported() {
    let bad_user = "[[user]]\nid = \"x\"\n";
    let bad_syntax = "[[user]\nid = \"y\"\n";
    let (_, lines) = errors(
        "several",
        "[server]\nlisten = [\"sctp:0.0.0.0:5061\"]\n",
        &[("a.toml", bad_user), ("b.toml", bad_syntax)],
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("server.listen[0]"));
    assert!(lines[1]
        .contains("users/a.toml:2: user[0].password: user \"x\" needs a password or an ha1"));
    assert!(lines[2].contains("users/b.toml:1:"));
}

#[test]
fn check_reports_warnings_for_weak_and_ha1_users() {
    let weak = "[[user]]\nid = \"1000\"\npassword = \"1000\"\n[[user]]\nid = \"1001\"\nha1 = \"00112233445566778899aabbccddeeff\"\n[[user]]\nid = \"1002\"\npassword = \"1234\"\nenabled = false\n";
    let path = setup(
        "warnings",
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n[registrar]\ndigest_algorithms = [\"SHA-256\", \"MD5\"]\n",
        &[("w.toml", weak)],
    );
    let r = check(&path);
    assert!(r.is_ok(), "{:?}", r.errors);
    let all: Vec<String> = r.warnings.iter().map(|w| w.to_string()).collect();
    let all = all.join("\n");
    assert!(
        all.contains(
            "users/w.toml:2: user \"1000\": weak password: the password equals the user id"
        ),
        "{all}"
    );
    assert!(all.contains("shorter than 8 characters"), "{all}");
    assert!(
        !all.contains("1002"),
        "disabled users are not flagged: {all}"
    );
    assert!(
        all.contains("server.domain: 1 users have an ha1 but no domain is set"),
        "{all}"
    );
    assert!(
        all.contains("registrar.digest_algorithms: 1 users have only an MD5 ha1"),
        "{all}"
    );
    let c = r.config.unwrap();
    assert_eq!(
        c.users.get("1001").unwrap().secret,
        Secret::Ha1 {
            hex: "00112233445566778899aabbccddeeff".into(),
            realm: None
        }
    );
}

#[test]
fn empty_users_dir_and_unreadable_file() {
    let path = setup("empty", "", &[]);
    let r = check(&path);
    assert!(r.is_ok());
    assert!(
        r.warnings[0]
            .to_string()
            .contains("server.users: no users in"),
        "{:?}",
        r.warnings
    );
    let missing = path.parent().unwrap().join("nope.toml");
    let r = check(&missing);
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0]
        .to_string()
        .starts_with(&format!("{}: cannot read:", missing.display())));
}

/// Issue 17.4: a weak password is an error, naming the user, file and line, as soon as one
/// listener is not loopback; `[security] allow_weak_passwords = true` makes it a warning.
#[test]
fn weak_password_on_a_public_listener_is_refused_unless_allowed() {
    let weak = "[[user]]\nid = \"1000\"\npassword = \"1000\"\n";
    let main = "[server]\nlisten = [\"udp:127.0.0.1:5060\", \"udp:0.0.0.0:5070\"]\n";
    let msg = one_error("weak-public", main, &[("w.toml", weak)]);
    assert!(
        msg.contains(
            "users/w.toml:2: user \"1000\": weak password (the password equals the user id"
        ),
        "{msg}"
    );
    assert!(msg.contains("listens on udp:0.0.0.0:5070"), "{msg}");

    let allowed = format!("{main}\n[security]\nallow_weak_passwords = true\n");
    let path = setup("weak-allowed", &allowed, &[("w.toml", weak)]);
    let r = check(&path);
    assert!(r.is_ok(), "{:?}", r.errors);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.message.starts_with("weak password")));
}

/// Issue 17.13: the Server/User-Agent value carries no version unless configured; an empty
/// one means no header; a value with a line break is refused.
#[test]
fn server_user_agent_defaults_without_the_version() {
    let path = setup("ua-default", "", &[("a.toml", ALICE)]);
    let c = Config::load(&path).unwrap();
    assert_eq!(c.server.user_agent, "ferroswitch");
    let engine = ferroswitch::app::engine_config(&c);
    assert_eq!(engine.user_agent, "ferroswitch");

    let path = setup(
        "ua-empty",
        "[server]\nuser_agent = \"\"\n",
        &[("a.toml", ALICE)],
    );
    let c = Config::load(&path).unwrap();
    assert_eq!(ferroswitch::app::engine_config(&c).user_agent, "");

    let msg = one_error(
        "ua-bad",
        "[server]\nuser_agent = \"pbx\\r\\nX-Evil: 1\"\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains("ferroswitch.toml:2: server.user_agent: must be"),
        "{msg}"
    );
}

#[test]
fn tcp_limits_and_timeouts_reach_the_transport() {
    let path = setup("tcp-default", "", &[("a.toml", ALICE)]);
    let t = ferroswitch::app::transport_config(&Config::load(&path).unwrap());
    assert_eq!(
        (t.idle_timeout.as_secs(), t.untrusted_idle_timeout.as_secs()),
        (300, 30)
    );
    assert_eq!((t.max_connections, t.max_connections_per_ip), (1024, 32));

    let path = setup(
        "tcp-set",
        "[tcp]\nidle_timeout = 900\nuntrusted_idle_timeout = 10\nmax_connections = 4096\nmax_connections_per_ip = 4\n",
        &[("a.toml", ALICE)],
    );
    let t = ferroswitch::app::transport_config(&Config::load(&path).unwrap());
    assert_eq!(
        (t.idle_timeout.as_secs(), t.untrusted_idle_timeout.as_secs()),
        (900, 10)
    );
    assert_eq!((t.max_connections, t.max_connections_per_ip), (4096, 4));

    let msg = one_error(
        "tcp-bad",
        "[tcp]\nidle_timeout = 60\nuntrusted_idle_timeout = 120\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains("ferroswitch.toml:3: tcp.untrusted_idle_timeout: 120 is longer than tcp.idle_timeout (60)"),
        "{msg}"
    );
    let msg = one_error(
        "tcp-zero",
        "[tcp]\nmax_connections = 0\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains("tcp.max_connections: 0 is out of range"),
        "{msg}"
    );
}

#[test]
fn media_section_problems_are_all_reported_with_file_line_and_key() {
    let main = "[media]\nrtp_ports = \"16385-32767\"\next_rtp_ip = \"nat.example.org\"\n\
                media_timeout = 0\nthreads = 2\nmode = \"relay\"\n";
    let (path, lines) = errors("media", main, &[("a.toml", ALICE)]);
    let file = path.display().to_string();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!("{file}:2: media.rtp_ports: ")),
        "{lines:#?}"
    );
    assert!(lines[0].contains("even"), "{lines:#?}");
    assert!(
        lines[1].starts_with(&format!("{file}:3: media.ext_rtp_ip: ")),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with(&format!("{file}:4: media.media_timeout: ")),
        "{lines:#?}"
    );
    let msg = one_error(
        "media_unknown",
        "[media]\nrtp_port = 1\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        msg.contains(":2: [media]: unknown field `rtp_port`"),
        "{msg}"
    );
}

/// `[control]` and `[metrics]` are strict like the rest: a bad address or an unknown key is
/// named with its file, line and key.
#[test]
fn control_and_metrics_sections_are_checked() {
    let main = "[control]\nsocket = \"run/ctl.sock\"\n[metrics]\nlisten = \"127.0.0.1:9090\"\n";
    let path = setup("ops-ok", main, &[("a.toml", ALICE)]);
    let c = Config::load(&path).expect("valid");
    let dir = path.parent().unwrap();
    assert_eq!(c.control.socket, Some(dir.join("run/ctl.sock")));
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9090".parse().unwrap()));
    let e = one_error(
        "ops-bad",
        "\n[metrics]\nlisten = \"localhost:9090\"\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        e.ends_with("ferroswitch.toml:3: metrics.listen: \"localhost:9090\" is not an address and port (like \"127.0.0.1:9090\")"),
        "{e}"
    );
    let e = one_error(
        "ops-unknown",
        "[control]\npath = \"x\"\n",
        &[("a.toml", ALICE)],
    );
    assert!(
        e.contains("ferroswitch.toml:2: [control]: unknown field `path`"),
        "{e}"
    );
}
