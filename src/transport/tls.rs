//! TLS for SIP (RFC 3261 §26.2, RFC 5630) with rustls: the server side that TLS listeners
//! hand accepted connections to, the client side for connections we open, and the swap of
//! the served certificate on reload.
//!
//! Only session set-up lives here (the configurations, and `tls_handshake`, which a connection
//! task runs before anything else): once the handshake is done, a TLS connection is framed,
//! kept alive, timed out and capped exactly as a TCP one (`tcp.rs` drives both). Versions are
//! TLS 1.2 and 1.3 only, with rustls's cipher suites, all of them AEAD (AES-GCM and
//! ChaCha20-Poly1305 with ECDHE); nothing here ever widens that. Never logs key material.

use super::handle::{cancelled, Shared};
use super::stats::bump;
use super::table::ConnFlags;
use crate::net::{CloseReason, Origin};
use bytes::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::fmt;
use std::sync::{Arc, RwLock};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The rustls crypto provider of every TLS session and key check: *ring*, which builds with
/// the Rust toolchain alone (aws-lc-rs, rustls's default, needs a C/CMake build of aws-lc). It
/// offers no post-quantum key exchange, hence rustls's deprecation note; the phones we serve
/// offer none either.
#[allow(deprecated)]
pub fn crypto_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// What the TLS side of the transport needs: the certificate chain and key to serve, the
/// lowest version accepted, and how servers we connect to are checked.
pub struct TlsSetup {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Refuse TLS 1.2 as well (TLS 1.3 only).
    pub tls13_only: bool,
    /// Verify the certificate of servers we connect to (trunks): system roots plus
    /// `extra_roots`. Off: any certificate is accepted (phones have self-signed ones), and
    /// the connection is encrypted but not authenticated.
    pub verify_peers: bool,
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup")
            .field("chain", &self.chain.len())
            .field("tls13_only", &self.tls13_only)
            .field("verify_peers", &self.verify_peers)
            .field("extra_roots", &self.extra_roots.len())
            .finish_non_exhaustive()
    }
}

/// Why a TLS set-up or reload was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the private key does not fit the certificate: {0}")]
    Key(rustls::Error),
    #[error("TLS settings refused: {0}")]
    Config(rustls::Error),
    #[error("no usable root certificate for verify_peers (system roots: {0})")]
    NoRoots(String),
}

/// The built server and client configurations, shared by the listeners and connects.
pub(crate) struct TlsContext {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
    resolver: Arc<ReloadableCert>,
}

impl TlsContext {
    pub fn new(setup: TlsSetup) -> Result<TlsContext, TlsSetupError> {
        let provider = Arc::new(crypto_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if setup.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let key = certified_key(setup.chain, setup.key, &provider)?;
        let resolver = Arc::new(ReloadableCert(RwLock::new(Arc::new(key))));
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(TlsSetupError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(TlsSetupError::Config)?;
        let client = if setup.verify_peers {
            client
                .with_root_certificates(roots(setup.extra_roots)?)
                .with_no_client_auth()
        } else {
            client
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
                .with_no_client_auth()
        };
        Ok(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            resolver,
        })
    }

    /// Serves `chain` and `key` to connections that start from now on; open ones keep the
    /// session they have. The old certificate stays when the new pair is refused.
    pub fn reload(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), TlsSetupError> {
        let provider = crypto_provider();
        let new = certified_key(chain, key, &provider)?;
        *self.resolver.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        Ok(())
    }
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsSetupError> {
    CertifiedKey::from_der(chain, key, provider).map_err(TlsSetupError::Key)
}

/// The system's roots (`/etc/ssl/certs` on Debian, kept by the ca-certificates package the
/// operator already maintains) plus the configured extra CAs.
fn roots(extra: Vec<CertificateDer<'static>>) -> Result<rustls::RootCertStore, TlsSetupError> {
    let mut store = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = store.add_parsable_certificates(native.certs);
    let (extra_added, _) = store.add_parsable_certificates(extra);
    if added + extra_added == 0 {
        let why = native
            .errors
            .first()
            .map_or("none found".to_string(), |e| e.to_string());
        return Err(TlsSetupError::NoRoots(why));
    }
    Ok(store)
}

/// The certificate every handshake gets; replaced whole on reload.
#[derive(Debug)]
struct ReloadableCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// `verify_peers = false`: the server's certificate is not checked (its signature over the
/// handshake still is, so the session is encrypted end to end with whoever answered).
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What happens on a new connection before SIP flows.
pub(crate) enum Handshake {
    /// Plain TCP.
    None,
    /// TLS, we are the server (an accepted connection).
    Accept,
    /// TLS, we are the client; the name the server's certificate must carry (and SNI).
    Connect(rustls::pki_types::ServerName<'static>),
}

pub(crate) type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// The TLS handshake, bounded by `handshake_timeout` and cancelled by shutdown or by the
/// table dropping the connection (evicted to make room, or closed on request). Messages
/// queued meanwhile are moved to `held` (at most `write_queue`), to go out first.
pub(crate) async fn tls_handshake(
    shared: &Shared,
    stream: TcpStream,
    handshake: Handshake,
    origin: Origin,
    rx: &mut mpsc::Receiver<Bytes>,
    flags: &ConnFlags,
    held: &mut Vec<Bytes>,
) -> Result<TlsStream, CloseReason> {
    let Some(tls) = shared.tls.as_ref() else {
        return Err(CloseReason::Handshake(
            "no TLS certificate configured".into(),
        ));
    };
    let c = &shared.counters;
    let fut = async {
        match handshake {
            Handshake::Connect(name) => tls
                .connector
                .connect(name, stream)
                .await
                .map(tokio_rustls::TlsStream::from),
            _ => tls
                .acceptor
                .accept(stream)
                .await
                .map(tokio_rustls::TlsStream::from),
        }
    };
    tokio::pin!(fut);
    let deadline = tokio::time::sleep(shared.config.handshake_timeout);
    tokio::pin!(deadline);
    let mut sd = shared.shutdown_signal();
    let room = shared.config.write_queue.max(1);
    loop {
        tokio::select! {
            _ = cancelled(&mut sd) => return Err(CloseReason::Shutdown),
            _ = &mut deadline => {
                bump(&c.tls_handshake_failures);
                let limit = shared.config.handshake_timeout;
                return Err(CloseReason::Handshake(format!("not finished within {limit:?}")));
            }
            r = &mut fut => {
                return match r {
                    Ok(s) => {
                        bump(&c.tls_handshakes);
                        tracing::debug!(peer = %origin.source, id = ?origin.connection, "TLS session established");
                        Ok(s)
                    }
                    Err(e) => {
                        bump(&c.tls_handshake_failures);
                        Err(CloseReason::Handshake(describe_failure(&e)))
                    }
                };
            }
            queued = rx.recv(), if held.len() < room => match queued {
                Some(data) => held.push(data),
                None if flags.evicted() => return Err(CloseReason::Evicted),
                None => return Err(CloseReason::Local),
            },
        }
    }
}

/// One line for the log about a failed handshake: what the peer or we objected to, with a
/// hint for the case operators meet most (a phone that does not trust our certificate).
pub(crate) fn describe_failure(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::AlertReceived(alert)) => {
            use rustls::AlertDescription as A;
            let hint = match alert {
                A::UnknownCA | A::BadCertificate | A::CertificateUnknown => {
                    ": the peer does not trust our certificate (install its CA on the phone, \
                     or use a publicly trusted certificate)"
                }
                A::ProtocolVersion | A::HandshakeFailure | A::InsufficientSecurity => {
                    ": no TLS version or cipher suite in common (TLS 1.2+ with AEAD suites only)"
                }
                _ => "",
            };
            format!("the peer sent the alert {alert:?}{hint}")
        }
        Some(rustls::Error::PeerIncompatible(why)) => format!(
            "no TLS version or cipher suite in common (we serve TLS 1.2+ with AEAD suites only): \
             {why:?}"
        ),
        Some(other) => other.to_string(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection during the handshake".to_string()
        }
        None => e.to_string(),
    }
}
