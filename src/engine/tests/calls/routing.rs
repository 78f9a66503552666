//! Routing through the dialplan and trunks, end to end through dispatch on the virtual
//! clock: the gateway's registration with digest, a call dialled out through it (the
//! provider's 407 answered with the gateway's credentials, the number rewritten, the caller
//! ID asserted), a call in from the trunk to a DID, toll fraud refused, a sequential group,
//! and forwarding on busy.

use super::*;
use crate::engine::{GatewayRoute, GatewaySpec};
use crate::routing::Dialplan;

/// The provider's registrar and proxy.
pub(super) const PROVIDER: &str = "192.0.2.50:5060";

pub(super) const DIALPLAN: &str = r#"
[[context.default.route]]
name = "extensions"
match = '^(alice|bob|carol|1\d{3})$'
to = { user = "$1" }

[[context.default.route]]
name = "outbound"
match = '^9(\d{7,15})$'
to = { gateway = "provider", number = "+1$1" }
caller_id = { number = "+15551230000", name = "Example Ltd" }

[[context.default.route]]
name = "sales"
match = '^200$'
to = { group = ["alice", "bob"], strategy = "sequential", timeout = 10 }

[[context.default.route]]
name = "barred"
match = '^666$'
reject = { status = 403, reason = "Barred Number" }

[[context.default.route]]
name = "moved"
match = '^777$'
to = { redirect = "sip:1000@192.0.2.80" }

[[context.public.route]]
name = "main number"
match = '^\+?15551230000$'
to = { user = "alice" }
"#;

pub(super) fn provider_spec() -> GatewaySpec {
    GatewaySpec {
        name: "provider".into(),
        host: "192.0.2.50".into(),
        port: Some(5060),
        transport: Transport::Udp,
        username: "acct1234".into(),
        password: "trunk-secret".into(),
        realm: None,
        register: true,
        expires: 600,
        from_user: None,
        caller_id_in_from: false,
        ping: 0,
    }
}

/// The call network with the dialplan above and the provider resolved.
pub(super) fn routed_net() -> Net {
    routed_net_with(true)
}

pub(super) fn routed_net_with(gateway: bool) -> Net {
    let mut net = Net::calls_with(|c| {
        if gateway {
            c.gateways = vec![provider_spec()];
        }
    });
    let plan = Dialplan::parse(DIALPLAN, std::path::Path::new("dialplan.toml"))
        .expect("the test dialplan parses");
    net.engine.set_dialplan(Arc::new(plan));
    if !gateway {
        return net;
    }
    let now = net.now;
    assert!(net.engine.set_gateway_route(
        now,
        "provider",
        GatewayRoute {
            targets: vec![(addr(PROVIDER), Transport::Udp)],
            advertised: SERVER.into(),
        },
    ));
    net
}

pub(super) fn provider() -> Ua {
    Ua::new(PROVIDER, "sip:acct1234@192.0.2.50:5060", "prov1")
}

/// A provider's challenge to `req` (401 for REGISTER, 407 for INVITE).
pub(super) fn challenge(req: &Request, status: u16, nonce: &str) -> String {
    let mut r = crate::sip::response_to(req, status, crate::sip::reason_phrase(status));
    crate::sip::set_to_tag(&mut r, "prov-chal");
    let name = if status == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    r.headers.push(
        HeaderName::from_wire(name),
        format!(
            "Digest realm=\"sip.provider.example\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5"
        ),
    );
    text(&r)
}

/// Registers the gateway: REGISTER → 401 → REGISTER with Authorization → 200.
pub(super) fn register_gateway(net: &mut Net) {
    let sent = Sent::from(net.drain());
    let reg = sent.request(PROVIDER, Method::Register);
    assert_eq!(reg.uri_str(), Some("sip:192.0.2.50:5060"));
    assert!(req_header(&reg, "To").is_some_and(|t| t.contains("sip:acct1234@192.0.2.50")));
    assert!(req_header(&reg, "Contact").is_some_and(|c| c.contains("acct1234@192.168.4.4:5060")));
    let sent = net.send(PROVIDER, &challenge(&reg, 401, "n-reg-1"));
    let reg2 = sent.request(PROVIDER, Method::Register);
    let auth = req_header(&reg2, "Authorization").expect("the REGISTER answers the challenge");
    assert!(
        auth.contains("username=\"acct1234\"") && auth.contains("nc=00000001"),
        "{auth}"
    );
    let mut ok = crate::sip::response_to(&reg2, 200, "OK");
    crate::sip::set_to_tag(&mut ok, "prov-reg");
    ok.headers.push(
        HeaderName::Contact,
        format!(
            "{};expires=600",
            req_header(&reg2, "Contact").expect("Contact")
        ),
    );
    assert!(net.send(PROVIDER, &text(&ok)).is_empty());
    let status = net.engine.gateways(net.now);
    assert_eq!(status[0].registration, "registered", "{status:?}");
}

#[test]
fn the_gateway_registers_with_digest_and_refreshes_before_expiry() {
    let mut net = routed_net();
    register_gateway(&mut net);
    // Nothing more until the refresh, well before the 600 s run out.
    let sent = net.after(Duration::from_secs(400));
    assert!(
        sent.requests(PROVIDER, Method::Register).is_empty(),
        "{:?}",
        sent.ladder()
    );
    let cseqs = |sent: &Sent| -> Vec<u32> {
        let mut v: Vec<u32> = sent
            .requests(PROVIDER, Method::Register)
            .iter()
            .filter_map(|r| r.headers.cseq().map(|c| c.seq))
            .collect();
        v.dedup();
        v
    };
    let first = cseqs(&net.after(Duration::from_secs(160)));
    assert_eq!(
        first.len(),
        1,
        "one refresh at 540 s (retransmitted while unanswered): {first:?}"
    );
    // Unanswered, it times out at 572 s with 28 s of the binding left: tried once more
    // before expiry (half the time left), not after the 30 s back-off.
    let mut later = cseqs(&net.after(Duration::from_secs(40)));
    later.retain(|c| !first.contains(c));
    assert_eq!(later, [first[0] + 1], "one retry before expiry");
}

#[test]
fn a_call_dialled_out_reaches_the_provider_with_the_rewritten_number_and_its_credentials() {
    let mut net = routed_net();
    register_gateway(&mut net);
    let mut bob = Caller::bob();
    let offer = sdp("bob", 8000, "");
    let sent = net.send(BOB, &bob.invite_to("95551234567", &[], &offer));
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    let sent = net.send(BOB, &bob.invite_to("95551234567", &[], &offer));
    let inv = sent.request(PROVIDER, Method::Invite);
    assert_eq!(inv.uri_str(), Some("sip:+15551234567@192.0.2.50:5060"));
    assert_eq!(
        req_header(&inv, "To"),
        Some("<sip:+15551234567@192.0.2.50>")
    );
    assert_eq!(
        req_header(&inv, "P-Asserted-Identity"),
        Some("\"Example Ltd\" <sip:+15551230000@192.0.2.50>")
    );
    assert!(req_header(&inv, "From").is_some_and(|f| f.contains("<sip:acct1234@192.0.2.50>")));
    assert!(
        req_header(&inv, "Proxy-Authorization").is_none(),
        "bob's credentials never leave"
    );
    // The provider challenges: the switch answers with the gateway's account.
    let prov = provider();
    let sent = net.send(PROVIDER, &challenge(&inv, 407, "n-call-1"));
    let ack = sent.request(PROVIDER, Method::Ack);
    assert_eq!(ack.headers.call_id(), inv.headers.call_id());
    let inv2 = sent.request(PROVIDER, Method::Invite);
    let auth = req_header(&inv2, "Proxy-Authorization").expect("answered");
    assert!(
        auth.contains("username=\"acct1234\"") && !auth.contains("bob"),
        "{auth}"
    );
    assert_eq!(inv2.headers.call_id(), inv.headers.call_id());
    assert!(sent.responses(BOB).is_empty(), "bob sees none of it");
    let sent = net.send(
        PROVIDER,
        &prov.respond(&inv2, 200, &[], &sdp("pstn", 7000, "")),
    );
    sent.response(BOB, 200);
}

#[test]
fn toll_fraud_unauthenticated_calls_for_outside_numbers_never_reach_the_provider() {
    let mut net = routed_net();
    register_gateway(&mut net);
    // From a stranger, and from bob's own address without credentials: 407, nothing out.
    for from in ["203.0.113.66:5060", BOB] {
        let mut c = Caller::as_user("bob", from);
        let sent = net.send(from, &c.invite_to("95551234567", &[], ""));
        assert_eq!(
            sent.ladder(),
            ["other<-407 INVITE"].map(|s| if from == BOB { "bob<-407 INVITE" } else { s })
        );
        assert!(sent.requests(PROVIDER, Method::Invite).is_empty());
    }
    // From the trunk itself (a trusted source, no digest) the public context applies: an
    // outside number there is no route, not a way out.
    let mut c = Caller::as_user("pstn", PROVIDER);
    let sent = net.send(PROVIDER, &c.invite_to("95551234567", &[], ""));
    assert!(
        sent.requests(PROVIDER, Method::Invite).is_empty(),
        "{:?}",
        sent.ladder()
    );
    assert!(
        sent.responses(PROVIDER).iter().any(|r| r.status == 404),
        "{:?}",
        sent.ladder()
    );
}

#[test]
fn a_call_from_the_trunk_to_the_did_rings_the_user_without_a_challenge() {
    let mut net = routed_net();
    register_gateway(&mut net);
    // The provider calls our registration's Contact, the DID in To.
    let did = "INVITE sip:acct1234@192.168.4.4:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKprov-did-1\r\n\
        Max-Forwards: 69\r\n\
        From: \"Caller\" <sip:+14155550100@192.0.2.50>;tag=pstn1\r\n\
        To: <sip:+15551230000@192.0.2.50>\r\n\
        Call-ID: did-call-1@192.0.2.50\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:+14155550100@192.0.2.50:5060>\r\n\
        Content-Length: 0\r\n\r\n";
    let sent = net.send(PROVIDER, did);
    let inv = sent.request(ZOIPER, Method::Invite);
    assert!(
        req_header(&inv, "From").is_some_and(|f| f.contains("+14155550100")),
        "the PSTN caller's number"
    );
    assert!(
        req_header(&inv, "P-Asserted-Identity").is_none(),
        "not asserted: not verified by us"
    );
    assert!(sent.responses(PROVIDER).iter().all(|r| r.status != 407));
}

#[test]
fn a_sequential_group_rings_each_member_in_turn() {
    let mut net = routed_net_with(false);
    net.register_contact("bob", "192.168.4.4:26002", "sip:bob@192.168.4.4:26002");
    let mut carol_caller = Caller::bob();
    let sent = net.send(BOB, &carol_caller.invite_to("200", &[], ""));
    let r407 = sent.response(BOB, 407);
    carol_caller.learn(&r407);
    net.send(BOB, &carol_caller.ack_non2xx(&r407));
    let sent = net.send(BOB, &carol_caller.invite_to("200", &[], ""));
    let first = sent.request(ZOIPER, Method::Invite);
    assert!(
        sent.requests("192.168.4.4:26002", Method::Invite)
            .is_empty(),
        "one at a time"
    );
    let alice = Ua::alice();
    net.send(ZOIPER, &alice.respond(&first, 180, &[], ""));
    // After the member's 10 s the next one rings, and the first is cancelled.
    let sent = net.after(Duration::from_secs(10));
    sent.request(ZOIPER, Method::Cancel);
    let second = sent.request("192.168.4.4:26002", Method::Invite);
    let bob_phone = Ua::new("192.168.4.4:26002", "sip:bob@192.168.4.4:26002", "bobph");
    let sent = net.send(
        "192.168.4.4:26002",
        &bob_phone.respond(&second, 200, &[], ""),
    );
    sent.response(BOB, 200);
}

#[test]
fn forwarding_on_busy_rings_the_forward_target() {
    let mut net = routed_net_with(false);
    net.register_contact("bob", "192.168.4.4:26002", "sip:bob@192.168.4.4:26002");
    let mut users: Vec<User> = users().iter().cloned().collect();
    if let Some(a) = users.iter_mut().find(|u| u.id == "alice") {
        a.forward_busy = Some("bob".into());
    }
    let now = net.now;
    net.engine
        .replace_users(now, Users::from_list(users).expect("distinct"));
    let mut caller = Caller::as_user("bob", BOB);
    let sent = net.send(BOB, &caller.invite_to("alice", &[], ""));
    let r407 = sent.response(BOB, 407);
    caller.learn(&r407);
    net.send(BOB, &caller.ack_non2xx(&r407));
    let sent = net.send(BOB, &caller.invite_to("alice", &[], ""));
    let inv = sent.request(ZOIPER, Method::Invite);
    let alice = Ua::alice();
    let sent = net.send(ZOIPER, &alice.respond(&inv, 486, &[], ""));
    assert!(
        sent.responses(BOB).iter().all(|r| r.status != 486),
        "{:?}",
        sent.ladder()
    );
    sent.request("192.168.4.4:26002", Method::Invite);
}

#[test]
fn the_dialplans_reject_and_redirect_answer_the_caller_with_a_cdr() {
    let mut net = routed_net_with(false);
    let mut bob = Caller::bob();
    let sent = net.send(BOB, &bob.invite_to("666", &[], ""));
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    let sent = net.send(BOB, &bob.invite_to("666", &[], ""));
    let r = sent.response(BOB, 403);
    assert_eq!(r.reason.as_ref(), b"Barred Number");
    assert_eq!(net.cdr().sip_status, 403);
    net.send(BOB, &bob.ack_non2xx(&r));
    let sent = net.send(BOB, &bob.invite_to("777", &[], ""));
    let r = sent.response(BOB, 302);
    assert_eq!(
        r.headers.get_str(&HeaderName::Contact),
        Some("<sip:1000@192.0.2.80>")
    );
    assert!(
        sent.requests(ZOIPER, Method::Invite).is_empty(),
        "nothing rings"
    );
}

#[test]
fn rfc3581_behind_nat_the_provider_seen_address_becomes_our_contact() {
    let mut net = routed_net();
    let sent = Sent::from(net.drain());
    let reg = sent.request(PROVIDER, Method::Register);
    let sent = net.send(PROVIDER, &challenge(&reg, 401, "n-nat-1"));
    let reg2 = sent.request(PROVIDER, Method::Register);
    let mut ok = crate::sip::response_to(&reg2, 200, "OK");
    crate::sip::set_to_tag(&mut ok, "prov-reg");
    let contact = req_header(&reg2, "Contact").expect("Contact").to_string();
    ok.headers
        .push(HeaderName::Contact, format!("{contact};expires=600"));
    // The provider saw the REGISTER come from the router's public address.
    let nat_ok = text(&ok).replacen(";rport;", ";rport=40000;received=198.51.100.9;", 1);
    assert!(nat_ok.contains("received=198.51.100.9"), "{nat_ok}");
    let sent = net.send(PROVIDER, &nat_ok);
    let reg3 = sent.request(PROVIDER, Method::Register);
    assert!(
        req_header(&reg3, "Contact").is_some_and(|c| c.contains("acct1234@198.51.100.9:40000")),
        "the binding is renewed with the public address: {:?}",
        req_header(&reg3, "Contact")
    );
    // Answered the same way again: stable, nothing more is sent.
    let mut ok3 = crate::sip::response_to(&reg3, 200, "OK");
    crate::sip::set_to_tag(&mut ok3, "prov-reg");
    ok3.headers.push(
        HeaderName::Contact,
        format!(
            "{};expires=600",
            req_header(&reg3, "Contact").expect("Contact")
        ),
    );
    let text3 = text(&ok3).replacen(";rport;", ";rport=40000;received=198.51.100.9;", 1);
    assert!(net.send(PROVIDER, &text3).is_empty());
    // Calls out through the gateway carry it too.
    let mut bob = Caller::bob();
    let sent = net.send(BOB, &bob.invite_to("95551234567", &[], ""));
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    let sent = net.send(BOB, &bob.invite_to("95551234567", &[], ""));
    let inv = sent.request(PROVIDER, Method::Invite);
    assert!(req_header(&inv, "Contact").is_some_and(|c| c.contains("@198.51.100.9:40000")));
}
