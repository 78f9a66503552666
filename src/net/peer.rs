//! Which transport a message used (`Transport`) and the remote side of it (`Peer`): the
//! vocabulary every layer from the transaction layer up shares with the transport. Plain data,
//! no sockets.

use std::fmt;
use std::net::SocketAddr;

/// A SIP transport (RFC 3261 §18): UDP, TCP, and TLS over TCP (§26.2, RFC 5630).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Reliable transports get no retransmissions from the transaction layer (§17.1.1.2).
    /// They are also the connection-oriented ones: a phone registered over them is reached
    /// on its connection.
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The token used in Via and in `transport=` URI parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `;transport=` parameter our Contact carries on a leg of this transport (none
    /// for UDP, the default of a `sip:` URI).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        }
    }

    /// Parses a Via/URI transport token (case-insensitive); `None` for ones we do not serve.
    pub fn from_token(s: &str) -> Option<Transport> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else if s.eq_ignore_ascii_case("tls") {
            Some(Transport::Tls)
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
        assert_eq!(Transport::from_token("TLS"), Some(Transport::Tls));
        assert!(Transport::Tls.is_reliable());
        assert_eq!(Transport::Tls.uri_param(), ";transport=tls");
        assert_eq!(Transport::Udp.uri_param(), "");
        let p = Peer::new(Transport::Udp, "[::1]:5060".parse().unwrap());
        assert_eq!(p.to_string(), "udp:[::1]:5060");
    }
}
