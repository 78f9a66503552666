//! A test certificate authority made in the test (rcgen): server certificates for 127.0.0.1
//! and `localhost`, written as PEM files the daemon's `[tls]` points at, and rustls client
//! configurations that trust the CA (or trust nothing, for the refusal tests).
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
    pub der: CertificateDer<'static>,
}

/// A server certificate and its key, as PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ferroswitch test CA {name}"));
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` (DNS names or IP literals), valid from yesterday for
    /// `valid_for`.
    pub fn issue_for(&self, names: &[&str], cn: &str, valid_for: Duration) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::seconds(valid_for.as_secs() as i64);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A year-long certificate for 127.0.0.1 and localhost.
    pub fn issue(&self, cn: &str) -> Leaf {
        self.issue_for(
            &["127.0.0.1", "localhost"],
            cn,
            Duration::from_secs(365 * 86_400),
        )
    }

    /// A client configuration trusting this CA only.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        client_with(roots, None)
    }
}

/// A client trusting `roots`, limited to one TLS version when given.
pub fn client_with(
    roots: rustls::RootCertStore,
    only: Option<&'static rustls::SupportedProtocolVersion>,
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(ferroswitch::transport::crypto_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match only {
        Some(v) => vec![v],
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

impl Leaf {
    /// Writes `cert.pem` and `key.pem` into `dir` (the config's directory), returning the
    /// `[tls]` table that names them (relative paths, as operators write them).
    pub fn write(&self, dir: &Path, prefix: &str) -> (PathBuf, PathBuf) {
        let c = dir.join(format!("{prefix}cert.pem"));
        let k = dir.join(format!("{prefix}key.pem"));
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }
}

/// Connects to `addr` and completes a handshake for 127.0.0.1.
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    TlsConnector::from(config).connect(name, tcp).await
}
