//! `[[gateway]]`: the SIP trunks calls can leave through (a provider's proxy, the account the
//! switch registers and authenticates with), read strictly into [`GatewayConfig`].
//!
//! Only parses and checks; never resolves a name, opens a socket or prints a password.

use super::file::{bad_host, Problems};
use crate::net::Transport;
use serde::Deserialize;
use toml::Spanned;

/// One `[[gateway]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// What dialplan rules call it by (`to = { gateway = "provider" }`): unique,
    /// `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// `proxy` as written: `host[:port]`.
    pub proxy: String,
    /// The host of `proxy`: a DNS name or an IP address (an IPv6 address without the
    /// brackets `proxy` needs around it).
    pub host: String,
    /// The port of `proxy`; `None`: found by DNS (NAPTR/SRV, else 5060; RFC 3263).
    pub port: Option<u16>,
    /// UDP or TCP (TLS to a trunk is not supported yet).
    pub transport: Transport,
    pub username: String,
    pub password: String,
    /// Answer only this realm's challenges; `None` (or `realm = ""`): any realm.
    pub realm: Option<String>,
    /// Keep a registration with the provider.
    pub register: bool,
    /// The registration's requested expiry, in seconds (60 to 86400).
    pub expires: u32,
    /// The user part of From on outbound calls; `None`: the username.
    pub from_user: Option<String>,
    /// Put the caller's number in From (providers that allow it).
    pub caller_id_in_from: bool,
    /// Seconds between OPTIONS keep-alives; 0: off.
    pub ping: u32,
    /// The line of its `[[gateway]]`, for messages.
    pub line: usize,
}

impl GatewayConfig {
    pub const DEFAULT_EXPIRES: u32 = 600;
    pub const DEFAULT_PING: u32 = 30;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    name: Option<Spanned<String>>,
    proxy: Option<Spanned<String>>,
    transport: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    realm: Option<String>,
    register: Option<bool>,
    expires: Option<Spanned<i64>>,
    from_user: Option<Spanned<String>>,
    caller_id_in_from: Option<bool>,
    ping: Option<Spanned<i64>>,
}

/// Why `name` cannot name a gateway, if it cannot.
pub(crate) fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_.-".contains(&b);
    (!name.bytes().all(ok)).then_some("may hold only letters, digits, '_', '.' and '-'")
}

/// Why `s` cannot be a user part (`from_user`, `username`), if it cannot.
fn bad_user_part(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        return Some("must not be empty");
    }
    s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || "@:;<>\"\\,?".contains(c))
        .then_some("may not contain spaces or any of @ : ; < > \" \\ , ?")
}

/// Splits `host[:port]` (`[v6]:port` for IPv6) into the host and the port.
fn split_proxy(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let rest = &s[end + 1..];
                let port = match rest.strip_prefix(':') {
                    Some(p) => Some(p),
                    None if rest.is_empty() => None,
                    None => return Err(format!("{s:?}: only :port may follow ]")),
                };
                (&s[..=end], port)
            }
            None => return Err(format!("{s:?}: no ] closes the IPv6 address")),
        }
    } else if s.matches(':').count() > 1 {
        return Err(format!(
            "{s:?}: write an IPv6 address in brackets, like \"[2001:db8::1]:5060\""
        ));
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(why) = bad_host(host) {
        return Err(format!("{host:?} {why}"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("{p:?} is not a port (1 to 65535)")),
        },
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

pub(super) fn gateways(p: &mut Problems<'_>, raw: Vec<Spanned<RawGateway>>) -> Vec<GatewayConfig> {
    let mut out: Vec<GatewayConfig> = Vec::new();
    for (i, g) in raw.into_iter().enumerate() {
        let Some(g) = gateway(p, g, i) else { continue };
        if let Some(first) = out.iter().find(|o| o.name == g.name) {
            let msg = format!(
                "{:?} is also the name of the gateway at line {}; names must be unique",
                g.name, first.line
            );
            p.bad_at(g.line, &format!("gateway[{i}].name"), msg);
            continue;
        }
        out.push(g);
    }
    out
}

fn gateway(p: &mut Problems<'_>, g: Spanned<RawGateway>, i: usize) -> Option<GatewayConfig> {
    let span = g.span();
    let g = g.into_inner();
    let before = p.errors_len();
    let key = |k: &str| format!("gateway[{i}].{k}");
    let required = |v: Option<Spanned<String>>, k: &str, p: &mut Problems<'_>| match v {
        None => {
            p.bad(Some(span.clone()), &key(k), "is missing".into());
            None
        }
        Some(v) if v.get_ref().trim().is_empty() => {
            p.bad(Some(v.span()), &key(k), "must not be empty".into());
            None
        }
        Some(v) => Some(v),
    };
    let name = required(g.name, "name", p);
    let proxy = required(g.proxy, "proxy", p);
    let username = required(g.username, "username", p);
    let password = required(g.password, "password", p);
    if let Some(why) = name.as_ref().and_then(|n| bad_name(n.get_ref())) {
        let n = name.as_ref()?;
        p.bad(
            Some(n.span()),
            &key("name"),
            format!("{:?} {why}", n.get_ref()),
        );
    }
    if let Some(why) = username.as_ref().and_then(|u| bad_user_part(u.get_ref())) {
        let u = username.as_ref()?;
        p.bad(
            Some(u.span()),
            &key("username"),
            format!("{:?} {why}", u.get_ref()),
        );
    }
    let (host, port) = match &proxy {
        Some(v) => split_proxy(v.get_ref().trim()).unwrap_or_else(|msg| {
            p.bad(Some(v.span()), &key("proxy"), msg);
            (String::new(), None)
        }),
        None => (String::new(), None),
    };
    let transport = match g.transport {
        None => Transport::Udp,
        Some(t) => match Transport::from_token(t.get_ref()) {
            Some(Transport::Tls) => {
                let msg = "tls to a gateway is not supported yet; use \"udp\" or \"tcp\"";
                p.bad(Some(t.span()), &key("transport"), msg.into());
                Transport::Udp
            }
            Some(t) => t,
            None => {
                let msg = format!("{:?} is neither \"udp\" nor \"tcp\"", t.get_ref());
                p.bad(Some(t.span()), &key("transport"), msg);
                Transport::Udp
            }
        },
    };
    let from_user = g.from_user.and_then(|f| match bad_user_part(f.get_ref()) {
        Some(why) => {
            let why = if f.get_ref().is_empty() {
                "must not be empty (leave it out to use the username)"
            } else {
                why
            };
            p.bad(
                Some(f.span()),
                &key("from_user"),
                format!("{:?} {why}", f.get_ref()),
            );
            None
        }
        None => Some(f.into_inner()),
    });
    let mut number =
        |v: Option<Spanned<i64>>, k: &str, ok: &dyn Fn(i64) -> bool, range: &str, d| match v {
            None => d,
            Some(v) if ok(*v.get_ref()) => *v.get_ref() as u32,
            Some(v) => {
                let msg = format!("{} is out of range ({range})", v.get_ref());
                p.bad(Some(v.span()), &key(k), msg);
                d
            }
        };
    let expires = number(
        g.expires,
        "expires",
        &|v| (60..=86_400).contains(&v),
        "60 to 86400 seconds",
        GatewayConfig::DEFAULT_EXPIRES,
    );
    let ping = number(
        g.ping,
        "ping",
        &|v| v == 0 || (5..=3600).contains(&v),
        "0 = off, or 5 to 3600 seconds",
        GatewayConfig::DEFAULT_PING,
    );
    if p.errors_len() > before {
        return None;
    }
    let proxy = proxy?;
    Some(GatewayConfig {
        name: name?.into_inner(),
        proxy: proxy.get_ref().trim().to_string(),
        host,
        port,
        transport,
        username: username?.into_inner(),
        password: password?.into_inner(),
        realm: g.realm.filter(|r| !r.is_empty()),
        register: g.register.unwrap_or(false),
        expires,
        from_user,
        caller_id_in_from: g.caller_id_in_from.unwrap_or(false),
        ping,
        line: p.line_of(&span),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_split_into_host_and_port() {
        let ok = |s: &str| split_proxy(s).unwrap();
        assert_eq!(
            ok("sip.provider.example"),
            ("sip.provider.example".into(), None)
        );
        assert_eq!(
            ok("sip.provider.example:5080"),
            ("sip.provider.example".into(), Some(5080))
        );
        assert_eq!(ok("192.0.2.7:5060"), ("192.0.2.7".into(), Some(5060)));
        assert_eq!(ok("[2001:db8::1]"), ("2001:db8::1".into(), None));
        assert_eq!(ok("[2001:db8::1]:5062"), ("2001:db8::1".into(), Some(5062)));
        for bad in [
            "2001:db8::1",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "host:0",
            "host:99999",
            "host:",
            "bad host",
            "[nope]:5060",
        ] {
            assert!(split_proxy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(bad_name("provider-1.eu_2"), None);
        assert!(bad_name("").is_some());
        assert!(bad_name("my provider").is_some());
        assert!(bad_name("a/b").is_some());
    }
}
