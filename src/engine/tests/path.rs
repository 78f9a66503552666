//! RFC 3327 Path through the engine: a REGISTER relayed by a trusted edge proxy has its Path
//! stored, echoed only to a UA that supports it, kept out of NAT handling and keep-alives; a
//! Path from anyone else is ignored; the proxy is never throttled by the security guard.

use super::*;

/// The edge proxy (Kamailio) the phones register through.
const PROXY: &str = "10.0.0.1:5060";
/// alice's phone behind its NAT, as its own Via and Contact say.
const PHONE: &str = "192.168.1.20:5060";
const AOR: &str = "alice@192.168.4.4";
const PATH: &str = "<sip:10.0.0.1:5060;lr;received=sip:198.51.100.4:40000>";

fn trusting() -> Net {
    Net::with(|c| c.registrar.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()])
}

/// A REGISTER's extra lines: the phone's Contact, the proxy's Path, and `more`.
fn via_proxy<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut l = vec![
        "Contact: <sip:alice@192.168.1.20:5060>",
        "Expires: 3600",
        "Path: <sip:10.0.0.1:5060;lr;received=sip:198.51.100.4:40000>",
    ];
    l.extend_from_slice(more);
    l
}

#[test]
fn rfc3327_5_3_path_from_a_trusted_proxy_is_stored_and_echoed_only_with_supported_path() {
    let mut net = trusting();
    let mut phone = Phone::new("alice", "1234", PHONE);
    let r = net.register(&mut phone, addr(PROXY), &via_proxy(&["Supported: path"]));
    assert_eq!(r.status, 200, "{}", reason(&r));
    assert_eq!(headers(&r, "Path"), [PATH]);
    assert!(header(&r, "Supported").is_some_and(|s| s.contains("path")));
    assert_eq!(
        headers(&r, "Contact"),
        ["<sip:alice@192.168.1.20:5060>;expires=3600"],
        "the Contact listing is unchanged"
    );
    let b = &net.store.lookup(AOR, net.now)[0];
    assert_eq!(b.path, [PATH]);
    // The Via names 192.168.1.20, the source is 10.0.0.1: NAT, were it not for the Path.
    assert!(!b.nat, "the proxy's address is not the phone's NAT mapping");

    // A refresh without Supported: path stores the Path again but does not echo it
    // (RFC 3261 §8.2.2.3), and a second Path line adds a hop in order.
    let more = via_proxy(&["Path: <sip:core.example;lr>"]);
    let r = net.ask(addr(PROXY), &phone.register(&more));
    assert_eq!(r.status, 200, "{}", reason(&r));
    assert!(headers(&r, "Path").is_empty());
    let b = &net.store.lookup(AOR, net.now)[0];
    assert_eq!(b.path, [PATH, "<sip:core.example;lr>"]);
}

#[test]
fn rfc3327_path_from_an_untrusted_source_is_ignored_and_logged_at_debug() {
    let mut net = Net::new(); // trusted_proxies empty: nobody's Path counts
    let mut phone = Phone::new("alice", "1234", PHONE);
    let mut r = None;
    let logs = logs_of(|| {
        r = Some(net.register(&mut phone, addr(PROXY), &via_proxy(&["Supported: path"])));
    });
    let r = r.unwrap();
    assert_eq!(r.status, 200, "{}", reason(&r));
    assert!(
        headers(&r, "Path").is_empty(),
        "nothing stored, nothing echoed"
    );
    assert!(logs.contains("Path ignored"), "{logs}");
    let b = &net.store.lookup(AOR, net.now)[0];
    assert!(b.path.is_empty());
    assert!(b.nat, "an ordinary NAT'd phone");
}

#[test]
fn rfc3327_require_path_is_understood() {
    let mut net = trusting();
    let mut phone = Phone::new("alice", "1234", PHONE);
    let r = net.register(&mut phone, addr(PROXY), &via_proxy(&["Require: path"]));
    assert_eq!(r.status, 200, "{}", reason(&r));
}

#[test]
fn a_malformed_path_from_the_trusted_proxy_is_a_400() {
    let mut net = trusting();
    let mut phone = Phone::new("alice", "1234", PHONE);
    let lines = [
        "Contact: <sip:alice@192.168.1.20:5060>",
        "Path: <sip:10.0.0.1;lr",
    ];
    let r = net.register(&mut phone, addr(PROXY), &lines);
    assert_eq!(r.status, 400, "{}", reason(&r));
    assert!(net.store.lookup(AOR, net.now).is_empty());
}

#[test]
fn no_keepalive_options_to_a_binding_behind_the_edge_proxy() {
    // Through the proxy: no pings at all, however long we wait.
    let mut net = trusting();
    let mut phone = Phone::new("alice", "1234", PHONE);
    assert_eq!(
        net.register(&mut phone, addr(PROXY), &via_proxy(&[]))
            .status,
        200
    );
    let out = net.advance(Duration::from_secs(120));
    assert!(out.is_empty(), "nothing sent: {out:?}");

    // The same REGISTER from a source that is not trusted is an ordinary NAT'd phone: its
    // first ping leaves one interval (25 s) later.
    let mut net = Net::new();
    let mut phone = Phone::new("alice", "1234", PHONE);
    assert_eq!(
        net.register(&mut phone, addr(PROXY), &via_proxy(&[]))
            .status,
        200
    );
    let out = net.advance(Duration::from_secs(26));
    assert!(!out.is_empty());
    for t in &out {
        assert_eq!(t.to, Peer::new(Transport::Udp, addr(PROXY)));
        assert!(String::from_utf8_lossy(&t.bytes).starts_with("OPTIONS "));
    }
}

#[test]
fn the_trusted_proxy_is_never_rate_limited_by_the_guard() {
    let security = crate::security::SecurityConfig {
        rate_limit: 5,
        allow: Vec::new(),
        ..Default::default()
    };
    let mut net = Net::with(|c| {
        c.security = security;
        c.registrar.trusted_proxies = vec!["10.0.0.1".parse().unwrap()];
    });
    let answered = |net: &mut Net, src: &str| {
        (0..30)
            .filter(|i| {
                !net.udp(addr(src), &options(src, &format!("p{i}")))
                    .is_empty()
            })
            .count()
    };
    assert_eq!(answered(&mut net, PROXY), 30, "every request of the proxy");
    assert!(
        answered(&mut net, "203.0.113.5:5060") < 30,
        "anyone else is limited"
    );
}
