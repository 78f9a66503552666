//! The SIP trace: every message sent or received, on the `sip::wire` target (like
//! FreeSWITCH's siptrace). DEBUG carries one line per message, TRACE the whole text. Never
//! decides anything; costs nothing when the target is off.

use crate::net::Transport;
use std::net::SocketAddr;

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
            "{} {} {} bytes {} -> {}\n{}",
            dir.as_str(),
            transport,
            bytes.len(),
            from,
            to,
            String::from_utf8_lossy(bytes)
        );
    } else if tracing::enabled!(target: "sip::wire", tracing::Level::DEBUG) {
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        tracing::debug!(
            target: "sip::wire",
            "{} {} {} bytes {} -> {}: {}",
            dir.as_str(),
            transport,
            bytes.len(),
            from,
            to,
            String::from_utf8_lossy(first).trim_end()
        );
    }
}
