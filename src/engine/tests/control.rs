//! The operator's requests through the whole engine on the virtual clock (`engine::control`):
//! the registrations listing counts down with the clock, `unregister` removes bindings, a
//! users swap removes the bindings of disabled or removed users and applies a changed
//! password to the next authentication, and unknown calls are refused.

use super::*;
use crate::cdr::HangupCause;
use crate::engine::ControlError;

#[test]
fn registrations_count_down_and_unregister_removes_them() {
    let mut net = Net::new();
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    let mut bob = Phone::new("bob", "1234", "192.168.4.4:5092");
    assert_eq!(net.register(&mut alice, addr(ZOIPER), &[]).status, 200);
    assert_eq!(
        net.register(&mut bob, addr("192.168.4.4:5092"), &[]).status,
        200
    );
    net.advance(Duration::from_secs(100));

    let all = net.engine.registrations(net.now, None);
    let users: Vec<&str> = all.iter().map(|r| r.user.as_str()).collect();
    assert_eq!(users, ["alice", "bob"], "sorted by address-of-record");
    assert_eq!(all[0].aor, "alice@192.168.4.4");
    assert_eq!(all[0].contact, "sip:alice@192.168.4.4:5090;transport=UDP");
    assert_eq!((all[0].source, all[0].transport), (addr(ZOIPER), "UDP"));
    assert_eq!(all[0].expires_in, 3500);
    assert_eq!(net.engine.registrations(net.now, Some("bob")).len(), 1);

    let now = net.now;
    assert_eq!(
        net.engine
            .unregister(now, "alice", Some("sip:other@192.0.2.1")),
        Err(ControlError::NotRegistered("alice".into()))
    );
    assert_eq!(net.engine.unregister(now, "alice", None), Ok(1));
    assert_eq!(net.store.counts(), (1, 1));
    assert!(net.engine.registrations(net.now, Some("alice")).is_empty());
}

#[test]
fn a_users_swap_removes_disabled_users_bindings_and_changes_passwords_at_the_next_auth() {
    let mut net = Net::new();
    let mut alice = Phone::new("alice", "1234", ZOIPER);
    let mut bob = Phone::new("bob", "1234", "192.168.4.4:5092");
    assert_eq!(net.register(&mut alice, addr(ZOIPER), &[]).status, 200);
    assert_eq!(
        net.register(&mut bob, addr("192.168.4.4:5092"), &[]).status,
        200
    );

    let swapped = Users::from_list(vec![
        user("alice", "a-new-password", true),
        user("bob", "1234", false),
        user("dave", "dave-secret-77", true),
    ])
    .expect("distinct ids");
    let now = net.now;
    assert_eq!(net.engine.replace_users(now, swapped), 1, "bob's binding");
    assert_eq!(net.store.counts(), (1, 1), "alice keeps hers");

    // New phones reuse the branches of the first: each waits out the last one's
    // transactions (Timer J), so that nothing is answered as a retransmission.
    net.advance(Duration::from_secs(33));
    let mut old = Phone::new("alice", "1234", ZOIPER);
    assert_eq!(net.register(&mut old, addr(ZOIPER), &[]).status, 403);
    net.advance(Duration::from_secs(33));
    // (Another Call-ID: the old one's CSeq is spent, §10.3 step 7.)
    let mut new = Phone::new("alice", "a-new-password", "192.168.4.4:5096");
    assert_eq!(
        net.register(&mut new, addr("192.168.4.4:5096"), &[]).status,
        200
    );
    let mut dave = Phone::new("dave", "dave-secret-77", "192.168.4.4:5094");
    assert_eq!(
        net.register(&mut dave, addr("192.168.4.4:5094"), &[])
            .status,
        200
    );
}

#[test]
fn an_unknown_call_cannot_be_hung_up_and_nothing_is_sent() {
    let mut net = Net::new();
    let (now, wall) = (net.now, net.wall());
    assert_eq!(
        net.engine
            .hang_up(now, wall, 42, HangupCause::NormalClearing),
        Err(ControlError::NoSuchCall(42))
    );
    assert!(net.drain().is_empty());
    assert!(net.engine.calls(wall).is_empty());
    assert_eq!(net.engine.snapshot().calls_up, 0);
}
