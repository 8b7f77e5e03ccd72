//! Talking to resolvers: one client per resolver sends a query over UDP (retried over TCP when
//! truncated), TCP, TLS or HTTPS, politely, and sorts every outcome into a definitive answer or
//! a failure with a reason.
//!
//! Nothing is cached: every call sends a query, because the point is to see what the resolver
//! says now.
//!
//! - [`udp`]: UDP over a few long-lived sockets per resolver;
//! - `connected`: TCP, TLS and HTTPS over one kept-open connection;
//! - [`message`]: building queries, classifying replies, reading names and records;
//! - [`limiter`]: the politeness limit;
//! - [`nameservers`]: each domain's own nameservers, found each round;
//! - [`walk`]: the delegation of a domain no resolver can resolve, walked as `dig +trace` does;
//! - [`health`]: whether a resolver works, judged over a round.

mod connected;
pub mod health;
pub mod limiter;
pub mod message;
pub mod nameservers;
pub mod udp;
pub mod walk;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hickory_proto::op::{DnsRequest, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Protocol, ResolverConfig};
use crate::evidence::{Failure, FailureReason};
use crate::metrics::ResolverMetrics;
use connected::Connected;
use limiter::RateLimiter;
use message::{EDNS_PAYLOAD, WireQuery, classify, ede, query_message, request};
use udp::UdpTransport;

/// Queries to one resolver that may be in flight at once: a burst larger than the resolver's
/// receive buffer would be dropped and read as timeouts. Others wait for a place.
pub const IN_FLIGHT: usize = 128;

/// A query still unanswered after this long gives its place in flight to the next one and goes
/// on waiting: a dead resolver's queries each wait out the whole timeout, and holding places
/// that long would slow its checks to `IN_FLIGHT` per timeout.
pub const SLOW_QUERY: Duration = Duration::from_millis(250);

/// Timeouts in a row, with no reply between, after which a resolver is taken to be silent: its
/// queries give their places in flight up as soon as they are sent, so that its checks go out
/// at the pace the plan asks instead of `IN_FLIGHT` per [`SLOW_QUERY`], which at tens of
/// thousands of records would make every round wait on the dead resolver. The places guard the
/// resolver's receive buffer against bursts, which a resolver that answers nothing does not
/// need; its first reply ends the silence. Every check is still asked: a silent resolver's
/// failures are real timeouts, never made up.
pub const SILENT_AFTER: u32 = 32;

/// How a query is asked, beyond its name and type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask {
    /// Sets the CD bit: a validating resolver answers without checking DNSSEC, which tells a
    /// zone whose signatures are bogus from a resolver that is broken.
    pub checking_disabled: bool,
    /// Takes a reply without the AA flag from a nameserver: a parent zone's referral.
    pub referral: bool,
    /// Sets EDNS's DO bit: a nameserver of a signed zone answers with the RRSIGs over the
    /// records. Only a domain's own nameservers are asked so, for the record itself.
    pub dnssec_ok: bool,
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
    /// How queries travel.
    protocol: Protocol,
    /// How long one query may take.
    timeout: Duration,
    /// Sends UDP queries over a few long-lived sockets.
    udp: UdpTransport,
    /// The TCP, TLS or HTTPS connection, for `protocol` other than UDP and for truncated
    /// UDP answers.
    connected: Connected,
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
    /// The verdict of the latest round for `dkim_resolver_up` ([`health`]): 1 working, 0 not,
    /// -1 not judged yet.
    up: AtomicI8,
    /// Queries that timed out since the latest reply, see [`SILENT_AFTER`].
    timeouts_in_row: AtomicU32,
}

impl Ask {
    /// With the CD bit set.
    pub const CHECKING_DISABLED: Ask = Ask {
        checking_disabled: true,
        referral: false,
        dnssec_ok: false,
    };
    /// Taking a referral.
    pub const REFERRAL: Ask = Ask {
        checking_disabled: false,
        referral: true,
        dnssec_ok: false,
    };
    /// With the DO bit set.
    pub const DNSSEC_OK: Ask = Ask {
        checking_disabled: false,
        referral: false,
        dnssec_ok: true,
    };
}

impl ResolverClient {
    /// Builds a client; no traffic is sent until the first query.
    pub fn new(config: &ResolverConfig, timeout: Duration, metrics: ResolverMetrics) -> Self {
        // One datagram per query and no retransmission: a retry would send the resolver more
        // than its politeness limit allows. A lost datagram is a timeout, which never changes
        // what is known about a record, and the record is asked again next interval.
        let udp = UdpTransport::new(config.address);
        ResolverClient {
            name: config.name.clone(),
            protocol: config.protocol,
            timeout,
            udp,
            connected: Connected::new(config, timeout),
            limiter: RateLimiter::new(config.max_queries_per_second),
            places: Arc::new(Semaphore::new(IN_FLIGHT)),
            metrics,
            authoritative: false,
            config: config.clone(),
            up: AtomicI8::new(-1),
            timeouts_in_row: AtomicU32::new(0),
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
        self.ask(name, record_type, Ask::default()).await
    }

    /// [`ResolverClient::query`], asked as `ask` says.
    pub async fn ask(
        &self,
        name: &Name,
        record_type: RecordType,
        ask: Ask,
    ) -> Result<Message, Failure> {
        let place = self.place().await;
        self.query_in(place, name, record_type, ask).await
    }

    /// Waits for a place among the queries in flight (see [`IN_FLIGHT`]). A round's dispatcher
    /// takes it before starting a check, so that checks waiting for a place wait as slots of
    /// the plan rather than as tasks.
    pub async fn place(&self) -> Place {
        // The semaphore is never closed, so this always gets a place.
        Place(self.places.clone().acquire_owned().await.ok())
    }

    /// [`ResolverClient::ask`] in a place already taken.
    pub async fn query_in(
        &self,
        place: Place,
        name: &Name,
        record_type: RecordType,
        ask: Ask,
    ) -> Result<Message, Failure> {
        self.limiter.acquire().await;
        let mut place = (!self.silent()).then_some(place);
        self.metrics.queries.inc();
        let started = Instant::now();
        let result = self.exchange(name, record_type, ask, &mut place).await;
        drop(place);
        self.note_silence(&result);
        let result = result.and_then(classify).and_then(|reply| {
            if self.authoritative && !ask.referral && !reply.metadata.authoritative {
                let mut failure = Failure::new(
                    FailureReason::Lame,
                    "not authoritative for the zone (AA flag unset): a lame delegation",
                );
                failure.ede = ede(&reply);
                Err(failure)
            } else {
                Ok(reply)
            }
        });
        let elapsed = started.elapsed();
        self.metrics.duration.observe(elapsed.as_secs_f64());
        if let Err(failure) = &result {
            self.metrics.error(failure.reason).inc();
        }
        // Every query at debug: who was asked what, what came back, how fast.
        if tracing::enabled!(tracing::Level::DEBUG) {
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            match &result {
                Ok(reply) => tracing::debug!(
                    resolver = %self.name,
                    query = %name,
                    record_type = %record_type,
                    rcode = %reply.metadata.response_code,
                    answers = reply.answers.len(),
                    ede = %ede(reply).map(|e| e.to_string()).unwrap_or_default(),
                    latency_ms,
                    "query"
                ),
                Err(failure) => tracing::debug!(
                    resolver = %self.name,
                    query = %name,
                    record_type = %record_type,
                    reason = failure.reason.as_str(),
                    detail = %failure.detail,
                    ede = %failure.ede.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                    latency_ms,
                    "query failed"
                ),
            }
        }
        result
    }

    /// Whether the resolver is silent: [`SILENT_AFTER`] queries in a row timed out.
    pub fn silent(&self) -> bool {
        self.timeouts_in_row.load(Ordering::Relaxed) >= SILENT_AFTER
    }

    /// Counts a timeout towards silence; any reply ends it. A network failure (a closed port, a
    /// broken connection) says neither: it is quick, and holds no place for long.
    fn note_silence(&self, result: &Result<Message, Failure>) {
        match result {
            Err(failure) if failure.reason == FailureReason::Timeout => {
                let count = |n: u32| Some(n.saturating_add(1));
                let before = self
                    .timeouts_in_row
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, count)
                    .unwrap_or(u32::MAX);
                if before == SILENT_AFTER - 1 {
                    tracing::debug!(resolver = %self.name, timeouts = SILENT_AFTER, "resolver is silent; its queries no longer wait for places in flight");
                }
            }
            Err(failure) if failure.reason == FailureReason::Network => {}
            // Read before written: a healthy resolver's replies write nothing shared.
            _ if self.timeouts_in_row.load(Ordering::Relaxed) == 0 => {}
            _ => {
                if self.timeouts_in_row.swap(0, Ordering::Relaxed) >= SILENT_AFTER {
                    tracing::debug!(resolver = %self.name, "resolver replies again");
                }
            }
        }
    }

    /// Records the verdict of a round on whether the resolver works ([`health`]).
    pub fn set_up(&self, working: bool) {
        self.up.store(i8::from(working), Ordering::Relaxed);
    }

    /// Whether the resolver worked in its latest round; `None` before one was judged.
    pub fn up(&self) -> Option<bool> {
        match self.up.load(Ordering::Relaxed) {
            -1 => None,
            v => Some(v == 1),
        }
    }

    /// Queries sent since the client was made (or since the resolver entered the config).
    pub fn queries(&self) -> u64 {
        self.metrics.queries.get()
    }

    /// The mean time a query took, timeouts included; `None` before the first.
    pub fn mean_query_seconds(&self) -> Option<f64> {
        let count = self.metrics.duration.get_sample_count();
        (count > 0).then(|| self.metrics.duration.get_sample_sum() / count as f64)
    }

    /// Whether this is a domain's own nameserver, asked without recursion.
    pub fn is_authoritative(&self) -> bool {
        self.authoritative
    }

    /// How long one query may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the query by the configured protocol, falling back to TCP when UDP is truncated;
    /// `place` is given up once the query is slow ([`SLOW_QUERY`]).
    async fn exchange(
        &self,
        name: &Name,
        record_type: RecordType,
        ask: Ask,
        place: &mut Option<Place>,
    ) -> Result<Message, Failure> {
        let message = || {
            let mut message = query_message(
                Query::query(name.clone(), record_type),
                !self.authoritative,
                EDNS_PAYLOAD,
            );
            message.metadata.checking_disabled = ask.checking_disabled;
            if let Some(edns) = message.edns.as_mut() {
                edns.set_dnssec_ok(ask.dnssec_ok);
            }
            message
        };
        let request = || request(message());
        if self.protocol != Protocol::Udp {
            return self.connected_exchange(request, place).await;
        }
        // The UDP transport always ends at its timeout.
        let query = WireQuery::new(
            name,
            record_type,
            !self.authoritative,
            ask.checking_disabled,
            ask.dnssec_ok,
            EDNS_PAYLOAD,
        );
        let reply = self.udp.exchange(query, self.timeout, place).await?;
        if reply.metadata.truncation {
            tracing::debug!(resolver = %self.name, query = %name, "truncated over UDP, retrying over TCP");
            self.connected_exchange(request, place).await
        } else {
            Ok(reply)
        }
    }

    /// The connected transport's exchange, giving up `place` once the query is slow. (The UDP
    /// transport does the same with the one timer it has anyway.)
    async fn connected_exchange(
        &self,
        request: impl Fn() -> DnsRequest,
        place: &mut Option<Place>,
    ) -> Result<Message, Failure> {
        let exchange = self.connected.exchange(request);
        tokio::pin!(exchange);
        tokio::select! {
            result = &mut exchange => result,
            _ = tokio::time::sleep(SLOW_QUERY) => {
                *place = None;
                exchange.await
            }
        }
    }
}

/// Locks a mutex, carrying on with the data if a holder panicked: every update under the
/// resolver's locks is a single insert, remove or replacement, which a panic cannot leave half
/// done.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
