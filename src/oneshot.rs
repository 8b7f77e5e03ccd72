//! Checking once, now: `dkim_exporter check` for a person at a terminal or a cron job, and
//! `/probe` for Prometheus.
//!
//! The domain, selectors and resolvers come from the request (command line or query string),
//! from a config, or both (the request wins). Everything the request gives is validated by the
//! config loader itself, so the rules and messages are the same as for the file.

use std::io::IsTerminal as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cli::{CheckArgs, OutputFormat};
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::report::Report;
use crate::scheduler::{self, Work};
use crate::state::State;

/// The exit code when every record is correct.
pub const EXIT_CORRECT: u8 = 0;
/// The exit code when a problem was found (or a record could not be checked at all).
pub const EXIT_PROBLEM: u8 = 1;
/// The exit code for bad usage or an unreadable config.
pub const EXIT_USAGE: u8 = 2;

/// Runs the check and prints the report to stdout; returns the exit code.
pub async fn run(args: CheckArgs, nameserver_port: u16) -> u8 {
    let file = match &args.config_file {
        Some(path) => match config::load(path) {
            Ok(config) => Some(config),
            Err(e) => {
                eprintln!("dkim_exporter check: {e}");
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let config = match config_for(file.as_ref(), &target_of(&args)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("dkim_exporter check: {message}");
            return EXIT_USAGE;
        }
    };
    let report = check(config, nameserver_port).await;
    let text = match args.format {
        OutputFormat::Json => report.to_json(),
        OutputFormat::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            report.to_text(colour)
        }
    };
    #[allow(clippy::print_stdout)]
    {
        println!("{}", text.trim_end());
    }
    if report.ok {
        EXIT_CORRECT
    } else {
        EXIT_PROBLEM
    }
}

/// Checks every record of `config` once, all at once within each resolver's rate limit.
pub async fn check(mut config: Config, nameserver_port: u16) -> Report {
    // No spreading: a person is waiting.
    config.interval = Duration::ZERO;
    let metrics = match Metrics::new() {
        Ok(metrics) => Arc::new(metrics),
        Err(e) => {
            tracing::error!(error = %e, "setting up metrics");
            return Report::from_state(&State::default());
        }
    };
    let mut state = State::default();
    state.reconcile(&config);
    let state = Arc::new(RwLock::new(state));
    let work = Arc::new(Work::from_config(&config, &metrics, nameserver_port, None));
    scheduler::run_once(work, state.clone()).await;
    let state = state.read().unwrap_or_else(|e| e.into_inner());
    Report::from_state(&state)
}

/// What a check is asked to look at.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    /// The domain; `None` for every domain of the config.
    pub domain: Option<&'a str>,
    /// Selectors to check; empty for the domain's selectors from the config.
    pub selectors: Vec<&'a str>,
    /// The provider the selectors point at.
    pub provider: Option<&'a str>,
    /// The SES region.
    pub region: Option<&'a str>,
    /// Resolver addresses to ask instead of the config's.
    pub resolvers: Vec<&'a str>,
}

fn target_of(args: &CheckArgs) -> Target<'_> {
    Target {
        domain: args.domain.as_deref(),
        selectors: args.selectors.iter().map(String::as_str).collect(),
        provider: args.provider.as_deref(),
        region: args.region.as_deref(),
        resolvers: args.resolvers.iter().map(String::as_str).collect(),
    }
}

/// The config a request asks for, on top of `file` (the config file or the config in force).
pub fn config_for(file: Option<&Config>, target: &Target<'_>) -> Result<Config, String> {
    let args = target;
    if args.selectors.is_empty() && (args.provider.is_some() || args.region.is_some()) {
        return Err("provider and region describe selectors: give at least one selector".into());
    }

    // What the command line gives, written as config so the loader validates it.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut yaml = String::new();
    if !args.resolvers.is_empty() {
        yaml.push_str("resolvers:\n");
        for address in &args.resolvers {
            let address = quote(address);
            yaml.push_str(&format!("  - name: {address}\n    address: {address}\n"));
        }
    }
    if let (Some(domain), false) = (&args.domain, args.selectors.is_empty()) {
        yaml.push_str(&format!("domains:\n  - domain: {}\n", quote(domain)));
        if let Some(provider) = &args.provider {
            yaml.push_str(&format!("    provider: {}\n", quote(provider)));
            if let Some(region) = &args.region {
                yaml.push_str(&format!("    region: {}\n", quote(region)));
            }
            yaml.push_str("    selectors:\n");
            for selector in &args.selectors {
                yaml.push_str(&format!("      - {}\n", quote(selector)));
            }
        } else {
            yaml.push_str("    records:\n");
            for selector in &args.selectors {
                yaml.push_str(&format!("      - selector: {}\n", quote(selector)));
            }
        }
    }
    let given = config::parse(&yaml, "command line").map_err(|e| {
        // The generated text is not the user's: keep only what is wrong.
        match e {
            config::ConfigError::Invalid { message, .. } => message,
            other => other.to_string(),
        }
    })?;

    let mut config = file.cloned().unwrap_or_else(|| given.clone());
    if !args.resolvers.is_empty() {
        config.resolvers = given.resolvers.clone();
    }
    match &args.domain {
        Some(_) if !args.selectors.is_empty() => config.domains = given.domains,
        Some(domain) => {
            let name = config::normalise_name(domain, "domain")?;
            let configured =
                file.and_then(|f| f.domains.iter().find(|d| d.domain == name).cloned());
            match configured {
                Some(found) => config.domains = vec![found],
                None => {
                    return Err(format!(
                        "no selectors for {name}: give a selector, or configure the domain"
                    ));
                }
            }
        }
        None if file.is_some() => {}
        None => return Err("give a DOMAIN with --selector, or --config.file".into()),
    }
    if config.domains.is_empty() {
        return Err("the config lists no domains".into());
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Expected;

    fn args<'a>(
        domain: Option<&'a str>,
        selectors: &[&'a str],
        provider: Option<&'a str>,
    ) -> Target<'a> {
        Target {
            domain,
            selectors: selectors.to_vec(),
            provider,
            ..Target::default()
        }
    }

    fn config_for(target: &Target<'_>) -> Result<Config, String> {
        super::config_for(None, target)
    }

    #[test]
    fn command_line_records() {
        let config = config_for(&args(Some("Example.COM"), &["ABC"], Some("ses"))).unwrap();
        assert_eq!(config.domains[0].domain, "example.com");
        assert_eq!(
            config.domains[0].records[0].expected,
            Expected::Cname("abc.dkim.amazonses.com".into())
        );
        assert_eq!(config.resolvers.len(), 4);
        let config = config_for(&args(Some("example.org"), &["mail"], None)).unwrap();
        assert_eq!(config.domains[0].records[0].expected, Expected::Txt);
    }

    #[test]
    fn usage_errors() {
        assert!(config_for(&args(None, &[], None)).is_err());
        assert!(
            config_for(&args(Some("example.com"), &[], None))
                .unwrap_err()
                .contains("give a selector")
        );
        let err = config_for(&args(Some("example.com"), &["a b"], Some("ses"))).unwrap_err();
        assert!(err.contains("invalid selector \"a b\""), "{err}");
        let mut bad_resolver = args(Some("example.com"), &["a"], Some("ses"));
        bad_resolver.resolvers = vec!["dns.google"];
        let err = config_for(&bad_resolver).unwrap_err();
        assert!(err.contains("invalid resolver address"), "{err}");
    }
}
