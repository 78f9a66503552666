//! The real `ferroswitch` binary for integration tests: spawned on 127.0.0.1 port 0 with a
//! test configuration, its stderr read line by line, signals sent to it by pid, and the call
//! helpers the binary tests share (an authenticated INVITE, an answered call, the next BYE).
//! A child still running when a test ends is killed (it is ours, by its pid).

use super::ua::{header, Ua};
use super::{write_config, TempDir, USERS_TOML, WAIT};
use ferroswitch::sip::{HeaderName, Message, Method, Request, Response};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn sdp(who: &str, port: u16) -> String {
    format!(
        "v=0\r\no={who} 1 1 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

pub fn line<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.split("\r\n")
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

/// `caller` calls `callee`: INVITE → 407 → ACK → INVITE with Proxy-Authorization. Returns
/// the authenticated INVITE as sent (its CSeq is 2).
pub async fn invite(caller: &mut Ua, callee: &str) -> String {
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
pub async fn response(ua: &mut Ua) -> Response {
    match ua.recv().await {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// Kills the child on drop (it is ours, by its pid); after a normal exit this is a no-op.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon binary on 127.0.0.1 port 0 with `config`; returns it, its stderr lines and its
/// UDP address (read from the "listening on udp:" log line).
pub fn spawn_daemon(dir: &TempDir, config: &str) -> (Guard, mpsc::Receiver<String>, SocketAddr) {
    spawn_daemon_with(dir, config, Command::new(env!("CARGO_BIN_EXE_ferroswitch")))
}

pub fn spawn_daemon_with(
    dir: &TempDir,
    config: &str,
    mut cmd: Command,
) -> (Guard, mpsc::Receiver<String>, SocketAddr) {
    let path = write_config(dir, config, USERS_TOML);
    cmd.env_remove("RUST_LOG")
        .env_remove("RUNTIME_DIRECTORY")
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
pub fn wait_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
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

pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Waits (bounded, without blocking the runtime) for the child to exit; its exit code.
pub async fn exit_code(child: &mut Child, limit: Duration) -> Option<i32> {
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
pub async fn options(ua: &mut Ua) -> u16 {
    let msg = ua.options_request();
    ua.ask(&msg).await.status
}

/// An answered call alice → bob, through the daemon at `bob.server`: returns alice's and
/// bob's view of it (the 200 alice got, the INVITE bob got).
pub async fn answered_call(alice: &mut Ua, bob: &mut Ua) -> (Response, Request) {
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
pub async fn expect_bye(ua: &mut Ua) -> Request {
    loop {
        match ua.recv().await {
            Message::Request(r) if r.method == Method::Bye => return r,
            _ => continue,
        }
    }
}
