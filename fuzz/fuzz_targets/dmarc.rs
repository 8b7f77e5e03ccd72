//! Fuzzes the DMARC report reader with arbitrary bytes: as an item (`dmarc::unpack::reports`:
//! XML, gzip, zip) and as a message (`dmarc::message::reports`: MIME), within small limits so
//! that each input is read quickly.
//!
//! Checks that neither panics, that every result is a report or one of the contract's three
//! reasons, and that a report read has a domain.
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
});
