//! Server nonces: unpredictable, bound to a realm and a time window, verified without state.
//!
//! A nonce is `hex(issued_at, 16) || hex(random, 32) || hex(tag, 32)` where `tag` is
//! HMAC-SHA-256 (truncated to 128 bits) keyed by a per-process secret over the timestamp, the
//! random part and the realm. Forging one needs the secret; a nonce issued for one realm does
//! not verify for another; after `lifetime` it is stale. Replay of a nonce within its lifetime
//! is caught by [`NcTracker`] (the `nc` counter), not here.
//!
//! Sans-IO: `now` (seconds since the Unix epoch) is always passed in; never reads a clock.
//! The secret is injected so tests are deterministic; a restart invalidates all nonces, and
//! phones simply answer the next challenge.

use super::digest::{constant_time_eq, hex};
use crate::FastMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

const TS_HEX: usize = 16;
const RAND_HEX: usize = 32;
const TAG_HEX: usize = 32;
/// Length of every nonce we issue.
pub const NONCE_LEN: usize = TS_HEX + RAND_HEX + TAG_HEX;

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
    /// Not ours, altered, or for another realm.
    Invalid,
}

/// Issues and checks nonces.
#[derive(Debug, Clone)]
pub struct NonceManager {
    secret: NonceSecret,
    lifetime: u64,
}

impl NonceManager {
    pub fn new(secret: NonceSecret, lifetime: Duration) -> NonceManager {
        NonceManager {
            secret,
            lifetime: lifetime.as_secs(),
        }
    }

    /// Lifetime in seconds.
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// A new nonce for `realm`, random part from the thread-local CSPRNG.
    pub fn issue(&self, now: u64, realm: &str) -> String {
        self.issue_with(&mut rand::thread_rng(), now, realm)
    }

    /// A new nonce with the random part drawn from `rng`.
    pub fn issue_with(&self, rng: &mut impl RngCore, now: u64, realm: &str) -> String {
        let mut random = [0u8; RAND_HEX / 2];
        rng.fill_bytes(&mut random);
        let head = format!("{now:016x}{}", hex(&random));
        let tag = self.tag(&head, realm);
        head + &tag
    }

    /// Checks a nonce a client sent back for `realm`.
    pub fn check(&self, now: u64, realm: &str, nonce: &str) -> NonceStatus {
        let Some(issued) = self.authentic(realm, nonce) else {
            return NonceStatus::Invalid;
        };
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
        self.authentic(realm, nonce)
            .map(|t| t.saturating_add(self.lifetime))
    }

    /// The issue time of a nonce whose tag verifies for `realm`.
    fn authentic(&self, realm: &str, nonce: &str) -> Option<u64> {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return None;
        }
        let (head, tag) = nonce.split_at(TS_HEX + RAND_HEX);
        if !constant_time_eq(self.tag(head, realm).as_bytes(), tag.as_bytes()) {
            return None;
        }
        u64::from_str_radix(&head[..TS_HEX], 16).ok()
    }

    fn tag(&self, head: &str, realm: &str) -> String {
        // `head` has a fixed length, so appending the realm is unambiguous.
        let mac = hmac_sha256(&self.secret.0, &[head.as_bytes(), realm.as_bytes()]);
        hex(&mac[..TAG_HEX / 2])
    }
}

/// HMAC (RFC 2104) over SHA-256. Keys up to the 64-byte block size are used as they are
/// (ours are 32 bytes); longer ones are hashed first, as the RFC says.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let hashed: [u8; 32];
    let key = if key.len() > 64 {
        hashed = Sha256::digest(key).into();
        &hashed[..]
    } else {
        key
    };
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner.finalize());
    outer.finalize().into()
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
        if nonce.len() == NONCE_LEN {
            if let Ok(tag) = u128::from_str_radix(&nonce[TS_HEX + RAND_HEX..], 16) {
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
        // Moving the timestamp forward to dodge expiry breaks the tag.
        let forged = format!("{:016x}{}", 5_000u64, &n[16..]);
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
        let a = m.issue_with(&mut StepRng::new(1, 1), 10, "r");
        let b = m.issue_with(&mut StepRng::new(2, 1), 10, "r");
        assert_ne!(a, b);
        assert_ne!(m.issue(10, "r"), m.issue(10, "r"));
    }

    #[test]
    fn hmac_matches_rfc4231() {
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
}
