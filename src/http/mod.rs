//! The HTTP server: `/metrics`, the landing page, `/probe`, health and readiness, on every
//! listener.
//!
//! Every handler but `/probe` only reads the latest snapshot and never waits for DNS; `/probe`
//! checks its records now, within the scrape's timeout (`probe.rs`).

mod body;
mod head;
mod probe;
pub mod web;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exporter::Exporter;
use crate::report::html::{self, Overview, PageQuery, ResolverRow};
use body::MetricsBody;
pub use body::{METRICS_CHUNK_SIZE, METRICS_CHUNK_SLACK};
pub use probe::MAX_CONCURRENT_PROBES;
use web::WebConfigFile;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's own bound on a request head, above [`head::MAX_REQUEST_HEAD`] so that the first
/// request of a connection meets ours, which answers with a text body, first.
const HYPER_MAX_BUF: usize = 2 * head::MAX_REQUEST_HEAD;
/// How long open connections get to finish when the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of the Prometheus text format.
pub(crate) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The body of every response: whole, or the `/metrics` text rendered as it is sent.
pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// What the handlers read.
pub struct App {
    /// The running exporter: results, metrics, reloads.
    pub exporter: Arc<Exporter>,
    /// Where metrics are served (`--web.telemetry-path`).
    pub telemetry_path: String,
    /// Bounds the probes running at once.
    pub probes: tokio::sync::Semaphore,
    /// TLS and basic auth (`--web.config.file`).
    pub web: Option<Arc<WebConfigFile>>,
}

impl App {
    /// Handlers for `exporter`, with metrics under `telemetry_path`.
    pub fn new(
        exporter: Arc<Exporter>,
        telemetry_path: String,
        web: Option<Arc<WebConfigFile>>,
    ) -> App {
        App {
            exporter,
            telemetry_path,
            probes: tokio::sync::Semaphore::new(MAX_CONCURRENT_PROBES),
            web,
        }
    }
}

/// Serves `app` on every listener until `shutdown`, then lets open requests finish.
pub async fn serve(listeners: Vec<TcpListener>, app: Arc<App>, shutdown: CancellationToken) {
    let graceful = Arc::new(GracefulShutdown::new());
    let mut accept_loops = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = app.clone();
        let shutdown = shutdown.clone();
        let graceful = graceful.clone();
        accept_loops.spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(HYPER_MAX_BUF);
            loop {
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Usually out of file descriptors: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let app = app.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                // The TLS handshake runs in the connection's task, so a slow client cannot hold
                // up the accept loop.
                tokio::spawn(async move {
                    let tls = app.web.as_ref().and_then(|web| web.current().tls.clone());
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(&app, &req).await) }
                    });
                    let result = match tls {
                        None => {
                            let Some(stream) = head::screen(stream, HEADER_READ_TIMEOUT).await
                            else {
                                return;
                            };
                            let connection =
                                builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                        Some(acceptor) => {
                            let handshake =
                                tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream))
                                    .await;
                            let stream = match handshake {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                            let Some(stream) = head::screen(stream, HEADER_READ_TIMEOUT).await
                            else {
                                return;
                            };
                            let connection =
                                builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(connection.into_owned()).await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        });
    }
    while accept_loops.join_next().await.is_some() {}
    let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout were closed");
    }
}

/// Binds a listen address as Prometheus exporters take it: `host:port`, `[v6]:port`, or `:port`
/// for every interface (IPv6 and IPv4 where the system allows, IPv4 otherwise).
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    if let Some(port) = address.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid port in listen address {address:?}"),
            )
        })?;
        return match TcpListener::bind(("::", port)).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
        };
    }
    TcpListener::bind(address).await
}

/// Routes one request.
pub async fn handle<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let path = req.uri().path();
    let known = path == app.telemetry_path
        || path.starts_with(DOMAIN_PAGES)
        || matches!(
            path,
            "/" | "/probe" | "/-/healthy" | "/-/ready" | "/-/reload"
        );
    if !known {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    let allowed = if path == "/-/reload" {
        "POST"
    } else {
        "GET, HEAD"
    };
    if !allowed.split(", ").any(|m| m == req.method().as_str()) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        return response;
    }
    // Health and readiness stay reachable without credentials, for the probes of orchestrators;
    // they reveal nothing about the records.
    if let (Some(web), false) = (&app.web, matches!(path, "/-/healthy" | "/-/ready")) {
        let config = web.current();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !web.authorized(&config, header).await {
            let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"dkim_exporter\""),
            );
            return response;
        }
    }
    let exporter = &app.exporter;
    if path == app.telemetry_path {
        let body = MetricsBody::new(exporter.clone(), METRICS_CHUNK_SIZE);
        return with_body(
            StatusCode::OK,
            METRICS_CONTENT_TYPE,
            body.map_err(Into::into).boxed(),
        );
    }
    match path {
        "/probe" => probe::probe(app, req).await,
        "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
        "/-/reload" => match exporter.reload().await {
            Ok(()) => text(StatusCode::OK, "config reloaded\n"),
            Err(message) => with_type(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("failed to reload config: {message}\n"),
            ),
        },
        "/-/ready" => {
            let ready = exporter.state.read().rounds().completed > 0;
            if ready {
                text(StatusCode::OK, "Ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not ready: the first check round has not completed\n",
                )
            }
        }
        _ => page(app, path, req.uri().query()),
    }
}

/// Where the domains' pages are: `/domain/{name}`.
const DOMAIN_PAGES: &str = "/domain/";

/// The landing page, or a domain's page.
fn page(app: &App, path: &str, query: Option<&str>) -> Response<Body> {
    const HTML: &str = "text/html; charset=utf-8";
    let exporter = &app.exporter;
    let row = |c: &Arc<crate::resolver::ResolverClient>| ResolverRow {
        name: c.name.clone(),
        up: c.up(),
        queries: c.queries(),
        mean_query_seconds: c.mean_query_seconds(),
    };
    let (configured, nameservers) = exporter.clients_in_use();
    let overview = Overview {
        telemetry_path: &app.telemetry_path,
        now: crate::state::unix_now(),
        resolvers: configured.iter().map(row).collect(),
        nameservers: nameservers.iter().map(row).collect(),
        reload_error: exporter.reload_error(),
        loaded_at: exporter.metrics.config_reload_timestamp.get(),
        shard: (exporter.shard, exporter.domains_in_force()),
        receivers: exporter.receivers(),
    };
    let query = PageQuery::parse(query);
    let state = exporter.state.read();
    let ses = exporter.ses.discovered();
    match path.strip_prefix(DOMAIN_PAGES) {
        None => with_type(
            StatusCode::OK,
            HTML,
            html::landing_page(&state, &ses, &overview, &query),
        ),
        Some(name) => {
            let name = percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .into_owned();
            match html::domain_page(&state, &ses, &overview, &name, &query) {
                Some(page) => with_type(StatusCode::OK, HTML, page),
                None => with_type(
                    StatusCode::NOT_FOUND,
                    HTML,
                    html::no_such_domain(&overview, &name),
                ),
            }
        }
    }
}

/// A plain-text response.
fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    with_type(status, "text/plain; charset=utf-8", body)
}

/// A whole response of `content_type`.
fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let body = Full::new(body.into()).map_err(|never| match never {});
    with_body(status, content_type, body.boxed())
}

fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use crate::metrics::ReloadedDuringScrape;
    use bytes::Bytes;
    use hyper::Method;
    use hyper::body::Body as _;

    fn app() -> App {
        let config = crate::config::parse("domains: []\n", "test.yaml").unwrap();
        let (exporter, _) = Exporter::new(config, &Options::default()).unwrap();
        App::new(exporter, "/metrics".into(), None)
    }

    async fn get(app: &App, method: Method, path: &str) -> Response<Body> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        handle(app, &req).await
    }

    #[tokio::test]
    async fn routes() {
        let app = app();
        assert_eq!(
            get(&app, Method::GET, "/-/healthy").await.status(),
            StatusCode::OK
        );
        assert_eq!(
            get(&app, Method::GET, "/-/ready").await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            get(&app, Method::GET, "/nope").await.status(),
            StatusCode::NOT_FOUND
        );
        let post = get(&app, Method::POST, "/metrics").await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
        let reload = get(&app, Method::GET, "/-/reload").await;
        assert_eq!(reload.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reload.headers()[header::ALLOW], "POST");
        // No config file to reload from.
        assert_eq!(
            get(&app, Method::POST, "/-/reload").await.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let metrics = get(&app, Method::GET, "/metrics").await;
        assert_eq!(metrics.status(), StatusCode::OK);
        assert_eq!(
            metrics.headers()[header::CONTENT_TYPE],
            METRICS_CONTENT_TYPE
        );
        app.exporter
            .state
            .update(|state| state.round_complete(1.0, 1.0));
        assert_eq!(
            get(&app, Method::GET, "/-/ready").await.status(),
            StatusCode::OK
        );
    }

    /// An exporter with `domains` domains of three records, each answered by both resolvers.
    fn exporter_with_records(domains: usize) -> (Arc<Exporter>, String) {
        let mut yaml = String::from(
            "resolvers:\n  - name: a\n    address: 127.0.0.1:9\n  - name: b\n    address: 127.0.0.2:9\ndomains:\n",
        );
        for i in 0..domains {
            yaml.push_str(&format!(
                "  - domain: d{i}.example\n    provider: ses\n    selectors: [s1, s2, s3]\n"
            ));
        }
        let loaded = crate::config::parse(&yaml, "test.yaml").unwrap();
        let (exporter, _) = Exporter::new(loaded.clone(), &Options::default()).unwrap();
        exporter.state.update(|state| {
            for domain in &loaded.records.domains {
                for record in &domain.records {
                    for resolver in ["a", "b"] {
                        let observation = crate::evidence::Observation {
                            found: crate::evidence::Found::Cname("x.example".into()),
                            present: true,
                            correct: false,
                            ttl: Some(300),
                            key: None,
                            nxdomain: false,
                            ede: None,
                            signature: None,
                        };
                        let name = crate::records::record_name(&record.selector, &domain.name);
                        state.apply(&name, resolver, Ok(observation));
                    }
                }
            }
        });
        (exporter, yaml)
    }

    /// Every chunk of `body` until it ends or fails.
    async fn chunks(mut body: MetricsBody) -> Vec<Result<Bytes, ReloadedDuringScrape>> {
        let mut chunks = Vec::new();
        while let Some(frame) = body.frame().await {
            chunks.push(frame.map(|f| f.into_data().unwrap()));
        }
        chunks
    }

    /// The text without the process metrics, which change from one read to the next.
    fn without_process_metrics(text: &str) -> String {
        text.lines()
            .filter(|l| !l.contains("process_"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[tokio::test]
    async fn metrics_come_in_chunks_that_make_the_whole_text() {
        let (exporter, _) = exporter_with_records(100);
        let chunks = chunks(MetricsBody::new(exporter.clone(), 1000)).await;
        assert!(chunks.len() > 50, "{}", chunks.len());
        let chunks: Vec<Bytes> = chunks.into_iter().map(Result::unwrap).collect();
        let (last, full) = chunks.split_last().unwrap();
        assert!(full.iter().all(|c| c.len() >= 1000 && c.len() < 2000));
        assert!(String::from_utf8_lossy(last).contains("dkim_exporter_build_info{"));

        let text = String::from_utf8(chunks.concat()).unwrap();
        let whole = {
            let resolvers_up = exporter.resolvers_up();
            let state = exporter.state.read();
            exporter.metrics.render(&state, &resolvers_up)
        };
        assert_eq!(
            without_process_metrics(&text),
            without_process_metrics(&whole)
        );
    }

    #[tokio::test]
    async fn a_reload_during_a_scrape_breaks_the_body_off() {
        let (exporter, yaml) = exporter_with_records(100);
        let mut body = MetricsBody::new(exporter.clone(), 1000);
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        assert!(!body.is_end_stream());

        // A reload that drops the first domain renumbers every record.
        let reloaded = yaml.replacen("  - domain: d0.example\n", "  - domain: d100.example\n", 1);
        let reloaded = crate::config::parse(&reloaded, "test.yaml").unwrap();
        exporter
            .state
            .update(|state| state.reconcile(&reloaded.config, &reloaded.records));
        assert_eq!(
            body.frame().await.unwrap().unwrap_err(),
            ReloadedDuringScrape
        );
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());

        // The next scrape is whole.
        let chunks = chunks(MetricsBody::new(exporter.clone(), 1000)).await;
        assert!(chunks.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn a_reload_waits_for_the_scrape_in_progress() {
        let (_, yaml) = exporter_with_records(100);
        let dir = std::env::temp_dir().join(format!("dkim-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let options = Options {
            config_file: Some(file.clone()),
            ..Options::default()
        };
        let config = crate::config::load(&file).unwrap();
        let (exporter, _) = Exporter::new(config, &options).unwrap();
        let mut body = MetricsBody::new(exporter.clone(), 100);
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());

        // A reload that renumbers every record lands while the scrape is being sent.
        let reloaded = yaml.replacen("  - domain: d0.example\n", "  - domain: d100.example\n", 1);
        std::fs::write(&file, reloaded).unwrap();
        let reload = tokio::spawn({
            let exporter = exporter.clone();
            async move { exporter.reload().await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !reload.is_finished(),
            "the reload did not wait for the scrape"
        );

        // The scrape ends whole, then the reload goes through.
        let rest = chunks(body).await;
        assert!(rest.iter().all(Result::is_ok));
        reload.await.unwrap().unwrap();
        let state = exporter.state.read();
        assert!(state.record("s1._domainkey.d100.example").is_some());
        assert!(state.record("s1._domainkey.d0.example").is_none());
        drop(state);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn metrics_are_served_as_a_stream() {
        let (exporter, _) = exporter_with_records(400);
        let app = App::new(exporter, "/metrics".into(), None);
        let response = get(&app, Method::GET, "/metrics").await;
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            METRICS_CONTENT_TYPE
        );
        // No length known ahead: the text is rendered as it is sent.
        assert_eq!(response.body().size_hint().exact(), None);
        let mut body = response.into_body();
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert!(sizes.len() > 1, "{sizes:?}");
        assert!(
            sizes
                .iter()
                .all(|&n| n <= METRICS_CHUNK_SIZE + METRICS_CHUNK_SLACK),
            "{sizes:?}"
        );
    }
}
