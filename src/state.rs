//! The latest known results: what every resolver last said about every record, and the round
//! bookkeeping. `/metrics` and the landing page render from this and nothing else, so a record
//! or resolver removed from the config cannot linger.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::changes::{self, Budget, Subject};
use crate::config::{Config, Detail};
use crate::diagnosis::{Evidence, Failed, Finding, diagnose, unix_time};
use crate::dkim::{DkimKey, Fingerprint};
use crate::evidence::{
    Ede, Extra, Failure, FailureReason, FollowUp, Found, KeyLookup, Keys, Observation, Signature,
    Walk,
};
use crate::problem::Problem;
use crate::provider::Expected;
use crate::records::{self, Record, Records};

/// The state the scheduler, the HTTP handlers and the sources share. It owns the lock, so that
/// poisoning is handled once: a panic while it was held is a bug, already reported, and what
/// was written before it stays readable.
#[derive(Debug, Clone, Default)]
pub struct SharedState(Arc<RwLock<State>>);

impl SharedState {
    /// Shares `state`.
    pub fn new(state: State) -> Self {
        SharedState(Arc::new(RwLock::new(state)))
    }

    /// Reads the state; writers wait until the guard is dropped.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state through its operations, under one lock.
    pub fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        change(&mut self.0.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes the state out, leaving an empty one: what a one-off check found.
    pub fn take(&self) -> State {
        self.update(std::mem::take)
    }
}

/// Everything known, in config order. Read through its methods; changed only by
/// [`State::reconcile`], the results of lookups and the end of rounds.
#[derive(Debug, Default)]
pub struct State {
    /// Whether problems appearing and clearing are logged: the daemon's state, not a one-off
    /// check's.
    log_changes: bool,
    /// Configured resolver names, in config order; record views are indexed alike.
    resolvers: Vec<ResolverState>,
    /// Configured domains, in config order.
    domains: Vec<DomainState>,
    /// Every configured record, grouped by domain in config order. Boxed, so that a reload
    /// moves pointers into the new list rather than copies of whole records, and holds two
    /// lists of pointers at its peak rather than two of records.
    #[allow(clippy::vec_box)]
    records: Vec<Box<RecordState>>,
    /// Completed check rounds.
    rounds: RoundState,
    /// How much of each record `/metrics` exports, from the config in force.
    detail: Detail,
    /// Index into `resolvers` by name.
    resolver_index: Index,
    /// Index into `domains` by name: every result of a round looks its domain up here.
    domain_index: Index,
    /// Bumped by every [`State::reconcile`], the one change that renumbers records and domains,
    /// so that a reader working through them in several steps can tell its positions went stale.
    generation: u64,
}

/// What is known about one resolver as a whole.
#[derive(Debug, Clone, Default)]
pub struct ResolverState {
    /// The `resolver` label.
    pub name: String,
}

/// Per-domain bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct DomainState {
    /// The domain name, lower case.
    pub name: String,
    /// Unix time at which the latest round finished checking every record of the domain.
    pub last_check: Option<f64>,
    /// Where the domain's records are in [`State::records`], which keeps each domain's records
    /// together: per-domain verdicts read these instead of searching every record.
    pub records: Range<usize>,
    /// The two records (indices into [`State::records`]) of a rotating pair of selectors.
    pub rotating_pair: Option<(usize, usize)>,
}

/// Round bookkeeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundState {
    /// How many rounds have completed.
    pub completed: u64,
    /// Length in seconds of the latest completed round.
    pub last_duration: Option<f64>,
    /// Unix time at which the latest round finished.
    pub last_finished: Option<f64>,
}

/// One record and what each resolver last said about it.
#[derive(Debug, Clone)]
pub struct RecordState {
    /// Owning domain, lower case; one string shared by the domain's records.
    pub domain: Arc<str>,
    /// Selector, lower case.
    pub selector: String,
    /// What the record should hold.
    pub expected: Expected,
    /// The `ses:` source it was discovered from; `None` for the config file or a request.
    pub from_ses: Option<Arc<str>>,
    /// Checked because receivers reported its signatures, not because a config lists it.
    pub from_dmarc: bool,
    /// What receivers reported of its signatures in the DMARC window, when they did.
    pub receivers: Option<Box<Receivers>>,
    /// One view per configured resolver, indexed like [`State::resolvers`].
    pub views: Vec<View>,
    /// One view per nameserver of the domain (`auth:{host}`), sorted by name.
    pub nameservers: Vec<(String, View)>,
    /// The problems found by the latest diagnosis.
    pub findings: Vec<Finding>,
    /// What the latest extra lookups found, while the record is missing (boxed: only a
    /// missing record has it).
    pub extra: Option<Box<Extra>>,
    /// The key at the end of the record, for CNAME records that are correct somewhere.
    pub key: Option<KeyLookup>,
    /// The names the target's own CNAME chain passes through to the key, when it has one.
    pub key_chain: Option<Box<[String]>>,
    /// Whether the domain exists, while the record is NXDOMAIN everywhere.
    pub domain_exists: Option<bool>,
    /// The record is the inactive one of a rotating pair: its target holds no key while its
    /// partner is healthy, so that is not a problem.
    pub inactive_key: bool,
    /// What the walk of the domain's delegation found, while no resolver resolves the record.
    pub walk: Option<Arc<Walk>>,
    /// The key the record leads to as this process has followed it, from the first key read.
    pub key_seen: Option<KeySeen>,
    /// The hour's logged problem changes ([`changes`]).
    logged: Budget,
}

/// The key a record leads to, as this process has followed it: `dkim_key_info`,
/// `dkim_key_first_seen_timestamp_seconds`, and the key change the status page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySeen {
    /// The key: what the domain's own nameservers serve when they agree, else what most
    /// answering resolvers serve (on a tie, the key it was).
    pub key: DkimKey,
    /// Unix time this process first saw it: when the key changed, or when the process started.
    pub first_seen: f64,
    /// The key before it, when this process saw the change (boxed: rare, and kept for every
    /// record).
    pub previous: Option<Box<DkimKey>>,
    /// The record still leads to it: false while its latest check read no usable key.
    pub current: bool,
}

/// A record's key changed between two checks: what the log says.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyChange {
    /// The key before.
    pub old: DkimKey,
    /// The key now.
    pub new: DkimKey,
    /// The resolvers that serve the new key, comma-joined; empty when the key is read through
    /// one resolver only (at the end of a CNAME).
    pub new_on: String,
    /// The resolvers that still serve the old key, comma-joined.
    pub old_on: String,
}

/// What receivers reported of one record's signatures in the DMARC window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receivers {
    /// Signatures that failed (`fail`, `permerror`).
    pub failed: u64,
    /// Signatures reported.
    pub total: u64,
    /// The reporters and their counts: "Google 120 of 130 failed, …".
    pub by_reporter: String,
    /// Whether that makes `failing_at_receivers`: over `fail_share` of at least `min_messages`.
    pub failing: bool,
}

impl Receivers {
    /// The detail of `failing_at_receivers`; `dns_serves_a_key` when DNS has nothing wrong
    /// with the record and serves a usable key.
    pub fn detail(&self, dns_serves_a_key: bool) -> String {
        let share = self.failed as f64 * 100.0 / self.total.max(1) as f64;
        let mut detail = format!(
            "receivers failed {} of {} signatures ({share:.0}%) in the window: {}",
            self.failed, self.total, self.by_reporter
        );
        if dns_serves_a_key {
            detail.push_str(
                "; DNS serves a usable key, so the published key is not the key mail is signed \
                 with (or mail is changed in transit)",
            );
        }
        detail
    }
}

/// A record, as its problem changes are logged.
struct RecordSubject<'a> {
    /// Its domain.
    domain: &'a str,
    /// Its selector.
    selector: &'a str,
}

impl Subject for RecordSubject<'_> {
    fn appeared(&self, problem: &'static str, detail: &str, fix: &'static str) {
        tracing::info!(
            domain = %self.domain,
            selector = %self.selector,
            problem,
            detail = %detail,
            fix,
            "problem appeared"
        );
    }

    fn cleared(&self, problem: &'static str) {
        tracing::info!(
            domain = %self.domain,
            selector = %self.selector,
            problem,
            "problem cleared"
        );
    }

    fn flapping(&self, changes: u32) {
        tracing::warn!(
            domain = %self.domain,
            selector = %self.selector,
            changes,
            "the record's problems keep changing; its changes are not logged for the rest of the hour"
        );
    }
}

/// What one resolver last said about one record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// How the latest lookup went.
    pub latest: Latest,
    /// The latest definitive answer. A failed lookup leaves it as it was.
    pub known: Option<Observation>,
    /// The Extended DNS Error of the latest reply (RFC 8914), if it carried one.
    pub ede: Option<Box<Ede>>,
}

/// How one resolver's latest lookup of one record went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Latest {
    /// Not looked up yet.
    #[default]
    NotAsked,
    /// A definitive answer: [`View::known`] is current.
    Answered,
    /// No definitive answer.
    Failed {
        /// Why.
        reason: FailureReason,
        /// The resolver validates DNSSEC and the zone's signatures are bogus.
        dnssec_bogus: bool,
    },
}

impl Latest {
    /// Whether the lookup got a definitive answer; `None` before the first lookup.
    pub fn ok(self) -> Option<bool> {
        match self {
            Latest::NotAsked => None,
            Latest::Answered => Some(true),
            Latest::Failed { .. } => Some(false),
        }
    }

    /// Why the lookup failed, when it did.
    pub fn failure(self) -> Option<FailureReason> {
        match self {
            Latest::Failed { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The lookup failed because the zone's DNSSEC signatures are bogus.
    pub fn dnssec_bogus(self) -> bool {
        matches!(
            self,
            Latest::Failed {
                dnssec_bogus: true,
                ..
            }
        )
    }
}

impl View {
    /// The resolver's latest lookup of this record was definitive, so it is an answering
    /// resolver and `known` is current.
    pub fn answering(&self) -> Option<&Observation> {
        match self.latest {
            Latest::Answered => self.known.as_ref(),
            _ => None,
        }
    }

    /// Records the outcome of one lookup; a failure keeps what is known.
    fn record(&mut self, outcome: Result<Observation, Failure>) {
        let mut observation = match outcome {
            Ok(observation) => observation,
            Err(failure) => {
                self.latest = Latest::Failed {
                    reason: failure.reason,
                    dnssec_bogus: failure.dnssec_bogus,
                };
                self.ede = failure.ede;
                return;
            }
        };
        self.latest = Latest::Answered;
        // Kept here once, not again in the observation.
        self.ede = observation.ede.take();
        // Address records at the name are learnt by the follow-up; until it runs again, an
        // empty answer from the same resolver still shows them rather than flapping to none.
        if let (
            Some(Observation {
                found: Found::A(addresses),
                ..
            }),
            Found::None,
        ) = (&self.known, &observation.found)
            && !observation.present
            && !observation.nxdomain
        {
            observation.found = Found::A(addresses.clone());
        }
        self.known = Some(observation);
    }
}

/// The usable key of `keys` a record follows: the one it followed (`was`) while the name still
/// holds it, so that a second key published beside it changes nothing but `key_multiple`; else
/// the one read.
fn followed(keys: &Keys, was: Option<Fingerprint>) -> Option<&DkimKey> {
    was.and_then(|was| {
        keys.all()
            .filter_map(|k| k.as_ref().ok())
            .find(|k| k.fingerprint == was)
    })
    .or_else(|| keys.usable())
}

impl RecordState {
    fn new(domain: Arc<str>, record: &Record, resolvers: usize) -> Self {
        RecordState {
            domain,
            selector: record.selector.clone(),
            expected: record.expected.clone(),
            from_ses: record.from_ses.clone(),
            from_dmarc: record.from_dmarc,
            receivers: None,
            views: vec![View::default(); resolvers],
            nameservers: Vec::new(),
            findings: Vec::new(),
            extra: None,
            key: None,
            key_chain: None,
            domain_exists: None,
            inactive_key: false,
            walk: None,
            key_seen: None,
            logged: Budget::default(),
        }
    }

    /// Every view with its resolver name: configured resolvers first, then the nameservers.
    pub fn all_views<'a>(
        &'a self,
        resolvers: &'a [ResolverState],
    ) -> impl Iterator<Item = (&'a str, &'a View)> {
        resolvers
            .iter()
            .map(|r| r.name.as_str())
            .zip(&self.views)
            .chain(
                self.nameservers
                    .iter()
                    .map(|(name, view)| (name.as_str(), view)),
            )
    }

    /// The observations of the answering resolvers, `auth:` included.
    pub fn answering<'a>(
        &'a self,
        resolvers: &'a [ResolverState],
    ) -> impl Iterator<Item = (&'a str, &'a Observation)> {
        self.all_views(resolvers)
            .filter_map(|(name, view)| view.answering().map(|o| (name, o)))
    }

    /// Share of answering configured resolvers on which the record is correct; `None` when none
    /// answered. Authoritative nameservers do not count.
    pub fn propagation_ratio(&self) -> Option<f64> {
        let (answering, correct) = self
            .views
            .iter()
            .filter_map(View::answering)
            .fold((0u32, 0u32), |(a, c), o| (a + 1, c + u32::from(o.correct)));
        (answering > 0).then(|| f64::from(correct) / f64::from(answering))
    }

    /// Whether every answering resolver (`auth:` included) returned the same thing; `None`
    /// when none answered.
    pub fn resolvers_agree(&self, resolvers: &[ResolverState]) -> Option<bool> {
        let mut found = self.answering(resolvers).map(|(_, o)| &o.found);
        let first = found.next()?;
        Some(found.all(|f| f == first))
    }

    /// Correct on every answering resolver and without problems; `None` when none answered
    /// and no problem is known.
    pub fn healthy(&self, resolvers: &[ResolverState]) -> Option<bool> {
        if !self.findings.is_empty() {
            return Some(false);
        }
        let mut any = false;
        for (_, o) in self.answering(resolvers) {
            any = true;
            if !o.correct {
                return Some(false);
            }
        }
        any.then_some(true)
    }

    /// The size of the key the record leads to, when a usable key was read.
    pub fn key_bits(&self) -> Option<u32> {
        self.key().map(|k| k.bits)
    }

    /// The usable key the record leads to, as of its latest check ([`KeySeen`]).
    pub fn key(&self) -> Option<&DkimKey> {
        self.key_seen
            .as_ref()
            .filter(|seen| seen.current)
            .map(|seen| &seen.key)
    }

    /// The earliest expiration of the DNSSEC signatures over the record on the domain's
    /// nameservers, in Unix time (read as the time within 68 years of `now`, RFC 4034's
    /// arithmetic); `None` when none serves it signed.
    pub fn signature_expiry(&self, now: f64) -> Option<f64> {
        self.signatures()
            .map(|(_, signature)| unix_time(signature.expiration.get(), now))
            .reduce(f64::min)
    }

    /// Each nameserver that answered with the record signed, and its signature over the record
    /// that expires first.
    fn signatures(&self) -> impl Iterator<Item = (&str, Signature)> {
        self.nameservers.iter().filter_map(|(name, view)| {
            view.answering()
                .and_then(|o| o.signature)
                .map(|signature| (name.as_str(), signature))
        })
    }

    /// The usable key the latest answers lead to, and the resolvers serving it (none named for
    /// a key read at the end of a CNAME, through one resolver). With resolvers disagreeing, the
    /// key the domain's own nameservers serve when they agree, else the one most answering
    /// resolvers serve; on a tie, the key it was.
    fn leads_to<'a>(
        &'a self,
        resolvers: &'a [ResolverState],
        via: Option<&'a str>,
    ) -> Option<(DkimKey, Vec<&'a str>)> {
        let was = self.key_seen.as_ref().map(|seen| seen.key.fingerprint);
        match self.expected {
            Expected::Cname(_) => match &self.key {
                Some(KeyLookup::Found(keys)) => {
                    let key = followed(keys, was)?;
                    Some((*key, via.into_iter().collect()))
                }
                _ => None,
            },
            Expected::Txt => {
                let mut keys: Vec<DkimKey> = Vec::new();
                let mut serving: Vec<Vec<&str>> = Vec::new();
                for (resolver, o) in self.answering(resolvers) {
                    let Some(key) = o.key.as_deref().and_then(|keys| followed(keys, was)) else {
                        continue;
                    };
                    match keys.iter().position(|k| k.fingerprint == key.fingerprint) {
                        Some(i) => serving[i].push(resolver),
                        None => {
                            keys.push(*key);
                            serving.push(vec![resolver]);
                        }
                    }
                }
                let by_nameservers: Vec<usize> = (0..keys.len())
                    .filter(|&i| serving[i].iter().any(|r| r.starts_with("auth:")))
                    .collect();
                let chosen = match by_nameservers.as_slice() {
                    [only] => *only,
                    _ => (0..keys.len()).max_by_key(|&i| {
                        (
                            serving[i].len(),
                            Some(keys[i].fingerprint) == was,
                            usize::MAX - i,
                        )
                    })?,
                };
                Some((keys[chosen], serving.swap_remove(chosen)))
            }
        }
    }

    /// Follows the key after a check at `at`: the first key read is seen from then; a new
    /// one replaces it, and the change is returned. A check that read no usable key, though
    /// something answered, leaves the key not current; one where nothing answered leaves it be.
    fn follow_key(
        &mut self,
        resolvers: &[ResolverState],
        via: Option<&str>,
        at: f64,
    ) -> Option<KeyChange> {
        let Some((key, serving)) = self.leads_to(resolvers, via) else {
            let answered = self.answering(resolvers).next().is_some();
            if let Some(seen) = self.key_seen.as_mut().filter(|_| answered) {
                seen.current = false;
            }
            return None;
        };
        // Named only for the log line of a change.
        let changed = self
            .key_seen
            .as_ref()
            .is_some_and(|seen| seen.key.fingerprint != key.fingerprint);
        let new_on = if changed {
            serving.join(", ")
        } else {
            String::new()
        };
        let Some(seen) = self.key_seen.as_mut() else {
            self.key_seen = Some(KeySeen {
                key,
                first_seen: at,
                previous: None,
                current: true,
            });
            return None;
        };
        if !changed {
            // The same key; the tags of its record may have changed.
            seen.key = key;
            seen.current = true;
            return None;
        }
        let old = seen.key;
        *seen = KeySeen {
            key,
            first_seen: at,
            previous: Some(Box::new(old)),
            current: true,
        };
        let old_on = self
            .answering(resolvers)
            .filter(|(_, o)| {
                o.key.as_deref().is_some_and(|keys| {
                    keys.all()
                        .any(|k| k.as_ref().is_ok_and(|k| k.fingerprint == old.fingerprint))
                })
            })
            .map(|(r, _)| r)
            .collect::<Vec<_>>()
            .join(", ");
        Some(KeyChange {
            old,
            new: key,
            new_on,
            old_on,
        })
    }

    /// Whether no answering resolver has a record of the expected type; `None` when none answered.
    pub fn missing(&self, resolvers: &[ResolverState]) -> Option<bool> {
        let mut answering = self.answering(resolvers).peekable();
        answering.peek()?;
        Some(!answering.any(|(_, o)| o.present))
    }

    /// Whether some answering resolver has the record correct.
    pub fn correct_somewhere(&self, resolvers: &[ResolverState]) -> bool {
        self.answering(resolvers).any(|(_, o)| o.correct)
    }

    /// Applies a round's follow-up of a check that ended at `at`, follows the key, then
    /// diagnoses the record again. Returns the key's change, when it changed.
    fn apply_follow_up(
        &mut self,
        resolvers: &[ResolverState],
        follow_up: FollowUp,
        at: f64,
    ) -> Option<KeyChange> {
        if let Some(answers) = follow_up.nameservers {
            let mut old: HashMap<String, View> =
                std::mem::take(&mut self.nameservers).into_iter().collect();
            self.nameservers = answers
                .into_iter()
                .map(|(name, outcome)| {
                    let mut view = old.remove(&name).unwrap_or_default();
                    view.record(outcome);
                    (name, view)
                })
                .collect();
            self.nameservers.sort_by(|a, b| a.0.cmp(&b.0));
        }

        match (follow_up.extra, self.missing(resolvers)) {
            (Some(extra), _) => self.extra = Some(Box::new(extra)),
            (None, Some(false)) => self.extra = None,
            // Missing but the lookups failed, or nothing answered: keep what was learnt.
            (None, _) => {}
        }
        let addresses = self
            .extra
            .as_ref()
            .filter(|e| !e.addresses.is_empty())
            .map(|e| {
                let text: Vec<String> = e.addresses.iter().map(ToString::to_string).collect();
                text.join(",")
            });
        let empty_answers = self
            .views
            .iter_mut()
            .chain(self.nameservers.iter_mut().map(|(_, v)| v))
            .filter_map(|v| v.known.as_mut())
            .filter(|o| !o.present && !o.nxdomain && matches!(o.found, Found::None | Found::A(_)));
        for observation in empty_answers {
            observation.found = addresses
                .clone()
                .map_or(Found::None, |a| Found::A(a.into()));
        }

        match follow_up.key {
            Some(key) => self.key = Some(key),
            None if !self.correct_somewhere(resolvers) => self.key = None,
            None => {}
        }
        match follow_up.key_chain {
            Some(chain) => {
                self.key_chain = (!chain.is_empty()).then(|| chain.into_boxed_slice());
            }
            None if self.key.is_none() => self.key_chain = None,
            None => {}
        }
        let nxdomain_everywhere = self.missing(resolvers) == Some(true)
            && self.answering(resolvers).all(|(_, o)| o.nxdomain);
        match follow_up.domain_exists {
            Some(exists) => self.domain_exists = Some(exists),
            None if !nxdomain_everywhere => self.domain_exists = None,
            // NXDOMAIN everywhere, but the domain's own lookup failed: keep what was learnt.
            None => {}
        }
        let answered = self.answering(resolvers).next().is_some();
        match follow_up.walk {
            Some(walk) => self.walk = Some(walk),
            None if answered => self.walk = None,
            None => {}
        }
        let change = self.follow_key(resolvers, follow_up.key_via.as_deref(), at);
        self.diagnose(resolvers, at);
        change
    }

    /// Logs the problems that appeared or cleared since `before`, within the hour's budget.
    fn log_changes(&mut self, before: &[Problem], now: Instant) {
        let subject = RecordSubject {
            domain: &self.domain,
            selector: &self.selector,
        };
        changes::log(&subject, before, &self.findings, &mut self.logged, now);
    }

    /// Runs the diagnosis on what is known, at Unix time `now`. When no resolver answered and
    /// nothing explains why (the resolvers are down, not the domain), the findings stay as they
    /// were.
    fn diagnose(&mut self, resolvers: &[ResolverState], now: f64) {
        let failures = resolvers
            .iter()
            .map(|r| r.name.as_str())
            .zip(&self.views)
            .filter_map(|(resolver, view)| match view.latest {
                Latest::Failed {
                    reason,
                    dnssec_bogus,
                } => Some(Failed {
                    resolver,
                    reason,
                    ede: view.ede.as_deref(),
                    dnssec_bogus,
                }),
                _ => None,
            })
            .collect();
        let evidence = Evidence {
            domain: &self.domain,
            selector: &self.selector,
            expected: &self.expected,
            answers: self.answering(resolvers).collect(),
            failures,
            extra: self.extra.as_deref(),
            key: self.key.as_ref(),
            domain_exists: self.domain_exists,
            walk: self.walk.as_deref(),
            nameservers: self
                .nameservers
                .iter()
                .filter_map(|(name, _)| name.strip_prefix("auth:"))
                .collect(),
            signatures: self.signatures().collect(),
            now,
            seen_key: self.key_seen.as_ref().map(|seen| &seen.key),
            previous_key: self
                .key_seen
                .as_ref()
                .and_then(|seen| seen.previous.as_deref()),
        };
        let mut findings = diagnose(&evidence);
        if findings.is_empty() && evidence.answers.is_empty() {
            // Nothing answered: DNS's problems stay what they were.
            findings = self
                .findings
                .iter()
                .filter(|f| f.problem != Problem::FailingAtReceivers)
                .cloned()
                .collect();
        }
        if let Some(receivers) = self.receivers.as_deref().filter(|r| r.failing) {
            let dns_serves_a_key = findings.is_empty() && self.key().is_some();
            findings.push(Finding {
                problem: Problem::FailingAtReceivers,
                detail: receivers.detail(dns_serves_a_key),
            });
        }
        self.findings = findings;
    }
}

impl State {
    /// The daemon's state, which logs problems appearing and clearing.
    pub fn logging_changes() -> State {
        State {
            log_changes: true,
            ..State::default()
        }
    }

    /// Configured resolvers, in config order; record views are indexed alike.
    pub fn resolvers(&self) -> &[ResolverState] {
        &self.resolvers
    }

    /// Configured domains, in config order.
    pub fn domains(&self) -> &[DomainState] {
        &self.domains
    }

    /// Every configured record, grouped by domain in config order.
    pub fn records(&self) -> &[Box<RecordState>] {
        &self.records
    }

    /// Completed check rounds.
    pub fn rounds(&self) -> RoundState {
        self.rounds
    }

    /// How much of each record `/metrics` exports.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// Sets the round bookkeeping of a state built outside the daemon (tests, benchmarks).
    pub fn set_rounds(&mut self, rounds: RoundState) {
        self.rounds = rounds;
    }

    /// Notes a round complete after `seconds`, at unix time `at`.
    pub fn round_complete(&mut self, seconds: f64, at: f64) {
        self.rounds.completed += 1;
        self.rounds.last_duration = Some(seconds);
        self.rounds.last_finished = Some(at);
    }

    /// Brings the state in line with the records of `declared` and the resolvers and settings of
    /// `config`: records, domains and resolvers that are gone are dropped, new ones start
    /// unknown, and what is known about the rest is kept.
    pub fn reconcile(&mut self, config: &Config, declared: &Records) {
        self.detail = config.detail;
        let old_resolvers: HashMap<&str, usize> = self
            .resolvers
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let resolver_map: Vec<Option<usize>> = config
            .resolvers
            .iter()
            .map(|r| old_resolvers.get(r.name.as_str()).copied())
            .collect();

        // The old records are found through their domain (its range of them), and taken out of
        // the old list as they are kept: no index of record names is built beside them, which
        // would cost more than the records' own list.
        let mut old_records: Vec<Option<Box<RecordState>>> = std::mem::take(&mut self.records)
            .into_iter()
            .map(Some)
            .collect();
        let carry = Carry {
            same_resolvers: resolver_map
                .iter()
                .enumerate()
                .all(|(i, old)| *old == Some(i))
                && resolver_map.len() == self.resolvers.len(),
            resolver_map,
            nameservers: config.authoritative,
        };
        let mut old_domains: HashMap<String, DomainState> = std::mem::take(&mut self.domains)
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();

        // Sized once: grown by doubling, the list would keep up to half its length spare.
        self.records.reserve_exact(declared.record_count());
        self.domains.reserve_exact(declared.domains.len());
        for domain in &declared.domains {
            let mut domain_state =
                old_domains
                    .remove(&domain.name)
                    .unwrap_or_else(|| DomainState {
                        name: domain.name.clone(),
                        last_check: None,
                        records: 0..0,
                        rotating_pair: None,
                    });
            let first = self.records.len();
            let old_range = domain_state.records.clone();
            // The domain's records share one string for its name: the one its kept records
            // already share, or a new one.
            let name: Arc<str> = old_records[old_range.clone()]
                .iter()
                .flatten()
                .next()
                .map_or_else(|| Arc::from(domain.name.as_str()), |r| r.domain.clone());
            for record in &domain.records {
                let old = old_records[old_range.clone()]
                    .iter_mut()
                    .find(|o| o.as_ref().is_some_and(|o| o.selector == record.selector))
                    .and_then(Option::take);
                self.records.push(carry.record(old, record, &name));
            }
            domain_state.records = first..self.records.len();
            domain_state.rotating_pair = domain.rotating_pair.as_ref().and_then(|(a, b)| {
                let at = |selector: &str| {
                    self.records[first..]
                        .iter()
                        .position(|r| r.selector == selector)
                        .map(|i| first + i)
                };
                Some((at(a)?, at(b)?))
            });
            self.domains.push(domain_state);
        }
        self.resolvers = config
            .resolvers
            .iter()
            .map(|r| ResolverState {
                name: r.name.clone(),
            })
            .collect();
        self.resolver_index = index_by(&self.resolvers, |r| &r.name);
        self.domain_index = index_by(&self.domains, |d| &d.name);
        self.generation = self.generation.wrapping_add(1);
    }

    /// How many times the state has been reconciled with a config. Nothing else adds, removes
    /// or reorders records and domains, so positions in them hold while this stays the same.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Records the outcome of one lookup: a definitive observation, or a failure, which leaves
    /// what is known as it was.
    ///
    /// Results are matched by name, so a result that arrives after a reload lands on the same
    /// record if it is still configured, and is dropped if it is not.
    pub fn apply(&mut self, record: &str, resolver: &str, outcome: Result<Observation, Failure>) {
        let (Some(r), Some(&v)) = (self.position(record), self.resolver_index.get(resolver)) else {
            return;
        };
        if let Some(view) = self.records.get_mut(r).and_then(|r| r.views.get_mut(v)) {
            view.record(outcome);
        }
    }

    /// Applies the follow-up of a record (authoritative answers, extra lookups, key) of a check
    /// that ended at Unix time `at`, and diagnoses it again. Says where the record is in
    /// [`State::records`], so the caller need not look it up again; `None` when it is no longer
    /// configured.
    pub fn apply_follow_up(&mut self, record: &str, follow_up: FollowUp, at: f64) -> Option<usize> {
        let r = self.position(record)?;
        let resolvers = &self.resolvers;
        let record = &mut self.records[r];
        // Only the daemon's state logs changes; a one-off check's need not note them.
        let before: Option<Vec<Problem>> = self
            .log_changes
            .then(|| record.findings.iter().map(|f| f.problem).collect());
        let change = record.apply_follow_up(resolvers, follow_up, at);
        if let Some(change) = change.filter(|_| self.log_changes) {
            tracing::info!(
                domain = %record.domain,
                selector = %record.selector,
                old_fingerprint = %change.old.fingerprint,
                old_bits = change.old.bits,
                new_fingerprint = %change.new.fingerprint,
                new_bits = change.new.bits,
                new_on = %change.new_on,
                old_on = %change.old_on,
                "key changed"
            );
        }
        let domain = self.domain_index.get(&*record.domain).copied();
        if let Some(pair) = domain.and_then(|d| self.domains[d].rotating_pair) {
            self.mark_inactive_key(pair, at);
        }
        if let Some(before) = before {
            self.records[r].log_changes(&before, Instant::now());
        }
        Some(r)
    }

    /// Of a rotating pair, the record whose only problem is a missing key while its partner is
    /// healthy holds the inactive key: that is not a problem. An inactive record is diagnosed
    /// afresh each time, so it gets its `key_missing` back when its partner stops being healthy.
    fn mark_inactive_key(&mut self, (a, b): (usize, usize), now: f64) {
        let resolvers = &self.resolvers;
        // A record judged inactive had its findings cleared: diagnose it again to read them
        // afresh. The other one's findings are its own diagnosis already.
        for i in [a, b] {
            if std::mem::take(&mut self.records[i].inactive_key) {
                self.records[i].diagnose(resolvers, now);
            }
        }
        let only_key_missing =
            |r: &RecordState| r.findings.len() == 1 && r.findings[0].problem == Problem::KeyMissing;
        let healthy = |r: &RecordState| r.healthy(resolvers) == Some(true);
        let (a_inactive, b_inactive) = (
            only_key_missing(&self.records[a]) && healthy(&self.records[b]),
            only_key_missing(&self.records[b]) && healthy(&self.records[a]),
        );
        for (i, inactive) in [(a, a_inactive), (b, b_inactive)] {
            if inactive {
                self.records[i].findings.clear();
                self.records[i].inactive_key = true;
            }
        }
    }

    /// Takes in what receivers reported of each record (`of` its domain and selector), and
    /// diagnoses again the records whose report changed: `failing_at_receivers` appears or
    /// clears with them.
    pub fn receivers_reported(&mut self, mut of: impl FnMut(&str, &str) -> Option<Receivers>) {
        let now = Instant::now();
        for r in 0..self.records.len() {
            let record = &self.records[r];
            let reported = of(&record.domain, &record.selector).map(Box::new);
            if reported == record.receivers {
                continue;
            }
            let record = &mut self.records[r];
            let before: Option<Vec<Problem>> = self
                .log_changes
                .then(|| record.findings.iter().map(|f| f.problem).collect());
            record.receivers = reported;
            record.diagnose(&self.resolvers, unix_now());
            if let Some(before) = before {
                record.log_changes(&before, now);
            }
        }
    }

    /// The record with this name (`{selector}._domainkey.{domain}`).
    pub fn record(&self, name: &str) -> Option<&RecordState> {
        self.position(name).map(|i| &*self.records[i])
    }

    /// Where the record with this name is in [`State::records`]: found through its domain,
    /// whose few records are searched for the selector, rather than through an index of every
    /// record name, which would cost more memory than the records themselves.
    fn position(&self, name: &str) -> Option<usize> {
        records::split_record_name(name).find_map(|(selector, domain)| {
            let records = self.domains[*self.domain_index.get(domain)?]
                .records
                .clone();
            let start = records.start;
            self.records[records]
                .iter()
                .position(|r| r.selector == selector)
                .map(|i| start + i)
        })
    }

    /// Notes that every record of `domain` has been checked in a round ending at `at`.
    pub fn domain_checked(&mut self, domain: &str, at: f64) {
        if let Some(&i) = self.domain_index.get(domain) {
            self.domains[i].last_check = Some(at);
        }
    }
}

/// Seconds since the Unix epoch, as Prometheus timestamps are given.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How [`State::reconcile`] carries what is known of a record into the new state.
struct Carry {
    /// For each new resolver, its index among the old ones.
    resolver_map: Vec<Option<usize>>,
    /// The same resolvers in the same order: the views stay where they are.
    same_resolvers: bool,
    /// Whether the domains' nameservers are still asked (`authoritative`).
    nameservers: bool,
}

impl Carry {
    /// The state of `record` under the domain `name`: the old one, its views moved to the new
    /// resolvers, when it expected the same; else a new one, since a record whose expectation
    /// changed is a new record. Moved, not cloned: a reload of a big config would otherwise
    /// hold every observation twice at its peak.
    fn record(
        &self,
        old: Option<Box<RecordState>>,
        record: &Record,
        name: &Arc<str>,
    ) -> Box<RecordState> {
        match old {
            Some(mut old) if old.expected == record.expected => {
                if !self.same_resolvers {
                    let mut views = std::mem::take(&mut old.views);
                    old.views = self
                        .resolver_map
                        .iter()
                        .map(|i| {
                            i.and_then(|i| views.get_mut(i).map(std::mem::take))
                                .unwrap_or_default()
                        })
                        .collect();
                }
                if !self.nameservers {
                    old.nameservers.clear();
                }
                old.from_ses.clone_from(&record.from_ses);
                old.from_dmarc = record.from_dmarc;
                old
            }
            _ => Box::new(RecordState::new(
                name.clone(),
                record,
                self.resolver_map.len(),
            )),
        }
    }
}

/// Positions by name, hashed with foldhash rather than SipHash, which costs more than the lookup
/// itself; the names come from the config and SES, not from DNS replies.
type Index = HashMap<String, usize, foldhash::fast::RandomState>;

fn index_by<T>(items: &[T], key: impl Fn(&T) -> &String) -> Index {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (key(item).clone(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Loaded, parse};

    /// Reconciles `state` with the settings and the records of a config file.
    fn reconcile(state: &mut State, loaded: &Loaded) {
        state.reconcile(&loaded.config, &loaded.records);
    }

    fn observation(found: Found, correct: bool) -> Observation {
        Observation {
            present: found != Found::None,
            nxdomain: found == Found::None,
            ede: None,
            found,
            correct,
            ttl: Some(300),
            key: None,
            signature: None,
        }
    }

    const S1: &str = "s1._domainkey.example.com";

    fn config(resolvers: &[&str], selectors: &[&str]) -> Loaded {
        let mut yaml = String::from("resolvers:\n");
        for (i, r) in resolvers.iter().enumerate() {
            yaml.push_str(&format!("  - name: {r}\n    address: 127.0.0.{}\n", i + 1));
        }
        yaml.push_str("domains:\n  - domain: example.com\n    provider: ses\n    selectors:\n");
        for s in selectors {
            yaml.push_str(&format!("      - {s}\n"));
        }
        parse(&yaml, "test.yaml").unwrap()
    }

    #[test]
    fn the_key_followed_changes_only_when_the_name_no_longer_holds_it() {
        use crate::dkim::{KeyFlags, KeyType};
        let key = |byte: u8| DkimKey {
            key_type: KeyType::Rsa,
            bits: 2048,
            flags: KeyFlags::default(),
            fingerprint: Fingerprint([byte; 8]),
        };
        let mut state = State::default();
        reconcile(&mut state, &config(&["a"], &["s1"]));
        let good = observation(Found::Cname("s1.dkim.amazonses.com".into()), true);
        let follow = |state: &mut State, keys: Keys, at: f64| {
            state.apply(S1, "a", Ok(good.clone()));
            let follow_up = FollowUp {
                key: Some(KeyLookup::Found(keys)),
                key_via: Some("a".into()),
                ..FollowUp::default()
            };
            state.apply_follow_up(S1, follow_up, at);
            state.records[0].key_seen.clone().unwrap()
        };
        let seen = follow(&mut state, Keys::one(Ok(key(1))), 10.0);
        assert_eq!(
            (seen.key, seen.first_seen, seen.previous),
            (key(1), 10.0, None)
        );
        // A second key published beside it, read first: still the same key, key_multiple.
        let both = Keys {
            key: Ok(key(2)),
            more: vec![Ok(key(1))].into(),
        };
        let seen = follow(&mut state, both, 20.0);
        assert_eq!((seen.key, seen.first_seen), (key(1), 10.0));
        assert_eq!(state.records[0].findings[0].problem, Problem::KeyMultiple);
        // The old one removed: the key changed, when and from what.
        let seen = follow(&mut state, Keys::one(Ok(key(2))), 30.0);
        assert_eq!(
            (seen.key, seen.first_seen, seen.previous),
            (key(2), 30.0, Some(Box::new(key(1))))
        );
        let change = state.records[0].follow_key(&state.resolvers, Some("a"), 40.0);
        assert_eq!(change, None);
    }

    #[test]
    fn failures_keep_what_is_known() {
        let mut state = State::default();
        reconcile(&mut state, &config(&["a", "b", "c"], &["s1"]));
        let good = observation(Found::Cname("s1.dkim.amazonses.com".into()), true);
        state.apply(S1, "a", Ok(good.clone()));
        state.apply(S1, "b", Ok(good.clone()));
        state.apply(S1, "c", Ok(observation(Found::None, false)));
        assert_eq!(state.records[0].propagation_ratio(), Some(2.0 / 3.0));
        assert_eq!(
            state.records[0].resolvers_agree(&state.resolvers),
            Some(false)
        );

        // Resolver c fails: it stops answering, but what it said is kept.
        state.apply(S1, "c", Err(FailureReason::Servfail.into()));
        let view = &state.records[0].views[2];
        assert_eq!(view.latest.ok(), Some(false));
        assert_eq!(view.latest.failure(), Some(FailureReason::Servfail));
        assert_eq!(view.known, Some(observation(Found::None, false)));
        assert_eq!(state.records[0].propagation_ratio(), Some(1.0));
        assert_eq!(
            state.records[0].resolvers_agree(&state.resolvers),
            Some(true)
        );
    }

    /// A config of domains, each with its selectors.
    fn domains_config(domains: &[(&str, &[&str])]) -> Loaded {
        let mut yaml = String::from("resolvers:\n  - name: a\n    address: 127.0.0.1\ndomains:\n");
        for (domain, selectors) in domains {
            yaml.push_str(&format!(
                "  - domain: {domain}\n    provider: ses\n    selectors: [{}]\n",
                selectors.join(", ")
            ));
        }
        parse(&yaml, "test.yaml").unwrap()
    }

    #[test]
    fn each_domain_knows_where_its_records_are_after_every_reload() {
        let reloads: [&[(&str, &[&str])]; 4] = [
            &[
                ("a.com", &["s1", "s2"]),
                ("b.com", &["s1"]),
                ("c.com", &["s1", "s2", "s3"]),
            ],
            // Reordered, one domain gone, one new, selectors added and removed.
            &[
                ("c.com", &["s3", "s1"]),
                ("d.com", &["x"]),
                ("a.com", &["s2", "s4", "s1"]),
            ],
            &[("b.com", &["s9"]), ("d.com", &["x", "y"])],
            &[],
        ];
        let mut state = State::default();
        assert_eq!(state.generation(), 0);
        for (n, domains) in reloads.iter().enumerate() {
            reconcile(&mut state, &domains_config(domains));
            assert_eq!(state.generation(), n as u64 + 1);
            let mut next = 0;
            for (domain, (name, selectors)) in state.domains.iter().zip(domains.iter()) {
                assert_eq!(domain.name, *name);
                assert_eq!(domain.records, next..next + selectors.len(), "{name}");
                for (record, selector) in
                    state.records[domain.records.clone()].iter().zip(*selectors)
                {
                    assert_eq!(
                        (&*record.domain, record.selector.as_str()),
                        (*name, *selector)
                    );
                }
                next = domain.records.end;
            }
            assert_eq!(next, state.records.len());
        }
    }

    #[test]
    fn only_reconcile_moves_the_generation() {
        let mut state = State::default();
        let config = config(&["a"], &["s1"]);
        reconcile(&mut state, &config);
        let generation = state.generation();
        let good = observation(Found::Cname("s1.dkim.amazonses.com".into()), true);
        state.apply(S1, "a", Ok(good));
        state.apply(S1, "a", Err(FailureReason::Timeout.into()));
        state.apply_follow_up(S1, FollowUp::default(), 1.0);
        state.domain_checked("example.com", 1.0);
        assert_eq!(state.generation(), generation);
        // Even a reload that changes nothing, since positions are not compared.
        reconcile(&mut state, &config);
        assert_eq!(state.generation(), generation + 1);
    }

    #[test]
    fn reconcile_keeps_unchanged_and_drops_removed() {
        let mut state = State::default();
        reconcile(&mut state, &config(&["a", "b"], &["s1", "s2"]));
        let good = observation(Found::Cname("s2.dkim.amazonses.com".into()), true);
        state.apply("s2._domainkey.example.com", "b", Ok(good.clone()));

        // Resolver a and record s1 go away, resolver c and record s3 arrive.
        reconcile(&mut state, &config(&["b", "c"], &["s2", "s3"]));
        let names: Vec<_> = state.resolvers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        let selectors: Vec<_> = state.records.iter().map(|r| r.selector.as_str()).collect();
        assert_eq!(selectors, ["s2", "s3"]);
        assert_eq!(state.records[0].views[0].known, Some(good));
        assert_eq!(state.records[0].views[1], View::default());
        assert_eq!(state.records[1].views, vec![View::default(); 2]);
    }
}
