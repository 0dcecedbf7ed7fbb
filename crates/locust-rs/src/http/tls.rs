//! rustls client configurations. The two common ones (verify against the Mozilla roots, or not:
//! Locust's FastHttpUser defaults to `insecure=True`) are built once per process; those with a CA
//! bundle or a client certificate (requests' `verify="ca.pem"` and `cert=`) are built from their
//! files on first use and cached by path, as urllib3 keeps one pool per TLS setting.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::errors::{Error, ErrorKind};

static VERIFIED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
static INSECURE: OnceLock<Arc<ClientConfig>> = OnceLock::new();
type Cache = Mutex<HashMap<(TlsKey, bool), Arc<ClientConfig>>>;
static LOADED: OnceLock<Cache> = OnceLock::new();

/// How the server's certificate is checked.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Verify {
    Off,
    /// The Mozilla roots (webpki-roots), as certifi gives requests.
    WebPki,
    /// A PEM file of CA certificates, or a directory of them.
    Bundle(String),
}

/// Everything that makes one TLS configuration differ from another. Part of a connection's
/// route, so a connection made with one setting is never reused for another.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct TlsKey {
    pub verify: Verify,
    /// A client certificate chain (PEM) and its key; no key: the key is in the same file.
    pub client_cert: Option<(String, Option<String>)>,
}

impl TlsKey {
    pub fn insecure(insecure: bool) -> Self {
        TlsKey {
            verify: if insecure {
                Verify::Off
            } else {
                Verify::WebPki
            },
            client_cert: None,
        }
    }
}

/// The configuration for `key`. `h2`: offer HTTP/2 by ALPN (not to a proxy, which we speak
/// HTTP/1.1 and CONNECT to).
pub fn config_for(key: &TlsKey, h2: bool) -> Result<Arc<ClientConfig>, Error> {
    if h2 && key.client_cert.is_none() {
        match key.verify {
            Verify::Off => return Ok(config(true)),
            Verify::WebPki => return Ok(config(false)),
            Verify::Bundle(_) => {}
        }
    }
    let cache = LOADED.get_or_init(Default::default);
    let cache_key = (key.clone(), h2);
    if let Some(cfg) = cache.lock().get(&cache_key) {
        return Ok(cfg.clone());
    }
    let cfg = Arc::new(build(key, h2)?);
    cache.lock().insert(cache_key, cfg.clone());
    Ok(cfg)
}

fn tls_error(message: String) -> Error {
    Error::new(ErrorKind::Tls, message)
}

fn build(key: &TlsKey, h2: bool) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let builder = match &key.verify {
        Verify::Off => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify)),
        Verify::WebPki => builder.with_root_certificates(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Verify::Bundle(path) => builder.with_root_certificates(load_roots(path)?),
    };
    let mut cfg = match &key.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key_file)) => {
            let chain = load_certs(cert)?;
            if chain.is_empty() {
                return Err(tls_error(format!(
                    "no certificate found in client certificate file {cert:?}"
                )));
            }
            let key_path = key_file.as_deref().unwrap_or(cert);
            let key_der = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
                tls_error(format!(
                    "could not load the private key from {key_path:?}: {e}"
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| tls_error(format!("client certificate {cert:?}: {e}")))?
        }
    };
    cfg.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(cfg)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(format!("could not read certificates from {path:?}: {e}")))
}

/// A CA bundle file, or a directory in OpenSSL's `c_rehash` layout (urllib3's `ca_cert_dir`): of
/// a directory only the files named `<subject hash>.<n>` count, as OpenSSL only looks those up.
fn load_roots(path: &str) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    let files: Vec<String> = if Path::new(path).is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| tls_error(format!("could not read CA directory {path:?}: {e}")))?;
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(is_hash_name))
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    } else {
        vec![path.to_string()]
    };
    let single = files.len() == 1 && files[0] == path;
    for file in &files {
        match load_certs(file) {
            Ok(certs) => {
                store.add_parsable_certificates(certs);
            }
            // In a directory, files that are not certificates are skipped, as OpenSSL does.
            Err(e) if single => return Err(e),
            Err(_) => {}
        }
    }
    if store.is_empty() {
        // Every handshake would fail verification; say why instead.
        return Err(tls_error(format!("no CA certificate found in {path:?}")));
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn alpn(mut cfg: ClientConfig) -> Arc<ClientConfig> {
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

pub fn config(insecure: bool) -> Arc<ClientConfig> {
    if insecure {
        INSECURE
            .get_or_init(|| {
                let cfg = ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map(|b| {
                        b.dangerous()
                            .with_custom_certificate_verifier(Arc::new(NoVerify))
                            .with_no_client_auth()
                    })
                    .unwrap_or_else(|_| fallback());
                alpn(cfg)
            })
            .clone()
    } else {
        VERIFIED
            .get_or_init(|| {
                let roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let cfg = ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                    .unwrap_or_else(|_| fallback());
                alpn(cfg)
            })
            .clone()
    }
}

/// The ring provider always supports the default versions; this only keeps the library free
/// of `expect`. A config with an empty root store fails every handshake with a clear error.
fn fallback() -> ClientConfig {
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}

#[derive(Debug)]
struct NoVerify;

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `3c5e8a1f.0`: eight hex digits, a dot, a number.
fn is_hash_name(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    match name.split_once('.') {
        Some((hash, n)) => {
            hash.len() == 8
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}
