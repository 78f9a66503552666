//! What an operator may ask of the engine and tell it (`ferroswitch ctl`, SIGHUP, the metrics
//! exporter): who is registered, which calls are up, hang one up, remove bindings, lift a
//! ban, swap the users directory, and one snapshot of every counter.
//!
//! Same contract as the rest of the engine: sans-IO, `now`/`wall` come in, and after a call
//! that changes something (`hang_up`) the driver drains `poll_transmit`/`poll_cdr` as after
//! any other input. Nothing here reads a file or a socket: the shell reads the users files
//! and hands the result to `replace_users`.

use super::{Engine, EngineStats};
use crate::b2bua::{CallId, CallInfo, CallStats};
use crate::cdr::HangupCause;
use crate::config::Users;
use crate::security::GuardStats;
use crate::transaction::TransactionStats;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

/// One registered contact, as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationInfo {
    pub aor: String,
    pub user: String,
    pub contact: String,
    /// Where its REGISTER came from (after received/rport).
    pub source: std::net::SocketAddr,
    pub transport: &'static str,
    pub expires_in: u64,
    pub user_agent: Option<String>,
    pub nat: bool,
    /// RFC 3327 Path it was registered with (the edge proxies requests to it go through).
    pub path: Vec<String>,
}

/// A control request the engine cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no call {0} (see `ferroswitch ctl calls`)")]
    NoSuchCall(CallId),
    #[error("{0} has no such registration")]
    NotRegistered(String),
    #[error("{0} is not banned")]
    NotBanned(IpAddr),
    #[error("no trace of call {0:?}: no such call id or Call-ID, or it is older than the calls kept (`[trace] calls`)")]
    NoTrace(String),
    #[error("tracing is off (`[trace] calls = 0`)")]
    TracingOff,
}

/// Every counter at one instant, copied out for the metrics exporter.
#[derive(Debug, Clone, Default)]
pub struct EngineSnapshot {
    pub engine: EngineStats,
    pub calls: CallStats,
    pub guard: GuardStats,
    pub transactions: TransactionStats,
    /// (address-of-records, bindings) in the location store.
    pub registrations: (usize, usize),
    /// The location store takes writes (false while a shared store's Redis is unreachable).
    pub store_up: bool,
    pub calls_up: usize,
    /// New calls refused (`Engine::drain`, or a shutdown under way).
    pub draining: bool,
    /// Each gateway: (name, registered with the provider, up by its keep-alive).
    pub gateways: Vec<(String, bool, bool)>,
}

/// The user part of an address-of-record (`user@domain`).
fn user_of(aor: &str) -> &str {
    aor.rsplit_once('@').map_or(aor, |(u, _)| u)
}

impl Engine {
    /// Live bindings, of `user` only when given, sorted by AOR then contact.
    pub fn registrations(&self, now: Instant, user: Option<&str>) -> Vec<RegistrationInfo> {
        self.store
            .list(now)
            .into_iter()
            .filter(|(aor, _)| user.is_none_or(|u| user_of(aor) == u))
            .map(|(aor, b)| RegistrationInfo {
                user: user_of(&aor).to_string(),
                contact: b.contact.clone(),
                source: b.source.addr,
                transport: b.source.transport.as_str(),
                expires_in: b.remaining_secs(now),
                user_agent: b.user_agent.clone(),
                nat: b.nat,
                path: b.path.clone(),
                aor,
            })
            .collect()
    }

    /// `[server] node_id`, when set.
    pub fn node_id(&self) -> Option<&str> {
        self.cfg.node_id.as_deref()
    }

    /// The calls in the table.
    pub fn calls(&self, wall: SystemTime) -> Vec<CallInfo> {
        self.b2bua.call_infos(wall)
    }

    /// Ends call `id` on both legs (BYE with `Reason: Q.850;cause=…`), CDR with hangup side
    /// "system". The driver then drains the transmits and CDRs as usual.
    pub fn hang_up(
        &mut self,
        now: Instant,
        wall: SystemTime,
        id: CallId,
        cause: HangupCause,
    ) -> Result<(), ControlError> {
        self.trace.tick(now, wall);
        if !self.b2bua.hang_up_call(wall, id, cause) {
            return Err(ControlError::NoSuchCall(id));
        }
        tracing::info!(target: "ferroswitch::call", call = id, cause = cause.name(), "hung up by an operator");
        self.run_commands(now, wall);
        Ok(())
    }

    /// Removes `user`'s bindings (only `contact` when given); how many went.
    pub fn unregister(
        &mut self,
        now: Instant,
        user: &str,
        contact: Option<&str>,
    ) -> Result<usize, ControlError> {
        let removed = self.remove_bindings(now, |aor, c| {
            user_of(aor) == user && contact.is_none_or(|want| want == c)
        });
        if removed == 0 {
            return Err(ControlError::NotRegistered(user.to_string()));
        }
        Ok(removed)
    }

    fn remove_bindings(&mut self, now: Instant, gone: impl Fn(&str, &str) -> bool) -> usize {
        let mut aors: Vec<String> = Vec::new();
        for (aor, b) in self.store.list(now) {
            if gone(&aor, &b.contact) && !aors.contains(&aor) {
                aors.push(aor);
            }
        }
        let mut removed = 0;
        for aor in aors {
            self.store.update(&aor, now, &mut |list| {
                let before = list.len();
                list.retain(|b| !gone(&aor, &b.contact));
                removed += before - list.len();
            });
            self.stats.unregistrations += 1;
            tracing::info!(target: "ferroswitch::registrar", aor = %crate::security::log_escape(&aor), "bindings removed by an operator");
        }
        removed
    }

    /// Banned addresses and how long each ban has left, soonest end first.
    pub fn ban_list(&self, now: Instant) -> Vec<(IpAddr, Duration)> {
        self.guard
            .bans()
            .filter(|(_, until)| *until > now)
            .map(|(ip, until)| (ip, until - now))
            .collect()
    }

    /// Lifts the ban on `ip`; the driver mirrors the shorter list into the transport when it
    /// next reads `bans()`.
    pub fn unban(&mut self, now: Instant, ip: IpAddr) -> Result<(), ControlError> {
        self.guard
            .unban(now, ip)
            .map(|_| ())
            .ok_or(ControlError::NotBanned(ip))
    }

    /// Puts a new users directory in force (a reload). Calls in progress go on; a changed
    /// password applies to the next authentication; the bindings of users that are gone or
    /// disabled are removed. Returns how many bindings were removed.
    pub fn replace_users(&mut self, now: Instant, users: Users) -> usize {
        self.users = users;
        let users = &self.users;
        let gone: Vec<String> = self
            .store
            .list(now)
            .into_iter()
            .map(|(aor, _)| aor)
            .filter(|aor| !users.get(user_of(aor)).is_some_and(|u| u.enabled))
            .collect();
        self.remove_bindings(now, |aor, _| gone.iter().any(|g| g == aor))
    }

    /// Calls that entered the call table so far (the driver samples it for `ctl status`).
    pub fn calls_started(&self) -> u64 {
        self.b2bua.stats().calls.started
    }

    /// The users directory in force.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// Every counter now, for the metrics exporter.
    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            engine: self.stats(),
            calls: self.b2bua.stats().calls,
            guard: self.guard.stats(),
            transactions: self.txl.stats().clone(),
            registrations: self.store.counts(),
            store_up: self.store.writable(),
            calls_up: self.b2bua.len(),
            draining: self.is_draining(),
            gateways: self.gateway_flags(),
        }
    }
}
