//! A test certificate authority, and DNS-over-TLS and DNS-over-HTTPS servers on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::dns::{Behaviour, read_framed, respond, write_framed};

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA.
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate to `dir/ca.pem`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A certificate and key for `names` (DNS names or IP addresses), signed by this CA.
    pub fn leaf(
        &self,
        names: &[&str],
    ) -> (
        Vec<pki_types::CertificateDer<'static>>,
        pki_types::PrivateKeyDer<'static>,
    ) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        (vec![cert.der().clone()], key)
    }

    /// A certificate and key for `names`, signed by this CA, as PEM (for servers that read
    /// files).
    pub fn leaf_pem(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A rustls server config presenting a certificate for `names`, offering `alpn`.
    pub fn server_config(&self, names: &[&str], alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let (certs, key) = self.leaf(names);
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// A running encrypted DNS server; stops when dropped.
pub struct TlsDns {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    queries: Arc<AtomicUsize>,
    _tasks: JoinSet<()>,
}

impl TlsDns {
    /// Connections accepted (TLS handshakes started).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// DNS queries answered.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// Accepts TLS connections on 127.0.0.1 and hands each to `serve`.
    async fn listen<F, Fut>(config: Arc<rustls::ServerConfig>, serve: F) -> TlsDns
    where
        F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, Arc<AtomicUsize>) -> Fut
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let connections = Arc::new(AtomicUsize::new(0));
        let queries = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let (c, q) = (connections.clone(), queries.clone());
        let serve = Arc::new(serve);
        tasks.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (acceptor, serve, q) = (acceptor.clone(), serve.clone(), q.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve(stream, q).await;
                    }
                });
            }
        });
        TlsDns {
            addr,
            connections,
            queries,
            _tasks: tasks,
        }
    }

    /// DNS over TLS (RFC 7858) on 127.0.0.1.
    pub async fn start_dot(config: Arc<rustls::ServerConfig>, behaviour: Behaviour) -> TlsDns {
        TlsDns::listen(config, move |mut stream, queries| {
            let behaviour = behaviour.clone();
            async move {
                while let Some(query) = read_framed(&mut stream).await {
                    queries.fetch_add(1, Ordering::SeqCst);
                    if let Some(reply) = respond(&behaviour, &query, true)
                        && write_framed(&mut stream, &reply).await.is_err()
                    {
                        return;
                    }
                }
            }
        })
        .await
    }

    /// DNS over HTTPS (RFC 8484, POST to /dns-query over HTTP/2) on 127.0.0.1.
    pub async fn start_doh(config: Arc<rustls::ServerConfig>, behaviour: Behaviour) -> TlsDns {
        TlsDns::listen(config, move |stream, queries| {
            let behaviour = behaviour.clone();
            async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (behaviour, queries) = (behaviour.clone(), queries.clone());
                        async move {
                            let ok_path = req.uri().path() == "/dns-query"
                                && req.method() == hyper::Method::POST;
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let reply = match (ok_path, body) {
                                (true, Ok(query)) => {
                                    queries.fetch_add(1, Ordering::SeqCst);
                                    respond(&behaviour, &query, true)
                                }
                                _ => None,
                            };
                            let response = match reply {
                                Some(reply) => hyper::Response::builder()
                                    .header("content-type", "application/dns-message")
                                    .body(Full::new(Bytes::from(reply))),
                                None => hyper::Response::builder()
                                    .status(400)
                                    .body(Full::new(Bytes::new())),
                            };
                            Ok::<_, std::convert::Infallible>(response.unwrap())
                        }
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            }
        })
        .await
    }
}
