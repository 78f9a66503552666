//! The location store: who is where. Maps an address-of-record (`user@domain`) to its current
//! bindings, each with its own expiry, the transport path it registered over and whether NAT
//! was detected. Sans-IO: time comes in as `now`; expiry is driven by the caller's timer through
//! `next_expiry` / `remove_expired`, so bindings disappear on time, not only on lookup.
//! Memory is proportional to the live bindings: one expiry entry per address-of-record.
//!
//! `LocationStore` is a trait so that a shared or persistent store can replace the in-memory
//! one; the B2BUA only ever calls `lookup`. A persistent store (`crate::persist`) keeps the
//! writes of the current batch and makes them durable in `flush`, which the driver calls
//! before it sends the responses of that batch.

use crate::net::Peer;
use dashmap::DashMap;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

/// One registered contact of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI exactly as registered (without the angle brackets).
    pub contact: String,
    /// Contact header parameters to echo in the 200 (e.g. `+sip.instance`, `reg-id`, `q`),
    /// already rendered as `;name=value…`, without `expires`.
    pub contact_params: String,
    /// `+sip.instance` (RFC 5626) when present: identifies the device across Contact changes.
    pub instance: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    pub expires_at: Instant,
    /// Transport and address the REGISTER arrived from (after received/rport).
    pub source: Peer,
    /// Our local address the REGISTER arrived on.
    pub local: SocketAddr,
    /// TCP connection the REGISTER arrived on, when reliable.
    pub connection: Option<u64>,
    /// True when NAT was detected: requests go to `source`, not to the Contact's host.
    pub nat: bool,
    pub user_agent: Option<String>,
    /// `host:port` the phone knows us by (for Via and Contact of requests we send it).
    pub advertised: String,
    /// RFC 3327 Path header values of the REGISTER, in the order received (each a name-addr
    /// such as `<sip:10.0.0.1;lr;received=sip:192.0.2.7:5060>`), kept only when the REGISTER
    /// came from a trusted edge proxy (`[registrar] trusted_proxies`). Not empty: requests
    /// to this contact go through these proxies as a pre-loaded route set (RFC 3327 §5.4),
    /// to the first one's address, and the proxy, not we, keeps the phone's NAT pinhole.
    pub path: Vec<String>,
}

impl Binding {
    /// True when requests to this contact go through an edge proxy (RFC 3327 Path).
    pub fn has_path(&self) -> bool {
        !self.path.is_empty()
    }

    /// Seconds left before expiry, rounded up (what the 200 OK lists).
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        let left = self.expires_at.saturating_duration_since(now);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

/// What the registrar and the B2BUA need from a location store.
pub trait LocationStore: Send + Sync {
    /// Live bindings of `aor` (expired ones are never returned).
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding>;
    /// Runs `f` on the binding list of `aor` atomically (RFC 3261 §10.3 steps 6–8 read and
    /// write it as one unit) and returns the resulting live list.
    fn update(&self, aor: &str, now: Instant, f: &mut dyn FnMut(&mut Vec<Binding>))
        -> Vec<Binding>;
    /// Removes every binding whose expiry has passed; returns them with their AOR.
    fn remove_expired(&self, now: Instant) -> Vec<(String, Binding)>;
    /// The earliest expiry among all bindings, for the caller's timer.
    fn next_expiry(&self) -> Option<Instant>;
    /// Number of live address-of-records and bindings.
    fn counts(&self) -> (usize, usize);
    /// Every live binding with its AOR, sorted by AOR, for an operator's listing
    /// (`ferroswitch ctl registrations`). A store that cannot list returns nothing.
    fn list(&self, _now: Instant) -> Vec<(String, Binding)> {
        Vec::new()
    }

    /// Makes every write so far durable. The driver calls it after the engine has handled a
    /// batch and before it sends the batch's transmits, so no 200 OK leaves before its
    /// binding is stored. Nothing to do for a store that only lives in memory.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// `flush` for a store whose durable copy is across the network (Redis): the driver
    /// awaits it, so the thread is free while the write is in flight. The store bounds its
    /// own wait (a timeout is an error). By default the synchronous `flush`, already done
    /// when the future is made.
    fn flush_async(&self) -> FlushFuture<'_> {
        Box::pin(std::future::ready(self.flush()))
    }

    /// False while the store cannot take writes (its shared copy is unreachable): the
    /// registrar then refuses REGISTERs that would change bindings (500 with Retry-After)
    /// instead of accepting what it could not share. Lookups keep working on what is known.
    fn writable(&self) -> bool {
        true
    }
}

/// What `LocationStore::flush_async` returns.
pub type FlushFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// A location store could not read or write its durable copy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("location store {location}: {message}")]
pub struct StoreError {
    /// What failed: the database file's path, for a file store.
    pub location: String,
    pub message: String,
}

/// In-memory store: a concurrent map of AOR → bindings plus an ordered index of expiries
/// holding exactly one entry per address-of-record (its earliest expiry). A refresh moves
/// that entry instead of adding one, so the index never outgrows the map (issue 17.3: it used
/// to gain a copy of the address on every refresh until the old expiry came round).
///
/// Lock order: a map shard, then the index; the index lock is never held while a shard is
/// taken.
#[derive(Default)]
pub struct MemoryStore {
    map: DashMap<String, Entry, crate::FastHash>,
    expiries: Mutex<BTreeSet<(Instant, String)>>,
}

#[derive(Default)]
struct Entry {
    bindings: Vec<Binding>,
    /// The instant under which this AOR sits in `expiries`, if it does.
    scheduled: Option<Instant>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Entries in the expiry index (one per address-of-record with bindings).
    pub fn expiry_queue_len(&self) -> usize {
        self.index().len()
    }

    fn index(&self) -> std::sync::MutexGuard<'_, BTreeSet<(Instant, String)>> {
        // A poisoned lock only means another thread panicked mid-update; the set is still a
        // valid set, so keep using it.
        self.expiries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves `aor`'s index entry to its earliest binding expiry (or removes it). Called with
    /// the AOR's shard held.
    fn reschedule(&self, aor: &str, entry: &mut Entry) {
        let first = entry.bindings.iter().map(|b| b.expires_at).min();
        if first == entry.scheduled {
            return;
        }
        let mut index = self.index();
        if let Some(old) = entry.scheduled.take() {
            index.remove(&(old, aor.to_string()));
        }
        if let Some(at) = first {
            index.insert((at, aor.to_string()));
        }
        entry.scheduled = first;
    }
}

impl LocationStore for MemoryStore {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.map.get(aor).map_or_else(Vec::new, |e| {
            e.bindings
                .iter()
                .filter(|b| b.expires_at > now)
                .cloned()
                .collect()
        })
    }

    fn update(
        &self,
        aor: &str,
        now: Instant,
        f: &mut dyn FnMut(&mut Vec<Binding>),
    ) -> Vec<Binding> {
        let result = {
            let mut entry = self.map.entry(aor.to_string()).or_default();
            entry.bindings.retain(|b| b.expires_at > now);
            f(&mut entry.bindings);
            entry.bindings.retain(|b| b.expires_at > now);
            self.reschedule(aor, &mut entry);
            entry.bindings.clone()
        };
        if result.is_empty() {
            self.map.remove_if(aor, |_, e| e.bindings.is_empty());
        }
        result
    }

    fn remove_expired(&self, now: Instant) -> Vec<(String, Binding)> {
        let mut removed = Vec::new();
        loop {
            let aor = {
                let mut index = self.index();
                match index.first() {
                    Some((at, _)) if *at <= now => match index.pop_first() {
                        Some((_, aor)) => aor,
                        None => break,
                    },
                    _ => break,
                }
            };
            let mut empty = false;
            if let Some(mut entry) = self.map.get_mut(&aor) {
                // Its index entry is gone: forget it before rescheduling.
                entry.scheduled = None;
                let (gone, keep): (Vec<_>, Vec<_>) =
                    entry.bindings.drain(..).partition(|b| b.expires_at <= now);
                removed.extend(gone.into_iter().map(|b| (aor.clone(), b)));
                entry.bindings = keep;
                self.reschedule(&aor, &mut entry);
                empty = entry.bindings.is_empty();
            }
            if empty {
                self.map.remove_if(&aor, |_, e| e.bindings.is_empty());
            }
        }
        removed
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.index().first().map(|(at, _)| *at)
    }

    fn list(&self, now: Instant) -> Vec<(String, Binding)> {
        let mut out: Vec<(String, Binding)> = self
            .map
            .iter()
            .flat_map(|e| {
                let aor = e.key().clone();
                e.value()
                    .bindings
                    .iter()
                    .filter(|b| b.expires_at > now)
                    .map(move |b| (aor.clone(), b.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.contact.cmp(&b.1.contact)));
        out
    }

    fn counts(&self) -> (usize, usize) {
        let bindings = self.map.iter().map(|e| e.value().bindings.len()).sum();
        (self.map.len(), bindings)
    }
}

/// A shared store whose shared copy cannot be reached (`writable` false, as the Redis store
/// while Redis is down) over a memory store: for tests of what the registrar and the engine
/// answer then.
#[cfg(test)]
pub(crate) struct Unwritable(pub std::sync::Arc<MemoryStore>);

#[cfg(test)]
impl LocationStore for Unwritable {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.0.lookup(aor, now)
    }
    fn update(
        &self,
        aor: &str,
        now: Instant,
        f: &mut dyn FnMut(&mut Vec<Binding>),
    ) -> Vec<Binding> {
        self.0.update(aor, now, f)
    }
    fn remove_expired(&self, now: Instant) -> Vec<(String, Binding)> {
        self.0.remove_expired(now)
    }
    fn next_expiry(&self) -> Option<Instant> {
        self.0.next_expiry()
    }
    fn counts(&self) -> (usize, usize) {
        self.0.counts()
    }
    fn writable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Transport;
    use std::time::Duration;

    fn binding(contact: &str, at: Instant) -> Binding {
        Binding {
            contact: contact.into(),
            contact_params: String::new(),
            instance: None,
            call_id: "c".into(),
            cseq: 1,
            expires_at: at,
            source: Peer::new(Transport::Udp, "127.0.0.1:5090".parse().unwrap()),
            local: "127.0.0.1:5060".parse().unwrap(),
            connection: None,
            nat: false,
            user_agent: None,
            advertised: "127.0.0.1:5060".into(),
            path: Vec::new(),
        }
    }

    #[test]
    fn bindings_expire_on_the_timer_not_only_on_lookup() {
        let t0 = Instant::now();
        let s = MemoryStore::new();
        s.update("alice@d", t0, &mut |l| {
            l.push(binding("sip:a@1", t0 + Duration::from_secs(60)));
            l.push(binding("sip:a@2", t0 + Duration::from_secs(120)));
        });
        assert_eq!(s.next_expiry(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(s.lookup("alice@d", t0).len(), 2);
        assert!(s.remove_expired(t0 + Duration::from_secs(59)).is_empty());
        let gone = s.remove_expired(t0 + Duration::from_secs(60));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].1.contact, "sip:a@1");
        assert_eq!(s.counts(), (1, 1));
        assert_eq!(s.next_expiry(), Some(t0 + Duration::from_secs(120)));
        let gone = s.remove_expired(t0 + Duration::from_secs(200));
        assert_eq!(gone.len(), 1);
        assert_eq!(s.counts(), (0, 0));
        assert_eq!(s.next_expiry(), None);
    }

    #[test]
    fn issue_17_3_a_thousand_refreshes_keep_one_expiry_entry() {
        let t0 = Instant::now();
        let s = MemoryStore::new();
        for i in 0..1_000u64 {
            let now = t0 + Duration::from_secs(i);
            s.update("alice@d", now, &mut |l| {
                l.clear();
                l.push(binding("sip:a@1", now + Duration::from_secs(3600)));
            });
            assert_eq!(s.expiry_queue_len(), 1, "after refresh {i}");
        }
        let last = t0 + Duration::from_secs(999 + 3600);
        assert_eq!(s.next_expiry(), Some(last));
        assert!(s.remove_expired(last - Duration::from_secs(1)).is_empty());
        assert_eq!(s.remove_expired(last).len(), 1);
        assert_eq!((s.counts(), s.expiry_queue_len()), ((0, 0), 0));
    }

    #[test]
    fn remaining_rounds_up() {
        let t0 = Instant::now();
        let b = binding("sip:x@y", t0 + Duration::from_millis(3_500));
        assert_eq!(b.remaining_secs(t0), 4);
        assert_eq!(b.remaining_secs(t0 + Duration::from_secs(10)), 0);
    }
}
