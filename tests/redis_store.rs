//! The Redis location store (issue 16) against a real `redis-server` that each test starts on
//! a free loopback port, without persistence, in a temporary directory, and kills at the end.
//! Two `RedisStore`s on one Redis are two nodes. Without `redis-server` these tests fail (CI
//! installs Debian's package); nothing else in the suite needs it.
//!
//! Time here is real (Redis is): propagation between nodes is waited for by polling, at
//! most `WAIT`.

use ferroswitch::net::{Peer, Transport};
use ferroswitch::persist::RedisStore;
use ferroswitch::registrar::{Binding, LocationStore};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);
const PREFIX: &str = "fstest";

/// A `redis-server` of our own; killed (and its directory removed) on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("ferroswitch-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        r.restart();
        r
    }

    /// (Re)starts the server on the same port, empty (no persistence).
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            // DEBUG SLEEP makes a slow Redis (`a_slow_redis_…`).
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need Debian's redis-server \
                     package (apt-get install redis-server; .ci/run installs it)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while redis::Client::open(self.url().as_str())
            .and_then(|c| c.get_connection())
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url().as_str())
            .and_then(|c| c.get_connection())
            .expect("a connection to the test's redis")
    }

    /// `calls` of one command in `INFO commandstats` (0 before its first call).
    fn calls(&self, command: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.conn())
            .expect("INFO");
        let tag = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&tag))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Fields of an address-of-record's hash (bindings plus the `#v` version).
    fn hlen(&self, aor: &str) -> usize {
        redis::cmd("HLEN")
            .arg(format!("{PREFIX}:loc:{aor}"))
            .query(&mut self.conn())
            .expect("HLEN")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn binding(contact: &str, instance: Option<&str>, cseq: u32, secs: u64) -> Binding {
    Binding {
        contact: contact.into(),
        contact_params: String::new(),
        instance: instance.map(str::to_string),
        call_id: format!("{contact}-call"),
        cseq,
        expires_at: Instant::now() + Duration::from_secs(secs),
        source: Peer::new(Transport::Udp, "192.0.2.10:5060".parse().unwrap()),
        local: "127.0.0.1:5060".parse().unwrap(),
        connection: None,
        nat: false,
        user_agent: Some("test".into()),
        advertised: "127.0.0.1:5060".into(),
        path: Vec::new(),
    }
}

/// Registers (adds or replaces by Contact) one binding, as the registrar would.
fn register(store: &RedisStore, aor: &str, b: Binding) {
    store.update(aor, Instant::now(), &mut |list| {
        list.retain(|o| o.contact != b.contact);
        list.push(b.clone());
    });
}

/// A node; its flushes may wait 2 s (the daemon's 250 ms could fail on a loaded CI machine).
fn node(redis: &Redis) -> RedisStore {
    RedisStore::open_with(&redis.url(), PREFIX, Duration::from_secs(2)).expect("a valid URL")
}

/// Polls `cond` until it holds, at most `limit`.
async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn contacts(store: &RedisStore, aor: &str) -> Vec<String> {
    let mut c: Vec<String> = store
        .lookup(aor, Instant::now())
        .into_iter()
        .map(|b| b.contact)
        .collect();
    c.sort();
    c
}

#[tokio::test]
async fn two_nodes_share_bindings_through_one_redis() {
    let redis = Redis::start();
    let (a, b) = (node(&redis), node(&redis));
    eventually("both nodes up", WAIT, || a.is_up() && b.is_up()).await;

    // Written and flushed on A: in B's replica without B asking.
    register(&a, "alice@d", binding("sip:alice@192.0.2.10", None, 1, 600));
    let (trips, execs) = (a.round_trips(), redis.calls("exec"));
    a.flush_async().await.expect("flush");
    assert_eq!(
        (a.round_trips() - trips, redis.calls("exec") - execs),
        (1, 1)
    );
    eventually("alice on B", WAIT, || contacts(&b, "alice@d").len() == 1).await;

    // Two devices of one user registering through A and B at once: both stay.
    register(&a, "bob@d", binding("sip:bob@10.0.0.1", None, 1, 600));
    register(&b, "bob@d", binding("sip:bob@10.0.0.2", None, 1, 600));
    let (fa, fb) = tokio::join!(a.flush_async(), b.flush_async());
    fa.and(fb).expect("flushes");
    let both = ["sip:bob@10.0.0.1", "sip:bob@10.0.0.2"];
    eventually("bob's two devices on A", WAIT, || {
        contacts(&a, "bob@d") == both
    })
    .await;
    eventually("bob's two devices on B", WAIT, || {
        contacts(&b, "bob@d") == both
    })
    .await;
    assert_eq!(redis.hlen("bob@d"), 3, "two bindings and the version");

    // One batch of three addresses-of-record: one round trip, one EXEC, three writes.
    for (i, aor) in ["u1@d", "u2@d", "u3@d"].into_iter().enumerate() {
        register(
            &a,
            aor,
            binding(&format!("sip:u{i}@192.0.2.20"), None, 1, 600),
        );
    }
    let (trips, execs, evals) = (a.round_trips(), redis.calls("exec"), redis.calls("evalsha"));
    a.flush_async().await.expect("flush");
    assert_eq!(a.round_trips() - trips, 1);
    assert_eq!(redis.calls("exec") - execs, 1);
    assert_eq!(redis.calls("evalsha") - evals, 3);
    // Nothing to write: no round trip at all.
    a.flush_async().await.expect("empty flush");
    assert_eq!(a.round_trips() - trips, 1);

    // Carol registers on A for a short while, then refreshes through B. A's timer, running
    // on a view where her binding is long gone (a stale replica), must not delete the
    // refreshed one from Redis: the script compares the stored expiry.
    register(&a, "carol@d", binding("sip:carol@192.0.2.30", None, 1, 60));
    a.flush_async().await.expect("flush");
    eventually("carol on B", WAIT, || contacts(&b, "carol@d").len() == 1).await;
    register(
        &b,
        "carol@d",
        binding("sip:carol@192.0.2.30", None, 2, 3600),
    );
    b.flush_async().await.expect("flush");
    let gone = a.remove_expired(Instant::now() + Duration::from_secs(120));
    assert!(gone.iter().any(|(aor, _)| aor == "carol@d"), "{gone:?}");
    a.flush_async().await.expect("flush of the expiry");
    assert_eq!(
        redis.hlen("carol@d"),
        2,
        "the refreshed binding is still in Redis"
    );
    eventually("carol back in A's replica", WAIT, || {
        a.lookup("carol@d", Instant::now())
            .iter()
            .any(|b| b.cseq == 2)
    })
    .await;
    assert_eq!(contacts(&b, "carol@d").len(), 1);

    // A binding whose stored expiry has really passed is removed by the node's timer.
    let mut dave = binding("sip:dave@192.0.2.40", None, 1, 0);
    dave.expires_at = Instant::now() + Duration::from_millis(300);
    register(&a, "dave@d", dave);
    a.flush_async().await.expect("flush");
    assert_eq!(redis.hlen("dave@d"), 2);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(a.remove_expired(Instant::now()).len(), 1);
    a.flush_async().await.expect("flush of the expiry");
    assert_eq!(
        redis.hlen("dave@d"),
        0,
        "the hash is gone with its last binding"
    );

    // A removal (expires=0) on B reaches A.
    b.update("alice@d", Instant::now(), &mut |l| l.clear());
    b.flush_async().await.expect("flush");
    eventually("alice gone from A", WAIT, || {
        contacts(&a, "alice@d").is_empty()
    })
    .await;

    // A node (re)started now loads everything, with no message to tell it.
    let c = node(&redis);
    eventually("C up", WAIT, || c.is_up()).await;
    assert_eq!(c.loads(), 1);
    assert_eq!(contacts(&c, "bob@d"), both);
    assert_eq!(c.counts(), a.counts());
    assert_eq!(c.counts(), (5, 6), "bob (2), carol, u1, u2, u3");
}

#[tokio::test]
async fn redis_down_refuses_writes_and_the_node_recovers_by_itself() {
    let mut redis = Redis::start();
    let a = node(&redis);
    eventually("A up", WAIT, || a.is_up()).await;
    assert!(a.writable());
    register(&a, "alice@d", binding("sip:alice@192.0.2.10", None, 1, 600));
    a.flush_async().await.expect("flush");

    redis.kill();
    // A REGISTER accepted in the batch that fails: the flush says so, the store turns
    // unwritable, the write is kept; lookups go on from the replica.
    register(&a, "bob@d", binding("sip:bob@192.0.2.11", None, 1, 600));
    assert!(a.flush_async().await.is_err(), "flush with Redis gone");
    assert!(!a.writable());
    assert_eq!(a.pending_len(), 1, "kept for when Redis is back");
    assert_eq!(contacts(&a, "alice@d").len(), 1, "calls still find alice");

    // Redis back, empty (no persistence): the node sees a new dataset (the marker is
    // gone), writes back its whole replica (alice) and what it had accepted (bob), and
    // reloads.
    redis.restart();
    eventually("A up again", 2 * WAIT, || a.is_up()).await;
    assert!(a.writable());
    assert_eq!(a.loads(), 2);
    assert_eq!(a.pending_len(), 0);
    assert_eq!(redis.hlen("bob@d"), 2, "written back");
    assert_eq!(redis.hlen("alice@d"), 2, "the replica written back");
    assert_eq!(contacts(&a, "bob@d").len(), 1);
    assert_eq!(contacts(&a, "alice@d").len(), 1, "alice still reachable");
    // A node that starts now finds both.
    let b = node(&redis);
    eventually("B up", WAIT, || b.is_up()).await;
    assert_eq!(
        (contacts(&b, "alice@d").len(), contacts(&b, "bob@d").len()),
        (1, 1)
    );
    // And it works as before.
    register(&a, "carol@d", binding("sip:carol@192.0.2.12", None, 1, 600));
    a.flush_async().await.expect("flush after recovery");
    assert_eq!(redis.hlen("carol@d"), 2);
}

#[tokio::test]
async fn a_node_starts_while_redis_is_down_and_comes_up_with_it() {
    let mut redis = Redis::start();
    redis.kill();
    let a = node(&redis);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.writable(), "not writable before Redis answers");
    redis.restart();
    eventually("A up once Redis is", 2 * WAIT, || a.is_up()).await;
}

#[tokio::test]
async fn a_slow_redis_refuses_writes_while_slow_without_a_reconnect() {
    let redis = Redis::start();
    let a = RedisStore::open_with(&redis.url(), PREFIX, Duration::from_millis(100))
        .expect("a valid URL");
    eventually("A up", WAIT, || a.is_up()).await;
    // Redis busy for 600 ms (DEBUG SLEEP blocks the server): the flush times out.
    let url = redis.url();
    let sleeper = std::thread::spawn(move || {
        let mut c = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .expect("connection");
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("0.6")
            .query(&mut c)
            .expect("DEBUG SLEEP");
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    register(&a, "alice@d", binding("sip:alice@192.0.2.10", None, 1, 600));
    assert!(a.flush_async().await.is_err(), "timed out");
    assert!(!a.writable());
    assert_eq!(a.pending_len(), 1);
    tokio::task::spawn_blocking(move || sleeper.join())
        .await
        .expect("join")
        .expect("sleeper");
    // The next flush gets through on the same connection: up again, nothing reloaded.
    a.flush_async().await.expect("flush once Redis answers");
    assert!(a.writable());
    assert_eq!((a.loads(), a.pending_len()), (1, 0));
    assert_eq!(redis.hlen("alice@d"), 2);
}
