//! Call counters of the call core (`B2buaStats::calls`): calls started, answered and ended by
//! hangup cause, and the post-dial delay (the INVITE received → the first 18x or 2xx sent to
//! the caller) as histogram buckets. Plain integers the driver copies out; the metrics
//! exporter in the shell turns them into Prometheus text. Never reads a clock: the delay is
//! measured between two `wall` times the engine was handed.

use crate::cdr::HangupCause;
use std::time::Duration;

/// Upper bounds of the post-dial delay buckets, in milliseconds; one more bucket (+Inf)
/// counts the rest.
pub const PDD_BUCKETS_MS: [u64; 9] = [50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls that entered the call table (refusals before any phone rang are not calls).
    pub started: u64,
    /// Calls a callee answered.
    pub answered: u64,
    /// Calls that ended, by `HangupCause::index`.
    pub ended_by_cause: [u64; HangupCause::ALL.len()],
    /// Post-dial delays per bucket (not cumulative): `PDD_BUCKETS_MS`, then +Inf.
    pub pdd_buckets: [u64; PDD_BUCKETS_MS.len() + 1],
    pub pdd_count: u64,
    pub pdd_sum_us: u64,
}

impl CallStats {
    pub fn ended(&mut self, cause: HangupCause) {
        self.ended_by_cause[cause.index()] += 1;
    }

    /// One post-dial delay.
    pub fn post_dial_delay(&mut self, d: Duration) {
        let ms = d.as_millis();
        let i = PDD_BUCKETS_MS
            .iter()
            .position(|&b| ms <= u128::from(b))
            .unwrap_or(PDD_BUCKETS_MS.len());
        self.pdd_buckets[i] += 1;
        self.pdd_count += 1;
        self.pdd_sum_us = self
            .pdd_sum_us
            .saturating_add(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Calls ended, every cause together.
    pub fn ended_total(&self) -> u64 {
        self.ended_by_cause.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_land_in_their_bucket_and_causes_in_theirs() {
        let mut s = CallStats::default();
        s.post_dial_delay(Duration::from_millis(50));
        s.post_dial_delay(Duration::from_millis(51));
        s.post_dial_delay(Duration::from_secs(31));
        assert_eq!(s.pdd_buckets[0], 1, "50 ms is in the 50 ms bucket");
        assert_eq!(s.pdd_buckets[1], 1);
        assert_eq!(s.pdd_buckets[PDD_BUCKETS_MS.len()], 1, "+Inf");
        assert_eq!((s.pdd_count, s.pdd_sum_us), (3, 31_101_000));
        s.ended(HangupCause::UserBusy);
        s.ended(HangupCause::UserBusy);
        s.ended(HangupCause::NormalClearing);
        assert_eq!(s.ended_by_cause[HangupCause::UserBusy.index()], 2);
        assert_eq!(s.ended_total(), 3);
    }
}
