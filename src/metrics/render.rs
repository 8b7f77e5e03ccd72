//! The `/metrics` and `/probe` text of a [`State`]: the families the exporter renders itself,
//! a chunk at a time, then `dkim_resolver_up` and the registry.
//!
//! At ten thousand domains the text runs to tens of megabytes, so `/metrics` renders it a chunk
//! at a time with [`StateChunks`]: memory holds one chunk rather than the whole text, and check
//! rounds write their results between chunks instead of waiting for the whole scrape.

use super::text::{Family, bool_value};
use super::{
    CHECK_ROUND_DURATION_SECONDS, CHECK_ROUNDS_TOTAL, DOMAIN_HEALTHY,
    DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS, EXPORTER_RECORDS, KEY_FIRST_SEEN_TIMESTAMP_SECONDS,
    KEY_INFO, KEY_LENGTH, Metric, Metrics, PROBE_DURATION_SECONDS, PROBE_SUCCESS, PROBE_TIMED_OUT,
    RECORD_CORRECT, RECORD_INFO, RECORD_LOOKUP_SUCCESS, RECORD_PRESENT, RECORD_PROBLEM,
    RECORD_PROPAGATION_RATIO, RECORD_RESOLVERS_AGREE, RECORD_SIGNATURE_EXPIRY_TIMESTAMP_SECONDS,
    RECORD_TTL_SECONDS, RESOLVER_UP, SES_DISCOVERY_LAST_SUCCESS_TIMESTAMP_SECONDS,
    SES_DISCOVERY_SUCCESS, SES_IDENTITIES, SES_IDENTITY_DKIM_STATUS,
    SES_IDENTITY_LAST_KEY_GENERATION_TIMESTAMP_SECONDS, SES_IDENTITY_PROBLEM,
    SES_IDENTITY_SIGNING_ENABLED, SES_IDENTITY_SIGNING_KEY_LENGTH, Scope,
};
use crate::config::Detail;
use crate::records::shard::Shard;
use crate::ses::{Discovered, DkimStatus};
use crate::state::{State, View, unix_now};

impl Metrics {
    /// The `/probe` text: the probed records' gauges, then whether the probe succeeded, how
    /// long it took, and whether its budget ran out. A probe is one domain: it always has the
    /// per-resolver series, whatever `metrics.detail` says of `/metrics`.
    pub fn render_probe(state: &State, success: bool, seconds: f64, timed_out: bool) -> String {
        let mut out = String::with_capacity(2048 + state.records().len() * 1024);
        render_parts(
            RECORD_PARTS,
            state,
            &mut Cursor::default(),
            &mut out,
            usize::MAX,
        );
        Family::new(&mut out, PROBE_SUCCESS).sample(&[], bool_value(success));
        Family::new(&mut out, PROBE_DURATION_SECONDS).sample(&[], seconds);
        Family::new(&mut out, PROBE_TIMED_OUT).sample(&[], bool_value(timed_out));
        out
    }

    /// The full `/metrics` text in one buffer: the snapshot's gauges, then [`Metrics::render_tail`].
    /// `/metrics` itself sends it in chunks ([`StateChunks`]); this is the same text.
    pub fn render(
        &self,
        state: &State,
        resolvers_up: &[(impl AsRef<str>, Option<bool>)],
    ) -> String {
        let mut out = String::with_capacity(4096 + state.records().len() * 1024);
        render_parts(
            state_parts(state),
            state,
            &mut Cursor::default(),
            &mut out,
            usize::MAX,
        );
        self.render_tail(&mut out, resolvers_up);
        out
    }

    /// The `dkim_ses_*` series of what each source discovered, its identities' SES problems
    /// judged against the records in `state`, at unix time `now`. Each replica lists every
    /// identity, but has the identity series of its `shard`'s domains alone, as it has their
    /// records: an alert per identity then fires once, not once per replica.
    pub fn render_ses(
        out: &mut String,
        discovered: &[Discovered],
        state: &State,
        now: f64,
        shard: Shard,
    ) {
        let sources = || discovered.iter().map(|d| (d, d.source.name.as_str()));
        let mut family = Family::new(out, SES_DISCOVERY_SUCCESS);
        for (d, source) in sources() {
            if let Some(success) = d.success {
                family.sample(&[source], bool_value(success));
            }
        }
        let mut family = Family::new(out, SES_DISCOVERY_LAST_SUCCESS_TIMESTAMP_SECONDS);
        for (d, source) in sources() {
            if let Some(at) = d.last_success {
                family.sample(&[source], at);
            }
        }
        let mut family = Family::new(out, SES_IDENTITIES);
        for (d, source) in sources() {
            if d.last_success.is_some() {
                family.sample(&[source], d.identities.len() as f64);
            }
        }
        let identities = || {
            discovered.iter().flat_map(|d| {
                d.identities
                    .iter()
                    .filter(|i| shard.owns(&i.domain))
                    .map(move |i| {
                        (
                            d,
                            [
                                d.source.name.as_str(),
                                d.source.region.as_str(),
                                i.domain.as_str(),
                            ],
                            i,
                        )
                    })
            })
        };
        let mut family = Family::new(out, SES_IDENTITY_DKIM_STATUS);
        for (_, [source, region, domain], identity) in identities() {
            if identity.status.is_none() {
                continue;
            }
            for status in DkimStatus::ALL {
                family.sample(
                    &[source, region, domain, status.as_str()],
                    bool_value(identity.status == Some(status)),
                );
            }
        }
        let mut family = Family::new(out, SES_IDENTITY_SIGNING_ENABLED);
        for (_, labels, identity) in identities() {
            family.sample(&labels, bool_value(identity.signing_enabled));
        }
        let mut family = Family::new(out, SES_IDENTITY_SIGNING_KEY_LENGTH);
        for (_, labels, identity) in identities() {
            if let Some(bits) = identity.key_length {
                family.sample(&labels, f64::from(bits));
            }
        }
        let mut family = Family::new(out, SES_IDENTITY_LAST_KEY_GENERATION_TIMESTAMP_SECONDS);
        for (_, labels, identity) in identities() {
            if let Some(at) = identity.last_key_generation {
                family.sample(&labels, at);
            }
        }
        let mut family = Family::new(out, SES_IDENTITY_PROBLEM);
        for (d, [source, region, domain], identity) in identities() {
            for finding in crate::ses::problem::findings(state, d, identity, now) {
                family.sample(&[source, region, domain, finding.problem.as_str()], 1.0);
            }
        }
    }

    /// The end of the `/metrics` text, after the state's part: `dkim_resolver_up` of the
    /// resolvers in use (`None`: not asked yet), then the process-lifetime metrics.
    pub fn render_tail(&self, out: &mut String, resolvers_up: &[(impl AsRef<str>, Option<bool>)]) {
        let mut family = Family::new(out, RESOLVER_UP);
        for (resolver, up) in resolvers_up {
            if let Some(up) = up {
                family.sample(&[resolver.as_ref()], bool_value(*up));
            }
        }
        self.encode_registry(out);
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
            if render_parts(state_parts(state), state, &mut self.cursor, out, size) {
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
    /// `dkim_key_length`, per record.
    KeyLength,
    /// `dkim_key_info`, per record.
    KeyInfo,
    /// `dkim_key_first_seen_timestamp_seconds`, per record.
    KeyFirstSeen,
    /// `dkim_record_signature_expiry_timestamp_seconds`, per record.
    SignatureExpiry,
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
    Part::KeyLength,
    Part::KeyInfo,
    Part::KeyFirstSeen,
    Part::SignatureExpiry,
    Part::RecordProblem,
    Part::DomainHealthy,
    Part::DomainLastCheck,
    Part::CheckRounds,
    Part::CheckRoundDuration,
    Part::ExporterRecords,
];

/// The per-record and per-domain verdicts that `/metrics` starts with: all `/probe` shows of
/// the state.
const RECORD_PARTS: &[Part] = STATE_PARTS.split_at(13).0;

/// What `/metrics` renders from the state with `metrics.detail: summary`: all but the five
/// per-resolver record families, the contract's "(full)" ones.
const SUMMARY_PARTS: &[Part] = STATE_PARTS.split_at(5).1;

/// The families `/metrics` renders from `state`, as its `metrics.detail` says.
fn state_parts(state: &State) -> &'static [Part] {
    match state.detail() {
        Detail::Full => STATE_PARTS,
        Detail::Summary => SUMMARY_PARTS,
    }
}

impl Part {
    /// The family's description.
    fn metric(self) -> Metric {
        match self {
            Part::RecordPresent => RECORD_PRESENT,
            Part::RecordCorrect => RECORD_CORRECT,
            Part::RecordLookupSuccess => RECORD_LOOKUP_SUCCESS,
            Part::RecordTtl => RECORD_TTL_SECONDS,
            Part::RecordInfo => RECORD_INFO,
            Part::PropagationRatio => RECORD_PROPAGATION_RATIO,
            Part::ResolversAgree => RECORD_RESOLVERS_AGREE,
            Part::KeyLength => KEY_LENGTH,
            Part::KeyInfo => KEY_INFO,
            Part::KeyFirstSeen => KEY_FIRST_SEEN_TIMESTAMP_SECONDS,
            Part::SignatureExpiry => RECORD_SIGNATURE_EXPIRY_TIMESTAMP_SECONDS,
            Part::RecordProblem => RECORD_PROBLEM,
            Part::DomainHealthy => DOMAIN_HEALTHY,
            Part::DomainLastCheck => DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS,
            Part::CheckRounds => CHECK_ROUNDS_TOTAL,
            Part::CheckRoundDuration => CHECK_ROUND_DURATION_SECONDS,
            Part::ExporterRecords => EXPORTER_RECORDS,
        }
    }

    /// How many items (records or domains) the family's samples come from.
    fn items(self, state: &State) -> usize {
        match self.metric().scope {
            Scope::RecordResolver | Scope::Record => state.records().len(),
            Scope::Domain => state.domains().len(),
            Scope::Resolver
            | Scope::Exporter
            | Scope::Probe
            | Scope::SesSource
            | Scope::SesIdentity
            | Scope::DmarcSource
            | Scope::DmarcDomain => 1,
        }
    }

    /// Writes the samples of item `i`.
    fn write(self, family: &mut Family<'_>, state: &State, i: usize) {
        let resolvers = state.resolvers();
        let per_view = |family: &mut Family<'_>, value_of: fn(&View) -> Option<f64>| {
            let record = &state.records()[i];
            for (resolver, view) in record.all_views(resolvers) {
                if let Some(value) = value_of(view) {
                    family.sample(&[&record.domain, &record.selector, resolver], value);
                }
            }
        };
        let per_record = |family: &mut Family<'_>, value: Option<f64>| {
            let record = &state.records()[i];
            if let Some(value) = value {
                family.sample(&[&record.domain, &record.selector], value);
            }
        };
        match self {
            Part::RecordPresent => {
                per_view(family, |v| v.known.as_ref().map(|o| bool_value(o.present)))
            }
            Part::RecordCorrect => {
                per_view(family, |v| v.known.as_ref().map(|o| bool_value(o.correct)))
            }
            Part::RecordLookupSuccess => per_view(family, |v| v.latest.ok().map(bool_value)),
            Part::RecordTtl => per_view(family, |v| {
                v.known.as_ref().and_then(|o| o.ttl).map(f64::from)
            }),
            Part::RecordInfo => {
                let record = &state.records()[i];
                for (resolver, view) in record.all_views(resolvers) {
                    if let Some(observation) = &view.known {
                        family.sample(
                            &[
                                &record.domain,
                                &record.selector,
                                resolver,
                                observation.found.record_type(),
                                observation.found.value(),
                            ],
                            1.0,
                        );
                    }
                }
            }
            Part::PropagationRatio => per_record(family, state.records()[i].propagation_ratio()),
            Part::ResolversAgree => per_record(
                family,
                state.records()[i]
                    .resolvers_agree(resolvers)
                    .map(bool_value),
            ),
            Part::KeyLength => per_record(family, state.records()[i].key_bits().map(f64::from)),
            Part::KeyInfo => {
                let record = &state.records()[i];
                if let Some(key) = record.key() {
                    let fingerprint = key.fingerprint.to_string();
                    family.sample(&[&record.domain, &record.selector, &fingerprint], 1.0);
                }
            }
            Part::KeyFirstSeen => {
                let record = &state.records()[i];
                let seen = record.key_seen.as_ref().filter(|seen| seen.current);
                per_record(family, seen.map(|seen| seen.first_seen));
            }
            Part::SignatureExpiry => {
                per_record(family, state.records()[i].signature_expiry(unix_now()))
            }
            Part::RecordProblem => {
                let record = &state.records()[i];
                let mut problems: Vec<&str> =
                    record.findings.iter().map(|f| f.problem.as_str()).collect();
                problems.sort_unstable();
                problems.dedup();
                for problem in problems {
                    family.sample(&[&record.domain, &record.selector, problem], 1.0);
                }
            }
            Part::DomainHealthy => {
                let domain = &state.domains()[i];
                // Reconcile keeps a domain's records together, so this is the domain's records
                // alone, not a search through every record for each domain.
                let records = state
                    .records()
                    .get(domain.records.clone())
                    .unwrap_or_default();
                let mut verdicts = records
                    .iter()
                    .filter_map(|r| r.healthy(resolvers))
                    .peekable();
                if verdicts.peek().is_some() {
                    let healthy = verdicts.all(|h| h);
                    family.sample(&[&domain.name], bool_value(healthy));
                }
            }
            Part::DomainLastCheck => {
                let domain = &state.domains()[i];
                if let Some(at) = domain.last_check {
                    family.sample(&[&domain.name], at);
                }
            }
            Part::CheckRounds => family.sample(&[], state.rounds().completed as f64),
            Part::CheckRoundDuration => {
                if let Some(seconds) = state.rounds().last_duration {
                    family.sample(&[], seconds);
                }
            }
            Part::ExporterRecords => family.sample(&[], state.records().len() as f64),
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
        let items = part.items(state);
        let mut family = Family::resume(&mut *out, part.metric(), cursor.started);
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
