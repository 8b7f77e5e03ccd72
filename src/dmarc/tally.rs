//! What receivers reported about each watched domain, counted from the reports the sources hold.
//!
//! A tally is computed afresh from everything held (a few thousand reports for a big sender
//! take milliseconds), so nothing here is stored between readings and a restart that reads the
//! sources again gives the same numbers. Counting follows the contract:
//!
//! - a report counts once, whichever sources hold it and however often (reporter and report ID);
//! - it counts while its period ended within the window;
//! - a row's messages count to its header From domain when that domain is watched; the
//!   DMARC-evaluated `dkim` and `spf` results are `pass` or else `fail`;
//! - a signature counts to its `d=` domain when that domain is watched, by selector and result;
//!   a result outside RFC 8601's list counts as `_other`, a signature without a selector as
//!   `_unknown`;
//! - a domain has series for at most `max_selectors_per_domain` selectors: its listed ones
//!   first, then the most reported; the rest sum into `_other`.
//!
//! Nothing a report says can add a domain, and what it can add per domain is bounded, so no
//! report can grow the series or the records checked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::report::Report;
use crate::state::Receivers;

/// DKIM results a receiver may report (RFC 7489 appendix C, `DKIMResultType`).
pub const RESULTS: [&str; 7] = [
    "pass",
    "fail",
    "neutral",
    "policy",
    "temperror",
    "permerror",
    "none",
];
/// The selector of signatures whose report names none.
pub const UNKNOWN: &str = "_unknown";
/// The selector past the cap, and the result outside [`RESULTS`].
pub const OTHER: &str = "_other";
/// A report whose period ends further ahead than this is not believed: it would stay in the
/// window for ever.
pub const FUTURE_SLACK_SECONDS: u64 = 24 * 3600;

/// How reports are judged: the `dmarc:` settings and the time.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    /// Unix time now.
    pub now: u64,
    /// Reports whose period ended within this many seconds count.
    pub window: u64,
    /// `failing_at_receivers` above this share of failed signatures…
    pub fail_share: f64,
    /// …over at least this many.
    pub min_messages: u64,
    /// Selectors per domain with series of their own.
    pub max_selectors: usize,
}

impl Judging {
    /// How the `dmarc:` settings judge reports at unix time `now`.
    pub fn new(settings: &crate::config::Dmarc, now: u64) -> Judging {
        Judging {
            now,
            window: settings.window.as_secs(),
            fail_share: settings.fail_share.0,
            min_messages: settings.min_messages,
            max_selectors: settings.max_selectors_per_domain,
        }
    }

    /// Whether a report whose period ended at `end` counts now.
    pub fn in_window(&self, end: u64) -> bool {
        end.saturating_add(self.window) >= self.now
            && end <= self.now.saturating_add(FUTURE_SLACK_SECONDS)
    }
}

/// The watched domains, each with the selectors its records list.
pub type Watched<'a> = HashMap<&'a str, HashSet<&'a str>>;

/// What the reports in the window say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Per watched domain that reports mention.
    pub domains: BTreeMap<String, DomainTally>,
    /// Distinct reports in the window, per source.
    pub reports: BTreeMap<String, usize>,
}

/// What receivers reported about one domain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainTally {
    /// Messages by DMARC-evaluated (dkim, spf) result, each `pass` or `fail`.
    pub messages: BTreeMap<(&'static str, &'static str), u64>,
    /// Signatures by selector (or [`UNKNOWN`], [`OTHER`]).
    pub selectors: BTreeMap<String, SelectorTally>,
    /// Messages per reporter.
    pub reporters: BTreeMap<String, u64>,
    /// The end of the newest reported period about the domain.
    pub last_report: u64,
    /// Selectors seen signing that the domain's records do not list, most reported first
    /// (within the cap).
    pub unlisted: Vec<String>,
}

/// What receivers reported about one selector's signatures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectorTally {
    /// Signatures by result ([`RESULTS`] or [`OTHER`]).
    pub results: BTreeMap<&'static str, u64>,
    /// Per reporter: (failed, all) signatures.
    pub reporters: BTreeMap<String, (u64, u64)>,
}

impl SelectorTally {
    /// Signatures reported.
    pub fn total(&self) -> u64 {
        self.results.values().sum()
    }

    /// Signatures that failed: `fail` or `permerror`.
    pub fn failed(&self) -> u64 {
        ["fail", "permerror"]
            .iter()
            .filter_map(|r| self.results.get(r))
            .sum()
    }

    /// Whether receivers fail the selector: more than `fail_share` of at least `min_messages`.
    pub fn failing(&self, judging: &Judging) -> bool {
        let total = self.total();
        total >= judging.min_messages && self.failed() as f64 > judging.fail_share * total as f64
    }

    /// "Google 120 of 130 failed, Microsoft 40 of 40 failed": the reporters, most failures
    /// first, five at most.
    pub fn by_reporter(&self) -> String {
        let mut reporters: Vec<(&String, &(u64, u64))> = self.reporters.iter().collect();
        reporters.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(b.1.1.cmp(&a.1.1)).then(a.0.cmp(b.0)));
        let mut parts: Vec<String> = reporters
            .iter()
            .take(5)
            .map(|(org, (failed, total))| format!("{org} {failed} of {total} failed"))
            .collect();
        if reporters.len() > 5 {
            parts.push(format!("{} more reporters", reporters.len() - 5));
        }
        parts.join(", ")
    }

    fn add(&mut self, other: &SelectorTally) {
        for (result, n) in &other.results {
            *self.results.entry(result).or_default() += n;
        }
        for (org, (failed, total)) in &other.reporters {
            let entry = self.reporters.entry(org.clone()).or_default();
            entry.0 += failed;
            entry.1 += total;
        }
    }
}

impl DomainTally {
    /// Messages reported.
    pub fn message_count(&self) -> u64 {
        self.messages.values().sum()
    }

    /// Messages whose DKIM passed DMARC's evaluation.
    pub fn dkim_passed(&self) -> u64 {
        self.messages
            .iter()
            .filter(|((dkim, _), _)| *dkim == "pass")
            .map(|(_, n)| n)
            .sum()
    }
}

/// What the count says of the record of `selector` under `domain`, when reports name it.
pub fn receivers(
    tally: &Tally,
    judging: &Judging,
    domain: &str,
    selector: &str,
) -> Option<Receivers> {
    let counted = tally.domains.get(domain)?.selectors.get(selector)?;
    Some(Receivers {
        failed: counted.failed(),
        total: counted.total(),
        by_reporter: counted.by_reporter(),
        failing: counted.failing(judging),
    })
}

/// Counts the reports `held` by each source (its name and its reports) for the `watched`
/// domains.
pub fn tally<'a>(
    held: impl IntoIterator<Item = (&'a str, &'a [Arc<Report>])>,
    watched: &Watched<'_>,
    judging: &Judging,
) -> Tally {
    let mut counted: HashSet<(&str, &str)> = HashSet::new();
    let mut out = Tally::default();
    for (source, reports) in held {
        let mut distinct: HashSet<(&str, &str)> = HashSet::new();
        for report in reports.iter().filter(|r| judging.in_window(r.end)) {
            let key = (report.org_name.as_str(), report.report_id.as_str());
            distinct.insert(key);
            if counted.insert(key) {
                count(report, watched, &mut out.domains);
            }
        }
        out.reports.insert(source.to_string(), distinct.len());
    }
    for (name, domain) in &mut out.domains {
        let listed = watched.get(name.as_str());
        cap(domain, listed, judging.max_selectors);
    }
    out
}

/// Adds one report's rows to the watched domains it is about.
fn count(report: &Report, watched: &Watched<'_>, domains: &mut BTreeMap<String, DomainTally>) {
    for row in &report.rows {
        if watched.contains_key(row.header_from.as_str()) {
            let domain = domain_tally(domains, &row.header_from, report);
            let dkim = pass_or_fail(row.dkim.as_deref());
            let spf = pass_or_fail(row.spf.as_deref());
            *domain.messages.entry((dkim, spf)).or_default() += row.count;
            *domain.reporters.entry(report.org_name.clone()).or_default() += row.count;
        } else {
            tracing::debug!(
                reporter = %report.org_name,
                report_id = %report.report_id,
                domain = %row.header_from,
                "a report row about a domain not watched is ignored"
            );
        }
        for signature in &row.signatures {
            if !watched.contains_key(signature.domain.as_str()) {
                continue;
            }
            let domain = domain_tally(domains, &signature.domain, report);
            let selector = signature.selector.as_deref().unwrap_or(UNKNOWN);
            let result = RESULTS
                .iter()
                .find(|r| **r == signature.result)
                .copied()
                .unwrap_or(OTHER);
            let tally = match domain.selectors.get_mut(selector) {
                Some(tally) => tally,
                None => domain.selectors.entry(selector.to_string()).or_default(),
            };
            *tally.results.entry(result).or_default() += row.count;
            let reporter = tally.reporters.entry(report.org_name.clone()).or_default();
            if matches!(result, "fail" | "permerror") {
                reporter.0 += row.count;
            }
            reporter.1 += row.count;
        }
    }
}

/// The domain's tally, noting that `report` is about it.
fn domain_tally<'t>(
    domains: &'t mut BTreeMap<String, DomainTally>,
    name: &str,
    report: &Report,
) -> &'t mut DomainTally {
    if !domains.contains_key(name) {
        domains.insert(name.to_string(), DomainTally::default());
    }
    let domain = domains.get_mut(name).expect("inserted above");
    domain.last_report = domain.last_report.max(report.end);
    domain
}

/// `pass`, or `fail` for anything else (a receiver that evaluated nothing did not pass).
fn pass_or_fail(result: Option<&str>) -> &'static str {
    match result {
        Some("pass") => "pass",
        _ => "fail",
    }
}

/// Keeps `max` selectors of the domain (its `listed` ones first, then the most reported) and
/// sums the rest into [`OTHER`]; notes the kept ones that are not listed.
fn cap(domain: &mut DomainTally, listed: Option<&HashSet<&str>>, max: usize) {
    let is_listed = |s: &str| listed.is_some_and(|l| l.contains(s));
    let mut ranked: Vec<(String, u64)> = domain
        .selectors
        .iter()
        .filter(|(s, _)| s.as_str() != UNKNOWN)
        .map(|(s, t)| (s.clone(), t.total()))
        .collect();
    ranked.sort_by(|a, b| {
        is_listed(&b.0)
            .cmp(&is_listed(&a.0))
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    for (selector, _) in ranked.iter().skip(max) {
        if let Some(tally) = domain.selectors.remove(selector) {
            domain
                .selectors
                .entry(OTHER.to_string())
                .or_default()
                .add(&tally);
        }
    }
    domain.unlisted = ranked
        .into_iter()
        .take(max)
        .map(|(s, _)| s)
        .filter(|s| !is_listed(s))
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmarc::report::{Row, Signature};

    fn report(org: &str, id: &str, end: u64, rows: Vec<Row>) -> Arc<Report> {
        Arc::new(Report {
            org_name: org.into(),
            report_id: id.into(),
            begin: end - 86400,
            end,
            domain: "example.com".into(),
            rows,
        })
    }

    fn row(count: u64, from: &str, dkim: &str, signatures: &[(&str, Option<&str>, &str)]) -> Row {
        Row {
            count,
            header_from: from.into(),
            dkim: Some(dkim.into()),
            spf: Some("pass".into()),
            signatures: signatures
                .iter()
                .map(|(d, s, r)| Signature {
                    domain: (*d).into(),
                    selector: s.map(str::to_string),
                    result: (*r).into(),
                })
                .collect(),
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn judging(max_selectors: usize) -> Judging {
        Judging {
            now: NOW,
            window: 7 * 86400,
            fail_share: 0.2,
            min_messages: 50,
            max_selectors,
        }
    }

    #[test]
    fn counts_once_per_report_in_the_window_for_watched_domains() {
        let watched: Watched = [("example.com", HashSet::from(["s1"]))].into();
        let google = report(
            "google.com",
            "1",
            NOW - 3600,
            vec![
                row(
                    120,
                    "example.com",
                    "fail",
                    &[("example.com", Some("s1"), "fail")],
                ),
                row(
                    10,
                    "example.com",
                    "pass",
                    &[("example.com", Some("s1"), "pass")],
                ),
                // Not watched: neither the row nor its signature counts.
                row(99, "other.org", "fail", &[("other.org", Some("x"), "fail")]),
            ],
        );
        let old = report(
            "google.com",
            "old",
            NOW - 8 * 86400,
            vec![row(5, "example.com", "pass", &[])],
        );
        let held_a = vec![google.clone(), old];
        let held_b = vec![google];
        let tally = tally(
            [("a", held_a.as_slice()), ("b", held_b.as_slice())],
            &watched,
            &judging(20),
        );
        assert_eq!(
            tally.reports,
            BTreeMap::from([("a".into(), 1), ("b".into(), 1)])
        );
        assert_eq!(tally.domains.len(), 1);
        let domain = &tally.domains["example.com"];
        assert_eq!(domain.message_count(), 130);
        assert_eq!(domain.dkim_passed(), 10);
        assert_eq!(domain.last_report, NOW - 3600);
        let s1 = &domain.selectors["s1"];
        assert_eq!((s1.failed(), s1.total()), (120, 130));
        assert!(s1.failing(&judging(20)));
        assert_eq!(s1.by_reporter(), "google.com 120 of 130 failed");
        assert!(domain.unlisted.is_empty());
    }

    #[test]
    fn selectors_are_capped_results_normalised() {
        let watched: Watched = [("example.com", HashSet::from(["listed"]))].into();
        let rows = vec![
            row(
                1,
                "example.com",
                "pass",
                &[
                    ("example.com", Some("listed"), "pass"),
                    ("example.com", Some("big"), "pass"),
                    ("example.com", Some("small"), "weird"),
                    ("example.com", None, "pass"),
                ],
            ),
            row(
                5,
                "example.com",
                "pass",
                &[("example.com", Some("big"), "pass")],
            ),
        ];
        let held = vec![report("x", "1", NOW, rows)];
        let tally = tally([("a", held.as_slice())], &watched, &judging(2));
        let domain = &tally.domains["example.com"];
        let names: Vec<&str> = domain.selectors.keys().map(String::as_str).collect();
        assert_eq!(names, ["_other", "_unknown", "big", "listed"]);
        assert_eq!(
            domain.selectors["_other"].results,
            BTreeMap::from([("_other", 1)])
        );
        assert_eq!(domain.unlisted, ["big"]);
        assert!(
            !domain.selectors["big"].failing(&judging(2)),
            "under min_messages"
        );
    }

    #[test]
    fn the_future_is_not_believed() {
        let judging = judging(20);
        assert!(judging.in_window(NOW + 3600));
        assert!(!judging.in_window(NOW + 2 * 86400));
        assert!(judging.in_window(NOW - 7 * 86400));
        assert!(!judging.in_window(NOW - 7 * 86400 - 1));
    }
}
