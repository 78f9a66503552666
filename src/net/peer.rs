//! Which transport a message used (`Transport`) and the remote side of it (`Peer`): the
//! vocabulary every layer from the transaction layer up shares with the transport. Plain data,
//! no sockets.

use std::fmt;
use std::net::SocketAddr;

/// A SIP transport (RFC 3261 §18). Only UDP and TCP are served today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Reliable transports get no retransmissions from the transaction layer (§17.1.1.2).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The token used in Via and in `transport=` URI parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Parses a Via/URI transport token (case-insensitive); `None` for ones we do not serve.
    pub fn from_token(s: &str) -> Option<Transport> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else {
            None
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message came from or goes to: transport + remote address. For TCP, the transport
/// layer maps it to the connection with that peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Peer {
    pub fn new(transport: Transport, addr: SocketAddr) -> Peer {
        Peer { transport, addr }
    }
}

impl fmt::Display for Peer {
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
    fn tokens_and_reliability() {
        assert_eq!(Transport::from_token("tcp"), Some(Transport::Tcp));
        assert_eq!(Transport::from_token("SCTP"), None);
        assert!(Transport::Tcp.is_reliable() && !Transport::Udp.is_reliable());
        let p = Peer::new(Transport::Udp, "[::1]:5060".parse().unwrap());
        assert_eq!(p.to_string(), "udp:[::1]:5060");
    }
}
