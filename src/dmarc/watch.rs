//! Watching the `dmarc:` sources while the daemon runs: a task per source reads it every
//! `refresh`, and hands the reading to a [`Recipient`] (the exporter), which counts what every
//! source holds against the records in force ([`super::tally`]).
//!
//! A source that fails keeps what it held and is marked down; its error is logged once per
//! change. An item that is not a report is counted in `dkim_dmarc_report_errors_total` and
//! logged once, when it is read: it is not read again until it changes.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use aws_sdk_sesv2::config::SharedCredentialsProvider;
use tokio_util::sync::CancellationToken;

use super::report::Report;
use super::source::{self, Holding, Outcome};
use super::tally::{Judging, Tally};
use super::{Limits, ReadError, imap, s3};
use crate::config::{
    Dmarc, DmarcSource, ImapSource, ImapTls, S3Source, SourceKind, format_duration,
};
use crate::state::unix_now;

/// What takes in the readings: the exporter, which counts them against the records in force.
pub trait Recipient: Send + Sync + 'static {
    /// A source's reading changed what it holds (or its health): count again.
    fn reported(&self) -> impl Future<Output = ()> + Send;
}

/// The `dmarc:` sources in force: what each holds, and the tasks that read them.
pub struct DmarcWatch {
    /// Each source's latest reading, in config order.
    readings: RwLock<Vec<Reading>>,
    /// The latest count of what they hold.
    counted: RwLock<Counted>,
    /// The running tasks.
    tasks: Mutex<Tasks>,
    /// Fixed AWS credentials for every S3 source, instead of the standard chain.
    aws_credentials: Option<SharedCredentialsProvider>,
}

/// What one source holds, and how its latest read went.
#[derive(Debug)]
pub struct Reading {
    /// The source.
    pub source: Arc<DmarcSource>,
    /// The reports of the items it holds (the window applies when they are counted).
    pub reports: Vec<Arc<Report>>,
    /// Whether the latest read succeeded; `None` before the first.
    pub up: Option<bool>,
    /// Unix time of the end of the latest successful read.
    pub last_success: Option<f64>,
    /// Items not read as reports since the start, by reason label.
    pub errors: BTreeMap<&'static str, u64>,
    /// The latest read's error, to log only changes.
    last_error: Option<String>,
}

impl Reading {
    fn new(source: Arc<DmarcSource>) -> Reading {
        Reading {
            source,
            reports: Vec::new(),
            up: None,
            last_success: None,
            errors: BTreeMap::new(),
            last_error: None,
        }
    }
}

/// The latest count, and what outlives the window.
#[derive(Debug, Default)]
pub struct Counted {
    /// What the reports in the window say.
    pub tally: Arc<Tally>,
    /// How they were judged, once counted.
    pub judging: Option<Judging>,
    /// The end of the newest reported period per watched domain, kept after the report leaves
    /// the window (for as long as the process runs and the domain is watched), so that
    /// reports that stop coming can be noticed.
    pub last_report: BTreeMap<String, u64>,
}

/// The running reading tasks.
#[derive(Default)]
struct Tasks {
    /// Stops every task with the daemon; `None` until [`DmarcWatch::start`].
    stop: Option<CancellationToken>,
    /// Each running source with the window it reads, and the token that stops its task.
    running: Vec<(Arc<DmarcSource>, Duration, CancellationToken)>,
}

impl DmarcWatch {
    /// The sources of `dmarc`, none read yet.
    pub fn new(
        dmarc: Option<&Dmarc>,
        aws_credentials: Option<SharedCredentialsProvider>,
    ) -> DmarcWatch {
        let watch = DmarcWatch {
            readings: RwLock::new(Vec::new()),
            counted: RwLock::new(Counted::default()),
            tasks: Mutex::new(Tasks::default()),
            aws_credentials,
        };
        watch.keep_readings_of(dmarc);
        watch
    }

    /// Each source's latest reading, in config order.
    pub fn readings(&self) -> RwLockReadGuard<'_, Vec<Reading>> {
        self.readings.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest count.
    pub fn counted(&self) -> RwLockReadGuard<'_, Counted> {
        self.counted.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest tally.
    pub fn tally(&self) -> Arc<Tally> {
        self.counted().tally.clone()
    }

    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the readings of the sources of `dmarc` that did not change, and starts the
    /// others empty; forgets the sources no longer configured.
    pub fn keep_readings_of(&self, dmarc: Option<&Dmarc>) {
        let sources = dmarc.map_or(&[][..], |d| &d.sources);
        let mut readings = self
            .readings
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut old = std::mem::take(&mut *readings);
        *readings = sources
            .iter()
            .map(
                |source| match old.iter().position(|r| *r.source == *source) {
                    Some(i) => old.swap_remove(i),
                    None => Reading::new(Arc::new(source.clone())),
                },
            )
            .collect();
        if dmarc.is_none() {
            *self.counted.write().unwrap_or_else(PoisonError::into_inner) = Counted::default();
        }
    }

    /// Counts what the sources hold for the `watched` domains as `judging` says, keeps the
    /// count and returns it.
    pub fn count(&self, watched: &super::tally::Watched<'_>, judging: Judging) -> Arc<Tally> {
        let tally = {
            let readings = self.readings();
            Arc::new(super::tally::tally(
                readings
                    .iter()
                    .map(|r| (r.source.name.as_str(), r.reports.as_slice())),
                watched,
                &judging,
            ))
        };
        let mut counted = self.counted.write().unwrap_or_else(PoisonError::into_inner);
        counted
            .last_report
            .retain(|domain, _| watched.contains_key(domain.as_str()));
        for (domain, reported) in &tally.domains {
            let last = counted.last_report.entry(domain.clone()).or_default();
            *last = (*last).max(reported.last_report);
        }
        counted.tally = tally.clone();
        counted.judging = Some(judging);
        tally
    }

    /// Starts a reading task for every source of `dmarc`; they stop with `stop`.
    pub fn start<R: Recipient>(
        self: &Arc<Self>,
        dmarc: Option<&Dmarc>,
        recipient: &Arc<R>,
        stop: &CancellationToken,
    ) {
        self.tasks().stop = Some(stop.clone());
        self.sync(dmarc, recipient);
    }

    /// Stops the tasks of sources no longer in `dmarc` (or changed, or whose window changed),
    /// and starts the missing ones. Does nothing before [`DmarcWatch::start`].
    pub fn sync<R: Recipient>(self: &Arc<Self>, dmarc: Option<&Dmarc>, recipient: &Arc<R>) {
        let mut tasks = self.tasks();
        let Some(stop) = tasks.stop.clone() else {
            return;
        };
        let (sources, window) = dmarc.map_or((&[][..], Duration::ZERO), |d| {
            (d.sources.as_slice(), d.window)
        });
        tasks.running.retain(|(source, w, token)| {
            let kept = *w == window && sources.contains(source);
            if !kept {
                token.cancel();
            }
            kept
        });
        for source in sources {
            if tasks.running.iter().any(|(s, _, _)| **s == *source) {
                continue;
            }
            let source = Arc::new(source.clone());
            let token = stop.child_token();
            tasks.running.push((source.clone(), window, token.clone()));
            tokio::spawn(read_every_refresh(
                source,
                window,
                self.clone(),
                recipient.clone(),
                token,
            ));
        }
    }

    /// Takes in a read of `source`: what it holds now, or why the read failed (then it keeps
    /// what it held), and the items read meanwhile. False when the source is no longer in
    /// force.
    fn take_reading(
        &self,
        source: &DmarcSource,
        result: Result<Vec<Arc<Report>>, String>,
        errors: &[&'static str],
    ) -> bool {
        let mut readings = self
            .readings
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(reading) = readings.iter_mut().find(|r| *r.source == *source) else {
            return false;
        };
        for reason in errors {
            *reading.errors.entry(reason).or_default() += 1;
        }
        match result {
            Ok(reports) => {
                if reading.up == Some(false) {
                    tracing::info!(source = %source.name, "DMARC source read again");
                }
                reading.reports = reports;
                reading.up = Some(true);
                reading.last_success = Some(unix_now());
                reading.last_error = None;
            }
            Err(error) => {
                if reading.last_error.as_ref() != Some(&error) {
                    tracing::warn!(
                        source = %source.name,
                        kind = source.kind.as_str(),
                        error = %error,
                        "reading the DMARC source failed; keeping what it held"
                    );
                }
                reading.up = Some(false);
                reading.last_error = Some(error);
            }
        }
        true
    }
}

/// What a source's task keeps between reads.
#[derive(Default)]
struct Cursor {
    /// The items read and their reports.
    holding: Holding,
    /// A mailbox's UIDVALIDITY and the UIDs read.
    mailbox: imap::Mailbox,
    /// A bucket's client, once made.
    s3_client: Option<aws_sdk_s3::Client>,
    /// A bucket's objects read, with their ETags.
    s3_seen: s3::Seen,
}

/// Reads `source` every `refresh` until `stop`, handing each reading to `watch` and telling
/// `recipient`.
async fn read_every_refresh<R: Recipient>(
    source: Arc<DmarcSource>,
    window: Duration,
    watch: Arc<DmarcWatch>,
    recipient: Arc<R>,
    stop: CancellationToken,
) {
    let mut cursor = Cursor::default();
    loop {
        let started = tokio::time::Instant::now();
        let mut errors = Vec::new();
        let read = read_once(&source, window, &mut cursor, &watch, &mut errors);
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = read => result,
        };
        let took = started.elapsed();
        if took > source.refresh {
            tracing::warn!(
                source = %source.name,
                took = %format_duration(took),
                refresh = %format_duration(source.refresh),
                "reading the DMARC source takes longer than refresh; raise refresh"
            );
        }
        let result = result.map(|()| cursor.holding.reports());
        if !watch.take_reading(&source, result, &errors) {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = recipient.reported() => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(started + source.refresh) => {}
        }
    }
}

/// Reads `source` once into `cursor`, noting the reason of every item not read as a report
/// in `errors`.
async fn read_once(
    source: &Arc<DmarcSource>,
    window: Duration,
    cursor: &mut Cursor,
    watch: &DmarcWatch,
    errors: &mut Vec<&'static str>,
) -> Result<(), String> {
    let limits = Limits::default();
    let since = unix_now() as u64 - window.as_secs().min(unix_now() as u64);
    let mut note = |item: &str, outcome: &Outcome| {
        note_item(source, item, outcome);
        errors.extend(outcome.errors.iter().map(|e| e.reason()));
    };
    match &source.kind {
        SourceKind::Directory(dir) => {
            let dir = dir.clone();
            let source = source.clone();
            let mut holding = std::mem::take(&mut cursor.holding);
            let (holding, result, noted) = tokio::task::spawn_blocking(move || {
                let mut noted = Vec::new();
                let result = source::read_directory(
                    &dir,
                    &mut holding,
                    source.authserv_id.as_deref(),
                    &limits,
                    |item, outcome| {
                        note_item(&source, item, outcome);
                        noted.extend(outcome.errors.iter().map(|e| e.reason()));
                    },
                );
                (holding, result, noted)
            })
            .await
            .map_err(|e| format!("reading the directory failed: {e}"))?;
            cursor.holding = holding;
            errors.extend(noted);
            result
        }
        SourceKind::Imap(imap) => read_imap(source, imap, since, cursor, &mut note).await,
        SourceKind::S3(settings) => {
            read_s3(source, settings, since, cursor, watch, &mut note).await
        }
    }
}

/// How long one IMAP step (connecting, a command, one message's fetch) may take.
pub const IMAP_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads a mailbox: the messages in the window that were not read before.
async fn read_imap(
    source: &DmarcSource,
    imap: &ImapSource,
    since: u64,
    cursor: &mut Cursor,
    note: &mut impl FnMut(&str, &Outcome),
) -> Result<(), String> {
    let settings = imap::Settings {
        host: imap.host.clone(),
        port: imap.port,
        tls: match imap.tls {
            ImapTls::Tls => imap::Tls::Tls,
            ImapTls::Starttls => imap::Tls::StartTls,
            ImapTls::None => imap::Tls::None,
        },
        ca_file: imap.tls_ca_file.clone(),
        username: imap.username.clone(),
        password: imap.password.read()?,
        folder: imap.folder.clone(),
        timeout: IMAP_TIMEOUT,
    };
    let limits = Limits::default();
    let authserv_id = source.authserv_id.as_deref();
    let holding = &mut cursor.holding;
    let in_window = imap::read(
        &settings,
        &mut cursor.mailbox,
        since,
        source::message_bound(&limits),
        |message| {
            let outcome = match message.body {
                Ok(bytes) => source::read_item(&bytes, authserv_id, &limits),
                Err(error) => Outcome {
                    errors: vec![error],
                    ..Outcome::default()
                },
            };
            note(&format!("UID {}", message.uid), &outcome);
            holding.insert(message.uid.to_string(), String::new(), outcome.reports);
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    // What the mailbox read before and what it holds now agree: a changed UIDVALIDITY made it
    // read every message of the window again, under the same names.
    let names: HashSet<String> = in_window.iter().map(u32::to_string).collect();
    holding.keep_only(&names);
    Ok(())
}

/// Reads a bucket's prefix: the objects in the window not read before with their ETag. An
/// object whose fetch fails is tried again at the next read; the others still count.
async fn read_s3(
    source: &DmarcSource,
    settings: &S3Source,
    since: u64,
    cursor: &mut Cursor,
    watch: &DmarcWatch,
    note: &mut impl FnMut(&str, &Outcome),
) -> Result<(), String> {
    let client = match &cursor.s3_client {
        Some(client) => client.clone(),
        None => {
            let client = s3::connect(settings, watch.aws_credentials.as_ref()).await;
            cursor.s3_client = Some(client.clone());
            client
        }
    };
    let listing = s3::list(&client, settings, since as i64)
        .await
        .map_err(|e| e.to_string())?;
    let listed: HashSet<String> = listing.iter().map(|o| o.key.clone()).collect();
    let pass = cursor.s3_seen.pass(listing);
    let limits = Limits::default();
    for object in pass.fetch {
        let bytes = match s3::get(
            &client,
            settings,
            &object.key,
            source::message_bound(&limits),
        )
        .await
        {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(
                    source = %source.name,
                    item = %object.key,
                    error = %error,
                    "fetching an object of the DMARC source failed; it is tried again at the next read"
                );
                continue;
            }
        };
        let outcome = match bytes {
            Ok(bytes) => source::read_item(&bytes, source.authserv_id.as_deref(), &limits),
            Err(too_large) => Outcome {
                errors: vec![ReadError::TooLarge(format!("an object of {too_large}"))],
                ..Outcome::default()
            },
        };
        note(&object.key, &outcome);
        cursor.s3_seen.read(&object);
        cursor
            .holding
            .insert(object.key.clone(), object.etag.clone(), outcome.reports);
    }
    cursor.holding.keep_only(&listed);
    Ok(())
}

/// Logs what one item gave, once, when it is read: each error a warning naming the item.
fn note_item(source: &DmarcSource, item: &str, outcome: &Outcome) {
    for error in &outcome.errors {
        tracing::warn!(
            source = %source.name,
            item,
            reason = error.reason(),
            error = %error,
            "an item of the DMARC source is not read as a report"
        );
    }
    if let Some(why) = &outcome.not_authenticated {
        tracing::info!(
            source = %source.name,
            item,
            authserv_id = source.authserv_id.as_deref().unwrap_or_default(),
            why = %why,
            "a report not vouched for by authserv_id does not count"
        );
    }
    if !outcome.reports.is_empty() {
        tracing::debug!(
            source = %source.name,
            item,
            reports = outcome.reports.len(),
            "read DMARC reports"
        );
    }
}
