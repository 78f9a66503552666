//! The `ferroswitch` binary as an operator runs it: `check-config` on the shipped and on a
//! broken configuration, `hash-password`, and the daemon itself answering OPTIONS and
//! exiting cleanly on SIGTERM. Every wait on the child process is bounded; a child still
//! running when a test fails is killed (it is ours, by its pid).

mod common;

use common::{write_config, TempDir, USERS_TOML, WAIT};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn ferroswitch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferroswitch"));
    // The test's own environment must not change the binary's logging.
    c.env_remove("RUST_LOG");
    c
}

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/ferroswitch.toml")
}

/// What a finished run printed.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with `stdin` as its input, to completion, bounded by `limit`. Output is read on
/// threads so a chatty child cannot block on a full pipe.
fn run(mut cmd: Command, stdin: &[u8], limit: Duration) -> Output {
    let mut child = Guard(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferroswitch"),
    );
    let stdout = drain(child.0.stdout.take().expect("piped stdout"));
    let stderr = drain(child.0.stderr.take().expect("piped stderr"));
    {
        let mut input = child.0.stdin.take().expect("piped stdin");
        input.write_all(stdin).expect("write stdin");
    } // closed here: the child sees end of input
    let status = wait_exit(&mut child.0, limit);
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        text(&rx.recv_timeout(WAIT).expect("output collected after exit"))
    };
    Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        let _ = tx.send(all);
    });
    rx
}

/// Kills the child on drop (it is ours, by its pid), so a failing test leaves no daemon
/// behind; after a normal exit the kill is a no-op.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the child exits, at most `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "ferroswitch did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_the_shipped_config_with_alice_and_bob_disabled() {
    let mut cmd = ferroswitch();
    cmd.arg("check-config")
        .arg("--config")
        .arg(shipped_config());
    let out = run(cmd, b"", WAIT);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("OK"), "{stdout}");
    // alice and bob are shipped disabled, the extensions have strong passwords: no warning.
    assert!(!stderr.contains("weak password"), "{stderr}");
    assert!(stdout.contains("0 warnings"), "{stdout}");
}

/// Issue 17.4: a weak password on a listener other hosts can reach stops `check-config` and
/// the daemon (exit 1, naming the users); `allow_weak_passwords = true` lets both run.
#[test]
fn weak_password_on_0_0_0_0_exits_1_naming_the_user_unless_allowed() {
    let dir = TempDir::new("cli-weak");
    let public = "[server]\nlisten = [\"udp:0.0.0.0:0\"]\n";
    let path = write_config(&dir, public, USERS_TOML);
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    let stderr = &out.stderr;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for user in ["alice", "bob"] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("user \"{user}\": weak password")))
            .unwrap_or_else(|| panic!("{user} not named:\n{stderr}"));
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains("allow_weak_passwords"), "{line}");
    }
    assert!(!stderr.contains("user \"1000\""), "strong: {stderr}");
    assert!(!stderr.contains("user \"carol\""), "disabled: {stderr}");

    // The daemon refuses to start on it the same way (before binding anything).
    let mut cmd = ferroswitch();
    cmd.arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("user \"alice\": weak password"),
        "{}",
        out.stderr
    );

    let allowed = format!("{public}\n[security]\nallow_weak_passwords = true\n");
    let path = write_config(&dir, &allowed, USERS_TOML);
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: "),
        "still warned: {}",
        out.stderr
    );
}

#[test]
fn check_config_refuses_a_broken_config_naming_file_and_key() {
    let dir = TempDir::new("cli-broken");
    let path = write_config(
        &dir,
        "[server]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[registrar]\nmin_expires = 0\n",
        USERS_TOML,
    );
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    let stderr = &out.stderr;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        line.contains(&path.display().to_string()),
        "names the file: {line}"
    );
    assert!(line.contains(":5:"), "names the line: {line}");
    assert!(
        line.contains("registrar.min_expires"),
        "names the key: {line}"
    );

    // An unknown key (strict TOML) is refused the same way.
    let path = write_config(&dir, "[registrar]\nmin_expire = 60\n", USERS_TOML);
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    let stderr = &out.stderr;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("min_expire"), "{stderr}");

    // The daemon itself refuses to start on it, with the same message.
    let mut cmd = ferroswitch();
    cmd.arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("min_expire"), "{}", out.stderr);
}

/// Issue 16: the cluster keys. A nonce secret file that is too short stops `check-config`
/// and the daemon, naming the file; a good one, group-readable, is a warning; the OK line
/// names the node, the trusted proxies and the secret file.
#[test]
fn check_config_validates_the_cluster_keys() {
    let dir = TempDir::new("cli-cluster");
    let key = dir.write("nonce.key", "too short\n");
    let config = "[server]\nlisten = [\"udp:127.0.0.1:0\"]\nnode_id = \"fs1\"\n\n\
                  [registrar]\ntrusted_proxies = [\"127.0.0.1\"]\n\
                  nonce_secret_file = \"nonce.key\"\nstore = \"memory\"\n";
    let path = write_config(&dir, config, USERS_TOML);
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("registrar.nonce_secret_file"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&key.display().to_string()),
        "{}",
        out.stderr
    );
    let mut cmd = ferroswitch();
    cmd.arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the daemon refuses to start too"
    );

    dir.write("nonce.key", &format!("{}\n", "5a".repeat(32)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    #[cfg(unix)]
    assert!(out.stderr.contains("chmod 600"), "{}", out.stderr);
    assert!(
        out.stdout.contains("node fs1")
            && out.stdout.contains("trusted proxies 127.0.0.1")
            && out.stdout.contains("nonce.key"),
        "{}",
        out.stdout
    );
}

/// Issue 12: a config with a dialplan and the gateway it names, for `ferroswitch route`.
const ROUTE_CONFIG: &str = r#"
[server]
listen = ["udp:127.0.0.1:0"]
dialplan = "dialplan.toml"

[[gateway]]
name = "provider"
proxy = "sip.provider.example"
username = "acct1234"
password = "s3cret-provider"
"#;

const DIALPLAN: &str = r#"
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
name = "people"
match = '^(alice|bob|carol)$'
to = { user = "$1" }

[[context.public.route]]
name = "main number"
match = '^\+?15551230000$'
to = { group = ["1000", "alice"], strategy = "sequential", timeout = 15 }
"#;

/// `ferroswitch route ARGS… --config PATH`: exit code, stdout, stderr.
fn route(path: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = ferroswitch();
    cmd.arg("route").args(args).arg("--config").arg(path);
    let out = run(cmd, b"", WAIT);
    (out.status.code(), out.stdout, out.stderr)
}

#[test]
fn route_prints_the_rule_and_target_and_exits_0_on_a_match_2_on_none() {
    let dir = TempDir::new("cli-route");
    let dialplan = dir.write("dialplan.toml", DIALPLAN);
    let path = write_config(&dir, ROUTE_CONFIG, USERS_TOML);
    let at = |line: usize| format!("({}:{line})", dialplan.display());

    let (code, stdout, stderr) = route(&path, &["95551234567"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "default: rule \"outbound\" {} -> gateway provider, number +15551234567; caller id \
             \"Example Ltd\" <+15551230000>\n",
            at(7)
        )
    );
    let (code, stdout, _) = route(&path, &["1000"]);
    assert_eq!(
        (code, stdout),
        (
            Some(0),
            format!("default: rule \"extensions\" {} -> user 1000\n", at(2))
        )
    );
    // A rule matched, so exit 0, but the line says the engine would answer 404.
    let (code, stdout, _) = route(&path, &["1999"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.ends_with("-> user 1999 (no such user: 404)\n"),
        "{stdout}"
    );
    let (_, stdout, _) = route(&path, &["carol"]);
    assert!(
        stdout.ends_with("-> user carol (disabled: 404)\n"),
        "{stdout}"
    );

    // The public context: only its own rules; nothing else matches.
    let (code, stdout, _) = route(&path, &["--context", "public", "+15551230000"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.ends_with("-> sequential group: 1000, alice; 15 s each\n"),
        "{stdout}"
    );
    let (code, stdout, _) = route(&path, &["--context", "public", "95551234567"]);
    assert_eq!(
        (code, stdout.as_str()),
        (Some(2), "public: no rule matches 95551234567 -> 404\n")
    );
    // A context the file lacks: no match, and a note naming the ones it has.
    let (code, _, stderr) = route(&path, &["--context", "office", "1000"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("no context \"office\" (it has: default, public)"),
        "{stderr}"
    );

    // --json: the Decision.
    let (code, stdout, _) = route(&path, &["--json", "--context", "public", "15551230000"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(v["context"], "public");
    assert_eq!(v["rule"]["name"], "main number");
    assert_eq!(v["rule"]["line"], 18);
    assert_eq!(
        v["target"]["group"],
        serde_json::json!({"members": ["1000", "alice"], "strategy": "sequential", "timeout": 15})
    );
    let (code, stdout, _) = route(&path, &["--json", "12"]);
    assert_eq!(code, Some(2));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(
        (v["target"].clone(), v["rule"].clone()),
        ("no_match".into(), serde_json::Value::Null)
    );
}

#[test]
fn route_and_check_config_refuse_an_invalid_dialplan_naming_file_line_and_key() {
    let dir = TempDir::new("cli-route-bad");
    let bad = DIALPLAN.replace("to = { user = \"$1\" }", "to = { user = \"$2\" }");
    let dialplan = dir.write("dialplan.toml", &bad);
    let path = write_config(&dir, ROUTE_CONFIG, USERS_TOML);
    let (code, stdout, stderr) = route(&path, &["1000"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let want = format!(
        "error: {}:5: context.default.route[0].to.user: \"$2\" refers to group 2",
        dialplan.display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    // Fixed, check-config says which dialplan it checked.
    dir.write("dialplan.toml", DIALPLAN);
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!(", dialplan {}, 1 gateways, ", dialplan.display())),
        "{}",
        out.stdout
    );
    // Valid but naming a gateway the config does not have: refused too.
    let no_gateway = ROUTE_CONFIG.split("[[gateway]]").next().unwrap_or_default();
    let path = write_config(&dir, no_gateway, USERS_TOML);
    let (code, _, stderr) = route(&path, &["1000"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(
            ":10: context.default.route[1].to.gateway: no [[gateway]] named \"provider\""
        ),
        "{stderr}"
    );
}

#[test]
fn route_with_the_shipped_config_sends_every_number_to_its_user() {
    let (code, stdout, stderr) = route(&shipped_config(), &["1000"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "default: no dialplan, every number is a user -> user 1000 (Extension 1000)\n"
    );
    let (code, stdout, _) = route(&shipped_config(), &["--context", "public", "alice"]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            Some(0),
            "public: no dialplan, every number is a user -> user alice (disabled: 404)\n"
        )
    );
}

#[test]
fn hash_password_prints_the_ha1_the_seed_was_made_with() {
    let mut cmd = ferroswitch();
    cmd.args(["hash-password", "alice", "192.168.4.4"]);
    let out = run(cmd, b"1234\n", WAIT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let ha1 = out.stdout.trim().to_string();
    assert_eq!(ha1, format!("{:x}", md5::compute("alice:192.168.4.4:1234")));

    // That HA1 reproduces Zoiper's response in the seed's message 03 (RFC 2617 §3.2.2.1).
    let ha2 = format!(
        "{:x}",
        md5::compute("REGISTER:sip:192.168.4.4;transport=UDP")
    );
    let response = md5::compute(format!(
        "{ha1}:62fb812c-71d2-4a36-93d6-e0008e6a63ee:00000001:b4c6ac7e57fc76b85df9440994e2ede8:auth:{ha2}"
    ));
    assert_eq!(format!("{response:x}"), "32b5ddaea8647a3becd25cb84346b1c3");

    let mut cmd = ferroswitch();
    cmd.args(["hash-password", "alice", "192.168.4.4"]);
    let out = run(cmd, b"", WAIT);
    assert_eq!(out.status.code(), Some(1), "an empty password is refused");
}

/// Reads the child's stderr on a thread and hands the lines over a channel, so waiting for
/// one is bounded.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a stderr line containing `needle`; returns it.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => panic!(
                "no line containing {needle:?}; stderr so far:\n{}",
                seen.join("\n")
            ),
        }
    }
}

#[test]
fn daemon_answers_options_and_exits_0_on_sigterm() {
    let dir = TempDir::new("cli-daemon");
    let path = write_config(
        &dir,
        "[server]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\n",
        USERS_TOML,
    );
    let mut cmd = ferroswitch();
    cmd.arg("--config")
        .arg(&path)
        .args(["--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("spawn the daemon"));
    let lines = stderr_lines(&mut child.0);
    let mut seen = Vec::new();

    // Port 0 in the config: the daemon logs the port it got.
    let line = wait_line(&lines, "listening on udp:", &mut seen);
    let port_text = line.rsplit("listening on udp:").next().unwrap_or_default();
    let server: std::net::SocketAddr = port_text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("cannot read the address in {line:?}: {e}"));

    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    sock.set_read_timeout(Some(WAIT)).expect("read timeout");
    let local = sock.local_addr().expect("local addr");
    let options = format!(
        "OPTIONS sip:{server} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-cli-1;rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{server}>\r\n\
         From: <sip:monitor@{local}>;tag=cli\r\n\
         Call-ID: cli-options@{local}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(options.as_bytes(), server)
        .expect("send OPTIONS");
    let mut buf = [0u8; 4096];
    let (n, from) = sock
        .recv_from(&mut buf)
        .expect("an answer to OPTIONS in time");
    assert_eq!(from, server);
    let answer = text(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\nAllow: "), "{answer}");
    // Issue 17.13: the default Server header names the product, not its version.
    assert!(answer.contains("\r\nServer: ferroswitch\r\n"), "{answer}");

    let pid = child.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = wait_exit(&mut child.0, WAIT);
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
    wait_line(&lines, "stopped", &mut seen);
}

/// Issue 16: with `[server] node_id` every line the daemon writes starts with the node.
#[test]
fn every_log_line_names_the_node() {
    let dir = TempDir::new("cli-node");
    let path = write_config(
        &dir,
        "[server]\nlisten = [\"udp:127.0.0.1:0\"]\nnode_id = \"fs7\"\n\
         [registrar]\nstore = \"memory\"\n",
        USERS_TOML,
    );
    let mut cmd = ferroswitch();
    cmd.arg("--config")
        .arg(&path)
        .args(["--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("spawn the daemon"));
    let lines = stderr_lines(&mut child.0);
    let mut seen = Vec::new();
    wait_line(&lines, "listening on udp:", &mut seen);
    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.expect("run kill").success());
    assert_eq!(wait_exit(&mut child.0, WAIT).code(), Some(0));
    wait_line(&lines, "stopped", &mut seen);
    assert!(seen.len() >= 2, "{seen:?}");
    for l in &seen {
        assert!(l.starts_with("node=fs7 "), "{l}");
    }
}

/// The shipped node config of the cluster (`conf/cluster/node.toml`) passes `check-config`
/// as it is, once its nonce secret file exists: every key it names is real.
#[test]
fn check_config_accepts_the_shipped_cluster_node_config() {
    let dir = TempDir::new("cli-cluster-node");
    let key = dir.write("nonce.key", &format!("{}\n", "c3".repeat(32)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/cluster/node.toml");
    let config = std::fs::read_to_string(&shipped).expect("conf/cluster/node.toml");
    let users = "[[user]]\nid = \"1000\"\npassword = \"Z2OG9aVSfDmCMEFyEOOQ\"\n";
    let path = write_config(&dir, &config, users);
    let mut cmd = ferroswitch();
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run(cmd, b"", WAIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains("node fs1") && out.stdout.contains("trusted proxies 10.0.0.10"),
        "{}",
        out.stdout
    );
}
