//! Fuzzes `dkim_exporter::dkim::parse_key_record` and `looks_like_key_record` with arbitrary
//! text (invalid UTF-8 is replaced lossily).
//!
//! Checks that neither function panics, and that every key `parse_key_record` accepts has a
//! non-zero size (`bits > 0`).
#![no_main]

use dkim_exporter::dkim;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = dkim::looks_like_key_record(&text);
    if let Ok(key) = dkim::parse_key_record(&text) {
        assert!(key.bits > 0, "accepted key with zero bits: {key:?}");
    }
});
