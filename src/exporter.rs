//! The running exporter: the config in force, the work built from it, and reloads.
//!
//! A reload reads the file again; a bad file changes nothing but the reload gauges. A good one
//! becomes the work the scheduler picks up at its next round, resolvers whose settings did not
//! change keep their client (connections, rate limiter, counters), and the state keeps what is
//! known about every record that is still configured.
//!
//! The outside sources of records (today the `ses:` sources, [`crate::ses::watch`]) run their
//! own tasks and hand what they read to the exporter ([`Recipient`]); it is merged into the
//! file's records and put in force the way a reload is, without reading the file. A reload
//! that changes the sources restarts their tasks.
//!
//! A new outside source (the DMARC reports of issue 22) plugs in the same way: a folder of its
//! own with its reader, its tasks and its log (like `ses/`), a part of the config file's
//! validation, a field here that owns it, started by [`Exporter::start_sources`] and kept in
//! step by [`Exporter::reload`], a recipient trait of its own that the exporter implements by
//! taking the reading in under the `in_force` lock and calling `put_in_force`, where its
//! records are merged beside SES's.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::config::request::Request;
use crate::config::{self, Config, Loaded, SesSource};
use crate::dmarc::tally::{Judging, Watched};
use crate::dmarc::watch::DmarcWatch;
use crate::logging::short_list;
use crate::metrics::Metrics;
use crate::records::shard::Shard;
use crate::records::{Domain, Records};
use crate::resolver::ResolverClient;
use crate::scheduler::{self, Reuse, Work};
use crate::ses::watch::{Recipient, SesWatch};
use crate::ses::{self, Listing};
use crate::state::{SharedState, State, unix_now};
use crate::{Error, Options};

/// What the scheduler, the HTTP handlers and reloads share.
pub struct Exporter {
    /// The latest results.
    pub state: SharedState,
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
    /// The `ses:` sources: what each discovered, and the tasks that list them.
    pub ses: Arc<SesWatch>,
    /// The `dmarc:` sources: what each holds, the latest count, and the tasks that read them.
    pub dmarc: Arc<DmarcWatch>,
    /// Why the latest reload failed, until one succeeds: the status page says it.
    reload_error: std::sync::Mutex<Option<String>>,
    /// This replica's share of the domains (`--shard`): the state and the scheduler have its
    /// domains alone, the config in force has them all (`/probe` is not sharded).
    pub shard: Shard,
    /// Domains in force over every shard, for the status page.
    domains_in_force: AtomicUsize,
}

/// How long a reload waits for the scrapes in progress to finish before it changes the state
/// anyway (which cuts those scrapes short). A scrape that fails on a reload would mark every
/// series stale for a scrape interval and reset the `for:` of pending alerts.
pub const RELOAD_WAITS_FOR_SCRAPES: Duration = Duration::from_secs(10);

/// The config in force and the records it lists.
struct InForce {
    /// The config file's settings.
    config: Config,
    /// The records to check: the file's, those discovered from SES, and the selectors only
    /// DMARC reports name.
    records: Records,
    /// The file's records alone, kept apart only while other sources add to them.
    file: Option<Records>,
    /// Positions in `records.domains`, sorted by name: `/probe` finds its domain by binary
    /// search rather than a scan under this lock.
    by_name: Vec<u32>,
}

impl InForce {
    fn new(config: Config, records: Records, file: Option<Records>) -> Self {
        let mut by_name: Vec<u32> = (0..records.domains.len() as u32).collect();
        by_name.sort_unstable_by(|a, b| {
            records.domains[*a as usize]
                .name
                .cmp(&records.domains[*b as usize].name)
        });
        InForce {
            config,
            records,
            file,
            by_name,
        }
    }

    /// The configured domain with this name (lower case, no trailing dot).
    fn domain(&self, name: &str) -> Option<&Domain> {
        let at = self
            .by_name
            .binary_search_by(|i| self.records.domains[*i as usize].name.as_str().cmp(name))
            .ok()?;
        Some(&self.records.domains[self.by_name[at] as usize])
    }

    /// The config file's records, moved out to be put in force again with what the sources
    /// add: kept apart while a source is configured, so rarely copied.
    fn take_file(&mut self) -> Records {
        match self.file.take() {
            Some(file) => file,
            None => self.records.clone(),
        }
    }

    /// The config file's records.
    fn file_records(&self) -> &Records {
        self.file.as_ref().unwrap_or(&self.records)
    }
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
    /// Sets up the exporter for the config file `loaded`; the receiver feeds the scheduler.
    pub fn new(
        loaded: Loaded,
        options: &Options,
    ) -> Result<(Arc<Exporter>, watch::Receiver<Arc<Work>>), Error> {
        let Loaded { config, records } = loaded;
        let metrics = Arc::new(Metrics::new()?);
        metrics.config_reload_successful.set(1);
        metrics.config_reload_timestamp.set(unix_now());
        let mine = options.shard.of(&records);
        set_capacity(&metrics, &config, &mine, options.shard);
        let domains_in_force = AtomicUsize::new(records.domains.len());
        let mut state = State::logging_changes();
        state.reconcile(&config, &mine);
        let work = Arc::new(Work::from_config(
            &config,
            &mine,
            &metrics,
            options.nameserver_port,
            Reuse::Nothing,
        ));
        let (work, receiver) = watch::channel(work);
        let ses = Arc::new(SesWatch::new(
            &config.ses,
            options.aws_credentials.clone(),
            options.shard,
        ));
        let dmarc = Arc::new(DmarcWatch::new(
            config.dmarc.as_ref(),
            options.aws_credentials.clone(),
        ));
        let file = (!config.ses.is_empty() || config.dmarc.is_some()).then(|| records.clone());
        let exporter = Exporter {
            state: SharedState::new(state),
            metrics,
            work,
            in_force: Mutex::new(InForce::new(config, records, file)),
            config_file: options.config_file.clone(),
            nameserver_port: options.nameserver_port,
            scrapes: watch::Sender::new(0),
            ses,
            dmarc,
            reload_error: std::sync::Mutex::new(None),
            shard: options.shard,
            domains_in_force,
        };
        Ok((Arc::new(exporter), receiver))
    }

    /// What a probe of `request` checks: its records (the configured ones when it names no
    /// selector), and the settings and resolvers in force.
    pub async fn probe_records(&self, request: &Request<'_>) -> Result<(Config, Records), String> {
        let current = self.in_force.lock().await;
        // The probed domain alone, when it is configured: what the request takes from the
        // config is that domain's records.
        let one = request
            .domain
            .and_then(|d| config::normalise_name(d, "domain").ok())
            .and_then(|name| current.domain(&name))
            .map(|domain| Records {
                domains: vec![domain.clone()],
            });
        let records = request.records(Some(one.as_ref().unwrap_or(&current.records)))?;
        Ok((current.config.clone(), records))
    }

    /// Checks `records` once, now, with `config`'s settings, for `/probe`, within `budget`.
    /// Queries go through the clients in force where the resolver is the same, so politeness
    /// limits hold across probes and rounds. Returns what was learnt, and whether the check
    /// finished in time.
    pub async fn probe(
        &self,
        mut config: Config,
        records: &Records,
        budget: Duration,
    ) -> (State, bool) {
        config.interval = Duration::ZERO;
        let mut state = State::default();
        state.reconcile(&config, records);
        let state = SharedState::new(state);
        let current = self.work();
        let work = Arc::new(Work::from_config(
            &config,
            records,
            &self.metrics,
            self.nameserver_port,
            Reuse::Clients(&current),
        ));
        let finished = tokio::time::timeout(budget, scheduler::run_once(work, state.clone()))
            .await
            .is_ok();
        (state.take(), finished)
    }

    /// Counts a `/metrics` scrape as in progress until the returned guard is dropped.
    pub fn scrape(&self) -> Scrape {
        self.scrapes.send_modify(|n| *n += 1);
        Scrape {
            scrapes: self.scrapes.clone(),
        }
    }

    /// How many domains are in force over every shard.
    pub fn domains_in_force(&self) -> usize {
        self.domains_in_force.load(Ordering::Relaxed)
    }

    /// Why the latest reload failed, while the config loaded before it stays in force.
    pub fn reload_error(&self) -> Option<String> {
        self.with_reload_error(|error| error.clone())
    }

    /// Reads or changes why the latest reload failed, under its lock.
    fn with_reload_error<T>(&self, change: impl FnOnce(&mut Option<String>) -> T) -> T {
        change(
            &mut self
                .reload_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The work of the config in force.
    pub fn work(&self) -> Arc<Work> {
        self.work.borrow().clone()
    }

    /// The clients of every resolver in use: the configured ones in config order, then the
    /// domains' nameservers (`auth:`) by name, one per name.
    pub fn clients_in_use(&self) -> (Vec<Arc<ResolverClient>>, Vec<Arc<ResolverClient>>) {
        let work = self.work();
        let mut nameservers = work.nameservers.clients();
        nameservers.sort_by(|a, b| a.name.cmp(&b.name));
        nameservers.dedup_by(|a, b| a.name == b.name);
        (work.clients.clone(), nameservers)
    }

    /// Every resolver in use, configured then nameservers, with its latest verdict.
    pub fn resolvers_up(&self) -> Vec<(String, Option<bool>)> {
        let (configured, nameservers) = self.clients_in_use();
        configured
            .iter()
            .chain(&nameservers)
            .map(|c| (c.name.clone(), c.up()))
            .collect()
    }

    /// Reads the config file again and puts it in force; on error, keeps the config in force.
    pub async fn reload(self: &Arc<Self>) -> Result<(), String> {
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
                self.with_reload_error(|error| *error = Some(message.clone()));
                tracing::error!(error = %message, "config reload failed; keeping the config in force");
                return Err(message);
            }
        };
        let Loaded { config, records } = loaded;
        let ses_changed = config.ses != current.config.ses;
        let dmarc_changed = config.dmarc != current.config.dmarc;
        if config != current.config || records != *current.file_records() {
            if ses_changed {
                self.ses.keep_discovered_of(&config.ses);
            }
            if dmarc_changed {
                self.dmarc.keep_readings_of(config.dmarc.as_ref());
            }
            self.put_in_force(&mut current, config, records, "config reloaded")
                .await;
        } else {
            tracing::info!("config reloaded; nothing changed");
        }
        if ses_changed {
            self.ses.sync(&current.config.ses, self);
        }
        if dmarc_changed {
            self.dmarc.sync(current.config.dmarc.as_ref(), self);
        }
        self.metrics.config_reload_successful.set(1);
        self.with_reload_error(|error| *error = None);
        self.metrics.config_reload_timestamp.set(unix_now());
        Ok(())
    }
}

impl Exporter {
    /// Puts `config` and the file's records `file`, with what SES discovered, in force: the
    /// scheduler gets new work and the state is reconciled, when the records or settings
    /// changed. `why` is the log message.
    async fn put_in_force(&self, current: &mut InForce, config: Config, file: Records, why: &str) {
        // Merged under the read lock: no await in between, and nothing discovered is copied.
        let mut merged = {
            let discovered = self.ses.discovered();
            (!discovered.is_empty()).then(|| ses::records::merge(&file, &discovered))
        };
        if config.dmarc.is_some() {
            let tally = self.dmarc.tally();
            if let Some(added) =
                crate::dmarc::records::with_unlisted(merged.as_ref().unwrap_or(&file), &tally)
            {
                merged = Some(added);
            }
        }
        let (records, file) = match merged {
            Some(merged) => (merged, Some(file)),
            None => (file, None),
        };
        if config == current.config && records == current.records {
            current.file = file;
            return;
        }
        let old = self.work();
        let mine = self.shard.of(&records);
        set_capacity(&self.metrics, &config, &mine, self.shard);
        let work = Work::from_config(
            &config,
            &mine,
            &self.metrics,
            self.nameserver_port,
            Reuse::ClientsAndRecords(&old),
        );
        for client in &old.clients {
            if !config.resolvers.iter().any(|r| r.name == client.name) {
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
        self.state.update(|state| {
            state.reconcile(&config, &mine);
            self.receivers_reported(state);
        });
        self.work.send_replace(Arc::new(work));
        self.domains_in_force
            .store(records.domains.len(), Ordering::Relaxed);
        tracing::info!(
            domains = mine.domains.len(),
            records = mine.record_count(),
            resolvers = config.resolvers.len(),
            domains_added = %names_not_in(&records, &current.records),
            domains_removed = %names_not_in(&current.records, &records),
            "{why}"
        );
        *current = InForce::new(config, records, file);
    }

    /// Puts the config in force again with what the sources now add to its records.
    async fn put_in_force_again(&self, current: &mut InForce, why: &str) {
        let config = current.config.clone();
        let file = current.take_file();
        self.put_in_force(current, config, file, why).await;
    }

    /// Starts watching every `ses:` and `dmarc:` source in force; the tasks stop with `stop`.
    pub async fn start_sources(self: &Arc<Self>, stop: &CancellationToken) {
        let config = self.in_force.lock().await.config.clone();
        self.ses.start(&config.ses, self, self.state.clone(), stop);
        self.dmarc.start(config.dmarc.as_ref(), self, stop);
    }

    /// The latest DMARC count and its window, when `dmarc:` is configured and a count was made.
    pub fn receivers(&self) -> Option<(Arc<crate::dmarc::tally::Tally>, Duration)> {
        let counted = self.dmarc.counted();
        let judging = counted.judging?;
        Some((counted.tally.clone(), Duration::from_secs(judging.window)))
    }

    /// Gives every record of `state` what receivers reported of it in the latest count.
    fn receivers_reported(&self, state: &mut State) {
        let counted = self.dmarc.counted();
        let tally = &counted.tally;
        // Without a count (no `dmarc:`, or not read yet) every record's report is cleared.
        state.receivers_reported(|domain, selector| {
            let judging = counted.judging.as_ref()?;
            crate::dmarc::tally::receivers(tally, judging, domain, selector)
        });
    }
}

impl crate::dmarc::watch::Recipient for Exporter {
    /// Counts what the DMARC sources hold against this replica's records, puts the selectors
    /// only reports name in force (or out of it), and gives each record its report.
    async fn reported(&self) {
        let mut current = self.in_force.lock().await;
        let Some(settings) = current.config.dmarc.clone() else {
            return;
        };
        let judging = Judging::new(&settings, unix_now() as u64);
        {
            let watched: Watched = current
                .records
                .domains
                .iter()
                .filter(|d| self.shard.owns(&d.name))
                .map(|d| {
                    let listed = d.records.iter().filter(|r| !r.from_dmarc);
                    (
                        d.name.as_str(),
                        listed.map(|r| r.selector.as_str()).collect(),
                    )
                })
                .collect();
            self.dmarc.count(&watched, judging);
        }
        self.put_in_force_again(&mut current, "DMARC reports changed the records")
            .await;
        self.state.update(|state| self.receivers_reported(state));
    }
}

impl Recipient for Exporter {
    /// Takes in a listing of `source`, and puts the records in force.
    async fn listed(&self, source: &SesSource, listing: Result<Listing, String>) {
        let mut current = self.in_force.lock().await;
        if !self.ses.take_listing(source, listing) {
            return;
        }
        self.put_in_force_again(&mut current, "SES discovery changed the records")
            .await;
    }
}

/// Sets the capacity gauges for `mine`, this replica's records under `config`, and warns,
/// with the numbers and the remedies, when the politeness limits make a round longer than the
/// interval: the exporter would fall behind.
fn set_capacity(metrics: &Metrics, config: &Config, mine: &Records, shard: Shard) {
    let records = mine.record_count();
    let shortest = scheduler::shortest_round(config, records);
    metrics.interval.set(config.interval.as_secs_f64());
    metrics
        .shortest_round
        .set(shortest.map_or(0.0, |(_, _, d)| d.as_secs_f64()));
    if let Some((resolver, limit, round)) = shortest
        && round > config.interval
    {
        let needed = (records as f64 / config.interval.as_secs_f64()).ceil();
        let shards = (round.as_secs_f64() / config.interval.as_secs_f64()).ceil() as u64
            * u64::from(shard.count);
        tracing::warn!(
            records,
            resolver,
            max_queries_per_second = limit,
            shortest_round = %config::format_duration(round),
            interval = %config::format_duration(config.interval),
            "the politeness limits make a round longer than the interval, so every record is \
             checked less often than configured: raise max_queries_per_second to {needed} where \
             the resolver allows it, lengthen the interval to {}, or shard over {shards} replicas \
             (--shard)",
            config::format_duration(round),
        );
    }
}

/// The domains of `records` that `others` lacks, for the log: up to five names, then how many
/// more.
fn names_not_in(records: &Records, others: &Records) -> String {
    let others: std::collections::HashSet<&str> =
        others.domains.iter().map(|d| d.name.as_str()).collect();
    let names: Vec<&str> = records
        .domains
        .iter()
        .map(|d| d.name.as_str())
        .filter(|name| !others.contains(name))
        .collect();
    short_list(&names)
}
