//! `dkim_exporter`: a Prometheus exporter that watches DKIM DNS records.
//!
//! It reads a list of domains and their DKIM selectors, checks every record on an interval
//! against several resolvers, and serves what it found as gauges on `/metrics`, so that
//! Alertmanager can page someone before mail goes out unsigned.
//!
//! # Layout
//!
//! Data flows one way: config and sources → records → scheduler → resolver lookups → evidence
//! → diagnosis → state snapshot → rendered on scrape, or reported to a person. ARCHITECTURE.md
//! has the whole picture.
//!
//! - [`config`]: the YAML file, validated whole with `FILE:LINE:COLUMN` errors: the settings,
//!   the records it declares, and the records a request asks about by the same rules.
//! - [`records`]: the one model of the records to check, whatever declares them, and shards.
//! - [`provider`]: what a record is expected to hold, per DKIM provider, and what a wrong
//!   target means.
//! - [`ses`]: Amazon SES, an outside source of records: listing identities, their records,
//!   their problems, and the daemon's tasks that watch them.
//! - [`aws`]: what every AWS SDK client shares: credentials, role, HTTPS, retries, time limits.
//! - [`dmarc`]: DMARC aggregate reports: read (bounded) from a mailbox, a bucket or a
//!   directory, counted per watched domain, and joined to what DNS says.
//! - [`scheduler`]: rounds, spreading every record–resolver check evenly over the interval.
//! - [`resolver`]: one client per resolver (UDP, TCP, TLS, HTTPS), politeness limits, the
//!   reason for every failure, and each domain's own nameservers.
//! - [`check`]: one check of one record, the pure reading of its answer, and the follow-up
//!   lookups that explain a failure.
//! - [`evidence`]: what the lookups found, as diagnosis and the state read it.
//! - [`diagnosis`]: the named problems, from the evidence (pure); [`problem`]: their table.
//! - [`dkim`]: DKIM key records and their public keys.
//! - [`state`]: the latest results, kept in line with the config and its records, behind a
//!   handle that owns the lock; [`changes`]: problems appearing and clearing, logged.
//! - [`metrics`]: every metric described once, the registry, and the `/metrics` text.
//! - [`exporter`]: the config and records in force, the work built from them, and reloads.
//! - [`http`]: the HTTP endpoints, their TLS and basic auth.
//! - [`report`] and [`check_once`]: `dkim_exporter check`, the landing page, and the report
//!   they share; [`guess`]: `check --discover`, the common selectors tried.
//! - [`cli`] and [`logging`]: flags and log output for the binary.
//!
//! [`run`] ties them together; it takes already-bound listeners and a shutdown future so tests
//! can drive the real daemon on port 0.

pub mod aws;
pub mod changes;
pub mod check;
pub mod check_once;
pub mod cli;
pub mod config;
pub mod diagnosis;
pub mod dkim;
pub mod dmarc;
pub mod evidence;
pub mod exporter;
pub mod guess;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod problem;
pub mod provider;
pub mod records;
pub mod report;
pub mod resolver;
pub mod scheduler;
pub mod ses;
pub mod state;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::exporter::Exporter;

/// The version and the git revision it was built from, as `--version` and the status page say
/// them: `0.2.0 (revision 1a2b3c4d5e6f)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("DKIM_EXPORTER_REVISION"),
    ")"
);

/// Settings of the daemon that do not come from the config file.
#[derive(Clone)]
pub struct Options {
    /// Where metrics are served.
    pub telemetry_path: String,
    /// The file reloads read (`--config.file`); without one, reloads fail.
    pub config_file: Option<PathBuf>,
    /// Reload on SIGHUP. The binary sets it; in-process tests leave it off.
    pub reload_on_sighup: bool,
    /// TLS and basic auth for the endpoints (`--web.config.file`), loaded by the caller.
    pub web: Option<Arc<http::web::WebConfigFile>>,
    /// The port authoritative nameservers are asked on: 53. Tests run their nameservers on
    /// loopback addresses with another port; there is no flag for it.
    pub nameserver_port: u16,
    /// This replica's share of the domains (`--shard`).
    pub shard: records::shard::Shard,
    /// The AWS credentials of every `ses:` source, instead of the standard chain and
    /// `profile`. In-process tests set fixed ones, so that the chain never looks for instance
    /// metadata; there is no flag for it.
    pub aws_credentials: Option<aws_sdk_sesv2::config::SharedCredentialsProvider>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            telemetry_path: "/metrics".to_string(),
            config_file: None,
            reload_on_sighup: false,
            web: None,
            nameserver_port: resolver::nameservers::DNS_PORT,
            aws_credentials: None,
            shard: records::shard::Shard::default(),
        }
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics registry refused a metric: a bug.
    #[error("setting up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Runs the exporter on `listeners` with the config file `loaded` until `shutdown` completes,
/// then stops the checks and lets open HTTP requests finish.
pub async fn run(
    listeners: Vec<TcpListener>,
    loaded: Loaded,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let config = &loaded.config;
    tracing::info!(
        domains = loaded.records.domains.len(),
        records = loaded.records.record_count(),
        resolvers = config.resolvers.len(),
        ses_sources = config.ses.len(),
        interval = %config::format_duration(config.interval),
        shard = %options.shard,
        "starting checks"
    );
    let (exporter, works) = Exporter::new(loaded, &options)?;
    let stop = CancellationToken::new();
    exporter.start_sources(&stop).await;
    let scheduler = tokio::spawn(scheduler::run(works, exporter.state.clone(), stop.clone()));
    if options.reload_on_sighup {
        tokio::spawn(reload_on_sighup(exporter.clone(), stop.clone()));
    }
    let app = Arc::new(http::App::new(
        exporter,
        options.telemetry_path,
        options.web,
    ));
    let server = tokio::spawn(http::serve(listeners, app, stop.clone()));

    shutdown.await;
    tracing::info!("shutting down");
    stop.cancel();
    // Both tasks end on cancellation; a panic in either has already been reported.
    let _ = scheduler.await;
    let _ = server.await;
    Ok(())
}

/// Reloads the config on every SIGHUP until `stop`.
async fn reload_on_sighup(exporter: Arc<Exporter>, stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP; reload with POST /-/reload");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                received = hangups.recv() => {
                    if received.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP: reloading the config");
                    // The outcome is logged and exported by the reload itself.
                    let _ = exporter.reload().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (exporter, stop);
    }
}
