//! The `dkim_dmarc_*` series: each `dmarc:` source's health, and what receivers reported about
//! each watched domain in the window.

use super::text::{Family, bool_value};
use super::{
    DMARC_LAST_REPORT_TIMESTAMP_SECONDS, DMARC_MESSAGES, DMARC_REPORT_ERRORS_TOTAL, DMARC_REPORTS,
    DMARC_SIGNATURES, DMARC_SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS, DMARC_SOURCE_UP, Metrics,
};
use crate::dmarc::REASONS;
use crate::dmarc::watch::{Counted, Reading};

impl Metrics {
    /// The `dkim_dmarc_*` series of the sources' `readings` and of the latest count. The count
    /// holds this replica's domains alone (it is made against its records), so an alert on a
    /// domain fires once, not once per replica.
    pub fn render_dmarc(out: &mut String, readings: &[Reading], counted: &Counted) {
        let mut family = Family::new(out, DMARC_SOURCE_UP);
        for reading in readings {
            if let Some(up) = reading.up {
                family.sample(&[&reading.source.name], bool_value(up));
            }
        }
        let mut family = Family::new(out, DMARC_SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS);
        for reading in readings {
            if let Some(at) = reading.last_success {
                family.sample(&[&reading.source.name], at);
            }
        }
        let mut family = Family::new(out, DMARC_REPORTS);
        for reading in readings.iter().filter(|r| r.last_success.is_some()) {
            let name = &reading.source.name;
            let reports = counted.tally.reports.get(name).copied().unwrap_or(0);
            family.sample(&[name], reports as f64);
        }
        let mut family = Family::new(out, DMARC_REPORT_ERRORS_TOTAL);
        for reading in readings {
            for reason in REASONS {
                let n = reading.errors.get(reason).copied().unwrap_or(0);
                family.sample(&[&reading.source.name, reason], n as f64);
            }
        }
        let mut family = Family::new(out, DMARC_MESSAGES);
        for (domain, tally) in &counted.tally.domains {
            if tally.messages.is_empty() {
                continue;
            }
            for dkim in ["pass", "fail"] {
                for spf in ["pass", "fail"] {
                    let n = tally.messages.get(&(dkim, spf)).copied().unwrap_or(0);
                    family.sample(&[domain, dkim, spf], n as f64);
                }
            }
        }
        let mut family = Family::new(out, DMARC_SIGNATURES);
        for (domain, tally) in &counted.tally.domains {
            for (selector, selector_tally) in &tally.selectors {
                for (result, n) in &selector_tally.results {
                    family.sample(&[domain, selector, result], *n as f64);
                }
            }
        }
        let mut family = Family::new(out, DMARC_LAST_REPORT_TIMESTAMP_SECONDS);
        for (domain, at) in &counted.last_report {
            family.sample(&[domain], *at as f64);
        }
    }
}
