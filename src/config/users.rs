//! The users directory: every `*.toml` file in it holds `[[user]]` tables
//! (`id`, `password` or `ha1`, optional `display_name`, `enabled`, the routing keys `context`,
//! `forward_all`, `forward_busy`, `forward_no_answer` and `no_answer_timeout`).
//!
//! Loads and validates accounts and reports every problem at once (a typo in one file must
//! not hide a duplicate in another). Never logs or prints a password.

use super::error::{ConfigError, ConfigErrors};
use crate::auth::digest::is_hex;
use crate::auth::Secret;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub secret: Secret,
    pub display_name: Option<String>,
    /// Disabled users are refused with 403 like a wrong password.
    pub enabled: bool,
    /// Forward every call to this number (run through the user's context).
    pub forward_all: Option<String>,
    /// Forward calls when the user is busy (486 from every phone).
    pub forward_busy: Option<String>,
    /// Forward calls the user does not answer within `no_answer_timeout`.
    pub forward_no_answer: Option<String>,
    /// How long the user's phones ring before `forward_no_answer`; `None`: the call's
    /// timeout (`[calls] call_timeout`).
    pub no_answer_timeout: Option<Duration>,
    /// The dialplan context of this user's calls; `None`: `"default"` (FreeSWITCH's
    /// `user_context`).
    pub context: Option<String>,
    /// Where it was defined, for messages.
    pub file: PathBuf,
    pub line: usize,
}

/// All accounts, looked up by id (case-sensitive, like the user part of a SIP URI).
#[derive(Debug, Clone, Default)]
pub struct Users {
    list: Vec<User>,
    index: HashMap<String, usize>,
}

impl Users {
    /// Fails on duplicate ids, naming both places.
    pub fn from_list(list: Vec<User>) -> Result<Users, ConfigErrors> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut errors = Vec::new();
        for (i, u) in list.iter().enumerate() {
            if let Some(&first) = index.get(&u.id) {
                let f = &list[first];
                errors.push(ConfigError::Invalid {
                    file: u.file.clone(),
                    line: Some(u.line),
                    key: "user.id".into(),
                    message: format!(
                        "duplicate user {:?} (first defined at {}:{})",
                        u.id,
                        f.file.display(),
                        f.line
                    ),
                });
            } else {
                index.insert(u.id.clone(), i);
            }
        }
        if errors.is_empty() {
            Ok(Users { list, index })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    pub fn get(&self, id: &str) -> Option<&User> {
        self.index.get(id).map(|&i| &self.list[i])
    }

    pub fn iter(&self) -> std::slice::Iter<'_, User> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    user: Vec<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    id: Spanned<String>,
    password: Option<Spanned<String>>,
    ha1: Option<Spanned<String>>,
    display_name: Option<String>,
    #[serde(default = "default_enabled")]
    enabled: bool,
    forward_all: Option<Spanned<String>>,
    forward_busy: Option<Spanned<String>>,
    forward_no_answer: Option<Spanned<String>>,
    no_answer_timeout: Option<Spanned<i64>>,
    context: Option<Spanned<String>>,
}

/// Longest `no_answer_timeout`, in seconds (as `[calls] call_timeout`).
const MAX_NO_ANSWER_TIMEOUT: i64 = 3600;

fn default_enabled() -> bool {
    true
}

/// Parses one users file. `realm` (the configured domain) is recorded with stored HA1s so
/// that they are never used for another realm.
pub fn parse_users_file(
    text: &str,
    file: &Path,
    realm: Option<&str>,
) -> Result<Vec<User>, ConfigErrors> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigErrors::from(ConfigError::syntax(file, text, &e)))?;
    let mut users = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in raw.user.into_iter().enumerate() {
        let err = |span, key: &str, msg: String| {
            ConfigError::invalid(file, text, Some(span), format!("user[{i}].{key}"), msg)
        };
        let id_span = r.id.span();
        let id = r.id.into_inner();
        if let Some(why) = bad_id(&id) {
            errors.push(err(id_span.clone(), "id", format!("{id:?} {why}")));
        }
        let secret = match (r.password, r.ha1) {
            (Some(p), None) => {
                if p.get_ref().is_empty() {
                    errors.push(err(p.span(), "password", "must not be empty".into()));
                }
                Some(Secret::Password(p.into_inner()))
            }
            (None, Some(h)) => {
                let hex = h.get_ref();
                if hex.len() != 32 || !is_hex(hex) {
                    errors.push(err(
                        h.span(),
                        "ha1",
                        "must be 32 hex digits (MD5 of \"id:realm:password\"; see `ferroswitch hash-password`)"
                            .into(),
                    ));
                }
                Some(Secret::Ha1 {
                    hex: h.into_inner().to_ascii_lowercase(),
                    realm: realm.map(str::to_string),
                })
            }
            (Some(_), Some(h)) => {
                errors.push(err(
                    h.span(),
                    "ha1",
                    format!("user {id:?} has both password and ha1; keep exactly one"),
                ));
                None
            }
            (None, None) => {
                errors.push(err(
                    id_span.clone(),
                    "password",
                    format!("user {id:?} needs a password or an ha1"),
                ));
                None
            }
        };
        // A forward is a number dialled from the user's context: a SIP user part.
        let mut forward = |v: Option<Spanned<String>>, key: &str| {
            let v = v?;
            let s = v.get_ref();
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                let msg = format!(
                    "{s:?} must be a number without spaces (leave it out for no forwarding)"
                );
                errors.push(err(v.span(), key, msg));
                return None;
            }
            Some(v.into_inner())
        };
        let forward_all = forward(r.forward_all, "forward_all");
        let forward_busy = forward(r.forward_busy, "forward_busy");
        let forward_no_answer = forward(r.forward_no_answer, "forward_no_answer");
        let no_answer_timeout = r.no_answer_timeout.and_then(|t| {
            if (1..=MAX_NO_ANSWER_TIMEOUT).contains(t.get_ref()) {
                return Some(Duration::from_secs(*t.get_ref() as u64));
            }
            let msg = format!(
                "{} is out of range (1 to {MAX_NO_ANSWER_TIMEOUT} seconds)",
                t.get_ref()
            );
            errors.push(err(t.span(), "no_answer_timeout", msg));
            None
        });
        let context = r.context.and_then(|c| {
            let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            if !c.get_ref().is_empty() && c.get_ref().bytes().all(ok) {
                return Some(c.into_inner());
            }
            let msg = format!(
                "{:?} is not a context name (letters, digits, '_' and '-')",
                c.get_ref()
            );
            errors.push(err(c.span(), "context", msg));
            None
        });
        if let Some(secret) = secret {
            users.push(User {
                id,
                secret,
                display_name: r.display_name,
                enabled: r.enabled,
                forward_all,
                forward_busy,
                forward_no_answer,
                no_answer_timeout,
                context,
                file: file.to_path_buf(),
                line: super::error::line_of(text, id_span.start),
            });
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Loads every `*.toml` file of `dir` (sorted by name, so messages are stable).
pub fn load_dir(dir: &Path, realm: Option<&str>) -> Result<Users, ConfigErrors> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Read {
        file: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    let mut users = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => match parse_users_file(&text, &f, realm) {
                Ok(mut u) => users.append(&mut u),
                Err(mut e) => errors.append(&mut e.0),
            },
            Err(source) => errors.push(ConfigError::Read { file: f, source }),
        }
    }
    // Duplicates are checked even when some file failed, so one run shows everything.
    match Users::from_list(users) {
        Ok(u) if errors.is_empty() => Ok(u),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(mut dup) => {
            errors.append(&mut dup.0);
            Err(ConfigErrors(errors))
        }
    }
}

/// Why an id cannot be a SIP user part we serve, if it cannot.
fn bad_id(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("is empty");
    }
    if id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "@:;<>\"\\,?".contains(c))
    {
        return Some("may not contain spaces or any of @ : ; < > \" \\ , ?");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<User>, ConfigErrors> {
        parse_users_file(text, Path::new("users/x.toml"), Some("example.org"))
    }

    #[test]
    fn password_and_ha1_users() {
        let u = parse(
            "[[user]]\nid = \"1000\"\npassword = \"s3cret-pass\"\n\n[[user]]\nid = \"1001\"\nha1 = \"52568CE6A3D2FE06F08F75DAD86A5E67\"\ndisplay_name = \"Desk\"\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].secret, Secret::Password("s3cret-pass".into()));
        assert!(u[0].enabled && u[0].line == 2);
        assert_eq!(
            u[1].secret,
            Secret::Ha1 {
                hex: "52568ce6a3d2fe06f08f75dad86a5e67".into(),
                realm: Some("example.org".into())
            }
        );
        assert!(!u[1].enabled && u[1].display_name.as_deref() == Some("Desk"));
    }

    #[test]
    fn every_problem_is_reported() {
        let e = parse(
            "[[user]]\nid = \"a b\"\npassword = \"x\"\n[[user]]\nid = \"c\"\n[[user]]\nid = \"d\"\nha1 = \"xyz\"\n[[user]]\nid = \"e\"\npassword = \"p\"\nha1 = \"52568ce6a3d2fe06f08f75dad86a5e67\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("users/x.toml:2: user[0].id: \"a b\" may not"),
            "{e}"
        );
        assert!(
            e.contains("users/x.toml:5: user[1].password: user \"c\" needs"),
            "{e}"
        );
        assert!(
            e.contains("users/x.toml:8: user[2].ha1: must be 32 hex"),
            "{e}"
        );
        assert!(
            e.contains("users/x.toml:12: user[3].ha1: user \"e\" has both"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse("[[user]]\nid = \"1\"\npasswd = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("users/x.toml:3: [[user]]: unknown field `passwd`"),
            "{e}"
        );
    }

    #[test]
    fn duplicates_name_both_places() {
        let mut a = parse("[[user]]\nid = \"1\"\npassword = \"x\"\n").unwrap();
        let b = parse_users_file(
            "\n[[user]]\nid = \"1\"\npassword = \"y\"\n",
            Path::new("users/y.toml"),
            None,
        )
        .unwrap();
        a.extend(b);
        let e = Users::from_list(a).unwrap_err().to_string();
        assert_eq!(
            e,
            "users/y.toml:3: user.id: duplicate user \"1\" (first defined at users/x.toml:2)"
        );
    }
}
