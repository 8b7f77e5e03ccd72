//! `dkim_exporter`: a Prometheus exporter that watches DKIM DNS records.
//!
//! It reads a list of domains and their DKIM selectors, checks every record on an interval
//! against several resolvers, and serves what it found as gauges on `/metrics`, so that
//! Alertmanager can page someone before mail goes out unsigned.
//!
//! # Layout
//!
//! Data flows one way: config → scheduler → DNS lookups → observations → state snapshot →
//! rendered on scrape.
//!
//! - [`config`]: the YAML file, validated whole with `FILE:LINE:COLUMN` errors.
//! - [`scheduler`]: rounds, spreading every record–resolver check evenly over the interval.
//! - [`dns`]: one client per resolver, politeness limits, and the reason for every failure.
//! - [`authoritative`]: each domain's own nameservers, found each round.
//! - [`check`]: one check of one record, the pure reading of its answer, and the follow-up
//!   lookups that explain a failure.
//! - [`diagnosis`]: the named problems, from what was found (pure).
//! - [`dkim`]: DKIM key records and their public keys.
//! - [`state`]: the latest results, kept in line with the config.
//! - [`metrics`]: metric names and the `/metrics` text, rendered from the state.
//! - [`http`]: the HTTP endpoints.
//! - [`report`] and [`oneshot`]: `dkim_exporter check`, the same round run once and explained.
//! - [`cli`] and [`logging`]: flags and log output for the binary.
//!
//! [`run`] ties them together; it takes already-bound listeners and a shutdown future so tests
//! can drive the real daemon on port 0.

pub mod authoritative;
pub mod check;
pub mod cli;
pub mod config;
pub mod diagnosis;
pub mod dkim;
pub mod dns;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod oneshot;
pub mod report;
pub mod scheduler;
pub mod state;

use std::future::Future;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::scheduler::Work;
use crate::state::State;

/// Settings of the daemon that do not come from the config file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where metrics are served.
    pub telemetry_path: String,
    /// The port authoritative nameservers are asked on: 53. Tests run their nameservers on
    /// loopback addresses with another port; there is no flag for it.
    pub nameserver_port: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            telemetry_path: "/metrics".to_string(),
            nameserver_port: authoritative::DNS_PORT,
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

/// Runs the exporter on `listeners` with `config` until `shutdown` completes, then stops the
/// checks and lets open HTTP requests finish.
pub async fn run(
    listeners: Vec<TcpListener>,
    config: Config,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new()?);
    metrics.config_reload_successful.set(1);
    metrics.config_reload_timestamp.set(scheduler::unix_now());

    let mut state = State::default();
    state.reconcile(&config);
    let state = Arc::new(RwLock::new(state));

    let work = Arc::new(Work::from_config(
        &config,
        &metrics,
        options.nameserver_port,
    ));
    tracing::info!(
        domains = config.domains.len(),
        records = config.record_count(),
        resolvers = config.resolvers.len(),
        interval = %config::format_duration(config.interval),
        "starting checks"
    );

    let stop = CancellationToken::new();
    let scheduler = tokio::spawn(scheduler::run(work, state.clone(), stop.clone()));
    let app = Arc::new(http::App {
        state,
        metrics,
        telemetry_path: options.telemetry_path,
    });
    let server = tokio::spawn(http::serve(listeners, app, stop.clone()));

    shutdown.await;
    tracing::info!("shutting down");
    stop.cancel();
    // Both tasks end on cancellation; a panic in either has already been reported.
    let _ = scheduler.await;
    let _ = server.await;
    Ok(())
}
