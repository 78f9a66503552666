//! `[media]`: the RTP relay (issue 11), read strictly into the plain
//! [`MediaConfig`](crate::media::MediaConfig) the engine takes. Every problem names its key
//! and line; nothing is bound or started here.

use super::file::Problems;
use crate::media::{MediaConfig, MediaMode, PortRange};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMedia {
    mode: Option<Spanned<String>>,
    rtp_ports: Option<Spanned<String>>,
    rtp_ip: Option<Spanned<String>>,
    ext_rtp_ip: Option<Spanned<String>>,
    media_timeout: Option<Spanned<i64>>,
    hold_timeout: Option<Spanned<i64>>,
    threads: Option<Spanned<i64>>,
}

/// Longest timeout accepted: a day (a held call longer than that is forgotten anyway).
const MAX_TIMEOUT: i64 = 86_400;
/// More relay threads than this is a typo, not a machine.
const MAX_THREADS: i64 = 1024;

fn ip(p: &mut Problems<'_>, v: Option<Spanned<String>>, key: &str) -> Option<IpAddr> {
    let v = v?;
    let text = v.get_ref().trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    match bare.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            let msg = format!(
                "{:?} is not an IP address (no host names, no port)",
                v.get_ref()
            );
            p.bad(Some(v.span()), key, msg);
            None
        }
    }
}

fn seconds(
    p: &mut Problems<'_>,
    v: Option<Spanned<i64>>,
    key: &str,
    default: Duration,
) -> Duration {
    match v {
        None => default,
        Some(v) if (1..=MAX_TIMEOUT).contains(v.get_ref()) => {
            Duration::from_secs(*v.get_ref() as u64)
        }
        Some(v) => {
            let msg = format!(
                "{} is out of range (1 to {MAX_TIMEOUT} seconds)",
                v.get_ref()
            );
            p.bad(Some(v.span()), key, msg);
            default
        }
    }
}

pub(super) fn media(p: &mut Problems<'_>, raw: RawMedia) -> MediaConfig {
    let d = MediaConfig::default();
    let mode = match raw.mode {
        None => d.mode,
        Some(m) => match m.get_ref().as_str() {
            "relay" => MediaMode::Relay,
            "bypass" => MediaMode::Bypass,
            other => {
                let msg = format!("unknown mode {other:?} (\"relay\" or \"bypass\")");
                p.bad(Some(m.span()), "media.mode", msg);
                d.mode
            }
        },
    };
    let rtp_ports = match raw.rtp_ports {
        None => d.rtp_ports,
        Some(r) => r.get_ref().parse::<PortRange>().unwrap_or_else(|msg| {
            p.bad(Some(r.span()), "media.rtp_ports", msg);
            d.rtp_ports
        }),
    };
    let rtp_ip = ip(p, raw.rtp_ip, "media.rtp_ip");
    let ext_span = raw.ext_rtp_ip.as_ref().map(Spanned::span);
    let ext_rtp_ip = ip(p, raw.ext_rtp_ip, "media.ext_rtp_ip");
    if ext_rtp_ip.is_some_and(|a| a.is_unspecified()) {
        let msg = "must be the address phones send media to, not a wildcard".to_string();
        p.bad(ext_span, "media.ext_rtp_ip", msg);
    }
    let media_timeout = seconds(p, raw.media_timeout, "media.media_timeout", d.media_timeout);
    let hold_timeout = seconds(p, raw.hold_timeout, "media.hold_timeout", d.hold_timeout);
    let threads = match raw.threads {
        None => d.threads,
        Some(t) if (0..=MAX_THREADS).contains(t.get_ref()) => *t.get_ref() as usize,
        Some(t) => {
            let msg = format!(
                "{} is out of range (0 = one per core, up to {MAX_THREADS})",
                t.get_ref()
            );
            p.bad(Some(t.span()), "media.threads", msg);
            d.threads
        }
    };
    MediaConfig {
        mode,
        rtp_ports,
        rtp_ip,
        ext_rtp_ip: ext_rtp_ip.filter(|a| !a.is_unspecified()),
        media_timeout,
        hold_timeout,
        threads,
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::parse;
    use crate::media::{MediaConfig, MediaMode};
    use std::path::Path;
    use std::time::Duration;

    const FILE: &str = "/nonexistent/ferroswitch.toml";

    /// The `media.` problems of `text`, as printed.
    fn media_errors(text: &str) -> Vec<String> {
        let p = parse(text, Path::new(FILE)).unwrap();
        p.errors
            .iter()
            .map(|e| e.to_string())
            .filter(|e| e.contains("media."))
            .collect()
    }

    #[test]
    fn defaults_are_freeswitchs() {
        let p = parse("", Path::new(FILE)).unwrap();
        assert_eq!(p.media, MediaConfig::default());
        assert_eq!(p.media.rtp_ports.to_string(), "16384-32767");
        assert_eq!(p.media.mode, MediaMode::Relay);
        assert_eq!(p.media.media_timeout, Duration::from_secs(60));
        assert_eq!(p.media.hold_timeout, Duration::from_secs(1800));
    }

    #[test]
    fn every_key_read() {
        let text =
            "[media]\nmode = \"bypass\"\nrtp_ports = \"20000-20999\"\nrtp_ip = \"10.0.0.5\"\n\
            ext_rtp_ip = \"203.0.113.7\"\nmedia_timeout = 30\nhold_timeout = 600\nthreads = 2\n";
        let p = parse(text, Path::new(FILE)).unwrap();
        assert!(media_errors(text).is_empty());
        let m = p.media;
        assert_eq!(m.mode, MediaMode::Bypass);
        assert_eq!((m.rtp_ports.first(), m.rtp_ports.last()), (20000, 20999));
        assert_eq!(m.rtp_ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(m.ext_rtp_ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(
            (
                m.media_timeout.as_secs(),
                m.hold_timeout.as_secs(),
                m.threads
            ),
            (30, 600, 2)
        );
        let v6 = parse("[media]\nrtp_ip = \"[2001:db8::5]\"\n", Path::new(FILE)).unwrap();
        assert_eq!(v6.media.rtp_ip, Some("2001:db8::5".parse().unwrap()));
    }

    #[test]
    fn bad_values_name_key_and_line() {
        for (value, key) in [
            ("rtp_ports = \"16385-32767\"", "media.rtp_ports"),
            ("rtp_ports = \"80-1000\"", "media.rtp_ports"),
            ("rtp_ports = \"20000-20000\"", "media.rtp_ports"),
            ("rtp_ports = \"20000-70000\"", "media.rtp_ports"),
            ("rtp_ports = \"high\"", "media.rtp_ports"),
            ("mode = \"proxy\"", "media.mode"),
            ("rtp_ip = \"media.example.org\"", "media.rtp_ip"),
            ("ext_rtp_ip = \"203.0.113.7:5060\"", "media.ext_rtp_ip"),
            ("ext_rtp_ip = \"0.0.0.0\"", "media.ext_rtp_ip"),
            ("media_timeout = 0", "media.media_timeout"),
            ("hold_timeout = -5", "media.hold_timeout"),
            ("threads = -1", "media.threads"),
        ] {
            let errors = media_errors(&format!("[server]\n[media]\n{value}\n"));
            assert!(
                errors.len() == 1 && errors[0].contains(key) && errors[0].contains(":3:"),
                "{value}: {errors:?}"
            );
        }
        // Strict TOML: an unknown key or a wrong type stops the parse.
        assert!(parse("[media]\nrtp_port = \"16384-32767\"\n", Path::new(FILE)).is_err());
        assert!(parse("[media]\nmedia_timeout = \"60\"\n", Path::new(FILE)).is_err());
    }
}
