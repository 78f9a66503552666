//! The ban list: which addresses are banned until when, and what got them banned.
//!
//! Deadlines are data (a sorted set), so the guard can say when it next needs a timeout and
//! lift bans exactly on time. Bounded: when full, the ban ending soonest is lifted early to make
//! room for a new one. Never reads a clock.

use super::event::{UnbanEvent, UnbanReason};
use crate::FastMap;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

#[derive(Debug, Clone)]
struct Ban {
    since: Instant,
    until: Instant,
    failures: u32,
    users: Vec<String>,
}

#[derive(Debug)]
pub(super) struct BanTable {
    map: FastMap<IpAddr, Ban>,
    deadlines: BTreeSet<(Instant, IpAddr)>,
    cap: usize,
}

impl BanTable {
    pub fn new(cap: usize) -> BanTable {
        BanTable {
            map: FastMap::default(),
            deadlines: BTreeSet::new(),
            cap: cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Banned at `now`: a ban whose end has passed no longer counts, even before
    /// `expire` has run.
    pub fn is_banned(&self, now: Instant, ip: IpAddr) -> bool {
        self.map.get(&ip).is_some_and(|b| b.until > now)
    }

    /// Bans `ip` from `now` to `until`; returns the ban lifted early to make room, if any.
    pub fn insert(
        &mut self,
        now: Instant,
        until: Instant,
        ip: IpAddr,
        failures: u32,
        users: Vec<String>,
    ) -> Option<UnbanEvent> {
        let mut evicted = None;
        if let Some(old) = self.map.remove(&ip) {
            self.deadlines.remove(&(old.until, ip));
        } else if self.map.len() >= self.cap {
            evicted = self
                .deadlines
                .first()
                .copied()
                .and_then(|(_, victim)| self.take(now, victim, UnbanReason::Evicted));
        }
        self.deadlines.insert((until, ip));
        self.map.insert(
            ip,
            Ban {
                since: now,
                until,
                failures,
                users,
            },
        );
        evicted
    }

    /// Lifts every ban whose time is up, soonest first.
    pub fn expire(&mut self, now: Instant) -> Vec<UnbanEvent> {
        let mut out = Vec::new();
        while let Some(&(until, ip)) = self.deadlines.first() {
            if until > now {
                break;
            }
            out.extend(self.take(until, ip, UnbanReason::Expired));
        }
        out
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(t, _)| t)
    }

    /// Banned addresses with the instant each ban ends, soonest first.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, Instant)> + '_ {
        self.deadlines.iter().map(|&(t, ip)| (ip, t))
    }

    /// Lifts the ban on `ip` at an operator's request (`ferroswitch ctl unban`).
    pub fn lift(&mut self, now: Instant, ip: IpAddr) -> Option<UnbanEvent> {
        self.take(now, ip, UnbanReason::Operator)
    }

    /// Removes the ban on `ip`, as lifted at `at`.
    fn take(&mut self, at: Instant, ip: IpAddr, reason: UnbanReason) -> Option<UnbanEvent> {
        let b = self.map.remove(&ip)?;
        self.deadlines.remove(&(b.until, ip));
        Some(UnbanEvent {
            src: ip,
            failures: b.failures,
            users: b.users,
            after: at.saturating_duration_since(b.since),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    #[test]
    fn bans_end_on_their_deadline_in_order() {
        let mut b = BanTable::new(10);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        b.insert(t0, t0 + s(600), ip(1), 10, vec!["a".into()]);
        b.insert(t0 + s(10), t0 + s(610), ip(2), 10, vec![]);
        assert!(b.is_banned(t0 + s(599), ip(1)));
        assert!(
            !b.is_banned(t0 + s(600), ip(1)),
            "ends exactly at its deadline"
        );
        assert_eq!(b.next_expiry(), Some(t0 + s(600)));
        assert!(b.expire(t0 + s(599)).is_empty());
        // A late timer lifts both, each at its own deadline.
        let ev = b.expire(t0 + s(700));
        assert_eq!(ev.len(), 2);
        assert_eq!((ev[0].src, ev[0].after), (ip(1), s(600)));
        assert_eq!((ev[1].src, ev[1].after), (ip(2), s(600)));
        assert_eq!(ev[0].users, ["a"]);
        assert_eq!((b.len(), b.next_expiry()), (0, None));
    }

    #[test]
    fn full_table_lifts_the_ban_ending_soonest() {
        let mut b = BanTable::new(2);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(b.insert(t0, t0 + s(100), ip(1), 1, vec![]).is_none());
        assert!(b.insert(t0, t0 + s(50), ip(2), 1, vec![]).is_none());
        let ev = b.insert(t0 + s(5), t0 + s(200), ip(3), 1, vec![]).unwrap();
        assert_eq!(
            (ev.src, ev.reason, ev.after),
            (ip(2), UnbanReason::Evicted, s(5))
        );
        assert_eq!(b.len(), 2);
        // Re-banning a banned address replaces its deadline, evicting no one.
        assert!(b.insert(t0, t0 + s(300), ip(1), 2, vec![]).is_none());
        let order: Vec<IpAddr> = b.iter().map(|(a, _)| a).collect();
        assert_eq!(order, [ip(3), ip(1)]);
    }
}
