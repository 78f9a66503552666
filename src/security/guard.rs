//! The guard itself: one verdict per request, one count per failed authentication, timers as
//! data. See the module docs in `security` for the contract.
//!
//! Calling contract for the driver:
//! - every inbound request (before the transaction layer): `check_request`; on `Drop` discard
//!   it silently (no response: an answer would confirm we exist and cost us bandwidth);
//! - every digest verdict: `auth_failed` on a wrong password or unknown user (the 403 case),
//!   `auth_succeeded` on success; never on a mere challenge (a request without credentials);
//! - before accepting a verified password: `account_locked`; when true answer exactly as for
//!   a wrong password (403), so a lock tells a guesser nothing;
//! - when `poll_timeout` is due: `handle_timeout`.

use super::accounts::{AccountLimits, AccountLockEvent, AccountTable, AccountUnlockEvent, Alarm};
use super::bans::BanTable;
use super::config::SecurityConfig;
use super::event::{escape_value, BanEvent, FloodReport, ScannerReport, UnbanEvent};
use super::sources::{Rate, SourceTable};
use super::LOG_TARGET;
use std::net::IpAddr;
use std::time::Instant;

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Discard without answering.
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source is banned.
    Banned,
    /// The source is over the rate limit.
    RateLimited,
    /// The User-Agent is a known scanner's.
    Scanner,
}

/// Counters the driver may publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    pub allowed: u64,
    pub dropped_banned: u64,
    pub dropped_rate_limited: u64,
    pub dropped_scanner: u64,
    pub auth_failures: u64,
    pub bans: u64,
    pub unbans: u64,
    /// Bans lifted early because the ban table was full.
    pub bans_evicted: u64,
    /// Sources forgotten early because the source table was full.
    pub sources_evicted: u64,
    pub floods_reported: u64,
    pub active_bans: usize,
    pub tracked_sources: usize,
    /// Accounts locked after too many failures (from any sources).
    pub account_locks: u64,
    /// Correct passwords refused because the account was locked for that source.
    pub refused_locked: u64,
    /// Global failure-rate alarms raised.
    pub alarms: u64,
    pub locked_accounts: usize,
    pub tracked_accounts: usize,
}

/// The scanner, guessing and flood guard. Sans-IO: see the module docs.
#[derive(Debug)]
pub struct Guard {
    cfg: SecurityConfig,
    /// Scanner patterns, lowercased once.
    scanners: Vec<Vec<u8>>,
    sources: SourceTable,
    bans: BanTable,
    accounts: AccountTable,
    alarm: Alarm,
    stats: GuardStats,
}

impl Guard {
    /// A guard with `cfg` (checked with `SecurityConfig::validate` by the config loader;
    /// capacities of 0 are treated as 1 here rather than panicking).
    pub fn new(cfg: SecurityConfig) -> Guard {
        let scanners = cfg
            .scanner_user_agents
            .iter()
            .map(|p| p.trim().to_ascii_lowercase().into_bytes())
            .filter(|p| !p.is_empty())
            .collect();
        // Long enough for a failure window and for pike's two adjacent sampling windows.
        let idle = cfg.failure_window.max(cfg.rate_window.saturating_mul(2));
        Guard {
            sources: SourceTable::new(cfg.max_sources, idle),
            bans: BanTable::new(cfg.max_bans),
            accounts: AccountTable::new(cfg.max_accounts),
            alarm: Alarm::new(cfg.global_failure_alarm),
            scanners,
            cfg,
            stats: GuardStats::default(),
        }
    }

    pub fn config(&self) -> &SecurityConfig {
        &self.cfg
    }

    /// The verdict on one request from `src` carrying `user_agent`.
    pub fn check_request(
        &mut self,
        now: Instant,
        src: IpAddr,
        user_agent: Option<&str>,
    ) -> Verdict {
        if !self.cfg.enabled {
            return Verdict::Allow;
        }
        let ip = src.to_canonical();
        let trusted = self.is_allow_listed(ip);
        if !trusted {
            if self.bans.is_banned(now, ip) {
                self.stats.dropped_banned += 1;
                return Verdict::Drop(DropReason::Banned);
            }
            if self.cfg.rate_limit > 0 {
                let rate =
                    self.sources
                        .count_request(now, ip, self.cfg.rate_limit, self.cfg.rate_window);
                if let Rate::Drop { report } = rate {
                    self.stats.dropped_rate_limited += 1;
                    if report {
                        self.stats.floods_reported += 1;
                        let r = FloodReport {
                            src: ip,
                            limit: self.cfg.rate_limit,
                            window: self.cfg.rate_window,
                        };
                        tracing::warn!(target: LOG_TARGET, "{r}");
                    }
                    return Verdict::Drop(DropReason::RateLimited);
                }
            }
        }
        if let Some(ua) = user_agent.filter(|ua| self.is_scanner(ua)) {
            self.stats.dropped_scanner += 1;
            if self
                .sources
                .scanner_report_due(now, ip, self.cfg.failure_window)
            {
                let r = ScannerReport {
                    src: ip,
                    user_agent: escape_value(ua.as_bytes()),
                };
                tracing::warn!(target: LOG_TARGET, "{r}");
            }
            return Verdict::Drop(DropReason::Scanner);
        }
        self.stats.allowed += 1;
        Verdict::Allow
    }

    /// `user` (as the peer sent it) failed to authenticate from `src`. Returns the ban when
    /// this failure is the one that crosses the threshold; the guard has logged it.
    pub fn auth_failed(&mut self, now: Instant, src: IpAddr, user: &str) -> Option<BanEvent> {
        if !self.cfg.enabled {
            return None;
        }
        self.stats.auth_failures += 1;
        if let Some(alarm) = self.alarm.record(now) {
            self.stats.alarms += 1;
            tracing::warn!(target: LOG_TARGET, "{alarm}");
        }
        let ip = src.to_canonical();
        if self.is_allow_listed(ip) {
            return None;
        }
        let limits = AccountLimits {
            max_failures: self.cfg.max_account_failures,
            window: self.cfg.account_failure_window,
            lock_time: self.cfg.account_lock_time,
        };
        if let Some((failures, _)) = self.accounts.record_failure(now, user, limits) {
            self.stats.account_locks += 1;
            let ev = AccountLockEvent {
                user: escape_value(user.as_bytes()),
                failures,
                duration: self.cfg.account_lock_time,
            };
            tracing::warn!(target: LOG_TARGET, "{ev}");
        }
        if self.bans.is_banned(now, ip) {
            return None;
        }
        let offence = self.sources.record_failure(
            now,
            ip,
            escape_value(user.as_bytes()),
            self.cfg.failure_window,
            self.cfg.max_auth_failures,
        )?;
        let ev = BanEvent {
            src: ip,
            failures: offence.failures,
            users: offence.users.clone(),
            duration: self.cfg.ban_time,
        };
        let until = now + self.cfg.ban_time;
        if let Some(lifted) = self
            .bans
            .insert(now, until, ip, offence.failures, offence.users)
        {
            self.stats.bans_evicted += 1;
            self.stats.unbans += 1;
            tracing::info!(target: LOG_TARGET, "{lifted}");
        }
        self.stats.bans += 1;
        tracing::warn!(target: LOG_TARGET, "{ev}");
        Some(ev)
    }

    /// `user` authenticated from `src`: the failures recorded for that name from that source
    /// are forgotten (a phone that had a stale password), those for other names are not.
    pub fn auth_succeeded(&mut self, now: Instant, src: IpAddr, user: &str) {
        if self.cfg.enabled {
            let ip = src.to_canonical();
            self.sources.clear_user(ip, &escape_value(user.as_bytes()));
            if self.cfg.max_account_failures > 0 {
                self.accounts.record_success(now, ip, user);
            }
        }
    }

    /// Whether `user`, whose password `src` just proved, is locked for `src`: the account
    /// had `max_account_failures` failures in `account_failure_window` and `src` is not
    /// one of the sources that authenticated for it before (nor allow-listed). The caller
    /// answers as for a wrong password. Call it only for a correct password: it counts a
    /// refusal.
    pub fn account_locked(&mut self, now: Instant, src: IpAddr, user: &str) -> bool {
        if !self.cfg.enabled || self.cfg.max_account_failures == 0 {
            return false;
        }
        let ip = src.to_canonical();
        let locked = !self.is_allow_listed(ip) && self.accounts.is_locked_for(now, ip, user);
        if locked {
            self.stats.refused_locked += 1;
        }
        locked
    }

    /// Lifts the bans that are due (logged, and returned) and forgets idle sources.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<UnbanEvent> {
        let lifted = self.bans.expire(now);
        for ev in &lifted {
            self.stats.unbans += 1;
            tracing::info!(target: LOG_TARGET, "{ev}");
        }
        self.sources.expire(now);
        for (user, after) in self.accounts.expire(now) {
            let ev = AccountUnlockEvent {
                user: escape_value(user.as_bytes()),
                after,
            };
            tracing::info!(target: LOG_TARGET, "{ev}");
        }
        lifted
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.bans.next_expiry(),
            self.sources.next_expiry(),
            self.accounts.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Lifts the ban on `src` now (an operator's `ctl unban`), logged like every unban, and
    /// forgets the failures counted against it; `None` when it was not banned.
    pub fn unban(&mut self, now: Instant, src: IpAddr) -> Option<UnbanEvent> {
        let ip = src.to_canonical();
        let ev = self.bans.lift(now, ip)?;
        self.sources.remove(ip);
        self.stats.unbans += 1;
        tracing::info!(target: LOG_TARGET, "{ev}");
        Some(ev)
    }

    pub fn is_banned(&self, now: Instant, src: IpAddr) -> bool {
        self.bans.is_banned(now, src.to_canonical())
    }

    /// Banned addresses and when each ban ends, soonest first.
    pub fn bans(&self) -> impl Iterator<Item = (IpAddr, Instant)> + '_ {
        self.bans.iter()
    }

    pub fn is_allow_listed(&self, src: IpAddr) -> bool {
        self.cfg.allow.iter().any(|n| n.contains(src))
    }

    /// Failures currently counted against `src` (0 when not tracked).
    pub fn failures(&self, src: IpAddr) -> usize {
        self.sources.failures(src.to_canonical())
    }

    pub fn stats(&self) -> GuardStats {
        GuardStats {
            sources_evicted: self.sources.evicted,
            active_bans: self.bans.len(),
            tracked_sources: self.sources.len(),
            locked_accounts: self.accounts.locked_count(),
            tracked_accounts: self.accounts.len(),
            ..self.stats
        }
    }

    fn is_scanner(&self, ua: &str) -> bool {
        let ua = ua.as_bytes();
        self.scanners
            .iter()
            .any(|p| ua.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p)))
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
