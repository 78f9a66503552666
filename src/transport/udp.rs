//! UDP: one receive task per socket, and sends straight from the listening socket (so the
//! source port of requests and responses is the one peers know, RFC 3261 §18.1.1/§18.2.2).
//!
//! A datagram is one message: parsed at once, requests stamped, handed on. Datagrams over
//! `max_message_size` are dropped with a warning; bare CRLF keep-alives are ignored. ICMP
//! errors for what we sent (see `icmp`) come back as `SendFailed` for their destination. This
//! module never retransmits; losing a datagram is the transaction layer's problem.

use super::handle::{cancelled, canonical, decode, Shared, TaskGuard};
use super::icmp;
use super::stats::{add, bump};
use super::wire::{log_message, Direction};
use crate::net::{Inbound, Origin, Peer, SendFailure, Transport, TransportError, TransportEvent};
use crate::sip::parse_datagram_bytes;
use bytes::Bytes;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::net::UdpSocket;

pub(crate) async fn receive_loop(
    shared: Arc<Shared>,
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    _guard: TaskGuard,
) {
    let max = shared.config.max_message_size;
    let mut sd = shared.shutdown_signal();
    // One octet more than allowed, so an oversize datagram shows up as `n > max` instead
    // of being silently truncated to a plausible message.
    let mut buf = vec![0u8; max + 1];
    let c = &shared.counters;
    loop {
        let (n, source) = tokio::select! {
            _ = cancelled(&mut sd) => break,
            // An ICMP error was queued (`icmp::enable`): EPOLLERR alone does not wake a
            // reader, so it is awaited on its own.
            r = sock.ready(Interest::ERROR) => {
                if r.is_ok() && !report_icmp_errors(&shared, &sock, local, true, &mut sd).await {
                    break;
                }
                continue;
            }
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // With IP_RECVERR a queued ICMP error also fails the next receive once
                    // (ECONNREFUSED, …); the queue says which send caused it.
                    bump(&c.receive_errors);
                    tracing::debug!(%local, "udp receive error: {e}");
                    if !report_icmp_errors(&shared, &sock, local, false, &mut sd).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let source = canonical(source);
        add(&c.bytes_received, n);
        if n > max {
            bump(&c.oversize_dropped);
            tracing::warn!(%local, %source, "dropped a datagram over {max} octets");
            continue;
        }
        let data = &buf[..n];
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        {
            // CRLF keep-alives some phones send over UDP; nothing to parse or answer.
            bump(&c.keepalives);
            continue;
        }
        bump(&c.udp_received);
        log_message(Direction::Recv, Transport::Udp, local, source, data);
        // One copy of the datagram, shared by the parsed message and `Inbound::raw`.
        let raw = Bytes::copy_from_slice(data);
        let payload = decode(
            &shared,
            parse_datagram_bytes(raw.clone()),
            || raw.clone(),
            source,
        );
        let origin = Origin {
            transport: Transport::Udp,
            source,
            local,
            connection: None,
        };
        if !shared
            .emit(
                TransportEvent::Inbound(Inbound {
                    payload,
                    origin,
                    raw,
                }),
                &mut sd,
            )
            .await
        {
            break;
        }
    }
    tracing::debug!(%local, "udp receiver stopped");
}

/// Drains the socket's error queue and reports each ICMP error that RFC 3261 §18.4 counts
/// as a `SendFailed` for its destination, so the transactions to that peer fail at once.
/// False when the engine is gone or shutdown began.
async fn report_icmp_errors(
    shared: &Shared,
    sock: &UdpSocket,
    local: SocketAddr,
    woken: bool,
    sd: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let mut found = Vec::new();
    let mut drain = || loop {
        match icmp::recv_error(sock) {
            Ok(Some(e)) => found.push(e),
            Ok(None) => {}
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    tracing::debug!(%local, "reading the error queue: {e}");
                }
                // Reported as WouldBlock in every case so try_io clears the readiness
                // instead of waking this loop again at once.
                return Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock));
            }
        }
        // Bounded: a flood of ICMP errors is read a batch at a time.
        if found.len() >= 64 {
            return Ok(());
        }
    };
    if woken {
        // try_io clears the ERROR readiness when the queue reports WouldBlock.
        let _ = sock.try_io(Interest::ERROR, drain);
    } else {
        let _ = drain();
    }
    for e in found {
        let dest = canonical(e.dest);
        if !icmp::is_fatal(e.origin, e.icmp_type, e.icmp_code) {
            tracing::debug!(%local, %dest, icmp_type = e.icmp_type, icmp_code = e.icmp_code, "ICMP error ignored");
            continue;
        }
        bump(&shared.counters.icmp_errors);
        let peer = Peer::new(Transport::Udp, dest);
        let error = io::Error::from_raw_os_error(e.errno);
        tracing::info!(%local, %peer, "ICMP: {error}; failing the transactions to it");
        let failure = SendFailure {
            peer,
            connection: None,
            data: Bytes::from(e.data),
            error: TransportError::Io {
                peer,
                source: Arc::new(error),
            },
        };
        if !shared.emit(TransportEvent::SendFailed(failure), sd).await {
            return false;
        }
    }
    true
}

/// Sends one datagram now. A full socket buffer hands the datagram to a task that waits for
/// room; its failure then comes back as `SendFailed`.
pub(crate) fn send(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    data: Bytes,
) -> Result<(), TransportError> {
    let peer = Peer::new(Transport::Udp, addr);
    let (local, sock, dest) = shared
        .udp_for(addr)
        .ok_or(TransportError::NoListener(peer))?;
    match sock.try_send_to(&data, dest) {
        Ok(_) => {
            sent(shared, local, addr, &data);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            let guard = shared.guard().ok_or(TransportError::ShutDown)?;
            let shared = shared.clone();
            tokio::spawn(async move {
                let _guard = guard;
                match sock.send_to(&data, dest).await {
                    Ok(_) => sent(&shared, local, addr, &data),
                    Err(e) => {
                        bump(&shared.counters.send_failures);
                        tracing::warn!(%peer, "udp send failed: {e}");
                        let mut sd = shared.shutdown_signal();
                        let failure = SendFailure {
                            peer,
                            connection: None,
                            data,
                            error: TransportError::Io {
                                peer,
                                source: Arc::new(e),
                            },
                        };
                        shared
                            .emit(TransportEvent::SendFailed(failure), &mut sd)
                            .await;
                    }
                }
            });
            Ok(())
        }
        Err(e) => Err(TransportError::Io {
            peer,
            source: Arc::new(e),
        }),
    }
}

fn sent(shared: &Shared, local: SocketAddr, to: SocketAddr, data: &[u8]) {
    bump(&shared.counters.udp_sent);
    add(&shared.counters.bytes_sent, data.len());
    log_message(Direction::Send, Transport::Udp, local, to, data);
}
