//! The connected transports: TCP (for UDP answers that were truncated, or `protocol: tcp`), DNS
//! over TLS and DNS over HTTPS, each over one connection kept open and reused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::{DnsExchange, DnsHandle as _, DnsMultiplexer};
use hickory_proto::op::{DnsRequest, Message};
use pki_types::ServerName;
use tokio::sync::Mutex;

use super::lock;
use super::message::net_failure;
use crate::config::{Protocol, ResolverConfig, TlsSettings};
use crate::evidence::{Failure, FailureReason};

/// A persistent connection and whether it is still usable. TLS and HTTPS connections are driven
/// by hickory's own task; a closed one shows as an error, which triggers one reconnection.
struct Connection {
    /// Sends queries and hands back their replies.
    exchange: DnsExchange<TokioRuntimeProvider>,
    /// Cleared when the connection's task ends (the server closed it).
    alive: Arc<AtomicBool>,
}

/// One resolver's connection, opened on first use and reused while the server keeps it open.
pub(super) struct Connected {
    /// The resolver's name, for logs.
    name: String,
    /// Where queries go.
    address: SocketAddr,
    /// TCP, TLS or HTTPS.
    protocol: Protocol,
    /// For TLS and HTTPS: whom to trust.
    tls: Option<TlsSettings>,
    /// How long one query may take.
    timeout: Duration,
    /// Owns the tasks hickory spawns to drive TLS and HTTPS connections: they live as long as
    /// the client (dropping the provider would cancel them).
    provider: TokioRuntimeProvider,
    /// The TCP, TLS or HTTPS connection, opened on first use and reused while the server keeps
    /// it open.
    connection: Mutex<Option<Connection>>,
    /// The latest connection failure, so it is logged at warn once rather than per query.
    last_connect_error: std::sync::Mutex<Option<String>>,
}

impl Connected {
    /// A connection to `config`'s resolver; nothing is opened until the first query.
    pub(super) fn new(config: &ResolverConfig, timeout: Duration) -> Self {
        Connected {
            name: config.name.clone(),
            address: config.address,
            protocol: config.protocol,
            tls: config.tls.clone(),
            timeout,
            provider: TokioRuntimeProvider::new(),
            connection: Mutex::new(None),
            last_connect_error: std::sync::Mutex::new(None),
        }
    }

    /// Sends over the persistent connection within the timeout. Boxed: the connection futures
    /// are kilobytes, and keeping them inline would make every UDP query that large while it
    /// waits.
    pub(super) async fn exchange(
        &self,
        request: impl Fn() -> DnsRequest,
    ) -> Result<Message, Failure> {
        // hickory times out by itself; this outer bound is a guarantee against any path that
        // would not (connecting, reconnecting).
        let bound = self.timeout + Duration::from_millis(500);
        match tokio::time::timeout(bound, Box::pin(self.send_connected(request))).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                FailureReason::Timeout,
                format!("no reply within {:?}", self.timeout),
            )),
        }
    }

    /// Sends over the persistent connection (TCP, TLS or HTTPS), reconnecting once if the
    /// server had closed it.
    async fn send_connected(&self, request: impl Fn() -> DnsRequest) -> Result<Message, Failure> {
        let (exchange, reused) = self.connection().await?;
        match send(&exchange, request()).await {
            Err(failure) if reused && failure.reason == FailureReason::Network => {
                *self.connection.lock().await = None;
                let (exchange, _) = self.connection().await?;
                send(&exchange, request()).await
            }
            other => other,
        }
    }

    /// The open connection, or a new one; `true` when it was already open.
    async fn connection(&self) -> Result<(DnsExchange<TokioRuntimeProvider>, bool), Failure> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref()
            && conn.alive.load(Ordering::Acquire)
        {
            return Ok((conn.exchange.clone(), true));
        }
        let connected = tokio::time::timeout(self.timeout, self.connect())
            .await
            .unwrap_or_else(|_| {
                Err(Failure::new(
                    FailureReason::Timeout,
                    format!("no connection within {:?}", self.timeout),
                ))
            });
        self.note_connect(&connected);
        let conn = connected?;
        let exchange = conn.exchange.clone();
        *slot = Some(conn);
        Ok((exchange, false))
    }

    /// Opens a connection by the resolver's protocol (TCP for UDP's truncated answers).
    async fn connect(&self) -> Result<Connection, Failure> {
        let provider = self.provider.clone();
        let alive = Arc::new(AtomicBool::new(true));
        let exchange = match (&self.protocol, &self.tls) {
            (Protocol::Tls, Some(tls)) => {
                let server_name = ServerName::try_from(tls.name.clone()).map_err(|e| {
                    Failure::new(
                        FailureReason::Other,
                        format!("invalid tls_name {:?}: {e}", tls.name),
                    )
                })?;
                hickory_net::tls::tls_exchange(
                    self.address,
                    server_name,
                    tls_client_config(tls)?,
                    self.timeout,
                    None,
                    provider,
                )
                .await
                .map_err(|e| net_failure(&e))?
            }
            (Protocol::Https, Some(tls)) => {
                let mut builder = hickory_net::h2::HttpsClientStream::builder(
                    Arc::new(tls_client_config(tls)?),
                    provider,
                );
                builder.request_timeout(self.timeout);
                builder
                    .exchange(
                        self.address,
                        Arc::from(tls.name.as_str()),
                        Arc::from(DOH_PATH),
                    )
                    .await
                    .map_err(|e| net_failure(&e))?
            }
            _ => {
                let (connect, sender) =
                    TcpClientStream::new(self.address, None, Some(self.timeout), provider);
                let stream = connect.await.map_err(|e| net_failure(&e))?;
                let multiplexer = DnsMultiplexer::new(stream, sender).with_timeout(self.timeout);
                let (exchange, background) = DnsExchange::from_stream(multiplexer);
                let flag = alive.clone();
                tokio::spawn(async move {
                    background.await;
                    flag.store(false, Ordering::Release);
                });
                exchange
            }
        };
        Ok(Connection { exchange, alive })
    }

    /// Logs a failed connection at warn when its cause changes (a bad certificate says so
    /// once, not on every query), and at debug otherwise.
    fn note_connect(&self, result: &Result<Connection, Failure>) {
        let mut last = lock(&self.last_connect_error);
        match result {
            Ok(_) => *last = None,
            Err(failure) if last.as_deref() != Some(failure.detail.as_str()) => {
                tracing::warn!(
                    resolver = %self.name,
                    protocol = self.protocol.as_str(),
                    address = %self.address,
                    error = %failure.detail,
                    "cannot connect to the resolver"
                );
                *last = Some(failure.detail.clone());
            }
            Err(failure) => {
                tracing::debug!(resolver = %self.name, error = %failure.detail, "cannot connect to the resolver");
            }
        }
    }
}

/// The RFC 8484 path of DNS over HTTPS.
pub const DOH_PATH: &str = "/dns-query";

/// A TLS client config trusting the Mozilla roots and the resolver's extra roots.
fn tls_client_config(tls: &TlsSettings) -> Result<rustls::ClientConfig, Failure> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &tls.extra_roots {
        roots.add(cert.clone()).map_err(|e| {
            Failure::new(
                FailureReason::Other,
                format!("unusable certificate in tls_ca_file: {e}"),
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| Failure::new(FailureReason::Other, format!("TLS setup failed: {e}")))
}

async fn send(
    exchange: &DnsExchange<TokioRuntimeProvider>,
    request: DnsRequest,
) -> Result<Message, Failure> {
    match exchange.send(request).next().await {
        Some(Ok(response)) => Ok(response.into_message()),
        Some(Err(e)) => Err(net_failure(&e)),
        // hickory ends the response stream without an item when its own timeout fires.
        None => Err(Failure::new(
            FailureReason::Timeout,
            "no reply within the timeout",
        )),
    }
}
