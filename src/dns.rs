//! Talking to one resolver: sending a query over UDP (retried over TCP when truncated) or TCP,
//! politely, and sorting every outcome into a definitive answer or a failure with a reason.
//!
//! Nothing is cached: every call sends a query, because the point is to see what the resolver
//! says now.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hickory_net::NetError;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::{DnsExchange, DnsHandle as _, DnsMultiplexer};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use pki_types::ServerName;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::config::{Protocol, ResolverConfig, TlsSettings};
use crate::evidence::{Failure, FailureReason};
use crate::metrics::ResolverMetrics;
use crate::udp::{UdpTransport, query_message};

/// EDNS payload size advertised over UDP: the DNS Flag Day 2020 value, which avoids fragmentation.
const EDNS_PAYLOAD: u16 = 1232;

/// Queries to one resolver that may be in flight at once: a burst larger than the resolver's
/// receive buffer would be dropped and read as timeouts. Others wait for a place.
pub const IN_FLIGHT: usize = 128;

/// A query still unanswered after this long gives its place in flight to the next one and goes
/// on waiting: a dead resolver's queries each wait out the whole timeout, and holding places
/// that long would slow its checks to `IN_FLIGHT` per timeout.
pub const SLOW_QUERY: Duration = Duration::from_millis(250);

/// Spaces queries to one resolver so it never sees more than its configured rate.
///
/// Turns are spaced evenly; a task that wakes late (a busy machine) would then send closer to the
/// next one than the spacing, so the moments queries actually go out are also kept, and a query
/// waits until the one `per_second` queries before it is a full second old.
#[derive(Debug)]
pub struct RateLimiter {
    /// Minimum gap between two queries; zero when unlimited.
    spacing: Duration,
    /// The limit itself, for the window check.
    per_second: usize,
    /// The earliest moment the next query may go out.
    next: std::sync::Mutex<tokio::time::Instant>,
    /// When the latest `per_second` queries went out, oldest first.
    sent: std::sync::Mutex<std::collections::VecDeque<tokio::time::Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` queries per second; 0 means unlimited.
    pub fn new(per_second: u32) -> Self {
        let spacing = if per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / per_second
        };
        RateLimiter {
            spacing,
            per_second: per_second as usize,
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
            sent: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Waits for this caller's turn. Turns are handed out in call order.
    pub async fn acquire(&self) {
        if self.spacing.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.spacing;
            slot
        };
        tokio::time::sleep_until(slot).await;
        // The strict bound: no more than `per_second` sends in any one-second window.
        loop {
            let wait_until = {
                let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
                let now = tokio::time::Instant::now();
                match sent.front() {
                    Some(&oldest)
                        if sent.len() >= self.per_second
                            && now.duration_since(oldest) < Duration::from_secs(1) =>
                    {
                        oldest + Duration::from_secs(1)
                    }
                    _ => {
                        if sent.len() >= self.per_second {
                            sent.pop_front();
                        }
                        sent.push_back(now);
                        return;
                    }
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }
}

/// A persistent connection and whether it is still usable. TLS and HTTPS connections are driven
/// by hickory's own task; a closed one shows as an error, which triggers one reconnection.
struct Connection {
    exchange: DnsExchange<TokioRuntimeProvider>,
    alive: Arc<AtomicBool>,
}

/// A query's place in flight to one resolver, given back when dropped.
pub struct Place(
    /// `None` only if the semaphore were closed, which it never is.
    #[allow(dead_code)]
    Option<OwnedSemaphorePermit>,
);

/// A client for one configured resolver.
pub struct ResolverClient {
    /// The resolver's config name, the `resolver` label.
    pub name: String,
    /// Where queries go.
    address: SocketAddr,
    /// How queries travel.
    protocol: Protocol,
    /// How long one query may take.
    timeout: Duration,
    /// Sends UDP queries over a few long-lived sockets.
    udp: UdpTransport,
    /// Owns the tasks hickory spawns to drive TLS and HTTPS connections: they live as long as
    /// the client (dropping the provider would cancel them).
    provider: TokioRuntimeProvider,
    /// The TCP, TLS or HTTPS connection, opened on first use and reused while the server keeps
    /// it open.
    connection: Mutex<Option<Connection>>,
    /// The latest connection failure, so it is logged at warn once rather than per query.
    last_connect_error: std::sync::Mutex<Option<String>>,
    /// Keeps the resolver's query rate within its limit.
    limiter: RateLimiter,
    /// Places in flight, see [`IN_FLIGHT`].
    places: Arc<Semaphore>,
    /// This resolver's query counters.
    metrics: ResolverMetrics,
    /// An authoritative nameserver: asked without recursion, and only answers with the AA flag
    /// count as definitive.
    authoritative: bool,
    /// What the client was built from, to tell whether a reloaded config changes it.
    pub config: ResolverConfig,
    /// The latest query's verdict for `dkim_resolver_up`: 1 definitive, 0 not, -1 not asked yet.
    up: AtomicI8,
}

impl ResolverClient {
    /// Builds a client; no traffic is sent until the first query.
    pub fn new(config: &ResolverConfig, timeout: Duration, metrics: ResolverMetrics) -> Self {
        let provider = TokioRuntimeProvider::new();
        // One datagram per query and no retransmission: a retry would send the resolver more
        // than its politeness limit allows. A lost datagram is a timeout, which never changes
        // what is known about a record, and the record is asked again next interval.
        let udp = UdpTransport::new(config.address);
        ResolverClient {
            name: config.name.clone(),
            address: config.address,
            protocol: config.protocol,
            timeout,
            udp,
            provider,
            connection: Mutex::new(None),
            last_connect_error: std::sync::Mutex::new(None),
            limiter: RateLimiter::new(config.max_queries_per_second),
            places: Arc::new(Semaphore::new(IN_FLIGHT)),
            metrics,
            authoritative: false,
            config: config.clone(),
            up: AtomicI8::new(-1),
        }
    }

    /// A client for a domain's own nameserver, reported as `auth:{host}`.
    pub fn authoritative(
        host: &str,
        address: SocketAddr,
        timeout: Duration,
        metrics: ResolverMetrics,
    ) -> Self {
        let config = ResolverConfig {
            name: format!("auth:{host}"),
            address,
            protocol: Protocol::Udp,
            max_queries_per_second: crate::config::DEFAULT_MAX_QPS,
            tls: None,
        };
        ResolverClient {
            authoritative: true,
            ..ResolverClient::new(&config, timeout, metrics)
        }
    }

    /// Asks the resolver for `name`/`record_type` and returns the reply when it is definitive:
    /// NOERROR (with or without data) or NXDOMAIN, and for an authoritative nameserver, with the
    /// AA flag set.
    pub async fn query(&self, name: &Name, record_type: RecordType) -> Result<Message, Failure> {
        let place = self.place().await;
        self.query_in(place, name, record_type).await
    }

    /// Waits for a place among the queries in flight (see [`IN_FLIGHT`]). A round's dispatcher
    /// takes it before starting a check, so that checks waiting for a place wait as slots of
    /// the plan rather than as tasks.
    pub async fn place(&self) -> Place {
        // The semaphore is never closed, so this always gets a place.
        Place(self.places.clone().acquire_owned().await.ok())
    }

    /// [`ResolverClient::query`] in a place already taken.
    pub async fn query_in(
        &self,
        place: Place,
        name: &Name,
        record_type: RecordType,
    ) -> Result<Message, Failure> {
        self.limiter.acquire().await;
        let mut place = Some(place);
        self.metrics.queries.inc();
        let started = Instant::now();
        let exchange = self.exchange(name, record_type);
        tokio::pin!(exchange);
        let result = tokio::select! {
            result = &mut exchange => result,
            _ = tokio::time::sleep(SLOW_QUERY) => {
                place = None;
                exchange.await
            }
        };
        drop(place);
        let result = result.and_then(classify).and_then(|reply| {
            if self.authoritative && !reply.metadata.authoritative {
                Err(Failure {
                    reason: FailureReason::Other,
                    detail: "not authoritative for the zone (AA flag unset): a lame delegation"
                        .into(),
                })
            } else {
                Ok(reply)
            }
        });
        self.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => self.up.store(1, Ordering::Relaxed),
            Err(failure) => {
                self.up.store(0, Ordering::Relaxed);
                self.metrics.error(failure.reason).inc();
                tracing::debug!(
                    resolver = %self.name,
                    query = %name,
                    record_type = %record_type,
                    reason = failure.reason.as_str(),
                    detail = %failure.detail,
                    "lookup failed"
                );
            }
        }
        result
    }

    /// Whether the latest query got a definitive answer; `None` before the first.
    pub fn up(&self) -> Option<bool> {
        match self.up.load(Ordering::Relaxed) {
            -1 => None,
            v => Some(v == 1),
        }
    }

    /// How long one query may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the query by the configured protocol, falling back to TCP when UDP is truncated.
    async fn exchange(&self, name: &Name, record_type: RecordType) -> Result<Message, Failure> {
        let request = || request(name, record_type, !self.authoritative);
        if self.protocol != Protocol::Udp {
            return self.connected(request).await;
        }
        // The UDP transport always ends at its timeout.
        let message = query_message(
            Query::query(name.clone(), record_type),
            !self.authoritative,
            EDNS_PAYLOAD,
        );
        let reply = self.udp.exchange(message, self.timeout).await?;
        if reply.metadata.truncation {
            tracing::debug!(resolver = %self.name, query = %name, "truncated over UDP, retrying over TCP");
            self.connected(request).await
        } else {
            Ok(reply)
        }
    }

    /// Sends over the persistent connection within the timeout. Boxed: the connection futures
    /// are kilobytes, and keeping them inline would make every UDP query that large while it
    /// waits.
    async fn connected(&self, request: impl Fn() -> DnsRequest) -> Result<Message, Failure> {
        // hickory times out by itself; this outer bound is a guarantee against any path that
        // would not (connecting, reconnecting).
        let bound = self.timeout + Duration::from_millis(500);
        match tokio::time::timeout(bound, Box::pin(self.send_connected(request))).await {
            Ok(result) => result,
            Err(_) => Err(Failure {
                reason: FailureReason::Timeout,
                detail: format!("no reply within {:?}", self.timeout),
            }),
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
        if let Some(conn) = slot.as_ref() {
            if conn.alive.load(Ordering::Acquire) {
                return Ok((conn.exchange.clone(), true));
            }
        }
        let connected = tokio::time::timeout(self.timeout, self.connect())
            .await
            .unwrap_or_else(|_| {
                Err(Failure {
                    reason: FailureReason::Timeout,
                    detail: format!("no connection within {:?}", self.timeout),
                })
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
        let exchange = match (&self.protocol, &self.config.tls) {
            (Protocol::Tls, Some(tls)) => {
                let server_name = ServerName::try_from(tls.name.clone()).map_err(|e| Failure {
                    reason: FailureReason::Other,
                    detail: format!("invalid tls_name {:?}: {e}", tls.name),
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
        let mut last = self
            .last_connect_error
            .lock()
            .unwrap_or_else(|e| e.into_inner());
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
        roots.add(cert.clone()).map_err(|e| Failure {
            reason: FailureReason::Other,
            detail: format!("unusable certificate in tls_ca_file: {e}"),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| Failure {
            reason: FailureReason::Other,
            detail: format!("TLS setup failed: {e}"),
        })
}

/// The query for the connected transports: the same message as over UDP.
fn request(name: &Name, record_type: RecordType, recursion_desired: bool) -> DnsRequest {
    let message = query_message(
        Query::query(name.clone(), record_type),
        recursion_desired,
        EDNS_PAYLOAD,
    );
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = recursion_desired;
    options.case_randomization = false;
    DnsRequest::new(message, options)
}

async fn send(
    exchange: &DnsExchange<TokioRuntimeProvider>,
    request: DnsRequest,
) -> Result<Message, Failure> {
    match exchange.send(request).next().await {
        Some(Ok(response)) => Ok(response.into_message()),
        Some(Err(e)) => Err(net_failure(&e)),
        // hickory ends the response stream without an item when its own timeout fires.
        None => Err(Failure {
            reason: FailureReason::Timeout,
            detail: "no reply within the timeout".into(),
        }),
    }
}

/// Sorts a reply by its response code: NOERROR and NXDOMAIN are definitive, the rest fail.
fn classify(reply: Message) -> Result<Message, Failure> {
    let code = reply.metadata.response_code;
    let reason = match code {
        ResponseCode::NoError | ResponseCode::NXDomain => return Ok(reply),
        ResponseCode::ServFail => FailureReason::Servfail,
        ResponseCode::Refused => FailureReason::Refused,
        _ => FailureReason::Other,
    };
    Err(Failure {
        reason,
        detail: format!("response code {code}"),
    })
}

/// Maps a transport error to a reason.
fn net_failure(error: &NetError) -> Failure {
    let reason = match error {
        NetError::Timeout => FailureReason::Timeout,
        NetError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => FailureReason::Timeout,
        NetError::Io(_) | NetError::NoConnections | NetError::Busy => FailureReason::Network,
        NetError::Proto(_) | NetError::QueryCaseMismatch => FailureReason::Malformed,
        _ => FailureReason::Other,
    };
    Failure {
        reason,
        detail: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_queries() {
        let limiter = RateLimiter::new(4);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        // Five turns at 4 per second: the fifth goes out one second after the first.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_limit_in_any_second_even_when_turns_bunch() {
        let limiter = RateLimiter::new(4);
        let mut sent = Vec::new();
        for _ in 0..9 {
            // Turns bunch up when tasks wake late; model the worst case, every turn "now".
            *limiter.next.lock().unwrap() = tokio::time::Instant::now();
            limiter.acquire().await;
            sent.push(tokio::time::Instant::now());
        }
        // Any five consecutive sends span at least a second: never five within one.
        for five in sent.windows(5) {
            assert!(
                five[4].duration_since(five[0]) >= Duration::from_secs(1),
                "{sent:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_rate_never_waits() {
        let limiter = RateLimiter::new(0);
        let start = tokio::time::Instant::now();
        for _ in 0..1000 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
