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

mod round;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ResolverConfig};
use crate::metrics::Metrics;
use crate::provider::Expected;
use crate::records::{self, Records};
use crate::resolver::ResolverClient;
use crate::resolver::nameservers::Nameservers;
use crate::state::SharedState;
pub use round::RoundKind;
use round::run_round;

/// Everything a round needs, built once per config.
pub struct Work {
    /// Time between round starts.
    pub interval: Duration,
    /// One client per configured resolver, in config order.
    pub clients: Vec<Arc<ResolverClient>>,
    /// Every record, in config order. Shared with the work of the config before, where a
    /// record did not change: a reload does not hold every record's name twice.
    pub records: Vec<Arc<RecordWork>>,
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
    /// The same, as a DNS name to query, made once rather than for each check.
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
        &self.key[self.selector_length + records::DOMAINKEY.len()..]
    }
}

/// When one resolver's checks of a round start: record `k` at `stagger + k × spacing`. A
/// formula rather than a list, so a plan costs nothing per record.
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
    /// Everything to check `declared` with `config`'s resolvers and settings: a client per
    /// resolver (counting into `metrics`), and the domains' nameservers on `nameserver_port`
    /// when `authoritative` is on; what `reuse` says is taken from the work in force.
    pub fn from_config(
        config: &Config,
        declared: &Records,
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
        Work::new(config, declared, clients, nameservers, records_of)
    }

    /// Prepares the records of `declared` and the plan for `config` with the given clients,
    /// reusing the records of `records_of` that did not change.
    pub fn new(
        config: &Config,
        declared: &Records,
        clients: Vec<Arc<ResolverClient>>,
        nameservers: Arc<Nameservers>,
        records_of: Option<&Work>,
    ) -> Self {
        let kept: HashMap<&str, &Arc<RecordWork>> = records_of
            .map(|p| p.records.iter().map(|r| (&*r.key, r)).collect())
            .unwrap_or_default();
        let mut records = Vec::with_capacity(declared.record_count());
        for domain in &declared.domains {
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
pub async fn run_once(work: Arc<Work>, state: SharedState) {
    let (dispatched, _) = oneshot::channel();
    run_round(
        work,
        state,
        Instant::now(),
        dispatched,
        RoundKind::OneOff,
        CancellationToken::new(),
    )
    .await;
}

/// Runs rounds until `shutdown`, the first at once, each with the newest work `works` holds.
pub async fn run(
    mut works: watch::Receiver<Arc<Work>>,
    state: SharedState,
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
            RoundKind::Daemon,
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
