//! The real daemon (`app::start`) on 127.0.0.1 port 0, spoken to over UDP and TCP as phones
//! would: the seed's register flow, the 403s, nc replay, several contacts, 423,
//! unregister-all, OPTIONS, and a TCP registration that records its connection.
//!
//! Timer-driven behaviour (stale nonces, binding expiry) is tested on the engine's virtual
//! clock (`src/engine/tests`), not here: nothing in this file waits for time to pass.

mod common;

use common::ua::{challenge, header, header_names, headers, reason, Ua};
use common::Daemon;
use ferroswitch::engine::ALLOW;
use ferroswitch::net::{Peer, Transport};

const SEED_01: &str = include_str!("data/trace/01-alice-register-noauth.sip");
const SEED_03: &str = include_str!("data/trace/03-alice-register-authorization.sip");

/// A seed message moved to this test's addresses: the phone's 192.168.4.4:5090 becomes the
/// UA's address, the server's 192.168.4.4 the daemon's (rport/branch/tags untouched).
fn relocate(seed: &str, ua: &Ua) -> String {
    seed.replace("192.168.4.4:5090", &ua.local.to_string())
        .replace("192.168.4.4", &ua.domain)
}

#[tokio::test]
async fn seed_register_flow_over_udp() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "alice", "1234").await;

    let r401 = ua.ask(&relocate(SEED_01, &ua)).await;
    assert_eq!((r401.status, reason(&r401).as_str()), (401, "Unauthorized"));
    let ch = challenge(&r401);
    assert_eq!(ch.realm, "127.0.0.1");
    assert_eq!(
        header(&r401, "WWW-Authenticate").unwrap(),
        format!(
            "Digest realm=\"127.0.0.1\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            ch.nonce
        )
    );

    // Message 03 with the digest the seed's Zoiper would compute for this nonce.
    ua.learn(&r401);
    ua.cnonce = "b4c6ac7e57fc76b85df9440994e2ede8".into();
    let uri = format!("sip:{};transport=UDP", ua.domain);
    let auth = {
        let a = ua.auth.as_ref().unwrap();
        ferroswitch::auth::DigestCredentials::answer(
            &a.challenge,
            &ferroswitch::auth::Answer {
                username: "alice",
                password: "1234",
                method: "REGISTER",
                uri: &uri,
                body: b"",
                cnonce: &ua.cnonce,
                nc: 1,
            },
        )
    };
    let msg03: String = relocate(SEED_03, &ua)
        .split("\r\n")
        .map(|l| {
            if l.starts_with("Authorization:") {
                format!("Authorization: {auth}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let r200 = ua.ask(&msg03).await;
    assert_eq!((r200.status, reason(&r200).as_str()), (200, "OK"));
    let contact = format!(
        "<sip:alice@{};rinstance=d42207a765c0626b;transport=UDP>;expires=3600",
        ua.local
    );
    assert_eq!(headers(&r200, "Contact"), [contact.as_str()]);
    let date = header(&r200, "Date").expect("a Date header");
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");

    let b = d.bindings("alice@127.0.0.1");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].source, Peer::new(Transport::Udp, ua.local));
    assert!(!b[0].nat);
    assert_eq!(b[0].connection, None);
    d.stats_until("one registration", |s| s.registrations == 1)
        .await;
    d.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_403() {
    let d = Daemon::start();
    let mut wrong = Ua::udp(d.udp, "alice", "4321").await;
    let mut nobody = Ua::udp(d.udp, "mallory", "1234").await;
    let mut disabled = Ua::udp(d.udp, "carol", "carol-secret-99").await;

    let f1 = wrong.register(&[]).await;
    let f2 = nobody.register(&[]).await;
    let f3 = disabled.register(&[]).await;
    assert_eq!((f1.status, reason(&f1).as_str()), (403, "Forbidden"));
    for f in [&f2, &f3] {
        assert_eq!(f.status, f1.status);
        assert_eq!(f.reason, f1.reason);
        assert_eq!(header_names(f), header_names(&f1));
    }
    assert_eq!(d.counts(), (0, 0));
    d.stats_until("three failures", |s| s.auth_failures == 3)
        .await;
    d.stop().await;
}

#[tokio::test]
async fn replayed_nc_gets_401_stale() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "alice", "1234").await;
    assert_eq!(ua.register(&[]).await.status, 200);
    // A refresh with the next nc on the same nonce is accepted …
    let msg = ua.register_request(&[]);
    assert_eq!(ua.ask(&msg).await.status, 200);
    // … the same nc again (new transaction) is a replay.
    ua.auth.as_mut().unwrap().nc -= 1;
    let msg = ua.register_request(&[]);
    let r = ua.ask(&msg).await;
    assert!(challenge(&r).stale, "stale=true for a replayed nc");
    ua.learn(&r);
    let msg = ua.register_request(&[]);
    assert_eq!(ua.ask(&msg).await.status, 200);
    d.stop().await;
}

#[tokio::test]
async fn several_contacts_then_expires_0_removes_one() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "1000", "Z2OG9aVSfDmCMEFyEOOQ").await;
    let r = ua
        .register(&[
            "Contact: <sip:1000@127.0.0.1:7001>;expires=600, <sip:1000@127.0.0.1:7002>",
            "Contact: <sip:1000@127.0.0.1:7003>;expires=120",
            "Expires: 1800",
        ])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        headers(&r, "Contact"),
        [
            "<sip:1000@127.0.0.1:7001>;expires=600",
            "<sip:1000@127.0.0.1:7002>;expires=1800",
            "<sip:1000@127.0.0.1:7003>;expires=120"
        ]
    );
    assert_eq!(d.bindings("1000@127.0.0.1").len(), 3);

    let msg = ua.register_request(&["Contact: <sip:1000@127.0.0.1:7002>;expires=0"]);
    let r = ua.ask(&msg).await;
    assert_eq!(headers(&r, "Contact").len(), 2);
    let left: Vec<String> = d
        .bindings("1000@127.0.0.1")
        .into_iter()
        .map(|b| b.contact)
        .collect();
    assert_eq!(left, ["sip:1000@127.0.0.1:7001", "sip:1000@127.0.0.1:7003"]);
    d.stop().await;
}

#[tokio::test]
async fn interval_too_brief_is_423_with_min_expires() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "bob", "1234").await;
    let contact = format!("Contact: <{}>", ua.contact_uri());
    let r = ua.register(&[&contact, "Expires: 30"]).await;
    assert_eq!((r.status, reason(&r).as_str()), (423, "Interval Too Brief"));
    assert_eq!(header(&r, "Min-Expires"), Some("60"));
    assert_eq!(d.counts(), (0, 0));
    d.stop().await;
}

#[tokio::test]
async fn unregister_all_with_star() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "alice", "1234").await;
    let r = ua
        .register(&["Contact: <sip:alice@127.0.0.1:7001>, <sip:alice@127.0.0.1:7002>"])
        .await;
    assert_eq!(headers(&r, "Contact").len(), 2);
    let msg = ua.register_request(&["Contact: *", "Expires: 0"]);
    let r = ua.ask(&msg).await;
    assert_eq!(r.status, 200);
    assert!(headers(&r, "Contact").is_empty());
    assert_eq!(d.counts(), (0, 0));
    d.stats_until("one unregistration", |s| s.unregistrations == 1)
        .await;
    d.stop().await;
}

#[tokio::test]
async fn options_over_udp_and_tcp() {
    let d = Daemon::start();
    let mut udp = Ua::udp(d.udp, "monitor", "").await;
    let mut tcp = Ua::tcp(d.tcp, "monitor", "").await;
    for ua in [&mut udp, &mut tcp] {
        let msg = ua.options_request();
        let r = ua.ask(&msg).await;
        assert_eq!(
            (r.status, reason(&r).as_str()),
            (200, "OK"),
            "{:?}",
            ua.transport()
        );
        assert_eq!(header(&r, "Allow"), Some(ALLOW));
        assert_eq!(header(&r, "Accept"), Some("application/sdp"));
    }
    d.stop().await;
}

#[tokio::test]
async fn malformed_request_gets_400_and_the_next_is_served() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "monitor", "").await;
    let broken = ua
        .options_request()
        .replace("Content-Length: 0", "Content-Length: 40");
    let r = ua.ask(&broken).await;
    assert_eq!(r.status, 400);
    let msg = ua.options_request();
    assert_eq!(ua.ask(&msg).await.status, 200);
    d.stop().await;
}

#[tokio::test]
async fn register_over_tcp_records_the_connection() {
    let d = Daemon::start();
    let mut ua = Ua::tcp(d.tcp, "bob", "1234").await;
    let r = ua.register(&[]).await;
    assert_eq!(r.status, 200);
    let contact = format!("<{}>;expires=3600", ua.contact_uri());
    assert_eq!(headers(&r, "Contact"), [contact.as_str()]);
    let b = d.bindings("bob@127.0.0.1");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].source, Peer::new(Transport::Tcp, ua.local));
    assert!(
        b[0].connection.is_some(),
        "the binding names its TCP connection"
    );
    assert!(!b[0].nat);

    // Over the same connection a second REGISTER (refresh) keeps it.
    let msg = ua.register_request(&[]);
    assert_eq!(ua.ask(&msg).await.status, 200);
    assert_eq!(d.bindings("bob@127.0.0.1")[0].connection, b[0].connection);
    d.stop().await;
}

/// Issue 17.3: with `domain` unset only our own addresses are served; a REGISTER for any
/// other host is refused before any digest work and stores nothing.
#[tokio::test]
async fn foreign_host_register_is_refused_with_domain_unset() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "alice", "1234").await;
    ua.domain = "evil.example".into();
    let msg = ua.register_request(&[]);
    let r = ua.ask(&msg).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "Forbidden - Domain Not Served")
    );
    assert!(header(&r, "WWW-Authenticate").is_none());
    // Our own address is still served, to the same phone.
    ua.domain = d.udp.ip().to_string();
    assert_eq!(ua.register(&[]).await.status, 200);
    assert_eq!(d.bindings("alice@evil.example").len(), 0);
    assert_eq!(d.counts(), (1, 1));
    let s = d.stats();
    assert_eq!(s.auth_challenges, 1, "only our own host was challenged");
    d.stop().await;
}

/// Issue 17.5: a Contact naming the daemon's own socket would make it call itself.
#[tokio::test]
async fn contact_pointing_at_the_daemon_is_refused() {
    let d = Daemon::start();
    let mut ua = Ua::udp(d.udp, "alice", "1234").await;
    let contact = format!("Contact: <sip:0044123456@{}>", d.udp);
    let r = ua.register(&[contact.as_str(), "Expires: 3600"]).await;
    assert_eq!(
        (r.status, reason(&r).as_str()),
        (403, "Forbidden - Contact Not Allowed")
    );
    assert_eq!(d.counts(), (0, 0));
    d.stop().await;
}
