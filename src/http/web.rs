//! `--web.config.file`: TLS and basic authentication for the HTTP endpoints, in the format of
//! the Prometheus exporter-toolkit.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12                             # or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...                         # bcrypt hash
//! ```
//!
//! Like the toolkit, the file is read at start and read again when it changes (checked on every
//! new connection): a broken change is logged and the previous settings stay.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine as _;
use pki_types::pem::PemObject as _;
use pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::Digest as _;

/// The most successful password checks remembered; bcrypt is slow on purpose.
const AUTH_CACHE_SIZE: usize = 1024;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
}

/// Loaded settings.
pub struct WebConfig {
    /// Accepts TLS connections, when `tls_server_config` is given.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// bcrypt hashes by user name.
    users: BTreeMap<String, String>,
}

/// The web config file and what was last loaded from it.
pub struct WebConfigFile {
    /// The file.
    path: PathBuf,
    /// The settings in force, and the file's modification time they were read at.
    current: Mutex<(Arc<WebConfig>, Option<SystemTime>)>,
    /// Digests of user, password and hash that verified, so a scrape does not pay bcrypt.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl WebConfigFile {
    /// Reads the file; an error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<WebConfigFile, String> {
        let modified = modified(path);
        let config = read(path)?;
        Ok(WebConfigFile {
            path: path.to_path_buf(),
            current: Mutex::new((Arc::new(config), modified)),
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// The settings in force, read again first if the file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let modified = modified(&self.path);
        if modified != current.1 {
            current.1 = modified;
            match read(&self.path) {
                Ok(config) => {
                    tracing::info!(file = %self.path.display(), "web config reloaded");
                    current.0 = Arc::new(config);
                    self.verified
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                }
                Err(e) => {
                    tracing::error!(error = %e, "web config reload failed; keeping the previous settings");
                }
            }
        }
        current.0.clone()
    }

    /// Whether the request's `Authorization` header is acceptable. Always true without users.
    pub async fn authorized(&self, config: &WebConfig, header: Option<&str>) -> bool {
        if config.users.is_empty() {
            return true;
        }
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let Some(hash) = config.users.get(&user).cloned() else {
            return false;
        };
        let key: [u8; 32] = sha2::Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return true;
        }
        // bcrypt takes tens of milliseconds by design: keep it off the async threads.
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= AUTH_CACHE_SIZE {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Reads and checks the web config file.
fn read(path: &Path) -> Result<WebConfig, String> {
    let at = |message: String| format!("{}: {message}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let raw: RawWebConfig = if text.trim().is_empty() {
        RawWebConfig::default()
    } else {
        yaml_serde::from_str(&text).map_err(|e| match e.location() {
            Some(loc) => format!("{}:{}:{}: {e}", path.display(), loc.line(), loc.column()),
            None => at(e.to_string()),
        })?
    };
    for (user, hash) in &raw.basic_auth_users {
        if !hash.starts_with("$2") {
            return Err(at(format!(
                "basic_auth_users.{user}: not a bcrypt hash (make one with htpasswd -nBC 10 {user})"
            )));
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let tls = match raw.tls_server_config {
        Some(tls) => Some(tls_acceptor(&tls, base).map_err(at)?),
        None => None,
    };
    Ok(WebConfig {
        tls,
        users: raw.basic_auth_users,
    })
}

/// Files in the web config are relative to the web config file, as in the toolkit.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn tls_acceptor(tls: &RawTls, base: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let cert_file = resolve(base, &tls.cert_file);
    let key_file = resolve(base, &tls.key_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_server_config.cert_file {}: no certificate",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("tls_server_config.key_file {}: {e}", key_file.display()))?;

    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
        None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(other) => {
            return Err(format!(
                "tls_server_config.min_version {other}: use TLS12 or TLS13 (older versions are not offered)"
            ));
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;

    let client_roots = || -> Result<Arc<rustls::RootCertStore>, String> {
        let Some(ca) = &tls.client_ca_file else {
            return Err(
                "tls_server_config.client_ca_file is needed to verify client certificates".into(),
            );
        };
        let ca = resolve(base, ca);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&ca)
            .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", ca.display()))?
        {
            let cert = cert
                .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", ca.display()))?;
        }
        Ok(Arc::new(roots))
    };
    let verifier =
        |optional: bool| -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
            let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
                client_roots()?,
                provider.clone(),
            );
            let builder = if optional {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))
        };
    let builder = match tls.client_auth_type.as_deref() {
        None | Some("NoClientCert") => builder.with_no_client_auth(),
        Some("RequireAndVerifyClientCert") => builder.with_client_cert_verifier(verifier(false)?),
        Some("VerifyClientCertIfGiven") => builder.with_client_cert_verifier(verifier(true)?),
        Some(other @ ("RequestClientCert" | "RequireAnyClientCert")) => {
            return Err(format!(
                "tls_server_config.client_auth_type {other} accepts unverified certificates and is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven"
            ));
        }
        Some(other) => {
            return Err(format!(
                "tls_server_config.client_auth_type {other}: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: certificate and key do not match: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pa:ss")
        );
        assert_eq!(
            parse_basic(&header),
            Some(("alice".to_string(), "pa:ss".to_string()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/web-config.example.yaml"
        ));
        // Everything parses; only the certificate it names is not here.
        let err = WebConfigFile::load(path).err().unwrap();
        assert!(err.contains("tls_server_config.cert_file"), "{err}");
        let raw: RawWebConfig =
            yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(bcrypt::verify("changeme", &raw.basic_auth_users["prometheus"]).unwrap());
    }

    #[test]
    fn refusals_name_the_problem() {
        let dir = std::env::temp_dir().join(format!("dkim-web-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("web.yaml");
        let cases = [
            (
                "basic_auth_users:\n  alice: plaintext\n",
                "not a bcrypt hash",
            ),
            (
                "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
                "cert_file",
            ),
            ("unknown: 1\n", "unknown field `unknown`"),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).unwrap();
            let err = WebConfigFile::load(&path).err().unwrap();
            assert!(err.contains(needle), "{err}");
            assert!(err.starts_with(&path.display().to_string()), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
