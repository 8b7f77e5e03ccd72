//! Command-line flags, named as Prometheus exporters name them.

use std::path::PathBuf;

use clap::Parser;

use crate::logging::{LogFormat, LogLevel};

/// Default `--web.listen-address`: all interfaces, port 10053.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":10053";

/// Prometheus exporter for DKIM DNS records.
#[derive(Debug, Parser)]
#[command(name = "dkim_exporter", version, about, long_about = None)]
pub struct Cli {
    /// The YAML config file.
    #[arg(
        long = "config.file",
        value_name = "FILE",
        default_value = "dkim_exporter.yaml"
    )]
    pub config_file: PathBuf,

    /// Load and validate the config, print the result, and exit 0 (valid) or 1.
    #[arg(long = "config.check")]
    pub config_check: bool,

    /// Address to listen on for HTTP ([host]:port). Repeat to listen on several.
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_addresses: Vec<String>,

    /// Path under which metrics are served.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = telemetry_path)]
    pub telemetry_path: String,

    /// Only log messages at or above this level.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    pub log_format: LogFormat,
}

fn telemetry_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err("must start with '/'".into());
    }
    if matches!(text, "/" | "/-/healthy" | "/-/ready") {
        return Err(format!("{text} is taken by another endpoint"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let cli = Cli::try_parse_from(["dkim_exporter"]).unwrap();
        assert_eq!(cli.config_file, PathBuf::from("dkim_exporter.yaml"));
        assert_eq!(cli.listen_addresses, [":10053"]);
        assert_eq!(cli.telemetry_path, "/metrics");
        assert_eq!(cli.log_level, LogLevel::Info);
        assert_eq!(cli.log_format, LogFormat::Logfmt);
        assert!(!cli.config_check);
    }

    #[test]
    fn repeatable_listen_address_and_bad_path() {
        let cli = Cli::try_parse_from([
            "dkim_exporter",
            "--web.listen-address=127.0.0.1:1",
            "--web.listen-address",
            "[::1]:2",
            "--log.format=json",
        ])
        .unwrap();
        assert_eq!(cli.listen_addresses, ["127.0.0.1:1", "[::1]:2"]);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(Cli::try_parse_from(["dkim_exporter", "--web.telemetry-path=metrics"]).is_err());
        assert!(Cli::try_parse_from(["dkim_exporter", "--log.level=trace"]).is_err());
    }
}
