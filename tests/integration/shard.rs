//! `--shard I/N`: replicas over one config check disjoint shares of the domains that together
//! are all of them, the same after a restart; `/probe` is not sharded.

use crate::support;

use std::collections::BTreeSet;

use dkim_exporter::metrics::{DOMAIN_HEALTHY, EXPORTER_RECORDS};
use dkim_exporter::records::shard::Shard;
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, Scrape};

const DOMAINS: usize = 60;

fn yaml(dns: &TestDns) -> String {
    let mut yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:\n",
        support::resolver("r1", dns.addr)
    );
    for i in 0..DOMAINS {
        yaml.push_str(&format!(
            "  - domain: customer-{i}.test\n    provider: ses\n    selectors: [a, b]\n"
        ));
    }
    yaml
}

async fn replica(yaml: &str, index: u32) -> Daemon {
    let options = dkim_exporter::Options {
        shard: Shard { index, count: 3 },
        ..dkim_exporter::Options::default()
    };
    Daemon::start_with(yaml, options).await
}

/// The domains a scrape has series for.
fn domains(scrape: &Scrape) -> BTreeSet<String> {
    scrape
        .find(DOMAIN_HEALTHY.name, &[])
        .iter()
        .map(|s| s.labels["domain"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_check_every_domain_exactly_once() {
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let yaml = yaml(&dns);
    let mut shares = Vec::new();
    for index in 0..3 {
        let daemon = replica(&yaml, index).await;
        let s = daemon.wait_rounds(1.0).await;
        let share = domains(&s);
        // Each replica counts its own records: two per domain.
        assert_eq!(
            s.value(EXPORTER_RECORDS.name, &[]),
            Some(2.0 * share.len() as f64)
        );
        assert!(!share.is_empty() && share.len() < DOMAINS, "{share:?}");
        if index == 0 {
            // The page says which shard this is.
            let (_, page) = daemon.get("/").await;
            assert!(
                page.contains(&format!(
                    "shard 0/3: this replica checks {} of the {DOMAINS} domains",
                    share.len()
                )),
                "{page}"
            );
            // A domain of another shard: not here, and the page says whose it is.
            let other = (0..DOMAINS)
                .map(|i| format!("customer-{i}.test"))
                .find(|d| !share.contains(d))
                .unwrap();
            let (status, page) = daemon.get(&format!("/domain/{other}")).await;
            assert_eq!(status, 404);
            assert!(page.contains("the replica of shard "), "{page}");
            // /probe is not sharded: it checks that domain with its configured selectors.
            let (status, probe) = daemon.get(&format!("/probe?target={other}")).await;
            assert_eq!(status, 200, "{probe}");
            let probe = Scrape::parse(&probe);
            assert_eq!(
                probe
                    .find("dkim_record_problem", &[("domain", &other)])
                    .len(),
                2
            );
        }
        daemon.stop().await;
        shares.push(share);
    }
    // Disjoint, and together every domain.
    let mut all = BTreeSet::new();
    for share in &shares {
        assert!(share.is_disjoint(&all), "{shares:?}");
        all.extend(share.iter().cloned());
    }
    assert_eq!(all.len(), DOMAINS);

    // A restarted replica has the same share.
    let daemon = replica(&yaml, 1).await;
    let s = daemon.wait_rounds(1.0).await;
    assert_eq!(domains(&s), shares[1]);
    daemon.stop().await;
}

#[tokio::test]
async fn the_shortest_round_the_limits_allow_is_exported_and_shrinks_with_shards() {
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    // 60 domains × 2 records at 10 queries a second: 12 s a round, on a 1 s interval.
    let yaml = yaml(&dns).replace("max_queries_per_second: 0", "max_queries_per_second: 10");
    assert!(yaml.contains("max_queries_per_second: 10"));
    let whole = Daemon::start(&yaml).await;
    let s = whole.scrape().await;
    assert_eq!(
        s.value("dkim_exporter_shortest_round_seconds", &[]),
        Some(12.0)
    );
    assert_eq!(s.value("dkim_exporter_interval_seconds", &[]), Some(1.0));
    whole.stop().await;
    // A third of the records on one of three replicas.
    let part = replica(&yaml, 0).await;
    let s = part.scrape().await;
    let records = s.value(EXPORTER_RECORDS.name, &[]).unwrap();
    assert_eq!(
        s.value("dkim_exporter_shortest_round_seconds", &[]),
        Some(records / 10.0)
    );
    part.stop().await;
}
