//! TLS for the edge link: TLS 1.3 always (QUIC requires it), a self-signed server certificate
//! made on first start, and agents that trust the server by pinning its SHA-256 fingerprint
//! (field sites rarely run a CA) or by a CA certificate.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// The edge link's ALPN protocol id, which both QUIC configurations below announce. It lives
/// here, not in [`crate::link`] (the protocol, which re-exports it), so TLS needs nothing of the
/// link.
pub const ALPN: &[u8] = b"taosx-agent/1";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {err}")]
    File { path: String, err: std::io::Error },
    #[error("certificate: {0}")]
    Cert(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `sha256:` hex of a DER certificate, what agents pin.
pub fn fingerprint(cert: &[u8]) -> String {
    let d = Sha256::digest(cert);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fingerprints compare case-insensitively, with or without `:` separators or a `sha256:` prefix.
pub fn normalize_fingerprint(s: &str) -> String {
    s.trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|err| TlsError::File {
        path: path.display().to_string(),
        err,
    })
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Cert("no certificate in PEM".into()));
    }
    Ok(certs)
}

/// The server's certificate chain and key from PEM files; made (self-signed for `names`) when
/// neither file exists. Returns whether they were created.
pub fn load_or_create(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, bool), TlsError> {
    use rustls::pki_types::pem::PemObject;
    let mut created = false;
    if !cert_path.exists() && !key_path.exists() {
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| TlsError::Cert(e.to_string()))?;
        let write = |p: &Path, s: String| {
            if let Some(d) = p.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            std::fs::write(p, s).map_err(|err| TlsError::File {
                path: p.display().to_string(),
                err,
            })
        };
        write(cert_path, ck.cert.pem())?;
        write(key_path, ck.signing_key.serialize_pem())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(key_path, std::fs::Permissions::from_mode(0o600));
        }
        created = true;
    }
    let certs = parse_certs(&read(cert_path)?)?;
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?)
        .map_err(|e| TlsError::Cert(format!("{}: {e}", key_path.display())))?;
    Ok((certs, key, created))
}

/// QUIC server configuration for the agent endpoint.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TlsError::Cert(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport()));
    Ok(cfg)
}

/// Keep-alives so NAT and firewall state survives idle periods; an idle link times out in 30 s.
pub fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(std::time::Duration::from_secs(5)));
    if let Ok(idle) = quinn::IdleTimeout::try_from(std::time::Duration::from_secs(30)) {
        t.max_idle_timeout(Some(idle));
    }
    t.stream_receive_window(quinn::VarInt::from_u32(16 << 20));
    t.receive_window(quinn::VarInt::from_u32(64 << 20));
    t.send_window(64 << 20);
    t
}

/// How a client decides to trust a server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The SHA-256 fingerprint the server printed (taosx does on first start).
    Pin(String),
    /// A CA certificate (PEM) that signed the server's certificate.
    Ca(Vec<u8>),
    /// The operating system's roots.
    System,
}

/// A rustls client configuration for `trust` (TLS 1.2 and 1.3; QUIC uses only 1.3).
pub fn rustls_client(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    Ok(match trust {
        Trust::Pin(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprint: normalize_fingerprint(fp),
                provider: provider(),
            }))
            .with_no_client_auth(),
        Trust::Ca(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in parse_certs(pem)? {
                roots.add(c)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::System => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    })
}

/// QUIC client configuration for the agent.
pub fn client_config(trust: &Trust) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls_client(trust)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Cert(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport()));
    Ok(cfg)
}

/// Accepts exactly the server certificate with the pinned fingerprint; signatures are still
/// verified, so a peer must hold the matching private key.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate fingerprint {} is not the pinned one",
                fingerprint(end_entity)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_made_once_and_fingerprints_normalise() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (certs, _, created) = load_or_create(&c, &k, &["localhost".into()]).unwrap();
        assert!(created);
        let (again, _, created) = load_or_create(&c, &k, &["localhost".into()]).unwrap();
        assert!(!created);
        let fp = fingerprint(&certs[0]);
        assert_eq!(fp, fingerprint(&again[0]));
        assert_eq!(fp.len(), 64);
        let colons: String = fp
            .as_bytes()
            .chunks(2)
            .map(|p| std::str::from_utf8(p).unwrap().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(normalize_fingerprint(&format!("sha256:{colons}")), fp);
        assert!(server_config(certs, PrivateKeyDer::from_pem_file(&k).unwrap()).is_ok());
        assert!(client_config(&Trust::Pin(fp)).is_ok());
    }

    use rustls::pki_types::pem::PemObject;
}
