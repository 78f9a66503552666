//! SIP traffic counters of the engine (`EngineStats::traffic`): requests received by method
//! and responses sent by status class. Plain integers, copied out with the engine's stats;
//! the metrics exporter in the shell labels them. Retransmissions are not counted here (the
//! transaction layer counts them).

use crate::sip::Method;

/// The methods counted on their own; every other method is counted as `OTHER`.
pub const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "INFO",
    "UPDATE",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
    "OTHER",
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Requests that passed the security guard, by `METHODS` index.
    pub requests_by_method: [u64; METHODS.len()],
    /// Responses we sent (first transmissions), by class: index 0 = 1xx … 5 = 6xx.
    pub responses_by_class: [u64; 6],
}

impl TrafficStats {
    pub fn request(&mut self, m: &Method) {
        let i = match m {
            Method::Invite => 0,
            Method::Ack => 1,
            Method::Bye => 2,
            Method::Cancel => 3,
            Method::Register => 4,
            Method::Options => 5,
            Method::Info => 6,
            Method::Update => 7,
            Method::Prack => 8,
            Method::Subscribe => 9,
            Method::Notify => 10,
            Method::Refer => 11,
            Method::Message => 12,
            Method::Publish => 13,
            Method::Other(_) => 14,
        };
        self.requests_by_method[i] += 1;
    }

    pub fn response(&mut self, status: u16) {
        if let Some(n) = self
            .responses_by_class
            .get_mut(usize::from(status / 100).wrapping_sub(1))
        {
            *n += 1;
        }
    }

    pub fn requests(&self, method: &str) -> u64 {
        METHODS
            .iter()
            .position(|m| *m == method)
            .map_or(0, |i| self.requests_by_method[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_classes_are_counted_apart() {
        let mut t = TrafficStats::default();
        t.request(&Method::Invite);
        t.request(&Method::Other("FOO".into()));
        t.request(&Method::Invite);
        for s in [100, 180, 200, 407, 699, 99, 700] {
            t.response(s);
        }
        assert_eq!((t.requests("INVITE"), t.requests("OTHER")), (2, 1));
        assert_eq!(t.requests("BYE"), 0);
        assert_eq!(t.responses_by_class, [2, 1, 0, 1, 0, 1]);
    }
}
