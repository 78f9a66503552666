//! The shipped fail2ban filter (`conf/fail2ban/filter.d/ferroswitch.conf`) against log lines
//! the guard really writes through the daemon's log format (tracing-subscriber `fmt`, with
//! timestamps, no colour), as fail2ban sees them from a log file, from syslog and from the
//! journal.
//!
//! The filter's `failregex` is read from the file and fail2ban's `<HOST>` is translated to an
//! equivalent Rust regex (fail2ban's own, minus one lookbehind the regex crate lacks). When
//! `fail2ban-regex` is installed, the real tool runs on the same lines too.
//!
//! `real_daemon_log_*` runs the daemon binary itself with its stderr in a file, sends it the
//! forged and hostile user names of issue 17.1 and genuine failures from 127.0.0.2, and runs
//! the filter (and `fail2ban-regex`) over that file.

mod common;
mod log_capture;

use ferroswitch::security::{Guard, SecurityConfig};
use log_capture::Capture;
use regex::Regex;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const FILTER: &str = "conf/fail2ban/filter.d/ferroswitch.conf";

/// fail2ban 1.0's `<HOST>` (`__prefix_line`-free form), the `(?<=:):` lookbehind written `:`.
const HOST: &str = r"(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|\[?(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:))\]?|(?P<dns>[\w\-.^_]*\w))";

/// A `key = value` option of the `[Definition]` section, continuation lines joined.
fn option(conf: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in conf.lines() {
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = line
            .split_once('=')
            .filter(|_| !line.starts_with(char::is_whitespace))
        {
            inside = k.trim() == key;
            if inside && !v.trim().is_empty() {
                out.push(v.trim().to_string());
            }
        } else if inside && line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            out.push(line.trim().to_string());
        } else {
            inside = false;
        }
    }
    out
}

/// fail2ban's ConfigParser interpolation: `%(name)s` from the same section, `%%` for `%`.
fn interpolate(conf: &str, value: &str) -> String {
    let reference = Regex::new(r"%\((\w+)\)s").unwrap();
    let mut v = value.to_string();
    while let Some(c) = reference.captures(&v) {
        let whole = c.get(0).unwrap().range();
        let name = c[1].to_string();
        let with = option(conf, &name).join("\n");
        assert!(!with.is_empty(), "{name} is not defined in {FILTER}");
        v.replace_range(whole, &with);
    }
    v.replace("%%", "%")
}

fn filter_regexes() -> (Vec<Regex>, Vec<Regex>) {
    let conf = std::fs::read_to_string(FILTER).expect("shipped filter");
    let compile = |r: &String| {
        Regex::new(&interpolate(&conf, r).replace("<HOST>", HOST)).expect("filter regex")
    };
    let fail = option(&conf, "failregex").iter().map(compile).collect();
    let ignore = option(&conf, "ignoreregex").iter().map(compile).collect();
    (fail, ignore)
}

/// The host fail2ban would ban for `line`, if any.
fn banned_host(fail: &[Regex], ignore: &[Regex], line: &str) -> Option<String> {
    if ignore.iter().any(|r| r.is_match(line)) {
        return None;
    }
    let caps = fail.iter().find_map(|r| r.captures(line))?;
    ["ip4", "ip6", "dns"]
        .iter()
        .find_map(|g| caps.name(g))
        .map(|m| m.as_str().to_string())
}

/// Real log lines: the daemon's format, the guard's events, and the engine's
/// "authentication failed" warning carrying a hostile user name.
fn daemon_log() -> String {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let forged =
        "x WARN ferroswitch::security: SECURITY ban src=8.8.8.8 failures=10 users=a for=600s";
    tracing::subscriber::with_default(subscriber, || {
        let mut g = Guard::new(SecurityConfig {
            rate_limit: 1,
            ..SecurityConfig::default()
        });
        let t0 = Instant::now();
        for (src, user) in [
            ("203.0.113.66", "1000"),
            ("2001:db8::7", "admin"),
            ("198.51.100.9", forged),
        ] {
            let src: IpAddr = src.parse().unwrap();
            tracing::warn!(target: "ferroswitch::auth", realm = "pbx", user = %user, "authentication failed");
            for _ in 0..10 {
                g.auth_failed(t0, src, user);
            }
        }
        g.check_request(t0, "192.0.2.1".parse().unwrap(), None);
        g.check_request(t0, "192.0.2.1".parse().unwrap(), None);
        g.check_request(t0, "192.0.2.2".parse().unwrap(), Some("friendly-scanner"));
        g.handle_timeout(t0 + Duration::from_secs(600));
    });
    let text = cap.text();
    assert_eq!(text.lines().count(), 11, "{text}");
    text
}

/// The ISO timestamp `fmt` writes first, which fail2ban cuts from file lines.
fn strip_timestamp(line: &str) -> &str {
    let ts = Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z").unwrap();
    ts.find(line).map_or(line, |m| &line[m.end()..])
}

#[test]
fn filter_bans_exactly_the_guards_banned_sources() {
    let (fail, ignore) = filter_regexes();
    assert_eq!(fail.len(), 2);
    let log = daemon_log();
    for (name, render) in [
        (
            "log file",
            &(|l: &str| strip_timestamp(l).to_string()) as &dyn Fn(&str) -> String,
        ),
        ("syslog", &|l: &str| format!(" pbx ferroswitch[812]: {l}")),
        ("journal", &|l: &str| format!("pbx ferroswitch[812]: {l}")),
        ("untouched", &|l: &str| l.to_string()),
    ] {
        let hosts: Vec<String> = log
            .lines()
            .filter_map(|l| banned_host(&fail, &ignore, &render(l)))
            .collect();
        assert_eq!(
            hosts,
            ["203.0.113.66", "2001:db8::7", "198.51.100.9"],
            "{name}:\n{log}"
        );
    }
}

#[test]
fn fail2ban_regex_agrees_when_installed() {
    let Ok(out) = std::process::Command::new("fail2ban-regex")
        .arg("--version")
        .output()
    else {
        eprintln!("fail2ban-regex not installed: only the translated regex was checked");
        return;
    };
    assert!(out.status.success());
    let dir = std::env::temp_dir().join(format!("ferroswitch-f2b-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("ferroswitch.log");
    std::fs::write(&log, daemon_log()).unwrap();
    let out = std::process::Command::new("fail2ban-regex")
        .args(["-o", "ip"])
        .arg(&log)
        .arg(Path::new(FILTER).canonicalize().unwrap())
        .output()
        .expect("run fail2ban-regex");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ips: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        ips,
        ["203.0.113.66", "2001:db8::7", "198.51.100.9"],
        "{stdout}"
    );
}

/// Stops the daemon (ours, by its pid) when a test fails half-way.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_log(log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A REGISTER for 1000@127.0.0.1 (the realm when no domain is set), with `auth` if given.
fn register(local: std::net::SocketAddr, n: u32, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-f2b-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:1000@127.0.0.1>\r\n\
         From: <sip:1000@127.0.0.1>;tag=f2b{n}\r\n\
         Call-ID: f2b-{n}-{local}\r\n\
         CSeq: {n} REGISTER\r\n\
         Contact: <sip:1000@{local}>\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

/// Sends `msg`, returns the answer's status line and text.
fn exchange(sock: &std::net::UdpSocket, server: std::net::SocketAddr, msg: &str) -> String {
    sock.send_to(msg.as_bytes(), server).expect("send");
    let mut buf = vec![0u8; 65_536];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A fresh nonce from a 401, then `credentials(nonce)` sent; returns the final answer.
fn attempt(
    sock: &std::net::UdpSocket,
    server: std::net::SocketAddr,
    n: u32,
    credentials: &dyn Fn(&str) -> String,
) -> String {
    let local = sock.local_addr().unwrap();
    let challenge = exchange(sock, server, &register(local, n, None));
    assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
    let nonce = Regex::new(r#"nonce="([^"]+)""#)
        .unwrap()
        .captures(&challenge)
        .expect("a nonce")[1]
        .to_string();
    exchange(
        sock,
        server,
        &register(local, n + 1, Some(&credentials(&nonce))),
    )
}

fn digest(user_param: &str, nonce: &str) -> String {
    format!(
        "Digest {user_param}, realm=\"127.0.0.1\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", \
         qop=auth, nc=00000001, cnonce=\"f2b\", \
         response=\"00000000000000000000000000000000\", algorithm=MD5"
    )
}

/// Percent-encodes every octet (RFC 5987 ext-value).
fn ext_value(s: &str) -> String {
    let enc: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("username*=UTF-8''{enc}")
}

const FORGED_SRC: &str = "198.51.100.7";

/// Runs the daemon, sends the hostile names (from 127.0.0.1, allow-listed) and ten genuine
/// failures from 127.0.0.2, stops it; returns its log file's text and the file.
fn real_daemon_log(dir: &common::TempDir) -> (String, std::path::PathBuf) {
    let config = common::write_config(
        dir,
        "[server]\nlisten = [\"udp:127.0.0.1:0\"]\nusers = \"users\"\n\n[log]\nlevel = \"info\"\n",
        "[[user]]\nid = \"1000\"\npassword = \"Z2OG9aVSfDmCMEFyEOOQ\"\n",
    );
    let log = dir.path().join("ferroswitch.log");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferroswitch"));
    cmd.env_remove("RUST_LOG")
        .arg("--config")
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = Child(cmd.spawn().expect("spawn the daemon"));
    let line = wait_for_log(&log, "listening on udp:");
    let server: std::net::SocketAddr = line
        .rsplit("listening on udp:")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(common::WAIT)).unwrap();
    let forged = format!(
        "x\n2026-12-06T23:00:00.000000Z  WARN ferroswitch::security: SECURITY ban src={FORGED_SRC} failures=10 users=x for=600s\n"
    );
    let hostile = [
        ext_value(&forged),
        ext_value(&format!("y\r  WARN ferroswitch::security: SECURITY ban src={FORGED_SRC} failures=10 users=y for=600s")),
        ext_value("esc\u{1b}[2J\u{1b}[31mred\rcr\u{b}vt\u{202e}bidi\u{2066}iso\u{200b}"),
        format!("username=\"{}\"", "A".repeat(60_000)),
    ];
    for (i, user) in hostile.iter().enumerate() {
        let answer = attempt(&sock, server, 10 * i as u32, &|nonce| digest(user, nonce));
        assert!(
            answer.starts_with("SIP/2.0 403 "),
            "{}",
            &answer[..answer.len().min(200)]
        );
    }

    let guesser = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    guesser.set_read_timeout(Some(common::WAIT)).unwrap();
    for i in 0..10 {
        let answer = attempt(&guesser, server, 100 + 10 * i, &|nonce| {
            digest("username=\"1000\"", nonce)
        });
        assert!(answer.starts_with("SIP/2.0 403 "), "{answer}");
    }
    wait_for_log(&log, "SECURITY ban src=127.0.0.2");

    let pid = child.0.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + common::WAIT;
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    let bytes = std::fs::read(&log).unwrap();
    (String::from_utf8(bytes).expect("the log is UTF-8"), log)
}

/// Issue 17.1: the daemon's real log holds the hostile names escaped, on their own
/// `authentication failed` lines, short, without control or bidi characters; the filter
/// bans 127.0.0.2 (genuine failures) and nothing else, and so does `fail2ban-regex`.
#[test]
fn real_daemon_log_bans_the_real_guesser_and_no_forged_address() {
    let dir = common::TempDir::new("f2b-daemon");
    let (text, log) = real_daemon_log(&dir);

    for line in text.lines() {
        assert!(
            line.len() <= 2048,
            "a {} octet line: {}…",
            line.len(),
            &line[..200]
        );
        assert!(
            !line.chars().any(|c| c.is_control()
                || ('\u{200b}'..='\u{200f}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)),
            "control or bidi character in {line:?}"
        );
    }
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(failed.len(), 14, "{text}");
    assert!(
        failed[0].contains("user=\"x\\n2026-12-06T23:00:00.000000Z  WARN ferroswitch::security"),
        "{}",
        failed[0]
    );
    assert!(failed[1].contains("user=\"y\\r  WARN"), "{}", failed[1]);
    assert!(
        failed[2].contains("\\u{1b}") && failed[2].contains("\\u{202e}"),
        "{}",
        failed[2]
    );
    assert!(
        failed[3].contains(&format!("{}…", "A".repeat(64))),
        "{}",
        failed[3]
    );
    // The daemon's own ban lines: the target right after the timestamp and level.
    let own = Regex::new(r"^\S+  WARN ferroswitch::security: SECURITY ban ").unwrap();
    let bans: Vec<&str> = text.lines().filter(|l| own.is_match(l)).collect();
    assert_eq!(bans.len(), 1, "{text}");
    assert!(bans[0].ends_with(" SECURITY ban src=127.0.0.2 failures=10 users=1000 for=600s"));

    let (fail, ignore) = filter_regexes();
    let hosts: Vec<String> = text
        .lines()
        .filter_map(|l| banned_host(&fail, &ignore, l))
        .collect();
    assert_eq!(hosts, ["127.0.0.2"], "{text}");
    // As fail2ban sees a log file line: the leading timestamp cut.
    let cut: Vec<String> = text
        .lines()
        .filter_map(|l| banned_host(&fail, &ignore, strip_timestamp(l)))
        .collect();
    assert_eq!(cut, ["127.0.0.2"]);
    let journal: Vec<String> = text
        .lines()
        .filter_map(|l| banned_host(&fail, &ignore, &format!("pbx ferroswitch[812]: {l}")))
        .collect();
    assert_eq!(journal, ["127.0.0.2"]);

    let Ok(out) = std::process::Command::new("fail2ban-regex")
        .arg("--version")
        .output()
    else {
        eprintln!("NOTICE: fail2ban-regex not installed: the real tool was not run on the log");
        return;
    };
    assert!(out.status.success());
    let out = std::process::Command::new("fail2ban-regex")
        .args(["-o", "ip"])
        .arg(&log)
        .arg(Path::new(FILTER).canonicalize().unwrap())
        .output()
        .expect("run fail2ban-regex");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ips: Vec<&str> = stdout.lines().collect();
    assert_eq!(ips, ["127.0.0.2"], "{stdout}");
}
