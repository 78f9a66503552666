//! Where a response goes: RFC 3261 §18.2.2 with RFC 3581 §4 (symmetric response routing).
//!
//! A pure decision from the response's top Via (as stamped on the way in, see `via`) and the
//! request's `Origin`. Reliable transports answer on the connection the request came on and
//! fall back to `received` (or the sent-by host) with the sent-by port; unreliable ones go to
//! `received` + `rport`, else `received` + sent-by port, else the sent-by address. A sent-by
//! without a port means 5061 for TLS, else 5060 (§18.2.2 with §19.1.2); an address with port
//! 0 is none (`RouteError::PortZero`: drop rather than fail at the socket). `maddr`
//! (multicast) and DNS lookups of a sent-by name (RFC 3263 §5) are out of scope: such a Via
//! cannot be routed. Never touches sockets.

use super::event::{ConnectionId, Origin};
use crate::net::Transport;
use crate::sip::Via;
use std::net::{IpAddr, SocketAddr};

pub use crate::sip::{DEFAULT_SIPS_PORT, DEFAULT_SIP_PORT};

/// The port a Via's sent-by stands for when it names none, by its transport token.
pub fn default_port(via_transport: &str) -> u16 {
    if via_transport.eq_ignore_ascii_case("TLS") || via_transport.eq_ignore_ascii_case("TLS-SCTP") {
        DEFAULT_SIPS_PORT
    } else {
        DEFAULT_SIP_PORT
    }
}

/// Where to send a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRoute {
    /// The request's transport: a response never changes transport.
    pub transport: Transport,
    /// Reliable transports: the request's connection, to use first while it is open.
    pub connection: Option<ConnectionId>,
    /// Where to send (unreliable) or connect to when the connection has gone (reliable);
    /// `None` when the Via names a host we cannot resolve but a connection exists.
    pub addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("response has no usable Via")]
    NoVia,
    #[error("sent-by host {0} would need a DNS lookup (RFC 3263 §5), which is not done here")]
    NeedsResolution(String),
    /// Port 0 (in sent-by or rport) names no socket; sending there fails (`EINVAL`).
    #[error("the Via leads to port 0")]
    PortZero,
}

/// Decides where the response carrying `via` (its top Via) goes, for a request that arrived
/// as `origin` says.
pub fn route_response(via: &Via, origin: &Origin) -> Result<ResponseRoute, RouteError> {
    let received = via.received().and_then(parse_ip);
    let sent_by_port = via.port.unwrap_or_else(|| default_port(&via.transport));
    let addr = if origin.transport.is_reliable() {
        // §18.2.2: "the server SHOULD open a connection to the IP address in the received
        // parameter, if present, using the port in the sent-by value".
        received
            .or_else(|| parse_ip(&via.host))
            .map(|ip| SocketAddr::new(ip, sent_by_port))
    } else {
        match (received, via.rport()) {
            // RFC 3581 §4: "both a received parameter and an rport parameter": use them.
            (Some(ip), Some(Some(rport))) => Some(SocketAddr::new(ip, rport)),
            (Some(ip), _) => Some(SocketAddr::new(ip, sent_by_port)),
            (None, _) => parse_ip(&via.host).map(|ip| SocketAddr::new(ip, sent_by_port)),
        }
    };
    let connection = origin.connection.filter(|_| origin.transport.is_reliable());
    // A port-0 address is no address: a connection still answers, nothing else does.
    let addr = match addr {
        Some(a) if a.port() == 0 && connection.is_none() => return Err(RouteError::PortZero),
        Some(a) if a.port() == 0 => None,
        other => other,
    };
    if addr.is_none() && connection.is_none() {
        return Err(RouteError::NeedsResolution(via.host.clone()));
    }
    Ok(ResponseRoute {
        transport: origin.transport,
        connection,
        addr,
    })
}

/// An IP literal, IPv6 with or without brackets (RFC 5118 §4.5 allows both in received).
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(transport: Transport, conn: Option<u64>) -> Origin {
        Origin {
            transport,
            source: "203.0.113.5:40000".parse().unwrap(),
            local: "192.0.2.1:5060".parse().unwrap(),
            connection: conn.map(ConnectionId),
        }
    }

    fn route(via: &str, o: &Origin) -> Result<ResponseRoute, RouteError> {
        route_response(&Via::parse(via).unwrap(), o)
    }

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn udp_uses_received_and_rport() {
        let o = origin(Transport::Udp, None);
        let r = route(
            "SIP/2.0/UDP 10.0.0.2:5062;rport=40000;received=203.0.113.5;branch=z9hG4bK1",
            &o,
        )
        .unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:40000"));
        assert_eq!((r.transport, r.connection), (Transport::Udp, None));
    }

    #[test]
    fn udp_received_without_rport_uses_sent_by_port_or_5060() {
        let o = origin(Transport::Udp, None);
        let r = route("SIP/2.0/UDP h.example:5070;received=203.0.113.5", &o).unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:5070"));
        let r = route("SIP/2.0/UDP h.example;received=203.0.113.5", &o).unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:5060"));
        // A bare rport (never stamped) does not count as a port.
        let r = route("SIP/2.0/UDP h.example:5070;rport;received=203.0.113.5", &o).unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:5070"));
    }

    #[test]
    fn udp_without_received_uses_sent_by_ip() {
        let o = origin(Transport::Udp, None);
        let r = route("SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1", &o).unwrap();
        assert_eq!(r.addr, addr("198.51.100.7:5060"));
        let r = route("SIP/2.0/UDP [2001:db8::9:1]:5072;branch=z9hG4bK1", &o).unwrap();
        assert_eq!(r.addr, addr("[2001:db8::9:1]:5072"));
        assert_eq!(
            route("SIP/2.0/UDP h.example:5070", &o),
            Err(RouteError::NeedsResolution("h.example".into()))
        );
    }

    #[test]
    fn ipv6_received_with_or_without_brackets() {
        let o = origin(Transport::Udp, None);
        for rcv in ["2001:db8::9:255", "[2001:db8::9:255]"] {
            let v = format!("SIP/2.0/UDP [2001:db8::9:1];received={rcv};rport=5999");
            assert_eq!(route(&v, &o).unwrap().addr, addr("[2001:db8::9:255]:5999"));
        }
    }

    #[test]
    fn tls_sent_by_without_port_means_5061() {
        // RFC 4475 bext01: `Via: SIP/2.0/TLS fold-and-staple.example.com` (stamped received).
        let o = origin(Transport::Udp, None);
        let r = route(
            "SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw;received=203.0.113.5",
            &o,
        )
        .unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:5061"));
        let r = route("SIP/2.0/tls 198.51.100.7;branch=z9hG4bK1", &o).unwrap();
        assert_eq!(r.addr, addr("198.51.100.7:5061"));
        let r = route("SIP/2.0/TLS 198.51.100.7:5070;branch=z9hG4bK1", &o).unwrap();
        assert_eq!(r.addr, addr("198.51.100.7:5070"));
        let r = route("SIP/2.0/TCP 198.51.100.7;branch=z9hG4bK1", &o).unwrap();
        assert_eq!(r.addr, addr("198.51.100.7:5060"));
        let tcp = origin(Transport::Tcp, None);
        let r = route("SIP/2.0/TLS h.example;received=203.0.113.5", &tcp).unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:5061"));
    }

    #[test]
    fn port_zero_is_no_route_except_over_the_connection() {
        let o = origin(Transport::Udp, None);
        for via in [
            "SIP/2.0/UDP 198.51.100.7:0;branch=z9hG4bK1",
            "SIP/2.0/UDP h.example:0;received=203.0.113.5;branch=z9hG4bK1",
            "SIP/2.0/UDP h.example:5060;rport=0;received=203.0.113.5;branch=z9hG4bK1",
        ] {
            assert_eq!(route(via, &o), Err(RouteError::PortZero), "{via}");
        }
        // rport stamped with the source port: the answer goes there despite the sent-by.
        let r = route(
            "SIP/2.0/UDP 10.0.0.2:0;rport=40000;received=203.0.113.5;branch=z9hG4bK1",
            &o,
        )
        .unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:40000"));
        let tcp = origin(Transport::Tcp, Some(3));
        let r = route("SIP/2.0/TCP 10.0.0.2:0;received=203.0.113.5", &tcp).unwrap();
        assert_eq!((r.connection, r.addr), (Some(ConnectionId(3)), None));
    }

    #[test]
    fn tcp_prefers_the_connection_then_received_with_sent_by_port() {
        let o = origin(Transport::Tcp, Some(7));
        let r = route(
            "SIP/2.0/TCP 10.0.0.2:5062;rport=40000;received=203.0.113.5;branch=z9hG4bK1",
            &o,
        )
        .unwrap();
        assert_eq!(r.connection, Some(ConnectionId(7)));
        // rport is a NAT binding for datagrams; a new connection goes to the sent-by port.
        assert_eq!(r.addr, addr("203.0.113.5:5062"));
        // Unresolvable fallback is fine while the connection exists …
        let r = route("SIP/2.0/TCP h.example", &o).unwrap();
        assert_eq!((r.connection, r.addr), (Some(ConnectionId(7)), None));
        // … but not without one.
        let o = origin(Transport::Tcp, None);
        assert!(route("SIP/2.0/TCP h.example", &o).is_err());
        let r = route("SIP/2.0/TCP h.example;received=203.0.113.5", &o).unwrap();
        assert_eq!(r.addr, addr("203.0.113.5:5060"));
    }
}
