//! Registrations survive the daemon (issue 13): the real binary with the default SQLite store,
//! `kill -9`'d right after the last 200 OK, keeps every binding whose 200 was sent; started
//! again on the same config it calls a phone registered before the kill without that phone
//! registering again. A corrupt database stops the start with its path; a TCP binding whose
//! connection died with the daemon is reached again once the phone re-registers.
//!
//! Every wait is bounded; a child daemon still running when a test fails is killed (it is
//! ours, by its pid).

mod common;

use common::ua::{header, Ua};
use common::{write_config, TempDir, WAIT};
use ferroswitch::app;
use ferroswitch::config::Config;
use ferroswitch::net::Transport;
use ferroswitch::registrar::{Binding, LocationStore, MemoryStore, StoreError};
use ferroswitch::sip::Method;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Phones registered before the kill.
const PHONES: usize = 20;

/// Kills the child on drop (SIGKILL, by its pid); after an exit this is a no-op.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn users() -> String {
    let mut s = String::from("[[user]]\nid = \"caller\"\npassword = \"Caller-pw-Zq81xT\"\n");
    for i in 0..PHONES {
        s += &format!("[[user]]\nid = \"phone{i}\"\npassword = \"Phone-pw-{i}-Kx7Qa\"\n");
    }
    s
}

/// A free port on 127.0.0.1 for both UDP and TCP: the daemon must come back on the same
/// address, as a real one does, so the phones' registrations still name it.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

fn config(port: u16) -> String {
    format!(
        "[server]\nlisten = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]\nusers = \"users\"\n\
         [registrar]\nmin_expires = 60\nmax_expires = 3600\nstore = \"sqlite:state/registrations.db\"\n"
    )
}

/// Starts the binary on `path`; returns it and its stderr lines once it listens.
fn spawn(path: &Path) -> (Guard, mpsc::Receiver<String>) {
    let (child, rx) = spawn_raw(path);
    wait_line(&rx, "listening on udp:");
    (child, rx)
}

fn spawn_raw(path: &Path) -> (Guard, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferroswitch"));
    cmd.env_remove("RUST_LOG")
        .arg("--config")
        .arg(path)
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
    (child, rx)
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

/// Waits (bounded, without blocking the runtime) for the child to exit; its exit code.
async fn exit_code(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + WAIT;
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

/// The database as another process sees it: AOR → contacts.
fn rows(db: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    let mut stmt = conn
        .prepare("SELECT aor, contact FROM bindings ORDER BY aor")
        .expect("the bindings table");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    rows
}

/// `caller` calls `callee` (INVITE → 407 → ACK → INVITE with credentials).
async fn call(caller: &mut Ua, callee: &str) {
    let ruri = format!("sip:{callee}@{}", caller.domain);
    let contact = format!("Contact: <{}>", caller.contact_uri());
    let extra = [contact.as_str()];
    let first = caller.request("INVITE", &ruri, &ruri, 1, &extra, "");
    let r407 = caller.ask(&first).await;
    assert_eq!(r407.status, 407, "{r407:?}");
    let via = first
        .split("\r\n")
        .find(|l| l.starts_with("Via:"))
        .expect("Via");
    let ack = format!(
        "ACK {ruri} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\nTo: {}\r\nFrom: <sip:{}@{}>;tag={}\r\n\
         Call-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        header(&r407, "To").expect("To"),
        caller.user,
        caller.domain,
        caller.tag,
        caller.call_id
    );
    caller.send(&ack).await;
    caller.learn(&r407);
    let second = caller.request("INVITE", &ruri, &ruri, 2, &extra, "");
    caller.send(&second).await;
}

fn setup(label: &str) -> (TempDir, PathBuf, SocketAddr, PathBuf) {
    let dir = TempDir::new(label);
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    let port = free_port();
    let path = write_config(&dir, &config(port), &users());
    let db = dir.path().join("state/registrations.db");
    (dir, path, SocketAddr::from(([127, 0, 0, 1], port)), db)
}

#[tokio::test]
async fn issue_13_bindings_with_a_200_survive_kill_9_and_calls_reach_them_at_once() {
    let (_dir, path, server, db) = setup("restart-kill9");
    let (mut daemon, _log) = spawn(&path);
    let mut phones = Vec::new();
    for i in 0..PHONES {
        let mut ua = Ua::udp(server, &format!("phone{i}"), &format!("Phone-pw-{i}-Kx7Qa")).await;
        assert_eq!(ua.register(&[]).await.status, 200, "phone{i}");
        phones.push(ua);
    }
    // SIGKILL the moment the last 200 OK has arrived: no shutdown path runs.
    daemon.0.kill().expect("kill -9");
    daemon.0.wait().expect("reaped");

    // Every phone that got its 200 is in the file another process reads.
    let stored = rows(&db);
    for ua in &phones {
        let want = (ua.aor(), ua.contact_uri());
        assert!(
            stored.contains(&want),
            "{want:?} not stored; rows {stored:?}"
        );
    }
    assert_eq!(stored.len(), PHONES);

    // Started again on the same config: it says what it loaded, and calls go out at once.
    let (_daemon, log) = spawn_raw(&path);
    let loaded = wait_line(&log, "location store: sqlite:");
    assert!(loaded.contains(&format!("{PHONES} bindings")), "{loaded}");
    wait_line(&log, "listening on udp:");
    for i in [0, PHONES / 2, PHONES - 1] {
        // A caller per call, so a retransmitted 486 of one call is not read as the next's.
        let mut caller = Ua::udp(server, "caller", "Caller-pw-Zq81xT").await;
        call(&mut caller, &format!("phone{i}")).await;
        let invite = phones[i].recv_request().await;
        assert_eq!(invite.method, Method::Invite, "phone{i}");
        phones[i].reply(&invite, 486, "Busy Here", &[]).await;
        let fin = caller.recv_final().await;
        assert_eq!(fin.status, 486, "the caller hears phone{i}'s answer");
    }
}

#[tokio::test]
async fn issue_13_a_corrupt_database_stops_the_start_naming_its_path() {
    let (_dir, path, _server, db) = setup("restart-corrupt");
    std::fs::write(&db, b"not a database at all\n".repeat(100)).expect("write");
    let (mut daemon, log) = spawn_raw(&path);
    let line = wait_line(&log, "cannot start");
    assert!(line.contains(&db.display().to_string()), "{line}");
    assert_eq!(exit_code(&mut daemon.0).await, Some(1));
}

/// README: a TCP binding comes back without its connection (it died with the daemon). A call
/// to it tries a new connection to the address the REGISTER came from; a phone that does not
/// listen there is not reached (the call fails at once, not after Timer B) until it
/// registers again, over a new connection, and then it is.
#[tokio::test]
async fn issue_13_a_tcp_binding_whose_connection_died_is_reached_after_re_registering() {
    let (_dir, path, server, _db) = setup("restart-tcp");
    let (mut daemon, _log) = spawn(&path);
    let mut phone = Ua::tcp(server, "phone0", "Phone-pw-0-Kx7Qa").await;
    assert_eq!(phone.register(&[]).await.status, 200);
    daemon.0.kill().expect("kill -9");
    daemon.0.wait().expect("reaped");

    let (_daemon, _log) = spawn(&path);
    let mut caller = Ua::udp(server, "caller", "Caller-pw-Zq81xT").await;
    call(&mut caller, "phone0").await;
    let fin = tokio::time::timeout(Duration::from_secs(2), caller.recv_final())
        .await
        .expect("the call fails at once: nothing listens at the old connection's port");
    assert_eq!(
        fin.status, 503,
        "the connection is refused: a transport error"
    );

    // The phone notices its connection is gone and registers over a new one.
    let mut phone = Ua::tcp(server, "phone0", "Phone-pw-0-Kx7Qa").await;
    assert_eq!(phone.register(&[]).await.status, 200);
    let mut caller = Ua::udp(server, "caller", "Caller-pw-Zq81xT").await;
    call(&mut caller, "phone0").await;
    let invite = phone.recv_request().await;
    assert_eq!(invite.method, Method::Invite);
}

/// A store that checks, each time it is flushed with writes pending, that the phone's socket
/// holds nothing yet: had the driver sent the 200 OK first, the datagram would be waiting
/// there (loopback delivers within `sendto`).
#[derive(Default)]
struct Spy {
    mem: MemoryStore,
    pending: AtomicUsize,
    phone: Mutex<Option<std::net::UdpSocket>>,
    flushes: AtomicUsize,
    early: AtomicUsize,
}

impl LocationStore for Spy {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.mem.lookup(aor, now)
    }
    fn update(
        &self,
        aor: &str,
        now: Instant,
        f: &mut dyn FnMut(&mut Vec<Binding>),
    ) -> Vec<Binding> {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.mem.update(aor, now, f)
    }
    fn remove_expired(&self, now: Instant) -> Vec<(String, Binding)> {
        self.mem.remove_expired(now)
    }
    fn next_expiry(&self) -> Option<Instant> {
        self.mem.next_expiry()
    }
    fn counts(&self) -> (usize, usize) {
        self.mem.counts()
    }
    fn flush(&self) -> Result<(), StoreError> {
        if self.pending.swap(0, Ordering::SeqCst) > 0 {
            self.flushes.fetch_add(1, Ordering::SeqCst);
            let phone = self.phone.lock().unwrap();
            let waiting = phone.as_ref().map(|s| s.peek(&mut [0u8; 16]));
            if matches!(waiting, Some(Ok(_))) {
                self.early.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn issue_13_the_store_is_flushed_before_the_200_ok_leaves() {
    let (_dir, path, _server, _db) = setup("restart-order");
    let cfg = Config::load(&path).expect("config");
    let spy = Arc::new(Spy::default());
    let running = app::start_with_store(
        &cfg,
        app::bind(&cfg).expect("bind"),
        app::transport_config(&cfg),
        spy.clone(),
    )
    .expect("daemon starts");
    let server = running.local_addr(Transport::Udp).expect("UDP");
    for i in 0..5 {
        let mut phone = Ua::udp(server, &format!("phone{i}"), &format!("Phone-pw-{i}-Kx7Qa")).await;
        let sock = phone.udp_dup();
        sock.set_nonblocking(true).expect("non-blocking");
        // The spy watches the phone registering now.
        *spy.phone.lock().unwrap() = Some(sock);
        assert_eq!(phone.register(&[]).await.status, 200);
    }
    assert!(
        spy.flushes.load(Ordering::SeqCst) >= 5,
        "one flush per REGISTER at least"
    );
    assert_eq!(
        spy.early.load(Ordering::SeqCst),
        0,
        "a 200 OK was on the phone's socket before its binding was flushed"
    );
    tokio::time::timeout(WAIT, running.shutdown())
        .await
        .expect("stops");
}
