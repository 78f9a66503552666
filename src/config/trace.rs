//! `[trace]`: how much SIP of recent calls the daemon keeps for `ferroswitch ctl trace`, read
//! strictly into the plain [`TraceConfig`](crate::engine::TraceConfig) the engine takes.
//! Every problem names its key and line; nothing is allocated here.

use super::file::Problems;
use crate::engine::TraceConfig;
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrace {
    calls: Option<Spanned<i64>>,
    max_bytes: Option<Spanned<i64>>,
}

/// More calls than this is a typo: each keeps its messages in memory.
const MAX_CALLS: i64 = 100_000;
/// A GiB of SIP is far more than any operator reads.
const MAX_BYTES: i64 = 1 << 30;

pub(super) fn trace(p: &mut Problems<'_>, raw: RawTrace) -> TraceConfig {
    let d = TraceConfig::default();
    let mut n = |v: Option<Spanned<i64>>, key: &str, min: i64, max: i64, default: usize| match v {
        None => default,
        Some(v) if (min..=max).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            let msg = format!("must be from {min} to {max} (got {})", v.get_ref());
            p.bad(Some(v.span()), key, msg);
            default
        }
    };
    TraceConfig {
        calls: n(raw.calls, "trace.calls", 0, MAX_CALLS, d.calls),
        max_bytes: n(
            raw.max_bytes,
            "trace.max_bytes",
            65_536,
            MAX_BYTES,
            d.max_bytes,
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::file::parse;
    use std::path::Path;

    #[test]
    fn trace_section_defaults_values_and_errors_with_line() {
        let f = Path::new("f.toml");
        let d = parse("", f).ok().unwrap();
        assert_eq!(d.trace, crate::engine::TraceConfig::default());
        let t = parse("[trace]\ncalls = 0\nmax_bytes = 1048576\n", f)
            .ok()
            .unwrap();
        assert_eq!((t.trace.calls, t.trace.max_bytes), (0, 1_048_576));
        let bad = parse("[trace]\ncalls = -1\n", f).ok().unwrap();
        let e = bad.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert!(
            e.iter()
                .any(|e| e.contains("f.toml:2") && e.contains("trace.calls")),
            "{e:?}"
        );
        assert!(
            parse("[trace]\ncall = 3\n", f).is_err(),
            "unknown key refused"
        );
    }
}
