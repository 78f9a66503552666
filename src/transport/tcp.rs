//! TCP and TLS: the accept loops, outbound connects and one task per connection that frames
//! the stream (RFC 3261 §18.3), answers RFC 5626 pings, writes queued messages and closes on
//! idleness, framing errors, peer close or shutdown. A TLS connection is a TCP connection
//! with a handshake first (bounded by `handshake_timeout`, holding its table slot meanwhile so
//! the caps count it); after it, the same loop runs over the decrypted stream.
//!
//! Connections start untrusted: a short idle timeout that keep-alives do not refresh, and the
//! first to go when the table is full. `TransportHandle::mark_trusted` (a digest-authenticated
//! request arrived on it) lifts both; connections we open are trusted from the start.
//!
//! A connection task owns its socket; the table only holds its write queue. Every way a
//! connection ends goes through `finish`, which removes it from the table, fails what was
//! still queued and reports the close. Never parses beyond framing and `parse_framed`.

use super::handle::{cancelled, canonical, decode, Shared, TaskGuard};
use super::stats::{add, bump};
use super::table::ConnFlags;
use super::tls::{tls_handshake, Handshake};
use super::wire::{log_message, Direction};
use crate::net::{
    CloseReason, ConnectionId, Inbound, Origin, Peer, SendFailure, Transport, TransportError,
    TransportEvent,
};
use crate::sip::{parse_framed, Frame, StreamFramer};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    transport: Transport,
    guard: TaskGuard,
) {
    let mut sd = shared.shutdown_signal();
    let mut accept_warning = WarnLimiter::new(ACCEPT_WARNING_EVERY);
    loop {
        let accepted = tokio::select! {
            _ = cancelled(&mut sd) => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Typically out of file descriptors (EMFILE): back off instead of spinning,
                // and say so once per ACCEPT_WARNING_EVERY, not ten times a second.
                if let Some(count) = accept_warning.hit(Instant::now().into_std()) {
                    tracing::warn!(%local, %transport, count, "accept failed: {e}");
                }
                tokio::select! {
                    _ = cancelled(&mut sd) => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let peer = canonical(peer);
        if shared.is_banned(peer.ip(), Instant::now().into_std()) {
            bump(&shared.counters.connections_banned);
            tracing::debug!(%peer, "banned address: connection closed");
            drop(stream);
            continue;
        }
        if shared.table().count_ip(peer.ip()) >= shared.config.max_connections_per_ip {
            bump(&shared.counters.connections_rejected);
            tracing::warn!(%peer, "per-address connection limit of {} reached: closing", shared.config.max_connections_per_ip);
            drop(stream);
            continue;
        }
        let (tx, rx) = mpsc::channel(shared.config.write_queue.max(1));
        let inserted = shared.table().insert(transport, peer, tx, false);
        match inserted {
            Ok(added) => {
                bump(&shared.counters.connections_accepted);
                note_eviction(&shared, added.evicted);
                let id = added.id;
                tracing::debug!(%peer, %local, %id, %transport, "connection accepted");
                let _ = stream.set_nodelay(true);
                let conn_local = stream.local_addr().unwrap_or(local);
                let handshake = match transport {
                    Transport::Tls => Handshake::Accept,
                    _ => Handshake::None,
                };
                let task = serve(
                    shared.clone(),
                    id,
                    stream,
                    handshake,
                    Origin {
                        transport,
                        source: peer,
                        local: conn_local,
                        connection: Some(id),
                    },
                    rx,
                    added.flags,
                );
                let guard = guard.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    task.await
                });
            }
            Err(full) => {
                bump(&shared.counters.connections_rejected);
                tracing::warn!(%peer, "connection limit of {} reached, all authenticated: closing", full.0);
                drop(stream);
            }
        }
    }
    tracing::debug!(%local, %transport, "listener stopped");
}

/// How often at most a failing `accept` is logged.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Lets one warning through per `every` and counts the ones held back, so a condition that
/// repeats every 100 ms (EMFILE on accept) cannot flood the log. Pure: `now` comes in.
#[derive(Debug)]
pub(crate) struct WarnLimiter {
    every: Duration,
    last: Option<std::time::Instant>,
    held: u64,
}

impl WarnLimiter {
    pub fn new(every: Duration) -> WarnLimiter {
        WarnLimiter {
            every,
            last: None,
            held: 0,
        }
    }

    /// One more occurrence at `now`: `Some(n)` when it should be logged, `n` counting it
    /// and those held back since the last one logged.
    pub fn hit(&mut self, now: std::time::Instant) -> Option<u64> {
        self.held += 1;
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

fn note_eviction(shared: &Shared, evicted: Option<(ConnectionId, SocketAddr)>) {
    if let Some((id, peer)) = evicted {
        bump(&shared.counters.connections_evicted);
        tracing::info!(%peer, %id, "connection table full: closing the oldest unauthenticated connection");
    }
}

/// Queues `data` for the `transport` (TCP or TLS) connection with `addr`, opening one if
/// there is none.
pub(crate) fn send(
    shared: &Arc<Shared>,
    transport: Transport,
    addr: SocketAddr,
    data: Bytes,
) -> Result<(), TransportError> {
    if transport == Transport::Tls && shared.tls.is_none() {
        return Err(TransportError::NoTls);
    }
    let mut table = shared.table();
    let mut data = data;
    if let Some((id, entry)) = table.find(transport, &addr) {
        match entry.tx.try_send(data) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => return Err(TransportError::QueueFull(id)),
            // The task has ended but not yet cleaned up: forget it and connect anew.
            Err(mpsc::error::TrySendError::Closed(d)) => {
                table.remove(id);
                data = d;
            }
        }
    }
    let guard = shared.guard().ok_or(TransportError::ShutDown)?;
    let (tx, rx) = mpsc::channel(shared.config.write_queue.max(1));
    // We chose to open it (to a registered phone or a trunk): trusted from the start.
    let added = table
        .insert(transport, addr, tx.clone(), true)
        .map_err(|full| TransportError::TooManyConnections(full.0))?;
    drop(table);
    note_eviction(shared, added.evicted);
    let (id, flags) = (added.id, added.flags);
    // The queue was just made with room for at least one message.
    let _ = tx.try_send(data);
    drop(tx);
    let shared = shared.clone();
    tokio::spawn(async move {
        let _guard = guard;
        connect(shared, id, Peer::new(transport, addr), rx, flags).await
    });
    Ok(())
}

/// Queues `data` on one connection.
pub(crate) fn send_on(
    shared: &Shared,
    id: ConnectionId,
    data: Bytes,
) -> Result<(), TransportError> {
    let table = shared.table();
    let entry = table.get(id).ok_or(TransportError::ConnectionGone(id))?;
    entry.tx.try_send(data).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => TransportError::QueueFull(id),
        mpsc::error::TrySendError::Closed(_) => TransportError::ConnectionGone(id),
    })
}

async fn connect(
    shared: Arc<Shared>,
    id: ConnectionId,
    to: Peer,
    mut rx: mpsc::Receiver<Bytes>,
    flags: Arc<ConnFlags>,
) {
    let addr = to.addr;
    let mut sd = shared.shutdown_signal();
    let limit = shared.config.connect_timeout;
    let result = tokio::select! {
        _ = cancelled(&mut sd) => Err(TransportError::ShutDown),
        r = timeout(limit, TcpStream::connect(addr)) => match r {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(TransportError::Connect { addr, source: Arc::new(e) }),
            Err(_) => Err(TransportError::ConnectTimeout(addr)),
        },
    };
    match result {
        Ok(stream) => {
            bump(&shared.counters.connections_opened);
            let _ = stream.set_nodelay(true);
            let local = match stream.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    shared.table().remove(id);
                    let error = TransportError::Connect {
                        addr,
                        source: Arc::new(e),
                    };
                    return fail_queued(&shared, id, to, &mut rx, &error).await;
                }
            };
            tracing::debug!(peer = %to, %local, %id, "connection opened");
            let handshake = match to.transport {
                Transport::Tls => Handshake::Connect(shared.tls_server_name(addr)),
                _ => Handshake::None,
            };
            let origin = Origin {
                transport: to.transport,
                source: addr,
                local,
                connection: Some(id),
            };
            serve(shared, id, stream, handshake, origin, rx, flags).await;
        }
        Err(error) => {
            shared.table().remove(id);
            bump(&shared.counters.connect_failures);
            tracing::warn!(peer = %to, %id, "{error}");
            fail_queued(&shared, id, to, &mut rx, &error).await;
        }
    }
}

/// Reports every message still queued for a connection as not sent.
async fn fail_queued(
    shared: &Shared,
    id: ConnectionId,
    to: Peer,
    rx: &mut mpsc::Receiver<Bytes>,
    error: &TransportError,
) {
    rx.close();
    let mut sd = shared.shutdown_signal();
    while let Ok(data) = rx.try_recv() {
        bump(&shared.counters.send_failures);
        let failure = SendFailure {
            peer: to,
            connection: Some(id),
            data,
            error: error.clone(),
        };
        if shared.is_shutting_down() {
            shared.emit_now(TransportEvent::SendFailed(failure));
        } else if !shared
            .emit(TransportEvent::SendFailed(failure), &mut sd)
            .await
        {
            return;
        }
    }
}

/// Runs one connection to its end, then cleans up.
async fn serve(
    shared: Arc<Shared>,
    id: ConnectionId,
    stream: TcpStream,
    handshake: Handshake,
    origin: Origin,
    mut rx: mpsc::Receiver<Bytes>,
    flags: Arc<ConnFlags>,
) {
    let peer = origin.source;
    // Messages queued during a TLS handshake that failed: reported as not sent below.
    let mut unsent = Vec::new();
    let reason = match handshake {
        Handshake::None => {
            let (rd, wr) = stream.into_split();
            run(&shared, rd, wr, origin, &mut rx, &flags, Vec::new()).await
        }
        tls => {
            let mut held = Vec::new();
            match tls_handshake(&shared, stream, tls, origin, &mut rx, &flags, &mut held).await {
                Ok(stream) => {
                    let (rd, wr) = tokio::io::split(stream);
                    run(&shared, rd, wr, origin, &mut rx, &flags, held).await
                }
                Err(reason) => {
                    unsent = held;
                    reason
                }
            }
        }
    };
    shared.table().remove(id);
    bump(&shared.counters.connections_closed);
    let t = origin.transport;
    match &reason {
        CloseReason::PeerClosed
        | CloseReason::IdleTimeout
        | CloseReason::Local
        | CloseReason::Evicted
        | CloseReason::Shutdown => {
            tracing::debug!(%peer, %id, ?reason, "{t} connection closed")
        }
        // One line per failed handshake, saying why; nothing else is logged for it.
        CloseReason::Handshake(why) => {
            tracing::warn!(%peer, %id, "TLS handshake failed: {why}")
        }
        _ => tracing::warn!(%peer, %id, ?reason, "{t} connection closed"),
    }
    if !matches!(reason, CloseReason::Shutdown) {
        let error = match &reason {
            CloseReason::Handshake(why) => TransportError::Handshake {
                addr: peer,
                reason: why.clone(),
            },
            _ => TransportError::ConnectionGone(id),
        };
        for data in unsent {
            bump(&shared.counters.send_failures);
            let failure = SendFailure {
                peer: origin.peer(),
                connection: Some(id),
                data,
                error: error.clone(),
            };
            shared
                .emit(
                    TransportEvent::SendFailed(failure),
                    &mut shared.shutdown_signal(),
                )
                .await;
        }
        fail_queued(&shared, id, origin.peer(), &mut rx, &error).await;
    }
    let ev = TransportEvent::ConnectionClosed { id, peer, reason };
    if shared.is_shutting_down() {
        shared.emit_now(ev);
    } else {
        shared.emit(ev, &mut shared.shutdown_signal()).await;
    }
}

/// The connection loop; returns why it ended. The socket is closed when it returns.
async fn run<R, W>(
    shared: &Shared,
    mut rd: R,
    mut wr: W,
    origin: Origin,
    rx: &mut mpsc::Receiver<Bytes>,
    flags: &ConnFlags,
    held: Vec<Bytes>,
) -> CloseReason
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let cfg = &shared.config;
    let c = &shared.counters;
    let peer = origin.source;
    let mut sd = shared.shutdown_signal();
    // Queued while the TLS handshake ran: they go first, in order.
    for data in held {
        if let Err(e) = write(shared, &mut wr, origin, &data).await {
            return CloseReason::WriteFailed(e.to_string());
        }
    }
    let mut framer = StreamFramer::new(cfg.max_message_size);
    let mut buf = vec![0u8; 16 * 1024];
    // Traffic that keeps the connection open (see `refreshes_idle`) moves `last_active`; the
    // timer is re-armed from it when it fires, with the timeout that applies by then (a
    // connection that authenticated meanwhile gets the long one).
    let mut last_active = Instant::now();
    let idle = tokio::time::sleep(idle_limit(cfg, flags.trusted()));
    tokio::pin!(idle);
    // Armed while the framer holds part of a message.
    let stall = tokio::time::sleep(cfg.partial_message_timeout);
    tokio::pin!(stall);
    let mut partial = false;
    loop {
        tokio::select! {
            _ = cancelled(&mut sd) => {
                // Flush what the engine already queued (final responses, BYEs), then FIN.
                while let Ok(data) = rx.try_recv() {
                    if write(shared, &mut wr, origin, &data).await.is_err() {
                        break;
                    }
                }
                let _ = timeout(cfg.write_timeout, wr.shutdown()).await;
                return CloseReason::Shutdown;
            }
            _ = &mut idle => {
                let deadline = last_active + idle_limit(cfg, flags.trusted());
                if deadline > Instant::now() {
                    idle.as_mut().reset(deadline);
                    continue;
                }
                let _ = timeout(cfg.write_timeout, wr.shutdown()).await;
                return CloseReason::IdleTimeout;
            }
            _ = &mut stall, if partial => {
                let _ = timeout(cfg.write_timeout, wr.shutdown()).await;
                return CloseReason::Stalled;
            }
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) => return CloseReason::PeerClosed,
                    Ok(n) => n,
                    Err(e) => return CloseReason::ReadFailed(e.to_string()),
                };
                if flags.trusted() {
                    last_active = Instant::now();
                }
                add(&c.bytes_received, n);
                framer.push(&buf[..n]);
                loop {
                    match framer.pop() {
                        Ok(None) => break,
                        Ok(Some(Frame::Pong)) => {}
                        Ok(Some(Frame::Ping)) => {
                            // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong.
                            bump(&c.keepalives);
                            if let Err(e) = write_raw(cfg.write_timeout, &mut wr, origin.peer(), b"\r\n").await {
                                return CloseReason::WriteFailed(e.to_string());
                            }
                        }
                        Ok(Some(Frame::Message(bytes))) => {
                            // A whole message arrived: the peer is making progress.
                            partial = false;
                            last_active = Instant::now();
                            bump(&c.tcp_received);
                            log_message(Direction::Recv, origin.transport, origin.local, peer, &bytes);
                            let raw = bytes.clone();
                            let payload = decode(shared, parse_framed(bytes), || raw.clone(), peer);
                            let ev = TransportEvent::Inbound(Inbound { payload, origin, raw });
                            if !shared.emit(ev, &mut sd).await {
                                return CloseReason::Shutdown;
                            }
                        }
                        Err(e) => {
                            // §18.3: a stream that cannot be framed cannot be resynchronised.
                            let _ = timeout(cfg.write_timeout, wr.shutdown()).await;
                            return CloseReason::Framing(e);
                        }
                    }
                }
                // The stall clock starts when a message is begun and is not restarted by
                // more of the same message: a peer trickling octets is closed all the same.
                if framer.buffered() == 0 {
                    partial = false;
                } else if !partial {
                    partial = true;
                    stall.as_mut().reset(Instant::now() + cfg.partial_message_timeout);
                }
            }
            queued = rx.recv() => {
                let Some(data) = queued else {
                    // The table dropped our queue: closed on request, or evicted.
                    let _ = timeout(cfg.write_timeout, wr.shutdown()).await;
                    return if flags.evicted() { CloseReason::Evicted } else { CloseReason::Local };
                };
                last_active = Instant::now();
                if let Err(error) = write(shared, &mut wr, origin, &data).await {
                    bump(&c.send_failures);
                    let reason = CloseReason::WriteFailed(error.to_string());
                    let failure = SendFailure {
                        peer: origin.peer(),
                        connection: origin.connection,
                        data,
                        error,
                    };
                    shared.emit(TransportEvent::SendFailed(failure), &mut sd).await;
                    return reason;
                }
            }
        }
    }
}

/// How long a connection may go without traffic: `idle_timeout` once authenticated,
/// `untrusted_idle_timeout` (never longer) before. For an untrusted connection only whole SIP
/// messages and what we send count as traffic, not keep-alives nor stray octets.
fn idle_limit(cfg: &super::TransportConfig, trusted: bool) -> Duration {
    if trusted {
        cfg.idle_timeout
    } else {
        cfg.untrusted_idle_timeout.min(cfg.idle_timeout)
    }
}

/// Writes one message, counting and tracing it.
async fn write<W: AsyncWrite + Unpin>(
    shared: &Shared,
    wr: &mut W,
    origin: Origin,
    data: &[u8],
) -> Result<(), TransportError> {
    write_raw(shared.config.write_timeout, wr, origin.peer(), data).await?;
    bump(&shared.counters.tcp_sent);
    add(&shared.counters.bytes_sent, data.len());
    log_message(
        Direction::Send,
        origin.transport,
        origin.local,
        origin.source,
        data,
    );
    Ok(())
}

async fn write_raw<W: AsyncWrite + Unpin>(
    limit: Duration,
    wr: &mut W,
    peer: Peer,
    data: &[u8],
) -> Result<(), TransportError> {
    // TLS buffers records until flushed; for TCP the flush is a no-op.
    let all = async {
        wr.write_all(data).await?;
        wr.flush().await
    };
    match timeout(limit, all).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(TransportError::Io {
            peer,
            source: Arc::new(e),
        }),
        Err(_) => Err(TransportError::WriteTimeout(peer.addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_are_logged_once_per_period_with_a_count() {
        let t0 = std::time::Instant::now();
        let mut w = WarnLimiter::new(Duration::from_secs(10));
        assert_eq!(w.hit(t0), Some(1));
        // Every 100 ms for ten seconds: silent, counted.
        for i in 1..100 {
            assert_eq!(w.hit(t0 + Duration::from_millis(100 * i)), None);
        }
        assert_eq!(w.hit(t0 + Duration::from_secs(10)), Some(100));
        assert_eq!(w.hit(t0 + Duration::from_secs(11)), None);
        assert_eq!(w.hit(t0 + Duration::from_secs(25)), Some(2));
    }

    #[test]
    fn untrusted_connections_get_the_shorter_idle_timeout() {
        let cfg = super::super::TransportConfig {
            idle_timeout: Duration::from_secs(300),
            untrusted_idle_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        assert_eq!(idle_limit(&cfg, false), Duration::from_secs(30));
        assert_eq!(idle_limit(&cfg, true), Duration::from_secs(300));
        let short = super::super::TransportConfig {
            idle_timeout: Duration::from_secs(10),
            ..cfg
        };
        assert_eq!(
            idle_limit(&short, false),
            Duration::from_secs(10),
            "never longer"
        );
    }
}
