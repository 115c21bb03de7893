//! The certificates the proxy shows the container: one leaf per name (ECDSA P-256, the name as
//! its only subject alternative name, signed by the container's `Authority`), made on first use
//! and kept, each in a rustls `ServerConfig` offering HTTP/2 and HTTP/1.1 by ALPN.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::policy::proxy::ca::Authority;

/// Names whose leaf is kept (then the cache starts over; a container talks to few names).
const CACHE_NAMES: usize = 1024;
/// How long a leaf is valid (the proxy lives as long as its container; a day of slack back).
const VALID_DAYS: u64 = 825;

/// Every leaf made so far, by name.
pub struct Leaves {
    provider: Arc<CryptoProvider>,
    cache: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl Leaves {
    pub fn new(provider: Arc<CryptoProvider>) -> Leaves {
        Leaves {
            provider,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The server side of a terminated connection for `name` (lower case, no trailing dot;
    /// an address literal gets an IP SAN).
    pub fn config(&self, ca: &Authority, name: &str) -> Result<Arc<ServerConfig>, String> {
        if let Some(c) = self.lock().get(name) {
            return Ok(Arc::clone(c));
        }
        let key = leaf(ca, name, &self.provider)?;
        let mut cfg = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(Arc::new(key))));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        let mut cache = self.lock();
        if cache.len() >= CACHE_NAMES {
            cache.clear();
        }
        cache.insert(name.to_string(), Arc::clone(&cfg));
        Ok(cfg)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ServerConfig>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fresh key and a leaf certificate for `name`, signed by `ca`.
fn leaf(ca: &Authority, name: &str, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let err = |what: &str, e: rcgen::Error| format!("leaf certificate for {name:?}: {what}: {e}");
    let key = KeyPair::generate().map_err(|e| err("key", e))?;
    let mut params = CertificateParams::default();
    let san = match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.try_into().map_err(|e| err("name", e))?),
    };
    params.subject_alt_names = vec![san];
    let cn: String = name.chars().take(64).collect();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86400)).into();
    params.not_after = (now + std::time::Duration::from_secs(VALID_DAYS * 86400)).into();
    let cert = params
        .signed_by(&key, &ca.issuer())
        .map_err(|e| err("signing", e))?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("leaf certificate for {name:?}: key: {e}"))?;
    let chain = vec![
        CertificateDer::from(cert.der().to_vec()),
        CertificateDer::from(ca.cert_der.clone()),
    ];
    Ok(CertifiedKey::new(chain, signer))
}

/// Always the one leaf: the name was judged before the handshake (SNI agreed with it, or the
/// connection is to an address literal without SNI).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn a_leaf_per_name_signed_by_the_ca_and_cached() {
        let ca = Authority::generate("leaf-test").unwrap();
        let leaves = Leaves::new(super::super::provider());
        let a = leaves.config(&ca, "api.example.test").unwrap();
        let b = leaves.config(&ca, "api.example.test").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "cached per name");
        assert_eq!(a.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let ip = leaves.config(&ca, "192.0.2.7").unwrap();
        assert!(!Arc::ptr_eq(&a, &ip));
        // The chain verifies against the CA for that name only.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.cert_der.clone()))
            .unwrap();
        let provider = super::super::provider();
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let key = leaf(&ca, "api.example.test", &super::super::provider()).unwrap();
        let name = rustls::pki_types::ServerName::try_from("api.example.test").unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier
            .verify_server_cert(&key.cert[0], &key.cert[1..], &name, &[], now)
            .unwrap();
        let other = rustls::pki_types::ServerName::try_from("other.test").unwrap();
        assert!(verifier
            .verify_server_cert(&key.cert[0], &key.cert[1..], &other, &[], now)
            .is_err());
    }
}
