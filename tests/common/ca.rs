//! A test certificate authority made with rcgen, and node certificates
//! signed by it, for the QUIC tests.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rollcall::runtime::transport::QuicCertConfig;

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A test certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
    /// The CA certificate, DER.
    pub der: Vec<u8>,
}

impl Ca {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `sans` (DNS names or IP addresses): (cert PEM, key PEM).
    pub fn leaf(&self, sans: &[&str], expired: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Files for a node: its leaf for `sans` and this CA as `cacertfile`.
    pub fn files(&self, dir: &Path, tag: &str, sans: &[&str], expired: bool) -> QuicCertConfig {
        let (cert, key) = self.leaf(sans, expired);
        QuicCertConfig {
            certfile: Some(write(dir, &format!("{tag}.crt"), &cert)),
            keyfile: Some(write(dir, &format!("{tag}.key"), &key)),
            cacertfile: Some(write(dir, &format!("{tag}-ca.crt"), &self.pem)),
            verify: None,
        }
    }
}
