//! Fresh identifiers a user agent mints: tags (§19.3), RFC 3261 branches (§8.1.1.7) and
//! Call-IDs (§8.1.1.4). They must be unique, not secret, so any `RngCore` does; tests pass
//! a seeded one. Never reads a clock.

use crate::sip::typed::MAGIC_COOKIE;
use rand::RngCore;

/// 64 random bits as 16 lower-case hex digits.
fn hex64(rng: &mut impl RngCore) -> String {
    format!("{:016x}", rng.next_u64())
}

/// A tag with 64 random bits (§19.3 asks for at least 32), as 16 lower-case hex digits.
///
/// Not mixed-case alphanumerics as FreeSWITCH mints them: peers that look for a header with
/// a plain substring search (SIPp finds the CSeq method with `strstr(msg, "CSeq")`) misread
/// a message whose tag happens to contain "CSeq" or "Via". Hex digits spell no header name.
pub fn new_tag_with(rng: &mut impl RngCore) -> String {
    hex64(rng)
}

/// A branch with the magic cookie and 64 random bits.
pub fn new_branch_with(rng: &mut impl RngCore) -> String {
    format!("{MAGIC_COOKIE}{}", hex64(rng))
}

/// A branch naming the node that sent it (`[server] node_id`): `z9hG4bK-<node>-<64 bits>`,
/// the plain one without a node. Node ids are RFC 3261 token characters.
pub fn new_branch_for(rng: &mut impl RngCore, node: Option<&str>) -> String {
    match node {
        Some(n) if !n.is_empty() => format!("{MAGIC_COOKIE}-{n}-{}", hex64(rng)),
        _ => new_branch_with(rng),
    }
}

/// A Call-ID of 128 random bits, `@host` appended when a host is given.
pub fn new_call_id_with(rng: &mut impl RngCore, host: Option<&str>) -> String {
    let id = format!("{}{}", hex64(rng), hex64(rng));
    match host {
        Some(h) if !h.is_empty() => format!("{id}@{h}"),
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Via;
    use rand::rngs::mock::StepRng;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn shapes_and_uniqueness() {
        let mut rng = StepRng::new(0xab, 1);
        assert_eq!(new_tag_with(&mut rng), "00000000000000ab");
        assert_eq!(new_branch_with(&mut rng), "z9hG4bK00000000000000ac");
        assert_eq!(
            new_call_id_with(&mut rng, Some("192.0.2.1")),
            "00000000000000ad00000000000000ae@192.0.2.1"
        );
        let mut rng = StdRng::seed_from_u64(7);
        let b = new_branch_with(&mut rng);
        let via = Via::parse(&format!("SIP/2.0/UDP h;branch={b}")).unwrap();
        assert!(via.has_rfc3261_branch());
        assert_ne!(new_tag_with(&mut rng), new_tag_with(&mut rng));
        assert!(!new_call_id_with(&mut rng, None).contains('@'));
        let b = new_branch_for(&mut rng, Some("fs1"));
        assert!(b.starts_with("z9hG4bK-fs1-"), "{b}");
        assert!(Via::parse(&format!("SIP/2.0/UDP h;branch={b}"))
            .unwrap()
            .has_rfc3261_branch());
        assert!(!new_branch_for(&mut rng, None).contains('-'));
    }
}
