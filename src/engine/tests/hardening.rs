//! Issue 17 hardening through the engine: an account locked by distributed guessing (17.12)
//! refuses its correct password from a new source with the very 403 a wrong password gets,
//! and still accepts it from the source that registered it before; the `Server` header is
//! the configured value and absent when that is empty (17.13).

use super::*;

#[test]
fn locked_account_refuses_a_new_source_but_not_its_known_one() {
    let mut net = Net::with(|c| {
        c.security = crate::security::SecurityConfig {
            max_account_failures: 5,
            ..Default::default()
        }
    });
    // alice's own phone registers first: its source becomes known for alice.
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    assert_eq!(net.register(&mut alice, addr(ZOIPER), &[]).status, 200);

    // Five sources guess once each: no source is banned, the account locks.
    for n in 1..=5 {
        let src = format!("203.0.113.{n}:5060");
        let mut guess = Phone::new("alice", &format!("guess-{n}"), &src);
        assert_eq!(net.register(&mut guess, addr(&src), &[]).status, 403);
    }

    // The right password from a new source: the same 403 as a wrong one.
    let thief_src = "198.51.100.9:5060";
    let mut wrong = Phone::new("alice", "not-it", thief_src);
    let refused_wrong = net.register(&mut wrong, addr(thief_src), &[]);
    let mut thief = Phone::new("alice", "1234", thief_src);
    thief.call_id = "call-thief".into();
    thief.branches = 100; // not a retransmission of `wrong`'s transactions
    let refused_right = net.register(&mut thief, addr(thief_src), &[]);
    assert_eq!(
        (refused_right.status, reason(&refused_right).as_str()),
        (403, "Forbidden")
    );
    assert_eq!(refused_right.status, refused_wrong.status);
    assert_eq!(refused_right.reason, refused_wrong.reason);
    assert_eq!(header_names(&refused_right), header_names(&refused_wrong));
    assert_eq!(
        net.aor_contacts("alice@192.168.4.4").len(),
        1,
        "only alice's phone"
    );

    // alice's phone re-registers from its known source: served.
    assert_eq!(net.register(&mut alice, addr(ZOIPER), &[]).status, 200);

    // After account_lock_time (600 s) the new source is served too.
    net.advance(Duration::from_secs(600));
    let mut later = Phone::new("alice", "1234", thief_src);
    later.call_id = "call-later".into();
    assert_eq!(net.register(&mut later, addr(thief_src), &[]).status, 200);
}

/// `[server] user_agent = ""`: no Server header on our responses (nor User-Agent on our
/// requests, through the same helper).
#[test]
fn empty_user_agent_means_no_server_header() {
    let mut net = Net::with(|c| c.user_agent = "ferroswitch".into());
    let r = net.ask(
        addr("192.168.4.40:5060"),
        &options("192.168.4.40:5060", "-ua"),
    );
    assert_eq!(header(&r, "Server"), Some("ferroswitch"));

    let mut net = Net::with(|c| c.user_agent = String::new());
    let r = net.ask(
        addr("192.168.4.40:5060"),
        &options("192.168.4.40:5060", "-ua"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "Server"), None, "{:?}", header_names(&r));
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    let challenge = net.ask(addr(ZOIPER), &alice.register(&[]));
    assert_eq!(challenge.status, 401);
    assert!(!header_names(&challenge).iter().any(|n| n == "Server"));
}
