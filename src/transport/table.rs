//! The TCP connection table: which connections exist, by id and by remote address, and the
//! queue feeding each one's writer. Bounded by `max_connections`.
//!
//! Plain synchronous data behind a std `Mutex` that is never held across an `.await`. Lookups
//! by address find the newest connection with that peer; removing an older one never unmaps
//! a newer one. The table never touches sockets: the connection tasks do.

use super::event::ConnectionId;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::sync::mpsc;

#[derive(Debug)]
pub(crate) struct Entry {
    pub peer: SocketAddr,
    /// Feeds the connection's writer; dropping the entry closes the queue, which tells the
    /// connection task to close.
    pub tx: mpsc::Sender<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableFull(pub usize);

#[derive(Debug)]
pub(crate) struct ConnectionTable {
    by_id: HashMap<ConnectionId, Entry>,
    by_addr: HashMap<SocketAddr, ConnectionId>,
    next_id: u64,
    max: usize,
}

impl ConnectionTable {
    pub fn new(max: usize) -> ConnectionTable {
        ConnectionTable {
            by_id: HashMap::new(),
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

    /// Registers a connection (accepted, or about to be connected) and names it.
    pub fn insert(
        &mut self,
        peer: SocketAddr,
        tx: mpsc::Sender<Bytes>,
    ) -> Result<ConnectionId, TableFull> {
        if self.by_id.len() >= self.max {
            return Err(TableFull(self.max));
        }
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        self.by_id.insert(id, Entry { peer, tx });
        self.by_addr.insert(peer, id);
        Ok(id)
    }

    pub fn get(&self, id: ConnectionId) -> Option<&Entry> {
        self.by_id.get(&id)
    }

    /// The newest connection with this remote address.
    pub fn find(&self, peer: &SocketAddr) -> Option<(ConnectionId, &Entry)> {
        let id = *self.by_addr.get(peer)?;
        self.by_id.get(&id).map(|e| (id, e))
    }

    pub fn remove(&mut self, id: ConnectionId) -> Option<Entry> {
        let entry = self.by_id.remove(&id)?;
        if self.by_addr.get(&entry.peer) == Some(&id) {
            self.by_addr.remove(&entry.peer);
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx() -> mpsc::Sender<Bytes> {
        mpsc::channel(1).0
    }

    #[test]
    fn bounded_and_ids_never_reused() {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        let mut t = ConnectionTable::new(2);
        let ia = t.insert(a, tx()).unwrap();
        let ib = t.insert(b, tx()).unwrap();
        assert_eq!(t.insert(a, tx()), Err(TableFull(2)));
        assert_eq!(t.find(&b).map(|(id, _)| id), Some(ib));
        assert!(t.remove(ia).is_some());
        assert!(t.remove(ia).is_none());
        let ia2 = t.insert(a, tx()).unwrap();
        assert!(ia2 > ib);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn removing_an_older_connection_keeps_the_newer_mapping() {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut t = ConnectionTable::new(8);
        let old = t.insert(a, tx()).unwrap();
        let new = t.insert(a, tx()).unwrap();
        assert_eq!(t.find(&a).map(|(id, _)| id), Some(new));
        t.remove(old);
        assert_eq!(t.find(&a).map(|(id, _)| id), Some(new));
        assert!(t.get(new).is_some());
        t.remove(new);
        assert!(t.find(&a).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn dropping_an_entry_closes_its_queue() {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let mut t = ConnectionTable::new(8);
        let (tx, mut rx) = mpsc::channel(1);
        let id = t.insert(a, tx).unwrap();
        t.remove(id);
        assert!(rx.try_recv().is_err() && rx.is_closed());
    }
}
