//! The shipped fail2ban filter (`conf/fail2ban/filter.d/ferroswitch.conf`) against log lines
//! the guard really writes through the daemon's log format (tracing-subscriber `fmt`, with
//! timestamps, no colour), as fail2ban sees them from a log file, from syslog and from the
//! journal.
//!
//! The filter's `failregex` is read from the file and fail2ban's `<HOST>` is translated to an
//! equivalent Rust regex (fail2ban's own, minus one lookbehind the regex crate lacks). When
//! `fail2ban-regex` is installed, the real tool runs on the same lines too.

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

fn filter_regexes() -> (Vec<Regex>, Vec<Regex>) {
    let conf = std::fs::read_to_string(FILTER).expect("shipped filter");
    let compile = |r: &String| Regex::new(&r.replace("<HOST>", HOST)).expect("filter regex");
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
    assert_eq!(fail.len(), 1);
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
