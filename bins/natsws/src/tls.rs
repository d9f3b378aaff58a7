//! rustls configuration (ring provider): the server side from `cert_file`/`key_file`/`ca_file`/
//! `verify`, and the client side of outbound connections, which verifies the server's
//! certificate and name against a CA file (unless `insecure`) and may present its own.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

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
        let (certs, key) = load_pair(&self.cert_file, &self.key_file)?;
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

/// A leaf remote's `tls { }` block: what the client side of the link needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ClientTlsSpec {
    /// The CA file the hub's certificate must chain to.
    pub(crate) ca_file: Option<String>,
    /// The certificate presented to a hub that verifies its leafs, and its key.
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    /// `insecure`: the hub's certificate chain and name are not verified (Go's
    /// `InsecureSkipVerify`); its handshake signatures still are.
    pub(crate) insecure: bool,
}

/// The client side of an outbound TLS connection: the server's certificate must chain to a
/// certificate of `ca_file` and name the host dialed (rustls' webpki verifier), unless
/// `insecure`. With `cert_file`/`key_file` the certificate is presented when the server asks.
pub(crate) fn client_config(spec: &ClientTlsSpec) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration error: {e}"))?;
    let builder = if spec.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoChainCheck(provider)))
    } else {
        let Some(ca_file) = &spec.ca_file else {
            return Err("TLS needs a ca_file to verify the server's certificate".to_owned());
        };
        let roots = load_roots(ca_file)?;
        if roots.is_empty() {
            return Err(format!("no CA certificate in {ca_file}"));
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&spec.cert_file, &spec.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let (certs, key) = load_pair(cert_file, key_file)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("error parsing X509 certificate/key pair: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        // `server/opts.go` `GenTLSConfig`.
        (Some(_), None) => return Err("missing 'key_file' in TLS configuration".to_owned()),
        (None, Some(_)) => return Err("missing 'cert_file' in TLS configuration".to_owned()),
    };
    Ok(Arc::new(config))
}

/// A certificate chain and its private key, both PEM files.
fn load_pair(
    cert_file: &str,
    key_file: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("error parsing X509 certificate/key pair: open {cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("error parsing X509 certificate/key pair: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "error parsing X509 certificate/key pair: tls: failed to find any PEM data in certificate input ({cert_file})"
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("error parsing X509 certificate/key pair: {key_file}: {e}"))?;
    Ok((certs, key))
}

/// `insecure`: any certificate chain and name are accepted, as Go's `InsecureSkipVerify`
/// does; the handshake's signatures are checked against the presented certificate, so the
/// peer still proves it holds that certificate's key.
#[derive(Debug)]
struct NoChainCheck(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoChainCheck {
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
