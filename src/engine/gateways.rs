//! Trunks (`[[gateway]]`), the engine's part: where each one is (addresses the driver
//! resolved, RFC 3263, and our address as it reaches us), whether it is up, the b-leg toward
//! it for a dialled number, and recognising the requests it sends us.

use crate::auth::uac::UacCredentials;
use crate::b2bua::{GatewayLeg, LegTarget};
use crate::net::{Peer, Transport};
use std::net::SocketAddr;
use std::sync::Arc;

/// One `[[gateway]]`, as the engine needs it (`app::engine_config` maps the config onto it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    pub name: String,
    /// The provider's host: the domain of our URIs toward it, and what the driver resolves.
    pub host: String,
    /// An explicit port (no SRV lookup then).
    pub port: Option<u16>,
    pub transport: Transport,
    pub username: String,
    pub password: String,
    /// Answer only this realm's challenges.
    pub realm: Option<String>,
    pub register: bool,
    pub expires: u32,
    pub from_user: Option<String>,
    pub caller_id_in_from: bool,
    /// OPTIONS keep-alive interval in seconds; 0: never pinged, always taken as up.
    pub ping: u32,
}

impl GatewaySpec {
    /// `host[:port]` as it goes into URIs.
    pub fn hostport(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

#[derive(Debug)]
pub(super) struct GatewayRt {
    pub spec: GatewaySpec,
    /// Where requests go, best first (resolved by the driver); empty until resolved.
    pub targets: Vec<Peer>,
    /// Our `host:port` as the provider reaches us (Via, Contact).
    pub advertised: Option<String>,
    /// False while its OPTIONS keep-alive goes unanswered.
    pub up: bool,
}

#[derive(Debug, Default)]
pub(super) struct Gateways {
    pub list: Vec<GatewayRt>,
}

impl Gateways {
    pub fn new(specs: &[GatewaySpec]) -> Gateways {
        Gateways {
            list: specs
                .iter()
                .map(|s| GatewayRt {
                    spec: s.clone(),
                    targets: Vec::new(),
                    advertised: None,
                    up: true,
                })
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&GatewayRt> {
        self.list.iter().find(|g| g.spec.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut GatewayRt> {
        self.list.iter_mut().find(|g| g.spec.name == name)
    }

    /// The b-leg toward gateway `name` for `number`; `None` when it is unknown, not
    /// resolved yet, or down.
    pub fn leg(&self, name: &str, number: &str) -> Option<LegTarget> {
        let g = self.get(name)?;
        let peer = *g.targets.first()?;
        let advertised = g.advertised.clone()?;
        if !g.up {
            return None;
        }
        let s = &g.spec;
        let user = crate::b2bua::headers::uri_user(number);
        Some(LegTarget {
            ruri: format!("sip:{user}@{}{}", s.hostport(), s.transport.uri_param()),
            peer,
            advertised,
            gateway: Some(Arc::new(GatewayLeg {
                name: s.name.clone(),
                domain: s.host.clone(),
                number: number.to_string(),
                creds: UacCredentials {
                    username: s.username.clone(),
                    password: s.password.clone(),
                    realm: s.realm.clone(),
                },
                from_user: s.from_user.clone().unwrap_or_else(|| s.username.clone()),
                caller_id_in_from: s.caller_id_in_from,
            })),
        })
    }

    /// The gateway a request comes from: its source is one of a gateway's resolved
    /// addresses (address and port), or it is addressed to the account we register with.
    pub fn recognise(
        &self,
        source: Option<SocketAddr>,
        ruri_user: Option<&str>,
    ) -> Option<&GatewaySpec> {
        if let Some(src) = source {
            if let Some(g) = self
                .list
                .iter()
                .find(|g| g.targets.iter().any(|p| p.addr == src))
            {
                return Some(&g.spec);
            }
        }
        let user = ruri_user?;
        self.list
            .iter()
            .find(|g| g.spec.register && g.spec.username == user)
            .map(|g| &g.spec)
    }
}

/// What the driver learnt of a gateway's whereabouts.
#[derive(Debug, Clone)]
pub struct GatewayRoute {
    pub targets: Vec<(SocketAddr, Transport)>,
    /// Our `host:port` as that gateway reaches us.
    pub advertised: String,
}
