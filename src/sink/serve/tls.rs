//! HTTPS for the live view (feature `serve-tls`): rustls with the ring provider, a certificate
//! chain and a private key from PEM files, HTTP/1.1 only.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::TlsFiles;
use crate::error::{Error, Result};

/// The acceptor for `files`; every problem names the file and what to do.
pub(super) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let bad = |what: String| Error::Serve {
        msg: what,
        source: None,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            bad(format!(
                "--serve-tls-cert {}: {e}; give a PEM certificate chain",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(bad(format!(
            "--serve-tls-cert {}: no certificate in it; give a PEM certificate chain",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        bad(format!(
            "--serve-tls-key {}: {e}; give the certificate's PEM private key",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            bad(format!(
                "--serve-tls-cert/--serve-tls-key {} and {}: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
