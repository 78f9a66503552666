//! RFC 3261 §10.3 REGISTER processing, steps 6–8: validate the Contacts, compute each
//! expiry, apply Call-ID/CSeq ordering and update the bindings of one address-of-record.
//! A Contact the switch must not send to (itself, or a network the operator keeps phones
//! away from: `contact_allow`/`contact_deny`) is refused before anything is stored.
//! Input is already authenticated and decoded (see `RegisterRequest`); output is the binding
//! list to put in the 200 or a typed refusal. Sans-IO.
//!
//! RFC 3327 Path: the engine hands in the Path of a REGISTER only when it came from a trusted
//! edge proxy (`trusted_proxies`); each binding added or refreshed by it keeps that Path, and
//! a binding with a Path is never NAT'd from our side (the REGISTER's source is the proxy,
//! not the phone) and is checked against `contact_allow`/`contact_deny` by its first Path
//! hop, which is where requests to it will go.

use super::nat::{self, NatProbe};
use super::served::{host_ip, ServedHosts};
use super::store::{Binding, LocationStore};
use crate::net::Peer;
use crate::security::IpNet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Registrar limits from the configuration.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    /// Bindings one address-of-record may hold; more are refused (bounded memory).
    pub max_bindings_per_aor: usize,
    /// Our own hosts: realms served when no domain is set, and sockets a Contact must not
    /// name (a loop through the switch itself).
    pub served: ServedHosts,
    /// Networks a binding may send to (`[registrar] contact_allow`); default everything.
    pub contact_allow: Vec<IpNet>,
    /// Networks a binding may never send to (`contact_deny`): gateways and trunks that
    /// trust the switch's address.
    pub contact_deny: Vec<IpNet>,
    /// Bind nonces to the UDP source they were issued to (`nonce_bind_source`).
    pub nonce_bind_source: bool,
    /// How often NAT'd UDP bindings get an OPTIONS to keep their mapping open
    /// (`nat_keepalive`); zero: never.
    pub nat_keepalive: Duration,
    /// Edge proxies whose REGISTERs may carry a Path (RFC 3327) and that the per-source
    /// security layer never bans or rate-limits (`[registrar] trusted_proxies`).
    pub trusted_proxies: Vec<IpNet>,
}

/// Every address, IPv4 and IPv6: the default `contact_allow`.
pub fn allow_everything() -> Vec<IpNet> {
    ["0.0.0.0/0", "::/0"]
        .into_iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_bindings_per_aor: 10,
            served: ServedHosts::default(),
            contact_allow: allow_everything(),
            contact_deny: Vec::new(),
            nonce_bind_source: true,
            nat_keepalive: Duration::from_secs(25),
            trusted_proxies: Vec::new(),
        }
    }
}

impl RegistrarConfig {
    /// Whether `ip` is one of the trusted edge proxies.
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }
}

/// One Contact of a REGISTER, decoded.
#[derive(Debug, Clone)]
pub struct ContactSpec {
    /// The URI inside `<>` (or the addr-spec), exactly as sent.
    pub uri: String,
    /// Host and port of that URI, for NAT detection.
    pub host: String,
    pub port: Option<u16>,
    /// `expires` contact parameter, if any (values over 2^32-1 saturate).
    pub expires: Option<u32>,
    /// `+sip.instance` value, quotes included as sent.
    pub instance: Option<String>,
    /// Other header parameters rendered as `;a=b;c` (kept to echo back in the 200).
    pub params: String,
}

/// `Contact: *` or a list of contacts (possibly empty: a query).
#[derive(Debug, Clone)]
pub enum Contacts {
    Star,
    List(Vec<ContactSpec>),
}

/// Everything §10.3 needs from one REGISTER.
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    pub aor: String,
    pub call_id: String,
    pub cseq: u32,
    pub contacts: Contacts,
    /// The Expires header (saturated to u32).
    pub expires: Option<u32>,
    pub source: Peer,
    pub local: SocketAddr,
    pub connection: Option<u64>,
    pub via_host: String,
    pub via_port: Option<u16>,
    pub user_agent: Option<String>,
    /// `host:port` the phone addressed us by (see `Binding::advertised`).
    pub advertised: String,
    /// The RFC 3327 Path values to store with each binding: empty unless the REGISTER came
    /// from a trusted proxy (the engine decides).
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// 200 OK listing these bindings.
    Ok(Vec<Binding>),
    /// 423 Interval Too Brief with `Min-Expires`.
    IntervalTooBrief(u32),
    /// 400 with this reason phrase.
    BadRequest(&'static str),
    /// 500: same Call-ID with a CSeq not higher than the stored one (§10.3 step 7).
    OutOfOrder,
    /// 403: more contacts than one address-of-record may hold.
    TooManyBindings,
    /// 403: a Contact names one of our own sockets, or sends outside `contact_allow` /
    /// inside `contact_deny` (issue 17.5).
    ContactForbidden,
    /// 500 with Retry-After: the location store cannot take writes now (its shared copy is
    /// unreachable, see `LocationStore::writable`); nothing was changed.
    StoreUnavailable,
}

/// Applies one REGISTER to the store.
pub fn process(
    cfg: &RegistrarConfig,
    store: &dyn LocationStore,
    req: &RegisterRequest,
    now: Instant,
) -> RegisterOutcome {
    let query = matches!(&req.contacts, Contacts::List(l) if l.is_empty());
    if !query && !store.writable() {
        // Accepting a binding that no other node will see, or a removal they will not learn
        // of, would split the cluster's view: refuse, the phone retries.
        return RegisterOutcome::StoreUnavailable;
    }
    let specs = match &req.contacts {
        Contacts::Star => {
            // §10.3 step 6: "*" only with Expires: 0 and no other Contact.
            if req.expires != Some(0) {
                return RegisterOutcome::BadRequest("Bad Request - Contact * needs Expires: 0");
            }
            let mut out_of_order = false;
            store.update(&req.aor, now, &mut |list| {
                if list
                    .iter()
                    .any(|b| b.call_id == req.call_id && req.cseq <= b.cseq)
                {
                    out_of_order = true;
                } else {
                    list.clear();
                }
            });
            return if out_of_order {
                RegisterOutcome::OutOfOrder
            } else {
                RegisterOutcome::Ok(Vec::new())
            };
        }
        Contacts::List(l) if l.is_empty() => {
            return RegisterOutcome::Ok(store.lookup(&req.aor, now));
        }
        Contacts::List(l) => l,
    };

    let mut planned = Vec::with_capacity(specs.len());
    for c in specs {
        let asked = c.expires.or(req.expires).unwrap_or(cfg.default_expires);
        if asked != 0 && asked < cfg.min_expires {
            return RegisterOutcome::IntervalTooBrief(cfg.min_expires);
        }
        if asked != 0 && !contact_allowed(cfg, req, c) {
            return RegisterOutcome::ContactForbidden;
        }
        planned.push((c, asked.min(cfg.max_expires)));
    }

    let mut outcome = None;
    let result = store.update(&req.aor, now, &mut |list| {
        // Check ordering for every contact first so the update is all-or-nothing.
        for (c, _) in &planned {
            if let Some(b) = list.iter().find(|b| same_binding(b, c)) {
                if b.call_id == req.call_id && req.cseq <= b.cseq {
                    outcome = Some(RegisterOutcome::OutOfOrder);
                    return;
                }
            }
        }
        let before = list.clone();
        for (c, secs) in &planned {
            list.retain(|b| !same_binding(b, c));
            if *secs > 0 {
                list.push(new_binding(req, c, *secs, now));
            }
        }
        if list.len() > cfg.max_bindings_per_aor {
            *list = before;
            outcome = Some(RegisterOutcome::TooManyBindings);
        }
    });
    outcome.unwrap_or(RegisterOutcome::Ok(result))
}

impl RegistrarConfig {
    /// True when some destination is refused, i.e. the lists are not the defaults.
    fn contacts_restricted(&self) -> bool {
        let everything = |v4: bool| {
            self.contact_allow
                .iter()
                .any(|n| n.prefix() == 0 && n.addr().is_ipv4() == v4)
        };
        !self.contact_deny.is_empty() || !everything(true) || !everything(false)
    }

    fn destination_allowed(&self, ip: std::net::IpAddr) -> bool {
        self.contact_allow.iter().any(|n| n.contains(ip))
            && !self.contact_deny.iter().any(|n| n.contains(ip))
    }
}

/// Issue 17.5: a binding is where the switch will send INVITEs on the user's behalf, so it
/// must not be the switch itself (a loop) nor a network the operator keeps phones away from
/// (a gateway that trusts our address: toll fraud). What is checked is where requests will
/// really go: the REGISTER's source when NAT is detected or over TCP (the engine then sends
/// there), else the Contact's host. A Contact host that is a name is never resolved here:
/// with the default lists (everything allowed, nothing denied) it is accepted, otherwise it
/// is refused unless requests go to the source anyway.
fn contact_allowed(cfg: &RegistrarConfig, req: &RegisterRequest, c: &ContactSpec) -> bool {
    if cfg.served.is_own_socket(&c.host, c.port, Some(req.local)) {
        return false;
    }
    if let Some(first) = req.path.first() {
        // Requests go to the first Path hop (RFC 3327 §5.4), so that is what is checked.
        let Some((host, port)) = path_hop(first) else {
            return false;
        };
        if cfg.served.is_own_socket(&host, port, Some(req.local)) {
            return false;
        }
        return match host_ip(&host) {
            Some(ip) => cfg.destination_allowed(ip),
            None => !cfg.contacts_restricted(),
        };
    }
    let to_source = binding_is_natted(req, c) || req.source.transport.is_reliable();
    let ip = if to_source {
        Some(req.source.addr.ip())
    } else {
        host_ip(&c.host)
    };
    match ip {
        Some(ip) => cfg.destination_allowed(ip),
        None => !cfg.contacts_restricted(),
    }
}

/// Host and port of a Path value's URI (`<sip:host:port;lr>`).
fn path_hop(value: &str) -> Option<(String, Option<u16>)> {
    let a = crate::sip::name_addr::NameAddr::parse(value.as_bytes()).ok()?;
    Some((a.uri.host().to_string(), a.uri.port()))
}

fn binding_is_natted(req: &RegisterRequest, c: &ContactSpec) -> bool {
    // Through an edge proxy the REGISTER's source is the proxy: what it says about the
    // phone's NAT is the proxy's business (it holds the pinhole), never ours.
    if !req.path.is_empty() {
        return false;
    }
    nat::detect(&NatProbe {
        via_host: &req.via_host,
        via_port: req.via_port,
        contact_host: &c.host,
        contact_port: c.port,
        source: req.source.addr,
        default_port: crate::sip::DEFAULT_SIP_PORT,
    })
}

/// RFC 5626: bindings with the same `+sip.instance` are one device; otherwise the Contact URI
/// decides (compared case-insensitively, which covers scheme and host; user parts differing
/// only in case are rare enough in practice).
fn same_binding(b: &Binding, c: &ContactSpec) -> bool {
    match (&b.instance, &c.instance) {
        (Some(x), Some(y)) => x == y,
        _ => b.contact.eq_ignore_ascii_case(&c.uri),
    }
}

fn new_binding(req: &RegisterRequest, c: &ContactSpec, secs: u32, now: Instant) -> Binding {
    let nat = binding_is_natted(req, c);
    Binding {
        contact: c.uri.clone(),
        contact_params: c.params.clone(),
        instance: c.instance.clone(),
        call_id: req.call_id.clone(),
        cseq: req.cseq,
        expires_at: now + Duration::from_secs(u64::from(secs)),
        source: req.source,
        local: req.local,
        connection: req.connection,
        nat,
        user_agent: req.user_agent.clone(),
        advertised: req.advertised.clone(),
        path: req.path.clone(),
    }
}

/// The Contact header values of a 200 OK: every binding with its remaining expiry.
pub fn contact_values(bindings: &[Binding], now: Instant) -> Vec<String> {
    bindings
        .iter()
        .map(|b| {
            format!(
                "<{}>{};expires={}",
                b.contact,
                b.contact_params,
                b.remaining_secs(now)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Transport;
    use crate::registrar::MemoryStore;

    fn contact(uri: &str, expires: Option<u32>) -> ContactSpec {
        ContactSpec {
            uri: uri.into(),
            host: "127.0.0.1".into(),
            port: Some(5090),
            expires,
            instance: None,
            params: String::new(),
        }
    }

    fn req(cseq: u32, contacts: Contacts, expires: Option<u32>) -> RegisterRequest {
        RegisterRequest {
            aor: "alice@d".into(),
            call_id: "cid".into(),
            cseq,
            contacts,
            expires,
            source: Peer::new(Transport::Udp, "127.0.0.1:5090".parse().unwrap()),
            local: "127.0.0.1:5060".parse().unwrap(),
            connection: None,
            via_host: "127.0.0.1".into(),
            via_port: Some(5090),
            user_agent: Some("test".into()),
            advertised: "127.0.0.1:5060".into(),
            path: Vec::new(),
        }
    }

    fn ok_len(o: RegisterOutcome) -> usize {
        match o {
            RegisterOutcome::Ok(l) => l.len(),
            other => panic!("expected 200, got {other:?}"),
        }
    }

    #[test]
    fn rfc3261_10_3_binding_lifecycle() {
        let cfg = RegistrarConfig::default();
        let s = MemoryStore::new();
        let t0 = Instant::now();
        let two = Contacts::List(vec![
            contact("sip:a@1", None),
            contact("sip:a@2", Some(120)),
        ]);
        let o = process(&cfg, &s, &req(1, two, Some(600)), t0);
        let RegisterOutcome::Ok(list) = o else {
            panic!("{o:?}")
        };
        let vals = contact_values(&list, t0);
        assert_eq!(vals, ["<sip:a@1>;expires=600", "<sip:a@2>;expires=120"]);
        assert!(list.iter().all(|b| !b.nat));

        // A query (no Contact) lists current bindings.
        assert_eq!(
            ok_len(process(&cfg, &s, &req(2, Contacts::List(vec![]), None), t0)),
            2
        );
        // Refresh keeps the binding, new expiry.
        let later = t0 + Duration::from_secs(100);
        let r = Contacts::List(vec![contact("SIP:a@1", Some(3600))]);
        assert_eq!(ok_len(process(&cfg, &s, &req(3, r, None), later)), 2);
        // Old CSeq from the same Call-ID: refused, nothing changes.
        let stale = Contacts::List(vec![contact("sip:a@1", Some(0))]);
        assert_eq!(
            process(&cfg, &s, &req(3, stale, None), later),
            RegisterOutcome::OutOfOrder
        );
        // expires=0 removes one.
        let rm = Contacts::List(vec![contact("sip:a@2", Some(0))]);
        assert_eq!(ok_len(process(&cfg, &s, &req(4, rm, None), later)), 1);
        // "*" needs Expires: 0; then removes all.
        assert!(matches!(
            process(&cfg, &s, &req(5, Contacts::Star, Some(60)), later),
            RegisterOutcome::BadRequest(_)
        ));
        assert_eq!(
            ok_len(process(&cfg, &s, &req(6, Contacts::Star, Some(0)), later)),
            0
        );
        assert_eq!(s.counts(), (0, 0));
    }

    #[test]
    fn interval_too_brief_and_caps() {
        let cfg = RegistrarConfig::default();
        let s = MemoryStore::new();
        let t0 = Instant::now();
        let short = Contacts::List(vec![contact("sip:a@1", Some(30))]);
        assert_eq!(
            process(&cfg, &s, &req(1, short, None), t0),
            RegisterOutcome::IntervalTooBrief(60)
        );
        let long = Contacts::List(vec![contact("sip:a@1", Some(u32::MAX))]);
        let RegisterOutcome::Ok(l) = process(&cfg, &s, &req(2, long, None), t0) else {
            panic!()
        };
        assert_eq!(l[0].remaining_secs(t0), 3600);
        let many: Vec<_> = (0..11)
            .map(|i| contact(&format!("sip:a@h{i}"), None))
            .collect();
        assert_eq!(
            process(&cfg, &s, &req(3, Contacts::List(many), None), t0),
            RegisterOutcome::TooManyBindings
        );
        assert_eq!(s.counts(), (1, 1));
    }

    #[test]
    fn instance_id_identifies_the_device() {
        let cfg = RegistrarConfig::default();
        let s = MemoryStore::new();
        let t0 = Instant::now();
        let mut a = contact("sip:a@10.0.0.1:5060", None);
        a.instance = Some("\"<urn:uuid:1>\"".into());
        let mut b = contact("sip:a@10.0.0.2:5060", None);
        b.instance = a.instance.clone();
        ok_len(process(
            &cfg,
            &s,
            &req(1, Contacts::List(vec![a]), None),
            t0,
        ));
        let RegisterOutcome::Ok(l) = process(&cfg, &s, &req(2, Contacts::List(vec![b]), None), t0)
        else {
            panic!()
        };
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].contact, "sip:a@10.0.0.2:5060");
    }

    #[test]
    fn rfc3327_path_is_stored_with_each_binding_and_replaced_on_refresh() {
        let mut cfg = RegistrarConfig::default();
        let s = MemoryStore::new();
        let t0 = Instant::now();
        // Via and source are the proxy's, the Contact a private address: not NAT from here.
        let mut r = req(
            1,
            Contacts::List(vec![contact("sip:a@192.168.1.20:5060", None)]),
            None,
        );
        r.source = Peer::new(Transport::Udp, "10.0.0.1:5060".parse().unwrap());
        r.via_host = "10.0.0.1".into();
        r.path = vec!["<sip:10.0.0.1;lr;received=sip:198.51.100.4:40000>".into()];
        let RegisterOutcome::Ok(l) = process(&cfg, &s, &r, t0) else {
            panic!()
        };
        assert_eq!(l[0].path, r.path);
        assert!(!l[0].nat && l[0].has_path());
        // A refresh through another edge proxy keeps one binding, with the new Path.
        r.cseq = 2;
        r.path = vec!["<sip:10.0.0.2;lr>".into(), "<sip:core.example;lr>".into()];
        let RegisterOutcome::Ok(l) = process(&cfg, &s, &r, t0) else {
            panic!()
        };
        assert_eq!((l.len(), l[0].path.clone()), (1, r.path.clone()));
        // The first hop is where requests go, so it is what contact_deny judges.
        cfg.contact_deny = vec!["10.0.0.2/32".parse().unwrap()];
        r.cseq = 3;
        assert_eq!(process(&cfg, &s, &r, t0), RegisterOutcome::ContactForbidden);
        r.path = vec!["<sip:10.0.0.1;lr>".into()];
        assert!(matches!(process(&cfg, &s, &r, t0), RegisterOutcome::Ok(_)));
        // A Path naming our own socket would loop.
        r.cseq = 4;
        r.path = vec!["<sip:127.0.0.1:5060;lr>".into()];
        assert_eq!(process(&cfg, &s, &r, t0), RegisterOutcome::ContactForbidden);
    }

    #[test]
    fn an_unwritable_store_refuses_changes_but_answers_queries() {
        let cfg = RegistrarConfig::default();
        let t0 = Instant::now();
        let mem = std::sync::Arc::new(MemoryStore::new());
        let one = Contacts::List(vec![contact("sip:a@1", None)]);
        ok_len(process(&cfg, &*mem, &req(1, one, None), t0));
        let s = crate::registrar::store::Unwritable(mem);
        for contacts in [
            Contacts::List(vec![contact("sip:a@2", None)]),
            Contacts::List(vec![contact("sip:a@1", Some(0))]),
            Contacts::Star,
        ] {
            assert_eq!(
                process(&cfg, &s, &req(2, contacts, Some(0)), t0),
                RegisterOutcome::StoreUnavailable
            );
        }
        assert_eq!(s.counts(), (1, 1), "nothing changed");
        let query = Contacts::List(vec![]);
        assert_eq!(ok_len(process(&cfg, &s, &req(3, query, None), t0)), 1);
    }
}
