//! The real daemon against in-process DNS servers on loopback, scraped over HTTP.

use crate::support;

use std::time::Duration;

use dkim_exporter::metrics::{
    CHECK_ROUNDS_TOTAL, DNS_QUERIES_TOTAL, DOMAIN_HEALTHY, DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS,
    EXPORTER_BUILD_INFO, EXPORTER_RECORDS, KEY_LENGTH, LOOKUP_ERRORS_TOTAL, RECORD_CORRECT,
    RECORD_INFO, RECORD_LOOKUP_SUCCESS, RECORD_PRESENT, RECORD_PROBLEM, RECORD_PROPAGATION_RATIO,
    RECORD_RESOLVERS_AGREE, RECORD_TTL_SECONDS, RESOLVER_UP,
};
use hickory_proto::op::ResponseCode;
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, Scrape, resolver, tcp_resolver};

const COM: &str = "example.com";

/// Every kind of record the daemon must read, on one zone.
fn scenario_zone(key: &str) -> Zone {
    let (head, tail) = key.split_at(key.len() / 2);
    Zone::new()
        .cname("good._domainkey.example.com.", "good.dkim.amazonses.com.")
        .cname("typo._domainkey.example.com.", "typo.dkim.amazonses.co.")
        .cname("UPPER._DOMAINKEY.EXAMPLE.COM.", "UPPER.DKIM.AMAZONSES.COM.")
        .a("arec._domainkey.example.com.", [52, 94, 236, 248])
        .txt(
            "mail._domainkey.example.org.",
            &["v=DKIM1; k=rsa; p=", head, tail],
        )
        .txt("old._domainkey.example.org.", &["v=DKIM1; k=rsa; p="])
}

const SCENARIO_DOMAINS: &str = "domains:
  - domain: example.com
    provider: ses
    selectors: [good, missing, typo, upper, arec]
  - domain: Example.ORG.
    records:
      - selector: mail
      - selector: old
";

fn config(resolvers: &[String], domains: &str) -> String {
    format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}{domains}",
        resolvers.concat()
    )
}

fn rec<'a>(domain: &'a str, selector: &'a str, resolver: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("domain", domain),
        ("selector", selector),
        ("resolver", resolver),
    ]
}

#[tokio::test]
async fn every_scenario_over_udp_tcp_and_truncated_udp() {
    let key = support::rsa_public_key_base64(2048);
    let zone = scenario_zone(&key);
    let udp = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let tcp = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let truncating = TestDns::start(Behaviour::TruncateUdp(zone)).await;
    let daemon = Daemon::start(&config(
        &[
            resolver("udp", udp.addr),
            tcp_resolver("tcp", tcp.addr),
            resolver("truncating", truncating.addr),
        ],
        SCENARIO_DOMAINS,
    ))
    .await;
    let s = daemon.wait_rounds(1.0).await;

    for r in ["udp", "tcp", "truncating"] {
        let present = |sel| s.value(RECORD_PRESENT.name, &rec(COM, sel, r));
        let correct = |sel| s.value(RECORD_CORRECT.name, &rec(COM, sel, r));
        let info = |domain, sel| {
            let found = s.find(RECORD_INFO.name, &rec(domain, sel, r));
            assert_eq!(found.len(), 1, "{r} {sel}: {found:?}");
            (
                found[0].labels["record_type"].clone(),
                found[0].labels["value"].clone(),
            )
        };
        // Correct SES record.
        assert_eq!(present("good"), Some(1.0), "{r}");
        assert_eq!(correct("good"), Some(1.0), "{r}");
        assert_eq!(
            info(COM, "good"),
            ("cname".into(), "good.dkim.amazonses.com".into())
        );
        assert_eq!(
            s.value(RECORD_TTL_SECONDS.name, &rec(COM, "good", r)),
            Some(300.0)
        );
        // Missing: definitively absent, with the negative-caching TTL.
        assert_eq!(present("missing"), Some(0.0), "{r}");
        assert_eq!(correct("missing"), Some(0.0), "{r}");
        assert_eq!(info(COM, "missing"), ("none".into(), String::new()));
        assert_eq!(
            s.value(RECORD_TTL_SECONDS.name, &rec(COM, "missing", r)),
            Some(60.0)
        );
        // Wrong target: present, not correct.
        assert_eq!(present("typo"), Some(1.0), "{r}");
        assert_eq!(correct("typo"), Some(0.0), "{r}");
        assert_eq!(info(COM, "typo").1, "typo.dkim.amazonses.co");
        // Upper-case names with trailing dots compare equal, and labels are lower case.
        assert_eq!(correct("upper"), Some(1.0), "{r}");
        assert_eq!(info(COM, "upper").1, "upper.dkim.amazonses.com");
        // A records instead of the CNAME: the CNAME is not there.
        assert_eq!(present("arec"), Some(0.0), "{r}");
        assert_eq!(correct("arec"), Some(0.0), "{r}");
        // A DKIM key published as TXT, split into strings.
        let org = "example.org";
        assert_eq!(
            s.value(RECORD_PRESENT.name, &rec(org, "mail", r)),
            Some(1.0)
        );
        assert_eq!(
            s.value(RECORD_CORRECT.name, &rec(org, "mail", r)),
            Some(1.0)
        );
        let (kind, value) = info(org, "mail");
        assert_eq!(kind, "txt");
        assert!(
            value.starts_with("sha256:") && value.len() == 7 + 16,
            "{value}"
        );
        // A revoked key is present but not correct.
        assert_eq!(s.value(RECORD_PRESENT.name, &rec(org, "old", r)), Some(1.0));
        assert_eq!(s.value(RECORD_CORRECT.name, &rec(org, "old", r)), Some(0.0));
        assert_eq!(
            s.value(RECORD_LOOKUP_SUCCESS.name, &rec(COM, "good", r)),
            Some(1.0)
        );
        assert_eq!(s.value(RESOLVER_UP.name, &[("resolver", r)]), Some(1.0));
        assert!(s.value(DNS_QUERIES_TOTAL.name, &[("resolver", r)]) >= Some(7.0));
    }
    let record = |sel| [("domain", COM), ("selector", sel)];
    assert_eq!(
        s.value(RECORD_PROPAGATION_RATIO.name, &record("good")),
        Some(1.0)
    );
    assert_eq!(
        s.value(RECORD_PROPAGATION_RATIO.name, &record("missing")),
        Some(0.0)
    );
    assert_eq!(
        s.value(RECORD_RESOLVERS_AGREE.name, &record("typo")),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            KEY_LENGTH.name,
            &[("domain", "example.org"), ("selector", "mail")]
        ),
        Some(2048.0)
    );
    assert_eq!(s.value(DOMAIN_HEALTHY.name, &[("domain", COM)]), Some(0.0));
    assert_eq!(
        s.value(DOMAIN_HEALTHY.name, &[("domain", "example.org")]),
        Some(0.0)
    );
    assert!(s.value(DOMAIN_LAST_CHECK_TIMESTAMP_SECONDS.name, &[("domain", COM)]) > Some(1.7e9));
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(7.0));
    assert_eq!(s.find(EXPORTER_BUILD_INFO.name, &[]).len(), 1);
    assert!(s.value(CHECK_ROUNDS_TOTAL.name, &[]) >= Some(1.0));
    assert!(s.text.contains("process_resident_memory_bytes"));

    // The truncated UDP answers were retried over TCP; the TCP resolver never used UDP.
    assert!(truncating.tcp_queries() > 0);
    assert!(truncating.udp_queries() > 0);
    assert_eq!(tcp.udp_queries(), 0);
    assert_eq!(udp.tcp_queries(), 0);

    assert_eq!(daemon.get("/-/ready").await.0, 200);
    let (status, page) = daemon.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("typo.dkim.amazonses.co")
            && page.contains("<a href=\"/domain/example.org\">example.org</a>")
    );
    assert!(page.contains("<b>target_typo</b>") && page.contains("Fix: Fix the spelling"));

    // CI lints a real scrape with promtool.
    support::keep_scrape("metrics.prom", &s.text);
    daemon.stop().await;
}

#[tokio::test]
async fn propagation_when_one_of_three_resolvers_lacks_the_record() {
    let full = Zone::new().cname("good._domainkey.example.com.", "good.dkim.amazonses.com.");
    let a = TestDns::start(Behaviour::Answer(full.clone())).await;
    let b = TestDns::start(Behaviour::Answer(full)).await;
    let lagging = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let daemon = Daemon::start(&config(
        &[
            resolver("a", a.addr),
            resolver("b", b.addr),
            resolver("lagging", lagging.addr),
        ],
        "domains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n",
    ))
    .await;
    let s = daemon.wait_rounds(1.0).await;
    let record = [("domain", COM), ("selector", "good")];
    let ratio = s.value(RECORD_PROPAGATION_RATIO.name, &record).unwrap();
    assert!((ratio - 2.0 / 3.0).abs() < 1e-9, "{ratio}");
    assert_eq!(s.value(RECORD_RESOLVERS_AGREE.name, &record), Some(0.0));
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec(COM, "good", "lagging")),
        Some(0.0)
    );
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec(COM, "good", "a")),
        Some(1.0)
    );
    assert_eq!(s.value(DOMAIN_HEALTHY.name, &[("domain", COM)]), Some(0.0));
    daemon.stop().await;
}

#[tokio::test]
async fn failures_never_read_as_missing() {
    let key = support::rsa_public_key_base64(1024);
    let zone = Zone::new()
        .cname("good._domainkey.example.com.", "good.dkim.amazonses.com.")
        .txt("good.dkim.amazonses.com.", &["p=", &key]);
    let flaky = TestDns::start(Behaviour::Answer(zone)).await;
    let silent = TestDns::start(Behaviour::Silent).await;
    let servfail = TestDns::start(Behaviour::Rcode(ResponseCode::ServFail)).await;
    let refused = TestDns::start(Behaviour::Rcode(ResponseCode::Refused)).await;
    let formerr = TestDns::start(Behaviour::Rcode(ResponseCode::FormErr)).await;
    let daemon = Daemon::start(&config(
        &[
            resolver("flaky", flaky.addr),
            resolver("silent", silent.addr),
            resolver("servfail", servfail.addr),
            resolver("refused", refused.addr),
            resolver("formerr", formerr.addr),
        ],
        "domains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n",
    ))
    .await;
    let s = daemon.wait_rounds(1.0).await;
    let record = [("domain", COM), ("selector", "good")];
    for (r, reason) in [
        ("silent", "timeout"),
        ("servfail", "servfail"),
        ("refused", "refused"),
        ("formerr", "other"),
    ] {
        // Never a definitive answer: nothing is claimed about the record.
        s.assert_never_answered((COM, "good"), r, reason, 1.0);
        // Every reason is exported from the start, so rate() works.
        assert_eq!(
            s.find(LOOKUP_ERRORS_TOTAL.name, &[("resolver", r)]).len(),
            7
        );
    }
    assert_eq!(
        s.value(RESOLVER_UP.name, &[("resolver", "flaky")]),
        Some(1.0)
    );
    assert_eq!(s.value(RECORD_PROPAGATION_RATIO.name, &record), Some(1.0));
    assert_eq!(s.value(RECORD_RESOLVERS_AGREE.name, &record), Some(1.0));
    assert_eq!(s.value(DOMAIN_HEALTHY.name, &[("domain", COM)]), Some(1.0));

    // The one good resolver starts failing: what it said last is kept.
    flaky.set(Behaviour::Rcode(ResponseCode::ServFail));
    let rounds = s.value(CHECK_ROUNDS_TOTAL.name, &[]).unwrap();
    let s = daemon.wait_rounds(rounds + 2.0).await;
    assert_eq!(
        s.value(RECORD_PRESENT.name, &rec(COM, "good", "flaky")),
        Some(1.0)
    );
    assert_eq!(
        s.value(RECORD_CORRECT.name, &rec(COM, "good", "flaky")),
        Some(1.0)
    );
    assert_eq!(
        s.value(RECORD_LOOKUP_SUCCESS.name, &rec(COM, "good", "flaky")),
        Some(0.0)
    );
    assert_eq!(
        s.value(RESOLVER_UP.name, &[("resolver", "flaky")]),
        Some(0.0)
    );
    // No resolver answers now: no ratio, no verdict on the domain.
    assert_eq!(s.value(RECORD_PROPAGATION_RATIO.name, &record), None);
    assert_eq!(s.value(DOMAIN_HEALTHY.name, &[("domain", COM)]), None);
    daemon.stop().await;
}

#[tokio::test]
async fn endpoints_before_the_first_round_completes() {
    let silent = TestDns::start(Behaviour::Silent).await;
    // An hour-long interval: the first round is still running throughout this test.
    let yaml = format!(
        "interval: 1h\ntimeout: 1s\nresolvers:\n{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [a, b]\n",
        resolver("silent", silent.addr)
    );
    let options = dkim_exporter::Options {
        telemetry_path: "/custom-metrics".into(),
        ..Default::default()
    };
    let daemon = Daemon::start_with(&yaml, options).await;
    assert_eq!(daemon.get("/-/healthy").await.0, 200);
    assert_eq!(daemon.get("/-/ready").await.0, 503);
    assert_eq!(daemon.get("/metrics").await.0, 404);
    assert_eq!(daemon.get("/nope").await.0, 404);
    assert_eq!(
        support::http_request(daemon.addr, "POST", "/-/ready")
            .await
            .0,
        405
    );
    let (status, body) = daemon.get("/custom-metrics").await;
    assert_eq!(status, 200);
    let s = Scrape::parse(&body);
    assert_eq!(s.value(CHECK_ROUNDS_TOTAL.name, &[]), Some(0.0));
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(2.0));
    let (status, page) = daemon.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("/custom-metrics") && page.contains("not checked yet"),
        "{page}"
    );
    // Stopping mid-round is prompt.
    tokio::time::timeout(Duration::from_secs(15), daemon.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_resolver_never_sees_more_than_its_rate_limit() {
    let selectors: Vec<String> = (0..30).map(|i| format!("s{i}")).collect();
    // Present but pointing elsewhere: no follow-up lookups, one query per check.
    let zone = selectors.iter().fold(Zone::new(), |zone, s| {
        zone.cname(
            &format!("{s}._domainkey.example.com."),
            "elsewhere.example.net.",
        )
    });
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    // 30 records in a 1s interval would be 30 queries a second; the limit is 10.
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n  - name: polite\n    address: {}\n    max_queries_per_second: 10\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [{}]\n",
        dns.addr,
        selectors.join(", ")
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(1.0).await;
    // The round stretched to fit the limit: 30 checks 100ms apart.
    let round = s.value("dkim_check_round_duration_seconds", &[]).unwrap();
    assert!(round >= 2.8, "round took {round}s");
    daemon.stop().await;

    // Counted where it matters, at the server: no one-second window holds more than the limit
    // (one more is allowed for scheduling jitter at the receiving end).
    let arrivals = dns.arrivals();
    assert!(arrivals.len() >= 30);
    for (i, first) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .take_while(|t| t.duration_since(*first) < Duration::from_secs(1))
            .count();
        assert!(in_window <= 11, "{in_window} queries within one second");
    }
}

#[tokio::test]
async fn a_dead_resolver_does_not_delay_the_others() {
    let zone = Zone::new().cname("good._domainkey.example.com.", "good.dkim.amazonses.com.");
    let fast = TestDns::start(Behaviour::Answer(zone)).await;
    let dead = TestDns::start(Behaviour::Silent).await;
    // Every query to the dead resolver takes the full 4s timeout; rounds start every second.
    let yaml = format!(
        "interval: 1s\ntimeout: 4s\nauthoritative: false\nresolvers:\n{}{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n",
        resolver("dead", dead.addr),
        resolver("fast", fast.addr)
    );
    let started = std::time::Instant::now();
    let daemon = Daemon::start(&yaml).await;
    while fast.udp_queries() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "the fast resolver was asked {} times in 12s",
            fast.udp_queries()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Five checks a second apart took about 4s; waiting on the dead resolver would take 16s+.
    // Each lookup is one datagram, never retransmitted, even to a silent resolver.
    let asked = dead.udp_queries();
    assert!(
        (2..=6).contains(&asked),
        "dead resolver got {asked} datagrams"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn rounds_do_not_pile_up_behind_a_slow_resolver() {
    let dead = TestDns::start(Behaviour::Silent).await;
    // Each lookup takes the full 4s timeout and a round starts every second: without a bound,
    // four lookups would be outstanding at once.
    let yaml = format!(
        "interval: 1s\ntimeout: 4s\nauthoritative: false\nresolvers:\n{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n",
        resolver("dead", dead.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    tokio::time::sleep(Duration::from_secs(13)).await;
    daemon.stop().await;
    // At most two rounds are in flight, so no window shorter than the timeout sees more than
    // two queries arrive.
    let arrivals = dead.arrivals();
    assert!(arrivals.len() >= 4, "{} queries", arrivals.len());
    for (i, first) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .take_while(|t| t.duration_since(*first) < Duration::from_millis(3500))
            .count();
        assert!(
            in_window <= 2,
            "{in_window} queries within 3.5s: {arrivals:?}"
        );
    }
}

#[tokio::test]
async fn summary_detail_leaves_out_the_per_resolver_series() {
    let zone = Zone::new()
        .cname("good._domainkey.example.com.", "good.dkim.amazonses.com.")
        .txt(
            "good.dkim.amazonses.com.",
            &["v=DKIM1; k=rsa; p=", &support::rsa_public_key_base64(2048)],
        );
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = config(
        &[resolver("a", dns.addr)],
        "metrics:\n  detail: summary\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [good, missing]\n",
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(1.0).await;
    for family in [
        "dkim_record_present",
        "dkim_record_correct",
        "dkim_record_lookup_success",
        "dkim_record_ttl_seconds",
        "dkim_record_info",
    ] {
        assert!(!s.text.contains(family), "{family}\n{}", s.text);
    }
    assert_eq!(
        s.value(
            RECORD_PROPAGATION_RATIO.name,
            &[("domain", "example.com"), ("selector", "good")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            RECORD_PROBLEM.name,
            &[
                ("domain", "example.com"),
                ("selector", "missing"),
                ("problem", "missing")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(s.value(RESOLVER_UP.name, &[("resolver", "a")]), Some(1.0));
    // A probe of the same exporter keeps every series.
    let (status, probe) = daemon.get("/probe?target=example.com").await;
    assert_eq!(status, 200);
    assert!(probe.contains("dkim_record_correct{"), "{probe}");
    // CI lints this scrape with promtool too.
    support::keep_scrape("summary.prom", &s.text);
    daemon.stop().await;
}
