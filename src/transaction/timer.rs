//! The transaction timers of RFC 3261 §17 (Table 4) and RFC 6026, as data.
//!
//! A timer is a name and a duration computed from T1/T2/T4 and the transport's reliability;
//! the layer keeps the deadlines in a table and fires them when `handle_timeout(now)` is
//! called. Nothing here reads a clock or sleeps.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The 200 ms within which a TU that answers quickly makes the automatic `100 Trying`
/// unnecessary (§17.2.1).
pub const TRYING_DELAY: Duration = Duration::from_millis(200);

/// The timers a transaction can run. Durations come from [`TimerConfig::initial`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client, Calling: retransmit the INVITE; starts at T1 and doubles (unreliable only).
    A,
    /// INVITE client, Calling: give up after 64·T1 without any response (→ 408).
    B,
    /// INVITE client, Completed: absorb final-response retransmissions; 32 s, 0 on reliable.
    D,
    /// Non-INVITE client: retransmit the request; T1 doubling up to T2 (unreliable only).
    E,
    /// Non-INVITE client: give up after 64·T1 without a final response (→ 408).
    F,
    /// INVITE server, Completed: retransmit the 3xx–6xx; T1 doubling up to T2 (unreliable only).
    G,
    /// INVITE server, Completed: give up waiting for the ACK after 64·T1.
    H,
    /// INVITE server, Confirmed: absorb ACK retransmissions; T4, 0 on reliable.
    I,
    /// Non-INVITE server, Completed: answer request retransmissions; 64·T1, 0 on reliable.
    J,
    /// Non-INVITE client, Completed: absorb response retransmissions; T4, 0 on reliable.
    K,
    /// INVITE server, Accepted (RFC 6026): pass 2xx retransmissions and ACKs; 64·T1.
    L,
    /// INVITE client, Accepted (RFC 6026): pass 2xx retransmissions to the TU; 64·T1.
    M,
    /// INVITE server, Proceeding: send the delayed `100 Trying` (§17.2.1, 200 ms by default).
    Trying,
    /// INVITE client, Proceeding after a CANCEL was sent: destroy the transaction if no final
    /// response comes within 64·T1 (§9.1).
    CancelWait,
}

impl Timer {
    pub const ALL: [Timer; 14] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Trying,
        Timer::CancelWait,
    ];
    pub const COUNT: usize = Timer::ALL.len();
}

/// T1, T2, T4 (§17.1.1.1, Table 4) and the fixed Timer D.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; the base of every retransmission and timeout interval. Default 500 ms.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses. 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network. 5 s.
    pub t4: Duration,
    /// Timer D on unreliable transports ("at least 32 s"). 32 s.
    pub timer_d: Duration,
}

impl Default for TimerConfig {
    fn default() -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    /// The value a timer is first set to on a transport of the given reliability. For the
    /// retransmission timers (A, E, G) this is the first interval; the machines double it.
    /// A zero means "fire at once" (D, I, J, K on reliable transports).
    pub fn initial(&self, timer: Timer, reliable: bool) -> Duration {
        let unless_reliable = |d: Duration| if reliable { Duration::ZERO } else { d };
        match timer {
            Timer::A | Timer::E | Timer::G => self.t1,
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M | Timer::CancelWait => {
                self.t1 * 64
            }
            Timer::D => unless_reliable(self.timer_d),
            Timer::I | Timer::K => unless_reliable(self.t4),
            Timer::J => unless_reliable(self.t1 * 64),
            Timer::Trying => TRYING_DELAY,
        }
    }

    /// The next retransmission interval after `current`: doubled, capped at T2 for E and G
    /// (§17.1.2.2, §17.2.1), uncapped for A (§17.1.1.2).
    pub fn backoff(&self, timer: Timer, current: Duration) -> Duration {
        let doubled = current * 2;
        match timer {
            Timer::A => doubled,
            _ => doubled.min(self.t2),
        }
    }
}

/// Armed deadlines of every transaction, ordered by instant. `id` names the transaction.
#[derive(Debug, Default)]
pub(crate) struct TimerTable {
    queue: BTreeSet<(Instant, u64, Timer)>,
}

impl TimerTable {
    pub(crate) fn insert(&mut self, at: Instant, id: u64, timer: Timer) {
        self.queue.insert((at, id, timer));
    }

    pub(crate) fn remove(&mut self, at: Instant, id: u64, timer: Timer) {
        self.queue.remove(&(at, id, timer));
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _, _)| *at)
    }

    /// Removes and returns every entry due at or before `now`, earliest first.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(Instant, u64, Timer)> {
        let mut due = Vec::new();
        while let Some(first) = self.queue.first() {
            if first.0 > now {
                break;
            }
            if let Some(e) = self.queue.pop_first() {
                due.push(e);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_4_defaults() {
        let c = TimerConfig::default();
        let s = Duration::from_secs;
        assert_eq!(c.initial(Timer::B, false), s(32));
        assert_eq!(c.initial(Timer::D, false), s(32));
        assert_eq!(c.initial(Timer::D, true), Duration::ZERO);
        assert_eq!(c.initial(Timer::I, false), s(5));
        assert_eq!(c.initial(Timer::J, true), Duration::ZERO);
        assert_eq!(c.initial(Timer::J, false), s(32));
        assert_eq!(c.initial(Timer::K, false), s(5));
        assert_eq!(c.initial(Timer::L, true), s(32));
        assert_eq!(c.backoff(Timer::E, s(4)), s(4));
        assert_eq!(c.backoff(Timer::G, s(2)), s(4));
        assert_eq!(c.backoff(Timer::A, s(16)), s(32));
    }

    #[test]
    fn table_expires_in_order() {
        let t0 = crate::clock::virtual_epoch();
        let mut t = TimerTable::default();
        t.insert(t0 + Duration::from_secs(2), 1, Timer::B);
        t.insert(t0 + Duration::from_secs(1), 2, Timer::A);
        t.insert(t0 + Duration::from_secs(3), 1, Timer::D);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        let due = t.expire(t0 + Duration::from_secs(2));
        assert_eq!(
            due.iter().map(|e| e.2).collect::<Vec<_>>(),
            [Timer::A, Timer::B]
        );
        t.remove(t0 + Duration::from_secs(3), 1, Timer::D);
        assert_eq!(t.next(), None);
    }
}
