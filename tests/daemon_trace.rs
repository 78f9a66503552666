//! `ferroswitch ctl trace` against the real daemon (the binary on 127.0.0.1 port 0): a call
//! through it, hung up by an operator, then its ladder (rows in order, both legs, the 407
//! and ACK from before the call), `--full`, `--json`, `--pcap FILE` (a libpcap file; when
//! tshark is installed, it reads as many SIP packets as the trace has messages) and the
//! errors (unknown call).
//!
//! Every wait is bounded; the daemon is killed by its pid when the test ends.

mod common;

use common::bin::{answered_call, expect_bye, spawn_daemon};
use common::ua::Ua;
use common::{TempDir, CONFIG_TOML};
use serde_json::Value;
use std::process::Command;

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

/// (leg, direction, first word or status) of each message of the JSON trace.
fn rows(v: &Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let first = m["text"].as_str().unwrap().lines().next().unwrap();
            let what = first.strip_prefix("SIP/2.0 ").unwrap_or(first);
            let what = what.split(' ').next().unwrap();
            format!(
                "{} {} {what}",
                m["dir"].as_str().unwrap(),
                m["leg"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn ctl_trace_draws_the_ladder_of_a_call_and_writes_a_pcap() {
    let dir = TempDir::new("ctl-trace");
    let (_child, _lines, udp) = spawn_daemon(&dir, CONFIG_TOML);
    let mut bob = Ua::udp(udp, "bob", "1234").await;
    assert_eq!(bob.register(&[]).await.status, 200);
    let mut alice = Ua::udp(udp, "alice", "1234").await;
    let (_ok, inv) = answered_call(&mut alice, &mut bob).await;
    let b_call_id = inv.headers.call_id().unwrap().to_string();
    let (ok, _, err) = ctl(&dir, &["hangup", "1"]);
    assert!(ok, "{err}");
    let bye_a = expect_bye(&mut alice).await;
    let bye_b = expect_bye(&mut bob).await;
    alice.reply(&bye_a, 200, "OK", &[]).await;
    bob.reply(&bye_b, 200, "OK", &[]).await;

    // The last 200s reach the daemon asynchronously: wait for all 14 messages.
    let deadline = std::time::Instant::now() + common::WAIT;
    let v = loop {
        let (ok, out, err) = ctl(&dir, &["--json", "trace", "1"]);
        assert!(ok, "{err}");
        let v: Value = serde_json::from_str(&out).expect("JSON");
        if v["messages"].as_array().map_or(0, Vec::len) >= 14 {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "{out}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(v["a_call_id"], alice.call_id.as_str());
    assert_eq!(v["b_call_ids"], serde_json::json!([b_call_id]));
    let r = rows(&v);
    assert_eq!(
        r[..10],
        [
            "in a INVITE",
            "out a 407",
            "in a ACK",
            "in a INVITE",
            "out a 100",
            "out b INVITE",
            "in b 200",
            "out b ACK",
            "out a 200",
            "in a ACK",
        ],
        "{r:?}"
    );
    let mut end = r[10..].to_vec();
    end.sort();
    assert_eq!(end, ["in a 200", "in b 200", "out a BYE", "out b BYE"]);

    // The ladder: a header with both parties, then one row per message in the same order.
    let (ok, text, err) = ctl(&dir, &["trace", "1"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].contains(&format!("caller({})", alice.local)),
        "{text}"
    );
    assert!(
        lines[1].contains("ferroswitch") && lines[1].contains(&bob.local.to_string()),
        "{text}"
    );
    let ladder = &lines[2..];
    assert_eq!(ladder.len(), 14, "{text}");
    assert!(
        ladder[0].starts_with("+0.000  INVITE ─") && ladder[0].ends_with('▶'),
        "{text}"
    );
    assert!(
        ladder[1].contains('◀') && ladder[1].ends_with("407 Proxy Authentication Required"),
        "{text}"
    );
    let indent = |l: &str| l.chars().skip(8).take_while(|c| *c == ' ').count();
    assert_eq!(
        indent(ladder[5]),
        40,
        "the b-leg INVITE in the callee column: {text}"
    );
    assert!(
        ladder[5].trim_end().ends_with('▶') && ladder[6].ends_with("200 OK"),
        "{text}"
    );
    // The same trace by the b-leg's Call-ID, with each message's text.
    let (ok, full, _) = ctl(&dir, &["trace", "--full", &b_call_id]);
    assert!(
        ok && full.contains(&format!("| Call-ID: {b_call_id}")),
        "{full}"
    );

    // --pcap: a libpcap file with one packet per message.
    let pcap = dir.path().join("call.pcap");
    let (ok, _, err) = ctl(&dir, &["trace", "1", "--pcap", pcap.to_str().unwrap()]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(&pcap).expect("the pcap file");
    assert_eq!(bytes[..4], 0xa1b2_c3d4u32.to_le_bytes());
    let (mut at, mut packets) = (24, 0);
    while at + 16 <= bytes.len() {
        at += 16 + u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        packets += 1;
    }
    assert_eq!((at, packets), (bytes.len(), 14));
    let tshark = Command::new("sh")
        .args(["-c", "command -v tshark"])
        .output()
        .is_ok_and(|o| o.status.success());
    if tshark {
        let out = Command::new("tshark")
            .args(["-r", pcap.to_str().unwrap(), "-Y", "sip"])
            .output()
            .expect("run tshark");
        let listed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(listed.lines().count(), 14, "tshark: {listed}");
    } else {
        println!("note: tshark is not installed; the pcap was not read back by it");
    }

    // Errors: one line, non-zero exit.
    let (ok, _, err) = ctl(&dir, &["trace", "99"]);
    assert!(
        !ok && err.starts_with("error: no trace of call \"99\""),
        "{err}"
    );
}
