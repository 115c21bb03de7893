//! The certificate authority made for one container at create. Its certificate is public (the
//! container trusts it: `container::egress` mounts a bundle with it); its key is held in memory
//! only (the proxy signs a leaf certificate per name with it) and never written anywhere.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::error::{Error, Result};

/// How long the CA is valid (a container can run for a long time; the key dies with the proxy).
const VALID_DAYS: i64 = 3650;

/// One container's CA.
pub struct Authority {
    /// PEM of the CA certificate (what the container trusts).
    pub cert_pem: String,
    /// DER of the same certificate.
    pub cert_der: Vec<u8>,
    /// The signing key (ECDSA P-256); dropped with the proxy.
    pub key: KeyPair,
    /// What the certificate was made from (its subject is every leaf's issuer).
    params: CertificateParams,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// A fresh CA named for the container (`ward egress CA <id>`): a new P-256 key, CA:TRUE with
    /// path length 0, key usage certificate and CRL signing only.
    pub fn generate(id: &str) -> Result<Authority> {
        let err = |what: &str, e: rcgen::Error| Error::Init(format!("egress CA: {what}: {e}"));
        let key = KeyPair::generate().map_err(|e| err("key", e))?;
        let mut params = CertificateParams::default();
        let cn: String = format!("ward egress CA {id}").chars().take(64).collect();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "ward");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(3600)).into();
        params.not_after = (now + std::time::Duration::from_secs(VALID_DAYS as u64 * 86400)).into();
        let cert = params
            .self_signed(&key)
            .map_err(|e| err("certificate", e))?;
        Ok(Authority {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
            params,
        })
    }

    /// The issuer of the leaf certificates (`tls::leaf`): this CA's subject and key.
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_ca_is_a_pem_ca_certificate() {
        let a = Authority::generate("c1").unwrap();
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!a.cert_pem.contains("PRIVATE KEY"));
        let b = Authority::generate("c1").unwrap();
        assert_ne!(a.cert_der, b.cert_der, "each container gets its own CA");
    }
}
