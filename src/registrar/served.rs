//! Which hosts are ours: the addresses and names this server answers for as a registrar
//! (issue 17.3), and the sockets a Contact must not point back at (issue 17.5).
//!
//! Built once at start from the configuration: the listen addresses when they are specific;
//! for a wildcard listener (`0.0.0.0`, `[::]`) the machine's interface addresses, read once
//! with `getifaddrs` ([`interface_addrs`], the only call to the operating system here);
//! plus `[server] aliases` (a public address behind 1:1 NAT, a DNS name) and the domain.
//! The address a packet actually arrived on is always ours as well (the engine passes it in).
//! Interfaces that appear after start are not served until a restart (or an alias).
//!
//! Host comparison is canonical: IP literals are parsed (brackets, IPv4-mapped IPv6 and
//! every spelling of one IPv6 address are the same host), names are compared without case
//! and without a trailing dot. Never resolves a name.

use std::net::{IpAddr, SocketAddr};

/// The hosts and ports served; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedHosts {
    /// Canonical IP addresses of this machine that we listen on.
    ips: Vec<IpAddr>,
    /// Host names (aliases and the domain), lower case, no trailing dot. Aliases that are
    /// IP literals go to `ips`.
    names: Vec<String>,
    /// Ports we listen on (configured, non-zero), for the Contact loop check.
    ports: Vec<u16>,
}

/// A URI host as an IP address (IPv6 possibly bracketed), canonical; `None` for names.
pub fn host_ip(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The one spelling of a URI host used for realms and addresses-of-record: IPs rendered
/// canonically (IPv6 in brackets), names in lower case without a trailing dot.
pub fn canonical_host(host: &str) -> String {
    match host_ip(host) {
        Some(IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
        None => {
            let h = host.strip_suffix('.').unwrap_or(host);
            h.to_ascii_lowercase()
        }
    }
}

impl ServedHosts {
    /// `ips` are this machine's addresses, `names` the aliases and domain (IP literals among
    /// them count as addresses), `ports` the configured listen ports (0 is ignored).
    pub fn new(
        ips: impl IntoIterator<Item = IpAddr>,
        names: impl IntoIterator<Item = String>,
        ports: impl IntoIterator<Item = u16>,
    ) -> ServedHosts {
        let mut s = ServedHosts::default();
        for ip in ips {
            s.add_ip(ip);
        }
        for n in names {
            match host_ip(&n) {
                Some(ip) => s.add_ip(ip),
                None => {
                    let c = canonical_host(&n);
                    if !c.is_empty() && !s.names.contains(&c) {
                        s.names.push(c);
                    }
                }
            }
        }
        for p in ports {
            if p != 0 && !s.ports.contains(&p) {
                s.ports.push(p);
            }
        }
        s
    }

    /// From the listen addresses: specific ones as they are, wildcards expanded to the
    /// interface addresses of their family (`[::]` also takes IPv4: dual-stack sockets).
    pub fn from_listen(
        listen: &[SocketAddr],
        interfaces: &[IpAddr],
        names: impl IntoIterator<Item = String>,
    ) -> ServedHosts {
        let mut ips = Vec::new();
        for l in listen {
            let ip = l.ip();
            if !ip.is_unspecified() {
                ips.push(ip);
                continue;
            }
            ips.extend(
                interfaces
                    .iter()
                    .filter(|i| ip.is_ipv6() || i.to_canonical().is_ipv4())
                    .copied(),
            );
        }
        ServedHosts::new(ips, names, listen.iter().map(|l| l.port()))
    }

    fn add_ip(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if !ip.is_unspecified() && !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }

    /// The canonical IP addresses served.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Whether `ip` is one of ours, or the address the request arrived on.
    pub fn is_local_ip(&self, ip: IpAddr, arrived_on: Option<SocketAddr>) -> bool {
        let ip = ip.to_canonical();
        self.ips.contains(&ip)
            || arrived_on.is_some_and(|a| !a.ip().is_unspecified() && a.ip().to_canonical() == ip)
    }

    /// Whether a URI host names us: one of our addresses, an alias, or the domain.
    pub fn serves(&self, host: &str, arrived_on: Option<SocketAddr>) -> bool {
        match host_ip(host) {
            Some(ip) => self.is_local_ip(ip, arrived_on),
            None => self.names.contains(&canonical_host(host)),
        }
    }

    /// Whether `host:port` (port `None` = 5060) is one of our own SIP sockets: a Contact
    /// there would make the switch call itself.
    pub fn is_own_socket(
        &self,
        host: &str,
        port: Option<u16>,
        arrived_on: Option<SocketAddr>,
    ) -> bool {
        let port = port.unwrap_or(crate::sip::DEFAULT_SIP_PORT);
        let our_port = self.ports.contains(&port) || arrived_on.is_some_and(|a| a.port() == port);
        our_port && self.serves(host, arrived_on)
    }
}

/// The machine's interface addresses (every family, loopback included), once at start.
/// Empty when the system cannot tell (then only the arrival address and aliases serve).
#[cfg(unix)]
pub fn interface_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we own until freeifaddrs; we only read
    // nodes of that list, and only the sockaddr variant its family names.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut node = head;
        while !node.is_null() {
            let addr = (*node).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                        out.push(IpAddr::V4(ip));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            node = (*node).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(not(unix))]
pub fn interface_addrs() -> Vec<IpAddr> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_compare_canonically() {
        let s = ServedHosts::new(
            [ip("192.0.2.10"), ip("2001:db8::1")],
            ["SIP.Example.org.".to_string(), "203.0.113.5".to_string()],
            [5060],
        );
        for yes in [
            "192.0.2.10",
            "[2001:db8::1]",
            "[2001:0DB8:0:0::0001]",
            "[::ffff:192.0.2.10]",
            "sip.example.org",
            "sip.EXAMPLE.org.",
            "203.0.113.5",
        ] {
            assert!(s.serves(yes, None), "{yes}");
        }
        for no in [
            "evil.example",
            "192.0.2.11",
            "[2001:db8::2]",
            "example.org",
            "",
        ] {
            assert!(!s.serves(no, None), "{no}");
        }
        // The arrival address is ours even when not listed; a wildcard one is not an address.
        assert!(s.serves("10.1.1.1", Some("10.1.1.1:5060".parse().unwrap())));
        assert!(!s.serves("0.0.0.0", Some("0.0.0.0:5060".parse().unwrap())));
        assert_eq!(canonical_host("[2001:0DB8::0001]"), "[2001:db8::1]");
        assert_eq!(canonical_host("Host.Example."), "host.example");
    }

    #[test]
    fn wildcard_listeners_take_the_interfaces_of_their_family() {
        let ifs = [ip("127.0.0.1"), ip("192.0.2.10"), ip("::1")];
        let v4 = ServedHosts::from_listen(&["0.0.0.0:5060".parse().unwrap()], &ifs, []);
        assert_eq!(v4.ips(), [ip("127.0.0.1"), ip("192.0.2.10")]);
        let v6 = ServedHosts::from_listen(&["[::]:5070".parse().unwrap()], &ifs, []);
        assert_eq!(v6.ips().len(), 3);
        let one = ServedHosts::from_listen(&["192.0.2.10:0".parse().unwrap()], &ifs, []);
        assert_eq!(one.ips(), [ip("192.0.2.10")]);
        assert!(
            one.ports.is_empty(),
            "port 0 is resolved at bind time, not here"
        );
    }

    #[test]
    fn own_socket_needs_our_address_and_our_port() {
        let s = ServedHosts::new([ip("192.0.2.10")], [], [5060]);
        assert!(s.is_own_socket("192.0.2.10", None, None));
        assert!(s.is_own_socket("192.0.2.10", Some(5060), None));
        assert!(
            !s.is_own_socket("192.0.2.10", Some(5090), None),
            "a phone on our host"
        );
        let arrived = Some("127.0.0.1:40000".parse().unwrap());
        assert!(s.is_own_socket("127.0.0.1", Some(40000), arrived));
        assert!(!s.is_own_socket("127.0.0.1", Some(40002), arrived));
    }

    #[test]
    fn interfaces_include_loopback() {
        // Every Linux machine (and CI container) has lo.
        assert!(interface_addrs().contains(&ip("127.0.0.1")));
    }
}
