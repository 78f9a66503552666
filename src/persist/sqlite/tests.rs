//! The durable copy: what a reopen finds after writes, removals and expiries, and what it
//! says about a file that is not a database.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory for one test's database, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "ferroswitch-sqlite-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("registrations.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn binding(contact: &str, at: Instant, transport: Transport, nat: bool) -> Binding {
    Binding {
        contact: contact.into(),
        contact_params: ";+sip.instance=\"<urn:uuid:1>\";reg-id=1".into(),
        instance: Some("<urn:uuid:1>".into()),
        call_id: format!("cid-{contact}"),
        cseq: 7,
        expires_at: at,
        source: Peer::new(transport, "[2001:db8::7]:40312".parse().unwrap()),
        local: "127.0.0.1:5060".parse().unwrap(),
        connection: (transport == Transport::Tcp).then_some(42),
        nat,
        user_agent: Some("Zoiper rv2.10".into()),
        advertised: "127.0.0.1:5060".into(),
        path: Vec::new(),
    }
}

fn set(s: &SqliteStore, aor: &str, now: Instant, list: Vec<Binding>) {
    let mut list = Some(list);
    s.update(aor, now, &mut |l| *l = list.take().unwrap());
}

/// `b` as it comes back from the database `later` after `now`: the same, with no
/// connection (ids belong to one run) and its expiry on the new clock, to the millisecond.
fn reloaded(b: &Binding, got: &Binding) -> bool {
    let mut want = b.clone();
    want.connection = None;
    want.expires_at = got.expires_at;
    want == *got
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn round_trip_keeps_every_field_and_drops_what_expired_while_down() {
    let dir = Dir::new("roundtrip");
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let (s, report) = SqliteStore::open(&dir.db(), t0, wall0).unwrap();
    assert_eq!(report, LoadReport::default());
    let alice = vec![
        binding(
            "sip:alice@10.0.0.5:5060",
            t0 + secs(3600),
            Transport::Udp,
            true,
        ),
        binding(
            "sip:alice@10.0.0.6:5060;transport=tcp",
            t0 + secs(600),
            Transport::Tcp,
            false,
        ),
    ];
    let bob = vec![binding(
        "sip:bob@192.0.2.1",
        t0 + secs(60),
        Transport::Udp,
        false,
    )];
    set(&s, "alice@example.org", t0, alice.clone());
    set(&s, "bob@example.org", t0, bob);
    assert_eq!(s.pending_len(), 2);
    s.flush().unwrap();
    assert_eq!(s.pending_len(), 0);
    drop(s);

    // Two minutes later on the wall clock: bob's binding expired while the daemon was down.
    let t1 = Instant::now();
    let (s, report) = SqliteStore::open(&dir.db(), t1, wall0 + secs(120)).unwrap();
    assert_eq!(
        report,
        LoadReport {
            loaded: 2,
            aors: 1,
            expired: 1
        }
    );
    assert!(s.lookup("bob@example.org", t1).is_empty());
    let got = s.lookup("alice@example.org", t1);
    assert_eq!(got.len(), 2, "{got:?}");
    for (want, got) in alice.iter().zip(&got) {
        assert!(reloaded(want, got), "want {want:?}\n got {got:?}");
    }
    // 3600 s registered, 120 s gone by: 3480 s left, on the new process's clock.
    assert_eq!(got[0].remaining_secs(t1), 3480);
    assert_eq!(got[1].remaining_secs(t1), 480);
    assert_eq!(s.next_expiry(), Some(got[1].expires_at));
    drop(s);

    // The expired row was deleted, not only skipped.
    let conn = Connection::open(dir.db()).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM bindings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

#[test]
fn writes_reach_the_database_only_on_flush() {
    let dir = Dir::new("flush");
    let t0 = Instant::now();
    let (s, _) = SqliteStore::open(&dir.db(), t0, SystemTime::now()).unwrap();
    set(
        &s,
        "a@d",
        t0,
        vec![binding("sip:a@h", t0 + secs(60), Transport::Udp, false)],
    );
    s.flush().unwrap();
    set(
        &s,
        "b@d",
        t0,
        vec![binding("sip:b@h", t0 + secs(60), Transport::Udp, false)],
    );
    // Dropped without a flush, as a killed process would be.
    drop(s);
    let (s, report) = SqliteStore::open(&dir.db(), Instant::now(), SystemTime::now()).unwrap();
    assert_eq!((report.aors, report.loaded), (1, 1));
    assert_eq!(s.lookup("a@d", Instant::now()).len(), 1);
    assert!(s.lookup("b@d", Instant::now()).is_empty());
}

#[test]
fn unregister_keep_alive_removal_and_expiry_are_persisted() {
    let dir = Dir::new("removal");
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let (s, _) = SqliteStore::open(&dir.db(), t0, wall0).unwrap();
    let two = vec![
        binding("sip:a@1", t0 + secs(3600), Transport::Udp, true),
        binding("sip:a@2", t0 + secs(3600), Transport::Udp, true),
    ];
    set(&s, "a@d", t0, two);
    set(
        &s,
        "b@d",
        t0,
        vec![binding("sip:b@1", t0 + secs(3600), Transport::Udp, false)],
    );
    set(
        &s,
        "c@d",
        t0,
        vec![binding("sip:c@1", t0 + secs(30), Transport::Udp, false)],
    );
    s.flush().unwrap();
    // Keep-alive removal of one of a's contacts, b unregisters (Contact: *), c expires.
    s.update("a@d", t0, &mut |l| l.retain(|b| b.contact != "sip:a@1"));
    s.update("b@d", t0, &mut |l| l.clear());
    let gone = s.remove_expired(t0 + secs(30));
    assert_eq!(gone.len(), 1);
    s.flush().unwrap();
    drop(s);

    // Reopened at the same wall time, so nothing is dropped for expiry at load.
    let t1 = Instant::now();
    let (s, report) = SqliteStore::open(&dir.db(), t1, wall0).unwrap();
    assert_eq!(
        report.expired, 0,
        "c's row was deleted at flush, not at load"
    );
    let a = s.lookup("a@d", t1);
    assert_eq!(
        a.iter().map(|b| b.contact.as_str()).collect::<Vec<_>>(),
        ["sip:a@2"]
    );
    assert!(s.lookup("b@d", t1).is_empty());
    assert!(s.lookup("c@d", t1).is_empty());
    assert_eq!(s.counts(), (1, 1));
}

#[test]
fn a_corrupt_file_is_an_error_naming_its_path() {
    let dir = Dir::new("corrupt");
    let path = dir.db();
    std::fs::write(&path, b"this is not a SQLite database\n".repeat(200)).unwrap();
    let e = match SqliteStore::open(&path, Instant::now(), SystemTime::now()) {
        Ok(_) => panic!("a corrupt database opened"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("not a database"), "{text}");
}

#[test]
fn a_database_with_bad_rows_is_an_error_not_an_empty_store() {
    let dir = Dir::new("badrow");
    let t0 = Instant::now();
    let (s, _) = SqliteStore::open(&dir.db(), t0, SystemTime::now()).unwrap();
    set(
        &s,
        "a@d",
        t0,
        vec![binding("sip:a@1", t0 + secs(600), Transport::Udp, false)],
    );
    s.flush().unwrap();
    drop(s);
    let conn = Connection::open(dir.db()).unwrap();
    conn.execute("UPDATE bindings SET source = 'nowhere'", [])
        .unwrap();
    drop(conn);
    let e = SqliteStore::open(&dir.db(), Instant::now(), SystemTime::now())
        .err()
        .expect("a row that cannot be read fails the open");
    assert!(e.to_string().contains("bad source"), "{e}");
    assert!(e.location.ends_with("registrations.db"), "{e}");
}

#[test]
fn a_missing_directory_is_an_error_naming_the_path() {
    let dir = Dir::new("missing");
    let path = dir.0.join("no-such-dir").join("registrations.db");
    let e = SqliteStore::open(&path, Instant::now(), SystemTime::now())
        .err()
        .expect("cannot create a database in a missing directory");
    assert_eq!(e.location, path.display().to_string());
}

#[test]
fn a_second_store_on_the_same_file_is_refused_while_the_first_is_open() {
    let dir = Dir::new("locked");
    let t0 = Instant::now();
    let (first, _) = SqliteStore::open(&dir.db(), t0, SystemTime::now()).unwrap();
    set(
        &first,
        "a@d",
        t0,
        vec![binding("sip:a@1", t0 + secs(600), Transport::Udp, false)],
    );
    first.flush().unwrap();
    let e = SqliteStore::open(&dir.db(), t0, SystemTime::now())
        .err()
        .expect("a second daemon on the same database must not start");
    assert!(e.to_string().contains("locked"), "{e}");
    drop(first);
    let (again, report) = SqliteStore::open(&dir.db(), t0, SystemTime::now()).unwrap();
    assert_eq!(report.loaded, 1);
    drop(again);
}

/// The schema of version 1 (before RFC 3327 Path), as ferroswitch wrote it.
const SCHEMA_V1: &str = "
CREATE TABLE bindings (
    aor TEXT NOT NULL, pos INTEGER NOT NULL, contact TEXT NOT NULL,
    contact_params TEXT NOT NULL, instance TEXT, call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL, expires_ms INTEGER NOT NULL, transport TEXT NOT NULL,
    source TEXT NOT NULL, local TEXT NOT NULL, nat INTEGER NOT NULL, user_agent TEXT,
    advertised TEXT NOT NULL, PRIMARY KEY (aor, pos)
) WITHOUT ROWID;
PRAGMA user_version=1;
";

#[test]
fn a_version_1_database_is_migrated_and_its_bindings_have_no_path() {
    let dir = Dir::new("v1");
    let wall0 = SystemTime::now();
    let conn = Connection::open(dir.db()).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.execute(
        "INSERT INTO bindings VALUES ('alice@d', 0, 'sip:alice@10.0.0.5:5060', '', NULL, \
         'cid', 3, ?1, 'UDP', '192.0.2.9:4000', '127.0.0.1:5060', 1, 'old phone', \
         '127.0.0.1:5060')",
        [unix_ms(wall0) + 600_000],
    )
    .unwrap();
    drop(conn);

    let t0 = Instant::now();
    let (s, report) = SqliteStore::open(&dir.db(), t0, wall0).unwrap();
    assert_eq!(report.loaded, 1);
    let got = s.lookup("alice@d", t0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].contact, "sip:alice@10.0.0.5:5060");
    assert!(got[0].nat && got[0].path.is_empty(), "{got:?}");
    // A binding with a Path written after the migration survives a reopen.
    let mut b = got[0].clone();
    b.path = vec!["<sip:10.0.0.1;lr;received=\"sip:192.0.2.9:4000\">".into()];
    set(&s, "alice@d", t0, vec![b.clone()]);
    s.flush().unwrap();
    drop(s);
    let conn = Connection::open(dir.db()).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    drop(conn);
    let (s, _) = SqliteStore::open(&dir.db(), t0, wall0).unwrap();
    let got = s.lookup("alice@d", t0);
    assert_eq!(got[0].path, b.path);
}

#[test]
fn path_values_round_trip_in_order() {
    let dir = Dir::new("path");
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let (s, _) = SqliteStore::open(&dir.db(), t0, wall0).unwrap();
    let mut b = binding("sip:a@10.0.0.5", t0 + secs(600), Transport::Udp, false);
    b.path = vec![
        "<sip:edge1.example;lr>".into(),
        "\"a, b\" <sip:10.0.0.2;transport=tcp;lr>".into(),
    ];
    set(&s, "a@d", t0, vec![b.clone()]);
    s.flush().unwrap();
    drop(s);
    let (s, _) = SqliteStore::open(&dir.db(), t0, wall0).unwrap();
    let got = s.lookup("a@d", t0);
    assert!(reloaded(&b, &got[0]), "{got:?}");
}

/// The driver's flush (committed on tokio's blocking pool inside a runtime): the writes are
/// in the file once the future is done (a reopen finds them), nothing is left pending, and a
/// flush with nothing to write is done at once.
#[test]
fn flush_async_in_a_runtime_has_the_writes_in_the_file_when_done() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = Dir::new("flush-async");
    let t0 = Instant::now();
    let (s, _) = SqliteStore::open(&dir.db(), t0, SystemTime::now()).unwrap();
    set(
        &s,
        "a@d",
        t0,
        vec![binding("sip:a@h", t0 + secs(60), Transport::Udp, false)],
    );
    rt.block_on(async {
        s.flush_async().await.unwrap();
        assert_eq!(s.pending_len(), 0);
        s.flush_async().await.unwrap();
    });
    drop(s);
    let (s, report) = SqliteStore::open(&dir.db(), Instant::now(), SystemTime::now()).unwrap();
    assert_eq!((report.aors, report.loaded), (1, 1));
    assert_eq!(s.lookup("a@d", Instant::now()).len(), 1);
}
