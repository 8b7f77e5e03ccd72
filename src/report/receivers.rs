//! What receivers reported about a domain (its DMARC aggregate reports in the window), as the
//! status page, `check` and its JSON show it.

use serde::Serialize;

use super::Report;
use crate::config::format_duration;
use crate::dmarc::tally::{DomainTally, OTHER, Tally, UNKNOWN};

/// What receivers reported about one domain in the window.
#[derive(Debug, Serialize)]
pub struct ReceiversReport {
    /// The window, in words: `7 days`.
    pub window: String,
    /// Messages reported (by header From).
    pub messages: u64,
    /// Of them, those whose DKIM passed DMARC's evaluation.
    pub dkim_passed: u64,
    /// Of them, those that passed SPF but not DKIM: mail the domain sends that is not signed
    /// (or whose signature fails).
    pub spf_passed_dkim_failed: u64,
    /// Signatures by selector, the most reported first.
    pub selectors: Vec<SelectorReport>,
    /// The reporters and how many messages each reported, the most first.
    pub reporters: Vec<ReporterReport>,
    /// Selectors receivers saw signing that no config or SES lists (each is checked as a
    /// record).
    pub not_configured: Vec<String>,
    /// The end of the newest reported period, RFC 3339 UTC.
    pub last_report: String,
}

/// What receivers reported of one selector's signatures.
#[derive(Debug, Serialize)]
pub struct SelectorReport {
    /// The selector; `_unknown` for signatures a report names no selector of, `_other` for
    /// those past `max_selectors_per_domain`.
    pub selector: String,
    /// Signatures reported.
    pub signatures: u64,
    /// Of them, `fail` or `permerror`.
    pub failed: u64,
    /// By result, the most first.
    pub results: Vec<(&'static str, u64)>,
    /// The reporters' counts, as "Google 120 of 130 failed, …".
    pub reporters: String,
}

/// One reporter.
#[derive(Debug, Serialize)]
pub struct ReporterReport {
    /// Its `org_name`.
    pub org: String,
    /// Messages it reported.
    pub messages: u64,
}

impl ReceiversReport {
    /// The report of one domain's tally, over `window` seconds.
    pub fn new(tally: &DomainTally, window: std::time::Duration) -> ReceiversReport {
        let mut selectors: Vec<SelectorReport> = tally
            .selectors
            .iter()
            .map(|(selector, counted)| {
                let mut results: Vec<(&'static str, u64)> =
                    counted.results.iter().map(|(r, n)| (*r, *n)).collect();
                results.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                SelectorReport {
                    selector: selector.clone(),
                    signatures: counted.total(),
                    failed: counted.failed(),
                    results,
                    reporters: counted.by_reporter(),
                }
            })
            .collect();
        // The named selectors by count, then `_unknown` and `_other`.
        selectors.sort_by(|a, b| {
            let special = |s: &SelectorReport| s.selector == UNKNOWN || s.selector == OTHER;
            special(a)
                .cmp(&special(b))
                .then(b.signatures.cmp(&a.signatures))
                .then(a.selector.cmp(&b.selector))
        });
        let mut reporters: Vec<ReporterReport> = tally
            .reporters
            .iter()
            .map(|(org, messages)| ReporterReport {
                org: org.clone(),
                messages: *messages,
            })
            .collect();
        reporters.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.org.cmp(&b.org)));
        ReceiversReport {
            window: window_words(window),
            messages: tally.message_count(),
            dkim_passed: tally.dkim_passed(),
            spf_passed_dkim_failed: tally.messages.get(&("fail", "pass")).copied().unwrap_or(0),
            selectors,
            reporters,
            not_configured: tally.unlisted.clone(),
            last_report: crate::logging::rfc3339_at(tally.last_report as f64),
        }
    }

    /// The share of messages that passed DKIM, in percent, when there were messages.
    pub fn dkim_pass_percent(&self) -> Option<f64> {
        (self.messages > 0).then(|| self.dkim_passed as f64 * 100.0 / self.messages as f64)
    }

    /// One line: "210 messages, 24% passed DKIM, from google.com, microsoft.com".
    pub fn summary(&self) -> String {
        let passed = match self.dkim_pass_percent() {
            Some(share) => format!(", {share:.0}% passed DKIM"),
            None => String::new(),
        };
        let reporters: Vec<&str> = self
            .reporters
            .iter()
            .take(5)
            .map(|r| r.org.as_str())
            .collect();
        let more = self.reporters.len().saturating_sub(5);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "{} message{}{passed}, reported by {}{more}",
            self.messages,
            if self.messages == 1 { "" } else { "s" },
            reporters.join(", ")
        )
    }
}

impl SelectorReport {
    /// "170 signatures, 160 failed (fail 160, pass 10)".
    pub fn summary(&self) -> String {
        let results: Vec<String> = self
            .results
            .iter()
            .map(|(result, n)| format!("{result} {n}"))
            .collect();
        format!(
            "{} signature{}, {} failed ({})",
            self.signatures,
            if self.signatures == 1 { "" } else { "s" },
            self.failed,
            results.join(", ")
        )
    }
}

impl Report {
    /// Adds what receivers reported about each domain, from `tally` over `window`; nothing
    /// when no DMARC source is configured.
    pub fn with_receivers(mut self, receivers: Option<(&Tally, std::time::Duration)>) -> Report {
        let Some((tally, window)) = receivers else {
            return self;
        };
        for domain in &mut self.domains {
            domain.receivers = tally
                .domains
                .get(&domain.domain)
                .map(|t| ReceiversReport::new(t, window));
        }
        self
    }
}

/// A window in words: whole days as days, anything else as the config writes durations.
fn window_words(window: std::time::Duration) -> String {
    let seconds = window.as_secs();
    match seconds / 86400 {
        1 if seconds.is_multiple_of(86400) => "1 day".to_string(),
        days if days > 0 && seconds.is_multiple_of(86400) => format!("{days} days"),
        _ => format_duration(window),
    }
}
