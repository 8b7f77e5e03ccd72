//! `/probe`: one domain checked now, answered as metrics, like blackbox_exporter's multi-target
//! pattern.

use std::time::Duration;

use hyper::{Request, Response, StatusCode};

use super::{App, Body, METRICS_CONTENT_TYPE, text, with_type};
use crate::config::request::{Origin, Request as Wanted};
use crate::metrics::Metrics;

/// Probes running at once; more wait for a slot within their own timeout.
pub const MAX_CONCURRENT_PROBES: usize = 64;
/// Selectors one probe may ask about: a domain has a handful; thousands in one URL would only
/// run out the budget and return a partial answer.
pub const MAX_PROBE_SELECTORS: usize = 64;
/// A probe's time budget when Prometheus does not send its scrape timeout.
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Taken off Prometheus's scrape timeout so the answer arrives before it gives up, as
/// blackbox_exporter does.
const PROBE_TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

/// `/probe?target=DOMAIN[&selector=S…][&provider=P][&region=R][&account=A][&tenant_domain=T]`:
/// checks one domain now.
pub(super) async fn probe<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let started = tokio::time::Instant::now();
    let bad = |message: String| {
        with_type(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            format!("{message}\n"),
        )
    };
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let wanted = match wanted(&query) {
        Ok(wanted) => wanted,
        Err(message) => return bad(message),
    };
    let budget = match budget(req) {
        Ok(budget) => budget,
        Err(message) => return bad(message),
    };
    let (config, records) = match app.exporter.probe_records(&wanted).await {
        Ok(found) => found,
        Err(message) => return bad(message),
    };
    // HEAD says what GET would answer without checking anything: the parameters are valid.
    if req.method() == hyper::Method::HEAD {
        return with_type(StatusCode::OK, METRICS_CONTENT_TYPE, "");
    }
    let Ok(Ok(_slot)) = tokio::time::timeout(budget, app.probes.acquire()).await else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many probes in flight\n",
        );
    };
    let remaining = budget.saturating_sub(started.elapsed());
    let (state, finished) = app.exporter.probe(config, &records, remaining).await;
    let healthy = state
        .records()
        .iter()
        .all(|r| r.healthy(state.resolvers()) == Some(true));
    if !finished {
        tracing::warn!(
            target = wanted.domain.unwrap_or_default(),
            records = records.record_count(),
            budget = %crate::config::format_duration(budget),
            "probe ran out of time: its answer is partial and dkim_probe_success is 0"
        );
    }
    let body = Metrics::render_probe(
        &state,
        finished && healthy,
        started.elapsed().as_secs_f64(),
        !finished,
    );
    with_type(StatusCode::OK, METRICS_CONTENT_TYPE, body)
}

/// What the URL's parameters ask to check; an error names the parameter at fault.
fn wanted(query: &[(String, String)]) -> Result<Wanted<'_>, String> {
    fn once<'a>(slot: &mut Option<&'a str>, key: &str, value: &'a str) -> Result<(), String> {
        match slot.replace(value) {
            Some(_) => Err(format!("{key} is given twice")),
            None => Ok(()),
        }
    }
    let mut wanted = Wanted {
        origin: Origin::Query,
        ..Wanted::default()
    };
    let mut domain = None;
    for (key, value) in query {
        match key.as_str() {
            "target" => once(&mut domain, key, value)?,
            "provider" => once(&mut wanted.provider, key, value)?,
            "region" => once(&mut wanted.region, key, value)?,
            "account" => once(&mut wanted.account, key, value)?,
            "tenant_domain" => once(&mut wanted.tenant_domain, key, value)?,
            "selector" => wanted.selectors.push(value.as_str()),
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: use target, selector, provider, region, \
                     account and tenant_domain"
                ));
            }
        }
    }
    let Some(domain) = domain.filter(|d| !d.is_empty()) else {
        return Err("target is required: /probe?target=example.com".to_string());
    };
    wanted.domain = Some(domain);
    if wanted.selectors.len() > MAX_PROBE_SELECTORS {
        return Err(format!(
            "at most {MAX_PROBE_SELECTORS} selectors in one probe, got {}",
            wanted.selectors.len()
        ));
    }
    Ok(wanted)
}

/// The probe's time budget: Prometheus's scrape timeout less [`PROBE_TIMEOUT_OFFSET`].
fn budget<B>(req: &Request<B>) -> Result<Duration, String> {
    let Some(value) = req.headers().get("X-Prometheus-Scrape-Timeout-Seconds") else {
        return Ok(DEFAULT_PROBE_TIMEOUT);
    };
    match value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            Ok(Duration::from_secs_f64(seconds.min(3600.0))
                .saturating_sub(PROBE_TIMEOUT_OFFSET)
                .max(Duration::from_millis(100)))
        }
        _ => Err(format!(
            "X-Prometheus-Scrape-Timeout-Seconds is not a number of seconds: {value:?}"
        )),
    }
}
