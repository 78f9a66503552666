//! The location store shared by several nodes through Redis (issue 16).
//!
//! Every node keeps a full replica in its own `MemoryStore`: `lookup` never leaves the
//! process (no round trip and no await per call), and a node whose Redis is gone keeps
//! placing calls to the users it knows. Redis holds the shared copy and tells the other
//! nodes what changed:
//!
//! - Data: one hash per address-of-record, `<prefix>:loc:<aor>`, one field per binding (its
//!   `+sip.instance` when it has one, else its Contact URI in lower case), the value
//!   `<expiry ms since the epoch> <json>` (`encode`/`decode`). A field `#v` holds the hash's
//!   version, drawn from the counter `<prefix>:seq`. The key itself expires (PEXPIREAT) with
//!   its latest binding.
//! - Writes are diffs: `update` notes which fields it set and which it removed; `flush`
//!   sends one MULTI/EXEC with one call of `SCRIPT` per changed address-of-record: one round
//!   trip per batch of REGISTERs, and two devices of one user registering through two nodes
//!   at once both stay. The script also drops fields whose own expiry has passed (by the
//!   stored expiry, never by a node's stale copy: a binding another node just refreshed
//!   survives this node's timer), sets the key's expiry to the latest binding's, bumps the
//!   version, PUBLISHes `<version> <node> <aor>` on `<prefix>:loc` and returns what the hash
//!   now holds, which replaces this node's replica of it.
//! - Other nodes SUBSCRIBE to that channel, re-read the hash (HGETALL, pipelined over the
//!   messages waiting) and replace their replica of it, unless they already hold that
//!   version or a newer one, so replies that cross never roll a replica back. Writes this
//!   node has not flushed yet are laid over whatever is read.
//! - A supervisor task owns the connections: it connects, subscribes, loads everything
//!   (SCAN + pipelined HGETALL), writes back what a failed flush kept, then declares the store
//!   up; on a lost connection (pub/sub stream closed, failed flush, failed PING) it declares
//!   it down and starts over with back-off. A flush that only timed out (Redis slow, not
//!   gone) declares it down too, keeps the connection, and the next write that gets through
//!   (the driver's next flush, or the supervisor's after its next PING) brings it back up.
//!   A marker key (`<prefix>:dataset`, a random value set by the first node to see the
//!   dataset) tells a Redis that came back empty (restarted without persistence, flushed)
//!   from one that only dropped the connection: then every node writes back its whole
//!   replica before it loads, so the phones registered before stay reachable.
//!   Down, `writable` is false and the registrar answers REGISTER with 500 + Retry-After;
//!   lookups go on from the replica. One log line per change of state, never per request.
//!
//! Time: `Instant`s mean nothing to another process; stored expiries are wall-clock ms,
//! converted as `sqlite.rs` does. Nodes' clocks must agree to well within `min_expires`. The
//! TCP connection a binding came over is not stored (it belongs to one process); a replica
//! refreshed from Redis keeps the connection id it already had for the same binding.
//!
//! Never: blocks the driver's thread on Redis, writes a whole binding list over another
//! node's, or deletes a binding whose stored expiry has not passed.

use self::wire::{decode, encode, field, split_version, Diff, Snapshot};
use super::sqlite::unix_ms;
use crate::registrar::{Binding, FlushFuture, LocationStore, MemoryStore, StoreError};
use crate::{FastMap, FastSet};
use futures_util::{FutureExt, StreamExt};
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// The write: sets and deletes fields, drops expired ones, sets the key's expiry to the
/// latest binding's, bumps the version and publishes it; returns `{version, {field, value…}}`.
/// KEYS: the hash, the version counter. ARGV: now (ms), channel, node, aor, number of fields
/// set, then `field value` pairs, then the fields to delete.
const SCRIPT: &str = r#"
local key, now, nset = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[5])
local changed = nset > 0
local i = 6
for _ = 1, nset do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  if redis.call('HDEL', key, ARGV[i]) == 1 then changed = true end
  i = i + 1
end
local all = redis.call('HGETALL', key)
local live, latest, version = {}, 0, 0
for j = 1, #all, 2 do
  local f, v = all[j], all[j + 1]
  if f == '#v' then
    version = tonumber(v)
  else
    local at = tonumber(string.match(v, '^%d+'))
    if at == nil or at <= now then
      redis.call('HDEL', key, f)
      changed = true
    else
      live[#live + 1] = f
      live[#live + 1] = v
      if at > latest then latest = at end
    end
  end
end
if changed then
  version = redis.call('INCR', KEYS[2])
  if latest == 0 then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, '#v', version)
    redis.call('PEXPIREAT', key, latest)
  end
  redis.call('PUBLISH', ARGV[2], version .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
end
return {version, live}
"#;

/// How long a flush may wait for Redis before it counts as failed (the driver holds the
/// batch's responses meanwhile).
const FLUSH_TIMEOUT: Duration = Duration::from_millis(250);
/// Connecting, loading, re-reading: each step's bound.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection back-off: from the first to the last, doubling.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));
/// An idle connection is checked this often (a PING), so a silent Redis is noticed.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Keys asked per SCAN step and hashes read per pipeline when loading.
const LOAD_CHUNK: usize = 1000;
/// Messages whose hashes are re-read in one pipeline.
const MESSAGE_BATCH: usize = 256;

const STARTING: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// The replica plus its shared copy in Redis; see the module doc. Must be opened inside a
/// tokio runtime (it spawns its supervisor there); dropping it stops the supervisor.
pub struct RedisStore {
    shared: Arc<Shared>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

/// The command connection and the script's digest on that server.
#[derive(Clone)]
struct Link {
    conn: MultiplexedConnection,
    sha: String,
}

/// A write that did not happen (or may not have): the batch to keep, why, and whether the
/// connection is to be dropped (`lost`) or only was slow.
struct Failed {
    batch: FastMap<String, Diff>,
    why: String,
    lost: bool,
}

impl Failed {
    fn lost(batch: FastMap<String, Diff>, why: String) -> Failed {
        Failed {
            batch,
            why,
            lost: true,
        }
    }
}

struct Shared {
    mem: MemoryStore,
    client: redis::Client,
    /// The URL without its password, for logs and errors.
    name: String,
    prefix: String,
    channel: String,
    seq_key: String,
    /// `<prefix>:dataset`: a random value set by the first node to see this Redis dataset.
    dataset_key: String,
    /// Its value when this node last connected: another value (or none) on a reconnect means
    /// Redis came back without the data it held (restarted without persistence, flushed).
    dataset: Mutex<Option<String>>,
    /// Tells this node's messages from the others'.
    node: String,
    /// Diffs not yet written, by address-of-record.
    pending: Mutex<FastMap<String, Diff>>,
    /// The newest version of each address-of-record this replica holds.
    versions: Mutex<FastMap<String, u64>>,
    link: Mutex<Option<Link>>,
    state: AtomicU8,
    /// Set by a failed flush: the supervisor drops the connections and starts over.
    lost: tokio::sync::Notify,
    round_trips: AtomicU64,
    loads: AtomicU64,
    flush_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoned only if a thread panicked while holding it; the data is still whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RedisStore {
    /// Parses `url` and starts the supervisor, which connects in the background: the store
    /// is not writable until Redis has answered and the replica is loaded (`is_up`).
    pub fn open(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        RedisStore::open_with(url, prefix, FLUSH_TIMEOUT)
    }

    /// `open` with another bound on a flush's wait (tests on a loaded machine use a longer
    /// one; the daemon uses `FLUSH_TIMEOUT`).
    pub fn open_with(
        url: &str,
        prefix: &str,
        flush_timeout: Duration,
    ) -> Result<RedisStore, StoreError> {
        let name = crate::config::redact_password(url);
        let client = redis::Client::open(url).map_err(|e| StoreError {
            location: name.clone(),
            message: e.to_string(),
        })?;
        let node = format!("{:016x}", rand::random::<u64>());
        let shared = Arc::new(Shared {
            mem: MemoryStore::new(),
            client,
            name,
            prefix: prefix.to_string(),
            channel: format!("{prefix}:loc"),
            seq_key: format!("{prefix}:seq"),
            dataset_key: format!("{prefix}:dataset"),
            dataset: Mutex::new(None),
            node,
            pending: Mutex::default(),
            versions: Mutex::default(),
            link: Mutex::new(None),
            state: AtomicU8::new(STARTING),
            lost: tokio::sync::Notify::new(),
            round_trips: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            flush_timeout,
        });
        let supervisor = tokio::spawn(supervise(shared.clone()));
        Ok(RedisStore { shared, supervisor })
    }

    /// True once connected and loaded, until the connection is lost.
    pub fn is_up(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == UP
    }

    /// Round trips made by flushes so far (one per flush that had something to write).
    pub fn round_trips(&self) -> u64 {
        self.shared.round_trips.load(Ordering::Relaxed)
    }

    /// Complete loads of the replica from Redis so far (one per connection).
    pub fn loads(&self) -> u64 {
        self.shared.loads.load(Ordering::Relaxed)
    }

    /// Address-of-records with writes not yet in Redis.
    pub fn pending_len(&self) -> usize {
        lock(&self.shared.pending).len()
    }
}

impl LocationStore for RedisStore {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.shared.mem.lookup(aor, now)
    }

    fn update(
        &self,
        aor: &str,
        now: Instant,
        f: &mut dyn FnMut(&mut Vec<Binding>),
    ) -> Vec<Binding> {
        self.shared.mem.update(aor, now, &mut |list| {
            let before = list.clone();
            f(list);
            list.retain(|b| b.expires_at > now);
            if before != *list {
                // Under the memory store's lock of this address: the last diff noted is the
                // last change made.
                let mut pending = lock(&self.shared.pending);
                pending
                    .entry(aor.to_string())
                    .or_default()
                    .record(&before, list);
            }
        })
    }

    fn remove_expired(&self, now: Instant) -> Vec<(String, Binding)> {
        let removed = self.shared.mem.remove_expired(now);
        if !removed.is_empty() {
            // An empty diff: the script drops the fields whose stored expiry has passed,
            // which spares a binding another node refreshed after this replica last heard.
            let mut pending = lock(&self.shared.pending);
            for (aor, _) in &removed {
                pending.entry(aor.clone()).or_default();
            }
        }
        removed
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.shared.mem.next_expiry()
    }

    fn counts(&self) -> (usize, usize) {
        self.shared.mem.counts()
    }

    fn list(&self, now: Instant) -> Vec<(String, Binding)> {
        self.shared.mem.list(now)
    }

    /// Nothing to do synchronously: the driver calls `flush_async`.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn flush_async(&self) -> FlushFuture<'_> {
        let batch = std::mem::take(&mut *lock(&self.shared.pending));
        if batch.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            let link = lock(&shared.link).clone();
            let written = match link {
                Some(link) => shared.write(&link, batch, shared.flush_timeout).await,
                None => Err(Failed {
                    batch,
                    why: "not connected".to_string(),
                    lost: true,
                }),
            };
            match written {
                Ok(()) => {
                    // Back after a slow spell (the connection stayed).
                    if shared.state.load(Ordering::Acquire) == DOWN {
                        shared.set_up();
                    }
                    Ok(())
                }
                Err(Failed { batch, why, lost }) => {
                    shared.keep(batch);
                    shared.set_down(&why);
                    if lost {
                        // The supervisor drops this connection and starts over (once).
                        shared.lost.notify_one();
                    }
                    Err(shared.error(why))
                }
            }
        })
    }

    fn writable(&self) -> bool {
        self.is_up()
    }
}

impl Shared {
    fn key(&self, aor: &str) -> String {
        format!("{}:loc:{aor}", self.prefix)
    }

    fn error(&self, message: String) -> StoreError {
        StoreError {
            location: self.name.clone(),
            message,
        }
    }

    fn set_down(&self, why: &str) {
        if self.state.swap(DOWN, Ordering::AcqRel) != DOWN {
            tracing::error!(
                "location store {}: down ({why}); REGISTER gets 500 until it is back, calls use the bindings known so far",
                self.name
            );
        }
    }

    fn set_up(&self) {
        if self.state.swap(UP, Ordering::AcqRel) != UP {
            let (aors, bindings) = self.mem.counts();
            tracing::warn!(
                "location store {}: up ({bindings} bindings of {aors} addresses-of-record loaded)",
                self.name
            );
        }
    }

    /// Puts back a batch that could not be written, under what was noted since.
    fn keep(&self, batch: FastMap<String, Diff>) {
        let mut pending = lock(&self.pending);
        for (aor, diff) in batch {
            pending.entry(aor).or_default().merge_older(diff);
        }
    }

    /// Which dataset this Redis holds: the marker's value, set first if missing.
    async fn dataset(&self, link: &Link) -> Result<String, String> {
        let fresh = format!("{:016x}", rand::random::<u64>());
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&self.dataset_key)
            .arg(&fresh)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&self.dataset_key);
        let mut conn = link.conn.clone();
        match tokio::time::timeout(STEP_TIMEOUT, pipe.query_async::<(String,)>(&mut conn)).await {
            Ok(Ok((current,))) => Ok(current),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {STEP_TIMEOUT:?}")),
        }
    }

    /// Notes every live binding of the replica as a write to make (under the writes noted
    /// since, which are newer): Redis lost them, and the phones will not register again
    /// before their bindings expire. Returns how many.
    fn keep_replica(&self) -> usize {
        let list = self.mem.list(Instant::now());
        let n = list.len();
        let mut batch: FastMap<String, Diff> = FastMap::default();
        for (aor, b) in list {
            batch.entry(aor).or_default().set.insert(field(&b), b);
        }
        self.keep(batch);
        n
    }

    /// Writes `batch` in one MULTI/EXEC and applies what each hash holds afterwards. On
    /// failure the batch comes back, to be kept.
    async fn write(
        &self,
        link: &Link,
        batch: FastMap<String, Diff>,
        timeout: Duration,
    ) -> Result<(), Failed> {
        let (now, wall_ms) = (Instant::now(), unix_ms(SystemTime::now()));
        let mut pipe = redis::pipe();
        pipe.atomic();
        let aors: Vec<&String> = batch.keys().collect();
        for (aor, diff) in &batch {
            pipe.cmd("EVALSHA")
                .arg(&link.sha)
                .arg(2)
                .arg(self.key(aor))
                .arg(&self.seq_key)
                .arg(wall_ms)
                .arg(&self.channel)
                .arg(&self.node)
                .arg(aor.as_str())
                .arg(diff.set.len());
            for (f, b) in &diff.set {
                pipe.arg(f).arg(encode(b, now, wall_ms));
            }
            for f in &diff.del {
                pipe.arg(f);
            }
        }
        let mut conn = link.conn.clone();
        let reply = tokio::time::timeout(timeout, pipe.query_async::<Vec<Snapshot>>(&mut conn));
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let snapshots = match reply.await {
            Ok(Ok(s)) if s.len() == aors.len() => s,
            Ok(Ok(s)) => {
                let why = format!("{} replies to {} writes", s.len(), aors.len());
                return Err(Failed::lost(batch, why));
            }
            Ok(Err(e)) => return Err(Failed::lost(batch, e.to_string())),
            // Slow, not gone: down (REGISTER refused) until a write gets through again on
            // this connection; a dead one is found by the supervisor's PING.
            Err(_) => {
                return Err(Failed {
                    batch,
                    why: format!("no answer within {timeout:?}"),
                    lost: false,
                })
            }
        };
        for (aor, (version, fields)) in aors.into_iter().zip(snapshots) {
            self.apply(aor, version, fields, false);
        }
        Ok(())
    }

    /// Replaces the replica of `aor` with what Redis holds (`fields`, at `version`), unless
    /// the replica already holds a newer version (`force`: regardless). Writes not flushed
    /// yet are laid over it; connection ids of bindings this node already had are kept.
    fn apply(&self, aor: &str, version: u64, fields: Vec<(String, String)>, force: bool) {
        {
            let mut versions = lock(&self.versions);
            let known = versions.entry(aor.to_string()).or_default();
            if !force && *known > version {
                return;
            }
            *known = version;
        }
        let (now, wall_ms) = (Instant::now(), unix_ms(SystemTime::now()));
        let mut read = Vec::with_capacity(fields.len());
        for (f, value) in &fields {
            match decode(value, now, wall_ms) {
                Ok(Some(b)) => read.push(b),
                Ok(None) => {}
                Err(why) => tracing::warn!(
                    "location store {}: {} field {f:?} skipped: {why}",
                    self.name,
                    self.key(aor)
                ),
            }
        }
        self.mem.update(aor, now, &mut |list| {
            let mut fresh = std::mem::take(&mut read);
            for b in &mut fresh {
                b.connection = list
                    .iter()
                    .find(|o| o.source == b.source && field(o) == field(b))
                    .and_then(|o| o.connection);
            }
            if let Some(diff) = lock(&self.pending).get(aor) {
                diff.overlay(&mut fresh);
            }
            *list = fresh;
        });
    }

    /// Connects the command link and the subscription, loads the script.
    async fn connect(&self) -> Result<(Link, redis::aio::PubSubStream), String> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(STEP_TIMEOUT))
            .set_response_timeout(Some(STEP_TIMEOUT));
        let step = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(SCRIPT)
                .query_async(&mut conn)
                .await?;
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>((Link { conn, sha }, pubsub.into_on_message()))
        };
        match tokio::time::timeout(STEP_TIMEOUT, step).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {STEP_TIMEOUT:?}")),
        }
    }

    /// Reads every address-of-record (SCAN, then HGETALL pipelined) into the replica, which
    /// it replaces; what a failed flush kept is laid over it (and written back next).
    async fn load(&self, link: &Link) -> Result<(), String> {
        let mut conn = link.conn.clone();
        let pattern = format!("{}:loc:*", self.prefix);
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(LOAD_CHUNK)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort_unstable();
        keys.dedup();
        let strip = format!("{}:loc:", self.prefix);
        let mut seen: FastSet<String> = FastSet::default();
        for chunk in keys.chunks(LOAD_CHUNK) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("HGETALL").arg(k);
            }
            let hashes: Vec<Vec<(String, String)>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            for (k, fields) in chunk.iter().zip(hashes) {
                let Some(aor) = k.strip_prefix(&strip) else {
                    continue;
                };
                let (version, fields) = split_version(fields);
                self.apply(aor, version, fields, true);
                seen.insert(aor.to_string());
            }
        }
        // What the replica had and Redis no longer has.
        let gone: FastSet<String> = self
            .mem
            .list(Instant::now())
            .into_iter()
            .map(|(aor, _)| aor)
            .filter(|aor| !seen.contains(aor))
            .collect();
        for aor in gone {
            self.apply(&aor, 0, Vec::new(), true);
        }
        lock(&self.versions).retain(|aor, _| seen.contains(aor));
        self.loads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Re-reads the hashes named by `messages` (one pipeline) and applies the newer ones.
    async fn handle_messages(&self, link: &Link, messages: Vec<redis::Msg>) -> Result<(), String> {
        let mut wanted: Vec<(String, u64)> = Vec::new();
        for m in messages {
            let Ok(payload) = m.get_payload::<String>() else {
                continue;
            };
            let mut parts = payload.splitn(3, ' ');
            let (Some(v), Some(node), Some(aor)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(version) = v.parse::<u64>() else {
                continue;
            };
            // Our own writes were applied from the script's answer.
            if node == self.node {
                continue;
            }
            let known = lock(&self.versions).get(aor).copied().unwrap_or(0);
            if version > known {
                wanted.retain(|(a, _)| a != aor);
                wanted.push((aor.to_string(), version));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (aor, _) in &wanted {
            pipe.cmd("HGETALL").arg(self.key(aor));
        }
        let mut conn = link.conn.clone();
        let hashes: Vec<Vec<(String, String)>> =
            match tokio::time::timeout(STEP_TIMEOUT, pipe.query_async(&mut conn)).await {
                Ok(r) => r.map_err(|e| e.to_string())?,
                Err(_) => return Err(format!("no answer within {STEP_TIMEOUT:?}")),
            };
        for ((aor, announced), fields) in wanted.into_iter().zip(hashes) {
            let (version, fields) = split_version(fields);
            // A hash gone (every binding removed) is at least as new as its message.
            let version = if fields.is_empty() {
                version.max(announced)
            } else {
                version
            };
            self.apply(&aor, version, fields, false);
        }
        Ok(())
    }
}

/// The supervisor: connect, load, write back, serve messages until the connection is lost,
/// then again with back-off. Runs until the store is dropped.
async fn supervise(shared: Arc<Shared>) {
    let mut backoff = BACKOFF.0;
    loop {
        match session(&shared).await {
            // It had been up: try again soon.
            Ok(()) => backoff = BACKOFF.0,
            Err(why) => shared.set_down(&why),
        }
        *lock(&shared.link) = None;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// One connection's life; `Ok` once it had been up and was then lost.
async fn session(shared: &Arc<Shared>) -> Result<(), String> {
    let (link, mut messages) = shared.connect().await?;
    // Redis without the dataset this node knew (restarted without persistence, flushed):
    // every node writes back its replica, so no phone is lost until it registers again.
    let current = shared.dataset(&link).await?;
    let previous = lock(&shared.dataset).replace(current.clone());
    if previous.is_some_and(|p| p != current) {
        let n = shared.keep_replica();
        tracing::warn!(
            "location store {}: Redis came back without the registrations it held; writing back the {n} bindings this node knows",
            shared.name
        );
    }
    match tokio::time::timeout(STEP_TIMEOUT * 5, shared.load(&link)).await {
        Ok(r) => r?,
        Err(_) => return Err("loading took too long".into()),
    }
    *lock(&shared.link) = Some(link.clone());
    // What failed flushes kept, written back before REGISTERs are taken again.
    let kept = std::mem::take(&mut *lock(&shared.pending));
    if !kept.is_empty() {
        if let Err(Failed { batch, why, .. }) = shared.write(&link, kept, STEP_TIMEOUT).await {
            shared.keep(batch);
            return Err(why);
        }
    }
    // A notification from a flush that failed before this connection existed is stale.
    let _ = shared.lost.notified().now_or_never();
    shared.set_up();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let why = loop {
        tokio::select! {
            m = messages.next() => {
                let Some(first) = m else { break "subscription closed".to_string() };
                let mut batch = vec![first];
                while batch.len() < MESSAGE_BATCH {
                    match messages.next().now_or_never() {
                        Some(Some(m)) => batch.push(m),
                        _ => break,
                    }
                }
                if let Err(why) = shared.handle_messages(&link, batch).await {
                    break why;
                }
            }
            _ = shared.lost.notified() => break "a write failed".to_string(),
            _ = ping.tick() => {
                let mut conn = link.conn.clone();
                let cmd = redis::cmd("PING");
                match tokio::time::timeout(STEP_TIMEOUT, cmd.query_async::<String>(&mut conn)).await {
                    // Down after a slow write while Redis answers: write back what was kept.
                    Ok(Ok(_)) if shared.state.load(Ordering::Acquire) == DOWN => {
                        let kept = std::mem::take(&mut *lock(&shared.pending));
                        let written = if kept.is_empty() {
                            Ok(())
                        } else {
                            shared.write(&link, kept, STEP_TIMEOUT).await
                        };
                        match written {
                            Ok(()) => shared.set_up(),
                            Err(Failed { batch, why, lost }) => {
                                shared.keep(batch);
                                if lost {
                                    break why;
                                }
                            }
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => break e.to_string(),
                    Err(_) => break format!("no answer to PING within {STEP_TIMEOUT:?}"),
                }
            }
        }
    };
    shared.set_down(&why);
    Ok(())
}

mod wire;

#[cfg(test)]
mod tests;
