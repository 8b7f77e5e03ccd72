//! The running exporter: the config in force, the work built from it, and reloads.
//!
//! A reload reads the file again; a bad file changes nothing but the reload gauges. A good one
//! becomes the work the scheduler picks up at its next round, resolvers whose settings did not
//! change keep their client (connections, rate limiter, counters), and the state keeps what is
//! known about every record that is still configured.
//!
//! Each `ses:` source is listed by a task of its own every `refresh`; what it discovers is
//! merged into the file's records and put in force the way a reload is, without reading the
//! file. A reload that changes the `ses:` sources restarts their tasks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, SesSource};
use crate::metrics::Metrics;
use crate::resolver::ResolverClient;
use crate::scheduler::{self, Reuse, Work};
use crate::ses::problem::{SesFinding, SesProblem};
use crate::ses::{self, Discovered, Listing};
use crate::state::{self, State};
use crate::targets::request::Request;
use crate::targets::shard::Shard;
use crate::targets::{self, Domain, Targets};
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
    /// Fixed AWS credentials for the `ses:` sources, instead of the standard chain.
    aws_credentials: Option<aws_sdk_sesv2::config::SharedCredentialsProvider>,
    /// `/metrics` bodies being sent. A scrape renders the state a chunk at a time, and a
    /// reload renumbers the records under it, so a reload waits for them (see
    /// [`RELOAD_WAITS_FOR_SCRAPES`]).
    scrapes: watch::Sender<usize>,
    /// What each `ses:` source discovered, in config order.
    pub ses: RwLock<Vec<Discovered>>,
    /// Why the latest reload failed, until one succeeds: the status page says it.
    reload_error: std::sync::Mutex<Option<String>>,
    /// This replica's share of the domains (`--shard`): the state and the scheduler have its
    /// domains alone, the config in force has them all (`/probe` is not sharded).
    pub shard: Shard,
    /// Domains in force over every shard, for the status page.
    domains_in_force: AtomicUsize,
    /// The discovery task of each `ses:` source, to stop it when a reload changes or removes
    /// the source; and the token that stops them all with the daemon.
    discovery: std::sync::Mutex<Discovery>,
}

/// The running discovery tasks.
#[derive(Default)]
struct Discovery {
    /// Stops every task with the daemon; `None` until [`Exporter::start_discovery`].
    stop: Option<CancellationToken>,
    /// Each running source and the token that stops its task.
    tasks: Vec<(Arc<SesSource>, CancellationToken)>,
}

/// How long a reload waits for the scrapes in progress to finish before it changes the state
/// anyway (which cuts those scrapes short). A scrape that fails on a reload would mark every
/// series stale for a scrape interval and reset the `for:` of pending alerts.
pub const RELOAD_WAITS_FOR_SCRAPES: Duration = Duration::from_secs(10);

/// The config in force and the records it lists.
struct InForce {
    /// The config as loaded, without its domains (they are `targets`).
    config: Config,
    /// The records to check: the file's, and those discovered from SES.
    targets: Targets,
    /// The file's records alone, kept apart only while `ses:` sources add to them.
    file: Option<Targets>,
    /// Positions in `targets.domains`, sorted by name: `/probe` finds its domain by binary
    /// search (a scan of 100,000 domains under this lock capped probes near 1,200 a second).
    by_name: Vec<u32>,
}

impl InForce {
    fn new(config: Config, targets: Targets, file: Option<Targets>) -> Self {
        let mut by_name: Vec<u32> = (0..targets.domains.len() as u32).collect();
        by_name.sort_unstable_by(|a, b| {
            targets.domains[*a as usize]
                .name
                .cmp(&targets.domains[*b as usize].name)
        });
        InForce {
            config,
            targets,
            file,
            by_name,
        }
    }

    /// The configured domain with this name (lower case, no trailing dot).
    fn domain(&self, name: &str) -> Option<&Domain> {
        let at = self
            .by_name
            .binary_search_by(|i| self.targets.domains[*i as usize].name.as_str().cmp(name))
            .ok()?;
        Some(&self.targets.domains[self.by_name[at] as usize])
    }

    /// The config file's records.
    fn file_targets(&self) -> &Targets {
        self.file.as_ref().unwrap_or(&self.targets)
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
        let mine = options.shard.of(&targets);
        judge_capacity(&metrics, &config, &mine, options.shard);
        let domains_in_force = AtomicUsize::new(targets.domains.len());
        let mut state = State::default();
        state.log_changes = true;
        state.reconcile(&config, &mine);
        let work = Arc::new(Work::from_config(
            &config,
            &mine,
            &metrics,
            options.nameserver_port,
            Reuse::Nothing,
        ));
        let (work, receiver) = watch::channel(work);
        let ses = config
            .ses
            .iter()
            .map(|source| Discovered::new(Arc::new(source.clone())))
            .collect();
        let file = (!config.ses.is_empty()).then(|| targets.clone());
        let exporter = Exporter {
            state: Arc::new(RwLock::new(state)),
            metrics,
            work,
            in_force: Mutex::new(InForce::new(config, targets, file)),
            config_file: options.config_file.clone(),
            nameserver_port: options.nameserver_port,
            aws_credentials: options.aws_credentials.clone(),
            scrapes: watch::Sender::new(0),
            ses: RwLock::new(ses),
            discovery: std::sync::Mutex::new(Discovery::default()),
            reload_error: std::sync::Mutex::new(None),
            shard: options.shard,
            domains_in_force,
        };
        Ok((Arc::new(exporter), receiver))
    }

    /// What a probe of `request` checks: its records (the configured ones when it names no
    /// selector), and the settings and resolvers in force.
    pub async fn probe_targets(&self, request: &Request<'_>) -> Result<(Config, Targets), String> {
        let current = self.in_force.lock().await;
        // The probed domain alone, when it is configured: what the request takes from the
        // config is that domain's records.
        let one = request
            .domain
            .and_then(|d| config::normalise_name(d, "domain").ok())
            .and_then(|name| current.domain(&name))
            .map(|domain| Targets {
                domains: vec![domain.clone()],
            });
        let targets = request.targets(Some(one.as_ref().unwrap_or(&current.targets)))?;
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
            Reuse::Clients(&current),
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

    /// How many domains are in force over every shard.
    pub fn domains_in_force(&self) -> usize {
        self.domains_in_force.load(Ordering::Relaxed)
    }

    /// Why the latest reload failed, while the config loaded before it stays in force.
    pub fn reload_error(&self) -> Option<String> {
        self.reload_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The work of the config in force.
    pub fn work(&self) -> Arc<Work> {
        self.work.borrow().clone()
    }

    /// The clients of every resolver in use: the configured ones in config order, then the
    /// domains' nameservers (`auth:`) by name, one per name.
    pub fn clients_in_use(&self) -> (Vec<Arc<ResolverClient>>, Vec<Arc<ResolverClient>>) {
        let work = self.work();
        let mut auth = work.nameservers.clients();
        auth.sort_by(|a, b| a.name.cmp(&b.name));
        auth.dedup_by(|a, b| a.name == b.name);
        (work.clients.clone(), auth)
    }

    /// Every resolver in use, configured then `auth:`, with its latest verdict.
    pub fn resolvers_up(&self) -> Vec<(String, Option<bool>)> {
        let (configured, auth) = self.clients_in_use();
        configured
            .iter()
            .chain(&auth)
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
                *self.reload_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(message.clone());
                tracing::error!(error = %message, "config reload failed; keeping the config in force");
                return Err(message);
            }
        };
        let (loaded, file) = targets::file::split(loaded);
        let ses_changed = loaded.ses != current.config.ses;
        if loaded != current.config || file != *current.file_targets() {
            if ses_changed {
                self.keep_discovered_of(&loaded.ses);
            }
            self.put_in_force(&mut current, loaded, file, "config reloaded")
                .await;
        } else {
            tracing::info!("config reloaded; nothing changed");
        }
        if ses_changed {
            self.sync_discovery(&current.config.ses);
        }
        self.metrics.config_reload_successful.set(1);
        *self.reload_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.metrics
            .config_reload_timestamp
            .set(scheduler::unix_now());
        Ok(())
    }
}

impl Exporter {
    /// Puts `config` and the file's records `file`, with what SES discovered, in force: the
    /// scheduler gets new work and the state is reconciled, when the records or settings
    /// changed. `why` is the log message.
    async fn put_in_force(&self, current: &mut InForce, config: Config, file: Targets, why: &str) {
        // Merged under the read lock: no await in between, and nothing discovered is copied.
        let merged = {
            let discovered = self.ses.read().unwrap_or_else(|e| e.into_inner());
            (!discovered.is_empty()).then(|| targets::ses::merge(&file, &discovered))
        };
        let (targets, file) = match merged {
            Some(merged) => (merged, Some(file)),
            None => (file, None),
        };
        if config == current.config && targets == current.targets {
            current.file = file;
            return;
        }
        let old = self.work();
        let mine = self.shard.of(&targets);
        judge_capacity(&self.metrics, &config, &mine, self.shard);
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
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .reconcile(&config, &mine);
        self.work.send_replace(Arc::new(work));
        self.domains_in_force
            .store(targets.domains.len(), Ordering::Relaxed);
        tracing::info!(
            domains = mine.domains.len(),
            records = mine.record_count(),
            resolvers = config.resolvers.len(),
            domains_added = %names_not_in(&targets, &current.targets),
            domains_removed = %names_not_in(&current.targets, &targets),
            "{why}"
        );
        *current = InForce::new(config, targets, file);
    }

    /// Starts a discovery task for every `ses:` source in force; they stop with `stop`.
    pub async fn start_discovery(self: &Arc<Self>, stop: &CancellationToken) {
        let sources = self.in_force.lock().await.config.ses.clone();
        self.discovery
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop = Some(stop.clone());
        self.sync_discovery(&sources);
        tokio::spawn(self.clone().watch_ses_problems(stop.clone()));
    }

    /// Logs SES problems appearing and clearing until `stop`. They change with rounds, with
    /// listings and with time (PENDING for 72 hours), so they are judged again every
    /// [`SES_PROBLEMS_EVERY`] once the first round is complete.
    async fn watch_ses_problems(self: Arc<Self>, stop: CancellationToken) {
        let mut log = SesProblemLog::default();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(SES_PROBLEMS_EVERY) => {}
            }
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if state.rounds.completed == 0 {
                continue;
            }
            let discovered = self.ses.read().unwrap_or_else(|e| e.into_inner());
            let now = scheduler::unix_now();
            log.begin();
            for source in discovered.iter() {
                for identity in source
                    .identities
                    .iter()
                    .filter(|i| self.shard.owns(&i.domain))
                {
                    let findings = state.ses_findings(source, identity, now);
                    log.observe(&source.source.name, &identity.domain, &findings);
                }
            }
            log.forget_unseen();
        }
    }

    /// Keeps what was discovered from the sources of `sources` that did not change, and
    /// starts the others empty.
    fn keep_discovered_of(&self, sources: &[SesSource]) {
        let mut ses = self.ses.write().unwrap_or_else(|e| e.into_inner());
        let mut old = std::mem::take(&mut *ses);
        *ses = sources
            .iter()
            .map(
                |source| match old.iter().position(|d| *d.source == *source) {
                    Some(i) => old.swap_remove(i),
                    None => Discovered::new(Arc::new(source.clone())),
                },
            )
            .collect();
    }

    /// Stops the discovery tasks of sources no longer in `sources` (or changed), and starts
    /// the missing ones. Does nothing before [`Exporter::start_discovery`].
    fn sync_discovery(self: &Arc<Self>, sources: &[SesSource]) {
        let mut discovery = self.discovery.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stop) = discovery.stop.clone() else {
            return;
        };
        discovery.tasks.retain(|(source, token)| {
            let kept = sources.contains(source);
            if !kept {
                token.cancel();
            }
            kept
        });
        for source in sources {
            if discovery.tasks.iter().any(|(s, _)| **s == *source) {
                continue;
            }
            let source = Arc::new(source.clone());
            let token = stop.child_token();
            discovery.tasks.push((source.clone(), token.clone()));
            tokio::spawn(self.clone().discover(source, token));
        }
    }

    /// Lists `source` every `refresh` until `stop`.
    async fn discover(self: Arc<Self>, source: Arc<SesSource>, stop: CancellationToken) {
        let client = tokio::select! {
            () = stop.cancelled() => return,
            client = ses::client::connect(&source, self.aws_credentials.as_ref()) => client,
        };
        loop {
            let started = tokio::time::Instant::now();
            let listing = tokio::select! {
                () = stop.cancelled() => return,
                listing = ses::discover::discover(&client, &source, None) => listing,
            };
            let took = started.elapsed();
            if took > source.refresh {
                tracing::warn!(
                    source = %source.name,
                    took = %config::format_duration(took),
                    refresh = %config::format_duration(source.refresh),
                    "listing SES identities takes longer than refresh; raise refresh or max_requests_per_second"
                );
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.discovered(&source, listing) => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until(started + source.refresh) => {}
            }
        }
    }

    /// Takes in a listing of `source`, logs what changed, and puts the records in force.
    pub async fn discovered(&self, source: &SesSource, listing: Result<Listing, String>) {
        let mut current = self.in_force.lock().await;
        {
            let mut ses = self.ses.write().unwrap_or_else(|e| e.into_inner());
            // A reload may have removed or changed the source meanwhile.
            let Some(discovered) = ses.iter_mut().find(|d| *d.source == *source) else {
                return;
            };
            log_listing(discovered, &listing);
            discovered.update(listing, scheduler::unix_now());
        }
        // The file's records move out of the config in force rather than being copied; with a
        // source configured they are kept apart, so `file` is there.
        let config = current.config.clone();
        let file = match current.file.take() {
            Some(file) => file,
            None => current.targets.clone(),
        };
        self.put_in_force(
            &mut current,
            config,
            file,
            "SES discovery changed the records",
        )
        .await;
    }
}

/// Sets the capacity gauges for `mine`, this replica's records under `config`, and warns,
/// with the numbers and the remedies, when the politeness limits make a round longer than the
/// interval: the exporter would fall behind.
fn judge_capacity(metrics: &Metrics, config: &Config, mine: &Targets, shard: Shard) {
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

/// How often SES problems are judged again for the log.
const SES_PROBLEMS_EVERY: Duration = Duration::from_secs(10);

/// The SES problems of each identity last logged, to log what appears and clears.
#[derive(Default)]
struct SesProblemLog {
    /// By source, then by domain: looked up without allocating a key on every pass.
    identities: HashMap<String, HashMap<String, LoggedIdentity>>,
}

/// What was logged of one SES identity.
#[derive(Default)]
struct LoggedIdentity {
    /// Its problems at the last pass.
    problems: Vec<SesProblem>,
    /// The hour's logged changes ([`state::changes_to_log`]).
    logged: Option<(Instant, u32)>,
    /// Seen in the current pass.
    seen: bool,
}

impl SesProblemLog {
    /// Starts a pass over every identity.
    fn begin(&mut self) {
        for entry in self.identities.values_mut().flat_map(HashMap::values_mut) {
            entry.seen = false;
        }
    }

    /// Logs the problems of `source`'s identity `domain` that appeared or cleared since the
    /// last pass, within the same hourly budget as a record's ([`state::changes_to_log`]).
    fn observe(&mut self, source: &str, domain: &str, findings: &[SesFinding]) {
        if !self.identities.contains_key(source) {
            self.identities.insert(source.to_string(), HashMap::new());
        }
        let Some(domains) = self.identities.get_mut(source) else {
            return;
        };
        if !domains.contains_key(domain) {
            domains.insert(domain.to_string(), LoggedIdentity::default());
        }
        let Some(entry) = domains.get_mut(domain) else {
            return;
        };
        entry.seen = true;
        let changes = state::changes_to_log(
            &entry.problems,
            findings,
            |f| f.problem,
            &mut entry.logged,
            Instant::now(),
        );
        // Kept whether or not the changes are logged (no allocation when there is no problem).
        entry.problems = findings.iter().map(|f| f.problem).collect();
        let Some(state::Changes {
            appeared,
            cleared,
            limit_reached,
        }) = changes
        else {
            return;
        };
        for finding in appeared {
            tracing::info!(
                source,
                domain,
                problem = finding.problem.as_str(),
                detail = %finding.detail,
                fix = finding.problem.fix(),
                "SES problem appeared"
            );
        }
        for problem in cleared {
            tracing::info!(
                source,
                domain,
                problem = problem.as_str(),
                "SES problem cleared"
            );
        }
        if let Some(changes) = limit_reached {
            tracing::warn!(
                source,
                domain,
                changes,
                "the identity's SES problems keep changing; its changes are not logged for the rest of the hour"
            );
        }
    }

    /// Forgets the identities not seen in this pass: removed from SES, or their source gone.
    fn forget_unseen(&mut self) {
        for domains in self.identities.values_mut() {
            domains.retain(|_, entry| entry.seen);
        }
        self.identities.retain(|_, domains| !domains.is_empty());
    }
}

/// Logs what a listing of `discovered`'s source brought: an error, identities that could not
/// be read, identities added and removed, and changes of SES's status.
fn log_listing(discovered: &Discovered, listing: &Result<Listing, String>) {
    let source = discovered.source.name.as_str();
    let listing = match listing {
        Err(error) => {
            tracing::warn!(
                source,
                %error,
                identities_kept = discovered.identities.len(),
                "SES discovery failed; keeping the identities of the last good listing"
            );
            return;
        }
        Ok(listing) => listing,
    };
    for (domain, error) in listing.unread.iter().take(5) {
        tracing::warn!(source, domain, %error, "SES identity could not be read; keeping its last reading");
    }
    if listing.unread.len() > 5 {
        tracing::warn!(
            source,
            more = listing.unread.len() - 5,
            "more SES identities could not be read"
        );
    }
    let first = discovered.success.is_none();
    let mut added = Vec::new();
    for identity in &listing.identities {
        match discovered.identity(&identity.domain) {
            None => added.push(identity.domain.as_str()),
            Some(old)
                if old.status != identity.status
                    || old.signing_enabled != identity.signing_enabled =>
            {
                tracing::info!(
                    source,
                    domain = %identity.domain,
                    from = old.status.map_or("unknown", |s| s.as_str()),
                    to = identity.status.map_or("unknown", |s| s.as_str()),
                    signing_enabled = identity.signing_enabled,
                    "SES DKIM status changed"
                );
            }
            Some(_) => {}
        }
    }
    let removed: Vec<&str> = discovered
        .identities
        .iter()
        .map(|i| i.domain.as_str())
        .filter(|d| {
            !listing.identities.iter().any(|i| i.domain == *d)
                && !listing.unread.iter().any(|(u, _)| u == d)
        })
        .collect();
    if first || !added.is_empty() || !removed.is_empty() {
        tracing::info!(
            source,
            identities = listing.identities.len(),
            added = %short_list(&added),
            removed = %short_list(&removed),
            "SES identities listed"
        );
    }
}

/// Up to five names, then how many more.
fn short_list(names: &[&str]) -> String {
    const SHOWN: usize = 5;
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

/// The domains of `targets` that `others` lacks, for the log: up to five names, then how many
/// more.
fn names_not_in(targets: &Targets, others: &Targets) -> String {
    let others: std::collections::HashSet<&str> =
        others.domains.iter().map(|d| d.name.as_str()).collect();
    let names: Vec<&str> = targets
        .domains
        .iter()
        .map(|d| d.name.as_str())
        .filter(|name| !others.contains(name))
        .collect();
    short_list(&names)
}
