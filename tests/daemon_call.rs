//! The seed's call through the real daemon (`app::start` on 127.0.0.1 port 0): bob's X-Lite
//! messages 06, 08 and 09 moved to this test's addresses, alice a registered UA answering
//! like Zoiper. Every message the daemon sends is read in order and checked (100/407, the
//! b-leg INVITE with a new Call-ID, Max-Forwards 69 and bob's identity, 180, ACK, 200, BYE
//! with the Q.850 Reason), then the CDR line in the configured `cdr_file`. A second call
//! reaches alice over TCP, a third over TLS (certificate reload checked beside it).
//!
//! Timers are tested on the engine's virtual clock (`src/engine/tests/calls`); nothing here
//! waits for time to pass except the bounded wait for the CDR file.

mod common;

use common::ua::{challenge, header, reason, Ua};
use common::{Daemon, CONFIG_TOML, USERS_TOML, WAIT};
use ferroswitch::auth::{Answer, DigestCredentials};
use ferroswitch::sip::{response_to, set_to_tag, HeaderName, Message, Method, Request, Response};
use std::time::Duration;

const SEED_06: &str = include_str!("data/trace/06-bob-invite-noauth.headers");
const SEED_08: &str = include_str!("data/trace/08-bob-ack-407.sip");
const SEED_09: &str = include_str!("data/trace/09-bob-invite-proxy-authorization.headers");
const SEED_A_CALL_ID: &str = "YWEwYjNlZTZjOWZjNDg3ZjU3MjQ3MTA1ZmQ1MDM5YmQ.";
const REASON: &str = "Q.850;cause=16;text=\"NORMAL_CLEARING\"";

fn sdp(who: &str, port: u16) -> String {
    format!(
        "v=0\r\no={who} 1 1 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

/// Media is anchored (`[media] mode = "relay"`, the default, as FreeSWITCH does in the
/// seed): `got` is `sent` with our origin and a relay port of the default range in its `m=`
/// line; every other line (codecs, attributes) is the phone's.
fn assert_anchored(got: &[u8], sent: &str) {
    let got = std::str::from_utf8(got).expect("SDP is text");
    let ours = |l: &&str| !l.starts_with("o=") && !l.starts_with("m=");
    let (g, s): (Vec<&str>, Vec<&str>) = (
        got.lines().filter(ours).collect(),
        sent.lines().filter(ours).collect(),
    );
    assert_eq!(g, s, "only o= and m= change:\n{got}");
    let port: u16 = got
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("an audio line");
    assert!((16384..=32767).contains(&port), "relay port {port}");
    assert!(
        !sent.contains(&format!("m=audio {port} ")),
        "not the phone's port"
    );
    assert!(got.contains("o=- "), "our origin:\n{got}");
}

/// A seed message of bob's at this test's addresses, with `body` and its Content-Length.
fn relocate(seed: &str, bob: &Ua, body: &str) -> String {
    let text = seed
        .replace("192.168.4.4:26000", &bob.local.to_string())
        .replace("192.168.4.4", &bob.domain);
    let head: Vec<&str> = text
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.starts_with("Content-Length:"))
        .collect();
    format!(
        "{}\r\nContent-Length: {}\r\n\r\n{body}",
        head.join("\r\n"),
        body.len()
    )
}

fn req_header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get_str(&HeaderName::from_wire(name))
}

/// Our response to a request the daemon sent: To tag, Contact on 1xx/2xx, SDP body.
fn answer(ua: &Ua, req: &Request, status: u16, body: &str) -> String {
    let mut r = response_to(req, status, ferroswitch::sip::reason_phrase(status));
    if status > 100 {
        set_to_tag(&mut r, &ua.tag);
    }
    if (101..300).contains(&status) {
        r.headers
            .push(HeaderName::Contact, format!("<{}>", ua.contact_uri()));
    }
    if !body.is_empty() {
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = body.as_bytes().to_vec().into();
    }
    String::from_utf8(r.to_bytes().to_vec()).expect("UTF-8")
}

async fn response(ua: &mut Ua) -> Response {
    match ua.recv().await {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// A request in the dialog `ua` has with `peer_req`'s sender, as its UAS (alice after
/// answering the b-leg INVITE): From = the INVITE's To with our tag, To = its From.
fn uas_request(ua: &Ua, inv: &Request, method: &str, cseq: u32) -> String {
    let target = req_header(inv, "Contact")
        .and_then(|c| c.split(['<', '>']).nth(1))
        .expect("a Contact in the INVITE")
        .to_string();
    let t = ua.transport();
    [
        format!("{method} {target} SIP/2.0"),
        format!(
            "Via: SIP/2.0/{t} {};branch=z9hG4bK-uas-{cseq};rport",
            ua.local
        ),
        "Max-Forwards: 70".into(),
        format!("From: {};tag={}", req_header(inv, "To").unwrap(), ua.tag),
        format!("To: {}", req_header(inv, "From").unwrap()),
        format!("Call-ID: {}", inv.headers.call_id().unwrap()),
        format!("CSeq: {cseq} {method}"),
        format!("Contact: <{}>", ua.contact_uri()),
        "Content-Length: 0".into(),
    ]
    .join("\r\n")
        + "\r\n\r\n"
}

/// A request in bob's a-leg dialog: target and To tag from the 200 he got.
fn uac_request(bob: &Ua, ok: &Response, method: &str, cseq: u32, branch: &str) -> String {
    let target = header(ok, "Contact")
        .and_then(|c| c.split(['<', '>']).nth(1))
        .expect("a Contact in the 200")
        .to_string();
    [
        format!("{method} {target} SIP/2.0"),
        format!("Via: SIP/2.0/UDP {};branch={branch};rport", bob.local),
        "Max-Forwards: 70".into(),
        format!("To: {}", header(ok, "To").unwrap()),
        format!("From: {}", header(ok, "From").unwrap()),
        format!("Call-ID: {SEED_A_CALL_ID}"),
        format!("CSeq: {cseq} {method}"),
        "Content-Length: 0".into(),
    ]
    .join("\r\n")
        + "\r\n\r\n"
}

/// The config the tests use, with CDRs in `cdr.jsonl` beside it.
fn config() -> String {
    format!("{CONFIG_TOML}\n[calls]\ncdr_file = \"cdr.jsonl\"\ncall_timeout = 30\n")
}

/// The CDR lines once `n` are there (the driver writes them after flushing its sends).
async fn cdr_lines(d: &Daemon, n: usize) -> Vec<serde_json::Value> {
    let path = d.dir().join("cdr.jsonl");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).expect("each CDR line is JSON"))
                .collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "no CDR in {path:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// bob's seed 06 → 407 → 08 → 09 → 100; returns alice's b-leg INVITE.
async fn seed_invite(bob: &mut Ua, alice: &mut Ua, offer: &str) -> Request {
    bob.send(&relocate(SEED_06, bob, offer)).await;
    // The 407 is sent statelessly: no 100 Trying before it (one datagram in, one out).
    let r407 = response(bob).await;
    assert_eq!(r407.headers.cseq().map(|c| c.seq), Some(1));
    assert_eq!(
        (r407.status, reason(&r407).as_str()),
        (407, "Proxy Authentication Required")
    );
    let ch = challenge(&r407);
    assert_eq!(ch.realm, "127.0.0.1");
    let tag = r407.headers.to_tag().expect("a To tag on the 407");
    bob.send(&relocate(SEED_08, bob, "").replace("B4pem31jHgtHS", &tag))
        .await;

    let uri = format!("sip:alice@{}", bob.domain);
    let creds = DigestCredentials::answer(
        &ch,
        &Answer {
            username: "bob",
            password: "1234",
            method: "INVITE",
            uri: &uri,
            body: offer.as_bytes(),
            cnonce: "c164b74f625ff2161bd8d47dba3a0ee2",
            nc: 1,
        },
    );
    let msg09: String = relocate(SEED_09, bob, offer)
        .split("\r\n")
        .map(|l| match l.starts_with("Proxy-Authorization:") {
            true => format!("Proxy-Authorization: {creds}"),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    bob.send(&msg09).await;
    let trying = response(bob).await;
    assert_eq!(trying.status, 100, "{}", reason(&trying));
    assert_eq!(trying.headers.cseq().map(|c| c.seq), Some(2));
    alice.recv_request().await
}

#[tokio::test]
async fn seed_call_over_udp_alice_hangs_up() {
    let d = Daemon::start_with(&config(), USERS_TOML);
    let mut alice = Ua::udp(d.udp, "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200);
    let mut bob = Ua::udp(d.udp, "bob", "1234").await;
    let offer = sdp("bob", 8000);

    let inv = seed_invite(&mut bob, &mut alice, &offer).await;
    assert_eq!(inv.method, Method::Invite);
    assert_eq!(inv.uri_str(), Some(alice.contact_uri().as_str()));
    let b_call_id = inv.headers.call_id().unwrap().to_string();
    assert_ne!(b_call_id, SEED_A_CALL_ID, "a new Call-ID");
    assert_eq!(inv.headers.max_forwards(), Some(69));
    let from = inv.headers.from().unwrap();
    assert_eq!(from.display_name_lossy().as_deref(), Some("Bob"));
    assert_eq!(from.uri.user(), Some("bob"));
    assert_ne!(from.tag(), Some("15c8325a"), "a new From tag");
    assert_eq!(
        req_header(&inv, "Remote-Party-ID"),
        Some("\"Bob\" <sip:bob@127.0.0.1>;party=calling;screen=yes;privacy=off")
    );
    assert_eq!(
        req_header(&inv, "P-Asserted-Identity"),
        Some("\"Bob\" <sip:bob@127.0.0.1>")
    );
    assert_eq!(req_header(&inv, "Proxy-Authorization"), None);
    assert_anchored(&inv.body, &offer);
    assert_eq!(inv.headers.vias().len(), 1);

    alice.send(&answer(&alice, &inv, 100, "")).await;
    alice.send(&answer(&alice, &inv, 180, "")).await;
    let r180 = response(&mut bob).await;
    assert_eq!(r180.status, 180);
    assert_eq!(r180.headers.call_id(), Some(SEED_A_CALL_ID));
    let a_tag = r180.headers.to_tag().expect("a To tag");

    let sdp_alice = sdp("alice", 9000);
    alice.send(&answer(&alice, &inv, 200, &sdp_alice)).await;
    let ack = alice.recv_request().await;
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.call_id(), Some(b_call_id.as_str()));
    assert_eq!(
        ack.headers.cseq().map(|c| c.seq),
        inv.headers.cseq().map(|c| c.seq)
    );
    let ok = response(&mut bob).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.to_tag(), Some(a_tag));
    assert_anchored(&ok.body, &sdp_alice);
    assert_eq!(
        header(&ok, "Remote-Party-ID"),
        Some("<sip:alice@127.0.0.1>;party=called;screen=yes;privacy=off")
    );
    bob.send(&uac_request(&bob, &ok, "ACK", 2, "z9hG4bK-ack-2"))
        .await;

    // alice hangs up: 200 to her, then BYE to bob with the seed's Reason.
    alice.send(&uas_request(&alice, &inv, "BYE", 1)).await;
    let bye_ok = response(&mut alice).await;
    assert_eq!(bye_ok.status, 200);
    assert_eq!(bye_ok.headers.cseq().map(|c| c.method), Some(Method::Bye));
    let bye = bob.recv_request().await;
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(req_header(&bye, "Reason"), Some(REASON));
    assert_eq!(bye.headers.call_id(), Some(SEED_A_CALL_ID));
    assert_eq!(bye.headers.to_tag().as_deref(), Some("15c8325a"));
    bob.reply(&bye, 200, "OK", &[]).await;

    let cdr = cdr_lines(&d, 1).await;
    assert_eq!(cdr.len(), 1);
    let c = &cdr[0];
    assert_eq!(c["a_leg_call_id"], SEED_A_CALL_ID);
    assert_eq!(c["b_leg_call_id"], b_call_id.as_str());
    assert_eq!(c["caller"]["user"], "bob");
    assert_eq!(c["caller"]["display_name"], "Bob");
    assert_eq!(c["callee"]["user"], "alice");
    assert_eq!(c["hangup_cause"], "NORMAL_CLEARING");
    assert_eq!(c["hangup_cause_code"], 16);
    assert_eq!(c["sip_status"], 200);
    assert_eq!(c["hangup_side"], "callee");
    assert!(c["answer_time"].is_string());
    assert!(c["billsec"]
        .as_u64()
        .is_some_and(|s| s <= c["duration"].as_u64().unwrap()));
    d.stats_until("the call ended", |s| {
        s.calls_ended == 1 && s.active_calls == 0
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn call_to_alice_over_tcp_bob_hangs_up() {
    let d = Daemon::start_with(&config(), USERS_TOML);
    let mut alice = Ua::tcp(d.tcp, "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200);
    let mut bob = Ua::udp(d.udp, "bob", "1234").await;

    let inv = seed_invite(&mut bob, &mut alice, &sdp("bob", 8000)).await;
    let via = inv.headers.top_via().expect("our Via");
    assert_eq!(via.transport, "TCP");
    assert_eq!(via.port, Some(d.tcp.port()));
    assert_eq!(inv.headers.max_forwards(), Some(69));
    assert!(req_header(&inv, "Contact").is_some_and(|c| c.contains(";transport=tcp")));

    alice.send(&answer(&alice, &inv, 180, "")).await;
    assert_eq!(response(&mut bob).await.status, 180);
    alice
        .send(&answer(&alice, &inv, 200, &sdp("alice", 9000)))
        .await;
    assert_eq!(alice.recv_request().await.method, Method::Ack);
    let ok = response(&mut bob).await;
    assert_eq!(ok.status, 200);
    bob.send(&uac_request(&bob, &ok, "ACK", 2, "z9hG4bK-ack-2"))
        .await;

    bob.send(&uac_request(&bob, &ok, "BYE", 3, "z9hG4bK-bye-3"))
        .await;
    let bye_ok = response(&mut bob).await;
    assert_eq!(
        (bye_ok.status, bye_ok.headers.cseq().map(|c| c.seq)),
        (200, Some(3))
    );
    let bye = alice.recv_request().await;
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.headers.call_id(), inv.headers.call_id());
    assert_eq!(req_header(&bye, "Reason"), Some(REASON));
    assert_eq!(bye.headers.top_via().unwrap().transport, "TCP");
    alice.reply(&bye, 200, "OK", &[]).await;

    let cdr = cdr_lines(&d, 1).await;
    assert_eq!(cdr[0]["hangup_side"], "caller");
    assert_eq!(cdr[0]["hangup_cause"], "NORMAL_CLEARING");
    d.stats_until("the call ended", |s| {
        s.calls_ended == 1 && s.active_calls == 0
    })
    .await;
    d.stop().await;
}

/// The daemon with a TLS listener too, its certificate from a CA made here.
fn start_with_tls(ca: &common::tls::TestCa) -> Daemon {
    let dir = common::TempDir::new("daemon-tls");
    ca.issue("ferroswitch").write(dir.path(), "");
    let config = config().replace(
        "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]",
        "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]",
    ) + "\n[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\n";
    Daemon::start_in(dir, &config, USERS_TOML)
}

#[tokio::test]
async fn alice_registered_over_tls_is_called_on_her_tls_connection_from_bob_on_udp() {
    let ca = common::tls::TestCa::new("call");
    let d = start_with_tls(&ca);
    let tls = d.tls.expect("a TLS listener");
    let mut alice = Ua::tls(tls, ca.client(), "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200);
    let b = d.bindings("alice@127.0.0.1");
    assert_eq!(b[0].source.transport, ferroswitch::net::Transport::Tls);
    let mut bob = Ua::udp(d.udp, "bob", "1234").await;

    let inv = seed_invite(&mut bob, &mut alice, &sdp("bob", 8000)).await;
    let via = inv.headers.top_via().expect("our Via");
    assert_eq!(
        (via.transport.as_str(), via.port),
        ("TLS", Some(tls.port()))
    );
    assert!(req_header(&inv, "Contact").is_some_and(|c| c.contains(";transport=tls")));

    alice
        .send(&answer(&alice, &inv, 200, &sdp("alice", 9000)))
        .await;
    assert_eq!(alice.recv_request().await.method, Method::Ack);
    let ok = response(&mut bob).await;
    assert_eq!(ok.status, 200);
    // bob's leg stays UDP: no transport parameter in the Contact he gets.
    assert!(header(&ok, "Contact").is_some_and(|c| !c.contains("transport=")));
    bob.send(&uac_request(&bob, &ok, "ACK", 2, "z9hG4bK-ack-2"))
        .await;
    bob.send(&uac_request(&bob, &ok, "BYE", 3, "z9hG4bK-bye-3"))
        .await;
    assert_eq!(response(&mut bob).await.status, 200);
    let bye = alice.recv_request().await;
    assert_eq!(bye.headers.top_via().unwrap().transport, "TLS");
    alice.reply(&bye, 200, "OK", &[]).await;

    // Everything reached alice on the connection she opened: none opened towards her.
    let st = d.transport_stats();
    assert_eq!((st.tls_handshakes, st.connections_opened), (1, 0), "{st:?}");
    let cdr = &cdr_lines(&d, 1).await[0];
    assert_eq!(cdr["hangup_cause"], "NORMAL_CLEARING");
    assert_eq!(
        (&cdr["caller_transport"], &cdr["callee_transport"]),
        (&serde_json::json!("UDP"), &serde_json::json!("TLS")),
        "a call from a UDP leg to a TLS leg"
    );
    d.stop().await;
}

#[tokio::test]
async fn reload_after_renewal_serves_the_new_certificate_and_keeps_registered_phones() {
    let ca = common::tls::TestCa::new("renew");
    let d = start_with_tls(&ca);
    let tls = d.tls.expect("a TLS listener");
    let mut alice = Ua::tls(tls, ca.client(), "alice", "1234").await;
    assert_eq!(alice.register(&[]).await.status, 200);

    let renewed = ca.issue("renewed");
    renewed.write(d.dir(), "");
    d.reload_tls().expect("reloaded");
    let fresh = common::tls::connect(ca.client(), tls).await.unwrap();
    let served = fresh.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(served, renewed.der);

    // A broken renewal (key of another certificate) is refused; the renewed pair stays.
    std::fs::write(d.dir().join("key.pem"), ca.issue("other").key_pem).unwrap();
    assert!(d.reload_tls().unwrap_err().contains("is not the key"));

    // alice's connection from before the reload still works.
    let opts = alice.options_request();
    assert_eq!(alice.ask(&opts).await.status, 200);
    d.stop().await;
}
