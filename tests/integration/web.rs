//! `--web.config.file`: TLS, client certificates and basic auth on the real server, with
//! certificates made in the test.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use support::Daemon;
use support::tls::TestCa;

const YAML: &str = "interval: 1h\nauthoritative: false\nresolvers:\n  - name: x\n    address: 127.0.0.1:9\ndomains: []\n";

type ClientCert = (
    Vec<pki_types::CertificateDer<'static>>,
    pki_types::PrivateKeyDer<'static>,
);

/// GET over TLS; `Err` when the TLS handshake or connection fails.
async fn https_get(
    addr: SocketAddr,
    ca: &TestCa,
    client: Option<ClientCert>,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    use pki_types::pem::PemObject as _;
    roots
        .add(pki_types::CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let auth = auth
            .map(|(u, p)| {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("Authorization: Basic {token}\r\n")
            })
            .unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n");
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no HTTP response: {response:?}"))?;
        Ok((status, response))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out".to_string())?
}

struct Files(support::TempDir);

impl Files {
    fn new(name: &str) -> Files {
        Files(support::TempDir::new(&format!("web-{name}")))
    }

    /// Writes the server's certificate and key, the client CA, and the web config.
    fn web_config(&self, ca: &TestCa, extra: &str) -> PathBuf {
        let (certs, key) = ca.leaf(&["localhost"]);
        let pem = |label: &str, der: &[u8]| {
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                lines.join("\n")
            )
        };
        std::fs::write(
            self.0.path().join("server.crt"),
            pem("CERTIFICATE", &certs[0]),
        )
        .unwrap();
        std::fs::write(
            self.0.path().join("server.key"),
            pem("PRIVATE KEY", key.secret_der()),
        )
        .unwrap();
        ca.write(self.0.path());
        let path = self.0.path().join("web.yaml");
        std::fs::write(
            &path,
            format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}"),
        )
        .unwrap();
        path
    }
}

async fn start(web_config: &Path) -> Daemon {
    let web = dkim_exporter::http::web::WebConfigFile::load(web_config).unwrap();
    let options = dkim_exporter::Options {
        web: Some(Arc::new(web)),
        ..Default::default()
    };
    Daemon::start_with(YAML, options).await
}

#[tokio::test]
async fn tls_with_basic_auth() {
    let ca = TestCa::new();
    let files = Files::new("auth");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let config = files.web_config(&ca, &format!("basic_auth_users:\n  prometheus: {hash}\n"));
    let daemon = start(&config).await;
    let addr = daemon.addr;

    let ok = https_get(addr, &ca, None, "/metrics", Some(("prometheus", "s3cret")))
        .await
        .unwrap();
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert!(ok.1.contains("dkim_exporter_build_info"));
    // Cached: the second request with the same password succeeds too.
    let again = https_get(addr, &ca, None, "/metrics", Some(("prometheus", "s3cret")))
        .await
        .unwrap();
    assert_eq!(again.0, 200);
    let wrong = https_get(addr, &ca, None, "/metrics", Some(("prometheus", "guess")))
        .await
        .unwrap();
    assert_eq!(wrong.0, 401);
    let nobody = https_get(addr, &ca, None, "/metrics", Some(("nobody", "s3cret")))
        .await
        .unwrap();
    assert_eq!(nobody.0, 401);
    let none = https_get(addr, &ca, None, "/", None).await.unwrap();
    assert_eq!(none.0, 401);
    assert!(
        none.1.contains("WWW-Authenticate: Basic") || none.1.contains("www-authenticate: Basic"),
        "{}",
        none.1
    );
    // Liveness probes need no password.
    assert_eq!(
        https_get(addr, &ca, None, "/-/healthy", None)
            .await
            .unwrap()
            .0,
        200
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = tokio::time::timeout(Duration::from_secs(5), async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tcp.read_to_end(&mut buf).await;
        buf
    })
    .await
    .unwrap_or_default();
    assert!(!String::from_utf8_lossy(&plain).contains("200 OK"));

    // The web config is read again when it changes: a new password takes over.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let hash = bcrypt::hash("n3w", 4).unwrap();
    let config_text = std::fs::read_to_string(&config).unwrap();
    let (head, _) = config_text.split_once("basic_auth_users").unwrap();
    std::fs::write(
        &config,
        format!("{head}basic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();
    let new = https_get(addr, &ca, None, "/metrics", Some(("prometheus", "n3w")))
        .await
        .unwrap();
    assert_eq!(new.0, 200);
    let old = https_get(addr, &ca, None, "/metrics", Some(("prometheus", "s3cret")))
        .await
        .unwrap();
    assert_eq!(old.0, 401);
    daemon.stop().await;
}

#[tokio::test]
async fn client_certificate_required() {
    let ca = TestCa::new();
    let files = Files::new("mtls");
    let config = files.web_config(
        &ca,
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n",
    );
    let daemon = start(&config).await;
    let with_cert = https_get(
        daemon.addr,
        &ca,
        Some(ca.leaf(&["client"])),
        "/metrics",
        None,
    )
    .await;
    assert_eq!(with_cert.unwrap().0, 200);
    let without = https_get(daemon.addr, &ca, None, "/metrics", None).await;
    assert!(
        without.is_err() || without.as_ref().unwrap().0 != 200,
        "{without:?}"
    );
    let stranger = TestCa::new();
    let foreign = https_get(
        daemon.addr,
        &ca,
        Some(stranger.leaf(&["client"])),
        "/metrics",
        None,
    )
    .await;
    assert!(foreign.is_err(), "{foreign:?}");
    daemon.stop().await;
}
