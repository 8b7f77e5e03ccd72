//! The Prometheus text exposition format: families, samples, escaped label values, and numbers
//! written exactly as `f64`'s `Display` writes them, without its cost for whole numbers.

use std::fmt::Write as _;

use super::Metric;

/// Writes one family: header and samples, or nothing when it has no samples.
pub struct Family<'a> {
    /// Where the text goes.
    pub(super) out: &'a mut String,
    /// The family's description: name, help, type and labels.
    metric: Metric,
    /// Whether the `# HELP` and `# TYPE` lines have been written.
    pub(super) started: bool,
}

impl<'a> Family<'a> {
    /// A family whose header is written with its first sample.
    pub fn new(out: &'a mut String, metric: Metric) -> Self {
        Family::resume(out, metric, false)
    }

    /// A family whose header has been written already when `started`.
    pub(super) fn resume(out: &'a mut String, metric: Metric, started: bool) -> Self {
        Family {
            out,
            metric,
            started,
        }
    }

    /// Writes one sample with `values` for the family's labels, in their order.
    pub fn sample(&mut self, values: &[&str], value: f64) {
        debug_assert_eq!(
            values.len(),
            self.metric.labels.len(),
            "{}",
            self.metric.name
        );
        let out = &mut *self.out;
        let name = self.metric.name;
        if !self.started {
            self.started = true;
            for line in ["# HELP ", name, " ", self.metric.help, "\n"] {
                out.push_str(line);
            }
            for line in ["# TYPE ", name, " ", self.metric.kind.as_str(), "\n"] {
                out.push_str(line);
            }
        }
        out.push_str(name);
        let mut separator = "{";
        for (label, value) in self.metric.labels.iter().zip(values) {
            out.push_str(separator);
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
            separator = ",";
        }
        if !values.is_empty() {
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }
}

/// Escapes a label value as the text format wants: backslash, double quote and newline.
fn escape_label_value(out: &mut String, value: &str) {
    // Domain names, selectors and resolver names never need it: a quick look for anything at
    // or below '"' (which takes in '\n') or a backslash, then one copy. The look goes through
    // every byte without stopping early, which lets it run on whole vectors of bytes.
    let suspect = value
        .bytes()
        .fold(false, |found, b| found | (b <= b'"') | (b == b'\\'));
    if !suspect {
        out.push_str(value);
        return;
    }
    // The special characters are ASCII, so every cut below falls between characters.
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        out.push_str(escaped);
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

/// Below this, every integer is exact in an f64 and `Display` writes it as plain digits.
const PLAIN_INTEGER_LIMIT: f64 = 1e15;

/// Writes `value` exactly as f64's `Display` does: the text has always been written that way.
pub(super) fn write_value(out: &mut String, value: f64) {
    // Nearly every sample is 0, 1, a TTL or a key size: digits, without the float formatter.
    // Negative numbers (and -0, which `Display` writes as "-0") take the general path.
    if value.is_sign_positive() && value < PLAIN_INTEGER_LIMIT && value.fract() == 0.0 {
        // Exact: the value is a whole number below 2^53.
        let mut n = value as u64;
        let mut digits = [0u8; 16];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &digit in &digits[start..] {
            out.push(char::from(digit));
        }
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{value}");
    }
}

/// A boolean as a sample value.
pub fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RECORD_INFO;

    /// One `dkim_record_info` sample whose labels all hold `value`.
    fn info_with(value: &str) -> String {
        let mut out = String::new();
        Family::new(&mut out, RECORD_INFO).sample(&[value; 5], 1.0);
        out.lines().last().unwrap_or_default().to_string()
    }

    #[test]
    fn label_values_are_escaped() {
        for (value, escaped) in [
            ("", ""),
            ("plain", "plain"),
            ("\"", "\\\""),
            ("\\\\", "\\\\\\\\"),
            ("\n\n", "\\n\\n"),
            ("é\"ü\\ß\n€", "é\\\"ü\\\\ß\\n€"),
            ("end\\", "end\\\\"),
            (" !#", " !#"),
            ("a\"b\\c\nd", "a\\\"b\\\\c\\nd"),
        ] {
            let v = format!("\"{escaped}\"");
            let want = format!(
                "dkim_record_info{{domain={v},selector={v},resolver={v},record_type={v},value={v}}} 1"
            );
            assert_eq!(info_with(value), want, "{value:?}");
        }
    }

    #[test]
    fn a_family_without_samples_writes_nothing() {
        let mut out = String::new();
        let _ = Family::new(&mut out, RECORD_INFO);
        assert_eq!(out, "");
        Family::new(&mut out, crate::metrics::CHECK_ROUNDS_TOTAL).sample(&[], 3.0);
        assert_eq!(
            out,
            "# HELP dkim_check_rounds_total Completed check rounds.\n\
             # TYPE dkim_check_rounds_total counter\n\
             dkim_check_rounds_total 3\n"
        );
    }

    #[test]
    fn values_are_written_as_display_writes_them() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            300.0,
            f64::from(u32::MAX),
            2.0 / 3.0,
            1.0 / 3.0,
            0.1 + 0.2,
            1_732_400_000.123,
            1_732_400_000.0,
            999_999_999_999_999.0,
            1e15,
            1e15 + 1.0,
            9_007_199_254_740_993.0,
            (1u64 << 60) as f64,
            1e21,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            0.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        // Every kind of float, and every size of whole number.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from_bits(x));
            values.push((x >> (x % 64)) as f64);
            values.push((x % 100_000) as f64 / 1000.0);
        }
        for value in values {
            let mut out = String::new();
            write_value(&mut out, value);
            assert_eq!(out, value.to_string(), "{:#x}", value.to_bits());
        }
    }
}
