//! `[tls]`: the certificate and key the TLS listeners serve, the lowest TLS version accepted,
//! and how outbound TLS (trunks) checks servers. Also the loading and checking of the PEM
//! files, which `check-config`, the start-up and SIGHUP share: the chain and key must parse
//! and match (an error), a certificate that expires within `EXPIRY_WARNING` or does not cover
//! the domain is a warning.
//!
//! Reads files, never opens sockets nor builds TLS sessions (the transport does, from the
//! `TlsMaterial` loaded here).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A certificate closer to its end than this is warned about (Let's Encrypt renews at 30
/// days left; at 14 the renewal has failed twice).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// The lowest TLS version a peer may use. TLS 1.0 and 1.1 are never offered (RFC 8996).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum TlsVersion {
    #[default]
    V1_2,
    V1_3,
}

impl std::str::FromStr for TlsVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<TlsVersion, String> {
        match s {
            "1.2" => Ok(TlsVersion::V1_2),
            "1.3" => Ok(TlsVersion::V1_3),
            _ => Err(format!(
                "{s:?} is not a TLS version we accept (\"1.2\" or \"1.3\"; 1.0 and 1.1 are not served)"
            )),
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        })
    }
}

/// `[tls]`, paths resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM: the server certificate first, then the intermediates (Let's Encrypt's
    /// `fullchain.pem`).
    pub certificate: PathBuf,
    /// PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key.
    pub private_key: PathBuf,
    pub min_version: TlsVersion,
    /// Outbound TLS verifies the server's certificate against the system roots and `ca_file`.
    pub verify_peers: bool,
    /// Extra CA certificates (PEM) trusted for outbound TLS.
    pub ca_file: Option<PathBuf>,
}

/// A certificate chain and its private key, parsed and checked to match.
#[derive(Debug)]
pub struct TlsMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> TlsMaterial {
        TlsMaterial {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// What is wrong with the files, with the key (`tls.certificate`, `tls.private_key`) to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFileError {
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for TlsFileError {}

fn bad(key: &'static str, message: String) -> TlsFileError {
    TlsFileError { key, message }
}

/// Reads the chain and key and checks that the key belongs to the first certificate.
pub fn load(settings: &TlsSettings) -> Result<TlsMaterial, TlsFileError> {
    let cert_path = &settings.certificate;
    let chain = read_certificates(cert_path).map_err(|m| bad("tls.certificate", m))?;
    let key_path = &settings.private_key;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        bad(
            "tls.private_key",
            format!("{}: {}", key_path.display(), pem_error(e, "private key")),
        )
    })?;
    let provider = crate::transport::crypto_provider();
    rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).map_err(
        |e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "{} is not the key of the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                ),
                other => format!("{}: unusable key: {other}", key_path.display()),
            };
            bad("tls.private_key", why)
        },
    )?;
    Ok(TlsMaterial { chain, key })
}

/// Every certificate in a PEM file, in order; an error when there is none.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e, "certificate")))?;
    let chain = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e, "certificate")))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(chain)
}

fn pem_error(e: rustls::pki_types::pem::Error, what: &str) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => format!("cannot read: {io}"),
        E::NoItemsFound => format!("no PEM {what} in it"),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// Warnings about a loaded certificate: it expires within `EXPIRY_WARNING` of `now` (or has
/// expired), or does not name `domain` (when one is configured).
pub fn warnings(m: &TlsMaterial, domain: Option<&str>, now: SystemTime) -> Vec<String> {
    let mut out = Vec::new();
    let Some(leaf) = m.chain.first() else {
        return out;
    };
    match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => {
            let not_after = cert.validity().not_after.timestamp();
            let now_s = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let left = not_after - now_s;
            if left <= 0 {
                out.push(format!(
                    "the certificate expired on {}: phones will refuse it",
                    cert.validity().not_after
                ));
            } else if left < EXPIRY_WARNING.as_secs() as i64 {
                out.push(format!(
                    "the certificate expires on {} (in {} days): renew it, then send SIGHUP",
                    cert.validity().not_after,
                    left / 86_400
                ));
            }
        }
        Err(e) => out.push(format!("cannot read the certificate's validity: {e}")),
    }
    if let Some(domain) = domain {
        if !covers(leaf, domain) {
            out.push(format!(
                "the certificate does not name the domain {domain:?}: phones that check it \
                 will refuse the connection"
            ));
        }
    }
    out
}

/// Whether the certificate is valid for `host` as a TLS client checks it (RFC 6125 through
/// webpki: subjectAltName DNS names and IP addresses, wildcards in the first label).
pub fn covers(leaf: &CertificateDer<'_>, host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_old_ones_are_refused() {
        assert_eq!("1.2".parse::<TlsVersion>(), Ok(TlsVersion::V1_2));
        assert_eq!("1.3".parse::<TlsVersion>(), Ok(TlsVersion::V1_3));
        assert!("1.1"
            .parse::<TlsVersion>()
            .unwrap_err()
            .contains("not served"));
        assert!("1.0".parse::<TlsVersion>().is_err());
    }
}
