//! Protection against scanners, password guessing and floods, in front of the engine: a
//! sans-IO [`Guard`] the driver asks about every request (`check_request`) and tells about
//! every authentication (`auth_failed`, `auth_succeeded`).
//!
//! It bans a source after too many failed authentications in a window (fail2ban inside the
//! daemon), locks an account after too many failures against it from any sources (except
//! for the sources that authenticated for it before), raises an alarm when failures across
//! all sources pass a rate, drops requests above a per-source rate (Kamailio pike's sampling
//! window) and requests from known scanner User-Agents; allow-listed networks are never
//! banned, rate-limited or refused by an account lock. Bans, unbans, account locks, alarms,
//! floods and scanners are logged on target
//! `ferroswitch::security` as one `SECURITY ...` line each (format in [`event`]); the
//! shipped fail2ban filter (`conf/fail2ban/`) reads the ban lines.
//!
//! [`log_escape`] is how every other module puts peer-supplied text into a log line.
//!
//! Never reads a clock (`now` comes in), never touches a socket, never grows without bound
//! (tracked sources, accounts and bans are capped), and never writes peer text to the log unescaped.

mod accounts;
mod bans;
pub mod config;
mod escape;
pub mod event;
mod guard;
pub mod net;
mod sources;

pub use accounts::{AccountLockEvent, AccountUnlockEvent, AlarmEvent};
pub use config::{SecurityConfig, SecurityConfigError};
pub use escape::{log_escape, log_escape_debug, AsDisplay, LogEscaped, LOG_VALUE_MAX};
pub use event::{BanEvent, FloodReport, ScannerReport, UnbanEvent, UnbanReason};
pub use guard::{DropReason, Guard, GuardStats, Verdict};
pub use net::{IpNet, IpNetError};

/// The `tracing` target of every line the guard writes.
pub const LOG_TARGET: &str = "ferroswitch::security";
