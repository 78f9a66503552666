//! The SIP trace: every message sent or received, on the `sip::wire` target (like
//! FreeSWITCH's siptrace). DEBUG carries one line per message, TRACE the whole text. Never
//! decides anything; costs nothing when the target is off.
//!
//! What it prints came from the network, so it is escaped (issue 17.1): each SIP line is
//! printed on a log line of its own that starts with [`LINE_PREFIX`], and every octet that
//! could end or forge a log line (LF or CR inside a line, other control octets, ESC, Unicode
//! line separators, non-UTF-8) is shown as `\xNN` / `\u{NNNN}`. A datagram that holds
//! `\n2026-01-01T00:00:00Z  WARN ferroswitch::security: SECURITY ban …` therefore shows up as
//! `    | 2026-01-01T00:00:00Z  WARN …`, which no log reader (fail2ban) takes for a line of
//! ours. At most [`MAX_TRACED`] octets of a message are printed.

use crate::net::Transport;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// What every traced SIP line starts with.
pub const LINE_PREFIX: &str = "    | ";
/// The most octets of one message a TRACE event prints; the rest is counted, not shown.
pub const MAX_TRACED: usize = 8 * 1024;
/// The most octets of the start line a DEBUG event prints.
const MAX_FIRST_LINE: usize = 256;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    Recv,
    Send,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Recv => "recv",
            Direction::Send => "send",
        }
    }
}

/// Logs one message. `local`/`remote` are our socket and the peer; the arrow shows which way
/// it went.
pub(crate) fn log_message(
    dir: Direction,
    transport: Transport,
    local: SocketAddr,
    remote: SocketAddr,
    bytes: &[u8],
) {
    let (from, to) = match dir {
        Direction::Recv => (remote, local),
        Direction::Send => (local, remote),
    };
    if tracing::enabled!(target: "sip::wire", tracing::Level::TRACE) {
        tracing::trace!(
            target: "sip::wire",
            "{} {} {} bytes {} -> {}{}",
            dir.as_str(),
            transport,
            bytes.len(),
            from,
            to,
            traced_text(bytes)
        );
    } else if tracing::enabled!(target: "sip::wire", tracing::Level::DEBUG) {
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        let mut shown = String::new();
        escape_into(&mut shown, &first[..first.len().min(MAX_FIRST_LINE)]);
        tracing::debug!(
            target: "sip::wire",
            "{} {} {} bytes {} -> {}: {}",
            dir.as_str(),
            transport,
            bytes.len(),
            from,
            to,
            shown.trim_end()
        );
    }
}

/// The message as the TRACE event shows it: each line (split at LF, a CR before it dropped)
/// on a new log line after [`LINE_PREFIX`], escaped, at most [`MAX_TRACED`] octets.
pub fn traced_text(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(MAX_TRACED)];
    let mut out = String::with_capacity(shown.len() + shown.len() / 8 + 32);
    for line in shown.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.push('\n');
        out.push_str(LINE_PREFIX);
        escape_into(&mut out, line);
    }
    if bytes.len() > shown.len() {
        let _ = write!(
            out,
            "\n{LINE_PREFIX}... {} more octets not traced",
            bytes.len() - shown.len()
        );
    }
    out
}

/// Appends `line` with everything that is not plain printable text escaped.
fn escape_into(out: &mut String, line: &[u8]) {
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push('\t'),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                // C1 controls (NEL ends a line for some readers) and the line separators.
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_prefixed_and_controls_are_escaped() {
        let msg = b"OPTIONS sip:a SIP/2.0\r\nFrom: a\rTo: x\x1b[2J\x00\r\nSubject: \xff\xc3\xa9\\\t\xc2\x85\r\n\nX: 2026-01-01T00:00:00Z  WARN\n\r\n";
        let t = traced_text(msg);
        assert_eq!(
            t,
            "\n    | OPTIONS sip:a SIP/2.0\
             \n    | From: a\\x0dTo: x\\x1b[2J\\x00\
             \n    | Subject: \\xffé\\\\\t\\u{0085}\
             \n    | \
             \n    | X: 2026-01-01T00:00:00Z  WARN\
             \n    | \
             \n    | "
        );
        for line in t.lines() {
            assert!(line.is_empty() || line.starts_with(LINE_PREFIX), "{line:?}");
        }
    }

    #[test]
    fn long_messages_are_cut() {
        let msg = vec![b'a'; MAX_TRACED + 100];
        let t = traced_text(&msg);
        assert!(t.len() < MAX_TRACED + 100);
        assert!(
            t.ends_with("... 100 more octets not traced"),
            "{}",
            &t[t.len() - 60..]
        );
    }
}
