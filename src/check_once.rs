//! Checking once, now: `dkim_exporter check` for a person at a terminal or a cron job, and
//! `/probe` for Prometheus.
//!
//! The domain, selectors and resolvers come from the command line, from a config, or both (the
//! command line wins); `config::request` turns them into the records to check, with the
//! config file's own rules.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{CheckArgs, OutputFormat};
use crate::config::request::Request;
use crate::config::{self, Config, Loaded, SesSource};
use crate::dmarc::tally::{Judging, Tally, Watched};
use crate::guess;
use crate::metrics::Metrics;
use crate::provider;
use crate::records::Records;
use crate::report::Report;
use crate::resolver::ResolverClient;
use crate::scheduler::{self, Reuse, Work};
use crate::ses::{self, Discovered};
use crate::state::{SharedState, State, unix_now};

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
            Ok(loaded) => Some(loaded),
            Err(e) => {
                eprintln!("dkim_exporter check: {e}");
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    if args.guess_selectors {
        return guess_selectors(file.map(|f| f.config), &args).await;
    }
    let sources = match ses_sources(file.as_ref().map(|f| &f.config), &args) {
        Ok(sources) => sources,
        Err(message) => {
            eprintln!("dkim_exporter check: {message}");
            return EXIT_USAGE;
        }
    };
    // `--ses-region` with a domain reads that identity alone.
    let only = args.ses_region.as_ref().and(args.domain.as_deref());
    let mut discovered = Vec::with_capacity(sources.len());
    for source in sources {
        let client = ses::client::connect(&source, None).await;
        let listing = ses::discover::discover(&client, &source, only).await;
        if let Err(error) = &listing {
            eprintln!(
                "dkim_exporter check: SES discovery from {} failed: {error}",
                source.name
            );
            return EXIT_USAGE;
        }
        let mut source = Discovered::new(Arc::new(source));
        source.update(listing, unix_now());
        discovered.push(source);
    }
    let (config, targets) = match what_to_check(file, &args, &discovered) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("dkim_exporter check: {message}");
            return EXIT_USAGE;
        }
    };
    let receivers = match read_reports(&args.dmarc_reports, config.dmarc.as_ref(), &targets) {
        Ok(receivers) => receivers,
        Err(message) => {
            eprintln!("dkim_exporter check: {message}");
            return EXIT_USAGE;
        }
    };
    let state =
        check_state_with_reports(config, targets, receivers.as_ref(), nameserver_port).await;
    let mut report = Report::from_state(&state)
        .with_ses(&discovered, &state, unix_now())
        .with_receivers(
            receivers
                .as_ref()
                .map(|(tally, judging)| (tally, Duration::from_secs(judging.window))),
        );
    let ok = report.ok;
    if args.problems_only {
        report = report.problems_only();
    }
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
    if ok { EXIT_CORRECT } else { EXIT_PROBLEM }
}

/// `check DOMAIN --discover`: the common selectors tried through the first resolver. Exit 0
/// when one was found, 1 when none was, 2 for bad usage.
async fn guess_selectors(file: Option<Config>, args: &CheckArgs) -> u8 {
    let domain = match args
        .domain
        .as_deref()
        .map(|d| config::normalise_name(d, "name"))
    {
        Some(Ok(domain)) => domain,
        Some(Err(message)) => {
            eprintln!("dkim_exporter check: {message}");
            return EXIT_USAGE;
        }
        None => {
            eprintln!("dkim_exporter check: --discover needs a DOMAIN");
            return EXIT_USAGE;
        }
    };
    let given: Vec<&str> = args.resolvers.iter().map(String::as_str).collect();
    let mut config = file.unwrap_or_default();
    match config::resolvers_at(&given) {
        Ok(resolvers) if !resolvers.is_empty() => config.resolvers = resolvers,
        Ok(_) => {}
        Err(message) => {
            eprintln!("dkim_exporter check: {message}");
            return EXIT_USAGE;
        }
    }
    if let Some(timeout) = args.timeout.filter(|t| !t.is_zero()) {
        config.timeout = timeout;
    }
    let Some(first) = config.resolvers.first() else {
        eprintln!("dkim_exporter check: no resolver to ask");
        return EXIT_USAGE;
    };
    let metrics = match Metrics::new() {
        Ok(metrics) => metrics,
        Err(e) => {
            eprintln!("dkim_exporter check: {e}");
            return EXIT_USAGE;
        }
    };
    let resolver = ResolverClient::new(first, config.timeout, metrics.resolver(&first.name));
    let search = guess::search(&resolver, &domain).await;
    let text = match args.format {
        OutputFormat::Json => serde_json::to_string_pretty(&search)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
        OutputFormat::Text => search.to_text(),
    };
    #[allow(clippy::print_stdout)]
    {
        println!("{}", text.trim_end());
    }
    if search.found.is_empty() {
        EXIT_PROBLEM
    } else {
        EXIT_CORRECT
    }
}

/// What the reports at `paths` (files and directories, `--dmarc-reports`) say of the domains
/// of `records`, judged by the config's `dmarc:` settings or the defaults; `None` without
/// paths. An item that is not a report is a warning; a path that cannot be read is an error.
fn read_reports(
    paths: &[std::path::PathBuf],
    settings: Option<&config::Dmarc>,
    records: &Records,
) -> Result<Option<(Tally, Judging)>, String> {
    if paths.is_empty() {
        return Ok(None);
    }
    let defaults = config::Dmarc::default();
    let settings = settings.unwrap_or(&defaults);
    let limits = crate::dmarc::Limits::default();
    let mut reports = Vec::new();
    for path in paths {
        let mut holding = crate::dmarc::source::Holding::default();
        crate::dmarc::source::read_path(path, &mut holding, &limits, |item, outcome| {
            for error in &outcome.errors {
                eprintln!("dkim_exporter check: {item}: {error}");
            }
        })?;
        reports.extend(holding.reports());
    }
    let judging = Judging::new(settings, unix_now() as u64);
    let watched: Watched = records
        .domains
        .iter()
        .map(|d| {
            let listed = d.records.iter().map(|r| r.selector.as_str());
            (d.name.as_str(), listed.collect())
        })
        .collect();
    let tally = crate::dmarc::tally::tally([("files", reports.as_slice())], &watched, &judging);
    Ok(Some((tally, judging)))
}

/// The SES sources to discover from: the one `--ses-region` describes, or else the config
/// file's `ses:` entries.
fn ses_sources(file: Option<&Config>, args: &CheckArgs) -> Result<Vec<SesSource>, String> {
    let Some(region) = &args.ses_region else {
        return Ok(file.map(|f| f.ses.clone()).unwrap_or_default());
    };
    Ok(vec![SesSource {
        name: "command-line".to_string(),
        region: provider::ses::region(region)?,
        profile: args.ses_profile.clone(),
        role_arn: None,
        endpoint: args
            .ses_endpoint
            .as_deref()
            .map(config::parse_endpoint)
            .transpose()?,
        refresh: config::DEFAULT_SES_REFRESH,
        include: Vec::new(),
        exclude: Vec::new(),
        request_interval: Duration::from_secs_f64(1.0 / config::DEFAULT_SES_REQUESTS_PER_SECOND),
    }])
}

/// The settings and resolvers to check with (the file's, or the defaults; `--resolver`
/// replaces the resolvers) and the records the command line asks for, among the file's and
/// those `discovered` from SES.
fn what_to_check(
    file: Option<Loaded>,
    args: &CheckArgs,
    discovered: &[Discovered],
) -> Result<(Config, Records), String> {
    let resolvers: Vec<&str> = args.resolvers.iter().map(String::as_str).collect();
    let resolvers = config::resolvers_at(&resolvers)?;
    let (mut config, configured) = match file {
        Some(Loaded { config, records }) => (config, Some(records)),
        None => (Config::default(), None),
    };
    let configured = match (configured, discovered.is_empty()) {
        (configured, true) => configured,
        (configured, false) => Some(ses::records::merge(
            &configured.unwrap_or_default(),
            discovered,
        )),
    };
    let request = Request {
        domain: args.domain.as_deref(),
        selectors: args.selectors.iter().map(String::as_str).collect(),
        provider: args.provider.as_deref(),
        region: args.region.as_deref(),
        account: args.account.as_deref(),
        tenant_domain: args.tenant_domain.as_deref(),
        cname: args.cname.as_deref(),
        origin: Default::default(),
    };
    if !discovered.is_empty()
        && args.domain.is_none()
        && configured.as_ref().is_none_or(|c| c.domains.is_empty())
    {
        return Err(
            "nothing to check: SES lists no domain identity with DKIM tokens, and no domain is \
             configured"
                .into(),
        );
    }
    let records = request.records(configured.as_ref())?;
    if !resolvers.is_empty() {
        config.resolvers = resolvers;
    }
    if let Some(timeout) = args.timeout {
        if timeout.is_zero() {
            return Err("--timeout must be greater than 0s".into());
        }
        config.timeout = timeout;
    }
    Ok((config, records))
}

/// Checks every record of `records` once with `config`'s resolvers and settings, all at once
/// within each resolver's rate limit.
pub async fn check(config: Config, records: &Records, nameserver_port: u16) -> Report {
    Report::from_state(&check_state(config, records, nameserver_port).await)
}

/// [`check_state`] of `records` and of the selectors only the reports name, with what
/// receivers reported of each record, when reports were read.
async fn check_state_with_reports(
    config: Config,
    records: Records,
    receivers: Option<&(Tally, Judging)>,
    nameserver_port: u16,
) -> State {
    let Some((tally, judging)) = receivers else {
        return check_state(config, &records, nameserver_port).await;
    };
    let records = crate::dmarc::records::with_unlisted(&records, tally).unwrap_or(records);
    let mut state = check_state(config, &records, nameserver_port).await;
    state.receivers_reported(|domain, selector| {
        crate::dmarc::tally::receivers(tally, judging, domain, selector)
    });
    state
}

/// What checking every record of `records` once found.
async fn check_state(mut config: Config, records: &Records, nameserver_port: u16) -> State {
    // No spreading: a person is waiting.
    config.interval = Duration::ZERO;
    let metrics = match Metrics::new() {
        Ok(metrics) => Arc::new(metrics),
        Err(e) => {
            tracing::error!(error = %e, "setting up metrics");
            return State::default();
        }
    };
    let mut state = State::default();
    state.reconcile(&config, records);
    let state = SharedState::new(state);
    let work = Arc::new(Work::from_config(
        &config,
        records,
        &metrics,
        nameserver_port,
        Reuse::Nothing,
    ));
    scheduler::run_once(work, state.clone()).await;
    state.take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::provider::Expected;
    use clap::Parser as _;

    fn what_to_check(args: &[&str]) -> Result<(Config, Records), String> {
        let cli = Cli::try_parse_from(["dkim_exporter", "check"].iter().chain(args)).unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("not check");
        };
        super::what_to_check(None, &args, &[])
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
