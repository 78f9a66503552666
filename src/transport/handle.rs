//! The running transport layer: the state the socket tasks share, and the `TransportHandle`
//! the engine sends through.
//!
//! `TransportHandle::start` takes bound `Sockets` and spawns one task per UDP socket and TCP
//! listener and one per connection. `send*` never blocks: what can be decided at once is returned as an error,
//! what fails later arrives as a `TransportEvent::SendFailed`, never both.

use super::bind::Sockets;
use super::stats::{bump, Counters, TransportStats};
use super::table::ConnectionTable;
use super::tls::{TlsContext, TlsSetup, TlsSetupError};
use super::{tcp, udp, TransportConfig};
use crate::net::{
    route_response, stamp_received, ConnectionId, Origin, Payload, Peer, RouteError, Transport,
    TransportError, TransportEvent,
};
use crate::sip::{Message, ParseError, Response};
use bytes::Bytes;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

/// Held by every spawned task; `shutdown` waits until all are dropped.
#[derive(Debug, Clone)]
pub(crate) struct TaskGuard(#[allow(dead_code)] mpsc::Sender<()>);

/// State shared by the handle and the socket tasks.
pub(crate) struct Shared {
    pub config: TransportConfig,
    udp_addrs: Vec<SocketAddr>,
    /// Emptied at shutdown so the ports are released even while handles live on.
    udp: Mutex<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    tcp: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    /// Server and client TLS configurations; `None` without a certificate.
    pub tls: Option<TlsContext>,
    /// Names the certificates of servers at these addresses must carry (and SNI); other
    /// addresses are checked against their IP address.
    tls_names: Mutex<std::collections::HashMap<SocketAddr, rustls::pki_types::ServerName<'static>>>,
    table: Mutex<ConnectionTable>,
    /// Banned source addresses and when each ban ends (`TransportHandle::set_banned`).
    banned: Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
    pub counters: Counters,
    events: mpsc::Sender<TransportEvent>,
    shutdown: watch::Sender<bool>,
    guard: Mutex<Option<TaskGuard>>,
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section is a single map operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn table(&self) -> MutexGuard<'_, ConnectionTable> {
        lock(&self.table)
    }

    /// True while `ip` is banned (see `TransportHandle::set_banned`).
    pub fn is_banned(&self, ip: IpAddr, now: std::time::Instant) -> bool {
        lock(&self.banned)
            .get(&ip)
            .is_some_and(|until| *until > now)
    }

    /// A guard for a new task, or `None` once shutdown has begun.
    pub fn guard(&self) -> Option<TaskGuard> {
        lock(&self.guard).clone()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Hands an event to the engine, waiting for room (backpressure on the socket). False
    /// when the engine is gone or shutdown began, and the caller should stop.
    pub async fn emit(&self, ev: TransportEvent, sd: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            r = self.events.send(ev) => r.is_ok(),
            _ = cancelled(sd) => false,
        }
    }

    /// Hands an event over without waiting (used while shutting down); dropped if full.
    pub fn emit_now(&self, ev: TransportEvent) {
        let _ = self.events.try_send(ev);
    }

    /// The name a TLS server at `addr` must prove (see `TransportHandle::set_tls_server_name`).
    pub fn tls_server_name(&self, addr: SocketAddr) -> rustls::pki_types::ServerName<'static> {
        lock(&self.tls_names)
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| rustls::pki_types::ServerName::IpAddress(addr.ip().into()))
    }

    /// The UDP socket for sending to `addr`, its address, and `addr` as that socket needs it.
    pub fn udp_for(&self, addr: SocketAddr) -> Option<(SocketAddr, Arc<UdpSocket>, SocketAddr)> {
        let udp = lock(&self.udp);
        if let Some((local, s)) = udp.iter().find(|(l, _)| l.is_ipv6() == addr.is_ipv6()) {
            return Some((*local, s.clone(), addr));
        }
        // An IPv4 peer through an IPv6 socket given to us dual-stack (`start` with own sockets).
        let (local, s) = udp.iter().find(|(l, _)| l.is_ipv6())?;
        let IpAddr::V4(v4) = addr.ip() else {
            return None;
        };
        let mapped = SocketAddr::new(v4.to_ipv6_mapped().into(), addr.port());
        Some((*local, s.clone(), mapped))
    }
}

/// Resolves when shutdown is signalled (or the handle is gone). Cancel-safe.
pub(crate) async fn cancelled(sd: &mut watch::Receiver<bool>) {
    let _ = sd.wait_for(|&stop| stop).await;
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) folded to IPv4, so one peer has one
/// address in the connection table and in `Origin`.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Turns a parse result into a payload; requests get their top Via stamped (§18.2.1).
pub(crate) fn decode(
    shared: &Shared,
    parsed: Result<Message, ParseError>,
    raw: impl FnOnce() -> Bytes,
    source: SocketAddr,
) -> Payload {
    match parsed {
        Ok(mut message) => {
            if let Message::Request(r) = &mut message {
                if let Err(e) = stamp_received(&mut r.headers, source) {
                    // The layer above answers 400; the transport just passes it on.
                    tracing::debug!(%source, "request not stamped: {}", crate::security::log_escape(&e));
                }
            }
            Payload::Message(message)
        }
        Err(error) => {
            bump(&shared.counters.parse_errors);
            tracing::debug!(%source, "unparseable message: {}", crate::security::log_escape(&error));
            Payload::Malformed { raw: raw(), error }
        }
    }
}

/// The engine's handle on the transport layer. Cheap to clone.
#[derive(Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TransportHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportHandle")
            .field("local_addrs", &self.local_addrs())
            .finish()
    }
}

impl TransportHandle {
    /// Binds `listen` and starts; see `Sockets::bind` and `start`.
    pub fn bind(
        listen: &[(Transport, SocketAddr)],
        config: TransportConfig,
    ) -> Result<(TransportHandle, mpsc::Receiver<TransportEvent>), TransportError> {
        Self::start(Sockets::bind(listen)?, config)
    }

    /// Starts serving already-bound sockets. Every received message, send failure and closed
    /// connection arrives on the returned channel (bounded by `config.event_capacity`).
    /// Must run inside a tokio runtime.
    pub fn start(
        sockets: Sockets,
        config: TransportConfig,
    ) -> Result<(TransportHandle, mpsc::Receiver<TransportEvent>), TransportError> {
        Self::start_with_tls(sockets, config, None)
    }

    /// `start` with TLS: `tls` serves the `sockets.tls` listeners and outbound TLS. Without
    /// it, TLS listeners are refused (`NoTls`) and TLS sends fail.
    pub fn start_with_tls(
        sockets: Sockets,
        config: TransportConfig,
        tls: Option<TlsSetup>,
    ) -> Result<(TransportHandle, mpsc::Receiver<TransportEvent>), TransportError> {
        if tls.is_none() && !sockets.tls.is_empty() {
            return Err(TransportError::NoTls);
        }
        let tls = match tls.map(TlsContext::new).transpose() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("{e}");
                return Err(TransportError::NoTls);
            }
        };
        let local = |t: Transport, r: io::Result<SocketAddr>| {
            r.map_err(|e| TransportError::Bind {
                transport: t,
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source: Arc::new(e),
            })
        };
        let mut udp = Vec::new();
        for s in sockets.udp {
            let v6 = s.local_addr().is_ok_and(|a| a.is_ipv6());
            if let Err(e) = super::icmp::enable(&s, v6) {
                // Not fatal: transactions then learn of an unreachable peer from their timers.
                tracing::warn!("cannot enable ICMP error reports on a UDP socket: {e}");
            }
            udp.push((local(Transport::Udp, s.local_addr())?, Arc::new(s)));
        }
        let mut tcp = Vec::new();
        for l in sockets.tcp {
            tcp.push((local(Transport::Tcp, l.local_addr())?, l));
        }
        let mut tls_listeners = Vec::new();
        for l in sockets.tls {
            tls_listeners.push((local(Transport::Tls, l.local_addr())?, l));
        }
        let (events, rx) = mpsc::channel(config.event_capacity.max(1));
        let (guard_tx, done) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            table: Mutex::new(ConnectionTable::new(config.max_connections)),
            banned: Mutex::new(Default::default()),
            config,
            udp_addrs: udp.iter().map(|(a, _)| *a).collect(),
            udp: Mutex::new(udp.clone()),
            tcp: tcp.iter().map(|(a, _)| *a).collect(),
            tls_addrs: tls_listeners.iter().map(|(a, _)| *a).collect(),
            tls,
            tls_names: Mutex::new(Default::default()),
            counters: Counters::default(),
            events,
            shutdown: watch::channel(false).0,
            guard: Mutex::new(Some(TaskGuard(guard_tx))),
            done: Mutex::new(Some(done)),
        });
        let guard = shared.guard().ok_or(TransportError::ShutDown)?;
        for (addr, sock) in udp {
            tokio::spawn(udp::receive_loop(shared.clone(), sock, addr, guard.clone()));
        }
        let streams = tcp
            .into_iter()
            .map(|l| (Transport::Tcp, l))
            .chain(tls_listeners.into_iter().map(|l| (Transport::Tls, l)));
        for (transport, (addr, listener)) in streams {
            tokio::spawn(tcp::accept_loop(
                shared.clone(),
                listener,
                addr,
                transport,
                guard.clone(),
            ));
        }
        tracing::info!(udp = ?shared.udp_addrs, tcp = ?shared.tcp, tls = ?shared.tls_addrs, "transport listening");
        Ok((TransportHandle { shared }, rx))
    }

    /// Every listening address with its transport.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        let udp = self.shared.udp_addrs.iter().map(|a| (Transport::Udp, *a));
        let tcp = self.shared.tcp.iter().map(|a| (Transport::Tcp, *a));
        let tls = self.shared.tls_addrs.iter().map(|a| (Transport::Tls, *a));
        udp.chain(tcp).chain(tls).collect()
    }

    /// The first listening address of `transport`.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.local_addrs()
            .into_iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| a)
    }

    /// Sends `data` to `peer`. UDP leaves from the listening socket of the peer's address
    /// family; TCP goes on the connection with that remote address if there is one (a phone
    /// behind NAT is reachable only there), else on a new connection. Never blocks.
    pub fn send(&self, peer: Peer, data: Bytes) -> Result<(), TransportError> {
        let max = self.shared.config.max_message_size;
        let result = if data.len() > max {
            bump(&self.shared.counters.oversize_dropped);
            Err(TransportError::MessageTooLarge {
                size: data.len(),
                max,
            })
        } else {
            let addr = canonical(peer.addr);
            match peer.transport {
                Transport::Udp => udp::send(&self.shared, addr, data),
                t @ (Transport::Tcp | Transport::Tls) => tcp::send(&self.shared, t, addr, data),
            }
        };
        self.count_failure(&result, || peer.to_string())
    }

    /// Serialises and sends a message; see `send`.
    pub fn send_message(&self, peer: Peer, message: &Message) -> Result<(), TransportError> {
        self.send(peer, message.to_bytes())
    }

    /// Sends on one TCP connection only (a response on the connection of its request).
    pub fn send_on(&self, id: ConnectionId, data: Bytes) -> Result<(), TransportError> {
        let result = tcp::send_on(&self.shared, id, data);
        self.count_failure(&result, || id.to_string())
    }

    /// Sends a response where RFC 3261 §18.2.2 / RFC 3581 say, for a request that arrived as
    /// `origin`: on its connection while that is open, else to the address from the Via.
    pub fn send_response(
        &self,
        origin: &Origin,
        response: &Response,
    ) -> Result<(), TransportError> {
        let route = response
            .headers
            .top_via()
            .ok_or(RouteError::NoVia)
            .and_then(|via| route_response(&via, origin));
        let route = match route {
            Ok(r) => r,
            Err(e) => return self.count_failure(&Err(e.into()), || origin.source.to_string()),
        };
        let data = response.to_bytes();
        if let Some(id) = route.connection {
            match tcp::send_on(&self.shared, id, data.clone()) {
                Err(TransportError::ConnectionGone(_)) if route.addr.is_some() => {}
                other => return self.count_failure(&other, || id.to_string()),
            }
        }
        // `route_response` never yields neither; the connection case returned above.
        match route.addr {
            Some(addr) => self.send(Peer::new(route.transport, addr), data),
            None => Err(RouteError::NoVia.into()),
        }
    }

    /// Closes one TCP connection; a `ConnectionClosed` event with `CloseReason::Local`
    /// follows. False when it is not open.
    pub fn close_connection(&self, id: ConnectionId) -> bool {
        // Dropping the entry closes its write queue, which ends the connection task.
        self.shared.table().remove(id).is_some()
    }

    /// Marks a TCP connection as authenticated (a digest-authenticated request arrived on
    /// it): it may then stay idle for `idle_timeout`, its keep-alives count, and a full table
    /// never evicts it. False when it is not open.
    pub fn mark_trusted(&self, id: ConnectionId) -> bool {
        self.shared.table().mark_trusted(id)
    }

    /// Replaces the list of banned source addresses (with when each ban ends). Accepted TCP
    /// connections from them are closed at once, before they take a slot in the table;
    /// UDP from them is still dropped by the engine.
    pub fn set_banned(&self, bans: impl IntoIterator<Item = (IpAddr, std::time::Instant)>) {
        let bans = bans
            .into_iter()
            .map(|(ip, until)| (ip.to_canonical(), until))
            .collect();
        *lock(&self.shared.banned) = bans;
    }

    /// The open TCP connection with this remote address, if any.
    pub fn connection_to(&self, addr: SocketAddr) -> Option<ConnectionId> {
        self.connection_to_peer(Peer::new(Transport::Tcp, addr))
    }

    /// The open TCP or TLS connection to `peer`, if any.
    pub fn connection_to_peer(&self, peer: Peer) -> Option<ConnectionId> {
        let addr = canonical(peer.addr);
        self.shared
            .table()
            .find(peer.transport, &addr)
            .map(|(id, _)| id)
    }

    /// Serves a new certificate chain and key to TLS connections from now on (certificate
    /// renewal); open connections are not touched. On error the old certificate stays.
    pub fn reload_tls(
        &self,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<(), TlsSetupError> {
        match &self.shared.tls {
            Some(tls) => tls.reload(chain, key),
            None => Err(TlsSetupError::Config(rustls::Error::General(
                "TLS is not configured".into(),
            ))),
        }
    }

    /// Outbound TLS to `addr` checks for (and sends as SNI) `name` instead of the address:
    /// a trunk known by its DNS name.
    pub fn set_tls_server_name(&self, addr: SocketAddr, name: &str) -> Result<(), TransportError> {
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).map_err(|_| {
            TransportError::Handshake {
                addr,
                reason: format!("{name:?} is not a valid server name"),
            }
        })?;
        lock(&self.shared.tls_names).insert(canonical(addr), name);
        Ok(())
    }

    /// TCP connections open now (pending connects included).
    pub fn connection_count(&self) -> usize {
        self.shared.table().len()
    }

    pub fn stats(&self) -> TransportStats {
        let n = self.connection_count();
        self.shared.counters.snapshot(n)
    }

    /// Stops the listeners, closes every connection (FIN after flushing what is queued),
    /// waits until all socket tasks have ended and releases the ports. Sends fail with `ShutDown` from then on. A
    /// second call returns at once.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        lock(&self.shared.guard).take();
        let done = lock(&self.shared.done).take();
        if let Some(mut done) = done {
            // Every task holds a guard; recv yields None once the last one is dropped.
            while done.recv().await.is_some() {}
        }
        // No task uses them any more; dropping the last reference closes the sockets.
        lock(&self.shared.udp).clear();
        tracing::info!("transport shut down");
    }

    fn count_failure(
        &self,
        result: &Result<(), TransportError>,
        to: impl FnOnce() -> String,
    ) -> Result<(), TransportError> {
        if let Err(e) = result {
            bump(&self.shared.counters.send_failures);
            tracing::warn!(to = %to(), "send failed: {e}");
        }
        result.clone()
    }
}
