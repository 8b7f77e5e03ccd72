//! The selectors that only receivers' reports name, as records to check.

use super::tally::Tally;
use crate::config::{check_record_name, parse_selector};
use crate::provider::Expected;
use crate::records::{Record, Records};

/// `records` with, under each domain, the selectors the count found signing its mail that no
/// other source lists, each a record whose expected content is a usable DKIM key, as TXT or at
/// the end of a CNAME chain; `None` when there are none. A selector that is not a valid DNS
/// name is left out: its signatures still count, but there is no record to look up.
pub fn with_unlisted(records: &Records, tally: &Tally) -> Option<Records> {
    let mut out: Option<Records> = None;
    for (i, domain) in records.domains.iter().enumerate() {
        let Some(counted) = tally.domains.get(&domain.name) else {
            continue;
        };
        for selector in &counted.unlisted {
            let Ok(selector) = parse_selector(selector) else {
                continue;
            };
            if check_record_name(&selector, &domain.name).is_err()
                || domain.records.iter().any(|r| r.selector == selector)
            {
                continue;
            }
            let out = out.get_or_insert_with(|| records.clone());
            out.domains[i].records.push(Record {
                selector,
                expected: Expected::Txt,
                from_ses: None,
                from_dmarc: true,
            });
        }
    }
    out
}
