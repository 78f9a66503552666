//! The main configuration file (`conf/ferroswitch.toml`): strict TOML into raw structs, then
//! validation into the typed settings, collecting every problem with its line and key.
//!
//! Reads no files itself except to check that the users directory exists; never applies
//! settings (binding sockets, setting log levels is the daemon's job).

use super::error::ConfigError;
use super::listen::{default_listen, ListenAddr};
use super::{LogConfig, LogLevel, RegistrarConfig, ServerConfig};
use crate::auth::Algorithm;
use serde::Deserialize;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    registrar: RawRegistrar,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    domain: Option<Spanned<String>>,
    listen: Option<Spanned<Vec<Spanned<String>>>>,
    users: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRegistrar {
    min_expires: Option<Spanned<i64>>,
    max_expires: Option<Spanned<i64>>,
    default_expires: Option<Spanned<i64>>,
    digest_algorithms: Option<Spanned<Vec<Spanned<String>>>>,
    nonce_lifetime: Option<Spanned<i64>>,
    auth_calls: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<Spanned<String>>,
    sip_trace: Option<bool>,
}

/// The settings of the main file, or every problem found in it.
pub(crate) struct Parsed {
    pub server: ServerConfig,
    pub registrar: RegistrarConfig,
    pub log: LogConfig,
    pub errors: Vec<ConfigError>,
}

/// Upper bound for any expiry: RFC 3261 allows 2^32-1, but a week is plenty and keeps
/// arithmetic on instants far from overflow.
const MAX_EXPIRES_LIMIT: i64 = 7 * 24 * 3600;

pub(crate) fn parse(text: &str, file: &Path) -> Result<Parsed, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::syntax(file, text, &e))?;
    let mut errors = Vec::new();
    let mut bad = |span: Option<Range<usize>>, key: &str, msg: String| {
        errors.push(ConfigError::invalid(file, text, span, key, msg));
    };
    let base = file.parent().unwrap_or(Path::new("."));

    // [server]
    let domain = raw.server.domain.and_then(|d| match bad_host(d.get_ref()) {
        Some(why) => {
            bad(
                Some(d.span()),
                "server.domain",
                format!("{:?} {why}", d.get_ref()),
            );
            None
        }
        None => Some(d.into_inner()),
    });
    let mut listen: Vec<ListenAddr> = Vec::new();
    match raw.server.listen {
        None => listen = default_listen(),
        Some(l) if l.get_ref().is_empty() => bad(
            Some(l.span()),
            "server.listen",
            "must list at least one address".into(),
        ),
        Some(l) => {
            for (i, entry) in l.into_inner().into_iter().enumerate() {
                let key = format!("server.listen[{i}]");
                match entry.get_ref().parse::<ListenAddr>() {
                    Ok(a) if listen.contains(&a) => {
                        bad(Some(entry.span()), &key, format!("{a} is listed twice"))
                    }
                    Ok(a) => listen.push(a),
                    Err(msg) => bad(Some(entry.span()), &key, msg),
                }
            }
        }
    }
    let (users_dir, users_span) = match raw.server.users {
        None => (base.join(ServerConfig::DEFAULT_USERS), None),
        Some(u) => (base.join(u.get_ref()), Some(u.span())),
    };
    if !users_dir.is_dir() {
        let span = users_span.clone();
        let what = if users_span.is_some() {
            ""
        } else {
            " (the default; set server.users)"
        };
        bad(
            span,
            "server.users",
            format!(
                "{} is not a directory{what}; relative paths start at the config file's directory",
                users_dir.display()
            ),
        );
    }

    // [registrar]
    let d = RegistrarConfig::default();
    let r = raw.registrar;
    let mut expires =
        |v: Option<Spanned<i64>>, key: &str, default: u32| -> (u32, Option<Range<usize>>) {
            match v {
                None => (default, None),
                Some(v) if (1..=MAX_EXPIRES_LIMIT).contains(v.get_ref()) => {
                    (*v.get_ref() as u32, Some(v.span()))
                }
                Some(v) => {
                    bad(
                        Some(v.span()),
                        key,
                        format!(
                            "{} is out of range (1 to {MAX_EXPIRES_LIMIT} seconds)",
                            v.get_ref()
                        ),
                    );
                    (default, None)
                }
            }
        };
    let (min, _) = expires(r.min_expires, "registrar.min_expires", d.min_expires);
    let (max, max_span) = expires(r.max_expires, "registrar.max_expires", d.max_expires);
    let (def, def_span) = expires(
        r.default_expires,
        "registrar.default_expires",
        d.default_expires,
    );
    if min > max {
        bad(
            max_span,
            "registrar.max_expires",
            format!("{max} is below min_expires ({min})"),
        );
    } else if !(min..=max).contains(&def) {
        bad(
            def_span,
            "registrar.default_expires",
            format!("{def} is outside min_expires..max_expires ({min}..{max})"),
        );
    }
    let mut algorithms = Vec::new();
    if let Some(list) = r.digest_algorithms {
        if list.get_ref().is_empty() {
            bad(
                Some(list.span()),
                "registrar.digest_algorithms",
                "must offer at least one algorithm".into(),
            );
        }
        for (i, a) in list.into_inner().into_iter().enumerate() {
            let key = format!("registrar.digest_algorithms[{i}]");
            match Algorithm::parse(a.get_ref()) {
                Some(alg) if algorithms.contains(&alg) => {
                    bad(Some(a.span()), &key, format!("{alg} is listed twice"))
                }
                Some(alg) => algorithms.push(alg),
                None => {
                    let known: Vec<&str> =
                        Algorithm::ALL.iter().rev().map(|a| a.as_str()).collect();
                    bad(
                        Some(a.span()),
                        &key,
                        format!(
                            "unknown algorithm {:?} (one of {})",
                            a.get_ref(),
                            known.join(", ")
                        ),
                    );
                }
            }
        }
    }
    if algorithms.is_empty() {
        algorithms = d.digest_algorithms.clone();
    }
    let nonce_lifetime = match r.nonce_lifetime {
        None => d.nonce_lifetime,
        Some(v) if (10..=86_400).contains(v.get_ref()) => Duration::from_secs(*v.get_ref() as u64),
        Some(v) => {
            bad(
                Some(v.span()),
                "registrar.nonce_lifetime",
                format!("{} is out of range (10 to 86400 seconds)", v.get_ref()),
            );
            d.nonce_lifetime
        }
    };

    // [log]
    let level = match raw.log.level {
        None => LogLevel::default(),
        Some(l) => l.get_ref().parse().unwrap_or_else(|msg| {
            bad(Some(l.span()), "log.level", msg);
            LogLevel::default()
        }),
    };

    let server = ServerConfig {
        domain,
        listen,
        users_dir,
    };
    let registrar = RegistrarConfig {
        min_expires: min,
        max_expires: max,
        default_expires: def,
        digest_algorithms: algorithms,
        nonce_lifetime,
        auth_calls: r.auth_calls.unwrap_or(d.auth_calls),
    };
    let log = LogConfig {
        level,
        sip_trace: raw.log.sip_trace.unwrap_or(false),
    };
    Ok(Parsed {
        server,
        registrar,
        log,
        errors,
    })
}

/// Why `s` is not a host we can serve as a domain and realm, if it is not.
fn bad_host(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("is empty (leave domain out to serve any local address)");
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .is_err()
            .then_some("is not an IPv6 reference");
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Some(
            "is an IPv6 address; write it in brackets like a SIP URI host ([2001:db8::1])",
        );
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    if s.contains(':') {
        return Some("must be a host without a port");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Some("is not a host name or IP address");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "192.168.4.4",
            "sip.example.org",
            "[::1]",
            "localhost",
            "example.org.",
        ] {
            assert_eq!(bad_host(ok), None, "{ok}");
        }
        for bad in [
            "",
            "example.org:5060",
            "::1",
            "[::1",
            "a b",
            "-x.org",
            "ex_ample.org",
        ] {
            assert!(bad_host(bad).is_some(), "{bad}");
        }
    }
}
