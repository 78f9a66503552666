//! Binding listening sockets: `Sockets` holds bound UDP sockets and TCP listeners, ready for
//! `TransportHandle::start` (mini-redis style, so tests and the daemon's own config bind,
//! possibly to port 0, before anything runs). Only socket options here, no protocol.

use crate::net::{Transport, TransportError};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, UdpSocket};

/// Bound listening sockets, ready for `TransportHandle::start`.
#[derive(Debug, Default)]
pub struct Sockets {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
    /// Listeners whose connections start with a TLS handshake.
    pub tls: Vec<TcpListener>,
}

impl Sockets {
    /// Binds each `(transport, address)`; port 0 picks a free port. IPv6 sockets are bound
    /// v6-only so `0.0.0.0` and `[::]` can both be listed. Must run inside a tokio runtime.
    pub fn bind(listen: &[(Transport, SocketAddr)]) -> Result<Sockets, TransportError> {
        let mut s = Sockets::default();
        for &(transport, addr) in listen {
            let err = |e: io::Error| TransportError::Bind {
                transport,
                addr,
                source: Arc::new(e),
            };
            match transport {
                Transport::Udp => s.udp.push(bind_udp(addr).map_err(err)?),
                Transport::Tcp => s.tcp.push(bind_tcp(addr).map_err(err)?),
                Transport::Tls => s.tls.push(bind_tcp(addr).map_err(err)?),
            }
        }
        Ok(s)
    }
}

fn new_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Socket buffers we ask for on UDP: bursts of thousands of datagrams per second overflow
/// the 208 KiB Linux default (UdpRcvbufErrors). The kernel caps the request at
/// `net.core.rmem_max`/`wmem_max`; a smaller result is not an error.
const UDP_BUFFER: usize = 4 * 1024 * 1024;

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    // A restarted daemon must get its port back while old connections sit in TIME_WAIT.
    #[cfg(unix)]
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}
