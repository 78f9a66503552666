//! Where registrations live between runs: `[registrar] store`. `"memory"` keeps them only in
//! the process (`registrar::MemoryStore`); `"sqlite:PATH"` (the default) adds an embedded
//! SQLite database as the durable copy of the same in-memory store (`SqliteStore`), so a
//! restart, even after `kill -9`, finds every binding whose 200 OK was sent.
//! `"redis://…"` shares the bindings between several nodes through a Redis server, each node
//! keeping a replica in memory (`RedisStore`, issue 16).
//!
//! This is the shell's side of the location store: it reads and writes a file, so it stays out
//! of `crate::registrar`, which is sans-IO. It never touches sockets and never decides anything
//! about SIP: the registrar and the engine do that, through the `LocationStore` trait.

mod redis;
mod sqlite;

pub use self::redis::RedisStore;
pub use sqlite::{LoadReport, SqliteStore};

use crate::config::StoreConfig;
use crate::registrar::{LocationStore, MemoryStore, StoreError};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Opens the configured store; a database is loaded (expired bindings dropped) before this
/// returns. A Redis store connects and loads in the background (it must be called inside a
/// tokio runtime): a node starts while Redis is down and refuses REGISTERs until it is up. An unreadable or corrupt database is an error naming its path: the daemon must
/// not start with an empty store and forget everyone silently.
pub fn open(
    config: &StoreConfig,
    now: Instant,
    wall: SystemTime,
) -> Result<Arc<dyn LocationStore>, StoreError> {
    match config {
        StoreConfig::Memory => {
            tracing::info!("location store: memory (registrations are lost on restart)");
            Ok(Arc::new(MemoryStore::new()))
        }
        StoreConfig::Sqlite(path) => {
            let (store, report) = SqliteStore::open(path, now, wall)?;
            tracing::info!(
                "location store: sqlite:{} ({} bindings of {} addresses-of-record loaded, {} expired dropped)",
                path.display(),
                report.loaded,
                report.aors,
                report.expired
            );
            Ok(Arc::new(store))
        }
        StoreConfig::Redis { url, prefix } => {
            let store = RedisStore::open(url, prefix)?;
            tracing::info!(
                "location store: {config} (shared by the nodes; key prefix {prefix:?}), connecting"
            );
            Ok(Arc::new(store))
        }
    }
}
