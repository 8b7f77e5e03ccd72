//! Every metric the exporter serves, described once, and the `/metrics` and `/probe` text.
//!
//! Each family is one line of the table below: its name, type, which things its samples come
//! from, its labels, and its help (the doc comment). The tests import the same constants. The
//! counters kept over the process's life live in a `prometheus` registry ([`counters`]);
//! everything that describes the latest results is rendered from a [`State`] snapshot on each
//! scrape ([`render`]), so a record removed from the config cannot leave a stale series behind;
//! [`text`] writes the exposition format.
//!
//! [`State`]: crate::state::State

pub mod counters;
pub mod dmarc;
pub mod render;
pub mod text;

pub use counters::{Metrics, ResolverMetrics};
pub use render::{Progress, ReloadedDuringScrape, StateChunks};

/// A metric family: what `# HELP` and `# TYPE` say of it, and what its samples are about.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The exposed name.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The `# TYPE`.
    pub kind: Kind,
    /// What one sample stands for.
    pub scope: Scope,
    /// Label names, in the order samples carry them.
    pub labels: &'static [&'static str],
}

/// A family's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only goes up.
    Counter,
    /// A distribution in buckets.
    Histogram,
}

impl Kind {
    /// The `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }
}

/// What one sample of a family stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A record as one resolver (or `auth:` nameserver) answered it.
    RecordResolver,
    /// A record, over all resolvers.
    Record,
    /// A domain, over all its records.
    Domain,
    /// A resolver.
    Resolver,
    /// The exporter as a whole.
    Exporter,
    /// An `ses:` source.
    SesSource,
    /// A domain identity discovered from SES.
    SesIdentity,
    /// A `dmarc:` source.
    DmarcSource,
    /// What receivers reported about a domain.
    DmarcDomain,
    /// One `/probe` answer.
    Probe,
}

macro_rules! metrics {
    ($(#[doc = $help:literal] $id:ident = $name:literal, $kind:ident, $scope:ident, [$($label:ident),*];)*) => {
        $(#[doc = $help] pub const $id: Metric = Metric {
            name: $name,
            help: $help.trim_ascii(),
            kind: Kind::$kind,
            scope: Scope::$scope,
            labels: &[$(label::$label),*],
        };)*
        /// Every family, in the order of the table.
        pub const ALL: &[Metric] = &[$($id),*];
    };
}

metrics! {
    /// 1 when the record of the expected type is present, 0 when definitively absent.
    RECORD_PRESENT = "dkim_record_present", Gauge, RecordResolver, [DOMAIN, SELECTOR, RESOLVER];
    /// 1 when the record is present and holds the expected CNAME target or a usable DKIM key.
    RECORD_CORRECT = "dkim_record_correct", Gauge, RecordResolver, [DOMAIN, SELECTOR, RESOLVER];
    /// 1 when the latest lookup of the record got a definitive answer.
    RECORD_LOOKUP_SUCCESS = "dkim_record_lookup_success", Gauge, RecordResolver, [DOMAIN, SELECTOR, RESOLVER];
    /// TTL of the latest definitive answer, in seconds (negative-caching TTL when absent).
    RECORD_TTL_SECONDS = "dkim_record_ttl_seconds", Gauge, RecordResolver, [DOMAIN, SELECTOR, RESOLVER];
    /// What the resolver returned: record type and value (CNAME target, TXT hash). Always 1.
    RECORD_INFO = "dkim_record_info", Gauge, RecordResolver, [DOMAIN, SELECTOR, RESOLVER, RECORD_TYPE, VALUE];
    /// Share of answering configured resolvers on which the record is correct.
    RECORD_PROPAGATION_RATIO = "dkim_record_propagation_ratio", Gauge, Record, [DOMAIN, SELECTOR];
    /// 1 when all answering resolvers returned the same record type and value.
    RECORD_RESOLVERS_AGREE = "dkim_record_resolvers_agree", Gauge, Record, [DOMAIN, SELECTOR];
    /// 1 while the problem holds for the record.
    RECORD_PROBLEM = "dkim_record_problem", Gauge, Record, [DOMAIN, SELECTOR, PROBLEM];
    /// Length in bits of the public key the record leads to (RSA modulus; 256 for ed25519).
    KEY_LENGTH = "dkim_key_length", Gauge, Record, [DOMAIN, SELECTOR];
    /// The public key the record leads to: sha256: and the first 16 hex digits of the SHA-256 of the decoded key. Always 1.
    KEY_INFO = "dkim_key_info", Gauge, Record, [DOMAIN, SELECTOR, FINGERPRINT];
    /// Unix time at which this process first saw the record's current key: when it changed, or when the process started.
    KEY_FIRST_SEEN_TIMESTAMP_SECONDS = "dkim_key_first_seen_timestamp_seconds", Gauge, Record, [DOMAIN, SELECTOR];
    /// Unix time at which the earliest DNSSEC signature (RRSIG) over the record on its authoritative nameservers expires; absent for unsigned zones.
    RECORD_SIGNATURE_EXPIRY_TIMESTAMP_SECONDS = "dkim_record_signature_expiry_timestamp_seconds", Gauge, Record, [DOMAIN, SELECTOR];
    /// 1 when every record of the domain is correct on every answering resolver.
    DOMAIN_HEALTHY = "dkim_domain_healthy", Gauge, Domain, [DOMAIN];
    /// Unix time at which the latest check of every record of the domain ended.
    DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS = "dkim_domain_last_check_timestamp_seconds", Gauge, Domain, [DOMAIN];
    /// 1 when the resolver's latest query got a definitive answer.
    RESOLVER_UP = "dkim_resolver_up", Gauge, Resolver, [RESOLVER];
    /// DNS queries sent.
    DNS_QUERIES_TOTAL = "dkim_dns_queries_total", Counter, Resolver, [RESOLVER];
    /// Lookups that got no definitive answer, by reason.
    LOOKUP_ERRORS_TOTAL = "dkim_lookup_errors_total", Counter, Resolver, [RESOLVER, REASON];
    /// Round-trip time of DNS queries.
    LOOKUP_DURATION_SECONDS = "dkim_lookup_duration_seconds", Histogram, Resolver, [RESOLVER];
    /// Completed check rounds.
    CHECK_ROUNDS_TOTAL = "dkim_check_rounds_total", Counter, Exporter, [];
    /// Length of the latest completed check round, in seconds.
    CHECK_ROUND_DURATION_SECONDS = "dkim_check_round_duration_seconds", Gauge, Exporter, [];
    /// Records checked by this replica: the config file's and SES's, of its shard.
    EXPORTER_RECORDS = "dkim_exporter_records", Gauge, Exporter, [];
    /// The shortest round the resolvers' max_queries_per_second allow for this replica's records, in seconds (0: no limit).
    EXPORTER_SHORTEST_ROUND_SECONDS = "dkim_exporter_shortest_round_seconds", Gauge, Exporter, [];
    /// The configured interval between checks of a record, in seconds.
    EXPORTER_INTERVAL_SECONDS = "dkim_exporter_interval_seconds", Gauge, Exporter, [];
    /// Build information. Always 1.
    EXPORTER_BUILD_INFO = "dkim_exporter_build_info", Gauge, Exporter, [VERSION, REVISION, RUSTVERSION];
    /// 1 when the latest config load succeeded.
    CONFIG_LAST_RELOAD_SUCCESSFUL = "dkim_exporter_config_last_reload_successful", Gauge, Exporter, [];
    /// Unix time of the latest successful config load.
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS = "dkim_exporter_config_last_reload_success_timestamp_seconds", Gauge, Exporter, [];
    /// 1 when the latest listing of the source's SES identities succeeded.
    SES_DISCOVERY_SUCCESS = "dkim_ses_discovery_success", Gauge, SesSource, [SOURCE];
    /// Unix time of the end of the latest successful listing of the source's SES identities.
    SES_DISCOVERY_LAST_SUCCESS_TIMESTAMP_SECONDS = "dkim_ses_discovery_last_success_timestamp_seconds", Gauge, SesSource, [SOURCE];
    /// Domain identities discovered from the source.
    SES_IDENTITIES = "dkim_ses_identities", Gauge, SesSource, [SOURCE];
    /// 1 for SES's current DKIM status of the identity, 0 for the others.
    SES_IDENTITY_DKIM_STATUS = "dkim_ses_identity_dkim_status", Gauge, SesIdentity, [SOURCE, REGION, DOMAIN, STATUS];
    /// 1 when SES signs the identity's mail with its DKIM keys.
    SES_IDENTITY_SIGNING_ENABLED = "dkim_ses_identity_signing_enabled", Gauge, SesIdentity, [SOURCE, REGION, DOMAIN];
    /// SES's current signing key length for the identity, in bits.
    SES_IDENTITY_SIGNING_KEY_LENGTH = "dkim_ses_identity_signing_key_length", Gauge, SesIdentity, [SOURCE, REGION, DOMAIN];
    /// Unix time at which SES last generated the identity's DKIM key.
    SES_IDENTITY_LAST_KEY_GENERATION_TIMESTAMP_SECONDS = "dkim_ses_identity_last_key_generation_timestamp_seconds", Gauge, SesIdentity, [SOURCE, REGION, DOMAIN];
    /// 1 while the SES problem holds for the identity.
    SES_IDENTITY_PROBLEM = "dkim_ses_identity_problem", Gauge, SesIdentity, [SOURCE, REGION, DOMAIN, PROBLEM];
    /// Messages receivers reported for the domain (header From) in the window, by DMARC-evaluated DKIM and SPF result.
    DMARC_MESSAGES = "dkim_dmarc_messages", Gauge, DmarcDomain, [DOMAIN, DKIM, SPF];
    /// DKIM signatures with d= the domain that receivers reported in the window, by selector and result.
    DMARC_SIGNATURES = "dkim_dmarc_signatures", Gauge, DmarcDomain, [DOMAIN, SELECTOR, RESULT];
    /// Distinct DMARC aggregate reports from the source in the window.
    DMARC_REPORTS = "dkim_dmarc_reports", Gauge, DmarcSource, [SOURCE];
    /// 1 when the latest read of the DMARC source succeeded.
    DMARC_SOURCE_UP = "dkim_dmarc_source_up", Gauge, DmarcSource, [SOURCE];
    /// Unix time of the end of the latest successful read of the DMARC source.
    DMARC_SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS = "dkim_dmarc_source_last_success_timestamp_seconds", Gauge, DmarcSource, [SOURCE];
    /// Items of the DMARC source not read as reports, by reason.
    DMARC_REPORT_ERRORS_TOTAL = "dkim_dmarc_report_errors_total", Counter, DmarcSource, [SOURCE, REASON];
    /// Unix time of the end of the newest reported period about the domain.
    DMARC_LAST_REPORT_TIMESTAMP_SECONDS = "dkim_dmarc_last_report_timestamp_seconds", Gauge, DmarcDomain, [DOMAIN];
    /// 1 when every record of the probed domain is correct with no problem.
    PROBE_SUCCESS = "dkim_probe_success", Gauge, Probe, [];
    /// How long the probe took, in seconds.
    PROBE_DURATION_SECONDS = "dkim_probe_duration_seconds", Gauge, Probe, [];
    /// 1 when the probe's time budget (the scrape timeout) ran out before every lookup ended.
    PROBE_TIMED_OUT = "dkim_probe_timed_out", Gauge, Probe, [];
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
    /// The exporter's version.
    pub const VERSION: &str = "version";
    /// The git revision it was built from.
    pub const REVISION: &str = "revision";
    /// The Rust compiler that built it.
    pub const RUSTVERSION: &str = "rustversion";
    /// The `ses:` source (its `name`).
    pub const SOURCE: &str = "source";
    /// The SES region of the source.
    pub const REGION: &str = "region";
    /// SES's DKIM status.
    pub const STATUS: &str = "status";
    /// The DMARC-evaluated DKIM result of messages.
    pub const DKIM: &str = "dkim";
    /// The DMARC-evaluated SPF result of messages.
    pub const SPF: &str = "spf";
    /// A receiver's DKIM result of signatures.
    pub const RESULT: &str = "result";
    /// A public key's fingerprint.
    pub const FINGERPRINT: &str = "fingerprint";
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
    fn names_are_unique_and_counters_end_in_total() {
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for metric in ALL {
            assert!(metric.name.starts_with("dkim_"), "{}", metric.name);
            assert_eq!(
                metric.kind == Kind::Counter,
                metric.name.ends_with("_total"),
                "{}",
                metric.name
            );
        }
    }
}
