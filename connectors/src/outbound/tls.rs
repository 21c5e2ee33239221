//! The rustls configuration of the providers' HTTP client: the ring provider (already built for
//! async-nats, so no aws-lc/cmake build) and the system's CA certificates.

use crate::sinks::SinkError;
use std::sync::{Arc, OnceLock};

/// Built once: loading the system store reads many files.
static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();

/// A copy of the shared client configuration.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, SinkError> {
    CONFIG.get_or_init(build).clone().map_err(SinkError::Config)
}

/// The shared configuration's trust plus the CA certificates in `pem` (a private CA such as a
/// Kubernetes cluster's `ca.crt`), built anew for each caller.
pub(crate) fn client_config_with_ca(pem: &[u8]) -> Result<rustls::ClientConfig, SinkError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let extra = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SinkError::Config(format!("CA file is not PEM certificates: {e}")))?;
    if extra.is_empty() {
        return Err(SinkError::Config(
            "CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    build_with(extra).map_err(SinkError::Config)
}

fn build() -> Result<rustls::ClientConfig, String> {
    build_with(Vec::new())
}

fn build_with(
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in extra {
        roots
            .add(cert)
            .map_err(|e| format!("CA certificate not usable: {e}"))?;
    }
    let found = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        // HTTP still works; HTTPS will fail with an unknown-issuer error, so say why up front.
        tracing::warn!(
            ignored,
            errors = found.errors.len(),
            "no CA certificates found in the system store: HTTPS providers will fail (install ca-certificates)"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
