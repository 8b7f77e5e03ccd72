//! Logging as Prometheus exporters do it: `--log.level` and `--log.format` (logfmt or json).

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
                    .event_format(Json)
                    .with_writer(std::io::stderr),
            )
            .with(filter)
            .try_init(),
        LogFormat::Logfmt => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(Logfmt)
                    .with_writer(std::io::stderr),
            )
            .with(filter)
            .try_init(),
    };
    // Already initialised (tests): keep the existing subscriber.
    let _ = result;
}

/// Formats events as logfmt.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
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
        write!(
            writer,
            "ts={} level={} source={}",
            rfc3339_now(),
            meta.level().as_str().to_ascii_lowercase(),
            meta.target()
        )?;
        let mut visitor = LogfmtVisitor {
            message: None,
            fields: String::new(),
        };
        event.record(&mut visitor);
        if let Some(message) = visitor.message {
            write!(writer, " msg={}", quote(&message))?;
        }
        writeln!(writer, "{}", visitor.fields)
    }
}

/// Formats events as one JSON object per line, with the keys logfmt uses: `ts`, `level`,
/// `source`, `msg`, then the event's fields (numbers and booleans as such, the rest as text).
pub struct Json;

impl<S, N> FormatEvent<S, N> for Json
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
        let mut object = serde_json::Map::new();
        object.insert("ts".into(), rfc3339_now().into());
        object.insert(
            "level".into(),
            meta.level().as_str().to_ascii_lowercase().into(),
        );
        object.insert("source".into(), meta.target().into());
        let mut visitor = JsonVisitor {
            message: None,
            fields: serde_json::Map::new(),
        };
        event.record(&mut visitor);
        if let Some(message) = visitor.message {
            object.insert("msg".into(), message.into());
        }
        object.extend(visitor.fields);
        let line = serde_json::Value::Object(object).to_string();
        writeln!(writer, "{line}")
    }
}

struct JsonVisitor {
    message: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Visit for JsonVisitor {
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

impl JsonVisitor {
    fn push(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

struct LogfmtVisitor {
    message: Option<String>,
    fields: String,
}

impl Visit for LogfmtVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl LogfmtVisitor {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.push(' ');
            self.fields.push_str(field.name());
            self.fields.push('=');
            self.fields.push_str(&quote(&value));
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
