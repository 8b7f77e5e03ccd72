//! Run: `cargo run --release --example render_bench [-- DOMAINS...]` (default: 1000 10000).
//!
//! How long `/metrics` takes to render, and how large it is, for N domains × 3 SES selectors ×
//! 4 resolvers, every record correct, in full detail and with `metrics.detail: summary`, as in the end-to-end benchmark of `bench/` (issue 6):
//! streamed in chunks as `/metrics` sends it, then in one buffer, with the peak RSS after each.
//! It prints figures; it asserts nothing, so it is not a test.
#![allow(clippy::print_stdout)]

#[path = "support/sizes.rs"]
mod sizes;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dkim_exporter::config::{Config, Detail, Protocol, ResolverConfig};
use dkim_exporter::dkim::{DkimKey, KeyType};
use dkim_exporter::evidence::{FollowUp, Found, KeyLookup, Observation};
use dkim_exporter::http::{METRICS_CHUNK_SIZE, METRICS_CHUNK_SLACK};
use dkim_exporter::metrics::{Metrics, Progress, StateChunks};
use dkim_exporter::provider::Expected;
use dkim_exporter::records::{Domain, Record, Records, record_name};
use dkim_exporter::state::{RoundState, State};

/// Renders timed per N.
const RENDERS: usize = 20;
/// Selectors per domain, as SES Easy DKIM publishes.
const SELECTORS: usize = 3;
/// Resolvers every record is checked on.
const RESOLVERS: usize = 4;

fn main() {
    let sizes = sizes::sizes(&[1_000, 10_000]);
    let metrics = Metrics::new().expect("the registry takes every metric");
    let resolvers: Vec<String> = (1..=RESOLVERS).map(|k| format!("r{k}")).collect();
    let resolvers_up: Vec<(&str, Option<bool>)> =
        resolvers.iter().map(|r| (r.as_str(), Some(true))).collect();
    let runs = sizes
        .iter()
        .flat_map(|&n| [(n, Detail::Full), (n, Detail::Summary)]);
    for (domains, detail) in runs {
        let state = synthetic_state(domains, &resolvers, detail);
        println!(
            "N = {domains} domains, metrics.detail {detail:?}: {} records, {} record/resolver views",
            state.records().len(),
            state.records().len() * RESOLVERS
        );

        // As `/metrics` sends it: a chunk is rendered, handed over and dropped, then the next.
        let mut times = Vec::with_capacity(RENDERS);
        let mut bytes = 0;
        let mut peak = 0;
        for _ in 0..RENDERS {
            let started = Instant::now();
            let mut chunks = StateChunks::new();
            bytes = 0;
            loop {
                let mut chunk = String::with_capacity(METRICS_CHUNK_SIZE + METRICS_CHUNK_SLACK);
                let progress = chunks
                    .write_next(&state, &mut chunk, METRICS_CHUNK_SIZE)
                    .expect("nothing reloads the state here");
                if progress == Progress::Done {
                    metrics.render_tail(&mut chunk, &resolvers_up);
                }
                bytes += chunk.len();
                peak = peak.max(chunk.capacity());
                if progress == Progress::Done {
                    break;
                }
            }
            times.push(started.elapsed());
        }
        report("streamed", &mut times, bytes, peak);
        println!("  peak RSS so far: {}", peak_rss());

        let mut times = Vec::with_capacity(RENDERS);
        let mut peak = 0;
        for _ in 0..RENDERS {
            let started = Instant::now();
            let text = metrics.render(&state, &resolvers_up);
            times.push(started.elapsed());
            bytes = text.len();
            peak = peak.max(text.capacity());
        }
        report("single buffer", &mut times, bytes, peak);
        println!("  peak RSS so far: {}", peak_rss());
    }
}

/// The state after a round in which every resolver found every record correct.
fn synthetic_state(domains: usize, resolvers: &[String], detail: Detail) -> State {
    let config = Config {
        interval: Duration::from_secs(300),
        timeout: Duration::from_secs(5),
        authoritative: false,
        resolvers: resolvers
            .iter()
            .enumerate()
            .map(|(k, name)| ResolverConfig {
                name: name.clone(),
                address: SocketAddr::from(([127, 0, 0, 101 + k as u8], 53)),
                protocol: Protocol::Udp,
                max_queries_per_second: 0,
                tls: None,
            })
            .collect(),
        ses: Vec::new(),
        detail,
        dmarc: None,
    };
    let records = Records {
        domains: (1..=domains)
            .map(|i| Domain {
                name: format!("d{i:05}.bench"),
                rotating_pair: None,
                records: (0..SELECTORS)
                    .map(|s| {
                        let token = token(i, s);
                        Record {
                            expected: Expected::Cname(format!("{token}.dkim.amazonses.com").into()),
                            selector: token,
                            from_ses: None,
                            from_dmarc: false,
                        }
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut state = State::default();
    state.reconcile(&config, &records);
    let key = DkimKey {
        key_type: KeyType::Rsa,
        bits: 2048,
        flags: Default::default(),
        fingerprint: dkim_exporter::dkim::Fingerprint([0x5e; 8]),
    };
    for domain in &records.domains {
        for record in &domain.records {
            let name = record_name(&record.selector, &domain.name);
            let Expected::Cname(target) = &record.expected else {
                continue;
            };
            for resolver in resolvers {
                let observation = Observation {
                    found: Found::Cname(target.clone()),
                    present: true,
                    correct: true,
                    ttl: Some(300),
                    key: None,
                    nxdomain: false,
                    ede: None,
                    signature: None,
                };
                state.apply(&name, resolver, Ok(observation));
            }
            let follow_up = FollowUp {
                key: Some(KeyLookup::Found(dkim_exporter::evidence::Keys::one(Ok(
                    key,
                )))),
                ..FollowUp::default()
            };
            state.apply_follow_up(&name, follow_up, 1_732_400_000.0);
        }
        state.domain_checked(&domain.name, 1_732_400_000.123);
    }
    state.set_rounds(RoundState {
        completed: 12,
        last_duration: Some(4.5),
        last_finished: None,
    });
    state
}

/// A 32-character token in the alphabet of SES tokens, different for every domain and selector.
fn token(domain: usize, selector: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut x = (domain as u64) << 8 | selector as u64;
    (0..32)
        .map(|_| {
            // xorshift: cheap, deterministic, spread over the alphabet.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(ALPHABET[(x % 32) as usize])
        })
        .collect()
}

fn report(path: &str, times: &mut [Duration], bytes: usize, peak: usize) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = times[(times.len() * 99).div_ceil(100) - 1];
    println!(
        "  {path:<14} median {:8.2} ms  p99 {:8.2} ms  body {:>11} bytes  largest buffer {:>11} bytes",
        ms(times[times.len() / 2]),
        ms(p99),
        bytes,
        peak
    );
}

/// The process's peak resident set (`VmHWM`), where Linux tells it.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}
