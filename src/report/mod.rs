//! A report of every record for people and scripts: what each resolver returned, each problem
//! and its fix. `dkim_exporter check` prints it as text or JSON; the landing page shows the same
//! verdicts.

pub mod html;
pub mod paste;
pub mod receivers;
mod text;

use serde::Serialize;

use crate::dkim::KeyType;
use crate::provider::Expected;
use crate::records::record_name;
use crate::ses::Discovered;
use crate::state::{DomainState, RecordState, State};
pub use paste::Paste;
pub use receivers::ReceiversReport;

/// Every configured domain and record.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The exporter's version that made the report.
    pub version: &'static str,
    /// When the report was made, RFC 3339 UTC.
    pub timestamp: String,
    /// Every record is known to be correct and without problems.
    pub ok: bool,
    /// Counts over every domain and record checked.
    pub summary: Summary,
    /// The domains, in config order.
    pub domains: Vec<DomainReport>,
}

/// Counts over a whole report, kept when `--problems-only` leaves records out.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Domains checked.
    pub domains: usize,
    /// Domains that are not correct.
    pub domains_needing_attention: usize,
    /// Records checked.
    pub records: usize,
    /// Records correct.
    pub correct: usize,
    /// Records with a problem.
    pub problems: usize,
    /// Records no resolver answered for.
    pub unknown: usize,
}

/// One domain.
#[derive(Debug, Serialize)]
pub struct DomainReport {
    /// The domain name.
    pub domain: String,
    /// `correct` when every record is, `problem` when one has a problem (or SES reports one),
    /// else `unknown`.
    pub status: Status,
    /// How many records were checked (`records` may list fewer, with `--problems-only`).
    pub records_checked: usize,
    /// What SES says of the domain's identity, per `ses:` source that discovered it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ses: Vec<SesReport>,
    /// What receivers reported about it in the DMARC window, when they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receivers: Option<ReceiversReport>,
    /// The records, in config order.
    pub records: Vec<RecordReport>,
}

/// SES's view of one domain identity.
#[derive(Debug, Serialize)]
pub struct SesReport {
    /// The `ses:` source.
    pub source: String,
    /// Its region.
    pub region: String,
    /// SES's DKIM status (`success`, `pending`, …); `None` when SES gave one this version does
    /// not know.
    pub status: Option<&'static str>,
    /// Whether SES signs the domain's mail with its DKIM keys.
    pub signing_enabled: bool,
    /// SES's current signing key length, in bits.
    pub key_length: Option<u32>,
    /// The SES problems found.
    pub problems: Vec<ProblemReport>,
}

/// One record.
#[derive(Debug, Serialize)]
pub struct RecordReport {
    /// The selector.
    pub selector: String,
    /// The `ses:` source that discovered it; absent for records from the config or the
    /// command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_ses: Option<String>,
    /// Checked because receivers' DMARC reports name it, though no config or SES lists it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_dmarc: bool,
    /// `{selector}._domainkey.{domain}`.
    pub name: String,
    /// `cname` or `txt`.
    pub expected_type: &'static str,
    /// The expected CNAME target, for CNAME records.
    pub expected_target: Option<String>,
    /// `correct`, `problem`, or `unknown` when no resolver answered.
    pub status: Status,
    /// What each resolver returned, configured ones first.
    pub resolvers: Vec<ResolverReport>,
    /// Size of the key the record leads to.
    pub key_bits: Option<u32>,
    /// The key's algorithm and the tags that change how receivers treat it (`t=y`,
    /// `h=sha1`), as the key record writes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_tags: Vec<&'static str>,
    /// The key's fingerprint: `sha256:` and the first 16 hex digits of the SHA-256 of the
    /// decoded public key, as `dkim_key_info` labels it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// When this process first saw the key (RFC 3339 UTC): when it changed, or when the
    /// process started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_first_seen: Option<String>,
    /// The key before it, `sha256:… (N bits)`, when this process saw the key change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_replaced: Option<String>,
    /// When the earliest DNSSEC signature over the record on its nameservers expires (RFC 3339
    /// UTC); absent for an unsigned zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_expiry: Option<String>,
    /// The names the expected target's own CNAME chain passes through to the key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_chain: Vec<String>,
    /// The inactive selector of a rotating pair: no key at its target while its partner is
    /// healthy, which is how the provider rotates keys, not a problem.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inactive_key: bool,
    /// The problems found.
    pub problems: Vec<ProblemReport>,
}

/// A record's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Correct on every answering resolver, no problem.
    Correct,
    /// Something is wrong; see the problems.
    Problem,
    /// No resolver gave a definitive answer.
    Unknown,
}

/// What one resolver returned for one record.
#[derive(Debug, Serialize)]
pub struct ResolverReport {
    /// The resolver's name (`auth:{host}` for nameservers).
    pub resolver: String,
    /// Whether the latest lookup got a definitive answer.
    pub answered: bool,
    /// Why the latest lookup failed.
    pub failure: Option<&'static str>,
    /// `cname`, `txt`, `a` or `none`, from the latest definitive answer.
    pub record_type: Option<&'static str>,
    /// The CNAME target, TXT fingerprint or addresses.
    pub value: Option<String>,
    /// A record of the expected type is present.
    pub present: Option<bool>,
    /// The record is correct.
    pub correct: Option<bool>,
    /// TTL of the answer.
    pub ttl: Option<u32>,
    /// The Extended DNS Error of the latest reply (RFC 8914), as `EDE 9 DNSKEY Missing: …`.
    pub ede: Option<String>,
    /// The latest lookup failed because the resolver validates DNSSEC and rejected the zone.
    pub dnssec_bogus: bool,
}

/// One problem and its fix.
#[derive(Debug, Serialize)]
pub struct ProblemReport {
    /// The problem's name.
    pub problem: &'static str,
    /// What was seen.
    pub detail: String,
    /// What to do about it.
    pub fix: &'static str,
    /// The record to publish, when publishing it fixes the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paste: Option<Paste>,
}

impl Report {
    /// Builds the report from the latest state.
    pub fn from_state(state: &State) -> Report {
        Report::of_domains(state, state.domains())
    }

    /// Builds the report of `domains` (the state's) alone.
    pub fn of_domains<'a>(
        state: &State,
        domains: impl IntoIterator<Item = &'a DomainState>,
    ) -> Report {
        let domains: Vec<DomainReport> = domains
            .into_iter()
            .map(|domain| DomainReport {
                domain: domain.name.clone(),
                status: Status::Unknown,
                records_checked: domain.records.len(),
                ses: Vec::new(),
                receivers: None,
                records: state
                    .records()
                    .get(domain.records.clone())
                    .unwrap_or_default()
                    .iter()
                    .map(|r| RecordReport::new(state, r))
                    .collect(),
            })
            .collect();
        let ok = domains
            .iter()
            .flat_map(|d| &d.records)
            .all(|r| r.status == Status::Correct);
        let mut report = Report {
            version: env!("CARGO_PKG_VERSION"),
            timestamp: crate::logging::rfc3339_now(),
            ok,
            summary: Summary::default(),
            domains,
        };
        report.judge_domains();
        report
    }

    /// Sets each domain's status from its records and SES's view, and counts them.
    fn judge_domains(&mut self) {
        let mut summary = Summary {
            domains: self.domains.len(),
            ..Summary::default()
        };
        for domain in &mut self.domains {
            for record in &domain.records {
                summary.records += 1;
                match record.status {
                    Status::Correct => summary.correct += 1,
                    Status::Problem => summary.problems += 1,
                    Status::Unknown => summary.unknown += 1,
                }
            }
            domain.status = Status::of_domain(
                domain.records.iter().map(|r| r.status),
                domain.ses.iter().any(|s| !s.problems.is_empty()),
            );
            summary.domains_needing_attention += usize::from(domain.status != Status::Correct);
        }
        self.summary = summary;
    }

    /// Keeps only the records with a problem or no answer, and the domains that have one.
    pub fn problems_only(mut self) -> Report {
        for domain in &mut self.domains {
            domain.records.retain(|r| r.status != Status::Correct);
        }
        self.domains
            .retain(|d| !d.records.is_empty() || d.status != Status::Correct);
        self
    }

    /// Adds what SES says of each domain's identity, as `discovered`, with the SES problems
    /// judged against `state` at unix time `now`. A domain SES reports trouble for is not ok.
    pub fn with_ses(mut self, discovered: &[Discovered], state: &State, now: f64) -> Report {
        for domain in &mut self.domains {
            for source in discovered {
                let Some(identity) = source.identity(&domain.domain) else {
                    continue;
                };
                let problems: Vec<ProblemReport> =
                    crate::ses::problem::findings(state, source, identity, now)
                        .into_iter()
                        .map(|f| ProblemReport {
                            problem: f.problem.as_str(),
                            detail: f.detail,
                            fix: f.problem.fix(),
                            paste: None,
                        })
                        .collect();
                self.ok &= problems.is_empty();
                domain.ses.push(SesReport {
                    source: source.source.name.clone(),
                    region: source.source.region.clone(),
                    status: identity.status.map(|s| s.as_str()),
                    signing_enabled: identity.signing_enabled,
                    key_length: identity.key_length,
                    problems,
                });
            }
        }
        self.judge_domains();
        self
    }

    /// The report as indented JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// How a resolver's answer reads: what colour it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// The record is correct there.
    Correct,
    /// Absent or not as expected.
    Wrong,
    /// The latest lookup failed.
    Failed,
    /// Not asked yet.
    NotAsked,
}

impl Status {
    /// A record's verdict.
    pub fn of_record(state: &State, record: &RecordState) -> Status {
        match record.healthy(state.resolvers()) {
            None if record.findings.is_empty() => Status::Unknown,
            Some(true) => Status::Correct,
            _ => Status::Problem,
        }
    }

    /// A domain's verdict from its records' and whether SES reports trouble for it: a problem
    /// anywhere makes it a problem, else it is correct when every record is.
    pub fn of_domain(statuses: impl Iterator<Item = Status>, ses_trouble: bool) -> Status {
        let mut all_correct = true;
        for status in statuses {
            match status {
                Status::Problem => return Status::Problem,
                Status::Unknown => all_correct = false,
                Status::Correct => {}
            }
        }
        if ses_trouble {
            Status::Problem
        } else if all_correct {
            Status::Correct
        } else {
            Status::Unknown
        }
    }
}

impl ResolverReport {
    /// What the resolver returned, in words, and how it reads.
    pub fn said(&self) -> (String, Tone) {
        match (self.record_type, self.failure) {
            (_, Some(reason)) if !self.answered => {
                let last = match (self.record_type, self.value.as_deref()) {
                    (Some(kind), Some(value)) if !value.is_empty() => {
                        format!(" (last answer: {kind} {value})")
                    }
                    _ => String::new(),
                };
                let ede = self
                    .ede
                    .as_ref()
                    .map(|ede| format!(" ({ede})"))
                    .unwrap_or_default();
                let bogus = if self.dnssec_bogus {
                    ", rejected by DNSSEC validation"
                } else {
                    ""
                };
                (
                    format!("lookup failed: {reason}{ede}{bogus}{last}"),
                    Tone::Failed,
                )
            }
            (None, _) => ("not asked yet".to_string(), Tone::NotAsked),
            (Some(kind), _) => {
                let found = match kind {
                    "none" => "no record".to_string(),
                    kind => format!("{kind} {}", self.value.as_deref().unwrap_or("")),
                };
                let ttl = self.ttl.map(|t| format!("  ttl {t}")).unwrap_or_default();
                let ttl = match &self.ede {
                    Some(ede) => format!("{ttl}  ({ede})"),
                    None => ttl,
                };
                let tone = if self.correct == Some(true) {
                    Tone::Correct
                } else {
                    Tone::Wrong
                };
                (format!("{found}{ttl}"), tone)
            }
        }
    }
}

impl RecordReport {
    /// What the record should hold, in words.
    pub fn expected(&self) -> String {
        match &self.expected_target {
            Some(target) => format!("CNAME {target}"),
            None => "TXT DKIM key".to_string(),
        }
    }

    fn new(state: &State, record: &RecordState) -> RecordReport {
        let resolvers: Vec<ResolverReport> = record
            .all_views(state.resolvers())
            .map(|(name, view)| ResolverReport {
                resolver: name.to_string(),
                answered: view.latest.ok() == Some(true),
                failure: view.latest.failure().map(|f| f.as_str()),
                record_type: view.known.as_ref().map(|o| o.found.record_type()),
                value: view.known.as_ref().map(|o| o.found.value().to_string()),
                present: view.known.as_ref().map(|o| o.present),
                correct: view.known.as_ref().map(|o| o.correct),
                ttl: view.known.as_ref().and_then(|o| o.ttl),
                ede: view.ede.as_ref().map(ToString::to_string),
                dnssec_bogus: view.latest.dnssec_bogus(),
            })
            .collect();
        let nameservers: Vec<&str> = record
            .nameservers
            .iter()
            .filter_map(|(name, _)| name.strip_prefix("auth:"))
            .collect();
        let problems: Vec<ProblemReport> = record
            .findings
            .iter()
            .map(|f| ProblemReport {
                problem: f.problem.as_str(),
                detail: f.detail.clone(),
                fix: f.problem.fix(),
                paste: Paste::for_problem(
                    f.problem,
                    &record.selector,
                    &record.domain,
                    &record.expected,
                    &nameservers,
                ),
            })
            .collect();
        let status = Status::of_record(state, record);
        let (expected_type, expected_target) = match &record.expected {
            Expected::Cname(target) => ("cname", Some(target.to_string())),
            Expected::Txt => ("txt", None),
        };
        RecordReport {
            selector: record.selector.clone(),
            from_ses: record.from_ses.as_deref().map(str::to_string),
            from_dmarc: record.from_dmarc,
            name: record_name(&record.selector, &record.domain),
            expected_type,
            expected_target,
            status,
            resolvers,
            key_bits: record.key_bits(),
            key_tags: record
                .key()
                .map(|key| {
                    let mut tags = vec![match key.key_type {
                        KeyType::Rsa => "k=rsa",
                        KeyType::Ed25519 => "k=ed25519",
                    }];
                    if key.flags.testing {
                        tags.push("t=y");
                    }
                    if key.flags.sha1_only {
                        tags.push("h=sha1");
                    }
                    tags
                })
                .unwrap_or_default(),
            key_fingerprint: record.key().map(|key| key.fingerprint.to_string()),
            key_first_seen: record
                .key_seen
                .as_ref()
                .filter(|seen| seen.current)
                .map(|seen| crate::logging::rfc3339_at(seen.first_seen)),
            key_replaced: record
                .key_seen
                .as_ref()
                .filter(|seen| seen.current)
                .and_then(|seen| seen.previous.as_deref())
                .map(|old| format!("{} ({} bits)", old.fingerprint, old.bits)),
            signature_expiry: record
                .signature_expiry(crate::state::unix_now())
                .map(crate::logging::rfc3339_at),
            key_chain: record.key_chain.as_deref().unwrap_or_default().to_vec(),
            inactive_key: record.inactive_key,
            problems,
        }
    }
}
