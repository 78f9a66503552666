//! The table of sources the guard watches: per address, the failed authentications inside the
//! window (with the user names tried), the rate-limit sampling window, and when a scanner was
//! last reported.
//!
//! Bounded: at most `cap` sources; to make room the least recently active source is forgotten,
//! taking sources with nothing against them (no failures, not flooding) before the ones with a
//! record, so a burst of new addresses cannot wash away an attacker's count. Idle sources
//! expire on their own. Never reads a clock; `now` comes in.

use crate::FastMap;
use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One failed authentication.
#[derive(Debug, Clone)]
struct Failure {
    at: Instant,
    /// Escaped user name (see `event::escape_value`).
    user: String,
}

#[derive(Debug)]
struct Source {
    failures: VecDeque<Failure>,
    window_start: Instant,
    /// Requests seen in the current sampling window (dropped ones included).
    count: u32,
    /// The previous window was over the limit: drop everything in this one (pike's "hot").
    hot: bool,
    /// The current window's flood was reported.
    flood_reported: bool,
    scanner_reported: Option<Instant>,
    /// Last activity that matters for expiry (a new window, a failure, a scanner report).
    touched: Instant,
    /// Where the source sits in `SourceTable::order`: (rank, touched).
    indexed: (usize, Instant),
}

impl Source {
    fn new(now: Instant) -> Source {
        Source {
            failures: VecDeque::new(),
            window_start: now,
            count: 0,
            hot: false,
            flood_reported: false,
            scanner_reported: None,
            touched: now,
            indexed: (0, now),
        }
    }

    /// 1 for a source with a record against it (kept longer under eviction), else 0.
    fn rank(&self) -> usize {
        usize::from(!self.failures.is_empty() || self.hot)
    }
}

/// Result of counting one request against the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rate {
    Pass,
    /// Over the limit; `report` is true for the first drop of the window.
    Drop {
        report: bool,
    },
}

/// What a source's failures add up to when it crosses the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Offence {
    pub failures: u32,
    pub users: Vec<String>,
}

#[derive(Debug)]
pub(super) struct SourceTable {
    map: FastMap<IpAddr, Source>,
    /// Eviction and expiry order per rank: (touched, address), oldest first.
    order: [BTreeSet<(Instant, IpAddr)>; 2],
    cap: usize,
    /// A source untouched for this long is forgotten.
    idle: Duration,
    pub evicted: u64,
}

impl SourceTable {
    pub fn new(cap: usize, idle: Duration) -> SourceTable {
        SourceTable {
            map: FastMap::default(),
            order: [BTreeSet::new(), BTreeSet::new()],
            cap: cap.max(1),
            idle,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Counts a request; pike's rule: a window over `limit` keeps the source blocked through
    /// the next window, so a steady flood stays blocked instead of leaking `limit` per window.
    pub fn count_request(
        &mut self,
        now: Instant,
        ip: IpAddr,
        limit: u32,
        window: Duration,
    ) -> Rate {
        let s = self.ensure(now, ip);
        let elapsed = now.saturating_duration_since(s.window_start);
        if elapsed >= window {
            // An idle gap of a whole window means the last busy window is not adjacent.
            s.hot = elapsed < window.saturating_mul(2) && s.count > limit;
            s.window_start = now;
            s.count = 0;
            s.flood_reported = false;
            s.touched = now;
        }
        s.count = s.count.saturating_add(1);
        let rate = if s.hot || s.count > limit {
            let report = !s.flood_reported;
            s.flood_reported = true;
            // Over the limit now counts as a record (rank 1) even before the window ends.
            s.hot |= s.count > limit;
            Rate::Drop { report }
        } else {
            Rate::Pass
        };
        self.sync(ip);
        rate
    }

    /// Records a failure; when `max` fall inside `window` the source is removed from the
    /// table and its offence returned (the caller bans it).
    pub fn record_failure(
        &mut self,
        now: Instant,
        ip: IpAddr,
        user: String,
        window: Duration,
        max: u32,
    ) -> Option<Offence> {
        let s = self.ensure(now, ip);
        while s
            .failures
            .front()
            .is_some_and(|f| now.saturating_duration_since(f.at) >= window)
        {
            s.failures.pop_front();
        }
        s.failures.push_back(Failure { at: now, user });
        s.touched = now;
        if s.failures.len() < max as usize {
            self.sync(ip);
            return None;
        }
        let mut users: Vec<String> = Vec::new();
        for f in &s.failures {
            if !users.contains(&f.user) {
                users.push(f.user.clone());
            }
        }
        let failures = u32::try_from(s.failures.len()).unwrap_or(u32::MAX);
        self.remove(ip);
        Some(Offence { failures, users })
    }

    /// Forgets the failures recorded for `user` (escaped) from `ip`: that user proved to
    /// know the password. Failures for other names stay, so a valid account cannot be used
    /// to reset a guessing run.
    pub fn clear_user(&mut self, ip: IpAddr, user: &str) {
        if let Some(s) = self.map.get_mut(&ip) {
            s.failures.retain(|f| f.user != user);
            self.sync(ip);
        }
    }

    pub fn failures(&self, ip: IpAddr) -> usize {
        self.map.get(&ip).map_or(0, |s| s.failures.len())
    }

    /// Whether a scanner from `ip` should be logged now (at most once per `interval`).
    pub fn scanner_report_due(&mut self, now: Instant, ip: IpAddr, interval: Duration) -> bool {
        let s = self.ensure(now, ip);
        let due = s
            .scanner_reported
            .is_none_or(|t| now.saturating_duration_since(t) >= interval);
        if due {
            s.scanner_reported = Some(now);
            s.touched = now;
            self.sync(ip);
        }
        due
    }

    /// Forgets sources idle for the idle time.
    pub fn expire(&mut self, now: Instant) {
        for rank in 0..2 {
            while let Some(&(touched, ip)) = self.order[rank].first() {
                if touched + self.idle > now {
                    break;
                }
                self.remove(ip);
            }
        }
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.order
            .iter()
            .filter_map(|o| o.first().map(|&(t, _)| t + self.idle))
            .min()
    }

    pub fn remove(&mut self, ip: IpAddr) {
        if let Some(s) = self.map.remove(&ip) {
            self.order[s.indexed.0].remove(&(s.indexed.1, ip));
        }
    }

    fn ensure(&mut self, now: Instant, ip: IpAddr) -> &mut Source {
        if !self.map.contains_key(&ip) {
            if self.map.len() >= self.cap {
                self.evict_one();
            }
            self.order[0].insert((now, ip));
        }
        self.map.entry(ip).or_insert_with(|| Source::new(now))
    }

    /// Moves `ip` to the place its rank and last activity call for.
    fn sync(&mut self, ip: IpAddr) {
        let Some(s) = self.map.get_mut(&ip) else {
            return;
        };
        let want = (s.rank(), s.touched);
        if want != s.indexed {
            self.order[s.indexed.0].remove(&(s.indexed.1, ip));
            self.order[want.0].insert((want.1, ip));
            s.indexed = want;
        }
    }

    fn evict_one(&mut self) {
        let victim = self.order.iter().find_map(|o| o.first().map(|&(_, ip)| ip));
        if let Some(ip) = victim {
            self.remove(ip);
            self.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    const W: Duration = Duration::from_secs(2);

    #[test]
    fn pike_window_blocks_a_steady_flood_and_forgives_a_pause() {
        let mut t = SourceTable::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        let outcomes: Vec<Rate> = (0..5).map(|_| t.count_request(t0, ip(1), 3, W)).collect();
        assert_eq!(outcomes[..3], [Rate::Pass; 3]);
        assert_eq!(outcomes[3], Rate::Drop { report: true });
        assert_eq!(outcomes[4], Rate::Drop { report: false });
        // Next window: still hot, even the first request drops; reported once more.
        let t1 = t0 + W;
        assert_eq!(
            t.count_request(t1, ip(1), 3, W),
            Rate::Drop { report: true }
        );
        assert_eq!(
            t.count_request(t1, ip(1), 3, W),
            Rate::Drop { report: false }
        );
        // That window saw only 2 (<= 3): the one after is clean.
        let t2 = t1 + W;
        assert_eq!(t.count_request(t2, ip(1), 3, W), Rate::Pass);
        // A flood, then silence for more than a window: no carry-over.
        for _ in 0..10 {
            t.count_request(t2, ip(1), 3, W);
        }
        assert_eq!(t.count_request(t2 + W * 2, ip(1), 3, W), Rate::Pass);
    }

    #[test]
    fn failures_slide_out_of_the_window() {
        let mut t = SourceTable::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        let win = Duration::from_secs(60);
        for i in 0..2 {
            assert!(t
                .record_failure(t0 + Duration::from_secs(i), ip(1), "a".into(), win, 3)
                .is_none());
        }
        // The first failure (t0) is out of the window at t0+60.
        let at = t0 + Duration::from_secs(60);
        assert!(t.record_failure(at, ip(1), "b".into(), win, 3).is_none());
        assert_eq!(t.failures(ip(1)), 2);
        let off = t.record_failure(at, ip(1), "a".into(), win, 3).unwrap();
        assert_eq!(off.failures, 3);
        assert_eq!(off.users, ["a", "b"]);
        assert_eq!(t.len(), 0, "an offender leaves the table for the ban list");
    }

    #[test]
    fn clear_user_keeps_other_names() {
        let mut t = SourceTable::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        let win = Duration::from_secs(60);
        for u in ["alice", "bob", "alice"] {
            t.record_failure(t0, ip(1), u.into(), win, 10);
        }
        t.clear_user(ip(1), "alice");
        assert_eq!(t.failures(ip(1)), 1);
    }

    #[test]
    fn eviction_takes_clean_sources_first_and_stays_bounded() {
        let mut t = SourceTable::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let win = Duration::from_secs(60);
        t.record_failure(t0, ip(1), "x".into(), win, 10);
        for n in 2..100 {
            t.count_request(t0 + Duration::from_millis(u64::from(n)), ip(n), 10, W);
            assert!(t.len() <= 3);
        }
        assert_eq!(t.failures(ip(1)), 1, "the source with failures survived");
        assert_eq!(t.evicted, 96);
        // Only when all have records does a record go.
        for n in 200..204 {
            t.record_failure(t0, ip(n), "y".into(), win, 10);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.failures(ip(1)), 0);
    }

    #[test]
    fn idle_sources_expire_on_the_clock() {
        let idle = Duration::from_secs(60);
        let mut t = SourceTable::new(10, idle);
        let t0 = Instant::now();
        t.count_request(t0, ip(1), 10, W);
        t.record_failure(t0 + Duration::from_secs(5), ip(2), "u".into(), idle, 10);
        assert_eq!(t.next_expiry(), Some(t0 + idle));
        t.expire(t0 + idle);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_expiry(), Some(t0 + Duration::from_secs(65)));
        t.expire(t0 + Duration::from_secs(65));
        assert_eq!((t.len(), t.next_expiry()), (0, None));
    }
}
