//! The location store with a durable copy in an embedded SQLite database.
//!
//! Reads never touch the database: the in-memory `MemoryStore` inside stays the read path
//! (`lookup` costs what it always did). Every write (`update`, `remove_expired`) changes the
//! memory store and notes the new binding list of that address-of-record; `flush` writes every
//! noted list in one SQLite transaction (group commit). The driver calls `flush_async` after the
//! engine has handled a batch of inbound messages and awaits it before it sends the batch's
//! transmits, so a 200 OK never leaves before its binding is committed, and one commit covers
//! every REGISTER of the batch instead of one commit each. `flush_async` commits on tokio's
//! blocking pool: the driver's thread also runs the transport's receive tasks, which keep
//! reading the sockets while the database writes (a commit in the driver's thread let the UDP
//! socket overflow at 8,000 registrations/s; see the README's performance section).
//!
//! What a commit survives. The database runs in WAL mode with `synchronous=NORMAL`: a commit
//! is a `write` of its pages to the `-wal` file, without `fsync`. Once `write` has returned the
//! pages are in the kernel's page cache, which belongs to the file, not to the process, so they
//! survive the process being killed (`kill -9`, a panic, an OOM kill): the next open replays
//! the WAL. They do not survive a power loss or a kernel crash before the kernel writes them
//! out (at most a few seconds); that would take `synchronous=FULL`, an `fsync` per commit,
//! which costs a disk flush per batch. Checkpoints (WAL into the main file) do `fsync`; they
//! run on a thread of their own, once a second, never inside the driver's commit. When the
//! WAL starts over after a checkpoint, the commit that starts it syncs its 32-byte header.
//!
//! Time: bindings hold `Instant`s, which mean nothing to another process. Rows hold the wall
//! clock expiry (ms since the Unix epoch), converted with the clock read at each flush and at
//! load. The TCP connection a binding came over is not stored: connection ids belong to one
//! run of the daemon, and a binding loaded after a restart has none (requests to it open a new
//! connection to the address the REGISTER came from).
//!
//! Cost: a small commit is dominated by its fixed part (BEGIN/COMMIT, one WAL frame write);
//! both statements are cached, rows are upserted in place. Measured with the load suite's
//! `--store-ab` (see the README's performance section).
//!
//! Never: reads the database after opening it, or starts empty when the file cannot be read.

use crate::net::{Peer, Transport};
use crate::registrar::{Binding, FlushFuture, LocationStore, MemoryStore, StoreError};
use crate::FastMap;
use rusqlite::{params, Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Written to `PRAGMA user_version`; a database from a newer schema is refused, an older
/// one is migrated in place (`migrate`). Version 2 added `path` (RFC 3327).
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bindings (
    aor            TEXT    NOT NULL,
    pos            INTEGER NOT NULL, -- place in the address-of-record's list
    contact        TEXT    NOT NULL,
    contact_params TEXT    NOT NULL,
    instance       TEXT,
    call_id        TEXT    NOT NULL,
    cseq           INTEGER NOT NULL,
    expires_ms     INTEGER NOT NULL, -- wall clock, ms since the Unix epoch
    transport      TEXT    NOT NULL, -- 'UDP' or 'TCP'
    source         TEXT    NOT NULL, -- address the REGISTER came from (after NAT)
    local          TEXT    NOT NULL, -- our address it arrived on
    nat            INTEGER NOT NULL,
    user_agent     TEXT,
    advertised     TEXT    NOT NULL,
    path           TEXT    NOT NULL DEFAULT '[]', -- RFC 3327 Path values, a JSON array
    PRIMARY KEY (aor, pos)
) WITHOUT ROWID;
";

/// What `SqliteStore::open` found in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Live bindings loaded into memory.
    pub loaded: usize,
    /// Their addresses-of-record.
    pub aors: usize,
    /// Bindings already expired, dropped from the database.
    pub expired: usize,
}

/// `MemoryStore` plus its durable copy; see the module doc.
pub struct SqliteStore {
    mem: MemoryStore,
    path: PathBuf,
    /// Shared with the blocking thread `flush_async` commits on.
    conn: Arc<Mutex<Connection>>,
    /// The binding list of every address-of-record written since the last flush (empty:
    /// remove its rows). Filled under the memory store's shard lock of that address, so the
    /// last list noted is the last one written.
    pending: Mutex<FastMap<String, Vec<Binding>>>,
    /// Stops (on drop) and joins the checkpoint thread.
    checkpointer: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    /// Held open with an exclusive `flock` for as long as the store lives.
    _lock: std::fs::File,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.checkpointer.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

/// How often the checkpoint thread copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The checkpoint thread: its own connection, a PASSIVE checkpoint every
/// `CHECKPOINT_EVERY` until `stop` closes. A checkpoint fsyncs the WAL and the database
/// file; inside a commit that would stall the driver (measured: at 8,000 registrations/s on
/// a busy machine the driver fell behind), here it runs beside the writer, which WAL allows.
fn checkpoints(path: &Path, stop: &mpsc::Receiver<()>) {
    let conn = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("location store {}: checkpoint thread: {e}", path.display());
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_millis(100));
    let _ = conn.execute_batch("PRAGMA synchronous=NORMAL;");
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!("location store {}: checkpoint: {e}", path.display());
        }
    }
}

/// Opens (creating) `path` and takes an exclusive, non-blocking `flock` on it. SQLite's own
/// locks are fcntl locks, which `flock` does not conflict with.
fn lock_file(path: &Path) -> Result<std::fs::File, StoreError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| error(path, e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own and keep open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(error(
                path,
                format!("in use by another process (database is locked: {e})"),
            ));
        }
    }
    Ok(file)
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path` and loads its live bindings;
    /// `now` and `wall` are the same moment on both clocks.
    pub fn open(
        path: &Path,
        now: Instant,
        wall: SystemTime,
    ) -> Result<(SqliteStore, LoadReport), StoreError> {
        let err = |e: rusqlite::Error| error(path, e.to_string());
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // One daemon per file: a second one started on it fails here instead of writing
        // beside the first. The lock dies with the process, kill -9 included.
        let lock = lock_file(path)?;
        let mut conn = Connection::open_with_flags(path, flags).map_err(err)?;
        // The first statement reads the header: a file that is not a database fails here.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            let msg = format!(
                "schema version {version} is newer than this ferroswitch reads ({SCHEMA_VERSION})"
            );
            return Err(error(path, msg));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(error(path, format!("cannot use WAL mode (got {mode})")));
        }
        // Checkpoints run on their own thread (see `checkpoints`), never inside a commit.
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;")
            .map_err(err)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(error(path, format!("database is corrupt: {check}")));
        }
        let tx = conn.transaction().map_err(err)?;
        migrate(&tx, version).map_err(err)?;
        tx.execute_batch(SCHEMA).map_err(err)?;
        tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION};"))
            .map_err(err)?;
        let wall_ms = unix_ms(wall);
        let (lists, expired) = load(&tx, path, now, wall_ms)?;
        tx.execute("DELETE FROM bindings WHERE expires_ms <= ?1", [wall_ms])
            .map_err(err)?;
        tx.commit().map_err(err)?;

        let mem = MemoryStore::new();
        let mut report = LoadReport {
            expired,
            ..LoadReport::default()
        };
        for (aor, list) in lists {
            report.aors += 1;
            report.loaded += list.len();
            let mut list = Some(list);
            mem.update(&aor, now, &mut |l| *l = list.take().unwrap_or_default());
        }
        let (stop, stopped) = mpsc::channel();
        let ckpt_path = path.to_path_buf();
        let checkpointer = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpoints(&ckpt_path, &stopped))
            .map_err(|e| error(path, format!("cannot start the checkpoint thread: {e}")))?;
        let store = SqliteStore {
            mem,
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            pending: Mutex::new(FastMap::default()),
            checkpointer: Some((stop, checkpointer)),
            _lock: lock,
        };
        Ok((store, report))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Address-of-records written since the last flush.
    pub fn pending_len(&self) -> usize {
        self.pending().len()
    }

    fn pending(&self) -> MutexGuard<'_, FastMap<String, Vec<Binding>>> {
        // Poisoned only if a thread panicked while inserting: the map is still a map.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the writes noted since the last flush; `None` when there are none.
    fn take_batch(&self) -> Option<FastMap<String, Vec<Binding>>> {
        let mut pending = self.pending();
        // The common case between batches: no lock on the database, no clock read.
        (!pending.is_empty()).then(|| std::mem::take(&mut *pending))
    }

    /// A batch that could not be committed is kept for the next flush, unless a newer list
    /// of the same address came meanwhile.
    fn keep(&self, batch: FastMap<String, Vec<Binding>>, e: &rusqlite::Error) -> StoreError {
        let mut pending = self.pending();
        for (aor, list) in batch {
            pending.entry(aor).or_insert(list);
        }
        error(&self.path, e.to_string())
    }
}

/// Writes `batch` in one transaction, with the clocks read once for all of it.
fn commit(
    conn: &Mutex<Connection>,
    batch: &FastMap<String, Vec<Binding>>,
) -> Result<(), rusqlite::Error> {
    let (now, wall_ms) = (Instant::now(), unix_ms(SystemTime::now()));
    let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
    // BEGIN and COMMIT as cached statements: rusqlite's Transaction parses them anew
    // each time, which at small batches costs as much as the rows.
    conn.prepare_cached("BEGIN")?.execute([])?;
    let written = write_batch(&conn, batch, now, wall_ms)
        .and_then(|()| conn.prepare_cached("COMMIT")?.execute([]).map(drop));
    if written.is_err() && !conn.is_autocommit() {
        let _ = conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]));
    }
    written
}

/// The rows of `batch`: each address-of-record's list replaces its rows. A refresh updates
/// its row in place (an upsert on the list position); rows past the new list's end go.
fn write_batch(
    conn: &Connection,
    batch: &FastMap<String, Vec<Binding>>,
    now: Instant,
    wall_ms: i64,
) -> Result<(), rusqlite::Error> {
    let mut trim = conn.prepare_cached("DELETE FROM bindings WHERE aor = ?1 AND pos >= ?2")?;
    let mut upsert = conn.prepare_cached(
        "INSERT INTO bindings (aor, pos, contact, contact_params, instance, call_id, cseq, \
         expires_ms, transport, source, local, nat, user_agent, advertised, path) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (aor, pos) DO UPDATE SET contact = ?3, contact_params = ?4, \
         instance = ?5, call_id = ?6, cseq = ?7, expires_ms = ?8, transport = ?9, \
         source = ?10, local = ?11, nat = ?12, user_agent = ?13, advertised = ?14, \
         path = ?15",
    )?;
    for (aor, list) in batch {
        for (pos, b) in list.iter().enumerate() {
            upsert.execute(params![
                aor,
                pos as i64,
                b.contact,
                b.contact_params,
                b.instance,
                b.call_id,
                i64::from(b.cseq),
                wall_of(b.expires_at, now, wall_ms),
                b.source.transport.as_str(),
                b.source.addr.to_string(),
                b.local.to_string(),
                b.nat,
                b.user_agent,
                b.advertised,
                path_json(&b.path),
            ])?;
        }
        trim.execute(params![aor, list.len() as i64])?;
    }
    Ok(())
}

impl LocationStore for SqliteStore {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.mem.lookup(aor, now)
    }

    fn update(
        &self,
        aor: &str,
        now: Instant,
        f: &mut dyn FnMut(&mut Vec<Binding>),
    ) -> Vec<Binding> {
        self.mem.update(aor, now, &mut |list| {
            f(list);
            // What the memory store keeps; noted here, under its lock of this address.
            list.retain(|b| b.expires_at > now);
            self.pending().insert(aor.to_string(), list.clone());
        })
    }

    fn remove_expired(&self, now: Instant) -> Vec<(String, Binding)> {
        let removed = self.mem.remove_expired(now);
        let mut seen: Vec<&str> = removed.iter().map(|(aor, _)| aor.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for aor in seen {
            // Notes the list as it is now (what is left of it), under the address's lock.
            self.update(aor, now, &mut |_| {});
        }
        removed
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.mem.next_expiry()
    }

    fn counts(&self) -> (usize, usize) {
        self.mem.counts()
    }

    fn list(&self, now: Instant) -> Vec<(String, Binding)> {
        self.mem.list(now)
    }

    fn flush(&self) -> Result<(), StoreError> {
        let Some(batch) = self.take_batch() else {
            return Ok(());
        };
        commit(&self.conn, &batch).map_err(|e| self.keep(batch, &e))
    }

    /// The driver's flush: the same commit, on tokio's blocking pool, so that the driver's
    /// thread (which also runs the transport's receive tasks) keeps reading sockets while the
    /// database writes. The driver still sends the batch's responses only once this is done;
    /// meanwhile the messages that arrive wait in the transport's queue and make the next
    /// batch, and its commit, larger. Outside a runtime, the synchronous flush.
    fn flush_async(&self) -> FlushFuture<'_> {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return Box::pin(std::future::ready(self.flush()));
        };
        let Some(batch) = self.take_batch() else {
            return Box::pin(std::future::ready(Ok(())));
        };
        let conn = self.conn.clone();
        let job = rt.spawn_blocking(move || {
            let r = commit(&conn, &batch);
            (batch, r)
        });
        Box::pin(async move {
            match job.await {
                Ok((_, Ok(()))) => Ok(()),
                Ok((batch, Err(e))) => Err(self.keep(batch, &e)),
                Err(e) => Err(error(
                    &self.path,
                    format!("the commit's thread failed: {e}"),
                )),
            }
        })
    }
}

type Lists = Vec<(String, Vec<Binding>)>;

/// Every live binding by address-of-record, in list order; and how many had expired.
fn load(
    conn: &Connection,
    path: &Path,
    now: Instant,
    wall_ms: i64,
) -> Result<(Lists, usize), StoreError> {
    let err = |e: rusqlite::Error| error(path, e.to_string());
    let mut stmt = conn
        .prepare(
            "SELECT aor, contact, contact_params, instance, call_id, cseq, expires_ms, \
             transport, source, local, nat, user_agent, advertised, path \
             FROM bindings ORDER BY aor, pos",
        )
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut lists: Lists = Vec::new();
    let mut expired = 0;
    while let Some(row) = rows.next().map_err(err)? {
        let aor: String = row.get(0).map_err(err)?;
        let expires_ms: i64 = row.get(6).map_err(err)?;
        if expires_ms <= wall_ms {
            expired += 1;
            continue;
        }
        let bad = |what: &str, v: &str| error(path, format!("row of {aor:?}: bad {what} {v:?}"));
        let transport: String = row.get(7).map_err(err)?;
        let source: String = row.get(8).map_err(err)?;
        let local: String = row.get(9).map_err(err)?;
        let cseq: i64 = row.get(5).map_err(err)?;
        let path_text: String = row.get(13).map_err(err)?;
        let path: Vec<String> =
            serde_json::from_str(&path_text).map_err(|_| bad("path", &path_text))?;
        let binding = Binding {
            contact: row.get(1).map_err(err)?,
            contact_params: row.get(2).map_err(err)?,
            instance: row.get(3).map_err(err)?,
            call_id: row.get(4).map_err(err)?,
            cseq: u32::try_from(cseq).map_err(|_| bad("cseq", &cseq.to_string()))?,
            expires_at: now + Duration::from_millis((expires_ms - wall_ms) as u64),
            source: Peer::new(
                Transport::from_token(&transport).ok_or_else(|| bad("transport", &transport))?,
                source.parse().map_err(|_| bad("source", &source))?,
            ),
            local: local.parse().map_err(|_| bad("local", &local))?,
            connection: None,
            nat: row.get(10).map_err(err)?,
            user_agent: row.get(11).map_err(err)?,
            advertised: row.get(12).map_err(err)?,
            path,
        };
        match lists.last_mut() {
            Some((last, list)) if *last == aor => list.push(binding),
            _ => lists.push((aor, vec![binding])),
        }
    }
    Ok((lists, expired))
}

/// Brings a database of an older schema version up to `SCHEMA_VERSION`, inside the opening
/// transaction (all or nothing). Version 0 is a new file: `SCHEMA` creates it whole.
fn migrate(tx: &Connection, version: i64) -> Result<(), rusqlite::Error> {
    if version == 1 {
        // Bindings stored before Path support went straight to their contact: no Path.
        tx.execute_batch("ALTER TABLE bindings ADD COLUMN path TEXT NOT NULL DEFAULT '[]';")?;
    }
    Ok(())
}

/// `path` as stored: a JSON array of strings (a Path value may hold commas and quotes).
fn path_json(path: &[String]) -> String {
    serde_json::to_string(path).unwrap_or_else(|_| "[]".to_string())
}

fn error(path: &Path, message: String) -> StoreError {
    StoreError {
        location: path.display().to_string(),
        message,
    }
}

pub(super) fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// `at` on the wall clock, given that `now` is `wall_ms`.
pub(super) fn wall_of(at: Instant, now: Instant, wall_ms: i64) -> i64 {
    if at >= now {
        wall_ms.saturating_add(at.duration_since(now).as_millis() as i64)
    } else {
        wall_ms.saturating_sub(now.duration_since(at).as_millis() as i64)
    }
}

#[cfg(test)]
mod tests;
