//! One round: every record checked once on every configured resolver, each record followed
//! up once all of them answered or failed, and at the end, for the daemon's rounds, a verdict
//! on every resolver.
//!
//! The round's task owns a [`Round`]: what is still outstanding, the records waiting for a
//! follow-up, and what each resolver did ([`Health`]). Checks and follow-ups run elsewhere
//! (one dispatcher per resolver, a task per follow-up) and hand their results back through
//! one channel, which the round applies to the state a batch at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Slot, Work};
use crate::check::{self, DomainDns, RecordToCheck};
use crate::evidence::{Failure, FailureReason, FollowUp, Observation};
use crate::resolver::health::{self, Outcome, Tally};
use crate::resolver::nameservers::RoundNameservers;
use crate::resolver::{self, ResolverClient};
use crate::state::{Latest, RecordState, SharedState, State, unix_now};

/// Whose round it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundKind {
    /// The daemon's: at its end, it says which resolvers work and which nameservers are still
    /// in use.
    Daemon,
    /// A one-off check's (`/probe`, `dkim_exporter check`): a few records beside the daemon's,
    /// too few to say anything about the resolvers they share.
    OneOff,
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

/// Runs one round of `work` from `start`: each resolver's checks start at their slots, each
/// result is applied to `state` as it arrives, each record is followed up once every
/// configured resolver has answered or failed, and the round is complete when the last
/// follow-up is done. `dispatched` is told when every check has started.
pub(super) async fn run_round(
    work: Arc<Work>,
    state: SharedState,
    start: Instant,
    dispatched: oneshot::Sender<()>,
    kind: RoundKind,
    shutdown: CancellationToken,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    // Dropping the round (shutdown) aborts the dispatchers, and with them their checks.
    let mut dispatchers = JoinSet::new();
    for resolver in 0..work.clients.len() {
        dispatchers.spawn(dispatch(work.clone(), resolver, start, done_tx.clone()));
    }
    let mut follow_ups = JoinSet::new();
    let nameservers = Arc::new(RoundNameservers::default());
    let mut round = Round::new(&work);
    let mut dispatched = Some(dispatched);
    let mut batch = Vec::with_capacity(BATCH);
    while !round.complete() {
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
                if let Err(e) = joined && e.is_panic() {
                    tracing::error!(error = %e, "a follow-up task failed");
                    round.follow_up_ended();
                }
            }
        }
        let start_now = state.update(|state| {
            for done in batch.drain(..) {
                round.apply(state, done);
            }
            round.follow_ups_to_start(state)
        });
        for (index, outcomes) in start_now {
            let (work, nameservers, done) = (work.clone(), nameservers.clone(), done_tx.clone());
            follow_ups.spawn(async move {
                let _ = done.send(run_follow_up(work, nameservers, index, outcomes).await);
            });
        }
        if round.dispatchers_left == 0
            && let Some(tx) = dispatched.take()
        {
            let _ = tx.send(());
        }
    }
    if let Some(tx) = dispatched.take() {
        let _ = tx.send(());
    }
    if kind == RoundKind::Daemon {
        round.health.give_verdicts(&work, &nameservers);
    }
    let seconds = start.elapsed().as_secs_f64();
    state.update(|state| round_complete(state, kind, seconds));
}

/// Notes the round complete in `state`, and says so once for the daemon's first.
fn round_complete(state: &mut State, kind: RoundKind, seconds: f64) {
    if kind == RoundKind::Daemon && state.rounds().completed == 0 {
        let broken = state
            .records()
            .iter()
            .filter(|r| !r.findings.is_empty())
            .count();
        tracing::info!(
            records = state.records().len(),
            with_problems = broken,
            seconds = format!("{seconds:.1}"),
            "first round complete"
        );
    }
    state.round_complete(seconds, unix_now());
    tracing::debug!(round = state.rounds().completed, seconds, "round complete");
}

/// What a round has still to hear of, and what it learnt of the resolvers so far.
struct Round<'w> {
    /// The work of the round.
    work: &'w Work,
    /// Checks still to come back, per record.
    record_left: Vec<usize>,
    /// Follow-ups still to come back, per domain.
    domain_left: HashMap<&'w str, usize>,
    /// Checks still to come back in all.
    checks_left: usize,
    /// Follow-ups still to come back in all.
    follow_ups_left: usize,
    /// Dispatchers that have not started their last check.
    dispatchers_left: usize,
    /// Records whose checks are all back, waiting for a place to be followed up.
    waiting: VecDeque<usize>,
    /// Follow-ups running.
    following: usize,
    /// What each resolver did.
    health: Health,
}

impl<'w> Round<'w> {
    fn new(work: &'w Work) -> Self {
        let resolvers = work.clients.len();
        let mut domain_left: HashMap<&str, usize> = HashMap::new();
        for record in &work.records {
            *domain_left.entry(record.domain()).or_default() += 1;
        }
        Round {
            work,
            record_left: vec![resolvers; work.records.len()],
            domain_left,
            checks_left: work.records.len() * resolvers,
            follow_ups_left: if resolvers == 0 {
                0
            } else {
                work.records.len()
            },
            dispatchers_left: resolvers,
            waiting: VecDeque::new(),
            following: 0,
            health: Health::new(resolvers),
        }
    }

    /// Every check and every follow-up is back.
    fn complete(&self) -> bool {
        self.checks_left == 0 && self.follow_ups_left == 0
    }

    /// Applies one result to `state`.
    fn apply(&mut self, state: &mut State, done: Done) {
        match done {
            Done::Dispatched => self.dispatchers_left -= 1,
            Done::Check(slot, outcome) => self.checked(state, slot, outcome),
            Done::FollowUp(index, follow_up) => self.followed_up(state, index, follow_up),
        }
    }

    /// A check is back: its result goes into the state, and its record waits for a follow-up
    /// once every resolver's check of it is back.
    fn checked(&mut self, state: &mut State, slot: Slot, outcome: Result<Observation, Failure>) {
        self.checks_left -= 1;
        let work = self.work;
        let record = &work.records[slot.record];
        let resolver = &work.clients[slot.resolver].name;
        match &outcome {
            Ok(observation) => tracing::debug!(
                record = %record.key,
                resolver = %resolver,
                record_type = observation.found.record_type(),
                value = observation.found.value(),
                correct = observation.correct,
                "checked"
            ),
            Err(failure) => {
                self.health.failed(slot.resolver, failure.reason);
                tracing::debug!(
                    record = %record.key,
                    resolver = %resolver,
                    reason = failure.reason.as_str(),
                    "lookup failed"
                );
            }
        }
        state.apply(&record.key, resolver, outcome);
        self.record_left[slot.record] -= 1;
        if self.record_left[slot.record] == 0 {
            self.waiting.push_back(slot.record);
        }
    }

    /// A follow-up is back: it goes into the state, what the record's resolvers did is
    /// counted, and its domain is checked once its last record's follow-up is back.
    fn followed_up(&mut self, state: &mut State, index: usize, follow_up: FollowUp) {
        self.follow_up_ended();
        let work = self.work;
        let record = &work.records[index];
        if let Some(walk) = &follow_up.walk {
            self.health.walked(work, &walk.domain, &walk.working);
        }
        if let Some(r) = state.apply_follow_up(&record.key, follow_up, unix_now()) {
            self.health.count(work, state, &state.records()[r]);
        }
        if let Some(left) = self.domain_left.get_mut(record.domain()) {
            *left -= 1;
            if *left == 0 {
                state.domain_checked(record.domain(), unix_now());
            }
        }
    }

    /// A follow-up ended, with a result or without one (it panicked).
    fn follow_up_ended(&mut self) {
        self.follow_ups_left -= 1;
        self.following -= 1;
    }

    /// The records to follow up now, as places free up, with what their resolvers said: a
    /// backlog waits as a list of indices rather than as tasks.
    fn follow_ups_to_start(&mut self, state: &State) -> Vec<(usize, RoundOutcomes)> {
        let mut start = Vec::new();
        while self.following < FOLLOW_UPS {
            let Some(index) = self.waiting.pop_front() else {
                break;
            };
            self.following += 1;
            start.push((index, outcomes_this_round(state, self.work, index)));
        }
        start
    }
}

/// What each resolver did in a round, for the verdict on it at the end ([`health`]).
struct Health {
    /// The configured resolvers', by index.
    tallies: Vec<Tally>,
    /// Why each configured resolver's checks failed, by reason, for the log when it goes down.
    reasons: Vec<[u32; FailureReason::ALL.len()]>,
    /// The domains' nameservers', by name.
    nameservers: HashMap<String, Tally>,
    /// Domains whose delegation was walked: the resolvers' answers about each parent zone are
    /// counted once.
    walked: HashSet<String>,
}

impl Health {
    fn new(resolvers: usize) -> Self {
        Health {
            tallies: vec![Tally::default(); resolvers],
            reasons: vec![[0; FailureReason::ALL.len()]; resolvers],
            nameservers: HashMap::new(),
            walked: HashSet::new(),
        }
    }

    /// A configured resolver's check failed for `reason`.
    fn failed(&mut self, resolver: usize, reason: FailureReason) {
        if let (Some(counts), Some(i)) = (
            self.reasons.get_mut(resolver),
            FailureReason::ALL.iter().position(|r| *r == reason),
        ) {
            counts[i] += 1;
        }
    }

    /// The delegation of `domain` was walked: answers about the parent zone show that the
    /// resolvers named `working` work.
    fn walked(&mut self, work: &Work, domain: &str, working: &[String]) {
        if !self.walked.insert(domain.to_string()) {
            return;
        }
        for (client, tally) in work.clients.iter().zip(&mut self.tallies) {
            if working.contains(&client.name) {
                tally.answered += 1;
            }
        }
    }

    /// Counts what every resolver, configured and nameserver, did with `record`.
    fn count(&mut self, work: &Work, state: &State, record: &RecordState) {
        // In the work's order, matched by name: after a reload the state's resolvers may no
        // longer be this work's.
        let configured: Vec<Outcome> = work
            .clients
            .iter()
            .map(|client| {
                record
                    .all_views(state.resolvers())
                    .find(|(name, _)| *name == client.name)
                    .map_or(Outcome::NotAsked, |(_, view)| outcome(view.latest))
            })
            .collect();
        health::count_record(&mut self.tallies, &configured);
        let nameservers: Vec<Outcome> = record
            .nameservers
            .iter()
            .map(|(_, view)| outcome(view.latest))
            .collect();
        let mut tallies: Vec<Tally> = record
            .nameservers
            .iter()
            .map(|(name, _)| self.nameservers.get(name).copied().unwrap_or_default())
            .collect();
        health::count_record(&mut tallies, &nameservers);
        for ((name, _), tally) in record.nameservers.iter().zip(tallies) {
            self.nameservers.insert(name.clone(), tally);
        }
    }

    /// Says which resolvers worked this round (logging those that went down or came back),
    /// and forgets the nameservers no longer in use.
    fn give_verdicts(&self, work: &Work, round: &RoundNameservers) {
        for ((client, tally), reasons) in work.clients.iter().zip(&self.tallies).zip(&self.reasons)
        {
            if tally.asked > 0 {
                log_verdict(client, tally, reasons);
                client.set_up(tally.working());
            }
        }
        let in_use = round.in_use();
        for client in &in_use {
            if let Some(tally) = self.nameservers.get(&client.name).filter(|t| t.asked > 0) {
                client.set_up(tally.working());
            }
        }
        // Only the daemon's rounds say which nameservers are still in use: a one-off check
        // shares the clients, and its few domains would drop every other's.
        work.nameservers.retain(&in_use);
    }
}

/// What a lookup's latest outcome tells of the resolver.
fn outcome(latest: Latest) -> Outcome {
    match latest {
        Latest::NotAsked => Outcome::NotAsked,
        Latest::Answered => Outcome::Answered,
        Latest::Failed { dnssec_bogus, .. } => Outcome::Failed { dnssec_bogus },
    }
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
    for (name, view) in known.all_views(state.resolvers()) {
        let Some(client) = work.clients.iter().find(|c| c.name == name) else {
            continue;
        };
        match (view.latest, view.answering()) {
            (_, Some(observation)) => answered.push((client.clone(), observation.clone())),
            (Latest::Failed { dnssec_bogus, .. }, None) => {
                failed.push((client.clone(), dnssec_bogus));
            }
            _ => {}
        }
    }
    (answered, failed)
}

/// Runs a record's follow-up: its nameservers (found once per domain and round), the extra
/// lookups and the key, or the walk of its domain's delegation.
async fn run_follow_up(
    work: Arc<Work>,
    round: Arc<RoundNameservers>,
    index: usize,
    (answered, failed): RoundOutcomes,
) -> Done {
    let record = &work.records[index];
    let servers = if work.authoritative {
        // Boxed so that a follow-up without the nameservers' checks stays small.
        Box::pin(work.nameservers.of(&round, record.domain(), &work.clients)).await
    } else {
        None
    };
    let to_check = RecordToCheck {
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
        check::follow_up(&to_check, &answered, &failed, servers, dns).await,
    )
}
