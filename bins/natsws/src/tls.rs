//! rustls configuration (ring provider): the server side from `cert_file`/`key_file`/`ca_file`/
//! `verify`, and the client side of outbound connections, which verifies the server's
//! certificate and name against a CA file.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A `tls { }` block (or the `--tls*` flags), as files on disk.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct TlsSpec {
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
    pub(crate) ca_file: Option<String>,
    pub(crate) verify: bool,
    pub(crate) timeout: Option<Duration>,
}

impl TlsSpec {
    /// Loads the files and builds the rustls config. Errors read like nats-server's.
    pub(crate) fn load(&self) -> Result<Arc<ServerConfig>, String> {
        if self.cert_file.is_empty() {
            return Err("TLS Server certificate must be present and valid".to_owned());
        }
        if self.key_file.is_empty() {
            return Err("TLS Server private key must be present and valid".to_owned());
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .map_err(|e| {
                format!(
                    "error parsing X509 certificate/key pair: open {}: {e}",
                    self.cert_file
                )
            })?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("error parsing X509 certificate/key pair: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "error parsing X509 certificate/key pair: tls: failed to find any PEM data in certificate input ({})",
                self.cert_file
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| {
            format!(
                "error parsing X509 certificate/key pair: {}: {e}",
                self.key_file
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration error: {e}"))?;
        let builder = if self.verify || self.ca_file.is_some() {
            let roots = match &self.ca_file {
                Some(ca) => load_roots(ca)?,
                None => RootCertStore::empty(),
            };
            if self.verify {
                if roots.is_empty() {
                    return Err(
                        "TLS verify requires a ca_file with at least one certificate".to_owned(),
                    );
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| format!("TLS client verifier error: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_no_client_auth()
            }
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("error parsing X509 certificate/key pair: {e}"))?;
        Ok(Arc::new(config))
    }
}

/// Reads every certificate of a PEM CA file into a root store.
fn load_roots(ca: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("failed to parse root ca certificate: open {ca}: {e}"))?;
    for cert in cas {
        let cert = cert.map_err(|e| format!("failed to parse root ca certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("failed to parse root ca certificate: {e}"))?;
    }
    Ok(roots)
}

/// The client side of an outbound TLS connection: the server's certificate must chain to a
/// certificate of `ca_file` and name the host dialed (rustls' webpki verifier).
pub(crate) fn client_config(ca_file: &str) -> Result<Arc<ClientConfig>, String> {
    let roots = load_roots(ca_file)?;
    if roots.is_empty() {
        return Err(format!("no CA certificate in {ca_file}"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration error: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `"1.3"` / `"1.2"` for `/connz`.
pub(crate) fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Cipher suite name in Go's spelling (`TLS_AES_128_GCM_SHA256`).
pub(crate) fn cipher_name(s: rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", s.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}
