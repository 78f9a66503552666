//! RFC 3263 §4.3 failover between a trunk's addresses, end to end on the virtual clock: the
//! provider resolves to two servers; a call's INVITE that gets no answer (Timer B) or a 503
//! from the first goes to the second as a new transaction while the caller waits, a real
//! answer (486) is not failed over, and when every server fails the caller gets the failure.
//! The registration and the OPTIONS pings move on to the second server the same way, and
//! the gateway is down only when both miss.

use super::routing::{challenge, provider, provider_spec, DIALPLAN, PROVIDER};
use super::*;
use crate::engine::{GatewayRoute, GatewaySpec};
use crate::routing::Dialplan;

/// The provider's second server (its SRV backup).
const BACKUP: &str = "192.0.2.51:5060";

/// 64·T1: Timer B and Timer F.
const TIMER_B: Duration = Duration::from_secs(32);

fn backup() -> Ua {
    Ua::new(BACKUP, "sip:acct1234@192.0.2.51:5060", "prov2")
}

fn both_targets() -> GatewayRoute {
    GatewayRoute {
        targets: vec![
            (addr(PROVIDER), Transport::Udp),
            (addr(BACKUP), Transport::Udp),
        ],
        advertised: SERVER.into(),
    }
}

/// The call network with the routing tests' dialplan and `spec` resolved to both servers.
fn failover_net(spec: GatewaySpec) -> Net {
    let mut net = Net::calls_with(|c| c.gateways = vec![spec]);
    let plan = Dialplan::parse(DIALPLAN, std::path::Path::new("dialplan.toml"))
        .expect("the test dialplan parses");
    net.engine.set_dialplan(Arc::new(plan));
    let now = net.now;
    assert!(net
        .engine
        .set_gateway_route(now, "provider", both_targets()));
    net
}

/// A trunk used for calls only (no registration, no pings).
fn calls_only() -> GatewaySpec {
    GatewaySpec {
        register: false,
        ..provider_spec()
    }
}

/// bob dials 95551234567 (out through the provider), answering our 407; what the engine
/// sent after his authorized INVITE.
fn dial_out(net: &mut Net, bob: &mut Caller) -> Sent {
    let offer = sdp("bob", 8000, "");
    let sent = net.send(BOB, &bob.invite_to("95551234567", &[], &offer));
    let r407 = sent.response(BOB, 407);
    bob.learn(&r407);
    net.send(BOB, &bob.ack_non2xx(&r407));
    net.send(BOB, &bob.invite_to("95551234567", &[], &offer))
}

fn branch(r: &Request) -> String {
    r.headers
        .top_via()
        .and_then(|v| v.branch().map(str::to_string))
        .expect("our requests carry a branch")
}

fn finals(sent: &Sent, to: &str) -> Vec<u16> {
    sent.responses(to)
        .iter()
        .map(|r| r.status)
        .filter(|s| *s >= 200)
        .collect()
}

#[test]
fn an_invite_unanswered_by_the_first_server_goes_to_the_second_after_timer_b() {
    let mut net = failover_net(calls_only());
    let mut bob = Caller::bob();
    let sent = dial_out(&mut net, &mut bob);
    let first = sent.request(PROVIDER, Method::Invite);
    assert!(sent.requests(BACKUP, Method::Invite).is_empty());
    // The first server never answers: only its retransmissions until Timer B.
    let sent = net.after(TIMER_B - Duration::from_secs(1));
    assert!(!sent.requests(PROVIDER, Method::Invite).is_empty());
    assert!(sent.requests(BACKUP, Method::Invite).is_empty());
    assert!(finals(&sent, BOB).is_empty(), "{:?}", sent.ladder());
    let sent = net.after(Duration::from_secs(1));
    let second = sent.request(BACKUP, Method::Invite);
    assert_ne!(branch(&second), branch(&first), "a new transaction");
    assert_eq!(second.uri_str(), first.uri_str(), "the same Request-URI");
    assert_eq!(second.body, first.body, "the same offer");
    assert!(finals(&sent, BOB).is_empty(), "bob still waits");
    // The second server answers: bob gets its 200.
    let sent = net.send(BACKUP, &backup().respond(&second, 180, &[], ""));
    sent.response(BOB, 180);
    let sent = net.send(
        BACKUP,
        &backup().respond(&second, 200, &[], &sdp("pstn", 7000, "")),
    );
    sent.request(BACKUP, Method::Ack);
    let a = bob.dialog(&sent.response(BOB, 200));
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
    assert!(
        net.after(Duration::from_secs(40))
            .requests(PROVIDER, Method::Invite)
            .is_empty(),
        "nothing more to the first server"
    );
}

#[test]
fn a_503_from_the_first_server_sends_the_invite_to_the_second_at_once_which_may_challenge() {
    let mut net = failover_net(calls_only());
    let mut bob = Caller::bob();
    let sent = dial_out(&mut net, &mut bob);
    let first = sent.request(PROVIDER, Method::Invite);
    let sent = net.send(PROVIDER, &provider().respond(&first, 503, &[], ""));
    sent.request(PROVIDER, Method::Ack);
    let second = sent.request(BACKUP, Method::Invite);
    assert_ne!(branch(&second), branch(&first));
    assert!(finals(&sent, BOB).is_empty(), "{:?}", sent.ladder());
    // The second server challenges: answered there with the gateway's credentials.
    let sent = net.send(BACKUP, &challenge(&second, 407, "n-backup-1"));
    sent.request(BACKUP, Method::Ack);
    let authorized = sent.request(BACKUP, Method::Invite);
    let auth = req_header(&authorized, "Proxy-Authorization").expect("answered");
    assert!(auth.contains("username=\"acct1234\""), "{auth}");
    assert!(sent.requests(PROVIDER, Method::Invite).is_empty());
    assert!(finals(&sent, BOB).is_empty(), "{:?}", sent.ladder());
    let sent = net.send(
        BACKUP,
        &backup().respond(&authorized, 200, &[], &sdp("pstn", 7000, "")),
    );
    let a = bob.dialog(&sent.response(BOB, 200));
    assert!(net.send(BOB, &bob.ack(&a, "")).is_empty());
}

#[test]
fn when_every_server_fails_the_caller_gets_the_failure_and_nothing_more_is_sent() {
    let mut net = failover_net(calls_only());
    let mut bob = Caller::bob();
    let sent = dial_out(&mut net, &mut bob);
    let first = sent.request(PROVIDER, Method::Invite);
    let sent = net.send(PROVIDER, &provider().respond(&first, 503, &[], ""));
    let second = sent.request(BACKUP, Method::Invite);
    let sent = net.send(BACKUP, &backup().respond(&second, 503, &[], ""));
    sent.request(BACKUP, Method::Ack);
    assert!(sent.requests(PROVIDER, Method::Invite).is_empty());
    assert!(sent.requests(BACKUP, Method::Invite).is_empty());
    let r = sent.response(BOB, 503);
    net.send(BOB, &bob.ack_non2xx(&r));
    assert_eq!(net.cdr().sip_status, 503);
    let later = net.after(Duration::from_secs(40));
    assert!(
        later.requests(PROVIDER, Method::Invite).is_empty()
            && later.requests(BACKUP, Method::Invite).is_empty(),
        "{:?}",
        later.ladder()
    );
    net.assert_drained();
}

#[test]
fn when_both_servers_time_out_the_caller_gets_408_after_two_timer_bs() {
    let mut net = failover_net(calls_only());
    let mut bob = Caller::bob();
    let sent = dial_out(&mut net, &mut bob);
    sent.request(PROVIDER, Method::Invite);
    let sent = net.after(TIMER_B);
    sent.request(BACKUP, Method::Invite);
    assert!(finals(&sent, BOB).is_empty(), "{:?}", sent.ladder());
    let sent = net.after(TIMER_B);
    let r = sent.response(BOB, 408);
    assert!(sent.requests(PROVIDER, Method::Invite).is_empty());
    net.send(BOB, &bob.ack_non2xx(&r));
    assert_eq!(net.cdr().sip_status, 408);
}

#[test]
fn a_486_from_the_first_server_is_an_answer_not_failed_over() {
    let mut net = failover_net(calls_only());
    let mut bob = Caller::bob();
    let sent = dial_out(&mut net, &mut bob);
    let first = sent.request(PROVIDER, Method::Invite);
    let sent = net.send(PROVIDER, &provider().respond(&first, 486, &[], ""));
    assert!(sent.requests(BACKUP, Method::Invite).is_empty());
    let r = sent.response(BOB, 486);
    net.send(BOB, &bob.ack_non2xx(&r));
    assert_eq!(net.cdr().sip_status, 486);
    assert!(net
        .after(Duration::from_secs(40))
        .requests(BACKUP, Method::Invite)
        .is_empty());
}

#[test]
fn a_register_unanswered_by_the_first_server_is_sent_to_the_second_and_refreshed_there() {
    let mut net = failover_net(provider_spec());
    let sent = Sent::from(net.drain());
    let first = sent.request(PROVIDER, Method::Register);
    assert!(sent.requests(BACKUP, Method::Register).is_empty());
    assert_eq!(net.engine.gateways(net.now)[0].target, Some(addr(PROVIDER)));
    // Timer F: the same registration (Call-ID, next CSeq) goes to the second server at once.
    let sent = net.after(TIMER_B);
    let second = sent.request(BACKUP, Method::Register);
    assert_ne!(branch(&second), branch(&first));
    assert_eq!(second.headers.call_id(), first.headers.call_id());
    assert_eq!(
        second.headers.cseq().map(|c| c.seq),
        first.headers.cseq().map(|c| c.seq + 1)
    );
    assert_eq!(net.engine.gateways(net.now)[0].target, Some(addr(BACKUP)));
    let sent = net.send(BACKUP, &challenge(&second, 401, "n-reg-b"));
    let authorized = sent.request(BACKUP, Method::Register);
    let mut ok = crate::sip::response_to(&authorized, 200, "OK");
    crate::sip::set_to_tag(&mut ok, "prov-reg");
    ok.headers.push(
        HeaderName::Contact,
        format!(
            "{};expires=600",
            req_header(&authorized, "Contact").expect("Contact")
        ),
    );
    assert!(net.send(BACKUP, &text(&ok)).is_empty());
    assert_eq!(net.engine.gateways(net.now)[0].registration, "registered");
    // The refresh (at 540 s) goes to the server that answered.
    let sent = net.after(Duration::from_secs(560));
    assert!(!sent.requests(BACKUP, Method::Register).is_empty());
    assert!(sent.requests(PROVIDER, Method::Register).is_empty());
    // The same list again keeps that server; a new list starts from its first target.
    let now = net.now;
    net.engine
        .set_gateway_route(now, "provider", both_targets());
    assert_eq!(net.engine.gateways(now)[0].target, Some(addr(BACKUP)));
    let mut reordered = both_targets();
    reordered.targets.reverse();
    reordered
        .targets
        .push((addr("192.0.2.52:5060"), Transport::Udp));
    net.engine.set_gateway_route(now, "provider", reordered);
    assert_eq!(net.engine.gateways(now)[0].target, Some(addr(BACKUP)));
    let mut other = both_targets();
    other.targets.remove(1);
    net.engine.set_gateway_route(now, "provider", other);
    assert_eq!(net.engine.gateways(now)[0].target, Some(addr(PROVIDER)));
}

#[test]
fn pings_move_on_to_the_second_server_and_the_gateway_is_down_only_when_both_miss() {
    let mut net = failover_net(GatewaySpec {
        register: false,
        ping: 30,
        ..provider_spec()
    });
    let sent = Sent::from(net.drain());
    let ping = sent.request(PROVIDER, Method::Options);
    // The first server's proxy has nothing behind it: the second is pinged at once.
    let sent = net.send(PROVIDER, &provider().respond(&ping, 503, &[], ""));
    let ping = sent.request(BACKUP, Method::Options);
    assert!(net.engine.gateways(net.now)[0].up, "one server missed");
    assert!(net
        .send(BACKUP, &backup().respond(&ping, 200, &[], ""))
        .is_empty());
    assert!(net.engine.gateways(net.now)[0].up);
    // Calls now go to the server that answers.
    let mut bob = Caller::bob();
    let sent = dial_out(&mut net, &mut bob);
    sent.request(BACKUP, Method::Invite);
    assert!(sent.requests(PROVIDER, Method::Invite).is_empty());
    // The second stops answering: the first is pinged at once, and misses too: down.
    let sent = net.after(Duration::from_secs(30));
    let ping = sent.request(BACKUP, Method::Options);
    let sent = net.send(BACKUP, &backup().respond(&ping, 503, &[], ""));
    let ping = sent.request(PROVIDER, Method::Options);
    assert!(net.engine.gateways(net.now)[0].up);
    let sent = net.send(PROVIDER, &provider().respond(&ping, 503, &[], ""));
    assert!(
        sent.requests(BACKUP, Method::Options).is_empty(),
        "every server tried: the next ping waits for the interval"
    );
    assert!(!net.engine.gateways(net.now)[0].up);
}
