//! What lookups found: the answers, the failures and the follow-ups of a record, as the resolver
//! and check code produce them and as diagnosis, the state and the report read them.
//!
//! These types are the one-way seam between the network side (resolver, check, scheduler) and
//! the pure side (diagnosis, state, metrics, report): both import them, neither defines them.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

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
    /// A nameserver asked directly answered without authority for the zone (the AA flag unset):
    /// a lame delegation.
    Lame,
    /// Anything else: FORMERR, NOTIMP, other response codes, internal errors.
    Other,
}

impl FailureReason {
    /// Every reason, for pre-initialising counters so `rate()` works from the first scrape.
    pub const ALL: [FailureReason; 7] = [
        FailureReason::Timeout,
        FailureReason::Servfail,
        FailureReason::Refused,
        FailureReason::Network,
        FailureReason::Malformed,
        FailureReason::Lame,
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
            FailureReason::Lame => "lame",
            FailureReason::Other => "other",
        }
    }
}

/// A failed lookup: the reason, a detail for the log, and what the resolver said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The bounded reason, used as a label.
    pub reason: FailureReason,
    /// What exactly happened, for people reading logs.
    pub detail: String,
    /// The Extended DNS Error the reply carried (RFC 8914), if any. Boxed: rare, and kept
    /// for every record and resolver.
    pub ede: Option<Box<Ede>>,
    /// The resolver validates DNSSEC and rejected the answer: a DNSSEC Extended DNS Error came
    /// with the SERVFAIL, or the same question with checking disabled was answered. The
    /// failure belongs to the domain's zone, not to the resolver.
    pub dnssec_bogus: bool,
}

impl Failure {
    /// A failure for `reason`, with what happened.
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Failure {
        Failure {
            reason,
            detail: detail.into(),
            ede: None,
            dnssec_bogus: false,
        }
    }
}

impl From<FailureReason> for Failure {
    fn from(reason: FailureReason) -> Failure {
        Failure::new(reason, "")
    }
}

/// An Extended DNS Error (RFC 8914): why a resolver answered as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ede {
    /// The INFO-CODE.
    pub code: u16,
    /// The EXTRA-TEXT, possibly empty.
    pub text: String,
}

impl Ede {
    /// Whether the code is one of DNSSEC validation's: 1, 2 and 5 to 12 (RFC 8914), 25
    /// (signature expired before valid, RFC 9077).
    pub fn is_dnssec(&self) -> bool {
        matches!(self.code, 1 | 2 | 5..=12 | 25)
    }

    /// The code's name in the IANA registry.
    pub fn name(&self) -> &'static str {
        match self.code {
            0 => "Other Error",
            1 => "Unsupported DNSKEY Algorithm",
            2 => "Unsupported DS Digest Type",
            3 => "Stale Answer",
            4 => "Forged Answer",
            5 => "DNSSEC Indeterminate",
            6 => "DNSSEC Bogus",
            7 => "Signature Expired",
            8 => "Signature Not Yet Valid",
            9 => "DNSKEY Missing",
            10 => "RRSIGs Missing",
            11 => "No Zone Key Bit Set",
            12 => "NSEC Missing",
            13 => "Cached Error",
            14 => "Not Ready",
            15 => "Blocked",
            16 => "Censored",
            17 => "Filtered",
            18 => "Prohibited",
            19 => "Stale NXDOMAIN Answer",
            20 => "Not Authoritative",
            21 => "Not Supported",
            22 => "No Reachable Authority",
            23 => "Network Error",
            24 => "Invalid Data",
            25 => "Signature Expired before Valid",
            26 => "Too Early",
            27 => "Unsupported NSEC3 Iterations Value",
            28 => "Unable to conform to policy",
            29 => "Synthesized",
            30 => "Invalid Query Type",
            _ => "Unknown",
        }
    }
}

impl fmt::Display for Ede {
    /// `EDE 9 DNSKEY Missing: no SEP matching the DS found`, as people read it in `check`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EDE {} {}", self.code, self.name())?;
        if !self.text.is_empty() {
            write!(f, ": {}", self.text)?;
        }
        Ok(())
    }
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
    /// The DKIM key records, for TXT records (boxed: most records are CNAMEs, and every
    /// resolver's view of every record holds an observation).
    pub key: Option<Box<Keys>>,
    /// The answer was NXDOMAIN: nothing at all exists at the name.
    pub nxdomain: bool,
    /// The Extended DNS Error the answer carried (RFC 8914), if any.
    pub ede: Option<Box<Ede>>,
    /// The DNSSEC signature (RRSIG) over the answer that expires first; only read from a
    /// domain's own nameservers, which are asked with the DO bit. `None` for an unsigned zone,
    /// or an answer without data.
    pub signature: Option<Signature>,
}

/// When an RRSIG was made and when it expires, as DNSSEC times (seconds since the epoch, modulo
/// 2^32, RFC 4034 section 3.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// Signature Inception.
    pub inception: u32,
    /// Signature Expiration: never 0, which is 1970 (so that an observation's optional
    /// signature costs no more room than this).
    pub expiration: NonZeroU32,
}

/// The DKIM key records found at one name: the one read, and any others beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// The key record a verifier reads: the first TXT value there that is meant as one.
    pub key: Result<DkimKey, KeyError>,
    /// Further key records at the same name (`key_multiple`): receivers pick one of them all,
    /// so mail fails some of the time. Empty in the usual case.
    pub more: Box<[Result<DkimKey, KeyError>]>,
}

impl Keys {
    /// One key record, alone at its name.
    pub fn one(key: Result<DkimKey, KeyError>) -> Keys {
        Keys {
            key,
            more: Box::default(),
        }
    }

    /// The key read, when it is usable.
    pub fn usable(&self) -> Option<&DkimKey> {
        self.key.as_ref().ok()
    }

    /// Every key record at the name, the one read first.
    pub fn all(&self) -> impl Iterator<Item = &Result<DkimKey, KeyError>> {
        std::iter::once(&self.key).chain(self.more.iter())
    }
}

/// The kind of record found, and its value as `dkim_record_info` shows it. Every resolver's
/// view of every record holds one: the values are boxed strings (16 bytes, not 24), which
/// makes the whole 24 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Found {
    /// Nothing of interest at the name.
    None,
    /// A CNAME, with its target in lower case without the trailing dot; the expected target's
    /// own string when it is that one.
    Cname(Arc<str>),
    /// A TXT value, as `sha256:` and the first 16 hex digits of its SHA-256.
    Txt(Box<str>),
    /// A and AAAA addresses instead of a record of the expected type, sorted and comma-joined.
    A(Box<str>),
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
            Found::Cname(v) => v,
            Found::Txt(v) | Found::A(v) => v,
        }
    }
}

/// What the follow-up of a record found in one round, after every configured resolver was asked.
#[derive(Debug, Clone, Default)]
pub struct FollowUp {
    /// Each nameserver of the domain and its outcome; `None` when the nameservers could not be
    /// found this round.
    pub nameservers: Option<Vec<(String, Result<Observation, Failure>)>>,
    /// The extra lookups, when the record was missing and at least one of them answered.
    pub extra: Option<Extra>,
    /// The key at the end of the record, when it was looked up and the lookup answered.
    pub key: Option<KeyLookup>,
    /// The resolver the key was looked up through.
    pub key_via: Option<String>,
    /// The names the expected target's own CNAME chain passed through to the key (Brevo's
    /// targets are CNAMEs themselves), when the key was looked up.
    pub key_chain: Option<Vec<String>>,
    /// Whether the domain itself exists, asked when the record was NXDOMAIN everywhere;
    /// `None` when not asked or not answered.
    pub domain_exists: Option<bool>,
    /// What the walk of the domain's delegation found, when no resolver could resolve the
    /// record (shared by the domain's records within a round).
    pub walk: Option<Arc<Walk>>,
}

/// What walking a domain's delegation found, as `dig +trace` would: the parent zone that
/// delegates it, and how each delegated nameserver answers. Only made for a domain whose
/// records no resolver could resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// The domain walked.
    pub domain: String,
    /// The configured resolvers that answered a question about the parent zone: they work, so
    /// their failures on the domain's names are the domain's.
    pub working: Vec<String>,
    /// The closest enclosing zone that resolves, when one did.
    pub parent: Option<String>,
    /// What the parent's nameservers say of the domain.
    pub delegation: Delegation,
}

/// What the parent zone's nameservers say of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    /// The parent could not be asked: none of its nameservers answered, or none was found.
    Unknown,
    /// The parent says the domain does not exist.
    NotFound,
    /// The domain is in the parent's own zone, with no delegation of its own.
    NotDelegated,
    /// The parent delegates the domain to these nameservers.
    To(Vec<Nameserver>),
}

/// A delegated nameserver, and how it answered a question about the domain asked directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    /// Its host name, lower case.
    pub host: String,
    /// The address asked, from glue or a lookup; `None` when none was found.
    pub address: Option<IpAddr>,
    /// How it answered; `None` when it answered authoritatively.
    pub failure: Option<FailureReason>,
}

impl Walk {
    /// Whether the walk explains the failures: some resolver works, and the delegation is
    /// broken somewhere.
    pub fn explains(&self) -> bool {
        !self.working.is_empty()
    }
}

impl fmt::Display for Walk {
    /// What the walk found, in one sentence for the `unresolvable` detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(parent) = &self.parent else {
            return write!(f, "no parent zone of {} resolves", self.domain);
        };
        match &self.delegation {
            Delegation::Unknown => write!(
                f,
                "none of the nameservers of {parent} answers for the delegation of {}",
                self.domain
            ),
            Delegation::NotFound => {
                write!(
                    f,
                    "{} is not found in the parent zone {parent}",
                    self.domain
                )
            }
            Delegation::NotDelegated => write!(
                f,
                "{} is part of the zone {parent}, whose nameservers do not resolve it",
                self.domain
            ),
            Delegation::To(servers) => {
                write!(f, "{parent} delegates {} to ", self.domain)?;
                for (i, server) in servers.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    f.write_str(&server.host)?;
                    match (server.address, server.failure) {
                        (None, _) => f.write_str(", which has no address")?,
                        (Some(ip), None) => write!(f, " ({ip}), which answers")?,
                        (Some(ip), Some(reason)) => {
                            write!(f, " ({ip}), which {}", nameserver_failure(reason))?
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// How a nameserver fails, in words.
fn nameserver_failure(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::Timeout => "does not answer",
        FailureReason::Network => "cannot be reached",
        FailureReason::Refused => "answers REFUSED (lame)",
        FailureReason::Lame => "answers without authority (lame)",
        FailureReason::Servfail => "answers SERVFAIL",
        FailureReason::Malformed => "answers with an unreadable reply",
        FailureReason::Other => "answers with an error",
    }
}

/// What the extra lookups found at and near the name of a missing record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// A and AAAA addresses at the name, sorted.
    pub addresses: Vec<IpAddr>,
    /// The addresses are those of the expected CNAME target, through the same resolver: the
    /// DNS host flattens the CNAME.
    pub flattened: bool,
    /// A TXT value at the name that looks like a DKIM key.
    pub txt_key: bool,
    /// The doubled name, when a record of the expected type exists there.
    pub doubled: Option<String>,
    /// The name without the underscore, when a record of the expected type exists there.
    pub without_underscore: Option<String>,
    /// `_domainkey.{domain}` itself does not exist (NXDOMAIN): by RFC 8020 nothing below it
    /// does, so the domain has no DKIM record at all.
    pub no_domainkey: bool,
}

/// What was found at the end of a CNAME record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// TXT values that were read as key records.
    Found(Keys),
    /// No TXT key record at the target.
    NotFound,
}
