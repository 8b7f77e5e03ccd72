//! Watching the `ses:` sources while the daemon runs: a task per source lists its identities
//! every `refresh`, and one task logs SES problems as they appear and clear.
//!
//! A listing is handed to a [`Recipient`] (the exporter), which takes it in here
//! ([`SesWatch::take_listing`]) and puts the records it brings in force; a failed listing
//! keeps the identities of the last good one. A reload that changes the sources keeps what
//! the unchanged ones discovered ([`SesWatch::keep_discovered_of`]) and restarts the tasks of
//! the others ([`SesWatch::sync`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use aws_sdk_sesv2::config::SharedCredentialsProvider;
use tokio_util::sync::CancellationToken;

use super::problem::{self, SesFinding, SesProblem};
use super::{Discovered, Listing, client, discover};
use crate::changes::{self, Budget, Subject};
use crate::config::{SesSource, format_duration};
use crate::logging::short_list;
use crate::records::shard::Shard;
use crate::state::SharedState;
use crate::state::unix_now;

/// How often SES problems are looked at again for the log.
const PROBLEMS_EVERY: Duration = Duration::from_secs(10);

/// What takes in the listings: the exporter, which merges what every source discovered into
/// the records in force.
pub trait Recipient: Send + Sync + 'static {
    /// Takes in a listing of `source` ([`SesWatch::take_listing`]), and puts the records in
    /// force.
    fn listed(
        &self,
        source: &SesSource,
        listing: Result<Listing, String>,
    ) -> impl Future<Output = ()> + Send;
}

/// The `ses:` sources in force: what each discovered, and the tasks that list them.
pub struct SesWatch {
    /// What each source discovered, in config order.
    discovered: RwLock<Vec<Discovered>>,
    /// The running tasks.
    tasks: Mutex<Tasks>,
    /// Fixed AWS credentials for every source, instead of the standard chain.
    aws_credentials: Option<SharedCredentialsProvider>,
    /// This replica's share of the domains: only its identities' problems are logged.
    shard: Shard,
}

/// The running listing tasks.
#[derive(Default)]
struct Tasks {
    /// Stops every task with the daemon; `None` until [`SesWatch::start`].
    stop: Option<CancellationToken>,
    /// Each running source and the token that stops its task.
    running: Vec<(Arc<SesSource>, CancellationToken)>,
}

impl SesWatch {
    /// The sources `sources`, none listed yet.
    pub fn new(
        sources: &[SesSource],
        aws_credentials: Option<SharedCredentialsProvider>,
        shard: Shard,
    ) -> Self {
        SesWatch {
            discovered: RwLock::new(
                sources
                    .iter()
                    .map(|source| Discovered::new(Arc::new(source.clone())))
                    .collect(),
            ),
            tasks: Mutex::new(Tasks::default()),
            aws_credentials,
            shard,
        }
    }

    /// What each source discovered, in config order.
    pub fn discovered(&self) -> RwLockReadGuard<'_, Vec<Discovered>> {
        self.discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What each source discovered, to change. A poisoned lock (a panic while it was held, a
    /// bug) is taken over: what was written stays.
    fn discovered_mut(&self) -> RwLockWriteGuard<'_, Vec<Discovered>> {
        self.discovered
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The running tasks.
    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a listing task for every source of `sources`, and the task that logs SES
    /// problems; they stop with `stop`.
    pub fn start<R: Recipient>(
        self: &Arc<Self>,
        sources: &[SesSource],
        recipient: &Arc<R>,
        state: SharedState,
        stop: &CancellationToken,
    ) {
        self.tasks().stop = Some(stop.clone());
        self.sync(sources, recipient);
        tokio::spawn(self.clone().log_problems(state, stop.clone()));
    }

    /// Keeps what was discovered from the sources of `sources` that did not change, and
    /// starts the others empty.
    pub fn keep_discovered_of(&self, sources: &[SesSource]) {
        let mut discovered = self.discovered_mut();
        let mut old = std::mem::take(&mut *discovered);
        *discovered = sources
            .iter()
            .map(
                |source| match old.iter().position(|d| *d.source == *source) {
                    Some(i) => old.swap_remove(i),
                    None => Discovered::new(Arc::new(source.clone())),
                },
            )
            .collect();
    }

    /// Stops the tasks of sources no longer in `sources` (or changed), and starts the missing
    /// ones. Does nothing before [`SesWatch::start`].
    pub fn sync<R: Recipient>(&self, sources: &[SesSource], recipient: &Arc<R>) {
        let mut tasks = self.tasks();
        let Some(stop) = tasks.stop.clone() else {
            return;
        };
        tasks.running.retain(|(source, token)| {
            let kept = sources.contains(source);
            if !kept {
                token.cancel();
            }
            kept
        });
        for source in sources {
            if tasks.running.iter().any(|(s, _)| **s == *source) {
                continue;
            }
            let source = Arc::new(source.clone());
            let token = stop.child_token();
            tasks.running.push((source.clone(), token.clone()));
            tokio::spawn(list_every_refresh(
                source,
                self.aws_credentials.clone(),
                recipient.clone(),
                token,
            ));
        }
    }

    /// Takes in a listing of `source`, logging what changed. False when the source is no
    /// longer in force (a reload removed or changed it meanwhile).
    pub fn take_listing(&self, source: &SesSource, listing: Result<Listing, String>) -> bool {
        let mut discovered = self.discovered_mut();
        let Some(discovered) = discovered.iter_mut().find(|d| *d.source == *source) else {
            return false;
        };
        log_listing(discovered, &listing);
        discovered.update(listing, unix_now());
        true
    }

    /// Logs SES problems appearing and clearing until `stop`. They change with rounds, with
    /// listings and with time (PENDING for 72 hours), so they are looked at again every
    /// [`PROBLEMS_EVERY`] once the first round is complete.
    async fn log_problems(self: Arc<Self>, state: SharedState, stop: CancellationToken) {
        let mut log = ProblemLog::default();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PROBLEMS_EVERY) => {}
            }
            let state = state.read();
            if state.rounds().completed == 0 {
                continue;
            }
            let discovered = self.discovered();
            let now = unix_now();
            log.begin();
            for source in discovered.iter() {
                for identity in source
                    .identities
                    .iter()
                    .filter(|i| self.shard.owns(&i.domain))
                {
                    let findings = problem::findings(&state, source, identity, now);
                    log.observe(&source.source.name, &identity.domain, &findings);
                }
            }
            log.forget_unseen();
        }
    }
}

/// Lists `source` every `refresh` until `stop`, handing each listing to `recipient`.
async fn list_every_refresh<R: Recipient>(
    source: Arc<SesSource>,
    aws_credentials: Option<SharedCredentialsProvider>,
    recipient: Arc<R>,
    stop: CancellationToken,
) {
    let client = tokio::select! {
        () = stop.cancelled() => return,
        client = client::connect(&source, aws_credentials.as_ref()) => client,
    };
    loop {
        let started = tokio::time::Instant::now();
        let listing = tokio::select! {
            () = stop.cancelled() => return,
            listing = discover::discover(&client, &source, None) => listing,
        };
        let took = started.elapsed();
        if took > source.refresh {
            tracing::warn!(
                source = %source.name,
                took = %format_duration(took),
                refresh = %format_duration(source.refresh),
                "listing SES identities takes longer than refresh; raise refresh or max_requests_per_second"
            );
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = recipient.listed(&source, listing) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(started + source.refresh) => {}
        }
    }
}

/// The SES problems of each identity last logged, to log what appears and clears.
#[derive(Default)]
struct ProblemLog {
    /// By source, then by domain: looked up without allocating a key on every pass.
    identities: HashMap<String, HashMap<String, LoggedIdentity>>,
}

/// What was logged of one SES identity.
#[derive(Default)]
struct LoggedIdentity {
    /// Its problems at the last pass.
    problems: Vec<SesProblem>,
    /// The hour's logged changes.
    logged: Budget,
    /// Seen in the current pass.
    seen: bool,
}

/// An SES identity, as its problem changes are logged.
struct IdentitySubject<'a> {
    /// The `ses:` source's name.
    source: &'a str,
    /// The identity's domain.
    domain: &'a str,
}

impl Subject for IdentitySubject<'_> {
    fn appeared(&self, problem: &'static str, detail: &str, fix: &'static str) {
        tracing::info!(
            source = self.source,
            domain = self.domain,
            problem,
            detail = %detail,
            fix,
            "SES problem appeared"
        );
    }

    fn cleared(&self, problem: &'static str) {
        tracing::info!(
            source = self.source,
            domain = self.domain,
            problem,
            "SES problem cleared"
        );
    }

    fn flapping(&self, changes: u32) {
        tracing::warn!(
            source = self.source,
            domain = self.domain,
            changes,
            "the identity's SES problems keep changing; its changes are not logged for the rest of the hour"
        );
    }
}

impl ProblemLog {
    /// Starts a pass over every identity.
    fn begin(&mut self) {
        for entry in self.identities.values_mut().flat_map(HashMap::values_mut) {
            entry.seen = false;
        }
    }

    /// Logs the problems of `source`'s identity `domain` that appeared or cleared since the
    /// last pass, within the same hourly budget as a record's.
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
        changes::log(
            &IdentitySubject { source, domain },
            &entry.problems,
            findings,
            &mut entry.logged,
            Instant::now(),
        );
        entry.problems.clear();
        entry.problems.extend(findings.iter().map(|f| f.problem));
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
