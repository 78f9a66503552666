//! DNS for RFC 3263 (locating a gateway): the lookups, done with hickory-resolver under tokio.
//!
//! `Resolver::resolve` asks `net::rfc3263` what to look up (NAPTR of the host, SRV of the
//! owners it names, A/AAAA of the SRV targets or of the host), gathers the answers into
//! `rfc3263::DnsAnswers` and lets `rfc3263::select` order the targets. IP literals never touch
//! DNS. A name that does not exist or has no usable records is an error; a lookup that only
//! finds "no records" for one step (no NAPTR, no SRV) is the normal way down the RFC's steps.
//! Addresses follow hickory's default strategy, IPv4 then IPv6: a host's AAAA records are used
//! only when it has no A record (our listeners are usually IPv4, and a target we cannot reach
//! from them is worse than none).
//!
//! It must never decide anything RFC 3263 says (that is `net::rfc3263`, pure and unit-tested),
//! and nothing of hickory leaves this file.

use crate::net::rfc3263::{self, DnsAnswers, NaptrRecord, Plan, SrvRecord};
use crate::net::Transport;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Why a gateway's host could not be turned into addresses.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The name does not exist (NXDOMAIN) or none of the RFC 3263 steps found an address.
    #[error("{host}: no SIP server found (no NAPTR/SRV/A/AAAA records lead to an address)")]
    NotFound { host: String },
    /// The DNS itself failed (timeout, refused, malformed answer).
    #[error("{host}: DNS lookup of {name} ({kind}) failed: {message}")]
    Lookup {
        host: String,
        name: String,
        kind: &'static str,
        message: String,
    },
}

/// A DNS resolver for gateway hosts. Cheap to clone (hickory shares its state).
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// The system's resolver configuration (`/etc/resolv.conf`). When that cannot be read,
    /// a name server on 127.0.0.1:53, which is what the C library assumes without the file
    /// (rather than sending our lookups to some public resolver unasked).
    pub fn system() -> Resolver {
        let builder = match TokioResolver::builder_tokio() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the system DNS configuration; using 127.0.0.1:53");
                return Resolver::with_nameserver(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    53,
                ));
            }
        };
        Resolver {
            inner: builder.build(),
        }
    }

    /// A resolver asking only `server` over UDP, with no search domains, no hosts file and no
    /// cache: what tests point at a DNS server of their own on loopback.
    pub fn with_nameserver(server: SocketAddr) -> Resolver {
        let mut config = ResolverConfig::new();
        config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.cache_size = 0;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let inner = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build();
        Resolver { inner }
    }

    /// The targets for `host[:port]` over `transport`, best first (RFC 3263 §4).
    pub async fn resolve(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Transport,
    ) -> Result<Vec<(SocketAddr, Transport)>, ResolveError> {
        let mut answers = DnsAnswers::default();
        match rfc3263::plan(host, port, transport) {
            Plan::Literal(addr) => return Ok(vec![(addr, transport)]),
            Plan::Address { host: name, .. } => {
                self.addresses(host, &name, &mut answers).await?;
            }
            Plan::Service { host: name } => {
                for r in self.naptr(host, &name).await? {
                    answers.add_naptr(&name, r);
                }
                let mut found_srv = false;
                for owner in rfc3263::srv_owners(&name, transport, answers.naptr(&name)) {
                    let records = self.srv(host, &owner).await?;
                    if records.is_empty() {
                        continue;
                    }
                    for target in rfc3263::srv_hosts(&records) {
                        self.addresses(host, &target, &mut answers).await?;
                    }
                    for r in records {
                        answers.add_srv(&owner, r);
                    }
                    found_srv = true;
                    break;
                }
                if !found_srv {
                    self.addresses(host, &name, &mut answers).await?;
                }
            }
        }
        let mut rng = rand::thread_rng();
        let targets = rfc3263::select(
            host,
            port,
            transport,
            &answers,
            &mut rfc3263::draw_with(&mut rng),
        );
        if targets.is_empty() {
            return Err(ResolveError::NotFound { host: host.into() });
        }
        tracing::debug!(host, ?targets, "resolved per RFC 3263");
        Ok(targets)
    }

    async fn naptr(&self, host: &str, name: &str) -> Result<Vec<NaptrRecord>, ResolveError> {
        let lookup = self.inner.lookup(absolute(name), RecordType::NAPTR).await;
        let lookup = match none_is_empty(lookup, host, name, "NAPTR")? {
            Some(l) => l,
            None => return Ok(Vec::new()),
        };
        Ok(lookup
            .iter()
            .filter_map(|rd| match rd {
                RData::NAPTR(n) => Some(NaptrRecord {
                    order: n.order(),
                    preference: n.preference(),
                    flags: String::from_utf8_lossy(n.flags()).into_owned(),
                    service: String::from_utf8_lossy(n.services()).into_owned(),
                    replacement: n.replacement().to_ascii(),
                }),
                _ => None,
            })
            .collect())
    }

    async fn srv(&self, host: &str, owner: &str) -> Result<Vec<SrvRecord>, ResolveError> {
        let lookup = self.inner.srv_lookup(absolute(owner)).await;
        let lookup = match none_is_empty(lookup, host, owner, "SRV")? {
            Some(l) => l,
            None => return Ok(Vec::new()),
        };
        Ok(lookup
            .iter()
            .map(|s| SrvRecord {
                priority: s.priority(),
                weight: s.weight(),
                port: s.port(),
                target: s.target().to_ascii(),
            })
            .collect())
    }

    /// A and AAAA of `name` into `answers` (none is not an error here: `select` decides).
    async fn addresses(
        &self,
        host: &str,
        name: &str,
        answers: &mut DnsAnswers,
    ) -> Result<(), ResolveError> {
        let lookup = self.inner.lookup_ip(absolute(name)).await;
        if let Some(ips) = none_is_empty(lookup, host, name, "A/AAAA")? {
            for ip in ips.iter() {
                answers.add_addr(name, ip);
            }
        }
        Ok(())
    }
}

/// Lookups go out as absolute names: a gateway's host is never meant relative to a search
/// domain.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// NXDOMAIN and "no records" are answers (an empty step), anything else is a failure.
fn none_is_empty<T>(
    result: Result<T, hickory_resolver::ResolveError>,
    host: &str,
    name: &str,
    kind: &'static str,
) -> Result<Option<T>, ResolveError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(None),
        Err(e) => Err(ResolveError::Lookup {
            host: host.into(),
            name: name.into(),
            kind,
            message: e.to_string(),
        }),
    }
}
