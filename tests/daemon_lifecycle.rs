//! The daemon's life against real sockets: a callee that has gone away (ICMP port
//! unreachable, RFC 3261 §18.4) fails the call in milliseconds, and the binary's signals:
//! SIGHUP reopens the CDR file (and reloads), SIGTERM (after `drain_timeout`, when set) ends every call with BYE on both legs, writes the
//! CDRs and exits 0.
//!
//! Every wait is bounded; a child daemon still running when a test fails is killed (it is
//! ours, by its pid).

mod common;

use common::bin::{
    answered_call, exit_code, expect_bye, invite, options, signal, spawn_daemon, spawn_daemon_with,
    wait_line,
};
use common::ua::{header, Ua};
use common::{Daemon, TempDir, CONFIG_TOML, WAIT};
use ferroswitch::sip::HeaderName;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// The lines of `path` once there are `n` (bounded wait: the driver writes a CDR after
/// flushing its sends).
async fn lines_of(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text.lines().map(str::to_string).collect();
        }
        assert!(
            Instant::now() < deadline,
            "not {n} lines in {path:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A call from `ua` to a user that does not exist: 404, and a CDR.
async fn refused_call(ua: &mut Ua) {
    invite(ua, "nobody").await;
    assert_eq!(ua.recv_final().await.status, 404);
}

/// SIGHUP reloads (users files read again, see `daemon_ctl.rs`) and reopens the CDR file, as
/// logrotate's `postrotate kill -HUP` needs: after the rename, the next CDR goes to a new
/// file of the configured name. The daemon keeps serving throughout.
#[tokio::test]
async fn sighup_reopens_the_cdr_file_and_the_daemon_keeps_serving() {
    let dir = TempDir::new("lifecycle-hup");
    let config = format!("{CONFIG_TOML}\n[calls]\ncdr_file = \"cdr.jsonl\"\n");
    let (mut child, lines, udp) = spawn_daemon(&dir, &config);
    let mut ua = Ua::udp(udp, "monitor", "x").await;
    assert_eq!(options(&mut ua).await, 200);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    refused_call(&mut bob).await;
    let cdr = dir.path().join("cdr.jsonl");
    let rotated = dir.path().join("cdr.jsonl.1");
    assert_eq!(lines_of(&cdr, 1).await.len(), 1);
    std::fs::rename(&cdr, &rotated).expect("rotate the CDR file");

    signal(&child.0, "-HUP");
    wait_line(&lines, "SIGHUP: reloading");
    wait_line(&lines, "reloaded: users files read again");
    assert_eq!(options(&mut ua).await, 200, "still serving after SIGHUP");
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    refused_call(&mut bob).await;
    let fresh = lines_of(&cdr, 1).await;
    assert_eq!(fresh.len(), 1, "the new CDR went to a new cdr.jsonl");
    assert!(fresh[0].contains("UNALLOCATED_NUMBER"), "{}", fresh[0]);
    assert_eq!(
        lines_of(&rotated, 1).await.len(),
        1,
        "the rotated file is left alone"
    );
    assert!(child.0.try_wait().expect("try_wait").is_none());
    signal(&child.0, "-TERM");
    assert_eq!(exit_code(&mut child.0, WAIT).await, Some(0));
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

/// `[server] drain_timeout`: on SIGTERM new calls and OPTIONS get 503 at once, the call in
/// progress goes on untouched until the timeout, then gets the shutdown's BYE on both legs.
#[tokio::test]
async fn sigterm_with_a_drain_timeout_lets_the_call_run_then_byes_it() {
    let dir = TempDir::new("lifecycle-drain");
    let config = CONFIG_TOML.replace("[server]\n", "[server]\ndrain_timeout = 2\n");
    let (mut child, lines, udp) = spawn_daemon(&dir, &config);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    answered_call(&mut alice, &mut bob).await;

    let sent = Instant::now();
    signal(&child.0, "-TERM");
    wait_line(&lines, "shutting down: draining");
    let mut probe = Ua::udp(udp, "alice", "1234").await;
    assert_eq!(options(&mut probe).await, 503, "OPTIONS while draining");
    let bye_a = expect_bye(&mut alice).await;
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "the call went on until the timeout: BYE after {waited:?}"
    );
    let bye_b = expect_bye(&mut bob).await;
    wait_line(
        &lines,
        "drain timeout: hanging up the calls still in progress",
    );
    alice.reply(&bye_a, 200, "OK", &[]).await;
    bob.reply(&bye_b, 200, "OK", &[]).await;
    assert_eq!(exit_code(&mut child.0, WAIT).await, Some(0));
    wait_line(&lines, "every call cleared");
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
