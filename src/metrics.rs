//! Metric names, their help, and the `/metrics` text.
//!
//! Names live here once and the tests import them. Counters and histograms that accumulate over
//! the process's life are kept in a `prometheus` registry; everything that describes the latest
//! state of records, domains and rounds is rendered from a [`State`] snapshot on each scrape, so a
//! record removed from the config cannot leave a stale series behind.

use std::fmt::Write as _;

use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::dns::FailureReason;
use crate::state::{RecordState, ResolverState, State, View};

/// A metric's name and help text.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The exposed name.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
}

macro_rules! metrics {
    ($(#[doc = $help:literal] $id:ident = $name:literal;)*) => {
        $(#[doc = $help] pub const $id: Metric = Metric { name: $name, help: $help.trim_ascii() };)*
    };
}

metrics! {
    /// 1 when the record of the expected type is present, 0 when definitively absent.
    RECORD_PRESENT = "dkim_record_present";
    /// 1 when the record is present and holds the expected CNAME target or a usable DKIM key.
    RECORD_CORRECT = "dkim_record_correct";
    /// 1 when the latest lookup of the record got a definitive answer.
    RECORD_LOOKUP_SUCCESS = "dkim_record_lookup_success";
    /// TTL of the latest definitive answer, in seconds (negative-caching TTL when absent).
    RECORD_TTL_SECONDS = "dkim_record_ttl_seconds";
    /// What the resolver returned: record type and value (CNAME target, TXT hash). Always 1.
    RECORD_INFO = "dkim_record_info";
    /// Share of answering configured resolvers on which the record is correct.
    RECORD_PROPAGATION_RATIO = "dkim_record_propagation_ratio";
    /// 1 when all answering resolvers returned the same record type and value.
    RECORD_RESOLVERS_AGREE = "dkim_record_resolvers_agree";
    /// 1 while the problem holds for the record.
    RECORD_PROBLEM = "dkim_record_problem";
    /// Size in bits of the public key the record leads to.
    KEY_BITS = "dkim_key_bits";
    /// 1 when every record of the domain is correct on every answering resolver.
    DOMAIN_HEALTHY = "dkim_domain_healthy";
    /// Unix time at which the latest check of every record of the domain ended.
    DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS = "dkim_domain_last_check_timestamp_seconds";
    /// 1 when the resolver's latest query got a definitive answer.
    RESOLVER_UP = "dkim_resolver_up";
    /// DNS queries sent.
    DNS_QUERIES_TOTAL = "dkim_dns_queries_total";
    /// Lookups that got no definitive answer, by reason.
    LOOKUP_ERRORS_TOTAL = "dkim_lookup_errors_total";
    /// Round-trip time of DNS queries.
    LOOKUP_DURATION_SECONDS = "dkim_lookup_duration_seconds";
    /// Completed check rounds.
    CHECK_ROUNDS_TOTAL = "dkim_check_rounds_total";
    /// Length of the latest completed check round, in seconds.
    CHECK_ROUND_DURATION_SECONDS = "dkim_check_round_duration_seconds";
    /// Records configured.
    EXPORTER_RECORDS = "dkim_exporter_records";
    /// 1 when every record of the probed domain is correct with no problem.
    PROBE_SUCCESS = "dkim_probe_success";
    /// How long the probe took, in seconds.
    PROBE_DURATION_SECONDS = "dkim_probe_duration_seconds";
    /// Build information. Always 1.
    EXPORTER_BUILD_INFO = "dkim_exporter_build_info";
    /// 1 when the latest config load succeeded.
    CONFIG_LAST_RELOAD_SUCCESSFUL = "dkim_exporter_config_last_reload_successful";
    /// Unix time of the latest successful config load.
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS = "dkim_exporter_config_last_reload_success_timestamp_seconds";
}

/// Label names.
pub mod label {
    /// The domain of a record.
    pub const DOMAIN: &str = "domain";
    /// The selector of a record.
    pub const SELECTOR: &str = "selector";
    /// The resolver asked.
    pub const RESOLVER: &str = "resolver";
    /// Why a lookup failed.
    pub const REASON: &str = "reason";
    /// The record type found.
    pub const RECORD_TYPE: &str = "record_type";
    /// The value found.
    pub const VALUE: &str = "value";
    /// A named DKIM problem.
    pub const PROBLEM: &str = "problem";
}

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
        let dns_queries = IntCounterVec::new(
            Opts::new(DNS_QUERIES_TOTAL.name, DNS_QUERIES_TOTAL.help),
            &[label::RESOLVER],
        )?;
        let lookup_errors = IntCounterVec::new(
            Opts::new(LOOKUP_ERRORS_TOTAL.name, LOOKUP_ERRORS_TOTAL.help),
            &[label::RESOLVER, label::REASON],
        )?;
        let lookup_duration = HistogramVec::new(
            HistogramOpts::new(LOOKUP_DURATION_SECONDS.name, LOOKUP_DURATION_SECONDS.help)
                .buckets(DURATION_BUCKETS.to_vec()),
            &[label::RESOLVER],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(EXPORTER_BUILD_INFO.name, EXPORTER_BUILD_INFO.help),
            &["version", "revision", "rustversion"],
        )?;
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("DKIM_EXPORTER_REVISION"),
                env!("DKIM_EXPORTER_RUSTC_VERSION"),
            ])
            .set(1);
        let config_reload_successful = IntGauge::new(
            CONFIG_LAST_RELOAD_SUCCESSFUL.name,
            CONFIG_LAST_RELOAD_SUCCESSFUL.help,
        )?;
        let config_reload_timestamp = Gauge::new(
            CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS.name,
            CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS.help,
        )?;

        registry.register(Box::new(dns_queries.clone()))?;
        registry.register(Box::new(lookup_errors.clone()))?;
        registry.register(Box::new(lookup_duration.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(config_reload_successful.clone()))?;
        registry.register(Box::new(config_reload_timestamp.clone()))?;
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

    /// The `/probe` text: the probed records' gauges, then whether the probe succeeded and how
    /// long it took.
    pub fn render_probe(state: &State, success: bool, seconds: f64) -> String {
        let mut out = String::with_capacity(2048 + state.records.len() * 1024);
        render_records(&mut out, state);
        Family::new(&mut out, PROBE_SUCCESS, "gauge").sample(&[], bool_value(success));
        Family::new(&mut out, PROBE_DURATION_SECONDS, "gauge").sample(&[], seconds);
        out
    }

    /// The full `/metrics` text: the snapshot's gauges, `dkim_resolver_up` of the resolvers in
    /// use (`None`: not asked yet), then the process-lifetime metrics.
    pub fn render(&self, state: &State, resolvers_up: &[(&str, Option<bool>)]) -> String {
        let mut out = String::with_capacity(4096 + state.records.len() * 1024);
        render_state(&mut out, state);
        let mut family = Family::new(&mut out, RESOLVER_UP, "gauge");
        for (resolver, up) in resolvers_up {
            if let Some(up) = up {
                family.sample(&[(label::RESOLVER, resolver)], bool_value(*up));
            }
        }
        let mut buffer = Vec::new();
        match TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            Ok(()) => out.push_str(&String::from_utf8_lossy(&buffer)),
            Err(e) => tracing::error!(error = %e, "encoding registry metrics failed"),
        }
        out
    }
}

/// Writes one family: header and samples, or nothing when it has no samples.
struct Family<'a> {
    /// Where the text goes.
    out: &'a mut String,
    /// The family's name and help.
    metric: Metric,
    /// Its type: `gauge` or `counter`.
    kind: &'static str,
    /// Whether the `# HELP` and `# TYPE` lines have been written.
    started: bool,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, metric: Metric, kind: &'static str) -> Self {
        Family {
            out,
            metric,
            kind,
            started: false,
        }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let out = &mut *self.out;
        let name = self.metric.name;
        if !self.started {
            self.started = true;
            for line in ["# HELP ", name, " ", self.metric.help, "\n"] {
                out.push_str(line);
            }
            for line in ["# TYPE ", name, " ", self.kind, "\n"] {
                out.push_str(line);
            }
        }
        out.push_str(name);
        let mut separator = "{";
        for (label, value) in labels {
            out.push_str(separator);
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
            separator = ",";
        }
        if !labels.is_empty() {
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }
}

/// Escapes a label value as the text format wants: backslash, double quote and newline.
fn escape_label_value(out: &mut String, value: &str) {
    // Domain names, selectors and resolver names never need it: a quick look for anything at
    // or below '"' (which takes in '\n') or a backslash, then one copy. The look goes through
    // every byte without stopping early, which lets it run on whole vectors of bytes.
    let suspect = value
        .bytes()
        .fold(false, |found, b| found | (b <= b'"') | (b == b'\\'));
    if !suspect {
        out.push_str(value);
        return;
    }
    // The special characters are ASCII, so every cut below falls between characters.
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// Below this, every integer is exact in an f64 and `Display` writes it as plain digits.
const PLAIN_INTEGER_LIMIT: f64 = 1e15;

/// Writes `value` exactly as f64's `Display` does: the text has always been written that way.
fn write_value(out: &mut String, value: f64) {
    // Nearly every sample is 0, 1, a TTL or a key size: digits, without the float formatter.
    // Negative numbers (and -0, which `Display` writes as "-0") take the general path.
    if value.is_sign_positive() && value < PLAIN_INTEGER_LIMIT && value.fract() == 0.0 {
        // Exact: the value is a whole number below 2^53.
        let mut n = value as u64;
        let mut digits = [0u8; 16];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &digit in &digits[start..] {
            out.push(char::from(digit));
        }
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{value}");
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn render_state(out: &mut String, state: &State) {
    render_records(out, state);
    let mut family = Family::new(out, DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS, "gauge");
    for domain in &state.domains {
        if let Some(at) = domain.last_check {
            family.sample(&[(label::DOMAIN, &domain.name)], at);
        }
    }

    // The exporter itself.
    Family::new(out, CHECK_ROUNDS_TOTAL, "counter").sample(&[], state.rounds.completed as f64);
    if let Some(seconds) = state.rounds.last_duration {
        Family::new(out, CHECK_ROUND_DURATION_SECONDS, "gauge").sample(&[], seconds);
    }
    Family::new(out, EXPORTER_RECORDS, "gauge").sample(&[], state.records.len() as f64);
}

/// The per-record and per-domain verdicts.
fn render_records(out: &mut String, state: &State) {
    use label::{DOMAIN, PROBLEM, RECORD_TYPE, RESOLVER, SELECTOR, VALUE};
    let resolvers = &state.resolvers;

    // Per record and resolver (`auth:` included), from the latest definitive answer or lookup.
    type PerView = fn(&View) -> Option<f64>;
    let per_view: [(Metric, PerView); 4] = [
        (RECORD_PRESENT, |v| {
            v.known.as_ref().map(|o| bool_value(o.present))
        }),
        (RECORD_CORRECT, |v| {
            v.known.as_ref().map(|o| bool_value(o.correct))
        }),
        (RECORD_LOOKUP_SUCCESS, |v| v.latest_ok.map(bool_value)),
        (RECORD_TTL_SECONDS, |v| {
            v.known.as_ref().and_then(|o| o.ttl).map(f64::from)
        }),
    ];
    for (metric, value_of) in per_view {
        let mut family = Family::new(out, metric, "gauge");
        for record in &state.records {
            for (resolver, view) in record.all_views(resolvers) {
                if let Some(value) = value_of(view) {
                    family.sample(
                        &[
                            (DOMAIN, &record.domain),
                            (SELECTOR, &record.selector),
                            (RESOLVER, resolver),
                        ],
                        value,
                    );
                }
            }
        }
    }

    let mut family = Family::new(out, RECORD_INFO, "gauge");
    for record in &state.records {
        for (resolver, view) in record.all_views(resolvers) {
            if let Some(observation) = &view.known {
                family.sample(
                    &[
                        (DOMAIN, &record.domain),
                        (SELECTOR, &record.selector),
                        (RESOLVER, resolver),
                        (RECORD_TYPE, observation.found.record_type()),
                        (VALUE, observation.found.value()),
                    ],
                    1.0,
                );
            }
        }
    }

    // Per record, derived across resolvers.
    type PerRecord = fn(&RecordState, &[ResolverState]) -> Option<f64>;
    let per_record: [(Metric, PerRecord); 3] = [
        (RECORD_PROPAGATION_RATIO, |r, _| r.propagation_ratio()),
        (RECORD_RESOLVERS_AGREE, |r, resolvers| {
            r.resolvers_agree(resolvers).map(bool_value)
        }),
        (KEY_BITS, |r, resolvers| {
            r.key_bits(resolvers).map(f64::from)
        }),
    ];
    for (metric, value_of) in per_record {
        let mut family = Family::new(out, metric, "gauge");
        for record in &state.records {
            if let Some(value) = value_of(record, resolvers) {
                family.sample(
                    &[(DOMAIN, &record.domain), (SELECTOR, &record.selector)],
                    value,
                );
            }
        }
    }
    let mut family = Family::new(out, RECORD_PROBLEM, "gauge");
    for record in &state.records {
        let mut problems: Vec<&str> = record.findings.iter().map(|f| f.problem.as_str()).collect();
        problems.sort_unstable();
        problems.dedup();
        for problem in problems {
            family.sample(
                &[
                    (DOMAIN, &record.domain),
                    (SELECTOR, &record.selector),
                    (PROBLEM, problem),
                ],
                1.0,
            );
        }
    }

    // Per domain. Reconcile keeps a domain's records together, so each verdict reads the
    // domain's records alone rather than searching every record for each domain.
    let mut family = Family::new(out, DOMAIN_HEALTHY, "gauge");
    for domain in &state.domains {
        let records = state
            .records
            .get(domain.records.clone())
            .unwrap_or_default();
        let mut verdicts = records
            .iter()
            .filter_map(|r| r.healthy(resolvers))
            .peekable();
        if verdicts.peek().is_some() {
            let healthy = verdicts.all(|h| h);
            family.sample(&[(DOMAIN, &domain.name)], bool_value(healthy));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_comes_from_the_doc_comment() {
        assert_eq!(
            RESOLVER_UP.help,
            "1 when the resolver's latest query got a definitive answer."
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        Family::new(&mut out, RECORD_INFO, "gauge").sample(&[("value", "a\"b\\c\nd")], 1.0);
        assert!(
            out.ends_with("dkim_record_info{value=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped_as_before() {
        // How they were escaped before, char by char.
        let slow = |value: &str| {
            let mut out = String::new();
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out
        };
        for value in [
            "",
            "plain",
            "\"",
            "\\\\",
            "\n\n",
            "é\"ü\\ß\n€",
            "end\\",
            " !#",
        ] {
            let mut fast = String::new();
            escape_label_value(&mut fast, value);
            assert_eq!(fast, slow(value), "{value:?}");
        }
    }

    #[test]
    fn values_are_written_as_display_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            300.0,
            f64::from(u32::MAX),
            2.0 / 3.0,
            1.0 / 3.0,
            0.1 + 0.2,
            1_732_400_000.123,
            1_732_400_000.0,
            999_999_999_999_999.0,
            1e15,
            1e15 + 1.0,
            9_007_199_254_740_993.0,
            (1u64 << 60) as f64,
            1e21,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            0.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // Every kind of float, and every size of whole number.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from_bits(x));
            values.push((x >> (x % 64)) as f64);
            values.push((x % 100_000) as f64 / 1000.0);
        }
        for value in values {
            let mut out = String::new();
            write_value(&mut out, value);
            assert_eq!(out, value.to_string(), "{:#x}", value.to_bits());
        }
    }

    #[test]
    fn empty_state_renders_only_exporter_metrics() {
        let metrics = Metrics::new().unwrap();
        let text = metrics.render(&State::default(), &[("a", Some(true)), ("b", None)]);
        assert!(text.contains("dkim_resolver_up{resolver=\"a\"} 1\n"));
        assert!(!text.contains("resolver=\"b\""));
        assert!(text.contains("dkim_check_rounds_total 0\n"));
        assert!(text.contains("dkim_exporter_records 0\n"));
        assert!(!text.contains("dkim_record_present"));
        assert!(text.contains("dkim_exporter_build_info{"));
    }
}
