//! The counters kept over the process's life: queries, failures and round trips per resolver,
//! reloads and build information, in a `prometheus` registry with the process collector.
//!
//! The transport bumps them through [`ResolverMetrics`], one set of handles per resolver, so a
//! query never looks its labels up by name.

use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use super::{
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, CONFIG_LAST_RELOAD_SUCCESSFUL, DNS_QUERIES_TOTAL,
    EXPORTER_BUILD_INFO, EXPORTER_INTERVAL_SECONDS, EXPORTER_SHORTEST_ROUND_SECONDS,
    LOOKUP_DURATION_SECONDS, LOOKUP_ERRORS_TOTAL, Metric,
};
use crate::evidence::FailureReason;

/// Buckets for DNS round trips: from a loopback server to a slow public resolver.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-lifetime metrics.
pub struct Metrics {
    /// Holds everything below plus the process collector.
    registry: Registry,
    /// `dkim_dns_queries_total{resolver}`.
    dns_queries: IntCounterVec,
    /// `dkim_lookup_errors_total{resolver,reason}`.
    lookup_errors: IntCounterVec,
    /// `dkim_lookup_duration_seconds{resolver}`.
    lookup_duration: HistogramVec,
    /// `dkim_exporter_config_last_reload_successful`.
    pub config_reload_successful: IntGauge,
    /// `dkim_exporter_config_last_reload_success_timestamp_seconds`.
    pub config_reload_timestamp: Gauge,
    /// `dkim_exporter_shortest_round_seconds`.
    pub shortest_round: Gauge,
    /// `dkim_exporter_interval_seconds`.
    pub interval: Gauge,
}

/// One resolver's handles into [`Metrics`], so queries do not look labels up by name.
#[derive(Clone)]
pub struct ResolverMetrics {
    /// Queries sent.
    pub queries: prometheus::IntCounter,
    /// Round-trip times.
    pub duration: prometheus::Histogram,
    /// Errors, one counter per reason in [`FailureReason::ALL`] order.
    errors: Vec<prometheus::IntCounter>,
}

impl ResolverMetrics {
    /// The error counter for `reason`.
    pub fn error(&self, reason: FailureReason) -> &prometheus::IntCounter {
        let index = FailureReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(FailureReason::ALL.len() - 1);
        &self.errors[index]
    }
}

impl Metrics {
    /// Registers every process-lifetime metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let dns_queries = IntCounterVec::new(opts(DNS_QUERIES_TOTAL), DNS_QUERIES_TOTAL.labels)?;
        let lookup_errors =
            IntCounterVec::new(opts(LOOKUP_ERRORS_TOTAL), LOOKUP_ERRORS_TOTAL.labels)?;
        let lookup_duration = HistogramVec::new(
            HistogramOpts::from(opts(LOOKUP_DURATION_SECONDS)).buckets(DURATION_BUCKETS.to_vec()),
            LOOKUP_DURATION_SECONDS.labels,
        )?;
        let build_info = IntGaugeVec::new(opts(EXPORTER_BUILD_INFO), EXPORTER_BUILD_INFO.labels)?;
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("DKIM_EXPORTER_REVISION"),
                env!("DKIM_EXPORTER_RUSTC_VERSION"),
            ])
            .set(1);
        let config_reload_successful = IntGauge::with_opts(opts(CONFIG_LAST_RELOAD_SUCCESSFUL))?;
        let config_reload_timestamp =
            Gauge::with_opts(opts(CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS))?;
        let shortest_round = Gauge::with_opts(opts(EXPORTER_SHORTEST_ROUND_SECONDS))?;
        let interval = Gauge::with_opts(opts(EXPORTER_INTERVAL_SECONDS))?;

        registry.register(Box::new(dns_queries.clone()))?;
        registry.register(Box::new(lookup_errors.clone()))?;
        registry.register(Box::new(lookup_duration.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(config_reload_successful.clone()))?;
        registry.register(Box::new(config_reload_timestamp.clone()))?;
        registry.register(Box::new(shortest_round.clone()))?;
        registry.register(Box::new(interval.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Metrics {
            registry,
            dns_queries,
            lookup_errors,
            lookup_duration,
            config_reload_successful,
            config_reload_timestamp,
            shortest_round,
            interval,
        })
    }

    /// Handles for one resolver; its counters start at zero for every reason.
    pub fn resolver(&self, name: &str) -> ResolverMetrics {
        ResolverMetrics {
            queries: self.dns_queries.with_label_values(&[name]),
            duration: self.lookup_duration.with_label_values(&[name]),
            errors: FailureReason::ALL
                .iter()
                .map(|r| self.lookup_errors.with_label_values(&[name, r.as_str()]))
                .collect(),
        }
    }

    /// Drops every series of a resolver that left the config.
    pub fn forget_resolver(&self, name: &str) {
        // Removing a series that does not exist is not an error worth reporting.
        let _ = self.dns_queries.remove_label_values(&[name]);
        let _ = self.lookup_duration.remove_label_values(&[name]);
        for reason in FailureReason::ALL {
            let _ = self
                .lookup_errors
                .remove_label_values(&[name, reason.as_str()]);
        }
    }
}

/// The registry's options for `metric`: its name and help.
fn opts(metric: Metric) -> Opts {
    Opts::new(metric.name, metric.help)
}

impl Metrics {
    /// The registry's families in the text format.
    pub(super) fn encode_registry(&self, out: &mut String) {
        let mut buffer = Vec::new();
        match TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            Ok(()) => out.push_str(&String::from_utf8_lossy(&buffer)),
            Err(e) => tracing::error!(error = %e, "encoding registry metrics failed"),
        }
    }
}
