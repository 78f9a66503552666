//! TCP: the accept loops, outbound connects and one task per connection that frames the
//! stream (RFC 3261 §18.3), answers RFC 5626 pings, writes queued messages and closes on
//! idleness, framing errors, peer close or shutdown.
//!
//! A connection task owns its socket; the table only holds its write queue. Every way a
//! connection ends goes through `finish`, which removes it from the table, fails what was
//! still queued and reports the close. Never parses beyond framing and `parse_framed`.

use super::event::{CloseReason, ConnectionId, Inbound, Origin, SendFailure, TransportEvent};
use super::handle::{cancelled, canonical, decode, Shared, TaskGuard};
use super::stats::{add, bump};
use super::wire::{log_message, Direction};
use super::TransportError;
use crate::net::{Peer, Transport};
use crate::sip::{parse_framed, Frame, StreamFramer};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    local: SocketAddr,
    guard: TaskGuard,
) {
    let mut sd = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            _ = cancelled(&mut sd) => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%local, "tcp accept failed: {e}");
                tokio::select! {
                    _ = cancelled(&mut sd) => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let peer = canonical(peer);
        if shared.table().count_ip(peer.ip()) >= shared.config.max_connections_per_ip {
            bump(&shared.counters.connections_rejected);
            tracing::warn!(%peer, "per-address connection limit of {} reached: closing", shared.config.max_connections_per_ip);
            drop(stream);
            continue;
        }
        let (tx, rx) = mpsc::channel(shared.config.write_queue.max(1));
        let inserted = shared.table().insert(peer, tx);
        match inserted {
            Ok(id) => {
                bump(&shared.counters.connections_accepted);
                tracing::debug!(%peer, %local, %id, "tcp connection accepted");
                let _ = stream.set_nodelay(true);
                let conn_local = stream.local_addr().unwrap_or(local);
                let task = serve(shared.clone(), id, stream, peer, conn_local, rx);
                let guard = guard.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    task.await
                });
            }
            Err(full) => {
                bump(&shared.counters.connections_rejected);
                tracing::warn!(%peer, "connection limit of {} reached: closing", full.0);
                drop(stream);
            }
        }
    }
    tracing::debug!(%local, "tcp listener stopped");
}

/// Queues `data` for the connection with `addr`, opening one if there is none.
pub(crate) fn send(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    data: Bytes,
) -> Result<(), TransportError> {
    let mut table = shared.table();
    let mut data = data;
    if let Some((id, entry)) = table.find(&addr) {
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
    let id = table
        .insert(addr, tx.clone())
        .map_err(|full| TransportError::TooManyConnections(full.0))?;
    drop(table);
    // The queue was just made with room for at least one message.
    let _ = tx.try_send(data);
    drop(tx);
    let shared = shared.clone();
    tokio::spawn(async move {
        let _guard = guard;
        connect(shared, id, addr, rx).await
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
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Bytes>,
) {
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
                    return fail_queued(&shared, id, addr, &mut rx, &error).await;
                }
            };
            tracing::debug!(peer = %addr, %local, %id, "tcp connection opened");
            serve(shared, id, stream, addr, local, rx).await;
        }
        Err(error) => {
            shared.table().remove(id);
            bump(&shared.counters.connect_failures);
            tracing::warn!(peer = %addr, %id, "{error}");
            fail_queued(&shared, id, addr, &mut rx, &error).await;
        }
    }
}

/// Reports every message still queued for a connection as not sent.
async fn fail_queued(
    shared: &Shared,
    id: ConnectionId,
    addr: SocketAddr,
    rx: &mut mpsc::Receiver<Bytes>,
    error: &TransportError,
) {
    rx.close();
    let mut sd = shared.shutdown_signal();
    while let Ok(data) = rx.try_recv() {
        bump(&shared.counters.send_failures);
        let failure = SendFailure {
            peer: Peer::new(Transport::Tcp, addr),
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
    peer: SocketAddr,
    local: SocketAddr,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let origin = Origin {
        transport: Transport::Tcp,
        source: peer,
        local,
        connection: Some(id),
    };
    let reason = run(&shared, stream, origin, &mut rx).await;
    shared.table().remove(id);
    bump(&shared.counters.connections_closed);
    match &reason {
        CloseReason::PeerClosed
        | CloseReason::IdleTimeout
        | CloseReason::Local
        | CloseReason::Shutdown => {
            tracing::debug!(%peer, %id, ?reason, "tcp connection closed")
        }
        _ => tracing::warn!(%peer, %id, ?reason, "tcp connection closed"),
    }
    if !matches!(reason, CloseReason::Shutdown) {
        fail_queued(
            &shared,
            id,
            peer,
            &mut rx,
            &TransportError::ConnectionGone(id),
        )
        .await;
    }
    let ev = TransportEvent::ConnectionClosed { id, peer, reason };
    if shared.is_shutting_down() {
        shared.emit_now(ev);
    } else {
        shared.emit(ev, &mut shared.shutdown_signal()).await;
    }
}

/// The connection loop; returns why it ended. The socket is closed when it returns.
async fn run(
    shared: &Shared,
    stream: TcpStream,
    origin: Origin,
    rx: &mut mpsc::Receiver<Bytes>,
) -> CloseReason {
    let cfg = &shared.config;
    let c = &shared.counters;
    let peer = origin.source;
    let (mut rd, mut wr) = stream.into_split();
    let mut sd = shared.shutdown_signal();
    let mut framer = StreamFramer::new(cfg.max_message_size);
    let mut buf = vec![0u8; 16 * 1024];
    let idle = tokio::time::sleep(cfg.idle_timeout);
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
                idle.as_mut().reset(Instant::now() + cfg.idle_timeout);
                add(&c.bytes_received, n);
                framer.push(&buf[..n]);
                loop {
                    match framer.pop() {
                        Ok(None) => break,
                        Ok(Some(Frame::Pong)) => {}
                        Ok(Some(Frame::Ping)) => {
                            // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong.
                            bump(&c.keepalives);
                            if let Err(e) = write_raw(cfg.write_timeout, &mut wr, peer, b"\r\n").await {
                                return CloseReason::WriteFailed(e.to_string());
                            }
                        }
                        Ok(Some(Frame::Message(bytes))) => {
                            // A whole message arrived: the peer is making progress.
                            partial = false;
                            bump(&c.tcp_received);
                            log_message(Direction::Recv, Transport::Tcp, origin.local, peer, &bytes);
                            let raw = bytes.clone();
                            let payload = decode(shared, parse_framed(bytes), || raw, peer);
                            let ev = TransportEvent::Inbound(Inbound { payload, origin });
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
                    // The table dropped our queue: closed on request.
                    let _ = timeout(cfg.write_timeout, wr.shutdown()).await;
                    return CloseReason::Local;
                };
                idle.as_mut().reset(Instant::now() + cfg.idle_timeout);
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

/// Writes one message, counting and tracing it.
async fn write(
    shared: &Shared,
    wr: &mut OwnedWriteHalf,
    origin: Origin,
    data: &[u8],
) -> Result<(), TransportError> {
    write_raw(shared.config.write_timeout, wr, origin.source, data).await?;
    bump(&shared.counters.tcp_sent);
    add(&shared.counters.bytes_sent, data.len());
    log_message(
        Direction::Send,
        Transport::Tcp,
        origin.local,
        origin.source,
        data,
    );
    Ok(())
}

async fn write_raw(
    limit: Duration,
    wr: &mut OwnedWriteHalf,
    peer: SocketAddr,
    data: &[u8],
) -> Result<(), TransportError> {
    match timeout(limit, wr.write_all(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(TransportError::Io {
            peer: Peer::new(Transport::Tcp, peer),
            source: Arc::new(e),
        }),
        Err(_) => Err(TransportError::WriteTimeout(peer)),
    }
}
