//! Routing and transfer together, end to end on the virtual clock: whose dialplan context a
//! transfer runs in (the user who answered the leg, not the number dialled), a REFER from a
//! trunk's side never carried out by the switch (toll fraud), forwarding (`forward_all` to
//! a user, a `forward_all` loop refused with 482), a parallel group, and a gateway marked
//! down by its OPTIONS pings refusing calls with 503.

use super::routing::{provider, provider_spec, register_gateway, routed_net, PROVIDER};
use super::*;
use crate::engine::GatewayRoute;
use crate::routing::Dialplan;

/// erin's phone: a user whose own dialplan context is `sales`.
const ERIN: &str = "192.168.4.4:5096";
const ERIN_CONTACT: &str = "sip:erin@192.168.4.4:5096;transport=UDP";

/// `300` is barred in `default` and reaches dave in `sales`: where a transfer to 300 goes
/// shows whose context it was routed in. `9…` goes out through the provider from `default`.
const CONTEXTS: &str = r#"
[[context.default.route]]
name = "extensions"
match = '^(alice|bob|dave|erin)$'
to = { user = "$1" }

[[context.default.route]]
name = "outbound"
match = '^9(\d{7,15})$'
to = { gateway = "provider", number = "+1$1" }

[[context.default.route]]
name = "erin's group"
match = '^200$'
to = { group = ["erin"], strategy = "parallel", timeout = 20 }

[[context.default.route]]
name = "everyone"
match = '^201$'
to = { group = ["alice", "dave"], strategy = "parallel", timeout = 20 }

[[context.default.route]]
name = "barred here"
match = '^300$'
reject = { status = 403, reason = "Default Context" }

[[context.sales.route]]
name = "sales desk"
match = '^300$'
to = { user = "dave" }

[[context.public.route]]
name = "main number"
match = '^\+?15551230000$'
to = { user = "alice" }
"#;

fn erin() -> Ua {
    Ua::new(ERIN, ERIN_CONTACT, "erin-tag-1")
}

fn dave() -> Ua {
    Ua::new(DAVE, DAVE_CONTACT, "dave-tag-1")
}

/// The test users, with `tweak` applied, and erin (context `sales`).
fn set_users(net: &mut Net, tweak: impl FnOnce(&mut Vec<User>)) {
    let mut list: Vec<User> = users().iter().cloned().collect();
    let mut e = user("erin", "1234", true);
    e.context = Some("sales".into());
    list.push(e);
    tweak(&mut list);
    let now = net.now;
    net.engine
        .replace_users(now, Users::from_list(list).expect("distinct"));
}

fn with_user(list: &mut [User], id: &str, f: impl FnOnce(&mut User)) {
    f(list.iter_mut().find(|u| u.id == id).expect("a test user"));
}

/// alice, dave and erin registered, the dialplan above, no gateway.
fn contexts_net(tweak: impl FnOnce(&mut Vec<User>)) -> Net {
    let mut net = Net::calls();
    let plan = Dialplan::parse(CONTEXTS, std::path::Path::new("dialplan.toml"))
        .expect("the test dialplan parses");
    net.engine.set_dialplan(Arc::new(plan));
    set_users(&mut net, tweak);
    net.register_contact("dave", DAVE, DAVE_CONTACT);
    net.register_contact("erin", ERIN, ERIN_CONTACT);
    net
}

/// bob dials `number` (407, then with credentials); what the engine sent after that.
fn bob_dials(net: &mut Net, bob: &mut Caller, number: &str, body: &str) -> Sent {
    let sent = net.send(BOB, &bob.invite_to(number, &[], body));
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    net.send(BOB, &bob.invite_to(number, &[], body))
}

/// `ua` answers `inv` with 200; bob gets it and ACKs. Returns (bob's dialog, `ua`'s).
fn answered(net: &mut Net, bob: &mut Caller, ua: &Ua, inv: &Request) -> (Dlg, Dlg) {
    let sent = net.send(
        &ua.addr.to_string(),
        &ua.respond(inv, 200, &[], &sdp("them", 9000, "")),
    );
    let a = bob.dialog(&sent.response(BOB, 200));
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    (a, ua.uas_dialog(inv))
}

/// A REFER to `target` in `d`, sent by `ua`.
fn refer(ua: &mut Ua, d: &mut Dlg, target: &str) -> String {
    let refer_to = format!("Refer-To: <sip:{target}@192.168.4.4>");
    ua.in_dialog(d, "REFER", None, &[refer_to.as_str()], "")
}

#[test]
fn toll_fraud_a_refer_from_the_trunk_side_of_a_call_out_never_reaches_the_gateway() {
    let mut net = routed_net();
    register_gateway(&mut net);
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "95551234567", &sdp("bob", 8000, ""));
    let inv = sent.request(PROVIDER, Method::Invite);
    let mut prov = provider();
    let (mut a, mut p) = answered(&mut net, &mut bob, &prov, &inv);
    // The far side (anyone who can reach the provider) asks us to call another outside
    // number: with bob's privileges that would be a free call out.
    let sent = net.send(PROVIDER, &refer(&mut prov, &mut p, "95550009999"));
    assert!(
        sent.requests(PROVIDER, Method::Invite).is_empty(),
        "no INVITE to the gateway: {:?}",
        sent.ladder()
    );
    assert!(
        sent.responses(PROVIDER).iter().all(|r| r.status != 202),
        "not accepted by the switch: {:?}",
        sent.ladder()
    );
    // Relayed to bob's phone, which may call the number itself, with its own credentials.
    assert_eq!(sent.ladder(), ["bob<-REFER"]);
    let relayed = sent.request(BOB, Method::Refer);
    let sent = net.send(BOB, &bob.ua.respond(&relayed, 603, &[], ""));
    sent.response(PROVIDER, 603);
    // bob hangs up; the call ends cleanly.
    let sent = net.send(BOB, &bob.ua.in_dialog(&mut a, "BYE", None, &[], ""));
    sent.response(BOB, 200);
    let bye = sent.request(PROVIDER, Method::Bye);
    assert!(net
        .send(PROVIDER, &prov.respond(&bye, 200, &[], ""))
        .is_empty());
    net.assert_drained();
}

#[test]
fn toll_fraud_a_refer_from_a_trunk_caller_is_relayed_not_carried_out() {
    let mut net = routed_net();
    register_gateway(&mut net);
    let did = "INVITE sip:acct1234@192.168.4.4:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKprov-did-r1\r\n\
        Max-Forwards: 69\r\n\
        From: \"Caller\" <sip:+14155550100@192.0.2.50>;tag=pstn1\r\n\
        To: <sip:+15551230000@192.0.2.50>\r\n\
        Call-ID: did-refer-1@192.0.2.50\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:+14155550100@192.0.2.50:5060>\r\n\
        Content-Length: 0\r\n\r\n";
    let sent = net.send(PROVIDER, did);
    let inv = sent.request(ZOIPER, Method::Invite);
    let alice = Ua::alice();
    let sent = net.send(
        ZOIPER,
        &alice.respond(&inv, 200, &[], &sdp("alice", 9000, "")),
    );
    let ok = sent.response(PROVIDER, 200);
    let mut p = Dlg {
        call_id: "did-refer-1@192.0.2.50".into(),
        local: "\"Caller\" <sip:+14155550100@192.0.2.50>;tag=pstn1".into(),
        remote: header(&ok, "To").expect("To").into(),
        target: contact_uri(header(&ok, "Contact").expect("Contact")),
        cseq: 1,
    };
    let mut prov = provider();
    let ack = prov.in_dialog(&mut p, "ACK", Some(1), &[], "");
    assert_eq!(net.send(PROVIDER, &ack).ladder(), ["alice<-ACK"]);
    let sent = net.send(PROVIDER, &refer(&mut prov, &mut p, "95550009999"));
    assert!(
        sent.requests(PROVIDER, Method::Invite).is_empty(),
        "{:?}",
        sent.ladder()
    );
    assert_eq!(sent.ladder(), ["alice<-REFER"]);
}

#[test]
fn a_group_members_transfer_is_routed_in_the_members_own_context() {
    let mut net = contexts_net(|_| {});
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "200", &sdp("bob", 8000, ""));
    let inv = sent.request(ERIN, Method::Invite);
    let mut erin = erin();
    let (_a, mut e) = answered(&mut net, &mut bob, &erin, &inv);
    // 300 is barred in `default` (the group's number would fall back to it) and is dave in
    // erin's `sales`.
    let sent = net.send(ERIN, &refer(&mut erin, &mut e, "300"));
    sent.response(ERIN, 202);
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(DAVE, &dave().respond(&to_dave, 486, &[], ""));
    let n = sent.request(ERIN, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 486 Busy Here\r\n");
    assert!(net.engine.poll_cdr().is_none(), "the call stays up");
}

#[test]
fn a_forward_targets_transfer_is_routed_in_the_targets_own_context() {
    // alice (context default) forwards to erin (context sales) when busy.
    let mut net = contexts_net(|l| with_user(l, "alice", |a| a.forward_busy = Some("erin".into())));
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "alice", &sdp("bob", 8000, ""));
    let inv = sent.request(ZOIPER, Method::Invite);
    let sent = net.send(ZOIPER, &Ua::alice().respond(&inv, 486, &[], ""));
    let to_erin = sent.request(ERIN, Method::Invite);
    let mut erin = erin();
    let (_a, mut e) = answered(&mut net, &mut bob, &erin, &to_erin);
    let sent = net.send(ERIN, &refer(&mut erin, &mut e, "300"));
    sent.response(ERIN, 202);
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(
        DAVE,
        &dave().respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    sent.request(ERIN, Method::Bye);
    assert!(
        sent.requests(BOB, Method::Invite).len() == 1,
        "bob is re-INVITEd toward dave (bypass): {:?}",
        sent.ladder()
    );
    let rec = net.engine.poll_cdr().expect("erin's part of the call");
    assert_eq!(rec.transferred_by.as_deref(), Some("erin"));
    assert_eq!(rec.transferred_to.as_deref(), Some("dave"));
}

#[test]
fn a_transfer_by_a_plain_user_still_uses_default_where_300_is_barred() {
    // The control for the two above: alice (no context of her own) transferring to 300
    // hits `default`'s reject, NOTIFYed as 403.
    let mut net = contexts_net(|_| {});
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "alice", &sdp("bob", 8000, ""));
    let inv = sent.request(ZOIPER, Method::Invite);
    let mut alice = Ua::alice();
    let (_a, mut b) = answered(&mut net, &mut bob, &alice, &inv);
    let sent = net.send(ZOIPER, &refer(&mut alice, &mut b, "300"));
    sent.response(ZOIPER, 202);
    assert!(sent.requests(DAVE, Method::Invite).is_empty());
    let n = sent.request(ZOIPER, Method::Notify);
    assert_eq!(&n.body[..], b"SIP/2.0 403 Forbidden\r\n");
}

#[test]
fn forward_all_to_another_user_rings_that_user_only() {
    let mut net = contexts_net(|l| with_user(l, "alice", |a| a.forward_all = Some("dave".into())));
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "alice", "");
    assert!(sent.requests(ZOIPER, Method::Invite).is_empty());
    let to_dave = sent.request(DAVE, Method::Invite);
    let sent = net.send(
        DAVE,
        &dave().respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    sent.response(BOB, 200);
}

#[test]
fn a_forward_all_loop_ends_with_482_and_no_invite_storm() {
    // alice → dave → alice → …: refused after at most 5 hops, nothing rings.
    let mut net = contexts_net(|l| {
        with_user(l, "alice", |a| a.forward_all = Some("dave".into()));
        with_user(l, "dave", |d| d.forward_all = Some("alice".into()));
    });
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "alice", "");
    let invites: usize = [ZOIPER, DAVE, ERIN]
        .iter()
        .map(|p| sent.requests(p, Method::Invite).len())
        .sum();
    // forward_all is followed in routing, before any leg: not even the 5 hops ring.
    assert_eq!(invites, 0, "{:?}", sent.ladder());
    let r = sent.response(BOB, 482);
    net.send(BOB, &bob.ack_non2xx(&r));
    assert_eq!(net.cdr().sip_status, 482);
    net.assert_drained();
}

#[test]
fn a_parallel_group_rings_every_member_at_once_and_the_first_200_wins() {
    let mut net = contexts_net(|_| {});
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "201", &sdp("bob", 8000, ""));
    let to_alice = sent.request(ZOIPER, Method::Invite);
    let to_dave = sent.request(DAVE, Method::Invite);
    let alice = Ua::alice();
    net.send(ZOIPER, &alice.respond(&to_alice, 180, &[], ""));
    let sent = net.send(
        DAVE,
        &dave().respond(&to_dave, 200, &[], &sdp("dave", 9400, "")),
    );
    sent.response(BOB, 200);
    let cancel = sent.request(ZOIPER, Method::Cancel);
    assert_eq!(cancel.headers.call_id(), to_alice.headers.call_id());
    assert!(sent.requests(DAVE, Method::Cancel).is_empty());
    // alice's phone ends its INVITE with 487 after the CANCEL's 200.
    let sent = net.send(ZOIPER, &alice.respond(&cancel, 200, &[], ""));
    assert!(sent.is_empty(), "{:?}", sent.ladder());
    let sent = net.send(ZOIPER, &alice.respond(&to_alice, 487, &[], ""));
    sent.request(ZOIPER, Method::Ack);
    assert!(sent.responses(BOB).is_empty(), "{:?}", sent.ladder());
}

#[test]
fn a_gateway_marked_down_by_its_pings_refuses_calls_with_503() {
    let mut net = Net::calls_with(|c| {
        c.gateways = vec![crate::engine::GatewaySpec {
            register: false,
            ping: 30,
            ..provider_spec()
        }];
    });
    let plan = Dialplan::parse(CONTEXTS, std::path::Path::new("dialplan.toml"))
        .expect("the test dialplan parses");
    net.engine.set_dialplan(Arc::new(plan));
    let now = net.now;
    assert!(net.engine.set_gateway_route(
        now,
        "provider",
        GatewayRoute {
            targets: vec![(addr(PROVIDER), Transport::Udp)],
            advertised: SERVER.into(),
        },
    ));
    let prov = provider();
    // Two pings answered 503 (the provider's proxy has nothing behind it): down.
    let mut sent = Sent::from(net.drain());
    for _ in 0..crate::gateway::ping::DOWN_AFTER {
        let ping = sent.request(PROVIDER, Method::Options);
        assert!(net
            .send(PROVIDER, &prov.respond(&ping, 503, &[], ""))
            .is_empty());
        sent = net.after(Duration::from_secs(30));
    }
    let after_pings = sent;
    let status = net.engine.gateways(net.now);
    assert!(!status[0].up, "{status:?}");
    let mut bob = Caller::bob();
    let sent = bob_dials(&mut net, &mut bob, "95551234567", "");
    assert!(sent.requests(PROVIDER, Method::Invite).is_empty());
    let r = sent.response(BOB, 503);
    assert_eq!(r.reason.as_ref(), b"Gateway Unavailable");
    net.send(BOB, &bob.ack_non2xx(&r));
    assert_eq!(net.cdr().sip_status, 503);
    // One alive answer brings it back: the next call goes out.
    let ping = sent_ping(&after_pings, &mut net);
    assert!(net
        .send(PROVIDER, &prov.respond(&ping, 200, &[], ""))
        .is_empty());
    assert!(net.engine.gateways(net.now)[0].up);
    let sent = net.send(BOB, &bob.invite_to("95551234567", &[], ""));
    sent.request(PROVIDER, Method::Invite);
}

/// The next OPTIONS ping: already in `sent`, or within the next interval.
fn sent_ping(sent: &Sent, net: &mut Net) -> Request {
    match sent.requests(PROVIDER, Method::Options).pop() {
        Some(p) => p,
        None => net
            .after(Duration::from_secs(30))
            .request(PROVIDER, Method::Options),
    }
}
