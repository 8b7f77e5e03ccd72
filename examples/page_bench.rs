//! Run: `cargo run --release --example page_bench [-- DOMAINS...]` (default: 1000 10000).
//! Needs `chromium` and `chromedriver` (Debian: `chromium`, `chromium-driver`).
//!
//! What the status page costs at N domains × 3 SES records × 4 resolvers, one domain in ten
//! with a wrong target: the exporter serves the page on loopback from a state filled in
//! directly (no DNS), and headless Chromium loads it. Per page: the bytes, the server's time to
//! the first byte, and Chromium's time from the request to the end of the load event (parsing,
//! style and layout included), median of 5 loads. It prints figures; it asserts nothing.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sizes.rs"]
mod sizes;
#[path = "../tests/integration/support/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use std::sync::Arc;
use std::time::Instant;

use dkim_exporter::dkim::{DkimKey, KeyType};
use dkim_exporter::evidence::{FollowUp, Found, KeyLookup, Observation};
use dkim_exporter::exporter::Exporter;
use dkim_exporter::http::{App, serve};
use tokio_util::sync::CancellationToken;

/// Loads timed per page.
const LOADS: usize = 5;
/// Resolvers every record is checked on.
const RESOLVERS: usize = 4;

/// Measured in the page once it has loaded: bytes and the navigation's timings.
const MEASURE: &str = "const n = performance.getEntriesByType('navigation')[0];
return {bytes: n.decodedBodySize, server: n.responseStart - n.requestStart,
        load: n.loadEventEnd - n.requestStart, articles: document.querySelectorAll('article').length,
        lines: document.querySelectorAll('li.domain-line').length};";

#[tokio::main]
async fn main() {
    let sizes = sizes::sizes(&[1_000, 10_000]);
    let driver = webdriver::Driver::start().await;
    let browser = driver.browser(1280, 800).await;
    for domains in sizes {
        let exporter = exporter(domains);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = Arc::new(App::new(exporter, "/metrics".into(), None));
        let server = tokio::spawn(serve(vec![listener], app, stop.clone()));
        println!(
            "N = {domains} domains, {} records, {} broken",
            domains * 3,
            domains / 10
        );
        let pages = [
            "/?refresh=0".to_string(),
            "/?problems=1&refresh=0".to_string(),
            format!("/?page={}&refresh=0", domains / 100),
            "/domain/d00010.bench?refresh=0".to_string(),
        ];
        for page in pages {
            let mut loads = Vec::new();
            let mut seen = serde_json::Value::Null;
            for _ in 0..LOADS {
                let started = Instant::now();
                browser.open(&format!("http://{addr}{page}")).await;
                let wall = started.elapsed().as_secs_f64() * 1000.0;
                seen = browser.run(MEASURE).await;
                loads.push((
                    seen["server"].as_f64().unwrap_or(f64::NAN),
                    seen["load"].as_f64().unwrap_or(f64::NAN),
                    wall,
                ));
            }
            let median = |i: usize| {
                let mut v: Vec<f64> = loads.iter().map(|l| [l.0, l.1, l.2][i]).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "  {page:<32} {:>9} bytes  {:>3} cards {:>3} lines  first byte {:7.1} ms  loaded {:7.1} ms  (WebDriver round trip {:7.1} ms)",
                seen["bytes"],
                seen["articles"],
                seen["lines"],
                median(0),
                median(1),
                median(2),
            );
        }
        stop.cancel();
        let _ = server.await;
    }
    browser.close().await;
}

/// An exporter of `domains` domains whose state says what a round would have found.
fn exporter(domains: usize) -> Arc<Exporter> {
    let mut yaml = String::from("interval: 1h\nresolvers:\n");
    for k in 1..=RESOLVERS {
        yaml.push_str(&format!(
            "  - name: r{k}\n    address: 127.0.0.{}:53\n",
            100 + k
        ));
    }
    yaml.push_str("domains:\n");
    for i in 1..=domains {
        yaml.push_str(&format!(
            "  - domain: d{i:05}.bench\n    provider: ses\n    selectors: [a{i}, b{i}, c{i}]\n"
        ));
    }
    let config = dkim_exporter::config::parse(&yaml, "bench.yaml").unwrap();
    let (exporter, _) = Exporter::new(config, &dkim_exporter::Options::default()).unwrap();
    exporter.state.update(|state| {
        let key = DkimKey {
            key_type: KeyType::Rsa,
            bits: 2048,
            flags: Default::default(),
            fingerprint: dkim_exporter::dkim::Fingerprint([0x5e; 8]),
        };
        for i in 1..=domains {
            let domain = format!("d{i:05}.bench");
            for (s, selector) in [format!("a{i}"), format!("b{i}"), format!("c{i}")]
                .iter()
                .enumerate()
            {
                let name = dkim_exporter::records::record_name(selector, &domain);
                let broken = i % 10 == 0 && s == 0;
                let target = if broken {
                    format!("{selector}.dkim.amazonses.com.{domain}")
                } else {
                    format!("{selector}.dkim.amazonses.com")
                };
                for k in 1..=RESOLVERS {
                    let observation = Observation {
                        found: Found::Cname(target.as_str().into()),
                        present: true,
                        correct: !broken,
                        ttl: Some(300),
                        key: None,
                        nxdomain: false,
                        ede: None,
                        signature: None,
                    };
                    state.apply(&name, &format!("r{k}"), Ok(observation));
                }
                state.apply_follow_up(
                    &name,
                    FollowUp {
                        key: Some(KeyLookup::Found(dkim_exporter::evidence::Keys::one(Ok(
                            key,
                        )))),
                        ..FollowUp::default()
                    },
                    dkim_exporter::state::unix_now(),
                );
            }
            state.domain_checked(&domain, dkim_exporter::state::unix_now());
        }
        state.set_rounds(dkim_exporter::state::RoundState {
            completed: 3,
            last_duration: Some(42.0),
            last_finished: Some(dkim_exporter::state::unix_now()),
        });
    });
    exporter
}
