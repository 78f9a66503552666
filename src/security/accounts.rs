//! Per-account failure limit and the global failure-rate alarm: what stops a distributed
//! guess (many sources, each below the per-source ban threshold) against one account.
//!
//! After `max_account_failures` failures against one user name within
//! `account_failure_window`, the account is locked for `account_lock_time` against sources
//! that never authenticated for it; the few sources that did (a small, bounded set per
//! account, most recent kept) are still served, so the owner's phone keeps working while the
//! guessers get the same 403 as for a wrong password. The alarm counts failures across all
//! sources in a sliding minute and reports once per minute when they pass the threshold.
//!
//! Bounded: at most `cap` accounts; to make room the least recently active account with
//! nothing worth keeping (no lock, no known source) goes first. Lock deadlines are data, so
//! the guard can say when the next one ends. Never reads a clock; `now` comes in.

use crate::FastMap;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sources remembered per account as having authenticated for it.
pub const KNOWN_SOURCES: usize = 8;
/// Octets of a user name used as the table key: longer names are no account of ours, and
/// the key must not let a peer store kilobytes per entry.
pub const USER_KEY_MAX: usize = 128;
/// The global alarm's window.
pub const ALARM_WINDOW: Duration = Duration::from_secs(60);

/// An account was locked after too many failures from any sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLockEvent {
    /// The user name, escaped (see `event::escape_value`).
    pub user: String,
    pub failures: u32,
    pub duration: Duration,
}

impl fmt::Display for AccountLockEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SECURITY account-lock user={} failures={} for={}s",
            self.user,
            self.failures,
            self.duration.as_secs()
        )
    }
}

/// An account lock ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUnlockEvent {
    pub user: String,
    pub after: Duration,
}

impl fmt::Display for AccountUnlockEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SECURITY account-unlock user={} after={}s",
            self.user,
            self.after.as_secs()
        )
    }
}

/// Failures across all sources passed the alarm threshold within a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmEvent {
    pub failures: u32,
    pub window: Duration,
}

impl fmt::Display for AlarmEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SECURITY alarm auth-failures={} in {}s",
            self.failures,
            self.window.as_secs()
        )
    }
}

/// The limits, copied from `SecurityConfig`.
#[derive(Debug, Clone, Copy)]
pub(super) struct AccountLimits {
    /// 0: accounts are never locked.
    pub max_failures: u32,
    pub window: Duration,
    pub lock_time: Duration,
}

#[derive(Debug)]
struct Account {
    failures: VecDeque<Instant>,
    locked: Option<(Instant, Instant)>,
    /// Sources that authenticated for this account, most recent last.
    known: Vec<IpAddr>,
    touched: Instant,
    /// Where the account sits in `order`: (rank, touched).
    indexed: (usize, Instant),
}

impl Account {
    /// 1 for an account worth keeping under eviction (locked, or with known sources).
    fn rank(&self) -> usize {
        usize::from(self.locked.is_some() || !self.known.is_empty())
    }
}

#[derive(Debug)]
pub(super) struct AccountTable {
    map: FastMap<String, Account>,
    /// Eviction order per rank: (touched, user), oldest first.
    order: [BTreeSet<(Instant, String)>; 2],
    /// Lock ends: (until, user).
    locks: BTreeSet<(Instant, String)>,
    cap: usize,
    pub evicted: u64,
}

/// The table key for a user name: at most [`USER_KEY_MAX`] octets, cut on a char boundary.
fn key(user: &str) -> &str {
    if user.len() <= USER_KEY_MAX {
        return user;
    }
    let mut end = USER_KEY_MAX;
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    &user[..end]
}

impl AccountTable {
    pub fn new(cap: usize) -> AccountTable {
        AccountTable {
            map: FastMap::default(),
            order: [BTreeSet::new(), BTreeSet::new()],
            locks: BTreeSet::new(),
            cap: cap.max(1),
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn locked_count(&self) -> usize {
        self.locks.len()
    }

    /// Counts a failure against `user`; returns the lock when this one crosses the limit.
    /// While locked, failures are not counted (the lock already holds).
    pub fn record_failure(
        &mut self,
        now: Instant,
        user: &str,
        limits: AccountLimits,
    ) -> Option<(u32, Instant)> {
        if limits.max_failures == 0 {
            return None;
        }
        let k = key(user);
        let a = self.ensure(now, k);
        if a.locked.is_some_and(|(_, until)| until > now) {
            return None;
        }
        while a
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= limits.window)
        {
            a.failures.pop_front();
        }
        a.failures.push_back(now);
        a.touched = now;
        let mut lock = None;
        if a.failures.len() >= limits.max_failures as usize {
            let failures = u32::try_from(a.failures.len()).unwrap_or(u32::MAX);
            a.failures.clear();
            let until = now + limits.lock_time;
            if let Some((_, old)) = a.locked.replace((now, until)) {
                self.locks.remove(&(old, k.to_string()));
            }
            self.locks.insert((until, k.to_string()));
            lock = Some((failures, until));
        }
        self.sync(k);
        lock
    }

    /// `src` authenticated for `user`: it stays served while the account is locked.
    pub fn record_success(&mut self, now: Instant, src: IpAddr, user: &str) {
        let k = key(user);
        let a = self.ensure(now, k);
        a.known.retain(|s| *s != src);
        if a.known.len() >= KNOWN_SOURCES {
            a.known.remove(0);
        }
        a.known.push(src);
        a.touched = now;
        self.sync(k);
    }

    /// Whether `user` is locked at `now` for `src` (a source that never authenticated for it).
    pub fn is_locked_for(&self, now: Instant, src: IpAddr, user: &str) -> bool {
        self.map.get(key(user)).is_some_and(|a| {
            a.locked.is_some_and(|(_, until)| until > now) && !a.known.contains(&src)
        })
    }

    /// Ends the locks that are due, soonest first: (user key, how long it held).
    pub fn expire(&mut self, now: Instant) -> Vec<(String, Duration)> {
        let mut out = Vec::new();
        while let Some((until, user)) = self.locks.first().cloned() {
            if until > now {
                break;
            }
            self.locks.pop_first();
            if let Some(a) = self.map.get_mut(&user) {
                if let Some((since, _)) = a.locked.take() {
                    out.push((user.clone(), until.saturating_duration_since(since)));
                }
                self.sync(&user);
            }
        }
        out
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.locks.first().map(|(t, _)| *t)
    }

    fn ensure(&mut self, now: Instant, k: &str) -> &mut Account {
        if !self.map.contains_key(k) {
            if self.map.len() >= self.cap {
                self.evict_one();
            }
            self.order[0].insert((now, k.to_string()));
            self.map.insert(
                k.to_string(),
                Account {
                    failures: VecDeque::new(),
                    locked: None,
                    known: Vec::new(),
                    touched: now,
                    indexed: (0, now),
                },
            );
        }
        // Just inserted or already there.
        self.map.get_mut(k).expect("account present")
    }

    /// Moves `k` to the place its rank and last activity call for.
    fn sync(&mut self, k: &str) {
        let Some(a) = self.map.get_mut(k) else {
            return;
        };
        let want = (a.rank(), a.touched);
        if want != a.indexed {
            self.order[a.indexed.0].remove(&(a.indexed.1, k.to_string()));
            self.order[want.0].insert((want.1, k.to_string()));
            a.indexed = want;
        }
    }

    fn evict_one(&mut self) {
        let victim = self.order[0]
            .first()
            .or_else(|| self.order[1].first())
            .map(|(_, k)| k.clone());
        if let Some(k) = victim {
            if let Some(a) = self.map.remove(&k) {
                self.order[a.indexed.0].remove(&(a.indexed.1, k.clone()));
                if let Some((_, until)) = a.locked {
                    self.locks.remove(&(until, k));
                }
                self.evicted += 1;
            }
        }
    }
}

/// Failures across all sources in a sliding [`ALARM_WINDOW`]; remembers at most
/// `threshold + 1` instants.
#[derive(Debug)]
pub(super) struct Alarm {
    threshold: u32,
    recent: VecDeque<Instant>,
    last: Option<Instant>,
}

impl Alarm {
    /// `threshold` 0: never alarms.
    pub fn new(threshold: u32) -> Alarm {
        Alarm {
            threshold,
            recent: VecDeque::new(),
            last: None,
        }
    }

    /// Counts one failure; the alarm when more than `threshold` fell within the window and
    /// none was raised in the last window.
    pub fn record(&mut self, now: Instant) -> Option<AlarmEvent> {
        if self.threshold == 0 {
            return None;
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= ALARM_WINDOW)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.recent.len() > self.threshold as usize + 1 {
            self.recent.pop_front();
        }
        let over = self.recent.len() > self.threshold as usize;
        let quiet = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= ALARM_WINDOW);
        if over && quiet {
            self.last = Some(now);
            return Some(AlarmEvent {
                failures: u32::try_from(self.recent.len()).unwrap_or(u32::MAX),
                window: ALARM_WINDOW,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    const LIMITS: AccountLimits = AccountLimits {
        max_failures: 20,
        window: Duration::from_secs(300),
        lock_time: Duration::from_secs(600),
    };

    #[test]
    fn twenty_failures_in_five_minutes_lock_for_ten() {
        let mut t = AccountTable::new(100);
        let t0 = Instant::now();
        for i in 0..19 {
            assert!(t
                .record_failure(t0 + secs(i * 15), "1000", LIMITS)
                .is_none());
        }
        let (n, until) = t.record_failure(t0 + secs(299), "1000", LIMITS).unwrap();
        assert_eq!((n, until), (20, t0 + secs(899)));
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(t.is_locked_for(t0 + secs(898), stranger, "1000"));
        assert!(
            !t.is_locked_for(t0 + secs(899), stranger, "1000"),
            "ends on time"
        );
        assert!(!t.is_locked_for(t0 + secs(300), stranger, "1001"));
        assert_eq!(t.next_expiry(), Some(t0 + secs(899)));
        assert!(t.expire(t0 + secs(898)).is_empty());
        assert_eq!(t.expire(t0 + secs(899)), [("1000".to_string(), secs(600))]);
        assert_eq!(t.next_expiry(), None);
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_lock() {
        let mut t = AccountTable::new(100);
        let t0 = Instant::now();
        // 18 per 300 s, for an hour.
        for i in 0..216u64 {
            let at = t0 + Duration::from_millis(i * 300_000 / 18);
            assert!(
                t.record_failure(at, "1000", LIMITS).is_none(),
                "locked at {i}"
            );
        }
    }

    #[test]
    fn known_sources_pass_a_lock_and_are_bounded() {
        let mut t = AccountTable::new(100);
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([192, 0, 2, n]);
        for n in 0..10 {
            t.record_success(t0, ip(n), "alice");
        }
        for _ in 0..20 {
            t.record_failure(t0, "alice", LIMITS);
        }
        assert!(
            t.is_locked_for(t0, ip(0), "alice"),
            "the oldest known source was dropped"
        );
        assert!(t.is_locked_for(t0, ip(1), "alice"));
        for n in 2..10 {
            assert!(!t.is_locked_for(t0, ip(n), "alice"), "known {n}");
        }
        // Failures while locked do not extend the lock.
        assert!(t.record_failure(t0 + secs(10), "alice", LIMITS).is_none());
        assert_eq!(t.next_expiry(), Some(t0 + secs(600)));
    }

    #[test]
    fn memory_is_bounded_and_keeps_locked_accounts() {
        let mut t = AccountTable::new(3);
        let t0 = Instant::now();
        for _ in 0..20 {
            t.record_failure(t0, "victim", LIMITS);
        }
        for i in 0..1000u64 {
            t.record_failure(t0 + secs(1), &format!("spray{i}"), LIMITS);
        }
        assert_eq!(t.len(), 3);
        assert!(t.is_locked_for(t0 + secs(2), "192.0.2.1".parse().unwrap(), "victim"));
        assert_eq!(t.evicted, 998);
        // Long names share one bounded key.
        let long = "é".repeat(1000);
        t.record_failure(t0, &long, LIMITS);
        assert!(t.map.keys().all(|k| k.len() <= USER_KEY_MAX));
    }

    #[test]
    fn alarm_fires_once_per_window_above_the_threshold() {
        let mut a = Alarm::new(100);
        let t0 = Instant::now();
        for i in 0..100u64 {
            assert!(a.record(t0 + Duration::from_millis(i * 500)).is_none());
        }
        let ev = a.record(t0 + secs(50)).unwrap();
        assert_eq!(ev.to_string(), "SECURITY alarm auth-failures=101 in 60s");
        // Still over the threshold, but the alarm was raised less than a minute ago.
        for i in 0..200u64 {
            assert!(a
                .record(t0 + secs(50) + Duration::from_millis(i * 40))
                .is_none());
        }
        assert!(a.record(t0 + secs(110)).is_some());
        assert!(a.recent.len() <= 101, "bounded");
        assert!(Alarm::new(0).record(t0).is_none());
    }

    #[test]
    fn lines() {
        let l = AccountLockEvent {
            user: "1000".into(),
            failures: 20,
            duration: secs(600),
        };
        assert_eq!(
            l.to_string(),
            "SECURITY account-lock user=1000 failures=20 for=600s"
        );
        let u = AccountUnlockEvent {
            user: "1000".into(),
            after: secs(600),
        };
        assert_eq!(
            u.to_string(),
            "SECURITY account-unlock user=1000 after=600s"
        );
    }
}
