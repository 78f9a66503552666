//! Session timers (RFC 4028), per leg, as data and pure functions: the `Session-Expires`
//! and `Min-SE` headers, the negotiation on each side (422 when the interval is below our
//! minimum), and when to act: the refresher refreshes at half the interval (§10), the other
//! side sends BYE at `expiry − min(32 s, interval/3)` when no refresh came (§10).
//!
//! Deadlines are `Instant`s computed from a `now` the caller passes; nothing here reads a
//! clock, sets a timer or sends anything. Malformed headers are errors, never panics.

use crate::sip::{response_to, HeaderName, Headers, Request, Response};
use std::fmt;
use std::time::{Duration, Instant};

/// §4/§5: no session interval may be shorter than 90 s.
pub const MIN_SE_FLOOR: u32 = 90;
/// §4: the recommended interval, 30 minutes.
pub const DEFAULT_SESSION_EXPIRES: u32 = 1800;
/// §10: the non-refresher sends BYE at most this long before expiry.
const BYE_MARGIN_MAX: u32 = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTimerError {
    #[error("malformed {0} header")]
    Malformed(HeaderName),
    /// The request's interval is below our minimum: answer 422 with `Min-SE: min_se`.
    #[error("session interval too small (our minimum is {min_se} s)")]
    TooSmall { min_se: u32 },
    #[error("bad session timer configuration: {0}")]
    Config(&'static str),
}

impl SessionTimerError {
    /// 400 for a malformed header, 422 for a too small interval.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            SessionTimerError::Malformed(_) => Some(400),
            SessionTimerError::TooSmall { .. } => Some(422),
            SessionTimerError::Config(_) => None,
        }
    }
}

/// Who refreshes: the UAC or the UAS *of the transaction that negotiated the timer*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// `Session-Expires: delta-seconds [;refresher=uac|uas]` (compact form `x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub delta_secs: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses one value; other parameters are ignored, a refresher other than uac/uas is
    /// malformed.
    pub fn parse(v: &str) -> Option<SessionExpires> {
        let mut parts = v.split(';');
        let delta_secs = parse_delta(parts.next()?)?;
        let mut refresher = None;
        for p in parts {
            let (k, val) = p.split_once('=').unwrap_or((p, ""));
            if k.trim().eq_ignore_ascii_case("refresher") {
                let val = val.trim();
                refresher = Some(if val.eq_ignore_ascii_case("uac") {
                    Refresher::Uac
                } else if val.eq_ignore_ascii_case("uas") {
                    Refresher::Uas
                } else {
                    return None;
                });
            }
        }
        Some(SessionExpires {
            delta_secs,
            refresher,
        })
    }

    /// The header of a message: `None` when absent.
    pub fn from_headers(h: &Headers) -> Result<Option<SessionExpires>, SessionTimerError> {
        single(h, HeaderName::SessionExpires, SessionExpires::parse)
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta_secs)?;
        if let Some(r) = self.refresher {
            write!(f, ";refresher={}", r.as_str())?;
        }
        Ok(())
    }
}

/// `Min-SE: delta-seconds` of a message (parameters ignored); `None` when absent.
pub fn min_se(h: &Headers) -> Result<Option<u32>, SessionTimerError> {
    single(h, HeaderName::MinSe, |v| {
        parse_delta(v.split(';').next().unwrap_or(""))
    })
}

fn parse_delta(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // §4: "delta-seconds"; values beyond 32 bits are capped rather than refused.
    Some(
        s.parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32),
    )
}

fn single<T>(
    h: &Headers,
    name: HeaderName,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, SessionTimerError> {
    let mut lines = h.get_all(&name);
    let (first, more) = (lines.next(), lines.next().is_some());
    let Some(first) = first else {
        return Ok(None);
    };
    if more {
        return Err(SessionTimerError::Malformed(name.clone()));
    }
    first
        .value_str()
        .and_then(parse)
        .map(Some)
        .ok_or_else(|| SessionTimerError::Malformed(name.clone()))
}

fn supports_timer(h: &Headers) -> bool {
    h.tokens(&HeaderName::Supported)
        .chain(h.tokens(&HeaderName::Require))
        .any(|t| t.eq_ignore_ascii_case("timer"))
}

/// Our side's numbers for a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimerConfig {
    /// The interval we ask for (UAC) or cap a request's at (UAS).
    pub session_expires: u32,
    /// The smallest interval we accept.
    pub min_se: u32,
}

impl Default for SessionTimerConfig {
    fn default() -> SessionTimerConfig {
        SessionTimerConfig {
            session_expires: DEFAULT_SESSION_EXPIRES,
            min_se: MIN_SE_FLOOR,
        }
    }
}

impl SessionTimerConfig {
    /// Checks `90 <= min_se <= session_expires`.
    pub fn new(session_expires: u32, min_se: u32) -> Result<SessionTimerConfig, SessionTimerError> {
        if min_se < MIN_SE_FLOOR {
            return Err(SessionTimerError::Config("min_se below 90 s (RFC 4028 §5)"));
        }
        if session_expires < min_se {
            return Err(SessionTimerError::Config("session_expires below min_se"));
        }
        Ok(SessionTimerConfig {
            session_expires,
            min_se,
        })
    }

    /// What a UAC puts in an INVITE/UPDATE (§7.1): `Session-Expires`, `Min-SE` and
    /// `Supported: timer` (added to an existing Supported line's tokens if needed). No
    /// refresher: the UAS chooses.
    pub fn write_offer(&self, h: &mut Headers) {
        h.set(HeaderName::SessionExpires, self.session_expires.to_string());
        h.set(HeaderName::MinSe, self.min_se.to_string());
        add_supported_timer(h);
    }

    /// §7.4: after a 422, the config to retry with (interval raised to the 422's Min-SE);
    /// `None` when the 422 gives no usable Min-SE or retrying would not change anything.
    pub fn retry_after_422(&self, resp: &Headers) -> Option<SessionTimerConfig> {
        let theirs = min_se(resp).ok()??;
        (theirs > self.session_expires).then(|| SessionTimerConfig {
            session_expires: theirs,
            min_se: self.min_se.max(theirs),
        })
    }
}

fn add_supported_timer(h: &mut Headers) {
    if h.tokens(&HeaderName::Supported)
        .any(|t| t.eq_ignore_ascii_case("timer"))
    {
        return;
    }
    match h.get_str(&HeaderName::Supported).map(str::to_string) {
        Some(v) if !v.trim().is_empty() => h.set(HeaderName::Supported, format!("{v}, timer")),
        _ => h.set(HeaderName::Supported, "timer"),
    }
}

/// A negotiated session timer for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    pub interval_secs: u32,
    pub refresher: Refresher,
    /// True when we refresh (we were the refresher side of the negotiating transaction).
    pub local_refresher: bool,
}

/// The next thing the session timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionDeadline {
    /// Send a refresh (re-INVITE or UPDATE) at this instant.
    Refresh(Instant),
    /// No refresh came: send BYE at this instant (before the session expires).
    Expire(Instant),
}

impl SessionTimer {
    /// As UAS (§9): negotiate from the request we received. The interval is the request's,
    /// capped at our `session_expires` but never below the request's Min-SE or ours; when
    /// the request has none, ours (the seed's FreeSWITCH answers `120;refresher=uas` to a
    /// phone that never asked). Below our Min-SE → `TooSmall` (422), unless the UAC does not
    /// support timers and could not retry: then the interval is raised to our minimum, as a
    /// proxy would (§8.1). The refresher is the request's choice, else the UAC when it
    /// supports timers, else us.
    pub fn negotiate_uas(
        request: &Headers,
        config: &SessionTimerConfig,
    ) -> Result<SessionTimer, SessionTimerError> {
        let asked = SessionExpires::from_headers(request)?;
        let their_min = min_se(request)?.unwrap_or(MIN_SE_FLOOR).max(MIN_SE_FLOOR);
        let supports = supports_timer(request);
        let floor = their_min.max(config.min_se);
        let interval = match asked {
            Some(se) if se.delta_secs < config.min_se && supports => {
                return Err(SessionTimerError::TooSmall {
                    min_se: config.min_se,
                })
            }
            Some(se) => se.delta_secs.min(config.session_expires).max(floor),
            None => config.session_expires.max(floor),
        };
        let refresher = match (supports, asked.and_then(|se| se.refresher)) {
            (false, _) => Refresher::Uas,
            (true, Some(r)) => r,
            (true, None) => Refresher::Uac,
        };
        Ok(SessionTimer {
            interval_secs: interval,
            refresher,
            local_refresher: refresher == Refresher::Uas,
        })
    }

    /// As UAC (§7.2): the timer a 2xx sets, `None` when it has no Session-Expires. A 2xx
    /// must name the refresher; when a peer does not, we refresh (always safe). Intervals
    /// below 90 s are raised to 90 s.
    pub fn negotiate_uac(response: &Headers) -> Result<Option<SessionTimer>, SessionTimerError> {
        Ok(SessionExpires::from_headers(response)?.map(|se| {
            let refresher = se.refresher.unwrap_or(Refresher::Uac);
            SessionTimer {
                interval_secs: se.delta_secs.max(MIN_SE_FLOOR),
                refresher,
                local_refresher: refresher == Refresher::Uac,
            }
        }))
    }

    /// The timer after a 2xx to a refresh we sent: the 2xx's Session-Expires when it has
    /// one (§7.2). A 2xx without one comes from a peer that does not do timers (the seed's
    /// X-Lite); §7.2 would then drop the timer, but a B2BUA keeps its own to clear dead
    /// calls, so the current timer stays and we go on refreshing.
    pub fn refreshed_by(&self, response: &Headers) -> Result<SessionTimer, SessionTimerError> {
        Ok(SessionTimer::negotiate_uac(response)?.unwrap_or(*self))
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval_secs))
    }

    /// §10: the refresher refreshes when half the interval has elapsed.
    pub fn refresh_at(&self, now: Instant) -> Instant {
        now + self.interval() / 2
    }

    /// §10: the other side sends BYE `min(32 s, interval/3)` before the session expires.
    pub fn expire_at(&self, now: Instant) -> Instant {
        let margin = BYE_MARGIN_MAX.min(self.interval_secs / 3);
        now + Duration::from_secs(u64::from(self.interval_secs - margin))
    }

    /// The deadline that applies to us, counted from `now` (the 2xx that set or refreshed
    /// the timer).
    pub fn next_deadline(&self, now: Instant) -> SessionDeadline {
        if self.local_refresher {
            SessionDeadline::Refresh(self.refresh_at(now))
        } else {
            SessionDeadline::Expire(self.expire_at(now))
        }
    }

    pub fn session_expires(&self) -> SessionExpires {
        SessionExpires {
            delta_secs: self.interval_secs,
            refresher: Some(self.refresher),
        }
    }

    /// The 2xx headers of a UAS (§9): `Session-Expires` with the refresher, our `Min-SE`,
    /// and `Require: timer` when the UAC is to refresh.
    pub fn write_response_headers(&self, h: &mut Headers, config: &SessionTimerConfig) {
        h.set(
            HeaderName::SessionExpires,
            self.session_expires().to_string(),
        );
        h.set(HeaderName::MinSe, config.min_se.to_string());
        if self.refresher == Refresher::Uac
            && !h
                .tokens(&HeaderName::Require)
                .any(|t| t.eq_ignore_ascii_case("timer"))
        {
            h.push(HeaderName::Require, "timer");
        }
    }

    /// The headers of a refresh we send (§7.1, §10): the same interval with us as `uac`.
    pub fn write_refresh_headers(&self, h: &mut Headers, config: &SessionTimerConfig) {
        let se = SessionExpires {
            delta_secs: self.interval_secs,
            refresher: Some(Refresher::Uac),
        };
        h.set(HeaderName::SessionExpires, se.to_string());
        h.set(HeaderName::MinSe, config.min_se.to_string());
        add_supported_timer(h);
    }
}

/// `422 Session Interval Too Small` with our `Min-SE` (§6).
pub fn too_small_response(req: &Request, min_se: u32) -> Response {
    let mut resp = response_to(req, 422, "Session Interval Too Small");
    resp.headers.push(HeaderName::MinSe, min_se.to_string());
    resp
}

#[cfg(test)]
#[path = "session_timer_tests.rs"]
mod tests;
