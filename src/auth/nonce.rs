//! Server nonces: unpredictable, bound to a realm, a time window and (optionally) the address
//! they were issued to, verified without state, and not telling anyone the server's clock.
//!
//! A nonce is `hex(random, 32) || hex(issued_at ^ pad, 16) || hex(run, 16) || hex(tag, 32)`
//! where
//! - `pad` is the first 8 bytes of a keyed SHA-256 of the random part, so the issue time is
//!   unreadable and two nonces issued in the same second share no visible prefix
//!   (issue 17.13);
//! - `run` identifies the process run that issued it (random per start, mixed with the
//!   node id when one is set; see below);
//! - `tag` is HMAC-SHA-256 (truncated to 128 bits) keyed by the secret over the first three
//!   parts, the address the nonce is bound to (none, IPv4 or IPv6) and the realm
//!   (encrypt-then-MAC: a forgery is refused before anything is decrypted).
//!
//! Several nodes, one secret. With `[registrar] nonce_secret_file` every node of a cluster
//! holds the same secret, so a nonce any of them issued has a valid tag everywhere. But the
//! `nc` replay state ([`NcTracker`]) lives in each process, and the digest response does not
//! cover the Call-ID: the edge proxy's dispatcher hashes on Call-ID, so an attacker who
//! captured an authorized request and resends it with a new Call-ID lands on another node,
//! which has never seen that nonce's `nc`. Hence a nonce is only ever accepted by the run
//! that issued it: one with a valid tag but another `run` (another node, or this node before
//! a restart) is answered like an expired one, a challenge with `stale=true` and a fresh
//! nonce, which phones answer silently without asking for the password (RFC 7616 §3.3).
//! The replayed request is not accepted, a restart opens no replay window either, and the
//! cost is one extra challenge when a phone's request reaches a node that did not issue its
//! nonce. Keeping `nc` in a shared store instead would cost a round trip per authenticated
//! request.
//!
//! Forging or altering one needs the secret; a nonce issued for one realm or one address does
//! not verify for another; after `lifetime` it is stale. Replay of a nonce within its lifetime
//! is caught by [`NcTracker`] (the `nc` counter), not here. Verification costs about four
//! SHA-256 compressions: the keyed HMAC state and the time-pad key are built once, at start,
//! and cloned per use.
//!
//! Sans-IO: `now` (seconds since the Unix epoch) and the random source are always passed in;
//! never reads a clock or a thread-local RNG. The secret is injected so tests are deterministic; a restart invalidates all nonces, and
//! phones simply answer the next challenge.

use super::digest::hex;
use crate::FastMap;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use subtle::ConstantTimeEq;

const RAND_HEX: usize = 32;
const TS_HEX: usize = 16;
const TAG_HEX: usize = 32;
/// Length of every nonce we issue.
pub const NONCE_LEN: usize = RAND_HEX + TS_HEX + RUN_HEX + TAG_HEX;
const RUN_HEX: usize = 16;
/// Where the tag starts (the part [`NcTracker`] keys on).
const HEAD_LEN: usize = RAND_HEX + TS_HEX + RUN_HEX;

/// The key nonces are authenticated with. Debug output never shows it.
#[derive(Clone)]
pub struct NonceSecret([u8; 32]);

impl NonceSecret {
    /// A fresh secret from the operating system's CSPRNG (via `rand`).
    pub fn random() -> NonceSecret {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        NonceSecret(k)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> NonceSecret {
        NonceSecret(bytes)
    }
}

impl fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSecret(..)")
    }
}

/// What [`NonceManager::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Ours, for this realm, within its lifetime.
    Valid,
    /// Ours and for this realm, but older than the lifetime: challenge with `stale=true`.
    Stale,
    /// Authentic (the shared secret's tag verifies) but issued by another node or by an
    /// earlier run of this one: never accepted, challenged with `stale=true` (module docs).
    OtherRun,
    /// Not ours, altered, or for another realm.
    Invalid,
}

/// HMAC-SHA-256 (RFC 2104). `Hmac` (not `SimpleHmac`) keeps the inner and outer states with
/// the key blocks already absorbed, so a clone of a keyed one skips that work.
type HmacSha256 = Hmac<Sha256>;

/// Issues and checks nonces.
#[derive(Clone)]
pub struct NonceManager {
    /// Keyed once at start; cloned for each tag.
    mac: HmacSha256,
    /// SHA-256 state with the time-pad key block already absorbed.
    pad: Sha256,
    lifetime: u64,
    /// This run's id, carried in and authenticated with every nonce it issues.
    run: u64,
}

impl fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceManager")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// A manager whose run id is 0: every manager built this way with the same secret
    /// accepts the others' nonces (tests, single-process tools). The engine uses `with_run`.
    pub fn new(secret: NonceSecret, lifetime: Duration) -> NonceManager {
        NonceManager::with_run(secret, lifetime, 0)
    }

    /// A manager for the process run `run` (see the module docs and [`run_id`]).
    pub fn with_run(secret: NonceSecret, lifetime: Duration, run: u64) -> NonceManager {
        let mac = HmacSha256::new_from_slice(&secret.0).expect("HMAC takes keys of any length");
        // A separate key for the time pad, so the pad and the tag never share a key.
        let pad_key = mac
            .clone()
            .chain_update(b"ferroswitch nonce time pad")
            .finalize()
            .into_bytes();
        let mut pad_block = [0u8; 64];
        pad_block[..32].copy_from_slice(&pad_key);
        NonceManager {
            mac,
            pad: Sha256::new().chain_update(pad_block),
            lifetime: lifetime.as_secs(),
            run,
        }
    }

    /// Lifetime in seconds.
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// A new nonce for `realm` that only verifies when presented from `bind` (when given),
    /// with the random part drawn from `rng` (the caller's, so a seeded engine issues the same
    /// nonces every run).
    pub fn issue_with(
        &self,
        rng: &mut impl RngCore,
        now: u64,
        realm: &str,
        bind: Option<IpAddr>,
    ) -> String {
        let mut random = [0u8; RAND_HEX / 2];
        rng.fill_bytes(&mut random);
        let mut head = hex(&random);
        let sealed = now ^ self.time_pad(&head);
        head.push_str(&format!("{sealed:016x}{:016x}", self.run));
        let tag = self.tag(&head, realm, bind);
        head + &hex(&tag)
    }

    /// Checks a nonce a client sent back for `realm`, as bound to no address.
    pub fn check(&self, now: u64, realm: &str, nonce: &str) -> NonceStatus {
        self.check_bound(now, realm, None, nonce)
    }

    /// Checks a nonce presented from `bind` (`None`: it must have been issued unbound).
    pub fn check_bound(
        &self,
        now: u64,
        realm: &str,
        bind: Option<IpAddr>,
        nonce: &str,
    ) -> NonceStatus {
        let Some((issued, run)) = self.authentic(realm, bind, nonce) else {
            return NonceStatus::Invalid;
        };
        if run != self.run {
            return NonceStatus::OtherRun;
        }
        // A timestamp ahead of `now` means the clock stepped back; the tag proves the nonce
        // is ours, so count its age as zero rather than rejecting a phone mid-registration.
        if now.saturating_sub(issued) > self.lifetime {
            NonceStatus::Stale
        } else {
            NonceStatus::Valid
        }
    }

    /// When an authentic nonce stops being valid (for pruning replay state).
    pub fn expires_at(&self, realm: &str, nonce: &str) -> Option<u64> {
        self.expires_at_bound(realm, None, nonce)
    }

    /// The same for a nonce bound to `bind`.
    pub fn expires_at_bound(&self, realm: &str, bind: Option<IpAddr>, nonce: &str) -> Option<u64> {
        self.authentic(realm, bind, nonce)
            .map(|(t, _)| t.saturating_add(self.lifetime))
    }

    /// The issue time and run of a nonce whose tag verifies for `realm` and `bind`.
    fn authentic(&self, realm: &str, bind: Option<IpAddr>, nonce: &str) -> Option<(u64, u64)> {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return None;
        }
        let (head, tag) = nonce.split_at(HEAD_LEN);
        let expected = hex(&self.tag(head, realm, bind));
        if !bool::from(expected.as_bytes().ct_eq(tag.as_bytes())) {
            return None;
        }
        let sealed = u64::from_str_radix(&head[RAND_HEX..RAND_HEX + TS_HEX], 16).ok()?;
        let run = u64::from_str_radix(&head[RAND_HEX + TS_HEX..], 16).ok()?;
        Some((sealed ^ self.time_pad(&head[..RAND_HEX]), run))
    }

    /// The keyed pad that hides the issue time, from the nonce's random part.
    fn time_pad(&self, random_hex: &str) -> u64 {
        let h = self
            .pad
            .clone()
            .chain_update(random_hex.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        u64::from_be_bytes(first)
    }

    fn tag(&self, head: &str, realm: &str, bind: Option<IpAddr>) -> [u8; TAG_HEX / 2] {
        // `head` has a fixed length and the address a length byte, so appending the realm
        // is unambiguous.
        let mut mac = self.mac.clone().chain_update(head.as_bytes());
        let mut addr = [0u8; 17];
        let used = match bind.map(|ip| ip.to_canonical()) {
            None => 1,
            Some(IpAddr::V4(v4)) => {
                addr[0] = 4;
                addr[1..5].copy_from_slice(&v4.octets());
                5
            }
            Some(IpAddr::V6(v6)) => {
                addr[0] = 16;
                addr[1..].copy_from_slice(&v6.octets());
                17
            }
        };
        mac.update(&addr[..used]);
        mac.update(realm.as_bytes());
        let mac = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_HEX / 2];
        out.copy_from_slice(&mac[..TAG_HEX / 2]);
        out
    }
}

/// The run id of a process: `random` (drawn at start) mixed with the node id when one is set,
/// so two nodes never share a run id even if their random draws did.
pub fn run_id(node_id: Option<&str>, random: u64) -> u64 {
    let h = Sha256::new()
        .chain_update(b"ferroswitch run\0")
        .chain_update(node_id.unwrap_or("").as_bytes())
        .chain_update([0u8])
        .chain_update(random.to_be_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    u64::from_be_bytes(first)
}

/// Replay protection: remembers the highest `nc` accepted for each nonce until the nonce
/// expires. Only credentials whose response already verified are recorded, so an attacker
/// without the password cannot fill it; it holds at most one entry per authenticated nonce
/// per lifetime.
///
/// Built for thousands of authenticated calls per second: an entry is 32 bytes without an
/// allocation (a nonce of ours is keyed by its 128-bit HMAC tag, anything else by a seeded
/// 128-bit hash), and expired entries leave from the front of an insertion-ordered queue a
/// few at a time on every `accept`, so there is never a pass over the whole table.
#[derive(Debug, Default)]
pub struct NcTracker {
    seen: FastMap<u128, (u32, u64)>,
    /// `(expires_at, key)` in the order entries were added. Nonces are issued with a fixed
    /// lifetime, so this is nearly sorted; an entry stuck behind a later one leaves late,
    /// which only costs memory (its nonce is stale by then anyway).
    order: std::collections::VecDeque<(u64, u128)>,
    hasher: crate::FastHash,
}

impl NcTracker {
    pub fn new() -> NcTracker {
        NcTracker::default()
    }

    fn key(&self, nonce: &str) -> u128 {
        if nonce.len() == NONCE_LEN && nonce.is_ascii() {
            if let Ok(tag) = u128::from_str_radix(&nonce[HEAD_LEN..], 16) {
                return tag;
            }
        }
        use std::hash::BuildHasher;
        let lo = self.hasher.hash_one((0u8, nonce));
        let hi = self.hasher.hash_one((1u8, nonce));
        (u128::from(hi) << 64) | u128::from(lo)
    }

    /// Records `nc` for `nonce`; false when it is not greater than one already accepted
    /// (a replay, or a reordered request that the client must retry with a fresh count).
    pub fn accept(&mut self, now: u64, nonce: &str, nc: u32, expires_at: u64) -> bool {
        self.prune_some(now, 4);
        let key = self.key(nonce);
        match self.seen.get_mut(&key) {
            Some((last, _)) if nc <= *last => false,
            Some((last, _)) => {
                *last = nc;
                true
            }
            None => {
                self.seen.insert(key, (nc, expires_at));
                self.order.push_back((expires_at, key));
                true
            }
        }
    }

    /// Forgets up to `max` expired nonces from the front of the queue.
    fn prune_some(&mut self, now: u64, max: usize) {
        for _ in 0..max {
            match self.order.front() {
                Some(&(exp, key)) if exp < now => {
                    self.order.pop_front();
                    self.seen.remove(&key);
                }
                _ => break,
            }
        }
    }

    /// Forgets every nonce that has expired (they can no longer verify anyway).
    pub fn prune(&mut self, now: u64) {
        self.seen.retain(|_, (_, exp)| *exp >= now);
        self.order.retain(|(exp, _)| *exp >= now);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    /// These tests only need distinct random parts, not a reproducible run.
    trait IssueAnyhow {
        fn issue(&self, now: u64, realm: &str) -> String;
        fn issue_bound(&self, now: u64, realm: &str, bind: Option<IpAddr>) -> String;
    }

    impl IssueAnyhow for NonceManager {
        fn issue(&self, now: u64, realm: &str) -> String {
            self.issue_bound(now, realm, None)
        }

        fn issue_bound(&self, now: u64, realm: &str, bind: Option<IpAddr>) -> String {
            self.issue_with(&mut rand::thread_rng(), now, realm, bind)
        }
    }

    fn manager() -> NonceManager {
        NonceManager::new(NonceSecret::from_bytes([7; 32]), Duration::from_secs(300))
    }

    #[test]
    fn valid_then_stale_on_a_virtual_clock() {
        let m = manager();
        let n = m.issue(1_000, "example.org");
        assert_eq!(n.len(), NONCE_LEN);
        assert_eq!(m.check(1_000, "example.org", &n), NonceStatus::Valid);
        assert_eq!(m.check(1_300, "example.org", &n), NonceStatus::Valid);
        assert_eq!(m.check(1_301, "example.org", &n), NonceStatus::Stale);
        // Clock stepped back: still ours, still valid.
        assert_eq!(m.check(900, "example.org", &n), NonceStatus::Valid);
        assert_eq!(m.expires_at("example.org", &n), Some(1_300));
    }

    #[test]
    fn bound_to_realm_and_secret() {
        let m = manager();
        let n = m.issue(1_000, "a");
        assert_eq!(m.check(1_000, "b", &n), NonceStatus::Invalid);
        let other = NonceManager::new(NonceSecret::from_bytes([8; 32]), Duration::from_secs(300));
        assert_eq!(other.check(1_000, "a", &n), NonceStatus::Invalid);
        // Changing the sealed timestamp to dodge expiry breaks the tag.
        let forged = format!("{}{:016x}{}", &n[..32], 5_000u64, &n[48..]);
        assert_eq!(m.check(5_000, "a", &forged), NonceStatus::Invalid);
        for junk in [
            "",
            "62fb812c-71d2-4a36-93d6-e0008e6a63ee",
            &n[1..],
            &"é".repeat(40),
        ] {
            assert_eq!(m.check(1_000, "a", junk), NonceStatus::Invalid);
        }
    }

    #[test]
    fn random_part_comes_from_the_rng() {
        let m = manager();
        let a = m.issue_with(&mut StepRng::new(1, 1), 10, "r", None);
        let b = m.issue_with(&mut StepRng::new(2, 1), 10, "r", None);
        assert_ne!(a, b);
        assert_ne!(m.issue(10, "r"), m.issue(10, "r"));
    }

    #[test]
    fn issue_17_13_nonces_of_one_instant_show_no_clock() {
        let m = manager();
        let now = 1_700_000_000u64;
        let nonces: Vec<String> = (0..64).map(|_| m.issue(now, "r")).collect();
        // Neither the plain timestamp nor any common prefix appears: issued at the same
        // second, two nonces agree on a leading hex digit only by chance (1 in 16).
        let plain = format!("{now:016x}");
        for n in &nonces {
            assert!(!n.contains(&plain), "{n} shows the clock");
            assert!(!n.contains(&plain[6..]), "{n} shows the clock's low digits");
            assert_eq!(m.check(now, "r", n), NonceStatus::Valid);
        }
        let shared_first = nonces
            .windows(2)
            .filter(|w| w[0].as_bytes()[0] == w[1].as_bytes()[0])
            .count();
        assert!(
            shared_first < 16,
            "{shared_first} of 63 pairs share a first digit"
        );
        // The sealed time field differs too, not only the random part.
        let sealed: std::collections::HashSet<&str> = nonces
            .iter()
            .map(|n| &n[RAND_HEX..RAND_HEX + TS_HEX])
            .collect();
        assert_eq!(sealed.len(), nonces.len());
        // And the time still reads back exactly (lifetime boundary on the second).
        assert_eq!(m.expires_at("r", &nonces[0]), Some(now + 300));
    }

    #[test]
    fn issue_17_13_any_tampered_digit_fails() {
        let m = manager();
        let n = m.issue(1_000, "r");
        for i in 0..NONCE_LEN {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(b).unwrap();
            assert_eq!(m.check(1_000, "r", &t), NonceStatus::Invalid, "digit {i}");
        }
    }

    #[test]
    fn bound_nonces_verify_only_from_their_address() {
        let m = manager();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let n = m.issue_bound(1_000, "r", Some(a));
        assert_eq!(m.check_bound(1_000, "r", Some(a), &n), NonceStatus::Valid);
        assert_eq!(
            m.check_bound(1_000, "r", Some(mapped), &n),
            NonceStatus::Valid
        );
        assert_eq!(m.check_bound(1_000, "r", Some(b), &n), NonceStatus::Invalid);
        assert_eq!(m.check(1_000, "r", &n), NonceStatus::Invalid);
        assert_eq!(m.check_bound(2_000, "r", Some(a), &n), NonceStatus::Stale);
        let free = m.issue(1_000, "r");
        assert_eq!(
            m.check_bound(1_000, "r", Some(a), &free),
            NonceStatus::Invalid
        );
        assert_eq!(m.check(1_000, "r", &free), NonceStatus::Valid);
    }

    #[test]
    fn hmac_matches_rfc4231() {
        // The MAC as the nonce code keys and feeds it (in parts).
        fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(key).unwrap();
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().into()
        }
        // RFC 4231 §4.2 (test case 1) and §4.3 (test case 2).
        let a = hmac_sha256(&[0x0b; 20], &[b"Hi ", b"There"]);
        assert_eq!(
            hex(&a),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let b = hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex(&b),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // §4.7 (test case 6): a 131-byte key is hashed first.
        let c = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&c),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn nc_must_increase_per_nonce() {
        let mut t = NcTracker::new();
        assert!(t.accept(0, "n", 1, 100));
        assert!(t.accept(1, "n", 2, 100));
        assert!(!t.accept(2, "n", 2, 100));
        assert!(!t.accept(2, "n", 1, 100));
        assert!(t.accept(2, "m", 1, 100));
        t.prune(101);
        assert!(t.is_empty());
    }

    #[test]
    fn our_nonces_are_keyed_by_their_tag_and_expired_ones_leave_a_few_at_a_time() {
        let m = manager();
        let mut t = NcTracker::new();
        let nonces: Vec<String> = (0..10).map(|i| m.issue(1_000 + i, "r")).collect();
        for (i, n) in nonces.iter().enumerate() {
            assert!(t.accept(1_000 + i as u64, n, 1, 1_300 + i as u64));
            assert!(
                !t.accept(1_000 + i as u64, n, 1, 1_300 + i as u64),
                "replay"
            );
        }
        assert_eq!(t.len(), 10);
        // Past every expiry: each accept forgets at most four old entries.
        let fresh = m.issue(2_000, "r");
        assert!(t.accept(2_000, &fresh, 1, 2_300));
        assert_eq!(t.len(), 10 - 4 + 1);
        assert!(t.accept(2_001, "other", 1, 2_300));
        assert_eq!(t.len(), 10 - 8 + 2);
        assert!(t.accept(2_002, "another", 1, 2_300));
        assert_eq!(t.len(), 3, "only the three live nonces are left");
        // A forgotten nonce is stale anyway; a live one still refuses a replay.
        assert!(!t.accept(2_002, &fresh, 1, 2_300));
    }

    #[test]
    fn a_nonce_of_another_run_is_authentic_but_never_valid() {
        let secret = || NonceSecret::from_bytes([7; 32]);
        let life = Duration::from_secs(300);
        let a = NonceManager::with_run(secret(), life, run_id(Some("fs1"), 1));
        let b = NonceManager::with_run(secret(), life, run_id(Some("fs2"), 1));
        let a_again = NonceManager::with_run(secret(), life, run_id(Some("fs1"), 2));
        let n = a.issue(1_000, "r");
        assert_eq!(a.check(1_000, "r", &n), NonceStatus::Valid);
        assert_eq!(b.check(1_000, "r", &n), NonceStatus::OtherRun);
        assert_eq!(a_again.check(1_000, "r", &n), NonceStatus::OtherRun);
        // Another secret: not authentic at all.
        let other = NonceManager::with_run(NonceSecret::from_bytes([8; 32]), life, 0);
        assert_eq!(other.check(1_000, "r", &n), NonceStatus::Invalid);
        // The run field is covered by the tag: claiming b's run breaks it.
        let claimed = format!(
            "{}{:016x}{}",
            &n[..RAND_HEX + TS_HEX],
            run_id(Some("fs2"), 1),
            &n[HEAD_LEN..]
        );
        assert_eq!(b.check(1_000, "r", &claimed), NonceStatus::Invalid);
    }
}
