//! TLS blocks (`parseTLS` and the file checks of `GenTLSConfig` that need no I/O).
//!
//! Certificates are not read here (natsconf does no I/O); the binary loads `cert_file`,
//! `key_file` and `ca_file`. Cipher suites and curves are checked against the names the
//! reference knows (`unrecognized cipher …`), and those rustls does not implement are refused.

use std::time::Duration;

use crate::value::Value;

use super::DEFAULT_TLS_TIMEOUT;
use super::diag::{Ctx, Panic, V};
use super::fields::seconds_to_duration;
use super::gostd::parse_duration;

/// Cipher suite names nats-server accepts, and whether natsws (rustls) implements them.
const CIPHERS: &[(&str, bool)] = &[
    ("TLS_RSA_WITH_RC4_128_SHA", false),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", false),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", false),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", false),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", false),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", false),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", false),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", false),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", false),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", false),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", false),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", false),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", false),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", false),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", false),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", true),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", true),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", true),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", true),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", true),
    ("TLS_AES_128_GCM_SHA256", true),
    ("TLS_AES_256_GCM_SHA384", true),
    ("TLS_CHACHA20_POLY1305_SHA256", true),
];

/// Curve names nats-server accepts, and whether natsws (rustls with ring) implements them.
const CURVES: &[(&str, bool)] = &[
    ("X25519", true),
    ("CurveP256", true),
    ("CurveP384", true),
    ("CurveP521", false),
];

/// nats-server's default cipher suites (`defaultCipherSuites`).
const DEFAULT_CIPHERS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/// nats-server's default curves without P-521, which rustls (ring) does not offer.
const DEFAULT_CURVES: &[&str] = &["X25519", "CurveP256", "CurveP384"];

/// A `tls { … }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsOptions {
    /// `cert_file`.
    pub cert_file: Option<String>,
    /// `key_file`.
    pub key_file: Option<String>,
    /// `ca_file`.
    pub ca_file: Option<String>,
    /// `verify` (also set by `verify_and_map` and `verify_cert_and_check_known_urls`).
    pub verify: bool,
    /// `verify_and_map`: the user comes from the client certificate.
    pub verify_and_map: bool,
    /// `verify_cert_and_check_known_urls` (only where the reference allows it).
    pub verify_cert_and_check_known_urls: bool,
    /// `insecure` (skip server certificate checks when dialing out).
    pub insecure: bool,
    /// `cipher_suites` (Go names), or nats-server's defaults.
    pub cipher_suites: Vec<String>,
    /// `curve_preferences` (Go names), or the defaults.
    pub curve_preferences: Vec<String>,
    /// `timeout` (int or float seconds, or a duration string); 0 and negative give the
    /// default of 2 s.
    pub timeout: Duration,
    /// Whether `timeout` was set to a positive value.
    pub timeout_set: bool,
    /// `connection_rate_limit` (0 = none).
    pub connection_rate_limit: i64,
    /// `pinned_certs`: lower-case hex SHA-256 of SubjectPublicKeyInfo.
    pub pinned_certs: Vec<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            ca_file: None,
            verify: false,
            verify_and_map: false,
            verify_cert_and_check_known_urls: false,
            insecure: false,
            cipher_suites: DEFAULT_CIPHERS.iter().map(|s| (*s).to_owned()).collect(),
            curve_preferences: DEFAULT_CURVES.iter().map(|s| (*s).to_owned()).collect(),
            timeout: DEFAULT_TLS_TIMEOUT,
            timeout_set: false,
            connection_rate_limit: 0,
            pinned_certs: Vec::new(),
        }
    }
}

fn file_name(v: &V<'_>, key: &str) -> Result<String, Panic> {
    if let Value::Str(_) = v.value() {
        v.string()
    } else {
        Err(v.panic(format!(
            "error parsing tls config, expected '{key}' to be filename"
        )))
    }
}

fn boolean(v: &V<'_>, key: &str) -> Result<bool, Panic> {
    if let Value::Bool(b) = v.value() {
        Ok(*b)
    } else {
        Err(v.panic(format!(
            "error parsing tls config, expected '{key}' to be a boolean"
        )))
    }
}

fn names(
    v: &V<'_>,
    key: &str,
    known: &[(&str, bool)],
    unknown_text: &str,
) -> Result<Vec<String>, Panic> {
    let items = v.array()?;
    if items.is_empty() {
        return Err(v.panic(format!("error parsing tls config, '{key}' cannot be empty")));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let name = item.string()?;
        match known.iter().find(|(n, _)| *n == name) {
            None => return Err(item.panic(format!("{unknown_text} {name}"))),
            Some((_, false)) => {
                return Err(item.panic(format!("{key} entry {name} is not supported by natsws")));
            }
            Some((_, true)) => out.push(name),
        }
    }
    Ok(out)
}

/// `parseTLS` followed by the checks of `GenTLSConfig` that need no files. Errors end the
/// block (the reference returns at the first one); `None` after an error.
pub(crate) fn parse_tls(ctx: &mut Ctx, v: &V<'_>, client_context: bool) -> Option<TlsOptions> {
    let res = parse_tls_inner(v, client_context);
    let tls = ctx.recover(res)?;
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => {
            ctx.error(v, "missing 'key_file' in TLS configuration");
            None
        }
        (None, Some(_)) => {
            ctx.error(v, "missing 'cert_file' in TLS configuration");
            None
        }
        _ => Some(tls),
    }
}

fn parse_tls_inner(v: &V<'_>, client_context: bool) -> Result<TlsOptions, Panic> {
    let mut tls = TlsOptions::default();
    for entry in v.map()? {
        let mv = &entry.value;
        match entry.lower.as_str() {
            "cert_file" => tls.cert_file = Some(file_name(mv, "cert_file")?),
            "key_file" => tls.key_file = Some(file_name(mv, "key_file")?),
            "ca_file" => tls.ca_file = Some(file_name(mv, "ca_file")?),
            "insecure" => tls.insecure = boolean(mv, "insecure")?,
            "verify" => tls.verify = boolean(mv, "verify")?,
            "verify_and_map" => {
                let on = boolean(mv, "verify_and_map")?;
                if on {
                    tls.verify = true;
                }
                tls.verify_and_map = on;
            }
            "verify_cert_and_check_known_urls" => {
                let on = boolean(mv, "verify_cert_and_check_known_urls")?;
                if on && client_context {
                    return Err(
                        mv.panic("verify_cert_and_check_known_urls not supported in this context")
                    );
                }
                if on {
                    tls.verify = true;
                }
                tls.verify_cert_and_check_known_urls = on;
            }
            "cipher_suites" => {
                tls.cipher_suites = names(mv, "cipher_suites", CIPHERS, "unrecognized cipher")?;
            }
            "curve_preferences" => {
                tls.curve_preferences = names(
                    mv,
                    "curve_preferences",
                    CURVES,
                    "unrecognized curve preference",
                )?;
            }
            "timeout" => {
                let seconds = match mv.value() {
                    #[expect(clippy::cast_precision_loss, reason = "Go's float64(int64)")]
                    Value::Int(n) => *n as f64,
                    Value::Float(f) => *f,
                    Value::Str(_) => {
                        let text = mv.string()?;
                        match parse_duration(&text) {
                            #[expect(clippy::cast_precision_loss, reason = "Go's d.Seconds()")]
                            Ok(nanos) => nanos as f64 / 1e9,
                            Err(err) => {
                                return Err(
                                    mv.panic(format!("error parsing tls config, 'timeout' {err}"))
                                );
                            }
                        }
                    }
                    _ => return Err(mv.panic("error parsing tls config, 'timeout' wrong type")),
                };
                if seconds > 0.0 {
                    tls.timeout = seconds_to_duration(seconds);
                    tls.timeout_set = true;
                } else {
                    tls.timeout = DEFAULT_TLS_TIMEOUT;
                    tls.timeout_set = false;
                }
            }
            "connection_rate_limit" => {
                let Value::Int(n) = mv.value() else {
                    return Err(
                        mv.panic("error parsing tls config, 'connection_rate_limit' wrong type")
                    );
                };
                tls.connection_rate_limit = *n;
            }
            "pinned_certs" => {
                let Value::Array(_) = mv.value() else {
                    return Err(mv.panic("error parsing tls config, expected 'pinned_certs' to be a list of hex-encoded sha256 of DER encoded SubjectPublicKeyInfo"));
                };
                let mut pins = Vec::new();
                for item in mv.array()? {
                    let pin = item.string()?.to_lowercase();
                    if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(item.panic(format!("error parsing tls config, 'pinned_certs' key {pin} does not look like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo")));
                    }
                    if !pins.contains(&pin) {
                        pins.push(pin);
                    }
                }
                tls.pinned_certs = pins;
            }
            _ => {
                return Err(mv.panic(format!(
                    "error parsing tls config, unknown field [{}]",
                    gotext::quote(&entry.key)
                )));
            }
        }
    }
    Ok(tls)
}
