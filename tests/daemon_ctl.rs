//! `ferroswitch ctl` against the real daemon (the binary, spawned on 127.0.0.1 port 0): every
//! subcommand through the control socket, text and `--json`, the hang-up of a live call (BYE
//! with the Reason on both legs, CDR with the cause and side "system"), the errors (no
//! daemon, a bad call id, an unknown user or address), and reloads of the users files (a new
//! user registers without a restart; a broken file keeps the old users and names its line).
//!
//! Every wait is bounded; each daemon is killed by its pid when a test ends.

mod common;

use common::bin::{answered_call, expect_bye, spawn_daemon, wait_line, Guard};
use common::ua::Ua;
use common::{TempDir, CONFIG_TOML, USERS_TOML, WAIT};
use ferroswitch::sip::HeaderName;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `ferroswitch ctl ARGS` with the test daemon's config: (success, stdout, stderr).
fn ctl(dir: &TempDir, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferroswitch"))
        .env_remove("RUNTIME_DIRECTORY")
        .arg("--config")
        .arg(dir.path().join("ferroswitch.toml"))
        .arg("ctl")
        .args(args)
        .output()
        .expect("run ferroswitch ctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ctl --json ARGS`, which must succeed; its JSON.
fn ctl_json(dir: &TempDir, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = ctl(dir, &all);
    assert!(ok, "ctl {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl {args:?}: not JSON ({e}): {out}"))
}

/// `ctl ARGS` must fail with one line on stderr containing `needle`.
fn ctl_fails(dir: &TempDir, args: &[&str], needle: &str) {
    let (ok, out, err) = ctl(dir, args);
    assert!(!ok, "ctl {args:?} succeeded: {out}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{err:?}"
    );
}

/// The daemon with `config`; its control socket is bound before it logs that it listens.
fn start(
    dir: &TempDir,
    config: &str,
) -> (
    Guard,
    std::sync::mpsc::Receiver<String>,
    std::net::SocketAddr,
) {
    let started = spawn_daemon(dir, config);
    assert!(
        dir.path().join("ctl.sock").exists(),
        "the socket beside the config"
    );
    started
}

#[test]
fn without_a_daemon_ctl_says_so_in_one_line_and_fails() {
    let dir = TempDir::new("ctl-none");
    dir.write("ferroswitch.toml", CONFIG_TOML);
    ctl_fails(&dir, &["status"], "is ferroswitch running?");
    ctl_fails(&dir, &["--json", "calls"], "ctl.sock");
    // A socket file nobody answers on (a killed daemon's) is the same.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind a socket"));
    let (ok, _, err) = ctl(&dir, &["--socket", stale.to_str().unwrap(), "status"]);
    assert!(!ok && err.contains("is ferroswitch running?"), "{err}");
}

#[tokio::test]
async fn status_registrations_unregister_text_and_json() {
    let dir = TempDir::new("ctl-reg");
    let (_child, _lines, udp) = start(&dir, CONFIG_TOML);
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200);

    let (ok, text, _) = ctl(&dir, &["status"]);
    assert!(ok);
    assert!(
        text.contains(&format!("version:         {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "registrations:   1"), "{text}");
    assert!(text.lines().any(|l| l == "calls up:        0"), "{text}");
    let s = ctl_json(&dir, &["status"]);
    assert_eq!(
        (s["registrations"].as_u64(), s["calls_up"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(s["users"], 4);
    assert_eq!(s["media_sessions"], 0, "no anchored call up");

    let (ok, text, _) = ctl(&dir, &["registrations"]);
    assert!(ok);
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("USER   CONTACT"), "{text}");
    assert!(
        rows[1].starts_with("alice  ") && rows[1].contains(&alice.contact_uri()),
        "{text}"
    );
    assert!(
        rows[1].contains(&alice.local.to_string()) && rows[1].contains("UDP"),
        "{text}"
    );
    let r = ctl_json(&dir, &["registrations", "alice"]);
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r[0]["contact"], alice.contact_uri().as_str());
    assert!(
        r[0]["expires_in"]
            .as_u64()
            .is_some_and(|e| e > 3500 && e <= 3600),
        "{r}"
    );
    assert_eq!(
        ctl_json(&dir, &["registrations", "bob"]),
        Value::Array(vec![])
    );

    ctl_fails(
        &dir,
        &["unregister", "alice", "sip:nobody@192.0.2.1"],
        "no such registration",
    );
    let (ok, text, _) = ctl(&dir, &["unregister", "alice"]);
    assert!(ok && text == "alice: 1 binding(s) removed\n", "{text}");
    let (_, text, _) = ctl(&dir, &["registrations"]);
    assert_eq!(text, "no registrations\n");
    ctl_fails(
        &dir,
        &["unregister", "alice"],
        "alice has no such registration",
    );
}

#[tokio::test]
async fn hangup_of_a_live_call_byes_both_legs_with_the_reason_and_writes_the_cdr() {
    let dir = TempDir::new("ctl-hangup");
    let config = format!("{CONFIG_TOML}\n[calls]\ncdr_file = \"cdr.jsonl\"\n");
    let (_child, _lines, udp) = start(&dir, &config);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    let (_ok, inv) = answered_call(&mut alice, &mut bob).await;
    let b_call_id = inv.headers.call_id().unwrap().to_string();

    let calls = ctl_json(&dir, &["calls"]);
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "{calls}");
    let c = &calls[0];
    assert_eq!(
        (c["caller"].as_str(), c["callee"].as_str()),
        (Some("alice"), Some("bob"))
    );
    assert!(
        matches!(c["state"].as_str(), Some("answered" | "connected")),
        "{c}"
    );
    assert_eq!(c["a_call_id"], alice.call_id.as_str());
    assert_eq!(c["b_call_ids"], serde_json::json!([b_call_id]));
    let id = c["id"].as_u64().expect("a numeric id").to_string();
    let (ok, text, _) = ctl(&dir, &["calls"]);
    assert!(
        ok && text.contains("alice → bob") && text.contains(&alice.call_id),
        "{text}"
    );

    ctl_fails(&dir, &["hangup", "999"], "no call 999");
    ctl_fails(&dir, &["hangup", "abc"], "not a call id");
    ctl_fails(&dir, &["hangup", &id, "NO_SUCH_CAUSE"], "unknown cause");
    let (ok, text, err) = ctl(&dir, &["hangup", &id, "21"]);
    assert!(ok, "{err}");
    assert_eq!(text, format!("call {id} hung up (CALL_REJECTED / 21)\n"));

    let bye_a = expect_bye(&mut alice).await;
    let bye_b = expect_bye(&mut bob).await;
    for bye in [&bye_a, &bye_b] {
        let reason = bye.headers.get_str(&HeaderName::from_wire("Reason"));
        assert_eq!(reason, Some("Q.850;cause=21;text=\"CALL_REJECTED\""));
    }
    assert_eq!(bye_a.headers.call_id(), Some(alice.call_id.as_str()));
    assert_eq!(bye_b.headers.call_id(), Some(b_call_id.as_str()));
    alice.reply(&bye_a, 200, "OK", &[]).await;
    bob.reply(&bye_b, 200, "OK", &[]).await;

    let cdr = wait_file_lines(&dir.path().join("cdr.jsonl"), 1).await;
    let row: Value = serde_json::from_str(&cdr[0]).expect("a JSON CDR");
    assert_eq!(row["hangup_cause"], "CALL_REJECTED");
    assert_eq!(row["hangup_cause_code"], 21);
    assert_eq!(row["hangup_side"], "system");
    assert_eq!(row["a_leg_call_id"], alice.call_id.as_str());
    let deadline = Instant::now() + WAIT;
    while ctl_json(&dir, &["calls"]) != Value::Array(vec![]) {
        assert!(Instant::now() < deadline, "the call is still listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ctl_fails(&dir, &["hangup", &id], &format!("no call {id}"));
}

async fn wait_file_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n {
            return text.lines().map(str::to_string).collect();
        }
        assert!(Instant::now() < deadline, "not {n} lines in {path:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Three wrong passwords from 127.0.0.1 (allow-list emptied) ban it; `ctl bans` lists it,
/// `ctl unban` lifts it and the address is served again.
#[tokio::test]
async fn bans_and_unban() {
    let dir = TempDir::new("ctl-bans");
    let config = format!("{CONFIG_TOML}\n[security]\nallow = []\nmax_auth_failures = 3\n");
    let (_child, lines, udp) = start(&dir, &config);
    assert_eq!(ctl(&dir, &["bans"]).1, "no bans\n");
    for _ in 0..3 {
        let mut guesser = Ua::udp(udp, "alice", "wrong-password").await;
        assert_eq!(guesser.register(&[]).await.status, 403);
    }
    wait_line(&lines, "SECURITY ban src=127.0.0.1");
    let bans = ctl_json(&dir, &["bans"]);
    assert_eq!(bans[0]["addr"], "127.0.0.1", "{bans}");
    assert!(
        bans[0]["remaining_secs"].as_u64().is_some_and(|s| s > 0),
        "{bans}"
    );
    let (_, text, _) = ctl(&dir, &["bans"]);
    assert!(
        text.starts_with("ADDRESS    REMAINING\n127.0.0.1  "),
        "{text}"
    );

    ctl_fails(&dir, &["unban", "192.0.2.9"], "192.0.2.9 is not banned");
    ctl_fails(&dir, &["unban", "not-an-address"], "is not an IP address");
    let (ok, text, _) = ctl(&dir, &["unban", "127.0.0.1"]);
    assert!(ok && text == "127.0.0.1 unbanned\n", "{text}");
    wait_line(&lines, "SECURITY unban src=127.0.0.1");
    assert_eq!(ctl(&dir, &["bans"]).1, "no bans\n");
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200, "served again");
}

/// `ctl reload` (and SIGHUP, `daemon_lifecycle.rs`): a user added to the users file
/// registers without a restart; a user removed loses its bindings; a broken file keeps the
/// old users in force, and both `ctl reload` and the log name the file and line.
#[tokio::test]
async fn reload_adds_and_removes_users_and_a_broken_file_keeps_the_old_ones() {
    let dir = TempDir::new("ctl-reload");
    let (mut child, lines, udp) = start(&dir, CONFIG_TOML);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut dave = Ua::udp(udp, "dave", "dave-secret-77").await;
    assert_eq!(dave.register(&[]).await.status, 403, "no dave yet");

    let users = format!(
        "{}\n[[user]]\nid = \"dave\"\npassword = \"dave-secret-77\"\n",
        USERS_TOML.replace("id = \"bob\"", "id = \"robert\"")
    );
    dir.write("users/test.toml", &users);
    let (ok, text, err) = ctl(&dir, &["reload"]);
    assert!(ok, "{err}");
    assert_eq!(
        text,
        "reloaded: 5 users, 1 binding(s) of removed or disabled users removed\n"
    );
    let mut dave = Ua::udp(udp, "dave", "dave-secret-77").await;
    assert_eq!(
        dave.register(&[]).await.status,
        200,
        "dave registers without a restart"
    );
    assert_eq!(
        ctl_json(&dir, &["registrations", "bob"]),
        Value::Array(vec![])
    );

    // Line 4 of the new file is broken: the old users (with dave) stay in force.
    dir.write(
        "users/test.toml",
        "[[user]]\nid = \"alice\"\npassword = \"1234\"\nthis is not toml\n",
    );
    let (ok, _, err) = ctl(&dir, &["reload"]);
    assert!(!ok, "a broken file is refused");
    assert!(
        err.contains("old users kept") && err.contains("users/test.toml:4"),
        "{err}"
    );
    wait_line(&lines, "users/test.toml:4");
    let mut dave = Ua::udp(udp, "dave", "dave-secret-77").await;
    assert_eq!(
        dave.register(&[]).await.status,
        200,
        "the old users are still in force"
    );
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200);
    // SIGHUP with the broken file: logged, old users kept, still serving.
    common::bin::signal(&child.0, "-HUP");
    wait_line(&lines, "the old users stay in force");
    let mut dave = Ua::udp(udp, "dave", "dave-secret-77").await;
    assert_eq!(dave.register(&[]).await.status, 200);
    assert!(child.0.try_wait().expect("try_wait").is_none());
}

/// A socket file left by a killed daemon is replaced at start; the socket is mode 0660 and
/// is removed when the daemon exits cleanly.
#[tokio::test]
async fn a_stale_socket_is_replaced_the_mode_is_0660_and_a_clean_exit_removes_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("ctl-stale");
    let sock = dir.path().join("ctl.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).expect("a stale socket"));
    assert!(sock.exists());
    let (mut child, _lines, _udp) = start(&dir, CONFIG_TOML);
    let mode = std::fs::metadata(&sock)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "{mode:o}");
    assert_eq!(ctl_json(&dir, &["status"])["calls_up"], 0);
    common::bin::signal(&child.0, "-TERM");
    assert_eq!(common::bin::exit_code(&mut child.0, WAIT).await, Some(0));
    assert!(!sock.exists(), "removed on a clean exit");
}

/// A call still ringing is ended the way a ringing call ends: CANCEL to the callee, and the
/// caller gets the final response the cause maps to (USER_BUSY → 486) with the Reason.
#[tokio::test]
async fn hangup_of_a_ringing_call_cancels_the_callee_and_answers_the_caller() {
    let dir = TempDir::new("ctl-ringing");
    let config = format!("{CONFIG_TOML}\n[calls]\ncdr_file = \"cdr.jsonl\"\n");
    let (_child, _lines, udp) = start(&dir, &config);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    common::bin::invite(&mut alice, "bob").await;
    let inv = bob.recv_request().await;
    bob.reply(&inv, 180, "Ringing", &[]).await;
    let calls = ctl_json(&dir, &["calls"]);
    assert_eq!(calls[0]["state"], "ringing", "{calls}");
    let id = calls[0]["id"].as_u64().unwrap().to_string();

    let (ok, _, err) = ctl(&dir, &["hangup", &id, "user_busy"]);
    assert!(ok, "{err}");
    let fin = alice.recv_final().await;
    assert_eq!(fin.status, 486);
    assert_eq!(
        common::ua::header(&fin, "Reason"),
        Some("Q.850;cause=17;text=\"USER_BUSY\"")
    );
    let cancel = loop {
        let r = bob.recv_request().await;
        if r.method == ferroswitch::sip::Method::Cancel {
            break r;
        }
    };
    bob.reply(&cancel, 200, "OK", &[]).await;
    bob.reply(&inv, 487, "Request Terminated", &[]).await;
    let cdr = wait_file_lines(&dir.path().join("cdr.jsonl"), 1).await;
    let row: Value = serde_json::from_str(&cdr[0]).expect("a JSON CDR");
    assert_eq!(
        (
            &row["hangup_cause"],
            &row["sip_status"],
            &row["hangup_side"]
        ),
        (
            &Value::from("USER_BUSY"),
            &Value::from(486),
            &Value::from("system")
        )
    );
}

#[tokio::test]
async fn drain_turns_options_503_and_resume_back_to_200() {
    let dir = TempDir::new("ctl-drain");
    let (_child, _lines, udp) = start(&dir, CONFIG_TOML);
    let mut probe = Ua::udp(udp, "alice", "1234").await;
    let msg = probe.options_request();
    assert_eq!(probe.ask(&msg).await.status, 200);

    let (ok, text, _) = ctl(&dir, &["drain"]);
    assert!(ok, "{text}");
    assert_eq!(
        text,
        "draining: new calls get 503, 0 call(s) in progress go on\n"
    );
    let (_, text, _) = ctl(&dir, &["status"]);
    assert!(
        text.lines().any(|l| l == "state:           draining"),
        "{text}"
    );
    assert_eq!(ctl_json(&dir, &["status"])["draining"], true);
    let msg = probe.options_request();
    assert_eq!(probe.ask(&msg).await.status, 503);
    // Registrations are still served while draining.
    assert_eq!(probe.register(&[]).await.status, 200);

    let (ok, text, _) = ctl(&dir, &["resume"]);
    assert!(ok && text.starts_with("taking calls again"), "{text}");
    assert_eq!(ctl_json(&dir, &["status"])["draining"], false);
    let msg = probe.options_request();
    assert_eq!(probe.ask(&msg).await.status, 200);
}
