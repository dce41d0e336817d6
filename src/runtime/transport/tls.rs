//! The QUIC transport's certificates, configured as EMQX's `ssl_dist.conf`:
//! `[cluster.quic] certfile, keyfile, cacertfile, verify`.
//!
//! - `verify = "verify_peer"` (the default when any file is given): mutual
//!   TLS 1.3. Each side presents the certificate in `certfile` (leaf first,
//!   then any intermediates) with the key in `keyfile`, and checks the other
//!   side's chain against the CA certificates in `cacertfile`. The client
//!   also checks that the server's certificate names the host it dialled (a
//!   DNS or IP subject alternative name): the peer's node name host when the
//!   driver registered it, its IP address otherwise. Expiry is checked both
//!   ways; a peer with no certificate is refused.
//! - `verify = "verify_none"`: the certificate (given, or made at start) is
//!   presented, and whatever the peer presents is accepted. The handshake's
//!   signatures are still checked, so the session keys are the peer's; but
//!   the peer is authenticated by the cluster cookie alone.
//! - No files at all: a self-signed certificate for the local host is made
//!   at start (rcgen) and peers are not verified, as `verify_none`; the log
//!   says so at start.
//!
//! Every error at load names the configuration key and the file, so the
//! agent can print it and exit.
//!
//! Sessions are never resumed: the server issues no tickets and keeps no
//! session store, the client caches none (rustls keeps 256 sessions each
//! side by default, each with the peer's certificate chain, which cost about
//! 2 KiB per peer and saved nothing: a member's connection stays up while
//! it gossips, and a restarted peer knows no earlier session). Every
//! connection is a full handshake, so certificates are checked every time.
//!
//! One crypto provider, ring, is named explicitly in every config: rustls
//! never consults a process-wide default.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

/// The ALPN protocol both sides offer; a peer that speaks anything else is
/// refused at the handshake.
pub const ALPN: &[u8] = b"rollcall/1";

/// Whether peers' certificates are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// Mutual TLS: both sides present a certificate signed by `cacertfile`,
    /// and the server's names the host the client dialled.
    VerifyPeer,
    /// Present a certificate, accept any: peers are authenticated by the
    /// cookie alone.
    VerifyNone,
}

impl fmt::Display for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verify::VerifyPeer => "verify_peer",
            Verify::VerifyNone => "verify_none",
        })
    }
}

/// The `[cluster.quic]` table: where the certificates are and whether peers
/// are verified.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuicCertConfig {
    /// This node's certificate chain (PEM, leaf first).
    pub certfile: Option<PathBuf>,
    /// The private key of `certfile`'s leaf (PEM: PKCS#8, PKCS#1 or SEC1).
    pub keyfile: Option<PathBuf>,
    /// The CA certificates peers' chains must lead to (PEM). Required under
    /// `verify_peer`.
    pub cacertfile: Option<PathBuf>,
    /// `verify_peer` or `verify_none`. Unset: `verify_peer` when any file is
    /// given, `verify_none` (with a self-signed certificate) when none is.
    pub verify: Option<Verify>,
}

impl QuicCertConfig {
    /// The verification mode in force: `verify` if set, else `verify_peer`
    /// when any file is given and `verify_none` when none is.
    pub fn effective_verify(&self) -> Verify {
        match self.verify {
            Some(v) => v,
            None if self.certfile.is_some()
                || self.keyfile.is_some()
                || self.cacertfile.is_some() =>
            {
                Verify::VerifyPeer
            }
            None => Verify::VerifyNone,
        }
    }
}

/// The configuration key of each file, as errors name them.
const CERTFILE: &str = "cluster.quic.certfile";
const KEYFILE: &str = "cluster.quic.keyfile";
const CACERTFILE: &str = "cluster.quic.cacertfile";

/// Why the certificates could not be loaded. Each message names the
/// configuration key and, where there is one, the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Unreadable {
        /// The configuration key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file was read but holds no usable PEM item of the expected kind.
    #[error("{key}: {} {detail}", path.display())]
    BadPem {
        /// The configuration key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The key in `keyfile` is not the key of `certfile`'s leaf.
    #[error(
        "cluster.quic.keyfile: the key in {} does not match the certificate in {}",
        keyfile.display(),
        certfile.display()
    )]
    KeyMismatch {
        /// The certificate file.
        certfile: PathBuf,
        /// The key file.
        keyfile: PathBuf,
    },
    /// A setting the others require is missing.
    #[error("{key}: {why}")]
    Missing {
        /// The missing configuration key.
        key: &'static str,
        /// Why it is required.
        why: String,
    },
    /// rustls refused the configuration built from valid files (should not
    /// happen with the ring provider; kept as an error, not a panic).
    #[error("cluster.quic: {0}")]
    Config(String),
    /// No self-signed certificate could be made for the local host.
    #[error("cluster.quic: cannot make a self-signed certificate for {host}: {detail}")]
    SelfSigned {
        /// The local host the certificate was to name.
        host: String,
        /// What rcgen said.
        detail: String,
    },
}

/// The loaded certificates: a rustls server config (which clients it
/// accepts) and client config (which servers it trusts), both TLS 1.3 only,
/// ALPN [`ALPN`], on the ring provider.
#[derive(Clone, Debug)]
pub struct QuicTls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    verify: Verify,
    self_signed: bool,
}

impl QuicTls {
    /// Loads `config` for a node whose name's host is `local_host` (a DNS
    /// name or an IP address, with or without brackets): the self-signed
    /// certificate, when no files are given, names it.
    ///
    /// Errors (each naming the key and the file): a file missing or
    /// unreadable, no PEM certificate or key in it, a key that does not match
    /// its certificate, `certfile` without `keyfile` or the other way round,
    /// `cacertfile` or `certfile` missing under `verify_peer`.
    pub fn load(config: &QuicCertConfig, local_host: &str) -> Result<QuicTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify = config.effective_verify();

        let (certified, self_signed) = match (&config.certfile, &config.keyfile) {
            (Some(certfile), Some(keyfile)) => {
                (load_certified_key(certfile, keyfile, &provider)?, false)
            }
            (Some(_), None) => {
                return Err(TlsError::Missing {
                    key: KEYFILE,
                    why: "required when cluster.quic.certfile is given".into(),
                })
            }
            (None, Some(_)) => {
                return Err(TlsError::Missing {
                    key: CERTFILE,
                    why: "required when cluster.quic.keyfile is given".into(),
                })
            }
            (None, None) if verify == Verify::VerifyPeer => {
                return Err(TlsError::Missing {
                    key: CERTFILE,
                    why: "required with verify = \"verify_peer\" (with keyfile and cacertfile)"
                        .into(),
                })
            }
            (None, None) => (self_signed_key(local_host, &provider)?, true),
        };

        let roots = match (&config.cacertfile, verify) {
            (Some(path), _) => Some(Arc::new(load_roots(path)?)),
            (None, Verify::VerifyPeer) => {
                return Err(TlsError::Missing {
                    key: CACERTFILE,
                    why: "required with verify = \"verify_peer\"".into(),
                })
            }
            (None, Verify::VerifyNone) => None,
        };

        if self_signed {
            tracing::warn!(
                host = local_host,
                "cluster.quic has no certfile: QUIC uses a self-signed certificate made at start and \
                 does not verify peers; peers are then authenticated by the cookie alone"
            );
        } else if verify == Verify::VerifyNone {
            tracing::warn!(
                "cluster.quic.verify is verify_none: peers' certificates are not checked; peers are \
                 then authenticated by the cookie alone"
            );
        }

        let certified = Arc::new(certified);
        let server = server_config(&provider, verify, roots.clone(), certified.clone())?;
        let client = client_config(&provider, verify, roots, certified)?;
        Ok(QuicTls {
            server: Arc::new(server),
            client: Arc::new(client),
            verify,
            self_signed,
        })
    }

    /// The verification mode in force.
    pub fn verify(&self) -> Verify {
        self.verify
    }

    /// Whether the certificate was made at start (no files given).
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }

    /// The rustls server side: which clients are accepted.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    /// The rustls client side: which servers are trusted.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }
}

/// Reads a file whole, naming `key` in the error.
fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        key,
        path: path.to_owned(),
        source,
    })
}

fn bad_pem(key: &'static str, path: &Path, detail: impl Into<String>) -> TlsError {
    TlsError::BadPem {
        key,
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// Every PEM certificate in `path`; at least one.
fn load_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(key, path, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad_pem(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The chain of `certfile` with the key of `keyfile`, checked to match.
fn load_certified_key(
    certfile: &Path,
    keyfile: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(CERTFILE, certfile)?;
    let pem = read(KEYFILE, keyfile)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            bad_pem(KEYFILE, keyfile, "holds no PEM private key")
        }
        e => bad_pem(KEYFILE, keyfile, format!("is not valid PEM: {e}")),
    })?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad_pem(KEYFILE, keyfile, format!("holds an unusable key: {e}")))?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            certfile: certfile.to_owned(),
            keyfile: keyfile.to_owned(),
        }),
        Err(e) => Err(bad_pem(
            CERTFILE,
            certfile,
            format!("holds an unusable certificate: {e}"),
        )),
    }
}

/// The CA certificates of `cacertfile`.
fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(CACERTFILE, path)? {
        roots.add(cert).map_err(|e| {
            bad_pem(
                CACERTFILE,
                path,
                format!("holds an unusable CA certificate: {e}"),
            )
        })?;
    }
    Ok(roots)
}

/// A self-signed certificate naming `host` (a DNS name or an IP address).
fn self_signed_key(host: &str, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let failed = |detail: String| TlsError::SelfSigned {
        host: host.to_owned(),
        detail,
    };
    let made = rcgen::generate_simple_self_signed(vec![host.to_owned()])
        .map_err(|e| failed(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| failed(e.to_string()))?;
    Ok(CertifiedKey::new(vec![made.cert.der().clone()], signer))
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    verify: Verify,
    roots: Option<Arc<RootCertStore>>,
    certified: Arc<CertifiedKey>,
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (verify, roots) {
        (Verify::VerifyPeer, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| TlsError::Config(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN.to_vec()];
    // No resumption (see the module docs): no tickets, no session store.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

fn client_config(
    provider: &Arc<CryptoProvider>,
    verify: Verify,
    roots: Option<Arc<RootCertStore>>,
    certified: Arc<CertifiedKey>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (verify, roots) {
        (Verify::VerifyPeer, Some(roots)) => builder.with_root_certificates(roots),
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider.clone()))),
    };
    let mut config = builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN.to_vec()];
    // No resumption (see the module docs): no session cache.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// `verify_none` on the client side: any certificate is accepted, but the
/// handshake's signature must still be made by its key.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_defaults_to_verify_peer_when_any_file_is_given() {
        let none = QuicCertConfig::default();
        assert_eq!(none.effective_verify(), Verify::VerifyNone);
        let ca_only = QuicCertConfig {
            cacertfile: Some("ca.pem".into()),
            ..QuicCertConfig::default()
        };
        assert_eq!(ca_only.effective_verify(), Verify::VerifyPeer);
    }

    #[test]
    fn the_config_table_rejects_unknown_keys_and_verify_values() {
        let ok: QuicCertConfig =
            toml::from_str("certfile = \"a.pem\"\nverify = \"verify_none\"").unwrap();
        assert_eq!(ok.verify, Some(Verify::VerifyNone));
        assert!(toml::from_str::<QuicCertConfig>("verify = \"sometimes\"").is_err());
        assert!(toml::from_str::<QuicCertConfig>("certfiles = \"a.pem\"").is_err());
    }

    #[test]
    fn no_files_make_a_self_signed_certificate_and_verify_none() {
        let tls = QuicTls::load(&QuicCertConfig::default(), "::1").unwrap();
        assert!(tls.is_self_signed());
        assert_eq!(tls.verify(), Verify::VerifyNone);
        let tls = QuicTls::load(&QuicCertConfig::default(), "node1.example").unwrap();
        assert_eq!(tls.client_config().alpn_protocols, vec![ALPN.to_vec()]);
    }

    #[test]
    fn verify_peer_without_files_is_an_error_naming_certfile() {
        let config = QuicCertConfig {
            verify: Some(Verify::VerifyPeer),
            ..QuicCertConfig::default()
        };
        let err = QuicTls::load(&config, "127.0.0.1").unwrap_err();
        assert!(
            err.to_string().starts_with("cluster.quic.certfile:"),
            "{err}"
        );
    }
}
