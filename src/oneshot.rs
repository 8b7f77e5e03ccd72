//! Checking once, now: `dkim_exporter check` for a person at a terminal or a cron job, and
//! `/probe` for Prometheus.
//!
//! The domain, selectors and resolvers come from the command line, from a config, or both (the
//! command line wins); `targets::request` turns them into the records to check, with the
//! config file's own rules.

use std::io::IsTerminal as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cli::{CheckArgs, OutputFormat};
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::report::Report;
use crate::scheduler::{self, Work};
use crate::state::State;
use crate::targets::request::Request;
use crate::targets::{self, Targets};

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
    let (config, targets) = match what_to_check(file, &args) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("dkim_exporter check: {message}");
            return EXIT_USAGE;
        }
    };
    let report = check(config, &targets, nameserver_port).await;
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

/// The settings and resolvers to check with (the file's, or the defaults; `--resolver`
/// replaces the resolvers) and the records the command line asks for.
fn what_to_check(file: Option<Config>, args: &CheckArgs) -> Result<(Config, Targets), String> {
    let resolvers: Vec<&str> = args.resolvers.iter().map(String::as_str).collect();
    let resolvers = config::resolvers_at(&resolvers)?;
    let (mut config, configured) = match file {
        Some(file) => {
            let (config, targets) = targets::file::split(file);
            (config, Some(targets))
        }
        None => (Config::default(), None),
    };
    let request = Request {
        domain: args.domain.as_deref(),
        selectors: args.selectors.iter().map(String::as_str).collect(),
        provider: args.provider.as_deref(),
        region: args.region.as_deref(),
    };
    let targets = request.targets(configured.as_ref())?;
    if !resolvers.is_empty() {
        config.resolvers = resolvers;
    }
    Ok((config, targets))
}

/// Checks every record of `targets` once with `config`'s resolvers and settings, all at once
/// within each resolver's rate limit.
pub async fn check(mut config: Config, targets: &Targets, nameserver_port: u16) -> Report {
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
    state.reconcile(&config, targets);
    let state = Arc::new(RwLock::new(state));
    let work = Arc::new(Work::from_config(
        &config,
        targets,
        &metrics,
        nameserver_port,
        None,
    ));
    scheduler::run_once(work, state.clone()).await;
    let state = state.read().unwrap_or_else(|e| e.into_inner());
    Report::from_state(&state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::provider::Expected;
    use clap::Parser as _;

    fn what_to_check(args: &[&str]) -> Result<(Config, Targets), String> {
        let cli = Cli::try_parse_from(["dkim_exporter", "check"].iter().chain(args)).unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check");
        };
        super::what_to_check(None, &args)
    }

    #[test]
    fn command_line_records() {
        let (config, targets) =
            what_to_check(&["Example.COM", "--selector=ABC", "--provider=ses"]).unwrap();
        assert_eq!(targets.domains[0].name, "example.com");
        assert_eq!(
            targets.domains[0].records[0].expected,
            Expected::Cname("abc.dkim.amazonses.com".into())
        );
        assert_eq!(config.resolvers.len(), 4);
        let (_, targets) = what_to_check(&["example.org", "--selector=mail"]).unwrap();
        assert_eq!(targets.domains[0].records[0].expected, Expected::Txt);
        let (config, _) = what_to_check(&[
            "example.org",
            "--selector=mail",
            "--resolver=127.0.0.1:5353",
        ])
        .unwrap();
        assert_eq!(config.resolvers.len(), 1);
        assert_eq!(
            config.resolvers[0].address,
            "127.0.0.1:5353".parse().unwrap()
        );
    }

    #[test]
    fn usage_errors() {
        assert!(what_to_check(&[]).is_err());
        assert!(
            what_to_check(&["example.com"])
                .unwrap_err()
                .contains("give a selector")
        );
        let err = what_to_check(&["example.com", "--selector=a b", "--provider=ses"]).unwrap_err();
        assert!(err.contains("invalid selector \"a b\""), "{err}");
        let err = what_to_check(&[
            "example.com",
            "--selector=a",
            "--provider=ses",
            "--resolver=dns.google",
        ])
        .unwrap_err();
        assert!(err.contains("invalid resolver address"), "{err}");
    }
}
