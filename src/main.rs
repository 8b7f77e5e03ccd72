//! The `dkim_exporter` binary: flags, logging, listeners, signals; the rest is the library.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;
use dkim_exporter::cli::{Cli, Command};
use dkim_exporter::config::{ConfigError, Loaded};
use dkim_exporter::logging::LogLevel;
use dkim_exporter::resolver::nameservers;
use dkim_exporter::{Options, check_once, config, http, logging};

/// mimalloc instead of glibc's malloc: a round makes many short-lived allocations on two
/// worker threads, and glibc's arena locks and consolidation cost much of the exporter's CPU.
/// Built with `no_thp`: mimalloc otherwise asks for transparent huge pages on its arenas, and
/// each partly used 2 MiB page counts whole in the resident memory. The figures are in
/// BENCHMARKS.md, "Issue 15: CPU and memory".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--config.check`: says what the file holds, or what is wrong with it.
fn config_check(path: &Path, loaded: Result<Loaded, ConfigError>) -> ExitCode {
    match loaded {
        Ok(Loaded { config, records }) => {
            #[allow(clippy::print_stdout)]
            {
                let ses = match config.ses.len() {
                    0 => String::new(),
                    n => format!(
                        ", {} (their records are discovered at start)",
                        counted(n, "SES source")
                    ),
                };
                let dmarc = match config.dmarc.as_ref().map(|d| d.sources.len()) {
                    None => String::new(),
                    Some(n) => format!(", {}", counted(n, "DMARC report source")),
                };
                println!(
                    "{}: valid: {}, {}, {}{ses}{dmarc}",
                    path.display(),
                    counted(records.domains.len(), "domain"),
                    counted(records.record_count(), "record"),
                    counted(config.resolvers.len(), "resolver")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// "1 domain", "3 domains".
fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Check(args)) = cli.command {
        // The report is the output: by default, log only what goes wrong.
        let level = match cli.log_level {
            LogLevel::Info => LogLevel::Warn,
            other => other,
        };
        logging::init(level, cli.log_format);
        return ExitCode::from(check_once::run(args, nameservers::DNS_PORT).await);
    }
    logging::init(cli.log_level, cli.log_format);

    let loaded = config::load(&cli.config_file);
    if cli.config_check {
        return config_check(&cli.config_file, loaded);
    }
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "cannot load config");
            return ExitCode::FAILURE;
        }
    };

    let web = match &cli.web_config_file {
        Some(path) => match http::web::WebConfigFile::load(path) {
            Ok(web) => Some(std::sync::Arc::new(web)),
            Err(e) => {
                tracing::error!(error = %e, "cannot load web config");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };

    let mut listeners = Vec::new();
    for address in &cli.listen_addresses {
        match http::bind(address).await {
            Ok(listener) => {
                let local = listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                tracing::info!(address = %local, "listening");
                listeners.push(listener);
            }
            Err(e) => {
                tracing::error!(address = %address, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        }
    }

    let options = Options {
        telemetry_path: cli.telemetry_path,
        config_file: Some(cli.config_file),
        reload_on_sighup: true,
        web,
        shard: cli.shard,
        ..Options::default()
    };
    match dkim_exporter::run(listeners, loaded, options, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "exporter failed");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the exporter");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
