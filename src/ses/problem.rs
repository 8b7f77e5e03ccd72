//! The SES problems (`dkim_ses_identity_problem`): SES's status of an identity, alone and set
//! against what DNS serves for its records.

use crate::changes;
use crate::problem::{Entry, Problem, Severity};
use crate::records::record_name;
use crate::state::State;

use super::{Discovered, DkimStatus, Identity};

/// How long SES looks for the records of a PENDING identity before it gives up (FAILED).
pub const SES_GIVES_UP_AFTER: f64 = 72.0 * 3600.0;

/// A named SES problem: the `problem` label of `dkim_ses_identity_problem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SesProblem {
    /// SES does not sign the identity's mail with its DKIM keys.
    SigningDisabled,
    /// SES's DKIM status is FAILED.
    Failed,
    /// SES could not find the records at its latest check.
    TemporaryFailure,
    /// PENDING for more than 72 hours since the exporter first saw it so.
    PendingTooLong,
    /// SES's status and the DNS disagree.
    StatusDisagrees,
}

/// Every SES problem, in the contract's order (and the order of [`SesProblem`]'s variants).
pub const TABLE: [Entry<SesProblem>; 5] = [
    Entry {
        problem: SesProblem::SigningDisabled,
        name: "ses_signing_disabled",
        severity: Severity::Critical,
        meaning: "SES does not sign the identity's mail with its DKIM keys.",
        fix: "Enable DKIM signing for the identity (SES console: the identity's \
              Authentication tab, or `aws sesv2 put-email-identity-dkim-attributes \
              --signing-enabled`).",
    },
    Entry {
        problem: SesProblem::Failed,
        name: "ses_failed",
        severity: Severity::Critical,
        meaning: "SES's DKIM status is FAILED: it did not find the records for 72 hours and \
                  has stopped signing.",
        fix: "Fix the records (see their problems); when they are correct, restart DKIM \
              verification in SES.",
    },
    Entry {
        problem: SesProblem::TemporaryFailure,
        name: "ses_temporary_failure",
        severity: Severity::Warning,
        meaning: "SES could not find the records at its latest check.",
        fix: "Fix the records within 72 hours, or SES stops signing.",
    },
    Entry {
        problem: SesProblem::PendingTooLong,
        name: "ses_pending_too_long",
        severity: Severity::Warning,
        meaning: "SES's status has been PENDING for more than 72 hours since the exporter first \
                  saw it so.",
        fix: "The records SES waits for are named in the record problems; SES gives up after \
              72 hours.",
    },
    Entry {
        problem: SesProblem::StatusDisagrees,
        name: "ses_status_disagrees",
        severity: Severity::Warning,
        meaning: "SES says SUCCESS while the DNS shows a record missing or wrong, or FAILED \
                  while every record is correct.",
        fix: "SUCCESS: SES will fail at its next check, fix DNS now; FAILED with correct \
              records: restart DKIM verification in SES.",
    },
];

impl SesProblem {
    /// Every SES problem, in the contract's order.
    pub const ALL: [SesProblem; 5] = [
        SesProblem::SigningDisabled,
        SesProblem::Failed,
        SesProblem::TemporaryFailure,
        SesProblem::PendingTooLong,
        SesProblem::StatusDisagrees,
    ];

    /// The problem's row of [`TABLE`].
    pub fn entry(self) -> &'static Entry<SesProblem> {
        &TABLE[self as usize]
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        self.entry().name
    }

    /// What to do about it.
    pub fn fix(self) -> &'static str {
        self.entry().fix
    }
}

/// The SES problem table of docs/problems.md, written from [`TABLE`].
pub fn markdown_table() -> String {
    crate::problem::markdown_table_of(TABLE.iter().map(|e| (e.name, e.severity, e.meaning, e.fix)))
}

/// Record problems that say the DNS does not hold what SES looks for: the record is missing
/// or points somewhere else.
const MISSING_OR_WRONG: [Problem; 9] = [
    Problem::Missing,
    Problem::WrongTarget,
    Problem::TargetTypo,
    Problem::WrongRegion,
    Problem::ARecord,
    Problem::TxtInsteadOfCname,
    Problem::DoubledDomain,
    Problem::MissingUnderscore,
    Problem::DomainNotFound,
];

/// What DNS says of one of an identity's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordVerdict {
    /// Not checked yet, or no resolver answered.
    Unknown,
    /// Correct on every answering resolver, with no problem.
    Correct,
    /// Missing or wrong: the first such problem.
    MissingOrWrong(Problem),
    /// Another problem (not propagated, key problems, broken DNS).
    Other,
}

impl RecordVerdict {
    /// The verdict of a record with `problems` that is `healthy` (as the state says).
    pub fn of(problems: impl IntoIterator<Item = Problem>, healthy: Option<bool>) -> RecordVerdict {
        let problems: Vec<Problem> = problems.into_iter().collect();
        if let Some(p) = problems.iter().find(|p| MISSING_OR_WRONG.contains(p)) {
            return RecordVerdict::MissingOrWrong(*p);
        }
        match healthy {
            Some(true) => RecordVerdict::Correct,
            Some(false) => RecordVerdict::Other,
            None => RecordVerdict::Unknown,
        }
    }
}

/// One SES problem of an identity, with a few words on what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesFinding {
    /// The problem.
    pub problem: SesProblem,
    /// What was seen.
    pub detail: String,
}

impl changes::Named for SesProblem {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn fix(self) -> &'static str {
        SesProblem::fix(self)
    }
}

impl changes::Finding for SesFinding {
    type Problem = SesProblem;

    fn problem(&self) -> SesProblem {
        self.problem
    }

    fn detail(&self) -> &str {
        &self.detail
    }
}

/// The SES problems of `identity`, discovered by `discovered`'s source, set against what
/// `state` knows of its records, at unix time `now`.
pub fn findings(
    state: &State,
    discovered: &Discovered,
    identity: &Identity,
    now: f64,
) -> Vec<SesFinding> {
    let records: Vec<(&str, RecordVerdict)> = identity
        .tokens
        .iter()
        .map(|token| {
            let verdict = state.record(&record_name(token, &identity.domain)).map_or(
                RecordVerdict::Unknown,
                |record| {
                    RecordVerdict::of(
                        record.findings.iter().map(|f| f.problem),
                        record.healthy(state.resolvers()),
                    )
                },
            );
            (token.as_str(), verdict)
        })
        .collect();
    let pending_since = discovered.pending_since.get(&identity.domain).copied();
    problems_of(identity, pending_since, now, &records)
}

/// The SES problems of `identity`, given when it was first seen PENDING, the time now, and
/// the DNS verdict on each of its tokens' records (as `(selector, verdict)`).
pub fn problems_of(
    identity: &Identity,
    pending_since: Option<f64>,
    now: f64,
    records: &[(&str, RecordVerdict)],
) -> Vec<SesFinding> {
    let mut findings = Vec::new();
    let mut add = |problem, detail: String| findings.push(SesFinding { problem, detail });
    if !identity.signing_enabled {
        add(
            SesProblem::SigningDisabled,
            "SES does not sign this domain's mail with DKIM".to_string(),
        );
    }
    match identity.status {
        Some(DkimStatus::Failed) => add(
            SesProblem::Failed,
            "SES's DKIM status is FAILED".to_string(),
        ),
        Some(DkimStatus::TemporaryFailure) => add(
            SesProblem::TemporaryFailure,
            "SES's DKIM status is TEMPORARY_FAILURE".to_string(),
        ),
        Some(DkimStatus::Pending) => {
            if let Some(since) = pending_since.filter(|since| now - since > SES_GIVES_UP_AFTER) {
                add(
                    SesProblem::PendingTooLong,
                    format!(
                        "PENDING for {:.0} hours that the exporter has seen",
                        (now - since) / 3600.0
                    ),
                );
            }
        }
        _ => {}
    }
    match identity.status {
        Some(DkimStatus::Success) => {
            let wrong: Vec<String> = records
                .iter()
                .filter_map(|(selector, verdict)| match verdict {
                    RecordVerdict::MissingOrWrong(p) => Some(format!("{selector} ({p})")),
                    _ => None,
                })
                .collect();
            if !wrong.is_empty() {
                add(
                    SesProblem::StatusDisagrees,
                    format!(
                        "SES says SUCCESS, but DNS shows {} missing or wrong: {}",
                        if wrong.len() == 1 {
                            "a record"
                        } else {
                            "records"
                        },
                        wrong.join(", ")
                    ),
                );
            }
        }
        Some(DkimStatus::Failed)
            if !records.is_empty() && records.iter().all(|(_, v)| *v == RecordVerdict::Correct) =>
        {
            add(
                SesProblem::StatusDisagrees,
                "SES says FAILED, but every record is correct in DNS".to_string(),
            );
        }
        _ => {}
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ses::Origin;

    fn identity(status: DkimStatus, signing_enabled: bool) -> Identity {
        Identity {
            domain: "example.com".into(),
            status: Some(status),
            signing_enabled,
            key_length: Some(2048),
            last_key_generation: None,
            origin: Origin::Ses {
                region: "us-east-1".into(),
            },
            tokens: vec!["a".into(), "b".into()],
        }
    }

    fn names(findings: &[SesFinding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.problem.as_str()).collect()
    }

    #[test]
    fn the_table_follows_the_variants() {
        for (i, entry) in TABLE.iter().enumerate() {
            assert_eq!(entry.problem as usize, i, "{}", entry.name);
            assert_eq!(SesProblem::ALL[i], entry.problem);
        }
    }

    #[test]
    fn status_alone() {
        let none: [(&str, RecordVerdict); 0] = [];
        assert!(problems_of(&identity(DkimStatus::Success, true), None, 0.0, &none).is_empty());
        assert_eq!(
            names(&problems_of(
                &identity(DkimStatus::Failed, false),
                None,
                0.0,
                &none
            )),
            ["ses_signing_disabled", "ses_failed"]
        );
        assert_eq!(
            names(&problems_of(
                &identity(DkimStatus::TemporaryFailure, true),
                None,
                0.0,
                &none
            )),
            ["ses_temporary_failure"]
        );
    }

    #[test]
    fn pending_counts_from_when_it_was_first_seen() {
        let pending = identity(DkimStatus::Pending, true);
        let none: [(&str, RecordVerdict); 0] = [];
        let hour = 3600.0;
        assert!(problems_of(&pending, Some(0.0), 71.0 * hour, &none).is_empty());
        assert_eq!(
            names(&problems_of(&pending, Some(0.0), 73.0 * hour, &none)),
            ["ses_pending_too_long"]
        );
    }

    #[test]
    fn status_against_dns() {
        let missing = [
            ("a", RecordVerdict::Correct),
            ("b", RecordVerdict::MissingOrWrong(Problem::Missing)),
        ];
        let findings = problems_of(&identity(DkimStatus::Success, true), None, 0.0, &missing);
        assert_eq!(names(&findings), ["ses_status_disagrees"]);
        assert!(findings[0].detail.contains("b (missing)"), "{findings:?}");

        let correct = [("a", RecordVerdict::Correct), ("b", RecordVerdict::Correct)];
        assert_eq!(
            names(&problems_of(
                &identity(DkimStatus::Failed, true),
                None,
                0.0,
                &correct
            )),
            ["ses_failed", "ses_status_disagrees"]
        );
        // Not known yet: no disagreement.
        let unknown = [("a", RecordVerdict::Correct), ("b", RecordVerdict::Unknown)];
        assert_eq!(
            names(&problems_of(
                &identity(DkimStatus::Failed, true),
                None,
                0.0,
                &unknown
            )),
            ["ses_failed"]
        );
        assert_eq!(
            RecordVerdict::of([Problem::NotPropagated, Problem::WrongTarget], Some(false)),
            RecordVerdict::MissingOrWrong(Problem::WrongTarget)
        );
    }
}
