//! The running exporter: the config in force, the work built from it, and reloads.
//!
//! A reload reads the file again; a bad file changes nothing but the reload gauges. A good one
//! becomes the work the scheduler picks up at its next round, resolvers whose settings did not
//! change keep their client (connections, rate limiter, counters), and the state keeps what is
//! known about every record that is still configured.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::scheduler::{self, Work};
use crate::state::State;
use crate::targets::request::Request;
use crate::targets::{self, Targets};
use crate::{Error, Options};

/// What the scheduler, the HTTP handlers and reloads share.
pub struct Exporter {
    /// The latest results.
    pub state: Arc<RwLock<State>>,
    /// Process-lifetime metrics.
    pub metrics: Arc<Metrics>,
    /// The work of the config in force; the scheduler takes the newest at each round.
    work: watch::Sender<Arc<Work>>,
    /// The config and the records in force; also serialises reloads.
    in_force: Mutex<InForce>,
    /// Where reloads read the config from.
    config_file: Option<PathBuf>,
    /// The port nameservers are asked on.
    nameserver_port: u16,
    /// `/metrics` bodies being sent. A scrape renders the state a chunk at a time, and a
    /// reload renumbers the records under it, so a reload waits for them (see
    /// [`RELOAD_WAITS_FOR_SCRAPES`]).
    scrapes: watch::Sender<usize>,
}

/// How long a reload waits for the scrapes in progress to finish before it changes the state
/// anyway (which cuts those scrapes short). A scrape that fails on a reload would mark every
/// series stale for a scrape interval and reset the `for:` of pending alerts.
pub const RELOAD_WAITS_FOR_SCRAPES: Duration = Duration::from_secs(10);

/// The config in force and the records it lists.
struct InForce {
    /// The config as loaded, without its domains (they are `targets`).
    config: Config,
    /// Its records to check.
    targets: Targets,
}

/// A scrape in progress, counted until dropped.
pub struct Scrape {
    /// The exporter's count of scrapes in progress.
    scrapes: watch::Sender<usize>,
}

impl Drop for Scrape {
    fn drop(&mut self) {
        self.scrapes.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Exporter {
    /// Sets up the exporter for `config`; the receiver feeds the scheduler.
    pub fn new(
        config: Config,
        options: &Options,
    ) -> Result<(Arc<Exporter>, watch::Receiver<Arc<Work>>), Error> {
        let metrics = Arc::new(Metrics::new()?);
        metrics.config_reload_successful.set(1);
        metrics.config_reload_timestamp.set(scheduler::unix_now());
        // The domains live on as targets alone.
        let (config, targets) = targets::file::split(config);
        let mut state = State::default();
        state.log_changes = true;
        state.reconcile(&config, &targets);
        let work = Arc::new(Work::from_config(
            &config,
            &targets,
            &metrics,
            options.nameserver_port,
            None,
        ));
        let (work, receiver) = watch::channel(work);
        let exporter = Exporter {
            state: Arc::new(RwLock::new(state)),
            metrics,
            work,
            in_force: Mutex::new(InForce { config, targets }),
            config_file: options.config_file.clone(),
            nameserver_port: options.nameserver_port,
            scrapes: watch::Sender::new(0),
        };
        Ok((Arc::new(exporter), receiver))
    }

    /// What a probe of `request` checks: its records (the configured ones when it names no
    /// selector), and the settings and resolvers in force.
    pub async fn probe_targets(&self, request: &Request<'_>) -> Result<(Config, Targets), String> {
        let current = self.in_force.lock().await;
        let targets = request.targets(Some(&current.targets))?;
        Ok((current.config.clone(), targets))
    }

    /// Checks `targets` once, now, with `config`'s settings, for `/probe`, within `budget`.
    /// Queries go through the clients in force where the resolver is the same, so politeness
    /// limits hold across probes and rounds. Returns what was learnt, and whether the check
    /// finished in time.
    pub async fn probe(
        &self,
        mut config: Config,
        targets: &Targets,
        budget: Duration,
    ) -> (State, bool) {
        config.interval = Duration::ZERO;
        let mut state = State::default();
        state.reconcile(&config, targets);
        let state = Arc::new(RwLock::new(state));
        let current = self.work();
        let work = Arc::new(Work::from_config(
            &config,
            targets,
            &self.metrics,
            self.nameserver_port,
            Some(&current),
        ));
        let finished = tokio::time::timeout(budget, scheduler::run_once(work, state.clone()))
            .await
            .is_ok();
        let state = std::mem::take(&mut *state.write().unwrap_or_else(|e| e.into_inner()));
        (state, finished)
    }

    /// Counts a `/metrics` scrape as in progress until the returned guard is dropped.
    pub fn scrape(&self) -> Scrape {
        self.scrapes.send_modify(|n| *n += 1);
        Scrape {
            scrapes: self.scrapes.clone(),
        }
    }

    /// The work of the config in force.
    pub fn work(&self) -> Arc<Work> {
        self.work.borrow().clone()
    }

    /// Every resolver in use, configured then `auth:`, with its latest verdict.
    pub fn resolvers_up(&self) -> Vec<(String, Option<bool>)> {
        let work = self.work();
        let mut up: Vec<(String, Option<bool>)> = work
            .clients
            .iter()
            .map(|c| (c.name.clone(), c.up()))
            .collect();
        let mut auth: Vec<(String, Option<bool>)> = work
            .nameservers
            .clients()
            .iter()
            .map(|c| (c.name.clone(), c.up()))
            .collect();
        auth.sort();
        auth.dedup_by(|a, b| a.0 == b.0);
        up.extend(auth);
        up
    }

    /// Reads the config file again and puts it in force; on error, keeps the config in force.
    pub async fn reload(&self) -> Result<(), String> {
        let mut current = self.in_force.lock().await;
        let Some(path) = self.config_file.clone() else {
            return Err("no config file to reload from".to_string());
        };
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| format!("reading the config failed: {e}"))
            .and_then(|result| result.map_err(|e| e.to_string()));
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(message) => {
                self.metrics.config_reload_successful.set(0);
                tracing::error!(error = %message, "config reload failed; keeping the config in force");
                return Err(message);
            }
        };
        let (loaded, targets) = targets::file::split(loaded);
        if loaded != current.config || targets != current.targets {
            let old = self.work();
            let work = Work::from_config(
                &loaded,
                &targets,
                &self.metrics,
                self.nameserver_port,
                Some(&old),
            );
            for client in &old.clients {
                if !loaded.resolvers.iter().any(|r| r.name == client.name) {
                    self.metrics.forget_resolver(&client.name);
                }
            }
            let mut scrapes = self.scrapes.subscribe();
            let waited =
                tokio::time::timeout(RELOAD_WAITS_FOR_SCRAPES, scrapes.wait_for(|n| *n == 0)).await;
            if waited.is_err() {
                tracing::warn!(
                    waited = ?RELOAD_WAITS_FOR_SCRAPES,
                    "scrapes still in progress; the reload cuts them short"
                );
            }
            self.state
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .reconcile(&loaded, &targets);
            self.work.send_replace(Arc::new(work));
            tracing::info!(
                domains = targets.domains.len(),
                records = targets.record_count(),
                resolvers = loaded.resolvers.len(),
                domains_added = %names_not_in(&targets, &current.targets),
                domains_removed = %names_not_in(&current.targets, &targets),
                "config reloaded"
            );
            *current = InForce {
                config: loaded,
                targets,
            };
        } else {
            tracing::info!("config reloaded; nothing changed");
        }
        self.metrics.config_reload_successful.set(1);
        self.metrics
            .config_reload_timestamp
            .set(scheduler::unix_now());
        Ok(())
    }
}

/// The domains of `targets` that `others` lacks, for the log: up to five names, then how many
/// more.
fn names_not_in(targets: &Targets, others: &Targets) -> String {
    const SHOWN: usize = 5;
    let others: std::collections::HashSet<&str> =
        others.domains.iter().map(|d| d.name.as_str()).collect();
    let names: Vec<&str> = targets
        .domains
        .iter()
        .map(|d| d.name.as_str())
        .filter(|name| !others.contains(name))
        .collect();
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
