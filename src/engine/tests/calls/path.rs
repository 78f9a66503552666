//! Calls and MESSAGEs to a phone registered through an edge proxy (RFC 3327 Path): the
//! request goes to the first Path hop with the Path as its pre-loaded route set (RFC 3327
//! §5.4, RFC 3261 §8.1.2), the Request-URI staying the phone's Contact; CANCEL and the ACK
//! of a failure carry the same Route (§9.1, §17.1.1.3). With `node_id` set, our branches and
//! b-leg Call-IDs name the node, and so does the CDR.

use super::*;

const PROXY: &str = "10.0.0.1:5060";
const ALICE_BEHIND: &str = "sip:alice@192.168.1.20:5060";
const HOP1: &str = "<sip:10.0.0.1:5060;lr;received=sip:198.51.100.4:40000>";
const HOP2: &str = "<sip:core.example;lr>";

/// A call-test network whose alice registered through the proxy with a two-hop Path.
fn through_proxy(node: Option<&str>) -> Net {
    let node = node.map(str::to_string);
    let mut net = Net::with(|c| {
        c.registrar.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        c.node_id = node;
    });
    let mut phone = Phone::new("alice", "1234", "192.168.1.20:5060");
    let contact = format!("Contact: <{ALICE_BEHIND}>");
    let (p1, p2) = (format!("Path: {HOP1}"), format!("Path: {HOP2}"));
    let lines = [contact.as_str(), p1.as_str(), p2.as_str()];
    let r = net.register(&mut phone, addr(PROXY), &lines);
    assert_eq!(r.status, 200, "{}", reason(&r));
    net
}

fn routes(r: &Request) -> Vec<String> {
    r.headers
        .get_all(&HeaderName::Route)
        .filter_map(|h| h.value_str())
        .map(str::to_string)
        .collect()
}

#[test]
fn rfc3327_5_4_b_leg_invite_goes_through_the_path_and_cancel_follows_it() {
    let mut net = through_proxy(None);
    let mut bob = Caller::bob();
    let edge = Ua::new(PROXY, ALICE_BEHIND, "tag-alice-edge");
    let sent = authorized_invite(&mut net, &mut bob, &sdp("bob", 8000, ""));
    assert_eq!(sent.ladder(), ["bob<-100 INVITE", "other<-INVITE"]);
    let inv = sent.request(PROXY, Method::Invite);
    assert_eq!(
        inv.uri_str(),
        Some(ALICE_BEHIND),
        "the Contact stays the target"
    );
    assert_eq!(routes(&inv), [HOP1, HOP2], "the Path, in order");

    net.send(PROXY, &edge.respond(&inv, 180, &[], ""));
    let sent = net.send(BOB, &bob.cancel());
    let cancel = sent.request(PROXY, Method::Cancel);
    assert_eq!(routes(&cancel), routes(&inv), "§9.1: the INVITE's Route");
    net.send(BOB, &bob.ack_non2xx(&sent.response(BOB, 487)));
    assert!(net
        .send(PROXY, &edge.respond(&cancel, 200, &[], ""))
        .is_empty());
    let sent = net.send(PROXY, &edge.respond(&inv, 487, &[], ""));
    let ack = sent.request(PROXY, Method::Ack);
    assert_eq!(routes(&ack), routes(&inv), "§17.1.1.3: the INVITE's Route");
    assert_eq!(net.cdr().node, None, "no node id, no node field");
    net.assert_drained();
}

#[test]
fn rfc3327_5_4_relayed_message_goes_through_the_path() {
    let mut net = through_proxy(None);
    let mut bob = Caller::bob();
    let sent = net.send(BOB, &bob.message_to("alice", "hi"));
    bob.learn(&sent.response(BOB, 407));
    let sent = net.send(BOB, &bob.message_to("alice", "hi"));
    let msg = sent.request(PROXY, Method::Message);
    assert_eq!(msg.uri_str(), Some(ALICE_BEHIND));
    assert_eq!(routes(&msg), [HOP1, HOP2]);
}

#[test]
fn node_id_is_in_branches_b_leg_call_ids_and_the_cdr() {
    let mut net = through_proxy(Some("fs1"));
    let mut bob = Caller::bob();
    let edge = Ua::new(PROXY, ALICE_BEHIND, "tag-alice-edge");
    let inv =
        authorized_invite(&mut net, &mut bob, &sdp("bob", 8000, "")).request(PROXY, Method::Invite);
    let branch = inv
        .headers
        .top_via()
        .and_then(|v| v.branch().map(str::to_string));
    let branch = branch.expect("our branch");
    assert!(branch.starts_with("z9hG4bKfs-fs1-"), "{branch}");
    assert!(
        branch.bytes().all(crate::sip::parse::is_token_char),
        "an RFC 3261 token: {branch}"
    );
    let call_id = inv.headers.call_id().unwrap_or_default();
    assert!(call_id.ends_with("@fs1"), "{call_id}");
    // Loop detection still knows our branches: the INVITE coming back is refused.
    assert!(net.engine.b2bua.is_our_loop(&inv));

    net.send(PROXY, &edge.respond(&inv, 486, &[], ""));
    let cdr = net.cdr();
    assert_eq!(cdr.node.as_deref(), Some("fs1"));
    let json = serde_json::to_string(&cdr).unwrap();
    assert!(json.contains("\"node\":\"fs1\""), "{json}");
}
