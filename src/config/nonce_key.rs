//! `[registrar] nonce_secret_file`: the secret every node of a cluster shares, so that a nonce
//! issued by one node verifies on another (a phone's REGISTER refresh and its calls may reach
//! different nodes behind the edge proxy's dispatcher).
//!
//! The file holds at least 32 bytes of secret, e.g. `openssl rand -hex 32 > nonce.key;
//! chmod 600 nonce.key`. Surrounding whitespace (the newline `openssl` writes) is not part of
//! it, so a copy edited on another machine still matches. The nonce key is SHA-256 of the
//! secret under a fixed label, so a secret of any length gives a 32-byte key and the file's
//! bytes are never used as a key directly.
//!
//! Never creates the file and never falls back to a random secret when it is set but
//! unusable: nodes with different secrets would answer each other's phones with endless
//! challenges, so the daemon refuses to start and `check-config` says why.

use crate::auth::NonceSecret;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Fewer bytes than this are refused: 32 bytes is the HMAC-SHA-256 key size.
pub const MIN_SECRET_LEN: usize = 32;

/// The secret read from `path`, and whether the file is readable by its group or by others
/// (a warning, not an error: the daemon may run under a group meant to read it).
pub fn load(path: &Path) -> Result<(NonceSecret, bool), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = bytes.trim_ascii();
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "{} holds {} bytes of secret, at least {MIN_SECRET_LEN} are needed \
             (openssl rand -hex 32 > {0})",
            path.display(),
            secret.len()
        ));
    }
    let key: [u8; 32] = Sha256::new()
        .chain_update(b"ferroswitch nonce secret v1\0")
        .chain_update(secret)
        .finalize()
        .into();
    Ok((NonceSecret::from_bytes(key), readable_by_others(path)))
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(label: &str, text: &[u8], mode: u32) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "ferroswitch-nonce-key-{label}-{}",
            std::process::id()
        ));
        std::fs::write(&p, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        p
    }

    #[test]
    fn same_secret_same_key_whatever_the_trailing_newline() {
        let hex = b"4f2a9c0d1e8b7a6f5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b";
        let a = file("a", &[hex.as_slice(), b"\n"].concat(), 0o600);
        let b = file("b", hex, 0o600);
        let (ka, wa) = load(&a).unwrap();
        let (kb, _) = load(&b).unwrap();
        let (m1, m2) = (
            crate::auth::NonceManager::new(ka, std::time::Duration::from_secs(60)),
            crate::auth::NonceManager::new(kb, std::time::Duration::from_secs(60)),
        );
        let n = m1.issue_with(&mut rand::rngs::mock::StepRng::new(1, 1), 100, "r", None);
        assert_eq!(m2.check(100, "r", &n), crate::auth::NonceStatus::Valid);
        assert!(!wa);
        let _ = (std::fs::remove_file(a), std::fs::remove_file(b));
    }

    #[test]
    fn short_missing_and_shared_files() {
        let short = file("short", b"0123456789abcdef0123456789abcde\n", 0o600);
        let e = load(&short).err().unwrap();
        assert!(
            e.contains(&short.display().to_string()) && e.contains("31 bytes"),
            "{e}"
        );
        let missing = std::env::temp_dir().join("ferroswitch-no-such-nonce.key");
        let e = load(&missing).err().unwrap();
        assert!(e.contains("ferroswitch-no-such-nonce.key"), "{e}");
        let shared = file("shared", &[b'k'; 40], 0o644);
        assert!(load(&shared).unwrap().1, "world readable is reported");
        let _ = (std::fs::remove_file(short), std::fs::remove_file(shared));
    }
}
