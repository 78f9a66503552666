//! The connection table (TCP and TLS alike): which connections exist, by id and by transport
//! and remote address, and the
//! queue feeding each one's writer. Bounded by `max_connections`: when it is full, the oldest
//! connection that has not authenticated (see `ConnFlags::trusted`) makes room for the new
//! one, so idle unauthenticated connections cannot lock legitimate clients out.
//!
//! Plain synchronous data behind a std `Mutex` that is never held across an `.await`. Lookups
//! by address find the newest connection with that peer; removing an older one never unmaps
//! a newer one. The table never touches sockets: the connection tasks do.

use crate::net::{ConnectionId, Transport};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the table and the connection's task both know about a connection.
#[derive(Debug, Default)]
pub(crate) struct ConnFlags {
    /// A digest-authenticated request arrived on it (or we opened it): it may stay idle for
    /// the full `idle_timeout` and its keep-alives count as traffic.
    trusted: AtomicBool,
    /// Closed to make room in a full table (the task reports `CloseReason::Evicted`).
    evicted: AtomicBool,
}

impl ConnFlags {
    pub fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Relaxed)
    }

    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub peer: SocketAddr,
    /// TCP or TLS: a send over one never goes out on a connection of the other.
    pub transport: Transport,
    /// Feeds the connection's writer; dropping the entry closes the queue, which tells the
    /// connection task to close.
    pub tx: mpsc::Sender<Bytes>,
    pub flags: Arc<ConnFlags>,
}

/// A connection that was added, and the one closed to make room for it, if any.
#[derive(Debug)]
pub(crate) struct Inserted {
    pub id: ConnectionId,
    pub flags: Arc<ConnFlags>,
    pub evicted: Option<(ConnectionId, SocketAddr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableFull(pub usize);

#[derive(Debug)]
pub(crate) struct ConnectionTable {
    /// Ordered by id, which is by age: the oldest unauthenticated connection is found first.
    by_id: BTreeMap<ConnectionId, Entry>,
    by_addr: HashMap<(Transport, SocketAddr), ConnectionId>,
    next_id: u64,
    max: usize,
}

impl ConnectionTable {
    pub fn new(max: usize) -> ConnectionTable {
        ConnectionTable {
            by_id: BTreeMap::new(),
            by_addr: HashMap::new(),
            next_id: 1,
            max,
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Connections open with one remote IP address (any port).
    pub fn count_ip(&self, ip: std::net::IpAddr) -> usize {
        self.by_id.values().filter(|e| e.peer.ip() == ip).count()
    }

    /// Registers a connection (accepted, or about to be connected) and names it. A full
    /// table evicts its oldest untrusted connection first; full of trusted ones, it refuses.
    pub fn insert(
        &mut self,
        transport: Transport,
        peer: SocketAddr,
        tx: mpsc::Sender<Bytes>,
        trusted: bool,
    ) -> Result<Inserted, TableFull> {
        let mut evicted = None;
        if self.by_id.len() >= self.max {
            let oldest = self
                .by_id
                .iter()
                .find(|(_, e)| !e.flags.trusted())
                .map(|(id, _)| *id)
                .ok_or(TableFull(self.max))?;
            if let Some(e) = self.remove(oldest) {
                e.flags.evicted.store(true, Ordering::Relaxed);
                evicted = Some((oldest, e.peer));
            }
        }
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        let flags = Arc::new(ConnFlags {
            trusted: AtomicBool::new(trusted),
            evicted: AtomicBool::new(false),
        });
        self.by_id.insert(
            id,
            Entry {
                peer,
                transport,
                tx,
                flags: flags.clone(),
            },
        );
        self.by_addr.insert((transport, peer), id);
        Ok(Inserted { id, flags, evicted })
    }

    /// Marks a connection as authenticated; false when it is not open.
    pub fn mark_trusted(&mut self, id: ConnectionId) -> bool {
        match self.by_id.get(&id) {
            Some(e) => {
                e.flags.trusted.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, id: ConnectionId) -> Option<&Entry> {
        self.by_id.get(&id)
    }

    /// The newest connection of `transport` with this remote address.
    pub fn find(&self, transport: Transport, peer: &SocketAddr) -> Option<(ConnectionId, &Entry)> {
        let id = *self.by_addr.get(&(transport, *peer))?;
        self.by_id.get(&id).map(|e| (id, e))
    }

    pub fn remove(&mut self, id: ConnectionId) -> Option<Entry> {
        let entry = self.by_id.remove(&id)?;
        let key = (entry.transport, entry.peer);
        if self.by_addr.get(&key) == Some(&id) {
            self.by_addr.remove(&key);
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Transport = Transport::Tcp;

    fn tx() -> mpsc::Sender<Bytes> {
        mpsc::channel(1).0
    }

    #[test]
    fn bounded_and_ids_never_reused() {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let mut t = ConnectionTable::new(2);
        let ia = t.insert(T, a, tx(), true).unwrap().id;
        let ib = t.insert(T, b, tx(), true).unwrap().id;
        assert_eq!(t.insert(T, a, tx(), false).err(), Some(TableFull(2)));
        assert_eq!(t.find(T, &b).map(|(id, _)| id), Some(ib));
        assert!(t.remove(ia).is_some());
        assert!(t.remove(ia).is_none());
        let ia2 = t.insert(T, a, tx(), true).unwrap().id;
        assert!(ia2 > ib);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn removing_an_older_connection_keeps_the_newer_mapping() {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut t = ConnectionTable::new(8);
        let old = t.insert(T, a, tx(), false).unwrap().id;
        let new = t.insert(T, a, tx(), false).unwrap().id;
        assert_eq!(t.find(T, &a).map(|(id, _)| id), Some(new));
        t.remove(old);
        assert_eq!(t.find(T, &a).map(|(id, _)| id), Some(new));
        assert!(t.get(new).is_some());
        t.remove(new);
        assert!(t.find(T, &a).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn tcp_and_tls_connections_to_one_address_are_apart() {
        let a: SocketAddr = "192.0.2.1:5061".parse().unwrap();
        let mut t = ConnectionTable::new(8);
        let tls = t.insert(Transport::Tls, a, tx(), false).unwrap().id;
        assert!(t.find(Transport::Tcp, &a).is_none());
        let tcp = t.insert(Transport::Tcp, a, tx(), false).unwrap().id;
        assert_eq!(t.find(Transport::Tls, &a).map(|(id, _)| id), Some(tls));
        t.remove(tls);
        assert_eq!(t.find(Transport::Tcp, &a).map(|(id, _)| id), Some(tcp));
        assert_eq!(t.count_ip(a.ip()), 1);
    }

    #[test]
    fn dropping_an_entry_closes_its_queue() {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut t = ConnectionTable::new(8);
        let (tx, mut rx) = mpsc::channel(1);
        let id = t.insert(T, a, tx, false).unwrap().id;
        t.remove(id);
        assert!(rx.try_recv().is_err() && rx.is_closed());
    }

    #[test]
    fn a_full_table_evicts_its_oldest_untrusted_connection() {
        let peer = |n: u8| SocketAddr::from(([192, 0, 2, n], 5060));
        let mut t = ConnectionTable::new(3);
        let trusted_old = t.insert(T, peer(1), tx(), false).unwrap();
        assert!(t.mark_trusted(trusted_old.id));
        let (q, mut old_rx) = mpsc::channel(1);
        let untrusted_old = t.insert(T, peer(2), q, false).unwrap();
        let untrusted_new = t.insert(T, peer(3), tx(), false).unwrap().id;

        let added = t.insert(T, peer(4), tx(), false).unwrap();
        assert_eq!(added.evicted, Some((untrusted_old.id, peer(2))));
        assert!(
            untrusted_old.flags.evicted(),
            "its task learns why it was closed"
        );
        assert!(old_rx.try_recv().is_err() && old_rx.is_closed());
        assert!(t.get(trusted_old.id).is_some(), "trusted connections stay");
        assert!(t.get(untrusted_new).is_some());
        assert_eq!(t.len(), 3);

        // Only trusted connections left: the table refuses.
        assert!(t.mark_trusted(untrusted_new));
        assert!(t.mark_trusted(added.id));
        assert_eq!(t.insert(T, peer(5), tx(), false).err(), Some(TableFull(3)));
        assert!(!t.mark_trusted(untrusted_old.id), "gone");
    }
}
