//! Command-line flags, named as Prometheus exporters name them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::{LogFormat, LogLevel};
use crate::records::shard::Shard;

/// Default `--web.listen-address`: all interfaces, port 10053.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":10053";

/// Prometheus exporter for DKIM DNS records.
#[derive(Debug, Parser)]
#[command(name = "dkim_exporter", version = crate::VERSION, about, long_about = None, args_override_self = true)]
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

    /// TLS and basic auth settings (exporter-toolkit web config format).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Path under which metrics are served.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics", value_parser = telemetry_path)]
    pub telemetry_path: String,

    /// Only log messages at or above this level.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    pub log_format: LogFormat,

    /// I/N: check only the domains whose stable hash modulo N is I; N replicas with
    /// I = 0…N−1 cover every domain exactly once. /probe is not sharded.
    #[arg(long = "shard", value_name = "I/N", default_value = "0/1")]
    pub shard: Shard,

    /// Run a one-shot command instead of the exporter.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-shot commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a domain's DKIM records now, print what every resolver returned, each problem and
    /// its fix; exit 0 when all is correct, 1 when something is not, 2 for bad usage.
    Check(CheckArgs),
}

/// `dkim_exporter check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The domain to check; with --config.file and no domain, every configured domain.
    pub domain: Option<String>,

    /// A DKIM selector to check (repeatable); without it, the domain's selectors from --config.file.
    #[arg(long = "selector", value_name = "SELECTOR")]
    pub selectors: Vec<String>,

    /// The provider whose records the selectors should hold (ses, sendgrid, microsoft365,
    /// mailchimp, mandrill, brevo, google; a preset's own selectors when none are given);
    /// without it, the selectors are expected to hold DKIM keys as TXT.
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,

    /// The SES region of the identity, for regions with a regional DKIM domain.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// The SendGrid account of --provider sendgrid (like u1234.wl001).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,

    /// The tenant's DKIM domain of --provider microsoft365 (like contoso.onmicrosoft.com).
    #[arg(long = "tenant-domain", value_name = "DOMAIN")]
    pub tenant_domain: Option<String>,

    /// Discover the domains and their DKIM tokens from Amazon SES in this region (API v2),
    /// and print SES's DKIM status above the records. With DOMAIN, only that identity.
    #[arg(long = "ses-region", value_name = "REGION")]
    pub ses_region: Option<String>,

    /// The AWS shared-config profile for --ses-region (default: the standard credential chain).
    #[arg(long = "ses-profile", value_name = "PROFILE", requires = "ses_region")]
    pub ses_profile: Option<String>,

    /// Another SES API endpoint for --ses-region (a VPC endpoint, a test server).
    #[arg(long = "ses-endpoint", value_name = "URL", requires = "ses_region")]
    pub ses_endpoint: Option<String>,

    /// The expected CNAME target of the selectors, for a provider with no preset; may be a
    /// template with {selector}, {domain} and {domain_dashed}.
    #[arg(long, value_name = "TARGET", conflicts_with = "provider")]
    pub cname: Option<String>,

    /// How long one DNS query may take (like 2s); default: the config's, or 5s.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub timeout: Option<std::time::Duration>,

    /// Try the common DKIM selectors (every preset's, and default, dkim, mail, k1, s1, …)
    /// under DOMAIN through the first resolver, and say which exist and which provider each
    /// looks like. SES tokens are random and cannot be found this way.
    #[arg(long = "discover", requires = "domain", conflicts_with_all = ["selectors", "provider", "cname", "ses_region"])]
    pub guess_selectors: bool,

    /// DMARC aggregate reports to read (a report file, a saved message, or a directory of
    /// them; repeatable): what receivers reported is printed with each domain, and the
    /// selectors they saw signing are checked too.
    #[arg(long = "dmarc-reports", value_name = "PATH")]
    pub dmarc_reports: Vec<PathBuf>,

    /// Print only the records that are not correct, and their domains.
    #[arg(long = "problems-only")]
    pub problems_only: bool,

    /// A resolver to ask, IP or IP:port (repeatable); default: the config's, or the public ones.
    #[arg(long = "resolver", value_name = "ADDRESS")]
    pub resolvers: Vec<String>,

    /// A config file to take domains, selectors, resolvers and settings from.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

/// `check --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people, coloured on a terminal.
    Text,
    /// JSON for scripts.
    Json,
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
    fn shards_are_i_of_n() {
        let cli = Cli::try_parse_from(["dkim_exporter", "--shard=1/3"]).unwrap();
        assert_eq!(cli.shard, Shard { index: 1, count: 3 });
        let err = Cli::try_parse_from(["dkim_exporter", "--shard", "3/3"]).unwrap_err();
        assert!(err.to_string().contains("use I/N"), "{err}");
    }

    #[test]
    fn defaults_follow_the_contract() {
        let cli = Cli::try_parse_from(["dkim_exporter"]).unwrap();
        assert_eq!(cli.shard, Shard::default());
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

    #[test]
    fn the_last_single_value_wins() {
        // As with Prometheus's flags, so an image's entrypoint can be extended.
        let cli = Cli::try_parse_from([
            "dkim_exporter",
            "--config.file=/etc/a.yml",
            "--config.file=/etc/b.yml",
            "--log.level=warn",
            "--log.level=debug",
        ])
        .unwrap();
        assert_eq!(cli.config_file, PathBuf::from("/etc/b.yml"));
        assert_eq!(cli.log_level, LogLevel::Debug);
    }

    #[test]
    fn check_subcommand() {
        let cli = Cli::try_parse_from([
            "dkim_exporter",
            "check",
            "example.com",
            "--selector",
            "a",
            "--selector=b",
            "--provider=ses",
            "--resolver=127.0.0.1:5353",
            "--format=json",
        ])
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check");
        };
        assert_eq!(args.domain.as_deref(), Some("example.com"));
        assert_eq!(args.selectors, ["a", "b"]);
        assert_eq!(args.provider.as_deref(), Some("ses"));
        assert_eq!(args.resolvers, ["127.0.0.1:5353"]);
        assert_eq!(args.format, OutputFormat::Json);
        assert!(Cli::try_parse_from(["dkim_exporter", "check", "--format=xml"]).is_err());
    }
}
