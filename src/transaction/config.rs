//! Settings of the transaction layer: timer base values, the `100 Trying` policy and the
//! table bound. Plain data with defaults; validation of user input belongs to the config
//! module that fills it.

use super::timer::{TimerConfig, TRYING_DELAY};
use std::time::Duration;

/// When a server INVITE transaction sends `100 Trying` on its own (§17.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryingPolicy {
    /// At once, as the request arrives (the default; what the seed trace shows).
    Immediate,
    /// Only if the TU has sent no response within this delay (§17.2.1 allows skipping the
    /// 100 when the TU answers within 200 ms). A retransmitted INVITE sends it early.
    Delayed(Duration),
    /// Never; the TU sends its own provisional responses.
    Never,
}

impl TryingPolicy {
    /// The §17.2.1 variant: wait 200 ms for the TU.
    pub fn delayed_200ms() -> TryingPolicy {
        TryingPolicy::Delayed(TRYING_DELAY)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionConfig {
    pub timers: TimerConfig,
    pub trying: TryingPolicy,
    /// New transactions beyond this many are refused (`TooManyTransactions`, answered 503).
    pub max_transactions: usize,
}

impl Default for TransactionConfig {
    fn default() -> TransactionConfig {
        TransactionConfig {
            timers: TimerConfig::default(),
            trying: TryingPolicy::Immediate,
            max_transactions: 65_536,
        }
    }
}

impl TransactionConfig {
    /// The config with T1 raised to at least 1 ms: a zero T1 would make every retransmission
    /// timer fire at once, forever.
    pub(crate) fn sanitized(mut self) -> TransactionConfig {
        let min = Duration::from_millis(1);
        self.timers.t1 = self.timers.t1.max(min);
        self.timers.t2 = self.timers.t2.max(self.timers.t1);
        self
    }
}
