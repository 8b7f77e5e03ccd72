//! Logging as Prometheus exporters do it: `--log.level` and `--log.format` (logfmt or json),
//! and how lists of names read in a log field.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `--log.level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Everything, including each lookup.
    Debug,
    /// Start, stop, reloads and problems.
    Info,
    /// Only problems.
    Warn,
    /// Only errors.
    Error,
}

/// `--log.format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `ts=… level=… msg=… key=value`.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Up to five names, then how many more: a list of names in one log field.
pub fn short_list(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(",");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// Installs the global subscriber, writing to stderr.
pub fn init(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    };
    // Libraries log at their own levels; only ours follow --log.level below info.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level.min(Level::INFO))
        .with_target(env!("CARGO_CRATE_NAME"), level);
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let result = match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(EventFormat { json: true })
                    .with_writer(std::io::stderr),
            )
            .with(filter)
            .try_init(),
        LogFormat::Logfmt => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(EventFormat { json: false })
                    .with_writer(std::io::stderr),
            )
            .with(filter)
            .try_init(),
    };
    // Already initialised (tests): keep the existing subscriber.
    let _ = result;
}

/// Formats events as logfmt (`ts=… level=… source=… msg=… key=value`) or as one JSON object a
/// line, with the same keys in the same order: `ts`, `level`, `source`, `msg`, then the event's
/// fields (in JSON, numbers and booleans as such, the rest as text).
pub struct EventFormat {
    /// JSON instead of logfmt.
    pub json: bool,
}

impl<S, N> FormatEvent<S, N> for EventFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let head = [
            ("ts", serde_json::Value::from(rfc3339_now())),
            ("level", meta.level().as_str().to_ascii_lowercase().into()),
            ("source", meta.target().into()),
        ];
        let message = fields.message.map(|m| ("msg".to_string(), m.into()));
        let all = head
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(message)
            .chain(fields.fields);
        if self.json {
            let object: serde_json::Map<String, serde_json::Value> = all.collect();
            writeln!(writer, "{}", serde_json::Value::Object(object))
        } else {
            let mut line = String::new();
            for (key, value) in all {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(&key);
                line.push('=');
                line.push_str(&quote(&text));
            }
            writeln!(writer, "{line}")
        }
    }
}

/// An event's message and fields, in the order they were given.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Vec<(String, serde_json::Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}").into());
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.fields.push((field.name().to_string(), value));
        }
    }
}

/// Quotes a logfmt value when it needs it.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && c != '"' && c != '=' && c != '\\' && !c.is_control());
    if plain {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

/// The current UTC time as RFC 3339 with milliseconds.
pub fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_millis())
}

/// Unix time `at` as RFC 3339 UTC, with milliseconds.
pub fn rfc3339_at(at: f64) -> String {
    let at = at.max(0.0);
    rfc3339(at as u64, (at.fract() * 1000.0) as u32)
}

fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_481_096, 123), "2026-11-24T00:44:56.123Z");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
    }
}
