//! Fuzzes `dkim_exporter::config::parse` with arbitrary text (invalid UTF-8 is replaced lossily).
//!
//! Checks that parsing never panics, and that every `ConfigError::Invalid` it returns carries a
//! 1-based position (line >= 1 and column >= 1).
#![no_main]

use dkim_exporter::config::{self, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(ConfigError::Invalid {
        line,
        column,
        message,
        ..
    }) = config::parse(&text, "fuzz.yaml")
    {
        assert!(line >= 1, "line {line} is not 1-based: {message}");
        assert!(column >= 1, "column {column} is not 1-based: {message}");
    }
});
