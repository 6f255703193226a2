//! A throwaway certificate authority for the TLS tests: a CA, a server certificate
//! for "localhost", and client certificates by common name (rcgen, ring).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

pub struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
pub struct Pair {
    pub cert: String,
    pub key: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA") }
    }

    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, mut params: CertificateParams, common_name: &str, usage: ExtendedKeyUsagePurpose) -> Pair {
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Pair { cert: cert.pem(), key: key.serialize_pem() }
    }

    pub fn server(&self) -> Pair {
        self.issue(CertificateParams::new(vec!["localhost".to_owned()]).expect("params"), "workstation", ExtendedKeyUsagePurpose::ServerAuth)
    }

    pub fn client(&self, common_name: &str) -> Pair {
        self.issue(CertificateParams::new(Vec::<String>::new()).expect("params"), common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }
}
