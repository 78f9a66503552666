//! Weak password detection, as FreeSWITCH warns about its `default_password`: a password
//! equal to the user id, a common default, or shorter than 8 characters. For a stored HA1 we
//! can still recognise the id and the common defaults by hashing them with the realm.
//!
//! Advisory only: returns reasons, never refuses an account, never prints the password.

use crate::auth::{hash_password, Secret};

/// Shortest password we do not warn about.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Defaults that scanners try first (FreeSWITCH ships `1234`; phones ship `0000`/`admin`).
pub const COMMON_PASSWORDS: &[&str] = &[
    "1234",
    "0000",
    "1111",
    "12345",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "00000000",
    "password",
    "passw0rd",
    "secret",
    "admin",
    "changeme",
    "default",
    "qwerty",
    "letmein",
    "test",
    "voip",
    "sip",
];

/// Why this account's password is weak; empty when we see nothing wrong. With an HA1 and an
/// unknown realm nothing can be said.
pub fn weak_password_reasons(id: &str, secret: &Secret) -> Vec<String> {
    match secret {
        Secret::Password(p) => password_reasons(id, p),
        Secret::Ha1 {
            hex,
            realm: Some(realm),
        } => ha1_reasons(id, realm, hex),
        Secret::Ha1 { realm: None, .. } => Vec::new(),
    }
}

fn password_reasons(id: &str, p: &str) -> Vec<String> {
    let mut out = Vec::new();
    if p.eq_ignore_ascii_case(id) {
        out.push("the password equals the user id".to_string());
    }
    if let Some(c) = COMMON_PASSWORDS.iter().find(|c| c.eq_ignore_ascii_case(p)) {
        out.push(format!("the password is a common default ({c:?})"));
    }
    let len = p.chars().count();
    if len < MIN_PASSWORD_LEN {
        out.push(format!(
            "the password is shorter than {MIN_PASSWORD_LEN} characters ({len})"
        ));
    }
    out
}

fn ha1_reasons(id: &str, realm: &str, hex: &str) -> Vec<String> {
    let hex = hex.to_ascii_lowercase();
    if hash_password(id, realm, id) == hex {
        return vec!["the ha1 is of a password equal to the user id".to_string()];
    }
    COMMON_PASSWORDS
        .iter()
        .find(|c| hash_password(id, realm, c) == hex)
        .map(|c| vec![format!("the ha1 is of a common default password ({c:?})")])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(p: &str) -> Secret {
        Secret::Password(p.into())
    }

    #[test]
    fn seed_password_is_weak_twice_over() {
        let r = weak_password_reasons("alice", &pw("1234"));
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].contains("common default (\"1234\")"));
        assert!(r[1].contains("shorter than 8 characters (4)"));
    }

    #[test]
    fn id_as_password_and_strong_ones() {
        let r = weak_password_reasons("10001000", &pw("10001000"));
        assert_eq!(r, vec!["the password equals the user id".to_string()]);
        assert!(weak_password_reasons("1000", &pw("kT4x-9qPz-Lm2w")).is_empty());
        assert_eq!(weak_password_reasons("1000", &pw("Password")).len(), 1);
    }

    #[test]
    fn weak_ha1_is_recognised_when_the_realm_is_known() {
        let ha1 = hash_password("alice", "192.168.4.4", "1234");
        let known = Secret::Ha1 {
            hex: ha1.clone(),
            realm: Some("192.168.4.4".into()),
        };
        assert_eq!(weak_password_reasons("alice", &known).len(), 1);
        let unknown = Secret::Ha1 {
            hex: ha1,
            realm: None,
        };
        assert!(weak_password_reasons("alice", &unknown).is_empty());
        let id = Secret::Ha1 {
            hex: hash_password("1000", "r", "1000"),
            realm: Some("r".into()),
        };
        assert!(weak_password_reasons("1000", &id)[0].contains("equal to the user id"));
    }
}
