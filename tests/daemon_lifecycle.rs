//! The daemon's life against real sockets: a callee that has gone away (ICMP port
//! unreachable, RFC 3261 §18.4) fails the call in milliseconds, and the binary's signals:
//! SIGHUP is logged and ignored, SIGTERM ends every call with BYE on both legs, writes the
//! CDRs and exits 0.
//!
//! Every wait is bounded; a child daemon still running when a test fails is killed (it is
//! ours, by its pid).

mod common;

use common::ua::{header, Ua};
use common::{write_config, Daemon, TempDir, CONFIG_TOML, USERS_TOML, WAIT};
use ferroswitch::sip::{HeaderName, Message, Method, Request, Response};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn sdp(who: &str, port: u16) -> String {
    format!(
        "v=0\r\no={who} 1 1 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

fn line<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.split("\r\n")
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

/// `caller` calls `callee`: INVITE → 407 → ACK → INVITE with Proxy-Authorization. Returns
/// the authenticated INVITE as sent (its CSeq is 2).
async fn invite(caller: &mut Ua, callee: &str) -> String {
    let ruri = format!("sip:{callee}@{}", caller.domain);
    let contact = format!("Contact: <{}>", caller.contact_uri());
    let extra = [contact.as_str(), "Content-Type: application/sdp"];
    let offer = sdp(&caller.user, 8000);
    let first = caller.request("INVITE", &ruri, &ruri, 1, &extra, &offer);
    let r407 = caller.ask(&first).await;
    assert_eq!(r407.status, 407);
    let ack = [
        format!("ACK {ruri} SIP/2.0"),
        line(&first, "Via:").to_string(),
        "Max-Forwards: 70".into(),
        format!("To: {}", header(&r407, "To").expect("To")),
        line(&first, "From:").to_string(),
        line(&first, "Call-ID:").to_string(),
        "CSeq: 1 ACK".into(),
        "Content-Length: 0".into(),
    ]
    .join("\r\n")
        + "\r\n\r\n";
    caller.send(&ack).await;
    caller.learn(&r407);
    let second = caller.request("INVITE", &ruri, &ruri, 2, &extra, &offer);
    caller.send(&second).await;
    second
}

/// The next response, skipping nothing; panics on a request.
async fn response(ua: &mut Ua) -> Response {
    match ua.recv().await {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// RFC 3261 §18.4 / §17.1.1.2: the b-leg INVITE to a phone whose port is closed draws an ICMP
/// port unreachable; the client transaction fails at once and the caller gets its final
/// response in milliseconds, not after Timer B (32 s).
#[tokio::test]
async fn rfc3261_18_4_icmp_port_unreachable_fails_the_call_at_once() {
    let d = Daemon::start();
    let mut alice = Ua::udp(d.udp, "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200);
    // alice's phone is gone: nothing listens on her registered port any more.
    drop(alice);

    let mut bob = Ua::udp(d.udp, "bob", "1234").await;
    invite(&mut bob, "alice").await;
    let sent = Instant::now();
    let fin = tokio::time::timeout(Duration::from_secs(1), bob.recv_final())
        .await
        .expect("a final response within 1 s (Timer B is 32 s)");
    let took = sent.elapsed();
    assert!(
        matches!(fin.status, 480 | 503),
        "caller got {} {:?}",
        fin.status,
        fin.reason
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    d.stats_until("the call ended", |s| s.active_calls == 0)
        .await;
    d.stop().await;
}

// ---- the binary and its signals -------------------------------------------------------

/// Kills the child on drop (it is ours, by its pid); after a normal exit this is a no-op.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon binary on 127.0.0.1 port 0 with `config`; returns it, its stderr lines and its
/// UDP address (read from the "listening on udp:" log line).
fn spawn_daemon(dir: &TempDir, config: &str) -> (Guard, mpsc::Receiver<String>, SocketAddr) {
    spawn_daemon_with(dir, config, Command::new(env!("CARGO_BIN_EXE_ferroswitch")))
}

fn spawn_daemon_with(
    dir: &TempDir,
    config: &str,
    mut cmd: Command,
) -> (Guard, mpsc::Receiver<String>, SocketAddr) {
    let path = write_config(dir, config, USERS_TOML);
    cmd.env_remove("RUST_LOG")
        .arg("--config")
        .arg(&path)
        .args(["--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().expect("spawn the daemon"));
    let stderr = child.0.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = wait_line(&rx, "listening on udp:");
    let addr = line
        .rsplit("listening on udp:")
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("cannot read the address in {line:?}: {e}"));
    (child, rx, addr)
}

/// Waits (bounded) for a stderr line containing `needle`.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "no line containing {needle:?}; stderr:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Waits (bounded, without blocking the runtime) for the child to exit; its exit code.
async fn exit_code(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "ferroswitch did not exit in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An OPTIONS from `ua`; the status it gets.
async fn options(ua: &mut Ua) -> u16 {
    let msg = ua.options_request();
    ua.ask(&msg).await.status
}

#[tokio::test]
async fn sighup_is_logged_and_the_daemon_keeps_serving() {
    let dir = TempDir::new("lifecycle-hup");
    let (mut child, lines, udp) = spawn_daemon(&dir, CONFIG_TOML);
    let mut ua = Ua::udp(udp, "monitor", "x").await;
    assert_eq!(options(&mut ua).await, 200);
    signal(&child.0, "-HUP");
    wait_line(&lines, "SIGHUP: nothing to reload");
    assert_eq!(options(&mut ua).await, 200, "still serving after SIGHUP");
    assert!(child.0.try_wait().expect("try_wait").is_none());
    signal(&child.0, "-TERM");
    assert_eq!(exit_code(&mut child.0, WAIT).await, Some(0));
}

/// An answered call alice → bob, through the daemon at `bob.server`: returns alice's and
/// bob's view of it (the 200 alice got, the INVITE bob got).
async fn answered_call(alice: &mut Ua, bob: &mut Ua) -> (Response, Request) {
    invite(alice, "bob").await;
    let inv = bob.recv_request().await;
    assert_eq!(inv.method, Method::Invite);
    let contact = (HeaderName::Contact, format!("<{}>", bob.contact_uri()));
    let ctype = (HeaderName::ContentType, "application/sdp".to_string());
    let mut ok = ferroswitch::sip::response_to(&inv, 200, "OK");
    ferroswitch::sip::set_to_tag(&mut ok, &bob.tag);
    ok.headers.push(contact.0, contact.1);
    ok.headers.push(ctype.0, ctype.1);
    ok.body = sdp("bob", 9000).into_bytes().into();
    let ok_bytes = ok.to_bytes();
    bob.send(std::str::from_utf8(&ok_bytes).expect("UTF-8"))
        .await;
    assert_eq!(bob.recv_request().await.method, Method::Ack);
    let ok = loop {
        let r = response(alice).await;
        if r.status == 200 {
            break r;
        }
        assert!(r.status < 200, "alice got {}", r.status);
    };
    let target = header(&ok, "Contact")
        .and_then(|c| c.split(['<', '>']).nth(1))
        .expect("a Contact in the 200")
        .to_string();
    let ack = [
        format!("ACK {target} SIP/2.0"),
        format!(
            "Via: SIP/2.0/UDP {};branch=z9hG4bK-ack-lifecycle;rport",
            alice.local
        ),
        "Max-Forwards: 70".into(),
        format!("To: {}", header(&ok, "To").unwrap()),
        format!("From: {}", header(&ok, "From").unwrap()),
        format!("Call-ID: {}", alice.call_id),
        "CSeq: 2 ACK".into(),
        "Content-Length: 0".into(),
    ]
    .join("\r\n")
        + "\r\n\r\n";
    alice.send(&ack).await;
    (ok, inv)
}

/// The next BYE the daemon sends `ua` (retransmissions of earlier messages skipped).
async fn expect_bye(ua: &mut Ua) -> Request {
    loop {
        match ua.recv().await {
            Message::Request(r) if r.method == Method::Bye => return r,
            _ => continue,
        }
    }
}

#[tokio::test]
async fn sigterm_byes_both_legs_writes_the_cdr_and_exits_0() {
    let dir = TempDir::new("lifecycle-term");
    let config = format!("{CONFIG_TOML}\n[calls]\ncdr_file = \"cdr.jsonl\"\n");
    let (mut child, lines, udp) = spawn_daemon(&dir, &config);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    let (_ok, inv) = answered_call(&mut alice, &mut bob).await;

    signal(&child.0, "-TERM");
    let bye_a = expect_bye(&mut alice).await;
    let bye_b = expect_bye(&mut bob).await;
    for bye in [&bye_a, &bye_b] {
        let reason = bye.headers.get_str(&HeaderName::from_wire("Reason"));
        assert!(
            reason.is_some_and(|r| r.starts_with("Q.850;cause=16")),
            "{reason:?}"
        );
    }
    assert_eq!(bye_a.headers.call_id(), Some(alice.call_id.as_str()));
    assert_eq!(bye_b.headers.call_id(), inv.headers.call_id());

    // Until the BYEs are answered the daemon drains: a new call gets 503 with Retry-After.
    let mut carol = Ua::udp(udp, "alice", "1234").await;
    let ruri = format!("sip:bob@{}", carol.domain);
    let late = carol.request("INVITE", &ruri, &ruri, 1, &[], "");
    let r503 = carol.ask(&late).await;
    assert_eq!(r503.status, 503);
    assert!(header(&r503, "Retry-After").is_some());
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "still draining"
    );

    alice.reply(&bye_a, 200, "OK", &[]).await;
    bob.reply(&bye_b, 200, "OK", &[]).await;
    assert_eq!(exit_code(&mut child.0, WAIT).await, Some(0));
    wait_line(&lines, "every call cleared");
    wait_line(&lines, "stopped");
    let cdr = std::fs::read_to_string(dir.path().join("cdr.jsonl")).expect("a CDR file");
    let rows: Vec<serde_json::Value> = cdr
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(rows.len(), 1, "{cdr}");
    assert_eq!(rows[0]["hangup_cause"], "NORMAL_CLEARING");
    assert_eq!(rows[0]["a_leg_call_id"], alice.call_id.as_str());
}

#[tokio::test]
async fn a_second_sigterm_stops_at_once() {
    let dir = TempDir::new("lifecycle-term2");
    let (mut child, lines, udp) = spawn_daemon(&dir, CONFIG_TOML);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    answered_call(&mut alice, &mut bob).await;

    signal(&child.0, "-TERM");
    expect_bye(&mut alice).await;
    expect_bye(&mut bob).await;
    // Nobody answers the BYEs: the daemon would wait out its grace period (5 s) …
    let sent = Instant::now();
    signal(&child.0, "-TERM");
    // … but the second signal ends it well before.
    assert_eq!(exit_code(&mut child.0, WAIT).await, Some(0));
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    wait_line(&lines, "again: stopping at once");
}

/// Started under a low soft limit on open files (systemd's default is 1,024), the daemon
/// raises it to the hard limit before it listens.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("lifecycle-nofile");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferroswitch"));
    // SAFETY: only setrlimit (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = lim.rlim_cur.min(256);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (mut child, _lines, _udp) = spawn_daemon_with(&dir, CONFIG_TOML, cmd);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.0.id()))
        .expect("the daemon's /proc limits");
    let row: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files row")
        .split_whitespace()
        .collect();
    // "Max open files  SOFT  HARD  files"
    assert_eq!(row[3], row[4], "soft limit raised to the hard one: {row:?}");
    signal(&child.0, "-TERM");
    assert_eq!(exit_code(&mut child.0, WAIT).await, Some(0));
}
