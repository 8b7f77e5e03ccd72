//! What lookups found: the answers, the failures and the follow-ups of a record, as the resolver
//! and check code produce them and as diagnosis, the state and the report read them.
//!
//! These types are the one-way seam between the network side (resolver, check, scheduler) and
//! the pure side (diagnosis, state, metrics, report): both import them, neither defines them.

use std::net::IpAddr;

use crate::dkim::{DkimKey, KeyError};

/// Why a query did not produce a definitive answer. The label values of
/// `dkim_lookup_errors_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// No answer within the timeout.
    Timeout,
    /// The resolver answered SERVFAIL.
    Servfail,
    /// The resolver answered REFUSED.
    Refused,
    /// The resolver could not be reached, or the connection broke.
    Network,
    /// The reply could not be parsed.
    Malformed,
    /// Anything else: FORMERR, NOTIMP, other response codes, internal errors.
    Other,
}

impl FailureReason {
    /// Every reason, for pre-initialising counters so `rate()` works from the first scrape.
    pub const ALL: [FailureReason; 6] = [
        FailureReason::Timeout,
        FailureReason::Servfail,
        FailureReason::Refused,
        FailureReason::Network,
        FailureReason::Malformed,
        FailureReason::Other,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Servfail => "servfail",
            FailureReason::Refused => "refused",
            FailureReason::Network => "network",
            FailureReason::Malformed => "malformed",
            FailureReason::Other => "other",
        }
    }
}

/// A failed query: the reason, and a detail for the log.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The bounded reason, used as a label.
    pub reason: FailureReason,
    /// What exactly happened, for people reading logs.
    pub detail: String,
}

/// What a definitive answer said about a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What was found at the name.
    pub found: Found,
    /// The answer holds a record of the expected type.
    pub present: bool,
    /// Present and as expected: the right CNAME target, or a usable DKIM key.
    pub correct: bool,
    /// TTL of the record found, or the negative-caching TTL of an empty answer.
    pub ttl: Option<u32>,
    /// The DKIM key, for TXT records.
    pub key: Option<Result<DkimKey, KeyError>>,
    /// The answer was NXDOMAIN: nothing at all exists at the name.
    pub nxdomain: bool,
}

/// The kind of record found, and its value as `dkim_record_info` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Found {
    /// Nothing of interest at the name.
    None,
    /// A CNAME, with its target in lower case without the trailing dot.
    Cname(String),
    /// A TXT value, as `sha256:` and the first 16 hex digits of its SHA-256.
    Txt(String),
    /// A and AAAA addresses instead of a record of the expected type, sorted and comma-joined.
    A(String),
}

impl Found {
    /// The `record_type` label value.
    pub fn record_type(&self) -> &'static str {
        match self {
            Found::None => "none",
            Found::Cname(_) => "cname",
            Found::Txt(_) => "txt",
            Found::A(_) => "a",
        }
    }

    /// The `value` label value.
    pub fn value(&self) -> &str {
        match self {
            Found::None => "",
            Found::Cname(v) | Found::Txt(v) | Found::A(v) => v,
        }
    }
}

/// What the follow-up of a record found in one round, after every configured resolver was asked.
#[derive(Debug, Clone, Default)]
pub struct FollowUp {
    /// Each authoritative nameserver of the domain and its outcome; `None` when the nameservers
    /// could not be found this round.
    pub auth: Option<Vec<(String, Result<Observation, FailureReason>)>>,
    /// The extra lookups, when the record was missing and at least one of them answered.
    pub extra: Option<Extra>,
    /// The key at the end of the record, when it was looked up and the lookup answered.
    pub key: Option<KeyLookup>,
}

/// What the extra lookups found at and near the name of a missing record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// A and AAAA addresses at the name, sorted.
    pub addresses: Vec<IpAddr>,
    /// A TXT value at the name that looks like a DKIM key.
    pub txt_key: bool,
    /// The doubled name, when a record of the expected type exists there.
    pub doubled: Option<String>,
    /// The name without the underscore, when a record of the expected type exists there.
    pub without_underscore: Option<String>,
}

/// What was found at the end of a CNAME record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// A TXT value that was read as a key record.
    Found(Result<DkimKey, KeyError>),
    /// No TXT key record at the target.
    NotFound,
}
