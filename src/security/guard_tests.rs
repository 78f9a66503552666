//! Guard scenarios on a virtual clock: `now` is `t0 + offset`, nothing sleeps.

use super::*;
use crate::security::config::SecurityConfig;
use crate::security::event::UnbanReason;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const ATTACKER: &str = "203.0.113.66";

/// Fails `n` times from `src` at `at`, returning the ban if one fell.
fn fail(g: &mut Guard, at: Instant, src: &str, n: usize) -> Option<BanEvent> {
    let mut ban = None;
    for i in 0..n {
        let b = g.auth_failed(at, ip(src), &format!("{}", 1000 + i % 3));
        assert!(
            b.is_none() || i == n - 1,
            "banned early at failure {}",
            i + 1
        );
        ban = ban.or(b);
    }
    ban
}

#[test]
fn ten_failures_in_a_minute_ban_for_ten_minutes() {
    let mut g = Guard::new(SecurityConfig::default());
    let t0 = Instant::now();
    assert!(fail(&mut g, t0, ATTACKER, 9).is_none());
    assert_eq!(g.failures(ip(ATTACKER)), 9);
    let ban = g.auth_failed(t0 + secs(59), ip(ATTACKER), "1001").unwrap();
    assert_eq!(ban.failures, 10);
    assert_eq!(ban.users, ["1000", "1001", "1002"]);
    assert_eq!(ban.duration, secs(600));
    assert_eq!(
        ban.to_string(),
        "SECURITY ban src=203.0.113.66 failures=10 users=1000,1001,1002 for=600s"
    );
    let banned_at = t0 + secs(59);
    assert_eq!(
        g.check_request(banned_at, ip(ATTACKER), Some("Zoiper")),
        Verdict::Drop(DropReason::Banned)
    );
    // Further failures while banned (requests already in flight) change nothing.
    assert!(g.auth_failed(banned_at, ip(ATTACKER), "x").is_none());
    assert_eq!(g.poll_timeout(), Some(banned_at + secs(600)));
    assert!(g.handle_timeout(banned_at + secs(599)).is_empty());
    assert!(g.is_banned(banned_at + secs(599), ip(ATTACKER)));
    let lifted = g.handle_timeout(banned_at + secs(600));
    assert_eq!(lifted.len(), 1);
    assert_eq!(
        (lifted[0].src, lifted[0].after, lifted[0].reason),
        (ip(ATTACKER), secs(600), UnbanReason::Expired)
    );
    assert_eq!(lifted[0].users, ban.users);
    assert_eq!(
        g.check_request(banned_at + secs(600), ip(ATTACKER), None),
        Verdict::Allow
    );
    assert_eq!(g.failures(ip(ATTACKER)), 0, "a ban starts the count afresh");
    let s = g.stats();
    assert_eq!(
        (s.bans, s.unbans, s.active_bans, s.dropped_banned),
        (1, 1, 0, 1)
    );
    assert_eq!(s.auth_failures, 11);
}

#[test]
fn failures_spread_wider_than_the_window_never_ban() {
    let mut g = Guard::new(SecurityConfig::default());
    let t0 = Instant::now();
    // One failure every 7 s: at most 9 fall in any 60 s window.
    for i in 0..100 {
        assert!(g
            .auth_failed(t0 + secs(7 * i), ip(ATTACKER), "1000")
            .is_none());
    }
    assert!(g.failures(ip(ATTACKER)) <= 9);
    assert_eq!(g.stats().bans, 0);
}

#[test]
fn allow_listed_sources_are_never_banned_nor_limited() {
    let cfg = SecurityConfig {
        allow: vec![
            "127.0.0.1".parse().unwrap(),
            "::1".parse().unwrap(),
            "10.20.0.0/16".parse().unwrap(),
        ],
        rate_limit: 5,
        ..SecurityConfig::default()
    };
    let mut g = Guard::new(cfg);
    let t0 = Instant::now();
    for src in ["127.0.0.1", "::1", "10.20.3.4", "::ffff:10.20.9.9"] {
        assert!(fail(&mut g, t0, src, 50).is_none(), "{src} banned");
        for _ in 0..50 {
            assert_eq!(g.check_request(t0, ip(src), None), Verdict::Allow, "{src}");
        }
        assert!(!g.is_banned(t0, ip(src)));
    }
    // Outside the allow-list the same traffic is limited, and 127.0.0.2 is not the host.
    let limited = (0..50)
        .filter(|_| g.check_request(t0, ip("127.0.0.2"), None) != Verdict::Allow)
        .count();
    assert_eq!(limited, 45);
    // Scanners are dropped from allow-listed addresses too.
    assert_eq!(
        g.check_request(t0, ip("127.0.0.1"), Some("friendly-scanner")),
        Verdict::Drop(DropReason::Scanner)
    );
}

#[test]
fn ipv4_mapped_sources_share_the_ipv4_count_and_ban() {
    let mut g = Guard::new(SecurityConfig::default());
    let t0 = Instant::now();
    fail(&mut g, t0, "198.51.100.7", 5);
    let ban = fail(&mut g, t0, "::ffff:198.51.100.7", 5).unwrap();
    assert_eq!(
        ban.src,
        ip("198.51.100.7"),
        "logged in the IPv4 form fail2ban bans"
    );
    assert!(g.is_banned(t0, ip("198.51.100.7")));
}

#[test]
fn rate_limit_drops_above_the_limit_and_reports_once_per_window() {
    let mut g = Guard::new(SecurityConfig::default());
    let t0 = Instant::now();
    let src = ip("192.0.2.10");
    // 200 requests spread over the first window pass, the 201st drops.
    for i in 0..200u32 {
        let at = t0 + Duration::from_millis(u64::from(i) * 9);
        assert_eq!(g.check_request(at, src, Some("Yealink")), Verdict::Allow);
    }
    let over = t0 + Duration::from_millis(1900);
    assert_eq!(
        g.check_request(over, src, None),
        Verdict::Drop(DropReason::RateLimited)
    );
    for _ in 0..100 {
        g.check_request(over, src, None);
    }
    assert_eq!(g.stats().floods_reported, 1);
    // The flood goes on at 300 per window: it stays blocked, one report per window.
    let mut allowed = 0;
    for w in 1..=5u32 {
        for i in 0..300u32 {
            let at = t0 + secs(2) * w + Duration::from_millis(u64::from(i) * 6);
            allowed += usize::from(g.check_request(at, src, None) == Verdict::Allow);
        }
    }
    assert_eq!(allowed, 0);
    assert_eq!(g.stats().floods_reported, 6);
    assert_eq!(g.stats().dropped_rate_limited, 101 + 1500);
    // It calms down to 100 per window: one more blocked window, then it passes again.
    let calm = t0 + secs(12);
    let verdicts: Vec<usize> = (0..3u32)
        .map(|w| {
            (0..100u32)
                .filter(|i| {
                    let at = calm + secs(2) * w + Duration::from_millis(u64::from(*i) * 10);
                    g.check_request(at, src, None) == Verdict::Allow
                })
                .count()
        })
        .collect();
    assert_eq!(verdicts, [0, 100, 100]);
    // Other sources never noticed.
    assert_eq!(
        g.check_request(calm, ip("192.0.2.11"), None),
        Verdict::Allow
    );
}

#[test]
fn rate_limit_zero_is_off() {
    let cfg = SecurityConfig {
        rate_limit: 0,
        ..SecurityConfig::default()
    };
    let mut g = Guard::new(cfg);
    let t0 = Instant::now();
    for _ in 0..10_000 {
        assert_eq!(g.check_request(t0, ip(ATTACKER), None), Verdict::Allow);
    }
    assert_eq!(
        g.stats().tracked_sources,
        0,
        "nothing tracked for plain traffic"
    );
}

#[test]
fn scanner_user_agents_are_dropped_case_insensitively() {
    let mut g = Guard::new(SecurityConfig::default());
    let t0 = Instant::now();
    for ua in [
        "friendly-scanner",
        "FRIENDLY-SCANNER",
        "sipvicious 0.3.4",
        "sipcli/v1.8",
        "VaxSIPUserAgent/3.1",
        "Mozilla sip-scan",
        "iWar v0.1",
        "SIPScan",
        "sundayddr",
    ] {
        assert_eq!(
            g.check_request(t0, ip(ATTACKER), Some(ua)),
            Verdict::Drop(DropReason::Scanner),
            "{ua}"
        );
    }
    for ua in ["Zoiper rv2.10", "SipClient 2.0", "Linphone/5.2", ""] {
        assert_eq!(
            g.check_request(t0, ip(ATTACKER), Some(ua)),
            Verdict::Allow,
            "{ua}"
        );
    }
    assert_eq!(g.stats().dropped_scanner, 9);
    let mut custom = Guard::new(SecurityConfig {
        scanner_user_agents: vec!["EvilBot".into()],
        ..SecurityConfig::default()
    });
    assert_eq!(
        custom.check_request(t0, ip(ATTACKER), Some("x-evilbot-2")),
        Verdict::Drop(DropReason::Scanner)
    );
    assert_eq!(
        custom.check_request(t0, ip(ATTACKER), Some("friendly-scanner")),
        Verdict::Allow
    );
}

#[test]
fn success_forgets_only_that_users_failures() {
    let mut g = Guard::new(SecurityConfig::default());
    let t0 = Instant::now();
    for _ in 0..5 {
        g.auth_failed(t0, ip(ATTACKER), "alice");
    }
    for _ in 0..4 {
        g.auth_failed(t0, ip(ATTACKER), "guess");
    }
    g.auth_succeeded(t0, ip(ATTACKER), "alice");
    assert_eq!(g.failures(ip(ATTACKER)), 4);
    // A valid account does not reset a guessing run on other names.
    for _ in 0..6 {
        g.auth_failed(t0, ip(ATTACKER), "guess");
        g.auth_succeeded(t0, ip(ATTACKER), "alice");
    }
    assert!(g.is_banned(t0, ip(ATTACKER)));
}

#[test]
fn timers_are_data_and_tables_drain() {
    let mut g = Guard::new(SecurityConfig::default());
    let t0 = Instant::now();
    assert_eq!(g.poll_timeout(), None);
    g.check_request(t0, ip("192.0.2.1"), None);
    // An idle source is forgotten after the failure window (longer than 2 rate windows).
    assert_eq!(g.poll_timeout(), Some(t0 + secs(60)));
    fail(&mut g, t0 + secs(30), ATTACKER, 10).unwrap();
    // Drive the clock timer by timer until nothing is left.
    let mut now = t0;
    let mut fired = Vec::new();
    while let Some(deadline) = g.poll_timeout() {
        assert!(deadline >= now, "deadlines never move backwards");
        now = deadline;
        fired.push(now - t0);
        let lifted = g.handle_timeout(now);
        assert!(lifted.iter().all(|e| e.src == ip(ATTACKER)));
    }
    assert_eq!(fired, [secs(60), secs(630)]);
    let s = g.stats();
    assert_eq!((s.tracked_sources, s.active_bans, s.unbans), (0, 0, 1));
}

#[test]
fn memory_stays_bounded_under_a_spoofed_flood() {
    let cfg = SecurityConfig {
        max_sources: 1000,
        max_bans: 10,
        max_auth_failures: 1,
        ..SecurityConfig::default()
    };
    let mut g = Guard::new(cfg);
    let t0 = Instant::now();
    for n in 0..50_000u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        g.check_request(t0, src, Some("x"));
        if n % 100 == 0 {
            g.auth_failed(t0, src, "u");
        }
    }
    let s = g.stats();
    assert!(s.tracked_sources <= 1000, "{s:?}");
    assert_eq!(s.active_bans, 10);
    assert_eq!(s.bans, 500);
    assert_eq!(s.bans_evicted, 490);
    // 50 000 entered, 500 left for the ban list, 1000 remain: the rest were evicted.
    assert_eq!(s.sources_evicted, 48_500);
}

#[test]
fn disabled_guard_lets_everything_through() {
    let mut g = Guard::new(SecurityConfig {
        enabled: false,
        ..SecurityConfig::default()
    });
    let t0 = Instant::now();
    assert!(fail(&mut g, t0, ATTACKER, 100).is_none());
    assert_eq!(
        g.check_request(t0, ip(ATTACKER), Some("friendly-scanner")),
        Verdict::Allow
    );
    assert_eq!(g.poll_timeout(), None);
}

/// A `tracing` writer into a shared buffer, to read what the guard really logs.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_one_escaped_line_per_event() {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    crate::keep_log_callsites_open();
    tracing::subscriber::with_default(subscriber, || {
        let mut g = Guard::new(SecurityConfig {
            max_auth_failures: 2,
            ..SecurityConfig::default()
        });
        let t0 = Instant::now();
        g.auth_failed(
            t0,
            ip(ATTACKER),
            "x\nWARN ferroswitch::security: SECURITY ban src=8.8.8.8",
        );
        g.auth_failed(t0, ip(ATTACKER), "1000");
        g.check_request(t0, ip("192.0.2.5"), Some("friendly-scanner\r\n"));
        g.check_request(t0 + secs(1), ip("192.0.2.5"), Some("friendly-scanner"));
        g.handle_timeout(t0 + secs(600));
    });
    let text = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            " WARN ferroswitch::security: SECURITY ban src=203.0.113.66 failures=2 \
             users=x%0AWARN%20ferroswitch%3A%3Asecurity%3A%20SE~,1000 for=600s",
            " WARN ferroswitch::security: SECURITY scanner src=192.0.2.5 ua=friendly-scanner%0D%0A",
            " INFO ferroswitch::security: SECURITY unban src=203.0.113.66 failures=2 \
             users=x%0AWARN%20ferroswitch%3A%3Asecurity%3A%20SE~,1000 after=600s reason=expired",
        ]
    );
}

/// Issue 17.12: 50 sources, 9 guesses each per minute (below the per-source ban), against
/// one account. The 20th failure within 5 minutes locks it for 10 minutes against every
/// source that never authenticated for it, while its owner's phone keeps working; one
/// `account-lock` line and one global alarm are logged.
#[test]
fn distributed_guessing_locks_the_account_but_not_its_known_source() {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let owner = ip("192.0.2.10");
    let guesser = |n: u64| IpAddr::from([198, 51, 100, n as u8]);
    crate::keep_log_callsites_open();
    tracing::subscriber::with_default(subscriber, || {
        let mut g = Guard::new(SecurityConfig::default());
        let t0 = Instant::now();
        g.auth_succeeded(t0, owner, "1000");
        // Round-robin over 50 sources, 450 guesses per minute in all.
        let mut locked_at = None;
        for i in 0..450u64 {
            let at = t0 + Duration::from_millis(i * 60_000 / 450);
            assert!(
                g.auth_failed(at, guesser(i % 50), "1000").is_none(),
                "no source is banned"
            );
            if locked_at.is_none() && g.account_locked(at, guesser(99), "1000") {
                locked_at = Some((i, at));
            }
        }
        let (i, at) = locked_at.expect("the account locks");
        assert_eq!(i, 19, "locked on the 20th failure");
        let s = g.stats();
        assert_eq!((s.bans, s.account_locks, s.locked_accounts), (0, 1, 1));
        assert_eq!(s.alarms, 1, "450 failures in a minute raise one alarm");
        // A new source with the right password: refused. The owner: served. Other accounts
        // and allow-listed sources: unaffected.
        assert!(g.account_locked(at + secs(599), guesser(50), "1000"));
        assert!(!g.account_locked(at + secs(599), owner, "1000"));
        assert!(!g.account_locked(at + secs(599), guesser(50), "1001"));
        assert!(!g.account_locked(at + secs(599), ip("127.0.0.1"), "1000"));
        assert_eq!(g.stats().refused_locked, 2);
        // The lock is a timer: it ends exactly ban_time after it fell.
        g.handle_timeout(at + secs(599));
        assert_eq!(g.stats().locked_accounts, 1);
        assert!(g.poll_timeout().is_some_and(|t| t <= at + secs(600)));
        g.handle_timeout(at + secs(600));
        assert!(!g.account_locked(at + secs(600), guesser(50), "1000"));
        assert_eq!(g.stats().locked_accounts, 0);
    });
    let text = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            " WARN ferroswitch::security: SECURITY account-lock user=1000 failures=20 for=600s",
            " WARN ferroswitch::security: SECURITY alarm auth-failures=101 in 60s",
            " INFO ferroswitch::security: SECURITY account-unlock user=1000 after=600s",
        ]
    );
}

#[test]
fn account_lock_zero_is_off_and_user_names_are_escaped() {
    let mut g = Guard::new(SecurityConfig {
        max_account_failures: 0,
        ..SecurityConfig::default()
    });
    let t0 = Instant::now();
    for n in 0..100u8 {
        g.auth_failed(t0, IpAddr::from([198, 51, 100, n]), "1000");
    }
    assert!(!g.account_locked(t0, ip("198.51.100.200"), "1000"));
    assert_eq!(g.stats().account_locks, 0);

    let mut g = Guard::new(SecurityConfig {
        max_account_failures: 2,
        ..SecurityConfig::default()
    });
    let user = "x\nWARN ferroswitch::security: SECURITY ban src=8.8.8.8";
    g.auth_failed(t0, ip("198.51.100.1"), user);
    g.auth_failed(t0, ip("198.51.100.2"), user);
    assert!(g.account_locked(t0, ip("198.51.100.3"), user));
    assert_eq!(g.stats().account_locks, 1);
}

/// The guard against a naive model (every failure kept, bans in a plain map) on random
/// sequences of failures, successes, requests and clock steps over a few addresses.
mod model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Fail(u8, u8),
        Succeed(u8, u8),
        Request(u8),
        Wait(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..5, 0u8..3).prop_map(|(s, u)| Op::Fail(s, u)),
            1 => (0u8..5, 0u8..3).prop_map(|(s, u)| Op::Succeed(s, u)),
            2 => (0u8..5).prop_map(Op::Request),
            // Steps that land exactly on window and ban boundaries, and some that do not.
            2 => prop::sample::select(vec![0u16, 1, 20, 30, 59, 60, 61, 240, 299, 300, 301])
                .prop_map(Op::Wait),
        ]
    }

    /// Address 0 is allow-listed; 4 is the IPv4-mapped form of 3.
    fn addr(n: u8) -> IpAddr {
        match n {
            0 => ip("127.0.0.1"),
            1 => ip("192.0.2.1"),
            2 => ip("2001:db8::2"),
            3 => ip("198.51.100.3"),
            _ => ip("::ffff:198.51.100.3"),
        }
    }

    fn key(n: u8) -> u8 {
        if n == 4 {
            3
        } else {
            n
        }
    }

    proptest! {
        #[test]
        fn guard_matches_the_naive_model(ops in proptest::collection::vec(op(), 1..120)) {
            let cfg = SecurityConfig {
                max_auth_failures: 3,
                failure_window: secs(60),
                ban_time: secs(300),
                rate_limit: 0,
                ..SecurityConfig::default()
            };
            let mut g = Guard::new(cfg);
            let t0 = Instant::now();
            let mut now = t0;
            // key -> (failure time, user); key -> ban end
            let mut fails: HashMap<u8, Vec<(Instant, u8)>> = HashMap::new();
            let mut bans: HashMap<u8, Instant> = HashMap::new();
            for op in ops {
                match op {
                    Op::Wait(s) => {
                        now += secs(u64::from(s));
                        while let Some(d) = g.poll_timeout().filter(|d| *d <= now) {
                            g.handle_timeout(d);
                        }
                        bans.retain(|_, until| *until > now);
                    }
                    Op::Fail(s, u) => {
                        let ev = g.auth_failed(now, addr(s), &format!("u{u}"));
                        let k = key(s);
                        let expect_ban = if k == 0 || bans.contains_key(&k) {
                            false
                        } else {
                            let f = fails.entry(k).or_default();
                            f.retain(|(t, _)| now - *t < secs(60));
                            f.push((now, u));
                            if f.len() >= 3 {
                                fails.remove(&k);
                                bans.insert(k, now + secs(300));
                                true
                            } else {
                                false
                            }
                        };
                        prop_assert_eq!(ev.is_some(), expect_ban);
                    }
                    Op::Succeed(s, u) => {
                        g.auth_succeeded(now, addr(s), &format!("u{u}"));
                        if let Some(f) = fails.get_mut(&key(s)) {
                            f.retain(|(_, fu)| *fu != u);
                        }
                    }
                    Op::Request(s) => {
                        let v = g.check_request(now, addr(s), Some("Zoiper"));
                        let banned = bans.contains_key(&key(s));
                        prop_assert_eq!(v == Verdict::Drop(DropReason::Banned), banned);
                        prop_assert!(v == Verdict::Allow || banned);
                    }
                }
                prop_assert_eq!(g.stats().active_bans, bans.len());
            }
        }
    }
}
