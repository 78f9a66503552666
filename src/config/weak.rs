//! Weak password detection, as FreeSWITCH warns about its `default_password`: a password
//! equal to the user id, a common default, or shorter than 8 characters. For a stored HA1 we
//! can still recognise the id and the common defaults by hashing them with the realm.
//!
//! A decision where it matters: [`refuse_weak_passwords`] turns the reasons into config
//! errors (the daemon and `check-config` exit 1) for enabled users while any listener is not
//! loopback, unless `[security] allow_weak_passwords = true`. On loopback only they stay
//! warnings. Never prints the password.

use super::error::ConfigError;
use super::listen::ListenAddr;
use super::users::Users;
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

/// One error per enabled user with a weak password, when a listener in `listen` is reachable
/// from other hosts (not loopback) and weak passwords are not explicitly allowed.
pub fn refuse_weak_passwords(
    users: &Users,
    listen: &[ListenAddr],
    allow_weak_passwords: bool,
) -> Vec<ConfigError> {
    let Some(public) = listen.iter().find(|l| !l.addr.ip().is_loopback()) else {
        return Vec::new();
    };
    if allow_weak_passwords {
        return Vec::new();
    }
    users
        .iter()
        .filter(|u| u.enabled)
        .filter_map(|u| {
            let why = weak_password_reasons(&u.id, &u.secret);
            (!why.is_empty()).then(|| ConfigError::Invalid {
                file: u.file.clone(),
                line: Some(u.line),
                key: format!("user {:?}", u.id),
                message: format!(
                    "weak password ({}) while the server listens on {public}, which is not \
                     loopback: change it, disable the user (enabled = false), or set \
                     [security] allow_weak_passwords = true",
                    why.join("; ")
                ),
            })
        })
        .collect()
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

    fn users(list: &[(&str, &str, bool)]) -> Users {
        let list = list
            .iter()
            .enumerate()
            .map(|(i, &(id, p, enabled))| crate::config::User {
                id: id.into(),
                secret: pw(p),
                display_name: None,
                enabled,
                forward_all: None,
                forward_busy: None,
                forward_no_answer: None,
                no_answer_timeout: None,
                context: None,
                file: "users/u.toml".into(),
                line: i + 1,
            })
            .collect();
        Users::from_list(list).unwrap()
    }

    #[test]
    fn weak_passwords_are_refused_only_on_a_public_listener() {
        let u = users(&[
            ("alice", "1234", true),
            ("bob", "1234", false),
            ("1000", "kT4x-9qPz-Lm2w", true),
        ]);
        let public: Vec<ListenAddr> = vec![
            "udp:127.0.0.1:5060".parse().unwrap(),
            "tcp:0.0.0.0:5060".parse().unwrap(),
        ];
        let errs = refuse_weak_passwords(&u, &public, false);
        assert_eq!(errs.len(), 1, "only the enabled weak user: {errs:?}");
        let e = errs[0].to_string();
        assert!(
            e.starts_with("users/u.toml:1: user \"alice\": weak password ("),
            "{e}"
        );
        assert!(e.contains("listens on tcp:0.0.0.0:5060"), "{e}");
        assert!(e.contains("allow_weak_passwords = true"), "{e}");
        assert!(refuse_weak_passwords(&u, &public, true).is_empty());
        let loopback: Vec<ListenAddr> = vec![
            "udp:127.0.0.1:5060".parse().unwrap(),
            "tcp:[::1]:5060".parse().unwrap(),
        ];
        assert!(refuse_weak_passwords(&u, &loopback, false).is_empty());
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
