//! `[server] listen` entries: `"udp:0.0.0.0:5060"`, `"tcp:[::]:5060"`, `"tls:0.0.0.0:5061"`.
//!
//! A validated pair of transport and socket address. Parsing only; never binds a socket.

use crate::net::Transport;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where to listen: a transport and a local socket address (port 0 picks a free port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl ListenAddr {
    pub fn new(transport: Transport, addr: SocketAddr) -> ListenAddr {
        ListenAddr { transport, addr }
    }
}

/// The default: UDP and TCP on every IPv4 address, port 5060.
pub fn default_listen() -> Vec<ListenAddr> {
    let any: SocketAddr = SocketAddr::from(([0, 0, 0, 0], crate::sip::DEFAULT_SIP_PORT));
    vec![
        ListenAddr::new(Transport::Udp, any),
        ListenAddr::new(Transport::Tcp, any),
    ]
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        const SHAPE: &str =
            "expected TRANSPORT:ADDRESS:PORT such as \"udp:0.0.0.0:5060\" or \"tcp:[::]:5060\"";
        let Some((transport, addr)) = s.split_once(':') else {
            return Err(format!("{s:?}: {SHAPE}"));
        };
        let transport = Transport::from_token(transport).ok_or_else(|| {
            format!("{s:?}: unknown transport {transport:?} (udp, tcp or tls are served)")
        })?;
        let addr = addr.parse::<SocketAddr>().map_err(|_| {
            let hint = if addr.matches(':').count() > 1 && !addr.starts_with('[') {
                " (write IPv6 addresses in brackets: [::]:5060)"
            } else {
                ""
            };
            format!("{s:?}: {addr:?} is not an address with a port{hint}; {SHAPE}")
        })?;
        Ok(ListenAddr { transport, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_str().to_ascii_lowercase(),
            self.addr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        for s in [
            "udp:0.0.0.0:5060",
            "tcp:[::]:5060",
            "udp:127.0.0.1:0",
            "tcp:[::1]:5080",
            "tls:0.0.0.0:5061",
        ] {
            let l: ListenAddr = s.parse().unwrap();
            assert_eq!(l.to_string(), s);
        }
        let l: ListenAddr = "TCP:10.0.0.1:5061".parse().unwrap();
        assert_eq!((l.transport, l.addr.port()), (Transport::Tcp, 5061));
    }

    #[test]
    fn rejects_with_a_reason() {
        let e = "sctp:0.0.0.0:5061".parse::<ListenAddr>().unwrap_err();
        assert!(e.contains("unknown transport \"sctp\""), "{e}");
        let e = "udp:::5060".parse::<ListenAddr>().unwrap_err();
        assert!(e.contains("brackets"), "{e}");
        for bad in [
            "",
            "udp",
            "udp:0.0.0.0",
            "udp:0.0.0.0:99999",
            "0.0.0.0:5060",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn default_is_udp_and_tcp_on_5060() {
        let d: Vec<String> = default_listen().iter().map(|l| l.to_string()).collect();
        assert_eq!(d, ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]);
    }
}
