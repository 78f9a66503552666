//! `SecurityConfig`: the guard's knobs as a plain serde struct (a `[security]` TOML table),
//! every default in a function, durations in whole seconds, and `validate` for the limits that
//! keep the guard's memory bounded.
//!
//! Only data and checks: nothing here reads files or touches the guard's state.

use super::net::IpNet;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Settings of the scanner, guessing and flood guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Master switch: `false` lets every request through and never bans.
    pub enabled: bool,
    /// Failed authentications from one source within `failure_window` that ban it.
    pub max_auth_failures: u32,
    /// The sliding window over which failures are counted (seconds).
    #[serde(with = "secs")]
    pub failure_window: Duration,
    /// How long a banned source's packets are dropped (seconds).
    #[serde(with = "secs")]
    pub ban_time: Duration,
    /// Addresses and networks never banned nor rate-limited (a monitor, a load generator, a
    /// trunk provider). Scanner User-Agents are dropped from them all the same.
    pub allow: Vec<IpNet>,
    /// Requests one source may send per `rate_window`; beyond that they are dropped, and a
    /// source that stays above it stays blocked (Kamailio pike's way). 0 turns the limit off.
    pub rate_limit: u32,
    /// The sampling window of the rate limit (seconds).
    #[serde(with = "secs")]
    pub rate_window: Duration,
    /// Requests whose User-Agent contains one of these (ASCII case-insensitive) are dropped.
    pub scanner_user_agents: Vec<String>,
    /// Sources tracked at once (failure counts, rate windows); the least recently active one
    /// is forgotten to make room. Bans are kept apart and never evicted by this.
    pub max_sources: usize,
    /// Bans held at once; when full, the ban that would end soonest is lifted early.
    pub max_bans: usize,
    /// Start even though an enabled user has a weak password (see `config::weak`) while the
    /// server listens on an address that is not loopback. Off: such a config is refused.
    pub allow_weak_passwords: bool,
    /// Failed authentications against one account (from any sources) within
    /// `account_failure_window` that lock it. 0 turns the account lock off.
    pub max_account_failures: u32,
    /// The sliding window over which an account's failures are counted (seconds).
    #[serde(with = "secs")]
    pub account_failure_window: Duration,
    /// How long a locked account refuses sources that never authenticated for it (seconds).
    #[serde(with = "secs")]
    pub account_lock_time: Duration,
    /// Accounts tracked at once (failure counts, locks, known sources each); the least
    /// recently active is forgotten to make room.
    pub max_accounts: usize,
    /// Failed authentications across all sources per minute that raise one `SECURITY alarm`
    /// line (at most one per minute). 0 turns the alarm off.
    pub global_failure_alarm: u32,
}

impl Default for SecurityConfig {
    fn default() -> SecurityConfig {
        SecurityConfig {
            enabled: default_enabled(),
            max_auth_failures: default_max_auth_failures(),
            failure_window: default_failure_window(),
            ban_time: default_ban_time(),
            allow: default_allow(),
            rate_limit: default_rate_limit(),
            rate_window: default_rate_window(),
            scanner_user_agents: default_scanner_user_agents(),
            max_sources: default_max_sources(),
            max_bans: default_max_bans(),
            allow_weak_passwords: false,
            max_account_failures: default_max_account_failures(),
            account_failure_window: default_account_failure_window(),
            account_lock_time: default_account_lock_time(),
            max_accounts: default_max_accounts(),
            global_failure_alarm: default_global_failure_alarm(),
        }
    }
}

pub fn default_enabled() -> bool {
    true
}

pub fn default_max_auth_failures() -> u32 {
    10
}

pub fn default_failure_window() -> Duration {
    Duration::from_secs(60)
}

pub fn default_ban_time() -> Duration {
    Duration::from_secs(600)
}

/// The host itself only: a monitor or a load generator there is never throttled.
pub fn default_allow() -> Vec<IpNet> {
    vec![
        IpNet::host(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpNet::host(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]
}

/// Kamailio's pike defaults to 30 per 2 s; a softswitch behind which a whole office's phones
/// share one NAT address needs more headroom.
pub fn default_rate_limit() -> u32 {
    200
}

pub fn default_rate_window() -> Duration {
    Duration::from_secs(2)
}

/// User-Agent fragments of well-known SIP scanners and war-dialers. `sipcli/` keeps its slash
/// so that a legitimate "SipClient" is not caught.
pub fn default_scanner_user_agents() -> Vec<String> {
    [
        "friendly-scanner",
        "sipvicious",
        "sipcli/",
        "VaxSIPUserAgent",
        "sip-scan",
        "SIPScan",
        "iWar",
        "sundayddr",
        "smap",
        "pplsip",
        "SIVuS",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

pub fn default_max_sources() -> usize {
    10_000
}

pub fn default_max_bans() -> usize {
    10_000
}

/// Twice the per-source ban threshold: a phone with a stale password cannot lock its own
/// account before its source is banned, while a distributed guess (many sources, few tries
/// each) is stopped after 20 guesses per 5 minutes instead of hundreds per minute.
pub fn default_max_account_failures() -> u32 {
    20
}

pub fn default_account_failure_window() -> Duration {
    Duration::from_secs(300)
}

pub fn default_account_lock_time() -> Duration {
    Duration::from_secs(600)
}

pub fn default_max_accounts() -> usize {
    10_000
}

pub fn default_global_failure_alarm() -> u32 {
    100
}

/// Largest `max_account_failures`: each tracked account remembers that many failure instants.
pub const MAX_ACCOUNT_FAILURES_LIMIT: u32 = 100;
/// Largest `global_failure_alarm`: the alarm remembers that many failure instants.
pub const GLOBAL_FAILURE_ALARM_LIMIT: u32 = 100_000;

/// Largest `max_auth_failures`: each tracked source remembers that many failure instants.
pub const MAX_AUTH_FAILURES_LIMIT: u32 = 100;
/// Longest ban or window: keeps `Instant` arithmetic far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityConfigError {
    #[error("security.max_auth_failures must be between 1 and {MAX_AUTH_FAILURES_LIMIT}")]
    MaxAuthFailures,
    #[error("security.{0} must be between 1 s and 30 days")]
    Duration(&'static str),
    #[error("security.scanner_user_agents: empty entries would match every request")]
    EmptyScannerPattern,
    #[error("security.{0} must be at least 1")]
    Capacity(&'static str),
    #[error(
        "security.max_account_failures must be between 0 (off) and {MAX_ACCOUNT_FAILURES_LIMIT}"
    )]
    MaxAccountFailures,
    #[error(
        "security.global_failure_alarm must be between 0 (off) and {GLOBAL_FAILURE_ALARM_LIMIT}"
    )]
    GlobalFailureAlarm,
}

impl SecurityConfig {
    /// Every problem at once, in field order.
    pub fn validate(&self) -> Vec<SecurityConfigError> {
        let mut errs = Vec::new();
        if !(1..=MAX_AUTH_FAILURES_LIMIT).contains(&self.max_auth_failures) {
            errs.push(SecurityConfigError::MaxAuthFailures);
        }
        for (name, d) in [
            ("failure_window", self.failure_window),
            ("ban_time", self.ban_time),
            ("rate_window", self.rate_window),
            ("account_failure_window", self.account_failure_window),
            ("account_lock_time", self.account_lock_time),
        ] {
            if d < Duration::from_secs(1) || d > MAX_DURATION {
                errs.push(SecurityConfigError::Duration(name));
            }
        }
        if self.scanner_user_agents.iter().any(|p| p.trim().is_empty()) {
            errs.push(SecurityConfigError::EmptyScannerPattern);
        }
        for (name, n) in [
            ("max_sources", self.max_sources),
            ("max_bans", self.max_bans),
            ("max_accounts", self.max_accounts),
        ] {
            if n == 0 {
                errs.push(SecurityConfigError::Capacity(name));
            }
        }
        if self.max_account_failures > MAX_ACCOUNT_FAILURES_LIMIT {
            errs.push(SecurityConfigError::MaxAccountFailures);
        }
        if self.global_failure_alarm > GLOBAL_FAILURE_ALARM_LIMIT {
            errs.push(SecurityConfigError::GlobalFailureAlarm);
        }
        errs
    }
}

/// Durations as whole seconds in TOML.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_issue() {
        let c = SecurityConfig::default();
        assert_eq!(c.max_auth_failures, 10);
        assert_eq!(c.failure_window, Duration::from_secs(60));
        assert_eq!(c.ban_time, Duration::from_secs(600));
        let allow: Vec<String> = c.allow.iter().map(ToString::to_string).collect();
        assert_eq!(allow, ["127.0.0.1", "::1"]);
        assert_eq!((c.rate_limit, c.rate_window), (200, Duration::from_secs(2)));
        assert!(c
            .scanner_user_agents
            .iter()
            .any(|p| p == "friendly-scanner"));
        assert!(!c.allow_weak_passwords);
        assert_eq!(
            (
                c.max_account_failures,
                c.account_failure_window,
                c.account_lock_time
            ),
            (20, Duration::from_secs(300), Duration::from_secs(600))
        );
        assert_eq!(c.global_failure_alarm, 100);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn toml_table_with_partial_keys_keeps_other_defaults() {
        let c: SecurityConfig = toml::from_str(
            r#"
            max_auth_failures = 5
            ban_time = 3600
            allow = ["10.0.0.0/8", "::1"]
            scanner_user_agents = ["evil-bot"]
            "#,
        )
        .unwrap();
        assert_eq!(c.max_auth_failures, 5);
        assert_eq!(c.ban_time, Duration::from_secs(3600));
        assert_eq!(c.failure_window, default_failure_window());
        assert_eq!(c.allow.len(), 2);
        assert_eq!(c.scanner_user_agents, ["evil-bot"]);
        let round: SecurityConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(round, c);
    }

    #[test]
    fn strict_and_validated() {
        assert!(toml::from_str::<SecurityConfig>("max_auth_failure = 5").is_err());
        assert!(toml::from_str::<SecurityConfig>("ban_time = -1").is_err());
        let c = SecurityConfig {
            max_auth_failures: 0,
            rate_window: Duration::ZERO,
            scanner_user_agents: vec![" ".into()],
            max_bans: 0,
            max_account_failures: 101,
            ..SecurityConfig::default()
        };
        assert_eq!(
            c.validate(),
            [
                SecurityConfigError::MaxAuthFailures,
                SecurityConfigError::Duration("rate_window"),
                SecurityConfigError::EmptyScannerPattern,
                SecurityConfigError::Capacity("max_bans"),
                SecurityConfigError::MaxAccountFailures,
            ]
        );
    }
}
