//! Fuzzes the DMARC report reader with arbitrary bytes: as an item (`dmarc::unpack::reports`:
//! XML, gzip, zip), as a message (`dmarc::message::reports`: MIME), and as a source reads an
//! item with `authserv_id` (`dmarc::source::read_item`, through the Authentication-Results
//! check), within small limits so that each input is read quickly.
//!
//! Checks that none panics, that every result is a report or one of the contract's three
//! reasons, that a report read has a domain, and that a message not vouched for yields no report.
#![no_main]

use dkim_exporter::dmarc::{self, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        compressed: 64 * 1024,
        uncompressed: 1024 * 1024,
        files: 8,
    };
    let results = dmarc::reports(data, &limits)
        .into_iter()
        .chain(dmarc::message::reports(data, &limits));
    for result in results {
        match result {
            Ok(report) => assert!(!report.domain.is_empty(), "{report:?}"),
            Err(e) => assert!(
                ["not_a_report", "unparsable", "too_large"].contains(&e.reason()),
                "{e}"
            ),
        }
    }
    let outcome = dmarc::source::read_item(data, Some("mx.example.com"), &limits);
    if outcome.not_authenticated.is_some() {
        assert!(outcome.reports.is_empty());
    }
});
