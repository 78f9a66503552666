//! IP networks for the allow-list: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or
//! /128), parsed from config strings and matched against packet sources.
//!
//! Sources are compared in canonical form, so an IPv4 peer seen through a dual-stack socket as
//! `::ffff:192.0.2.1` matches `192.0.2.0/24`. Pure data: no I/O, no DNS (a host name is an
//! error, never a lookup).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address and a prefix length, with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    #[error("{0:?} is not an IP address (host names are not resolved)")]
    BadAddress(String),
    #[error("{0:?}: prefix length must be a number up to {1}")]
    BadPrefix(String, u8),
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits; `None` when the prefix is too long.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let addr = addr.to_canonical();
        if prefix > max_prefix(addr) {
            return None;
        }
        Some(IpNet {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// A network holding exactly `addr`.
    pub fn host(addr: IpAddr) -> IpNet {
        let addr = addr.to_canonical();
        IpNet {
            addr,
            prefix: max_prefix(addr),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` (in any form, IPv4-mapped included) lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<IpNet, IpNetError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| IpNetError::BadAddress(s.to_string()))?;
        let addr = addr.to_canonical();
        let max = max_prefix(addr);
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| IpNetError::BadPrefix(s.to_string(), max))?,
        };
        IpNet::new(addr, prefix).ok_or_else(|| IpNetError::BadPrefix(s.to_string(), max))
    }
}

impl TryFrom<String> for IpNet {
    type Error = IpNetError;

    fn try_from(s: String) -> Result<IpNet, IpNetError> {
        s.parse()
    }
}

impl From<IpNet> for String {
    fn from(n: IpNet) -> String {
        n.to_string()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_networks_and_hosts() {
        let n: IpNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8", "host bits are cleared");
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        let h: IpNet = "127.0.0.1".parse().unwrap();
        assert_eq!((h.prefix(), h.to_string().as_str()), (32, "127.0.0.1"));
        assert!(h.contains(ip("127.0.0.1")) && !h.contains(ip("127.0.0.2")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("32.1.13.184")), "families never mix");
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("::1")));
    }

    #[test]
    fn ipv4_mapped_sources_match_ipv4_networks() {
        let n: IpNet = "192.0.2.0/24".parse().unwrap();
        assert!(n.contains(ip("::ffff:192.0.2.77")));
        let mapped: IpNet = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.0.2.1");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "1.2.3.4/x",
            "/8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(Deserialize, Serialize)]
        struct W {
            n: Vec<IpNet>,
        }
        let w: W = toml::from_str(r#"n = ["::1", "172.16.0.0/12"]"#).unwrap();
        assert_eq!(w.n[1].to_string(), "172.16.0.0/12");
        let back = toml::to_string(&w).unwrap();
        assert!(back.contains("\"172.16.0.0/12\""), "{back}");
        assert!(toml::from_str::<W>(r#"n = ["example.com"]"#).is_err());
    }
}
