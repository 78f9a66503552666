//! Several nodes with one nonce secret (`[registrar] nonce_secret_file`): each node accepts
//! only the nonces of its own run, so an authorized request captured on one node and
//! replayed to another (the dispatcher hashes on Call-ID, which the digest does not cover) is
//! answered with `stale=true`, and so are the nonces of a node's earlier run after a restart.
//! Phones answer stale challenges silently: the fresh nonce then works.

use super::*;

const PHONE: &str = ZOIPER;

fn node(seed: u64, id: &str) -> Net {
    let id = id.to_string();
    Net::with_seed(seed, |c| c.node_id = Some(id))
}

/// `raw` with its Call-ID replaced (what an attacker changes to land on another node).
fn with_call_id(raw: &str, call_id: &str) -> String {
    raw.split("\r\n")
        .map(|l| {
            if l.starts_with("Call-ID:") {
                format!("Call-ID: {call_id}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn another_nodes_nonce_is_stale_and_the_fresh_one_works() {
    let (mut a, mut b) = (node(1, "fs1"), node(2, "fs2"));
    let mut phone = Phone::new("alice", "1234", PHONE);
    assert_eq!(a.register(&mut phone, addr(PHONE), &[]).status, 200);

    // The phone's next REGISTER (next nc, A's nonce) reaches B.
    let r = b.ask(addr(PHONE), &phone.register(&[]));
    let ch = challenge_of(&r);
    assert!(
        ch.stale,
        "a valid tag from another node: stale=true, not a password prompt"
    );
    phone.learn(&r);
    assert_eq!(b.ask(addr(PHONE), &phone.register(&[])).status, 200);
    assert_eq!(b.engine.stats().registrations, 1);
}

#[test]
fn an_authorized_request_replayed_to_another_node_with_a_new_call_id_is_refused() {
    let (mut a, mut b) = (node(1, "fs1"), node(2, "fs2"));
    let mut phone = Phone::new("alice", "1234", PHONE);
    let first = a.ask(addr(PHONE), &phone.register(&[]));
    phone.learn(&first);
    let captured = phone.register(&[]);
    assert_eq!(a.ask(addr(PHONE), &captured).status, 200);

    let replay = with_call_id(&captured, "attacker-chosen@elsewhere");
    let r = b.ask(addr(PHONE), &replay);
    assert_eq!(r.status, 401, "never accepted: {}", reason(&r));
    assert!(b.store.lookup("alice@192.168.4.4", b.now).is_empty());
    // On the node that issued it, the replay (a new branch too, else the transaction layer
    // only repeats its 200) is caught by its nc state as before.
    let replay = with_call_id(&captured, "other@elsewhere").replace("z9hG4bK-test-", "z9hG4bK-x-");
    let r = a.ask(addr(PHONE), &replay);
    assert_eq!(r.status, 401);
}

#[test]
fn the_same_run_accepts_its_own_nonce_and_a_restart_answers_old_ones_stale() {
    let mut a = node(1, "fs1");
    let mut phone = Phone::new("alice", "1234", PHONE);
    assert_eq!(a.register(&mut phone, addr(PHONE), &[]).status, 200);
    assert_eq!(a.ask(addr(PHONE), &phone.register(&[])).status, 200);

    // fs1 restarts: same secret and node id, a new run.
    let mut restarted = node(9, "fs1");
    let r = restarted.ask(addr(PHONE), &phone.register(&[]));
    assert!(challenge_of(&r).stale, "no replay window after a restart");
    phone.learn(&r);
    assert_eq!(restarted.ask(addr(PHONE), &phone.register(&[])).status, 200);
}
