//! Where a request goes next (RFC 3261 §8.1.2, §12.2.1.1, RFC 3263 §4): the first Route
//! URI when it is a loose router, else the Request-URI (which, for a strict router, already
//! is that router). The answer is a host, port and transport the caller resolves; an IP
//! literal is resolved here (port 5060 by default), a name is left for the caller's DNS
//! (SRV when no port is given). This module does no DNS and no I/O.

use super::error::DialogError;
use super::state::Dialog;
use crate::net::{Peer, Transport};
use crate::sip::{HeaderName, Request, Scheme, Uri, DEFAULT_SIPS_PORT, DEFAULT_SIP_PORT};
use std::net::SocketAddr;

/// A host, port and transport to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// The host as written (the `maddr` parameter wins, §19.1.1), IPv6 in brackets.
    pub host: String,
    /// `None` when the URI gives none: 5060 for an IP literal, SRV for a name (RFC 3263).
    pub port: Option<u16>,
    /// From `transport=`, UDP when absent (RFC 3263 §4.1 for a numeric host or a port).
    pub transport: Transport,
    /// Set when `host` is an IP literal: where to send without resolving anything.
    pub addr: Option<SocketAddr>,
}

impl NextHop {
    /// The next hop a SIP URI names. `Unroutable` for other schemes and for transports we
    /// do not serve. A `sips:` URI goes over TLS only (RFC 3261 §26.2.2; `transport=tls` is
    /// deprecated there but accepted, any other transport is refused), 5061 by default.
    pub fn from_uri(uri: &Uri) -> Result<NextHop, DialogError> {
        let unroutable = || DialogError::Unroutable(uri.as_str().to_string());
        let sips = match uri.scheme() {
            Scheme::Sip => false,
            Scheme::Sips => true,
            _ => return Err(unroutable()),
        };
        let transport = match uri.transport() {
            Some(t) => Transport::from_token(t).ok_or_else(unroutable)?,
            None if sips => Transport::Tls,
            None => Transport::Udp,
        };
        if sips && transport != Transport::Tls {
            return Err(unroutable());
        }
        let default_port = if transport == Transport::Tls {
            DEFAULT_SIPS_PORT
        } else {
            DEFAULT_SIP_PORT
        };
        let host = match uri.param("maddr").flatten() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => uri.host().to_string(),
        };
        if host.is_empty() {
            return Err(unroutable());
        }
        let port = uri.port();
        let ip = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host)
            .parse()
            .ok();
        let addr = ip.map(|ip| SocketAddr::new(ip, port.unwrap_or(default_port)));
        Ok(NextHop {
            host,
            port,
            transport,
            addr,
        })
    }

    /// Where `req` goes: its top Route when that has `lr`, else its Request-URI. Only
    /// right for requests whose route set starts with a loose router (initial requests with
    /// a preloaded route, proxied ones): when a dialog's first route is a strict router, the
    /// Request-URI is the next hop although the top Route may have `lr` (§8.1.2), so
    /// in-dialog requests ask `Dialog::next_hop` instead.
    pub fn of_request(req: &Request) -> Result<NextHop, DialogError> {
        if req.headers.get(&HeaderName::Route).is_some() {
            let routes = req.headers.routes()?;
            if let Some(first) = routes.first().filter(|r| r.uri.has_param("lr")) {
                return NextHop::from_uri(&first.uri);
            }
        }
        let uri = req
            .request_uri()
            .map_err(|_| DialogError::Unroutable(String::from_utf8_lossy(&req.uri).into()))?;
        NextHop::from_uri(&uri)
    }

    /// The peer to hand to the transport, when no resolving is needed.
    pub fn peer(&self) -> Option<Peer> {
        self.addr.map(|a| Peer::new(self.transport, a))
    }
}

impl Dialog {
    /// Where this dialog's next request goes: its first route (loose or strict: a strict
    /// router is put in the Request-URI), or the remote target when there is no route set.
    pub fn next_hop(&self) -> Result<NextHop, DialogError> {
        match self.route_set.first() {
            Some(r) => NextHop::from_uri(&r.uri),
            None => NextHop::from_uri(&self.remote_target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::parse_datagram;

    fn hop(uri: &str) -> Result<NextHop, DialogError> {
        NextHop::from_uri(&Uri::parse(uri).unwrap())
    }

    #[test]
    fn ip_literals_resolve_and_names_do_not() {
        let h = hop("sip:alice@192.168.4.4:5090;rinstance=e7d5364c81f2b879;transport=UDP").unwrap();
        assert_eq!(h.addr, Some("192.168.4.4:5090".parse().unwrap()));
        assert_eq!(h.peer().unwrap().to_string(), "udp:192.168.4.4:5090");
        let h = hop("sip:[2001:db8::1];transport=tcp").unwrap();
        assert_eq!(h.transport, Transport::Tcp);
        assert_eq!(h.port, None);
        assert_eq!(h.addr, Some("[2001:db8::1]:5060".parse().unwrap()));
        let h = hop("sip:ss1.atlanta.example.com;lr").unwrap();
        assert_eq!(
            (h.host.as_str(), h.port, h.addr),
            ("ss1.atlanta.example.com", None, None)
        );
        let h = hop("sip:bob@biloxi.example.com;maddr=192.0.2.9").unwrap();
        assert_eq!(h.addr, Some("192.0.2.9:5060".parse().unwrap()));
    }

    #[test]
    fn rfc3261_26_2_2_sips_goes_over_tls_only_to_5061_by_default() {
        let h = hop("sips:bob@192.0.2.1").unwrap();
        assert_eq!(h.peer().unwrap().to_string(), "tls:192.0.2.1:5061");
        let h = hop("sip:bob@192.0.2.1;transport=tls").unwrap();
        assert_eq!(h.peer().unwrap().to_string(), "tls:192.0.2.1:5061");
        let h = hop("sips:bob@192.0.2.1:5071;transport=TLS").unwrap();
        assert_eq!(h.peer().unwrap().to_string(), "tls:192.0.2.1:5071");
        for u in [
            "sips:bob@192.0.2.1;transport=udp",
            "sips:bob@192.0.2.1;transport=tcp",
        ] {
            assert!(matches!(hop(u), Err(DialogError::Unroutable(_))), "{u}");
        }
    }

    #[test]
    fn schemes_and_transports_we_do_not_serve_are_unroutable() {
        for u in ["tel:+15551234", "sip:bob@192.0.2.1;transport=sctp"] {
            assert!(matches!(hop(u), Err(DialogError::Unroutable(_))), "{u}");
        }
    }

    #[test]
    fn request_goes_to_loose_route_else_request_uri() {
        let text = |route: &str| {
            format!(
                "BYE sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n{route}\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\n\r\n"
            )
        };
        let req = |route: &str| {
            parse_datagram(text(route).as_bytes())
                .unwrap()
                .as_request()
                .unwrap()
                .clone()
        };
        let loose = req("Route: <sip:192.0.2.7:5070;lr>, <sip:192.0.2.8;lr>\r\n");
        assert_eq!(
            NextHop::of_request(&loose).unwrap().addr,
            Some("192.0.2.7:5070".parse().unwrap())
        );
        let strict = req("Route: <sip:192.0.2.7:5070>\r\n");
        assert_eq!(
            NextHop::of_request(&strict).unwrap().addr,
            Some("192.0.2.4:5060".parse().unwrap())
        );
        assert_eq!(
            NextHop::of_request(&req("")).unwrap().addr,
            Some("192.0.2.4:5060".parse().unwrap())
        );
    }
}
