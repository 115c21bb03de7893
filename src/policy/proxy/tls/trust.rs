//! What the proxy trusts upstream: the host's store (rustls-native-certs: `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` of ward's own environment, else the distribution's bundle), read by the daemon
//! before its hardening (Landlock leaves it no file to open afterwards), plus the PEM of the
//! global flag `--egress-ca FILE` (read by create or the hook, never from a bundle or an
//! annotation). Never the container's bundle: the container must not choose what the proxy
//! trusts.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, Result};

/// The host's store, once loaded (`load_host_roots`). Unset in the tests: their proxies trust
/// only the test CA they are given.
static HOST_ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();

/// Loads the host's trust store into the process (the daemon, before hardening). Returns how
/// many certificates were loaded and the errors met (files that could not be read or parsed).
pub fn load_host_roots() -> (usize, Vec<String>) {
    let found = rustls_native_certs::load_native_certs();
    let errors = found.errors.iter().map(|e| e.to_string()).collect();
    let n = found.certs.len();
    let _ = HOST_ROOTS.set(found.certs);
    (n, errors)
}

/// `--egress-ca FILE`: its bytes, checked to hold at least one PEM certificate. The error names
/// the path.
pub fn read_extra_roots(path: &Path) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let certs = parse(&pem)
        .map_err(|why| Error::spec("--egress-ca", format!("{}: {why}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::spec(
            "--egress-ca",
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(pem)
}

fn parse(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))
}

/// The upstream client: the host's store (if loaded) and `extra_pem`, HTTP/1.1 by ALPN.
/// Certificates the store cannot take (unsupported algorithms, malformed) are skipped.
pub fn client_config(
    provider: Arc<CryptoProvider>,
    extra_pem: &[u8],
) -> std::result::Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    if let Some(host) = HOST_ROOTS.get() {
        roots.add_parsable_certificates(host.iter().cloned());
    }
    let extra = parse(extra_pem).map_err(|why| format!("--egress-ca: {why}"))?;
    roots.add_parsable_certificates(extra);
    if roots.is_empty() {
        return Err("no trusted certificate: the host's store is empty and no --egress-ca".into());
    }
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_must_be_readable_pem_certificates() {
        let dir = std::env::temp_dir().join(format!("ward-egress-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = read_extra_roots(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = read_extra_roots(&empty).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let ca = crate::policy::proxy::ca::Authority::generate("trust-test").unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, &ca.cert_pem).unwrap();
        assert_eq!(read_extra_roots(&good).unwrap(), ca.cert_pem.as_bytes());
        let provider = super::super::provider();
        assert!(client_config(Arc::clone(&provider), ca.cert_pem.as_bytes()).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
