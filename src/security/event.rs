//! What the guard reports: bans, unbans, floods and scanners, each as a value and as the one
//! log line an operator (or a fail2ban filter) reads.
//!
//! The lines are `SECURITY <what> src=<address> key=value ...`, one line per event. Every
//! peer-supplied text (user names, User-Agents) is escaped here so that it can never add a
//! field, a line, or a fake `SECURITY ban` to the log: only `[A-Za-z0-9._@+-]` pass, other
//! octets become `%XX`, long values are cut and end in `~`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// User names shown on one line; the rest are counted as `(+N)`.
pub const USERS_SHOWN: usize = 16;
/// Octets of one peer-supplied value kept before cutting.
pub const VALUE_MAX: usize = 32;

/// A source was banned after too many failed authentications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanEvent {
    pub src: IpAddr,
    /// Failures counted in the window when the ban fell.
    pub failures: u32,
    /// Distinct user names tried in that window (already escaped, oldest first).
    pub users: Vec<String>,
    pub duration: Duration,
}

/// Why a ban ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnbanReason {
    /// `ban_time` elapsed.
    Expired,
    /// The ban table was full and this ban was the one ending soonest.
    Evicted,
    /// An operator lifted it (`ferroswitch ctl unban`).
    Operator,
}

/// A ban ended; carries what the ban recorded so one line tells the whole story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbanEvent {
    pub src: IpAddr,
    pub failures: u32,
    pub users: Vec<String>,
    /// How long the ban was in force.
    pub after: Duration,
    pub reason: UnbanReason,
}

/// A source went over the rate limit in one window (reported once per window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodReport {
    pub src: IpAddr,
    pub limit: u32,
    pub window: Duration,
}

/// A request from a scanner was dropped (reported once per source per failure window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerReport {
    pub src: IpAddr,
    /// The User-Agent, escaped.
    pub user_agent: String,
}

impl fmt::Display for BanEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SECURITY ban src={} failures={} users={} for={}s",
            self.src,
            self.failures,
            UserList(&self.users),
            self.duration.as_secs()
        )
    }
}

impl fmt::Display for UnbanEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = match self.reason {
            UnbanReason::Expired => "expired",
            UnbanReason::Evicted => "evicted",
            UnbanReason::Operator => "operator",
        };
        write!(
            f,
            "SECURITY unban src={} failures={} users={} after={}s reason={reason}",
            self.src,
            self.failures,
            UserList(&self.users),
            self.after.as_secs()
        )
    }
}

impl fmt::Display for FloodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SECURITY flood src={} limit={}/{}s",
            self.src,
            self.limit,
            self.window.as_secs()
        )
    }
}

impl fmt::Display for ScannerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SECURITY scanner src={} ua={}",
            self.src, self.user_agent
        )
    }
}

/// `a,b,c`, `-` for none, `(+N)` for those beyond [`USERS_SHOWN`].
struct UserList<'a>(&'a [String]);

impl fmt::Display for UserList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, u) in self.0.iter().take(USERS_SHOWN).enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(u)?;
        }
        if self.0.len() > USERS_SHOWN {
            write!(f, ",(+{})", self.0.len() - USERS_SHOWN)?;
        }
        Ok(())
    }
}

/// Escapes a peer-supplied value for a log line: safe octets kept, others `%XX`, at most
/// [`VALUE_MAX`] input octets (then `~`), `""` for an empty value.
pub fn escape_value(v: &[u8]) -> String {
    if v.is_empty() {
        return "\"\"".to_string();
    }
    let cut = v.len() > VALUE_MAX;
    let mut out = String::with_capacity(v.len().min(VALUE_MAX) + 1);
    for &b in v.iter().take(VALUE_MAX) {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if cut {
        out.push('~');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_line_format() {
        let e = BanEvent {
            src: "1.2.3.4".parse().unwrap(),
            failures: 10,
            users: vec!["1000".into(), "1001".into()],
            duration: Duration::from_secs(600),
        };
        assert_eq!(
            e.to_string(),
            "SECURITY ban src=1.2.3.4 failures=10 users=1000,1001 for=600s"
        );
        let u = UnbanEvent {
            src: "2001:db8::7".parse().unwrap(),
            failures: 10,
            users: vec![],
            after: Duration::from_secs(600),
            reason: UnbanReason::Expired,
        };
        assert_eq!(
            u.to_string(),
            "SECURITY unban src=2001:db8::7 failures=10 users=- after=600s reason=expired"
        );
    }

    #[test]
    fn long_user_lists_are_counted_not_printed() {
        let users: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
        let line = BanEvent {
            src: "192.0.2.1".parse().unwrap(),
            failures: 20,
            users,
            duration: Duration::from_secs(60),
        }
        .to_string();
        assert!(line.contains("users=u0,u1,"), "{line}");
        assert!(line.contains(",u15,(+4) for=60s"), "{line}");
    }

    #[test]
    fn escaping_keeps_lines_and_fields_intact() {
        assert_eq!(
            escape_value(b"+4930123@example.com"),
            "+4930123@example.com"
        );
        assert_eq!(escape_value(b""), "\"\"");
        assert_eq!(
            escape_value(b"x\nferroswitch: SECURITY ban src=8.8.8.8"),
            "x%0Aferroswitch%3A%20SECURITY%20ban%20src%3D~"
        );
        assert_eq!(escape_value(b"a,b=c"), "a%2Cb%3Dc");
        assert_eq!(escape_value(&[0xff, b' ']), "%FF%20");
        let long = escape_value(&[b'a'; 40]);
        assert_eq!(long.len(), VALUE_MAX + 1);
        assert!(long.ends_with('~'));
    }
}
