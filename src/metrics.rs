//! Metric names, their help, and the `/metrics` text.
//!
//! Names live here once and the tests import them. Counters and histograms that accumulate over
//! the process's life are kept in a `prometheus` registry; everything that describes the latest
//! state of records, domains and rounds is rendered from a [`State`] snapshot on each scrape, so a
//! record removed from the config cannot leave a stale series behind.
//!
//! At ten thousand domains the text runs to tens of megabytes, so `/metrics` renders it a chunk
//! at a time with [`StateChunks`]: memory holds one chunk rather than the whole text, and check
//! rounds write their results between chunks instead of waiting for the whole scrape.

use std::fmt::Write as _;

use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::evidence::FailureReason;
use crate::state::{State, View};

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
        render_parts(
            RECORD_PARTS,
            state,
            &mut Cursor::default(),
            &mut out,
            usize::MAX,
        );
        Family::new(&mut out, PROBE_SUCCESS, "gauge").sample(&[], bool_value(success));
        Family::new(&mut out, PROBE_DURATION_SECONDS, "gauge").sample(&[], seconds);
        out
    }

    /// The full `/metrics` text in one buffer: the snapshot's gauges, then [`Metrics::render_tail`].
    /// `/metrics` itself sends it in chunks ([`StateChunks`]); this is the same text.
    pub fn render(
        &self,
        state: &State,
        resolvers_up: &[(impl AsRef<str>, Option<bool>)],
    ) -> String {
        let mut out = String::with_capacity(4096 + state.records.len() * 1024);
        render_parts(
            STATE_PARTS,
            state,
            &mut Cursor::default(),
            &mut out,
            usize::MAX,
        );
        self.render_tail(&mut out, resolvers_up);
        out
    }

    /// The end of the `/metrics` text, after the state's part: `dkim_resolver_up` of the
    /// resolvers in use (`None`: not asked yet), then the process-lifetime metrics.
    pub fn render_tail(&self, out: &mut String, resolvers_up: &[(impl AsRef<str>, Option<bool>)]) {
        let mut family = Family::new(out, RESOLVER_UP, "gauge");
        for (resolver, up) in resolvers_up {
            if let Some(up) = up {
                family.sample(&[(label::RESOLVER, resolver.as_ref())], bool_value(*up));
            }
        }
        let mut buffer = Vec::new();
        match TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            Ok(()) => out.push_str(&String::from_utf8_lossy(&buffer)),
            Err(e) => tracing::error!(error = %e, "encoding registry metrics failed"),
        }
    }
}

/// The state's part of one `/metrics` scrape, rendered a chunk at a time.
///
/// Each chunk is rendered from a state borrowed for that chunk only, so the lock on the state is
/// held for one chunk, and check rounds write their results in between. A result that lands
/// between two chunks shows in the families not written yet and in the next scrape; every
/// series still appears once, because rounds never add, remove or reorder records or domains.
/// Only a reload does ([`State::reconcile`]): after one, resuming at the same position could
/// repeat or skip series, so a scrape that sees [`State::generation`] change stops with
/// [`ReloadedDuringScrape`] instead.
#[derive(Debug, Default)]
pub struct StateChunks {
    /// Where the previous chunk stopped.
    cursor: Cursor,
    /// The state's generation at the first chunk; `None` before it.
    generation: Option<u64>,
}

/// Whether the state's part of a scrape has been written whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More chunks follow.
    More,
    /// That was the last of the state; [`Metrics::render_tail`] comes next.
    Done,
}

/// The config was reloaded in the middle of a scrape, so the rest of it cannot be rendered
/// without repeating or skipping series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the config was reloaded during the scrape; the next scrape will be whole")]
pub struct ReloadedDuringScrape;

impl StateChunks {
    /// A scrape that has not started.
    pub fn new() -> StateChunks {
        StateChunks::default()
    }

    /// Appends the next samples of `state` to `out`, stopping once `out` holds `size` bytes or
    /// more. A chunk ends after a whole record or domain, so it passes `size` by at most one
    /// record's samples.
    pub fn write_next(
        &mut self,
        state: &State,
        out: &mut String,
        size: usize,
    ) -> Result<Progress, ReloadedDuringScrape> {
        let generation = *self.generation.get_or_insert(state.generation());
        if generation != state.generation() {
            return Err(ReloadedDuringScrape);
        }
        Ok(
            if render_parts(STATE_PARTS, state, &mut self.cursor, out, size) {
                Progress::Done
            } else {
                Progress::More
            },
        )
    }
}

/// A family rendered from the state, in the order of the text.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// `dkim_record_present`, per record and resolver.
    RecordPresent,
    /// `dkim_record_correct`, per record and resolver.
    RecordCorrect,
    /// `dkim_record_lookup_success`, per record and resolver.
    RecordLookupSuccess,
    /// `dkim_record_ttl_seconds`, per record and resolver.
    RecordTtl,
    /// `dkim_record_info`, per record and resolver.
    RecordInfo,
    /// `dkim_record_propagation_ratio`, per record.
    PropagationRatio,
    /// `dkim_record_resolvers_agree`, per record.
    ResolversAgree,
    /// `dkim_key_bits`, per record.
    KeyBits,
    /// `dkim_record_problem`, per record and problem.
    RecordProblem,
    /// `dkim_domain_healthy`, per domain.
    DomainHealthy,
    /// `dkim_domain_last_check_timestamp_seconds`, per domain.
    DomainLastCheck,
    /// `dkim_check_rounds_total`.
    CheckRounds,
    /// `dkim_check_round_duration_seconds`.
    CheckRoundDuration,
    /// `dkim_exporter_records`.
    ExporterRecords,
}

/// Every family `/metrics` renders from the state, in order.
const STATE_PARTS: &[Part] = &[
    Part::RecordPresent,
    Part::RecordCorrect,
    Part::RecordLookupSuccess,
    Part::RecordTtl,
    Part::RecordInfo,
    Part::PropagationRatio,
    Part::ResolversAgree,
    Part::KeyBits,
    Part::RecordProblem,
    Part::DomainHealthy,
    Part::DomainLastCheck,
    Part::CheckRounds,
    Part::CheckRoundDuration,
    Part::ExporterRecords,
];

/// The per-record and per-domain verdicts that `/metrics` starts with: all `/probe` shows of
/// the state.
const RECORD_PARTS: &[Part] = STATE_PARTS.split_at(10).0;

impl Part {
    /// The family's metric and type.
    fn family(self) -> (Metric, &'static str) {
        match self {
            Part::RecordPresent => (RECORD_PRESENT, "gauge"),
            Part::RecordCorrect => (RECORD_CORRECT, "gauge"),
            Part::RecordLookupSuccess => (RECORD_LOOKUP_SUCCESS, "gauge"),
            Part::RecordTtl => (RECORD_TTL_SECONDS, "gauge"),
            Part::RecordInfo => (RECORD_INFO, "gauge"),
            Part::PropagationRatio => (RECORD_PROPAGATION_RATIO, "gauge"),
            Part::ResolversAgree => (RECORD_RESOLVERS_AGREE, "gauge"),
            Part::KeyBits => (KEY_BITS, "gauge"),
            Part::RecordProblem => (RECORD_PROBLEM, "gauge"),
            Part::DomainHealthy => (DOMAIN_HEALTHY, "gauge"),
            Part::DomainLastCheck => (DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS, "gauge"),
            Part::CheckRounds => (CHECK_ROUNDS_TOTAL, "counter"),
            Part::CheckRoundDuration => (CHECK_ROUND_DURATION_SECONDS, "gauge"),
            Part::ExporterRecords => (EXPORTER_RECORDS, "gauge"),
        }
    }

    /// How many items (records or domains) the family's samples come from.
    fn items(self, state: &State) -> usize {
        match self {
            Part::DomainHealthy | Part::DomainLastCheck => state.domains.len(),
            Part::CheckRounds | Part::CheckRoundDuration | Part::ExporterRecords => 1,
            _ => state.records.len(),
        }
    }

    /// Writes the samples of item `i`.
    fn write(self, family: &mut Family<'_>, state: &State, i: usize) {
        use label::{DOMAIN, PROBLEM, RECORD_TYPE, RESOLVER, SELECTOR, VALUE};
        let resolvers = &state.resolvers;
        let per_view = |family: &mut Family<'_>, value_of: fn(&View) -> Option<f64>| {
            let record = &state.records[i];
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
        };
        let per_record = |family: &mut Family<'_>, value: Option<f64>| {
            let record = &state.records[i];
            if let Some(value) = value {
                family.sample(
                    &[(DOMAIN, &record.domain), (SELECTOR, &record.selector)],
                    value,
                );
            }
        };
        match self {
            Part::RecordPresent => {
                per_view(family, |v| v.known.as_ref().map(|o| bool_value(o.present)))
            }
            Part::RecordCorrect => {
                per_view(family, |v| v.known.as_ref().map(|o| bool_value(o.correct)))
            }
            Part::RecordLookupSuccess => per_view(family, |v| v.latest_ok.map(bool_value)),
            Part::RecordTtl => per_view(family, |v| {
                v.known.as_ref().and_then(|o| o.ttl).map(f64::from)
            }),
            Part::RecordInfo => {
                let record = &state.records[i];
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
            Part::PropagationRatio => per_record(family, state.records[i].propagation_ratio()),
            Part::ResolversAgree => per_record(
                family,
                state.records[i].resolvers_agree(resolvers).map(bool_value),
            ),
            Part::KeyBits => {
                per_record(family, state.records[i].key_bits(resolvers).map(f64::from))
            }
            Part::RecordProblem => {
                let record = &state.records[i];
                let mut problems: Vec<&str> =
                    record.findings.iter().map(|f| f.problem.as_str()).collect();
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
            Part::DomainHealthy => {
                let domain = &state.domains[i];
                // Reconcile keeps a domain's records together, so this is the domain's records
                // alone, not a search through every record for each domain.
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
            Part::DomainLastCheck => {
                let domain = &state.domains[i];
                if let Some(at) = domain.last_check {
                    family.sample(&[(DOMAIN, &domain.name)], at);
                }
            }
            Part::CheckRounds => family.sample(&[], state.rounds.completed as f64),
            Part::CheckRoundDuration => {
                if let Some(seconds) = state.rounds.last_duration {
                    family.sample(&[], seconds);
                }
            }
            Part::ExporterRecords => family.sample(&[], state.records.len() as f64),
        }
    }
}

/// Where a rendering of the state has got to.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    /// The family being written: an index into the parts rendered.
    part: usize,
    /// The next item (record or domain) of that family.
    item: usize,
    /// Whether the family's header has been written.
    started: bool,
}

/// Writes `parts` of `state` from `cursor` on, and stops after the item that brings `out` to
/// `size` bytes or more. Returns whether every part has been written.
fn render_parts(
    parts: &[Part],
    state: &State,
    cursor: &mut Cursor,
    out: &mut String,
    size: usize,
) -> bool {
    while let Some(&part) = parts.get(cursor.part) {
        let (metric, kind) = part.family();
        let items = part.items(state);
        let mut family = Family {
            out: &mut *out,
            metric,
            kind,
            started: cursor.started,
        };
        while cursor.item < items {
            part.write(&mut family, state, cursor.item);
            cursor.item += 1;
            if family.out.len() >= size {
                cursor.started = family.started;
                return false;
            }
        }
        *cursor = Cursor {
            part: cursor.part + 1,
            item: 0,
            started: false,
        };
    }
    true
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, DomainConfig, Protocol, RecordConfig, ResolverConfig};
    use crate::dkim::{DkimKey, KeyError, KeyType};
    use crate::evidence::{Extra, FailureReason, FollowUp, Found, KeyLookup, Observation};
    use crate::provider::Expected;

    /// The text as it was rendered before it was streamed, kept to prove the streamed text is
    /// the same to the byte: one buffer, `Display` for every value, escaping char by char, and
    /// every record searched for every domain.
    mod reference {
        use std::fmt::Write as _;

        use super::super::{
            CHECK_ROUND_DURATION_SECONDS, CHECK_ROUNDS_TOTAL, DOMAIN_HEALTHY,
            DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS, EXPORTER_RECORDS, KEY_BITS,
            PROBE_DURATION_SECONDS, PROBE_SUCCESS, RECORD_CORRECT, RECORD_INFO,
            RECORD_LOOKUP_SUCCESS, RECORD_PRESENT, RECORD_PROBLEM, RECORD_PROPAGATION_RATIO,
            RECORD_RESOLVERS_AGREE, RECORD_TTL_SECONDS, RESOLVER_UP,
        };
        use super::super::{Metric, label};
        use crate::state::{RecordState, ResolverState, State, View};

        pub fn metrics(state: &State, resolvers_up: &[(&str, Option<bool>)]) -> String {
            let mut out = String::new();
            render_state(&mut out, state);
            let mut family = Family::new(&mut out, RESOLVER_UP, "gauge");
            for (resolver, up) in resolvers_up {
                if let Some(up) = up {
                    family.sample(&[(label::RESOLVER, resolver)], bool_value(*up));
                }
            }
            out
        }

        pub fn probe(state: &State, success: bool, seconds: f64) -> String {
            let mut out = String::new();
            render_records(&mut out, state);
            Family::new(&mut out, PROBE_SUCCESS, "gauge").sample(&[], bool_value(success));
            Family::new(&mut out, PROBE_DURATION_SECONDS, "gauge").sample(&[], seconds);
            out
        }

        pub struct Family<'a> {
            out: &'a mut String,
            metric: Metric,
            kind: &'static str,
            started: bool,
        }

        impl<'a> Family<'a> {
            pub fn new(out: &'a mut String, metric: Metric, kind: &'static str) -> Self {
                Family {
                    out,
                    metric,
                    kind,
                    started: false,
                }
            }

            pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
                if !self.started {
                    self.started = true;
                    let _ = writeln!(self.out, "# HELP {} {}", self.metric.name, self.metric.help);
                    let _ = writeln!(self.out, "# TYPE {} {}", self.metric.name, self.kind);
                }
                self.out.push_str(self.metric.name);
                if !labels.is_empty() {
                    self.out.push('{');
                    for (i, (name, value)) in labels.iter().enumerate() {
                        if i > 0 {
                            self.out.push(',');
                        }
                        self.out.push_str(name);
                        self.out.push_str("=\"");
                        escape_label_value(self.out, value);
                        self.out.push('"');
                    }
                    self.out.push('}');
                }
                let _ = writeln!(self.out, " {value}");
            }
        }

        fn escape_label_value(out: &mut String, value: &str) {
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
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
            Family::new(out, CHECK_ROUNDS_TOTAL, "counter")
                .sample(&[], state.rounds.completed as f64);
            if let Some(seconds) = state.rounds.last_duration {
                Family::new(out, CHECK_ROUND_DURATION_SECONDS, "gauge").sample(&[], seconds);
            }
            Family::new(out, EXPORTER_RECORDS, "gauge").sample(&[], state.records.len() as f64);
        }

        fn render_records(out: &mut String, state: &State) {
            use label::{DOMAIN, PROBLEM, RECORD_TYPE, RESOLVER, SELECTOR, VALUE};
            let resolvers = &state.resolvers;

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
                let mut problems: Vec<&str> =
                    record.findings.iter().map(|f| f.problem.as_str()).collect();
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

            let mut family = Family::new(out, DOMAIN_HEALTHY, "gauge");
            for domain in &state.domains {
                let mut verdicts = state
                    .records
                    .iter()
                    .filter(|r| r.domain == domain.name)
                    .filter_map(|r| r.healthy(resolvers))
                    .peekable();
                if verdicts.peek().is_some() {
                    let healthy = verdicts.all(|h| h);
                    family.sample(&[(DOMAIN, &domain.name)], bool_value(healthy));
                }
            }
        }
    }

    /// Resolver names, some needing escapes; the config does not allow them, the text must
    /// still be right.
    const RESOLVERS: [&str; 5] = ["google", "cloud\"flare", "quad\\9", "open\ndns", "ünïcode"];

    /// A config of `domains` domains with 1 to 4 records each, a few names needing escapes.
    fn varied_config(domains: usize, resolvers: &[&str]) -> Config {
        Config {
            interval: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            authoritative: true,
            resolvers: resolvers
                .iter()
                .map(|name| ResolverConfig {
                    name: name.to_string(),
                    address: SocketAddr::from(([127, 0, 0, 1], 53)),
                    protocol: Protocol::Udp,
                    max_queries_per_second: 0,
                    tls: None,
                })
                .collect(),
            domains: (0..domains)
                .map(|i| DomainConfig {
                    domain: match i % 97 {
                        13 => format!("quote\"{i}.example"),
                        14 => format!("back\\slash{i}.example"),
                        15 => format!("new\nline{i}.example"),
                        16 => format!("ünï{i}.example"),
                        _ => format!("d{i:05}.example"),
                    },
                    records: (0..1 + i % 4)
                        .map(|s| RecordConfig {
                            selector: if i % 89 == 7 {
                                format!("s\"{s}\\x\ny")
                            } else {
                                format!("s{s}")
                            },
                            expected: if (i + s) % 5 == 4 {
                                Expected::Txt
                            } else {
                                Expected::Cname(format!("s{s}-{i}.dkim.amazonses.com"))
                            },
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn observation(found: Found, correct: bool, ttl: u32) -> Observation {
        Observation {
            present: !matches!(found, Found::None | Found::A(_)),
            nxdomain: found == Found::None,
            found,
            correct,
            ttl: Some(ttl),
            key: None,
        }
    }

    /// A state in which every kind of verdict, problem and value occurs: correct, partly
    /// propagated, wrong, missing, failing and never checked records, `auth:` views, keys of
    /// several sizes and odd label values.
    fn varied_state(domains: usize) -> State {
        let config = varied_config(domains, &RESOLVERS);
        let mut state = State::default();
        state.reconcile(&config, &crate::targets::file::targets(&config));
        let ttls = [300, 0, 86_400, u32::MAX, 3_600];
        for (i, domain) in config.domains.iter().enumerate() {
            for (s, record) in domain.records.iter().enumerate() {
                let name = crate::targets::record_name(&record.selector, &domain.domain);
                let ttl = ttls[(i + s) % ttls.len()];
                let (good, bad) = match &record.expected {
                    Expected::Cname(target) => (
                        Found::Cname(target.clone()),
                        Found::Cname(format!("{target}.typo\"\\")),
                    ),
                    Expected::Txt => (
                        Found::Txt("sha256:0123456789abcdef".into()),
                        Found::Txt("sha256:fedcba9876543210".into()),
                    ),
                };
                let mut good = observation(good, true, ttl);
                if record.expected == Expected::Txt {
                    good.key = Some(if i % 3 == 0 {
                        Err(KeyError::Revoked)
                    } else {
                        Ok(DkimKey {
                            key_type: KeyType::Rsa,
                            bits: 1024,
                        })
                    });
                }
                let bad = observation(bad, false, ttl);
                let none = observation(Found::None, false, 60);
                let mut follow_up = FollowUp {
                    key: Some(KeyLookup::Found(Ok(DkimKey {
                        key_type: KeyType::Rsa,
                        bits: 2048,
                    }))),
                    ..FollowUp::default()
                };
                for (r, resolver) in RESOLVERS.iter().enumerate() {
                    let outcome = match (i * 7 + s) % 8 {
                        // Correct everywhere.
                        0 => Ok(good.clone()),
                        // Not propagated: one resolver has nothing.
                        1 if r == 0 => Ok(none.clone()),
                        1 => Ok(good.clone()),
                        // Wrong everywhere.
                        2 => Ok(bad.clone()),
                        // Missing: an empty answer, and addresses at the name.
                        3 => Ok(Observation {
                            nxdomain: false,
                            ..none.clone()
                        }),
                        // Answered, then some lookups failed: a ratio of thirds.
                        4 => {
                            let first = if r == 3 { bad.clone() } else { good.clone() };
                            state.apply(&name, resolver, Ok(first));
                            if r < 2 {
                                Err(FailureReason::Timeout)
                            } else {
                                continue;
                            }
                        }
                        // Never answered.
                        5 => Err(FailureReason::ALL[r % FailureReason::ALL.len()]),
                        // Never checked.
                        6 => continue,
                        // Correct, with `auth:` views and a weak key at the end.
                        _ => Ok(good.clone()),
                    };
                    state.apply(&name, resolver, outcome);
                }
                match (i * 7 + s) % 8 {
                    3 => {
                        follow_up.extra = Some(Extra {
                            addresses: vec![
                                IpAddr::from([52, 94, 236, 248]),
                                "2600:1f18::1".parse().unwrap(),
                            ],
                            ..Extra::default()
                        });
                        follow_up.key = None;
                    }
                    7 => {
                        follow_up.auth = Some(vec![
                            ("auth:ns1.\"odd\"\\.example".into(), Ok(good.clone())),
                            ("auth:ns2.example".into(), Err(FailureReason::Refused)),
                            ("auth:ns3.example".into(), Ok(bad.clone())),
                        ]);
                        follow_up.key = Some(KeyLookup::Found(Ok(DkimKey {
                            key_type: KeyType::Rsa,
                            bits: 512,
                        })));
                    }
                    _ => {}
                }
                state.apply_follow_up(&name, follow_up);
            }
            match i % 3 {
                0 => state.domain_checked(&domain.domain, 1_732_400_000.123 + i as f64 / 7.0),
                1 => state.domain_checked(&domain.domain, 1_732_400_000.0),
                _ => {}
            }
        }
        state.rounds.completed = 1 << 60;
        state.rounds.last_duration = Some(0.1 + 0.2);
        state
    }

    const RESOLVERS_UP: [(&str, Option<bool>); 4] = [
        ("google", Some(true)),
        ("cloud\"flare", Some(false)),
        ("never", None),
        ("auth:ns2.example", Some(true)),
    ];

    /// The state's part rendered a chunk at a time, each chunk checked against `size`.
    fn chunked(state: &State, size: usize) -> String {
        let mut chunks = StateChunks::new();
        let mut text = String::new();
        loop {
            let mut chunk = String::new();
            let progress = chunks.write_next(state, &mut chunk, size).unwrap();
            text.push_str(&chunk);
            if progress == Progress::Done {
                return text;
            }
            // Full, and over by no more than one record's samples.
            assert!(chunk.len() >= size, "{size}: {}", chunk.len());
            assert!(chunk.len() < size + 4096, "{size}: {}", chunk.len());
        }
    }

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
            let (mut fast, mut slow) = (String::new(), String::new());
            Family::new(&mut fast, RECORD_INFO, "gauge").sample(&[("value", value)], 1.0);
            reference::Family::new(&mut slow, RECORD_INFO, "gauge")
                .sample(&[("value", value)], 1.0);
            assert_eq!(fast, slow, "{value:?}");
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
    fn chunks_make_the_same_text_as_one_buffer_did() {
        let state = varied_state(1600);
        assert!(state.records.len() > 3500, "{}", state.records.len());
        let expected = reference::metrics(&state, &RESOLVERS_UP);
        // The state holds every case the text has to get right.
        for needle in [
            "resolver=\"cloud\\\"flare\"",
            "resolver=\"quad\\\\9\"",
            "resolver=\"open\\ndns\"",
            "resolver=\"auth:ns1.\\\"odd\\\"\\\\.example\"",
            "selector=\"s\\\"0\\\\x\\ny\"",
            "domain=\"ünï16.example\"",
            "dkim_record_propagation_ratio{domain=\"d00004.example\",selector=\"s0\"} 0.6666666666666666\n",
            "dkim_record_ttl_seconds{domain=\"d00001.example\",selector=\"s0\",resolver=\"google\"} 0\n",
            " 4294967295\n",
            "dkim_check_rounds_total 1152921504606847000\n",
            "dkim_check_round_duration_seconds 0.30000000000000004\n",
            "dkim_key_bits{",
            "problem=\"key_weak\"",
            "problem=\"a_record\"",
            "record_type=\"a\",value=\"52.94.236.248,2600:1f18::1\"",
            "dkim_domain_healthy{domain=\"d00000.example\"} 1\n",
            "dkim_domain_healthy{domain=\"d00001.example\"} 0\n",
            "dkim_domain_last_check_timestamp_seconds{domain=\"d00000.example\"} 1732400000.123\n",
            "dkim_domain_last_check_timestamp_seconds{domain=\"d00001.example\"} 1732400000\n",
        ] {
            assert!(expected.contains(needle), "{needle}");
        }

        let resolvers_up = |text: &mut String| {
            let mut family = Family::new(text, RESOLVER_UP, "gauge");
            for (resolver, up) in RESOLVERS_UP {
                if let Some(up) = up {
                    family.sample(&[(label::RESOLVER, resolver)], bool_value(up));
                }
            }
        };
        for size in [1, 100, 4096, 256 * 1024, usize::MAX] {
            let mut text = chunked(&state, size);
            resolvers_up(&mut text);
            // Compared line by line first, so a failure names the first line that differs.
            for (n, (got, want)) in text.lines().zip(expected.lines()).enumerate() {
                assert_eq!(got, want, "chunk size {size}, line {}", n + 1);
            }
            assert!(text == expected, "chunk size {size}");
        }

        // The one-buffer render is the same text, then the registry.
        let metrics = Metrics::new().unwrap();
        let whole = metrics.render(&state, &RESOLVERS_UP);
        let registry = whole
            .strip_prefix(&expected)
            .expect("starts with the state");
        assert!(registry.starts_with("# HELP dkim_"), "{registry}");
        assert!(registry.contains("dkim_exporter_build_info{"), "{registry}");
    }

    #[test]
    fn probe_text_is_unchanged() {
        let state = varied_state(200);
        for (success, seconds) in [(true, 0.25), (false, 1.0 / 3.0), (false, 10.0)] {
            assert_eq!(
                Metrics::render_probe(&state, success, seconds),
                reference::probe(&state, success, seconds)
            );
        }
        assert_eq!(
            Metrics::render_probe(&State::default(), true, 0.5),
            reference::probe(&State::default(), true, 0.5)
        );
    }

    #[test]
    fn a_reload_between_chunks_stops_the_scrape() {
        let mut state = varied_state(50);
        let mut chunks = StateChunks::new();
        let mut text = String::new();
        assert_eq!(
            chunks.write_next(&state, &mut text, 1000),
            Ok(Progress::More)
        );
        let config = varied_config(49, &RESOLVERS);
        state.reconcile(&config, &crate::targets::file::targets(&config));
        assert_eq!(
            chunks.write_next(&state, &mut text, 1000),
            Err(ReloadedDuringScrape)
        );
        // A reload before the first chunk is no problem.
        let mut chunks = StateChunks::new();
        let config = varied_config(50, &RESOLVERS);
        state.reconcile(&config, &crate::targets::file::targets(&config));
        assert_eq!(
            chunks.write_next(&state, &mut String::new(), usize::MAX),
            Ok(Progress::Done)
        );
    }

    #[test]
    fn rounds_writing_between_chunks_do_not_stop_the_scrape() {
        let mut state = varied_state(100);
        let mut chunks = StateChunks::new();
        let mut text = String::new();
        let mut round = 0;
        while chunks.write_next(&state, &mut text, 500) == Ok(Progress::More) {
            // What a round writes: results, follow-ups, domains checked, rounds completed.
            round += 1;
            let record = &state.records[round % state.records.len()];
            let name = crate::targets::record_name(&record.selector, &record.domain);
            let domain = record.domain.clone();
            let found = Found::Cname(format!("round{round}.example"));
            state.apply(
                &name,
                RESOLVERS[round % 5],
                Ok(observation(found, false, 1)),
            );
            state.apply(
                &name,
                RESOLVERS[(round + 1) % 5],
                Err(FailureReason::Timeout),
            );
            let auth = vec![(
                format!("auth:ns{}.example", round % 4),
                Err(FailureReason::Network),
            )];
            let follow_up = FollowUp {
                auth: Some(auth),
                ..FollowUp::default()
            };
            state.apply_follow_up(&name, follow_up);
            state.domain_checked(&domain, round as f64);
            state.rounds.completed += 1;
        }
        assert!(round > 100, "{round}");
        // Whole, and no series twice.
        let mut series = HashSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, _) = line.rsplit_once(' ').unwrap();
            assert!(series.insert(name), "{name} twice");
        }
        assert!(text.ends_with(&format!("dkim_exporter_records {}\n", state.records.len())));
    }

    #[test]
    fn every_domain_verdict_reads_its_own_records() {
        let state = varied_state(300);
        for domain in &state.domains {
            assert!(!domain.records.is_empty(), "{}", domain.name);
            for record in &state.records[domain.records.clone()] {
                assert_eq!(record.domain, domain.name);
            }
        }
        let in_domains: usize = state.domains.iter().map(|d| d.records.len()).sum();
        assert_eq!(in_domains, state.records.len());
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
