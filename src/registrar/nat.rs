//! NAT detection for registrations, in the spirit of Kamailio's `nat_uac_test` and
//! FreeSWITCH's NDLB checks. A binding behind NAT is reached at the address the REGISTER came
//! from (received/rport, or its TCP connection) instead of the Contact, which would be
//! unreachable. Without NAT the Contact is used as registered, so third-party registration
//! (RFC 3261 §10.2) keeps working. Pure functions, no I/O.

use std::net::{IpAddr, SocketAddr};

/// Private, shared (CGNAT), link-local or unique-local addresses: not reachable from outside.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Parses a URI/Via host (IPv6 possibly bracketed) as an IP address; `None` for names.
pub fn host_ip(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse().ok()
}

/// What the registrar knows when deciding whether a REGISTER came through NAT.
pub struct NatProbe<'a> {
    /// Top Via sent-by host and port (port `None` = default for the transport).
    pub via_host: &'a str,
    pub via_port: Option<u16>,
    /// Contact URI host and port.
    pub contact_host: &'a str,
    pub contact_port: Option<u16>,
    /// Where the packet really came from.
    pub source: SocketAddr,
    pub default_port: u16,
}

/// True when NAT is detected: the Via sent-by differs from the packet's source address or
/// port, or the Contact names a private address while the source is public.
pub fn detect(p: &NatProbe<'_>) -> bool {
    let src_ip = unmap(p.source.ip());
    let via_differs = match host_ip(p.via_host) {
        Some(ip) => unmap(ip) != src_ip || p.via_port.unwrap_or(p.default_port) != p.source.port(),
        // A host name in Via cannot be compared cheaply; the port still can.
        None => p.via_port.unwrap_or(p.default_port) != p.source.port(),
    };
    let contact_private = host_ip(p.contact_host)
        .map(unmap)
        .is_some_and(|ip| (is_private(ip) || ip.is_loopback()) && ip != src_ip)
        && !is_private(src_ip)
        && !src_ip.is_loopback();
    via_differs || contact_private
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe<'a>(via: &'a str, vport: Option<u16>, contact: &'a str, src: &str) -> bool {
        detect(&NatProbe {
            via_host: via,
            via_port: vport,
            contact_host: contact,
            contact_port: Some(5060),
            source: src.parse().unwrap(),
            default_port: 5060,
        })
    }

    #[test]
    fn private_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.4.4",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "100.128.0.1", "2001:db8::1", "127.0.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn detection_rules() {
        // The seed: Zoiper on the LAN, Via matches the source: no NAT.
        assert!(!probe(
            "192.168.4.4",
            Some(5090),
            "192.168.4.4",
            "192.168.4.4:5090"
        ));
        // Port rewritten by a NAT box.
        assert!(probe(
            "192.168.4.4",
            Some(5090),
            "192.168.4.4",
            "192.168.4.4:40000"
        ));
        // Private Via/Contact, public source.
        assert!(probe(
            "10.0.0.5",
            Some(5060),
            "10.0.0.5",
            "203.0.113.7:5060"
        ));
        // Third-party registration from a public host: Contact elsewhere, Via matches.
        assert!(!probe(
            "203.0.113.7",
            None,
            "198.51.100.2",
            "203.0.113.7:5060"
        ));
        // IPv6 with brackets and v4-mapped sources.
        assert!(!probe("[::1]", Some(5070), "[::1]", "[::1]:5070"));
        assert!(!probe(
            "127.0.0.1",
            Some(5070),
            "127.0.0.1",
            "[::ffff:127.0.0.1]:5070"
        ));
    }
}
