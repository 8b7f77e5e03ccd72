//! Rounds: when each record is checked on each resolver.
//!
//! A round checks every record on every resolver once. Its checks are spread evenly over the
//! interval, per resolver, so no resolver sees a burst; resolvers are staggered by a fraction of
//! the spacing so that one record is checked on all of them at nearly the same moment (which
//! keeps agreement meaningful). Each resolver has its own dispatcher, which polls its checks
//! together, so a resolver that times out never delays the checks on the others, nor its own
//! later checks; a check waits for a place among the resolver's queries in flight before it
//! starts, so a round the exporter cannot keep up with takes longer instead of holding every
//! check in memory. A new round starts every interval; it only starts late when a politeness
//! limit makes the schedule longer than that, or when the round two back has not finished (at
//! most two rounds are ever in flight).

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use hickory_proto::rr::Name;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::check::{self, DomainDns, RecordTarget};
use crate::config::{Config, ResolverConfig};
use crate::evidence::{Failure, FailureReason, FollowUp, Observation};
use crate::metrics::Metrics;
use crate::provider::Expected;
use crate::resolver::authoritative::{Nameservers, RoundNameservers};
use crate::resolver::health::{self, Outcome, Tally};
use crate::resolver::{self, ResolverClient};
use crate::state::{RecordState, State, View};
use crate::targets::{self, Targets};

/// Everything a round needs, built once per config.
pub struct Work {
    /// Time between round starts.
    pub interval: Duration,
    /// One client per configured resolver, in config order.
    pub clients: Vec<Arc<ResolverClient>>,
    /// Every record, in config order. Shared with the work of the config before, where a
    /// record did not change: a reload does not hold every record's name twice.
    pub records: Vec<Arc<RecordWork>>,
    /// Number of records of each domain, by domain name.
    pub records_per_domain: HashMap<String, usize>,
    /// When each check of a round starts, relative to the round's start: one plan per
    /// resolver (indexed like `clients`).
    pub plans: Vec<Plan>,
    /// Clients for the domains' own nameservers, asked for every record when `authoritative`
    /// is on, and by the delegation walk of a domain no resolver can resolve.
    pub nameservers: Arc<Nameservers>,
    /// Whether every record is checked on its domain's own nameservers too.
    pub authoritative: bool,
}

/// One record to check.
pub struct RecordWork {
    /// `{selector}._domainkey.{domain}`, the key into [`State`]; the selector and the domain
    /// are read from it rather than kept as strings of their own.
    pub key: Box<str>,
    /// Length of the selector at the start of `key`.
    selector_length: usize,
    /// The same, as a DNS name to query. Kept rather than made for each check: parsing it
    /// cost an eighth of a round's CPU.
    pub name: Name,
    /// What the record should hold.
    pub expected: Expected,
}

impl RecordWork {
    /// The selector.
    pub fn selector(&self) -> &str {
        &self.key[..self.selector_length]
    }

    /// The owning domain.
    pub fn domain(&self) -> &str {
        &self.key[self.selector_length + targets::DOMAINKEY.len()..]
    }
}

/// When one resolver's checks of a round start: record `k` at `stagger + k × spacing`. A
/// formula rather than a list, so a plan costs nothing per record (a list of slots was 32 bytes
/// a record and resolver, 3.8 MB at 10,000 domains × 3 records × 4 resolvers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Index into [`Work::clients`].
    pub resolver: usize,
    /// Records to check.
    pub records: usize,
    /// The first check's offset: resolvers are staggered within one spacing.
    pub stagger: Duration,
    /// Time between two checks.
    pub spacing: Duration,
}

impl Plan {
    /// The plan's checks, in time order.
    pub fn slots(self) -> impl Iterator<Item = Slot> {
        (0..self.records).map(move |k| Slot {
            offset: self.stagger + self.spacing * k as u32,
            record: k,
            resolver: self.resolver,
        })
    }
}

/// One check in a round's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// When the check starts, after the start of the round.
    pub offset: Duration,
    /// Index into [`Work::records`].
    pub record: usize,
    /// Index into [`Work::clients`].
    pub resolver: usize,
}

/// What a new [`Work`] takes over from the one in force.
#[derive(Clone, Copy)]
pub enum Reuse<'a> {
    /// Nothing: the first work.
    Nothing,
    /// Its clients whose settings did not change, with their connections and limits (a probe,
    /// which checks a few records beside the daemon's).
    Clients(&'a Work),
    /// Its clients, and its records that did not change (a reload, which would otherwise hold
    /// every record's name twice).
    ClientsAndRecords(&'a Work),
}

impl Work {
    /// Everything to check `targets` with `config`'s resolvers and settings: a client per
    /// resolver (counting into `metrics`), and the domains' nameservers on `nameserver_port`
    /// when `authoritative` is on; what `reuse` says is taken from the work in force.
    pub fn from_config(
        config: &Config,
        targets: &Targets,
        metrics: &Arc<Metrics>,
        nameserver_port: u16,
        reuse: Reuse<'_>,
    ) -> Self {
        let (previous, records_of) = match reuse {
            Reuse::Nothing => (None, None),
            Reuse::Clients(work) => (Some(work), None),
            Reuse::ClientsAndRecords(work) => (Some(work), Some(work)),
        };
        let clients = config
            .resolvers
            .iter()
            .map(|r| {
                let kept = previous.and_then(|p| {
                    p.clients
                        .iter()
                        .find(|c| c.config == *r && c.timeout() == config.timeout)
                });
                match kept {
                    Some(client) => client.clone(),
                    None => Arc::new(ResolverClient::new(
                        r,
                        config.timeout,
                        metrics.resolver(&r.name),
                    )),
                }
            })
            .collect();
        let nameservers = previous
            .map(|p| p.nameservers.clone())
            .filter(|n| n.timeout() == config.timeout)
            .unwrap_or_else(|| {
                Arc::new(Nameservers::new(
                    nameserver_port,
                    config.timeout,
                    metrics.clone(),
                ))
            });
        Work::new(config, targets, clients, nameservers, records_of)
    }

    /// Prepares the records of `targets` and the plan for `config` with the given clients,
    /// reusing the records of `records_of` that did not change.
    pub fn new(
        config: &Config,
        targets: &Targets,
        clients: Vec<Arc<ResolverClient>>,
        nameservers: Arc<Nameservers>,
        records_of: Option<&Work>,
    ) -> Self {
        let kept: HashMap<&str, &Arc<RecordWork>> = records_of
            .map(|p| p.records.iter().map(|r| (&*r.key, r)).collect())
            .unwrap_or_default();
        let mut records = Vec::with_capacity(targets.record_count());
        let mut records_per_domain = HashMap::new();
        for domain in &targets.domains {
            records_per_domain.insert(domain.name.clone(), domain.records.len());
            for record in &domain.records {
                let key = record.name(&domain.name);
                if let Some(&same) = kept.get(key.as_str())
                    && same.expected == record.expected
                {
                    records.push(same.clone());
                    continue;
                }
                // Every source validates its names; a failure here would be a bug,
                // and skipping the record is safer than stopping the daemon.
                let name = match Name::from_ascii(format!("{key}.")) {
                    Ok(name) => name,
                    Err(e) => {
                        tracing::error!(record = %key, error = %e, "cannot form a DNS name; record skipped");
                        continue;
                    }
                };
                records.push(Arc::new(RecordWork {
                    key: key.into_boxed_str(),
                    selector_length: record.selector.len(),
                    name,
                    expected: record.expected.clone(),
                }));
            }
        }
        let plans = plan(config.interval, records.len(), &config.resolvers);
        Work {
            interval: config.interval,
            clients,
            records,
            records_per_domain,
            plans,
            nameservers,
            authoritative: config.authoritative,
        }
    }
}

/// Spreads `records` checks per resolver evenly over `interval`, no closer together than the
/// resolver's rate limit allows, with resolvers staggered within one spacing: one plan per
/// resolver, in config order.
pub fn plan(interval: Duration, records: usize, resolvers: &[ResolverConfig]) -> Vec<Plan> {
    resolvers
        .iter()
        .enumerate()
        .map(|(j, resolver)| {
            let even = interval / records.max(1) as u32;
            let spacing = match resolver.max_queries_per_second {
                0 => even,
                qps => even.max(Duration::from_secs(1) / qps),
            };
            // A one-shot check (no interval) is meant to go as fast as the limit allows.
            if records > 0 && spacing > even && !interval.is_zero() {
                tracing::warn!(
                    resolver = %resolver.name,
                    records,
                    max_queries_per_second = resolver.max_queries_per_second,
                    "checking every record within the interval would exceed the resolver's rate limit; rounds will take longer"
                );
            }
            Plan {
                resolver: j,
                records,
                stagger: spacing / resolvers.len() as u32 * j as u32,
                spacing,
            }
        })
        .collect()
}

/// Runs a single round with `work`'s plan and waits for it to complete.
pub async fn run_once(work: Arc<Work>, state: Arc<RwLock<State>>) {
    let (dispatched, _) = oneshot::channel();
    run_round(
        work,
        state,
        Instant::now(),
        dispatched,
        false,
        CancellationToken::new(),
    )
    .await;
}

/// Runs rounds until `shutdown`, the first at once, each with the newest work `works` holds.
pub async fn run(
    mut works: watch::Receiver<Arc<Work>>,
    state: Arc<RwLock<State>>,
    shutdown: CancellationToken,
) {
    // The round before the current one. Its stragglers (a dead resolver's timeouts, follow-ups)
    // may still run while the next round starts, but a round never starts before the one two
    // back has finished: at most two rounds are in flight, so an overloaded exporter slows its
    // rounds down instead of piling up work without bound.
    let mut previous: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let start = Instant::now();
        let work = works.borrow_and_update().clone();
        let (dispatched_tx, dispatched_rx) = oneshot::channel();
        let round = tokio::spawn(run_round(
            work.clone(),
            state.clone(),
            start,
            dispatched_tx,
            true,
            shutdown.clone(),
        ));
        // Wait until every check of this round has started and the interval has passed.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = dispatched_rx => {}
        }
        // Wait out the interval; a reload that changes it moves the next start.
        let mut interval = work.interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(start + interval) => break,
                changed = works.changed() => {
                    if changed.is_err() {
                        // The exporter is gone: nothing more to check.
                        return;
                    }
                    interval = works.borrow().interval;
                }
            }
        }
        if let Some(before) = previous.take() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                // A panicked round has been reported by the runtime; carry on.
                _ = before => {}
            }
        }
        previous = Some(round);
    }
}

/// Follow-ups that may run at once in a round; the rest wait as indices.
const FOLLOW_UPS: usize = 2 * resolver::IN_FLIGHT;

/// How many results the round applies under one lock of the state.
const BATCH: usize = 256;

/// What a task of a round hands back.
enum Done {
    /// One record checked on one configured resolver.
    Check(Slot, Result<Observation, Failure>),
    /// A record's follow-up, after all configured resolvers were asked.
    FollowUp(usize, FollowUp),
    /// A resolver's dispatcher has started its last check.
    Dispatched,
}

/// One round: each resolver's checks start at their slots, each result is recorded as it
/// arrives, each record is followed up once every configured resolver has answered or failed,
/// and the round is complete when the last follow-up is done. When it `judge`s (the daemon's
/// rounds, not one-off checks), it then says which resolvers worked ([`health`]).
async fn run_round(
    work: Arc<Work>,
    state: Arc<RwLock<State>>,
    start: Instant,
    dispatched: oneshot::Sender<()>,
    judge: bool,
    shutdown: CancellationToken,
) {
    let resolvers = work.clients.len();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    // Dropping the round (shutdown) aborts the dispatchers, and with them their checks.
    let mut dispatchers = JoinSet::new();
    for resolver in 0..resolvers {
        dispatchers.spawn(dispatch(work.clone(), resolver, start, done_tx.clone()));
    }
    let mut follow_ups = JoinSet::new();
    // Checks still to come back, per record; follow-ups still to come back, per domain.
    let mut record_left: Vec<usize> = vec![resolvers; work.records.len()];
    let mut domain_left: HashMap<&str, usize> = work
        .records_per_domain
        .iter()
        .map(|(d, n)| (d.as_str(), *n))
        .collect();
    let mut checks_left = work.records.len() * resolvers;
    let mut follow_ups_left = if resolvers == 0 {
        0
    } else {
        work.records.len()
    };
    let mut dispatchers_left = resolvers;
    let mut dispatched = Some(dispatched);
    let nameservers = Arc::new(RoundNameservers::default());
    let mut batch = Vec::with_capacity(BATCH);
    // Records whose checks are all back, waiting for a place to be followed up.
    let mut waiting: VecDeque<usize> = VecDeque::new();
    let mut following = 0;
    // What each resolver did this round: configured ones by index, nameservers by name.
    let mut tallies = vec![Tally::default(); resolvers];
    // Why each configured resolver's checks failed, by reason, for the log when it goes down.
    let mut reasons = vec![[0u32; FailureReason::ALL.len()]; resolvers];
    let mut auth_tallies: HashMap<String, Tally> = HashMap::new();
    let mut walked: HashSet<String> = HashSet::new();

    loop {
        if dispatchers_left == 0
            && let Some(tx) = dispatched.take()
        {
            let _ = tx.send(());
        }
        if checks_left == 0 && follow_ups_left == 0 {
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = done_rx.recv_many(&mut batch, BATCH) => {
                // The round holds a sender, so the channel never closes under it.
                if received == 0 {
                    break;
                }
            }
            Some(joined) = follow_ups.join_next(), if !follow_ups.is_empty() => {
                // Follow-ups report through the channel; a panic is a bug, reported by the
                // runtime, and its record simply has no follow-up this round.
                if let Err(e) = joined
                    && e.is_panic() {
                        tracing::error!(error = %e, "a follow-up task failed");
                        follow_ups_left -= 1;
                        following -= 1;
                    }
            }
        }
        let mut start_now = Vec::new();
        {
            let mut state = state.write().unwrap_or_else(|e| e.into_inner());
            for done in batch.drain(..) {
                match done {
                    Done::Dispatched => dispatchers_left -= 1,
                    Done::Check(slot, outcome) => {
                        checks_left -= 1;
                        if let (Err(failure), Some(counts)) =
                            (&outcome, reasons.get_mut(slot.resolver))
                            && let Some(i) =
                                FailureReason::ALL.iter().position(|r| *r == failure.reason)
                        {
                            counts[i] += 1;
                        }
                        let record = &work.records[slot.record];
                        let resolver = &work.clients[slot.resolver].name;
                        match &outcome {
                            Ok(observation) => {
                                tracing::debug!(
                                    record = %record.key,
                                    resolver = %resolver,
                                    record_type = observation.found.record_type(),
                                    value = observation.found.value(),
                                    correct = observation.correct,
                                    "checked"
                                )
                            }
                            Err(failure) => {
                                tracing::debug!(record = %record.key, resolver = %resolver, reason = failure.reason.as_str(), "lookup failed")
                            }
                        }
                        state.apply(&record.key, resolver, outcome);
                        record_left[slot.record] -= 1;
                        if record_left[slot.record] == 0 {
                            waiting.push_back(slot.record);
                        }
                    }
                    Done::FollowUp(index, follow_up) => {
                        follow_ups_left -= 1;
                        following -= 1;
                        let record = &work.records[index];
                        if let Some(walk) = &follow_up.walk {
                            // Answers about the parent zone show the resolvers work.
                            if walked.insert(walk.domain.clone()) {
                                for (client, tally) in work.clients.iter().zip(&mut tallies) {
                                    if walk.working.contains(&client.name) {
                                        tally.answered += 1;
                                    }
                                }
                            }
                        }
                        if let Some(r) = state.apply_follow_up(&record.key, follow_up) {
                            count(
                                &work,
                                &state,
                                &state.records[r],
                                &mut tallies,
                                &mut auth_tallies,
                            );
                        }
                        if let Some(left) = domain_left.get_mut(record.domain()) {
                            *left -= 1;
                            if *left == 0 {
                                state.domain_checked(record.domain(), unix_now());
                            }
                        }
                    }
                }
            }
            // Follow-ups start as places free up, so a backlog waits as a list of indices
            // rather than as tasks.
            while following < FOLLOW_UPS {
                let Some(index) = waiting.pop_front() else {
                    break;
                };
                following += 1;
                start_now.push((index, outcomes_this_round(&state, &work, index)));
            }
        }
        for (index, answered) in start_now {
            let (work, nameservers, done) = (work.clone(), nameservers.clone(), done_tx.clone());
            follow_ups.spawn(async move {
                let follow_up = follow_up(work, nameservers, index, answered).await;
                let _ = done.send(follow_up);
            });
        }
    }

    let in_use = nameservers.in_use();
    if judge {
        for ((client, tally), reasons) in work.clients.iter().zip(&tallies).zip(&reasons) {
            if tally.asked > 0 {
                log_verdict(client, tally, reasons);
                client.set_up(tally.working());
            }
        }
        for client in &in_use {
            if let Some(tally) = auth_tallies.get(&client.name).filter(|t| t.asked > 0) {
                client.set_up(tally.working());
            }
        }
        // Only the daemon's rounds say which nameservers are still in use: a one-off check
        // (`/probe`) shares the clients, and its few domains would drop every other's.
        work.nameservers.retain(&in_use);
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut state = state.write().unwrap_or_else(|e| e.into_inner());
    if judge && state.rounds.completed == 0 {
        let broken = state
            .records
            .iter()
            .filter(|r| !r.findings.is_empty())
            .count();
        tracing::info!(
            records = state.records.len(),
            with_problems = broken,
            seconds = format!("{seconds:.1}"),
            "first round complete"
        );
    }
    state.rounds.completed += 1;
    state.rounds.last_duration = Some(seconds);
    state.rounds.last_finished = Some(unix_now());
    tracing::debug!(round = state.rounds.completed, seconds, "round complete");
}

/// Starts one resolver's checks of a round at their slots, each once the resolver's client
/// has a place for it (see [`resolver::IN_FLIGHT`]), and reports each result through `done`.
///
/// The checks run inside this one task rather than as a task each: a check is a few
/// microseconds of work around one query, and spawning, scheduling and joining a task per
/// check cost about as much. Resolvers still run in parallel, each on its own dispatcher, and
/// a slow check holds back nothing, since all of a resolver's checks are polled together.
async fn dispatch(
    work: Arc<Work>,
    resolver: usize,
    start: Instant,
    done: mpsc::UnboundedSender<Done>,
) {
    let client = &work.clients[resolver];
    let mut slots = work.plans[resolver].slots().peekable();
    let mut running = FuturesUnordered::new();
    let mut dispatched = false;
    loop {
        let next = slots.peek().copied();
        if next.is_none() && !dispatched {
            dispatched = true;
            let _ = done.send(Done::Dispatched);
        }
        // When the exporter is behind its schedule, checks wait for a place as slots of the
        // plan, not as futures: memory stays bounded by the places.
        let place = async {
            if let Some(slot) = next {
                let at = start + slot.offset;
                if at > Instant::now() {
                    tokio::time::sleep_until(at).await;
                }
            }
            client.place().await
        };
        tokio::select! {
            biased;
            Some((slot, outcome)) = running.next() => {
                let _ = done.send(Done::Check(slot, outcome));
            }
            place = place, if next.is_some() => {
                let Some(slot) = slots.next() else { continue };
                let record = &work.records[slot.record];
                running.push(async move {
                    let check = check::check_record(client, place, &record.name, &record.expected);
                    // A panic is a bug; the round must still hear of the check, or it would
                    // never end.
                    let outcome = AssertUnwindSafe(check).catch_unwind().await.unwrap_or_else(|_| {
                        tracing::error!(record = %record.key, resolver = %client.name, "a check panicked");
                        Err(Failure::new(FailureReason::Other, "internal error"))
                    });
                    (slot, outcome)
                });
            }
            else => break,
        }
    }
}

/// Logs a configured resolver going down (with why) or coming back.
fn log_verdict(client: &ResolverClient, tally: &Tally, reasons: &[u32]) {
    match (client.up(), tally.working()) {
        (None | Some(true), false) => {
            let reason = FailureReason::ALL
                .iter()
                .zip(reasons)
                .filter(|(_, n)| **n > 0)
                .max_by_key(|(_, n)| **n)
                .map_or("none", |(r, _)| r.as_str());
            tracing::warn!(
                resolver = %client.name,
                answered = tally.answered,
                failed_where_others_answered = tally.own_failures,
                reason,
                "resolver is down"
            );
        }
        (Some(false), true) => {
            tracing::info!(resolver = %client.name, answered = tally.answered, "resolver is working again");
        }
        _ => {}
    }
}

/// What the configured resolvers said of a record this round: those that answered, with what,
/// and those that failed, with whether DNSSEC validation explains it.
type RoundOutcomes = (
    Vec<(Arc<ResolverClient>, Observation)>,
    Vec<(Arc<ResolverClient>, bool)>,
);

/// The configured resolvers' outcomes for the record this round.
fn outcomes_this_round(state: &State, work: &Work, record: usize) -> RoundOutcomes {
    let (mut answered, mut failed) = (Vec::new(), Vec::new());
    let Some(known) = state.record(&work.records[record].key) else {
        return (answered, failed);
    };
    // Matched by name: after a reload the state's resolvers may no longer be this work's.
    for (name, view) in known.all_views(&state.resolvers) {
        let Some(client) = work.clients.iter().find(|c| c.name == name) else {
            continue;
        };
        match (view.latest_ok, view.answering()) {
            (_, Some(observation)) => answered.push((client.clone(), observation.clone())),
            (Some(false), None) => failed.push((client.clone(), view.dnssec_bogus)),
            _ => {}
        }
    }
    (answered, failed)
}

/// Counts what every resolver, configured and `auth:`, did with a record into the round's
/// tallies.
fn count(
    work: &Work,
    state: &State,
    record: &RecordState,
    tallies: &mut [Tally],
    auth_tallies: &mut HashMap<String, Tally>,
) {
    let outcome = |view: &View| match view.latest_ok {
        None => Outcome::NotAsked,
        Some(true) => Outcome::Answered,
        Some(false) => Outcome::Failed {
            dnssec_bogus: view.dnssec_bogus,
        },
    };
    // In the work's order, matched by name.
    let configured: Vec<Outcome> = work
        .clients
        .iter()
        .map(|client| {
            record
                .all_views(&state.resolvers)
                .find(|(name, _)| *name == client.name)
                .map_or(Outcome::NotAsked, |(_, view)| outcome(view))
        })
        .collect();
    health::count_record(tallies, &configured);
    let auth: Vec<Outcome> = record.auth.iter().map(|(_, view)| outcome(view)).collect();
    let mut auth_round: Vec<Tally> = record
        .auth
        .iter()
        .map(|(name, _)| auth_tallies.get(name).copied().unwrap_or_default())
        .collect();
    health::count_record(&mut auth_round, &auth);
    for ((name, _), tally) in record.auth.iter().zip(auth_round) {
        auth_tallies.insert(name.clone(), tally);
    }
}

/// Runs a record's follow-up: its nameservers (found once per domain and round), the extra
/// lookups and the key, or the walk of its domain's delegation.
async fn follow_up(
    work: Arc<Work>,
    round: Arc<RoundNameservers>,
    index: usize,
    (answered, failed): RoundOutcomes,
) -> Done {
    let record = &work.records[index];
    let servers = if work.authoritative {
        // Boxed so that a follow-up without authoritative checks stays small.
        Box::pin(work.nameservers.of(&round, record.domain(), &work.clients)).await
    } else {
        None
    };
    let target = RecordTarget {
        name: &record.name,
        domain: record.domain(),
        selector: record.selector(),
        expected: &record.expected,
    };
    let dns = DomainDns {
        nameservers: &work.nameservers,
        round: &round,
    };
    Done::FollowUp(
        index,
        check::follow_up(&target, &answered, &failed, servers, dns).await,
    )
}

/// Seconds since the Unix epoch, as Prometheus timestamps are given.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The shortest round the politeness limits allow for `records` records: on each resolver
/// with a `max_queries_per_second`, one query per record at that rate (follow-ups only add to
/// it). Returns the resolver that takes longest, its limit, and that time; `None` when no
/// resolver has a limit.
pub fn shortest_round(config: &Config, records: usize) -> Option<(&str, u32, Duration)> {
    config
        .resolvers
        .iter()
        .filter(|r| r.max_queries_per_second > 0)
        .map(|r| {
            let seconds = records as f64 / f64::from(r.max_queries_per_second);
            (
                r.name.as_str(),
                r.max_queries_per_second,
                Duration::from_secs_f64(seconds),
            )
        })
        .max_by_key(|(_, _, d)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;

    fn resolver(name: &str, qps: u32) -> ResolverConfig {
        ResolverConfig {
            name: name.into(),
            address: "127.0.0.1:53".parse().unwrap(),
            protocol: Protocol::Udp,
            max_queries_per_second: qps,
            tls: None,
        }
    }

    #[test]
    fn checks_are_spread_evenly_and_staggered() {
        let resolvers = [resolver("a", 0), resolver("b", 0)];
        let mut offsets: Vec<_> = plan(Duration::from_secs(60), 3, &resolvers)
            .into_iter()
            .flat_map(Plan::slots)
            .map(|s| (s.offset.as_secs(), s.resolver, s.record))
            .collect();
        offsets.sort();
        assert_eq!(
            offsets,
            [
                (0, 0, 0),
                (10, 1, 0),
                (20, 0, 1),
                (30, 1, 1),
                (40, 0, 2),
                (50, 1, 2)
            ]
        );
    }

    #[test]
    fn rate_limit_stretches_the_schedule() {
        // 100 records in 10s would be 10 per second; the limit is 5.
        let slots = plan(Duration::from_secs(10), 100, &[resolver("slow", 5)])[0].slots();
        assert_eq!(
            slots.last().unwrap().offset,
            Duration::from_millis(99 * 200)
        );
        // Unlimited: evenly over the interval.
        let slots = plan(Duration::from_secs(10), 100, &[resolver("fast", 0)])[0].slots();
        assert_eq!(slots.last().unwrap().offset, Duration::from_millis(9_900));
    }
}
