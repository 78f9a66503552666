//! Per-user and per-source bounds on what one party may hold open at once (calls ringing or
//! up, MESSAGEs waiting for an answer), so that one account or one address cannot take the
//! whole switch. A `Hold` is taken when a call or MESSAGE is admitted and given back exactly
//! once when it ends.
//!
//! Never does I/O and never reads a clock: the engine passes `now` for the log rate limit.

use crate::FastMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Which bound refused a new call or MESSAGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The authenticated user already holds `max_per_user`.
    User,
    /// The source address already holds `max_per_source`.
    Source,
}

/// What one admitted call or MESSAGE counts against; released with [`Limits::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    user: Option<String>,
    source: Option<IpAddr>,
}

/// Counters per authenticated user and per source address. A bound of 0 is off.
#[derive(Debug, Default)]
pub struct Limits {
    max_per_user: usize,
    max_per_source: usize,
    users: FastMap<String, usize>,
    sources: FastMap<IpAddr, usize>,
    /// Log rate limit: when the last refusal was logged, and how many were not since.
    logged_at: Option<Instant>,
    suppressed: u64,
}

/// At most one refusal line per this interval (a flood must not flood the log).
const LOG_EVERY: Duration = Duration::from_secs(1);

impl Limits {
    pub fn new(max_per_user: usize, max_per_source: usize) -> Limits {
        Limits {
            max_per_user,
            max_per_source,
            ..Limits::default()
        }
    }

    /// Counts one more for `user` (only authenticated users: an unauthenticated From is
    /// anybody's to spoof) and `source`, or says which bound is reached.
    pub fn try_acquire(
        &mut self,
        user: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<Hold, Over> {
        if let Some(u) = user {
            let held = self.users.get(u).copied().unwrap_or(0);
            if self.max_per_user > 0 && held >= self.max_per_user {
                return Err(Over::User);
            }
        }
        if let Some(s) = source {
            let held = self.sources.get(&s).copied().unwrap_or(0);
            if self.max_per_source > 0 && held >= self.max_per_source {
                return Err(Over::Source);
            }
        }
        if let Some(u) = user {
            *self.users.entry(u.to_string()).or_default() += 1;
        }
        if let Some(s) = source {
            *self.sources.entry(s).or_default() += 1;
        }
        Ok(Hold {
            user: user.map(str::to_string),
            source,
        })
    }

    /// Gives back what `hold` counted (entries at zero are removed: the maps stay as small as
    /// the number of parties with something open).
    pub fn release(&mut self, hold: Hold) {
        if let Some(u) = hold.user {
            if let Some(n) = self.users.get_mut(&u) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.users.remove(&u);
                }
            }
        }
        if let Some(s) = hold.source {
            if let Some(n) = self.sources.get_mut(&s) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.sources.remove(&s);
                }
            }
        }
    }

    /// What `user` holds now.
    pub fn held_by_user(&self, user: &str) -> usize {
        self.users.get(user).copied().unwrap_or(0)
    }

    /// Whether a refusal at `now` should be logged; `Some(n)`: log it, with `n` refusals not
    /// logged since the last line.
    pub fn should_log(&mut self, now: Instant) -> Option<u64> {
        match self.logged_at {
            Some(at) if now.saturating_duration_since(at) < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.logged_at = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_and_per_source_bounds_and_release() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut l = Limits::new(2, 3);
        let h1 = l.try_acquire(Some("bob"), Some(a)).unwrap();
        let _h2 = l.try_acquire(Some("bob"), Some(b)).unwrap();
        assert_eq!(l.try_acquire(Some("bob"), Some(b)), Err(Over::User));
        let _h3 = l.try_acquire(Some("alice"), Some(a)).unwrap();
        let _h4 = l.try_acquire(None, Some(a)).unwrap();
        assert_eq!(l.try_acquire(Some("carol"), Some(a)), Err(Over::Source));
        l.release(h1);
        assert_eq!(l.held_by_user("bob"), 1);
        assert!(l.try_acquire(Some("bob"), Some(b)).is_ok());
        // 0 = off.
        let mut off = Limits::new(0, 0);
        for _ in 0..100 {
            off.try_acquire(Some("bob"), Some(a)).unwrap();
        }
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_second() {
        let mut l = Limits::new(1, 1);
        let t0 = Instant::now();
        assert_eq!(l.should_log(t0), Some(0));
        assert_eq!(l.should_log(t0 + Duration::from_millis(10)), None);
        assert_eq!(l.should_log(t0 + Duration::from_millis(20)), None);
        assert_eq!(l.should_log(t0 + Duration::from_secs(1)), Some(2));
    }
}
