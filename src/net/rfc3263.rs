//! Locating a SIP server (RFC 3263 §4): from a gateway's `host[:port]` and configured transport
//! to the ordered list of addresses to try, given DNS answers someone else looked up.
//!
//! The rules, in the order they apply:
//! - an IP literal is the target itself, on the given port or the transport's default (5060,
//!   5061 for TLS) — §4.2, no DNS at all;
//! - a name with an explicit port gets A/AAAA only — §4.2;
//! - a name without a port: NAPTR records whose service matches the configured transport
//!   (`SIP+D2U` for UDP, `SIP+D2T` for TCP, `SIPS+D2T` for TLS) and whose flag is `s`, in
//!   order then preference, name the SRV owners to query (§4.1); with none of those, the SRV
//!   owner is `_sip._udp.host` / `_sip._tcp.host` / `_sips._tcp.host`. The first owner with SRV
//!   records wins; they are sorted by priority and, within a priority, by RFC 2782's weighted
//!   random draw, and each SRV target's A/AAAA addresses follow on the SRV's port;
//! - no SRV records at all: the host's own A/AAAA on the default port (§4.2).
//!
//! The transport never changes here: a gateway is configured with one, and NAPTR only confirms
//! it (records for other transports are discarded, as §4.1 allows for unsupported ones).
//!
//! Plain data and pure functions: the caller (`transport::dns`) asks `plan`, `srv_owners` and
//! `srv_hosts` what to look up, fills `DnsAnswers`, and calls `select`. The randomness of the
//! weighted draw comes in as a parameter (`draw(total)`: a uniform number in `0..=total`, e.g.
//! `draw_with(&mut rng)`) so tests are deterministic. This module must never
//! import tokio or a resolver crate, open a socket or read a clock.

use super::{Transport, DEFAULT_SIPS_PORT, DEFAULT_SIP_PORT};
use rand::Rng;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// One NAPTR record (RFC 3403) as far as RFC 3263 needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    pub order: u16,
    pub preference: u16,
    /// `s` means the replacement is an SRV owner name; others are not followed.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, …
    pub service: String,
    /// The SRV owner name to query next.
    pub replacement: String,
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// A host name; `.` means "the service is decidedly not available at this domain".
    pub target: String,
}

/// What the DNS said, keyed by (normalised) owner name. Fill it with the `add_*` methods.
#[derive(Debug, Clone, Default)]
pub struct DnsAnswers {
    naptr: HashMap<String, Vec<NaptrRecord>>,
    srv: HashMap<String, Vec<SrvRecord>>,
    addrs: HashMap<String, Vec<IpAddr>>,
}

impl DnsAnswers {
    pub fn add_naptr(&mut self, owner: &str, record: NaptrRecord) {
        self.naptr.entry(name_key(owner)).or_default().push(record);
    }

    pub fn add_srv(&mut self, owner: &str, record: SrvRecord) {
        self.srv.entry(name_key(owner)).or_default().push(record);
    }

    /// An A or AAAA answer for `host`, in the order the server gave them.
    pub fn add_addr(&mut self, host: &str, ip: IpAddr) {
        self.addrs.entry(name_key(host)).or_default().push(ip);
    }

    pub fn naptr(&self, owner: &str) -> &[NaptrRecord] {
        self.naptr.get(&name_key(owner)).map_or(&[], Vec::as_slice)
    }

    pub fn srv(&self, owner: &str) -> &[SrvRecord] {
        self.srv.get(&name_key(owner)).map_or(&[], Vec::as_slice)
    }

    pub fn addrs(&self, host: &str) -> &[IpAddr] {
        self.addrs.get(&name_key(host)).map_or(&[], Vec::as_slice)
    }
}

/// The first step: what kind of lookup a `host[:port]` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// An IP literal: this address, no DNS.
    Literal(SocketAddr),
    /// A name with an explicit port: A/AAAA of `host` only (§4.2).
    Address { host: String, port: u16 },
    /// A name without a port: NAPTR of `host`, then SRV, then A/AAAA (§4.1, §4.2).
    Service { host: String },
}

/// The port a target without one stands for (§4.2 with RFC 3261 §19.1.2).
pub fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls => DEFAULT_SIPS_PORT,
        Transport::Udp | Transport::Tcp => DEFAULT_SIP_PORT,
    }
}

/// Decides the first step for `host` (a name or an IP literal, IPv6 with or without brackets).
pub fn plan(host: &str, port: Option<u16>, transport: Transport) -> Plan {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Plan::Literal(SocketAddr::new(
            ip,
            port.unwrap_or_else(|| default_port(transport)),
        ));
    }
    let host = name_key(host);
    match port {
        Some(port) => Plan::Address { host, port },
        None => Plan::Service { host },
    }
}

/// The NAPTR service field that stands for `transport` (RFC 3263 §4.1).
pub fn naptr_service(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "SIP+D2U",
        Transport::Tcp => "SIP+D2T",
        Transport::Tls => "SIPS+D2T",
    }
}

/// The SRV owner queried when NAPTR gives nothing usable (§4.1, last paragraphs).
pub fn default_srv_owner(host: &str, transport: Transport) -> String {
    let prefix = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    format!("{prefix}.{}", name_key(host))
}

/// The SRV owners to try, best first: the replacements of the host's NAPTR records that match
/// the transport (flag `s`, by order then preference), or the default owner when there are
/// none.
pub fn srv_owners(host: &str, transport: Transport, naptr: &[NaptrRecord]) -> Vec<String> {
    let service = naptr_service(transport);
    let mut usable: Vec<&NaptrRecord> = naptr
        .iter()
        .filter(|r| r.service.eq_ignore_ascii_case(service) && r.flags.eq_ignore_ascii_case("s"))
        .collect();
    // A stable sort keeps the server's order among equals.
    usable.sort_by_key(|r| (r.order, r.preference));
    let mut owners: Vec<String> = Vec::new();
    for r in usable {
        let owner = name_key(&r.replacement);
        if !owner.is_empty() && !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    if owners.is_empty() {
        owners.push(default_srv_owner(host, transport));
    }
    owners
}

/// The host names whose A/AAAA records `select` will need for these SRV records.
pub fn srv_hosts(records: &[SrvRecord]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for r in records {
        let h = name_key(&r.target);
        if !h.is_empty() && !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

/// RFC 2782 ordering: ascending priority; within one priority, repeatedly draw a record with
/// probability proportional to its weight (zero-weight records first in the running sums, so
/// they are picked only when the draw is 0 or nothing else is left).
pub fn order_srv(records: &[SrvRecord], draw: &mut impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| a.priority == b.priority) {
        // "arrange all SRV RRs (that have not been ordered yet) in any order, except that all
        // those with weight 0 are placed at the beginning of the list."
        let mut left: Vec<SrvRecord> = group.iter().filter(|r| r.weight == 0).cloned().collect();
        left.extend(group.iter().filter(|r| r.weight != 0).cloned());
        while !left.is_empty() {
            let total: u32 = left.iter().map(|r| u32::from(r.weight)).sum();
            // "choose a uniform random number between 0 and the sum computed (inclusive), and
            // select the RR whose running sum value is the first in the selected order which is
            // greater than or equal to the random number selected."
            let drawn = draw(total).min(total);
            let mut running = 0u32;
            let pick = left
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= drawn
                })
                .unwrap_or(0);
            out.push(left.remove(pick));
        }
    }
    out
}

/// The ordered targets for `host[:port]` over `transport`, from the answers gathered for the
/// steps `plan`, `srv_owners` and `srv_hosts` named. Duplicates are dropped (first kept). An
/// empty list means nothing resolved.
pub fn select(
    host: &str,
    port: Option<u16>,
    transport: Transport,
    answers: &DnsAnswers,
    draw: &mut impl FnMut(u32) -> u32,
) -> Vec<(SocketAddr, Transport)> {
    let mut out = Vec::new();
    match plan(host, port, transport) {
        Plan::Literal(addr) => out.push(addr),
        Plan::Address { host, port } => {
            out.extend(
                answers
                    .addrs(&host)
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, port)),
            );
        }
        Plan::Service { host } => {
            let owners = srv_owners(&host, transport, answers.naptr(&host));
            match owners
                .iter()
                .map(|o| answers.srv(o))
                .find(|s| !s.is_empty())
            {
                // RFC 2782: a single record with target "." means no service here.
                Some([only]) if name_key(&only.target).is_empty() => {}
                Some(records) => {
                    for r in order_srv(records, draw) {
                        let target = name_key(&r.target);
                        out.extend(
                            answers
                                .addrs(&target)
                                .iter()
                                .map(|ip| SocketAddr::new(*ip, r.port)),
                        );
                    }
                }
                None => {
                    let port = default_port(transport);
                    out.extend(
                        answers
                            .addrs(&host)
                            .iter()
                            .map(|ip| SocketAddr::new(*ip, port)),
                    );
                }
            }
        }
    }
    let mut seen = Vec::with_capacity(out.len());
    for a in out {
        if !seen.contains(&a) {
            seen.push(a);
        }
    }
    seen.into_iter().map(|a| (a, transport)).collect()
}

/// The `draw` for `select` and `order_srv` from a random number generator: uniform in
/// `0..=total`, as RFC 2782 asks.
pub fn draw_with<R: Rng + ?Sized>(rng: &mut R) -> impl FnMut(u32) -> u32 + '_ {
    move |total| rng.gen_range(0..=total)
}

/// DNS names compare case-insensitively and with or without the root's trailing dot.
fn name_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A draw that always lands on 0 (the first record of the running sums).
    fn zero(_total: u32) -> u32 {
        0
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn naptr(order: u16, preference: u16, service: &str, replacement: &str) -> NaptrRecord {
        NaptrRecord {
            order,
            preference,
            flags: "s".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn addrs(targets: &[(SocketAddr, Transport)]) -> Vec<String> {
        targets.iter().map(|(a, _)| a.to_string()).collect()
    }

    #[test]
    fn rfc3263_4_2_ip_literal_is_the_target_with_the_transport_default_port() {
        let none = DnsAnswers::default();
        let t = select("192.0.2.7", None, Transport::Udp, &none, &mut zero);
        assert_eq!(t, vec![("192.0.2.7:5060".parse().unwrap(), Transport::Udp)]);
        let t = select("192.0.2.7", None, Transport::Tls, &none, &mut zero);
        assert_eq!(addrs(&t), ["192.0.2.7:5061"]);
        let t = select("192.0.2.7", Some(5080), Transport::Tcp, &none, &mut zero);
        assert_eq!(t, vec![("192.0.2.7:5080".parse().unwrap(), Transport::Tcp)]);
        let t = select("[2001:db8::1]", None, Transport::Udp, &none, &mut zero);
        assert_eq!(addrs(&t), ["[2001:db8::1]:5060"]);
        assert_eq!(
            plan("::1", Some(7), Transport::Udp),
            Plan::Literal("[::1]:7".parse().unwrap())
        );
    }

    #[test]
    fn rfc3263_4_2_explicit_port_uses_a_and_aaaa_only_never_srv() {
        let mut a = DnsAnswers::default();
        a.add_srv(
            "_sip._udp.sip.example.org",
            srv(1, 1, 9999, "other.example.org"),
        );
        a.add_addr("other.example.org", ip("192.0.2.99"));
        a.add_addr("sip.example.org", ip("192.0.2.1"));
        a.add_addr("sip.example.org", ip("2001:db8::1"));
        assert_eq!(
            plan("SIP.Example.org", Some(5070), Transport::Udp),
            Plan::Address {
                host: "sip.example.org".into(),
                port: 5070
            }
        );
        let t = select("sip.example.org", Some(5070), Transport::Udp, &a, &mut zero);
        assert_eq!(addrs(&t), ["192.0.2.1:5070", "[2001:db8::1]:5070"]);
    }

    #[test]
    fn rfc3263_4_1_naptr_filtered_by_transport_and_sorted_by_order_then_preference() {
        let records = vec![
            naptr(20, 10, "SIP+D2U", "_sip._udp.late.example.org."),
            naptr(10, 50, "SIP+D2U", "_sip._udp.second.example.org."),
            naptr(10, 10, "SIP+D2T", "_sip._tcp.example.org."),
            naptr(10, 20, "sip+d2u", "_sip._udp.first.example.org."),
            NaptrRecord {
                flags: "a".into(),
                ..naptr(1, 1, "SIP+D2U", "not-srv.example.org")
            },
        ];
        assert_eq!(
            srv_owners("example.org", Transport::Udp, &records),
            [
                "_sip._udp.first.example.org",
                "_sip._udp.second.example.org",
                "_sip._udp.late.example.org"
            ]
        );
        assert_eq!(
            srv_owners("example.org", Transport::Tcp, &records),
            ["_sip._tcp.example.org"]
        );
        // Nothing for TLS among them: the default SRV owner.
        assert_eq!(
            srv_owners("example.org", Transport::Tls, &records),
            ["_sips._tcp.example.org"]
        );
    }

    #[test]
    fn rfc3263_4_1_without_naptr_the_srv_owner_is_sip_udp_or_tcp_of_the_host() {
        assert_eq!(
            srv_owners("Example.ORG.", Transport::Udp, &[]),
            ["_sip._udp.example.org"]
        );
        assert_eq!(
            srv_owners("example.org", Transport::Tcp, &[]),
            ["_sip._tcp.example.org"]
        );
    }

    #[test]
    fn rfc3263_4_1_naptr_then_srv_then_addresses_of_each_target_on_the_srv_port() {
        let mut a = DnsAnswers::default();
        a.add_naptr(
            "example.org",
            naptr(10, 10, "SIP+D2T", "_sip._tcp.example.org."),
        );
        a.add_naptr(
            "example.org",
            naptr(10, 20, "SIP+D2U", "_sip._udp.example.org."),
        );
        a.add_srv(
            "_sip._udp.example.org",
            srv(20, 0, 5090, "backup.example.org."),
        );
        a.add_srv(
            "_sip._udp.example.org",
            srv(10, 0, 5080, "main.example.org."),
        );
        a.add_srv("_sip._tcp.example.org", srv(1, 0, 5999, "tcp.example.org."));
        a.add_addr("main.example.org", ip("192.0.2.10"));
        a.add_addr("main.example.org", ip("192.0.2.11"));
        a.add_addr("backup.example.org", ip("192.0.2.20"));
        a.add_addr("example.org", ip("192.0.2.99"));
        let t = select("example.org", None, Transport::Udp, &a, &mut zero);
        assert_eq!(
            addrs(&t),
            ["192.0.2.10:5080", "192.0.2.11:5080", "192.0.2.20:5090"]
        );
        assert!(t.iter().all(|(_, tr)| *tr == Transport::Udp));
        // TCP's SRV target has no address: nothing (no fallback to the host's own A record,
        // which only applies when there are no SRV records at all).
        assert!(select("example.org", None, Transport::Tcp, &a, &mut zero).is_empty());
        assert_eq!(
            srv_hosts(a.srv("_sip._udp.example.org")),
            ["backup.example.org", "main.example.org"]
        );
    }

    #[test]
    fn rfc3263_4_1_first_naptr_owner_with_srv_records_wins() {
        let mut a = DnsAnswers::default();
        a.add_naptr(
            "example.org",
            naptr(1, 1, "SIP+D2U", "_sip._udp.gone.example.org"),
        );
        a.add_naptr(
            "example.org",
            naptr(2, 1, "SIP+D2U", "_sip._udp.there.example.org"),
        );
        a.add_srv(
            "_sip._udp.there.example.org",
            srv(1, 1, 5062, "there.example.org"),
        );
        a.add_addr("there.example.org", ip("198.51.100.1"));
        let t = select("example.org", None, Transport::Udp, &a, &mut zero);
        assert_eq!(addrs(&t), ["198.51.100.1:5062"]);
    }

    #[test]
    fn rfc3263_4_2_no_srv_falls_back_to_the_hosts_addresses_on_5060() {
        let mut a = DnsAnswers::default();
        a.add_addr("sip.example.org.", ip("192.0.2.1"));
        a.add_addr("sip.example.org.", ip("192.0.2.1"));
        let t = select("sip.example.org", None, Transport::Tcp, &a, &mut zero);
        assert_eq!(t, vec![("192.0.2.1:5060".parse().unwrap(), Transport::Tcp)]);
        let t = select("sip.example.org", None, Transport::Tls, &a, &mut zero);
        assert_eq!(addrs(&t), ["192.0.2.1:5061"]);
        assert!(select("nothing.example.org", None, Transport::Udp, &a, &mut zero).is_empty());
    }

    #[test]
    fn rfc2782_target_dot_means_no_service() {
        let mut a = DnsAnswers::default();
        a.add_srv("_sip._udp.example.org", srv(0, 0, 0, "."));
        a.add_addr("example.org", ip("192.0.2.1"));
        assert!(select("example.org", None, Transport::Udp, &a, &mut zero).is_empty());
    }

    #[test]
    fn rfc2782_priority_ascending_always() {
        let records = [
            srv(30, 100, 3, "c"),
            srv(10, 0, 1, "a"),
            srv(20, 65535, 2, "b"),
        ];
        for seed in 0..50 {
            let mut rng = StdRng::seed_from_u64(seed);
            let ordered = order_srv(&records, &mut draw_with(&mut rng));
            let ports: Vec<u16> = ordered.iter().map(|r| r.port).collect();
            assert_eq!(ports, [1, 2, 3]);
        }
    }

    #[test]
    fn rfc2782_weighted_draw_within_a_priority_follows_the_weights() {
        let records = [
            srv(1, 10, 1, "light"),
            srv(1, 90, 2, "heavy"),
            srv(2, 0, 3, "next"),
        ];
        let mut rng = StdRng::seed_from_u64(3263);
        let mut draw = draw_with(&mut rng);
        let mut heavy_first = 0;
        for _ in 0..2000 {
            let ordered = order_srv(&records, &mut draw);
            assert_eq!(ordered.len(), 3);
            assert_eq!(
                ordered[2].port, 3,
                "the lower priority comes last, whatever the draw"
            );
            if ordered[0].port == 2 {
                heavy_first += 1;
            }
        }
        // 90 % expected; the seeded rng makes this exact run reproducible.
        assert!(
            (1700..=1900).contains(&heavy_first),
            "heavy first {heavy_first} of 2000"
        );
    }

    #[test]
    fn rfc2782_zero_weight_is_chosen_only_when_the_draw_is_zero_or_it_is_last() {
        let records = [srv(1, 5, 1, "a"), srv(1, 0, 2, "zero"), srv(1, 5, 3, "b")];
        let ordered = order_srv(&records, &mut |total| total);
        let zero_at = ordered.iter().position(|r| r.port == 2).unwrap();
        assert_eq!(zero_at, 2, "{ordered:?}");
        // A draw of 0 picks the zero-weight record first (it heads the running sums).
        assert_eq!(order_srv(&records, &mut zero)[0].port, 2);
        // With every weight zero, each draw is 0 and the list order is kept.
        let zeros = [srv(1, 0, 1, "a"), srv(1, 0, 2, "b")];
        let ports: Vec<u16> = order_srv(&zeros, &mut |t| t)
            .iter()
            .map(|r| r.port)
            .collect();
        assert_eq!(ports, [1, 2]);
    }
}
