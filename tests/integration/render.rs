//! The `/metrics` and `/probe` text of a fixed state: compared byte for byte with the golden
//! files in `tests/golden/`, and the same whatever the size of the chunks it is sent in, with
//! rounds writing results and reloads happening between chunks. The state holds every kind of
//! verdict, problem and value, and label values that need escaping.
//!
//! After a change that is meant to change the text, write the golden files anew and read the
//! diff:
//!
//! ```sh
//! DKIM_EXPORTER_BLESS=1 cargo test --test integration render::
//! ```

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use dkim_exporter::config::{Config, Detail, Loaded, Protocol, ResolverConfig};
use dkim_exporter::dkim::{DkimKey, Fingerprint, KeyError, KeyType};
use dkim_exporter::evidence::{
    Extra, FailureReason, FollowUp, Found, KeyLookup, Keys, Observation, Signature,
};
use dkim_exporter::metrics::{Metrics, Progress, ReloadedDuringScrape, StateChunks};
use dkim_exporter::provider::Expected;
use dkim_exporter::records::{Domain, Record, Records, record_name};
use dkim_exporter::state::{RoundState, State};

/// Resolver names, some needing escapes: the config refuses them, the text must still be right.
const RESOLVERS: [&str; 5] = ["google", "cloud\"flare", "quad\\9", "open\ndns", "ünïcode"];

/// Verdicts of the resolvers in use, as the exporter hands them to the renderer.
const RESOLVERS_UP: [(&str, Option<bool>); 4] = [
    ("google", Some(true)),
    ("cloud\"flare", Some(false)),
    ("never", None),
    ("auth:ns2.example", Some(true)),
];

/// `domains` domains with 1 to 4 records each, a few names needing escapes.
fn config(domains: usize) -> Loaded {
    let config = Config {
        interval: Duration::from_secs(300),
        timeout: Duration::from_secs(5),
        authoritative: true,
        resolvers: RESOLVERS
            .iter()
            .map(|name| ResolverConfig {
                name: name.to_string(),
                address: SocketAddr::from(([127, 0, 0, 1], 53)),
                protocol: Protocol::Udp,
                max_queries_per_second: 0,
                tls: None,
            })
            .collect(),
        ses: Vec::new(),
        detail: Detail::Full,
        dmarc: None,
    };
    let records = Records {
        domains: (0..domains)
            .map(|i| Domain {
                name: match i % 20 {
                    13 => format!("quote\"{i}.example"),
                    14 => format!("back\\slash{i}.example"),
                    15 => format!("new\nline{i}.example"),
                    16 => format!("ünï{i}.example"),
                    _ => format!("d{i:05}.example"),
                },
                rotating_pair: None,
                records: (0..1 + i % 4)
                    .map(|s| Record {
                        selector: if i % 17 == 7 {
                            format!("s\"{s}\\x\ny")
                        } else {
                            format!("s{s}")
                        },
                        expected: if (i + s) % 5 == 4 {
                            Expected::Txt
                        } else {
                            Expected::Cname(format!("s{s}-{i}.dkim.amazonses.com").into())
                        },
                        from_ses: None,
                        from_dmarc: false,
                    })
                    .collect(),
            })
            .collect(),
    };
    Loaded { config, records }
}

fn observation(found: Found, correct: bool, ttl: u32) -> Observation {
    Observation {
        present: !matches!(found, Found::None | Found::A(_)),
        nxdomain: found == Found::None,
        ede: None,
        found,
        correct,
        ttl: Some(ttl),
        key: None,
        signature: None,
    }
}

fn rsa(bits: u32) -> DkimKey {
    DkimKey {
        key_type: KeyType::Rsa,
        bits,
        flags: Default::default(),
        fingerprint: Fingerprint(u64::from(bits).to_be_bytes()),
    }
}

/// A state in which every kind of verdict occurs: correct, partly propagated, wrong, missing,
/// failing and never checked records, `auth:` views, keys of several sizes, odd label values.
fn state(domains: usize) -> State {
    let loaded = config(domains);
    let mut state = State::default();
    state.reconcile(&loaded.config, &loaded.records);
    let ttls = [300, 0, 86_400, u32::MAX, 3_600];
    for (i, domain) in loaded.records.domains.iter().enumerate() {
        for (s, record) in domain.records.iter().enumerate() {
            let name = record_name(&record.selector, &domain.name);
            let ttl = ttls[(i + s) % ttls.len()];
            let (good, bad) = match &record.expected {
                Expected::Cname(target) => (
                    Found::Cname(target.clone()),
                    Found::Cname(format!("{target}.typo\"\\").into()),
                ),
                Expected::Txt => (
                    Found::Txt("sha256:0123456789abcdef".into()),
                    Found::Txt("sha256:fedcba9876543210".into()),
                ),
            };
            let mut good = observation(good, true, ttl);
            if record.expected == Expected::Txt {
                good.key = Some(Box::new(Keys::one(if i % 3 == 0 {
                    Err(KeyError::Revoked)
                } else {
                    Ok(rsa(1024))
                })));
            }
            let bad = observation(bad, false, ttl);
            let none = observation(Found::None, false, 60);
            let case = (i * 7 + s) % 8;
            for (r, resolver) in RESOLVERS.iter().enumerate() {
                let outcome = match case {
                    // Correct everywhere.
                    0 => Ok(good.clone()),
                    // Not propagated: one resolver has nothing.
                    1 if r == 0 => Ok(none.clone()),
                    1 => Ok(good.clone()),
                    // Wrong everywhere.
                    2 => Ok(bad.clone()),
                    // Missing: an empty answer, and addresses at the name.
                    3 => Ok(Observation {
                        nxdomain: false,
                        ede: None,
                        ..none.clone()
                    }),
                    // Answered, then some lookups failed: a ratio of thirds.
                    4 => {
                        let first = if r == 3 { bad.clone() } else { good.clone() };
                        state.apply(&name, resolver, Ok(first));
                        if r < 2 {
                            Err(FailureReason::Timeout.into())
                        } else {
                            continue;
                        }
                    }
                    // Never answered.
                    5 => Err(FailureReason::ALL[r % FailureReason::ALL.len()].into()),
                    // Never checked.
                    6 => continue,
                    // Correct, with `auth:` views and a weak key at the end.
                    _ => Ok(good.clone()),
                };
                state.apply(&name, resolver, outcome);
            }
            let mut follow_up = FollowUp {
                key: Some(KeyLookup::Found(Keys::one(Ok(rsa(2048))))),
                ..FollowUp::default()
            };
            match case {
                3 => {
                    follow_up.extra = Some(Extra {
                        addresses: vec![
                            IpAddr::from([52, 94, 236, 248]),
                            "2600:1f18::1".parse().unwrap(),
                        ],
                        ..Extra::default()
                    });
                    follow_up.key = None;
                }
                7 => {
                    // ns1 serves the zone signed.
                    let signed = Observation {
                        signature: Some(Signature {
                            inception: 1_731_800_000,
                            expiration: std::num::NonZeroU32::new(1_733_000_000).unwrap(),
                        }),
                        ..good.clone()
                    };
                    follow_up.nameservers = Some(vec![
                        ("auth:ns1.\"odd\"\\.example".into(), Ok(signed)),
                        (
                            "auth:ns2.example".into(),
                            Err(FailureReason::Refused.into()),
                        ),
                        ("auth:ns3.example".into(), Ok(bad.clone())),
                    ]);
                    follow_up.key = Some(KeyLookup::Found(Keys::one(Ok(rsa(512)))));
                }
                _ => {}
            }
            state.apply_follow_up(&name, follow_up, 1_732_400_000.0);
        }
        match i % 3 {
            0 => state.domain_checked(&domain.name, 1_732_400_000.123 + i as f64 / 7.0),
            1 => state.domain_checked(&domain.name, 1_732_400_000.0),
            _ => {}
        }
    }
    state.set_rounds(RoundState {
        completed: 1 << 60,
        last_duration: Some(0.1 + 0.2),
        last_finished: None,
    });
    state
}

/// Compares `text` with the golden file `name`, or writes it when blessing.
fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("DKIM_EXPORTER_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; write it with DKIM_EXPORTER_BLESS=1 cargo test --test integration render::",
            path.display()
        )
    });
    // Line by line first, so that a failure names the first line that differs.
    for (n, (got, want)) in text.lines().zip(want.lines()).enumerate() {
        assert_eq!(got, want, "{name}, line {}", n + 1);
    }
    assert!(
        text == want,
        "{name}: the text differs in length ({} bytes, golden {} bytes)",
        text.len(),
        want.len()
    );
}

/// The `/metrics` text up to the end of `dkim_resolver_up`: what the exporter renders itself.
/// What follows comes from the prometheus registry (counters, build info, process metrics).
fn rendered_part(text: &str) -> &str {
    let start = text
        .find("# HELP dkim_resolver_up ")
        .expect("dkim_resolver_up");
    let end = text[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("dkim_resolver_up"))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + text[start..]
            .lines()
            .take(2)
            .map(|l| l.len() + 1)
            .sum::<usize>();
    &text[..start + end]
}

/// The state's part rendered a chunk at a time, each chunk checked against `size`.
fn chunked(state: &State, size: usize) -> String {
    let mut chunks = StateChunks::new();
    let mut text = String::new();
    loop {
        let mut chunk = String::new();
        let progress = chunks.write_next(state, &mut chunk, size).unwrap();
        text.push_str(&chunk);
        if progress == Progress::Done {
            return text;
        }
        // Full, and over by no more than one record's samples.
        assert!(chunk.len() >= size, "{size}: {}", chunk.len());
        assert!(chunk.len() < size + 4096, "{size}: {}", chunk.len());
    }
}

#[test]
fn metrics_text_is_the_golden_one() {
    let state = state(24);
    let metrics = Metrics::new().unwrap();
    let whole = metrics.render(&state, &RESOLVERS_UP);
    let text = rendered_part(&whole);
    // The state holds every case the text has to get right.
    for needle in [
        "resolver=\"cloud\\\"flare\"",
        "resolver=\"quad\\\\9\"",
        "resolver=\"open\\ndns\"",
        "resolver=\"auth:ns1.\\\"odd\\\"\\\\.example\"",
        "selector=\"s\\\"0\\\\x\\ny\"",
        "domain=\"ünï16.example\"",
        "} 0.6666666666666666\n",
        " 4294967295\n",
        "dkim_check_rounds_total 1152921504606847000\n",
        "dkim_check_round_duration_seconds 0.30000000000000004\n",
        "dkim_key_length{",
        "problem=\"key_weak\"",
        "problem=\"a_record\"",
        "record_type=\"a\",value=\"52.94.236.248,2600:1f18::1\"",
        "dkim_domain_healthy{domain=\"d00000.example\"} 1\n",
        "dkim_domain_healthy{domain=\"d00001.example\"} 0\n",
        "dkim_domain_last_check_timestamp_seconds{domain=\"d00000.example\"} 1732400000.123\n",
        "dkim_domain_last_check_timestamp_seconds{domain=\"d00001.example\"} 1732400000\n",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    golden("metrics.prom", text);

    // Sent in chunks of any size, it is the same text, then the registry.
    for size in [1, 100, 4096, 256 * 1024, usize::MAX] {
        let mut text = chunked(&state, size);
        metrics.render_tail(&mut text, &RESOLVERS_UP);
        assert_eq!(
            rendered_part(&text),
            rendered_part(&whole),
            "chunk size {size}"
        );
        let registry = &text[rendered_part(&text).len()..];
        assert!(registry.starts_with("# HELP dkim_"), "{registry}");
        assert!(registry.contains("dkim_exporter_build_info{"), "{registry}");
    }
}

#[test]
fn summary_text_is_the_full_text_without_the_per_resolver_record_series() {
    let mut state = state(24);
    let metrics = Metrics::new().unwrap();
    let full = metrics.render(&state, &RESOLVERS_UP);
    // What a reload that sets `metrics.detail: summary` does.
    let Loaded {
        mut config,
        records,
    } = config(24);
    config.detail = Detail::Summary;
    state.reconcile(&config, &records);
    let whole = metrics.render(&state, &RESOLVERS_UP);
    let text = rendered_part(&whole);
    golden("metrics-summary.prom", text);
    // The contract's "(full)" families are gone, every other line is the full text's.
    let per_resolver = [
        "dkim_record_present",
        "dkim_record_correct",
        "dkim_record_lookup_success",
        "dkim_record_ttl_seconds",
        "dkim_record_info",
    ];
    let expected: String = rendered_part(&full)
        .lines()
        .filter(|line| {
            !per_resolver
                .iter()
                .any(|family| line.split([' ', '{']).any(|word| word == *family))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(text, expected);
    for family in [
        "dkim_record_propagation_ratio{",
        "dkim_record_problem{",
        "dkim_key_length{",
        "dkim_domain_healthy{",
    ] {
        assert!(text.contains(family), "{family}");
    }
    // And in chunks, the same.
    for size in [1, 4096, usize::MAX] {
        let mut chunks = chunked(&state, size);
        metrics.render_tail(&mut chunks, &RESOLVERS_UP);
        assert_eq!(rendered_part(&chunks), text, "chunk size {size}");
    }
    // A probe keeps every series.
    let probe = Metrics::render_probe(&state, true, 0.25, false);
    assert!(probe.contains("dkim_record_correct{"), "{probe}");
}

#[test]
fn probe_text_is_the_golden_one() {
    let mut text = Metrics::render_probe(&state(6), true, 0.25, false);
    text.push_str(&Metrics::render_probe(
        &State::default(),
        false,
        1.0 / 3.0,
        true,
    ));
    golden("probe.prom", &text);
}

#[test]
fn a_reload_between_chunks_stops_the_scrape() {
    let mut state = state(50);
    let mut chunks = StateChunks::new();
    let mut text = String::new();
    assert_eq!(
        chunks.write_next(&state, &mut text, 1000),
        Ok(Progress::More)
    );
    let reloaded = config(49);
    state.reconcile(&reloaded.config, &reloaded.records);
    assert_eq!(
        chunks.write_next(&state, &mut text, 1000),
        Err(ReloadedDuringScrape)
    );
    // A reload before the first chunk is no problem.
    let mut chunks = StateChunks::new();
    let reloaded = config(50);
    state.reconcile(&reloaded.config, &reloaded.records);
    assert_eq!(
        chunks.write_next(&state, &mut String::new(), usize::MAX),
        Ok(Progress::Done)
    );
}

#[test]
fn rounds_writing_between_chunks_do_not_stop_the_scrape() {
    let mut state = state(100);
    let mut chunks = StateChunks::new();
    let mut text = String::new();
    let mut round = 0;
    while chunks.write_next(&state, &mut text, 500) == Ok(Progress::More) {
        // What a round writes: results, follow-ups, domains checked, rounds completed.
        round += 1;
        let record = &state.records()[round % state.records().len()];
        let name = record_name(&record.selector, &record.domain);
        let domain = record.domain.clone();
        let found = Found::Cname(format!("round{round}.example").into());
        state.apply(
            &name,
            RESOLVERS[round % 5],
            Ok(observation(found, false, 1)),
        );
        state.apply(
            &name,
            RESOLVERS[(round + 1) % 5],
            Err(FailureReason::Timeout.into()),
        );
        let nameservers = vec![(
            format!("auth:ns{}.example", round % 4),
            Err(FailureReason::Network.into()),
        )];
        let follow_up = FollowUp {
            nameservers: Some(nameservers),
            ..FollowUp::default()
        };
        state.apply_follow_up(&name, follow_up, round as f64);
        state.domain_checked(&domain, round as f64);
        state.round_complete(0.1, round as f64);
    }
    assert!(round > 100, "{round}");
    // Whole, and no series twice.
    let mut series = HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, _) = line.rsplit_once(' ').unwrap();
        assert!(series.insert(name), "{name} twice");
    }
    assert!(text.ends_with(&format!(
        "dkim_exporter_records {}\n",
        state.records().len()
    )));
}

#[test]
fn every_domain_verdict_reads_its_own_records() {
    let state = state(300);
    for domain in state.domains() {
        assert!(!domain.records.is_empty(), "{}", domain.name);
        for record in &state.records()[domain.records.clone()] {
            assert_eq!(*record.domain, *domain.name);
        }
    }
    let in_domains: usize = state.domains().iter().map(|d| d.records.len()).sum();
    assert_eq!(in_domains, state.records().len());
}

#[test]
fn empty_state_renders_only_exporter_metrics() {
    let metrics = Metrics::new().unwrap();
    let text = metrics.render(&State::default(), &[("a", Some(true)), ("b", None)]);
    assert!(text.contains("dkim_resolver_up{resolver=\"a\"} 1\n"));
    assert!(!text.contains("resolver=\"b\""));
    assert!(text.contains("dkim_check_rounds_total 0\n"));
    assert!(text.contains("dkim_exporter_records 0\n"));
    assert!(!text.contains("dkim_record_present"));
    assert!(text.contains("dkim_exporter_build_info{"));
}
