//! `/probe` through the real daemon: configured and unconfigured targets, bad parameters, and
//! Prometheus's scrape timeout.

use crate::support;

use std::time::{Duration, Instant};

use dkim_exporter::metrics::{
    CHECK_ROUNDS_TOTAL, DNS_QUERIES_TOTAL, PROBE_DURATION_SECONDS, PROBE_SUCCESS, RECORD_CORRECT,
    RECORD_PROBLEM, RESOLVER_UP,
};
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, Scrape, http_request_with, resolver};

async fn probe(daemon: &Daemon, query: &str) -> (u16, String) {
    support::http_get(daemon.addr, &format!("/probe?{query}")).await
}

#[tokio::test]
async fn probes_configured_and_other_targets() {
    let key = support::rsa_public_key_base64(1024);
    let zone = Zone::new()
        .cname("good._domainkey.example.com.", "good.dkim.amazonses.com.")
        .txt("good.dkim.amazonses.com.", &["p=", &key])
        .cname("s1._domainkey.other.example.", "s1.dkim.amazonses.co.");
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = format!(
        "interval: 1h\ntimeout: 2s\nauthoritative: false\nresolvers:\n{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n",
        resolver("local", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;

    // A configured target: its selectors come from the config.
    let (status, body) = probe(&daemon, "target=Example.COM").await;
    assert_eq!(status, 200, "{body}");
    let s = Scrape::parse(&body);
    assert_eq!(s.value(PROBE_SUCCESS.name, &[]), Some(1.0), "{body}");
    assert!(s.value(PROBE_DURATION_SECONDS.name, &[]) > Some(0.0));
    let record = [
        ("domain", "example.com"),
        ("selector", "good"),
        ("resolver", "local"),
    ];
    assert_eq!(s.value(RECORD_CORRECT.name, &record), Some(1.0));
    // Only the probed domain, none of the exporter's own series.
    assert_eq!(s.value(CHECK_ROUNDS_TOTAL.name, &[]), None);
    assert!(!body.contains("process_"));

    // A target that is not configured, with its selectors given.
    let (status, body) = probe(&daemon, "target=other.example&selector=s1&provider=ses").await;
    assert_eq!(status, 200, "{body}");
    let s = Scrape::parse(&body);
    assert_eq!(s.value(PROBE_SUCCESS.name, &[]), Some(0.0));
    let problem = [
        ("domain", "other.example"),
        ("selector", "s1"),
        ("problem", "target_typo"),
    ];
    assert_eq!(s.value(RECORD_PROBLEM.name, &problem), Some(1.0), "{body}");
    // CI lints a real probe with promtool.
    support::keep_scrape("probe.prom", &body);
    daemon.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_reason() {
    let daemon = Daemon::start(
        "interval: 1h\nauthoritative: false\nresolvers:\n  - name: x\n    address: 127.0.0.1:9\ndomains: []\n",
    )
    .await;
    for (query, reason) in [
        ("", "target is required"),
        ("target=", "target is required"),
        ("target=example.com", "no selectors for example.com"),
        (
            "target=example.com&color=red",
            "unknown parameter \"color\"",
        ),
        (
            "target=a.example&target=b.example&selector=s",
            "target is given twice",
        ),
        (
            "target=example.com&selector=a%20b",
            "selector=\"a b\": invalid selector \"a b\"",
        ),
        (
            "target=example.com&provider=ses",
            "give at least one selector",
        ),
        (
            "target=example.com&selector=s&provider=postmark",
            "unknown provider",
        ),
        (
            "target=example.com&provider=sendgrid",
            "provider sendgrid needs account",
        ),
        (
            "target=example.com&provider=ses&selector=s&tenant_domain=x.example",
            "tenant_domain needs provider microsoft365",
        ),
        (
            "target=example.com&selector=s&provider=ses&region=mars-1",
            "unknown region",
        ),
        (
            "target=exa_mple..com&selector=s",
            "target=\"exa_mple..com\": invalid name",
        ),
        (
            "target=example.com&selector=s&provider=ses&region=mars-1",
            "region=\"mars-1\": unknown region",
        ),
    ] {
        let (status, body) = probe(&daemon, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(reason), "{query}: {body}");
    }
    let (status, body) = http_request_with(
        daemon.addr,
        "GET",
        "/probe?target=example.com&selector=s",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "soon")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    daemon.stop().await;
}

#[tokio::test]
async fn the_scrape_timeout_bounds_the_probe() {
    let silent = TestDns::start(Behaviour::Silent).await;
    // Each query may take 5s; Prometheus gives the scrape 1.5s.
    let yaml = format!(
        "interval: 1h\ntimeout: 5s\nauthoritative: false\nresolvers:\n{}domains: []\n",
        resolver("silent", silent.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let started = Instant::now();
    let (status, body) = http_request_with(
        daemon.addr,
        "GET",
        "/probe?target=example.com&selector=s1&provider=ses",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let s = Scrape::parse(&body);
    assert_eq!(s.value(PROBE_SUCCESS.name, &[]), Some(0.0));
    // Answered within the budget (1.5s less the 0.5s offset), long before the 5s query timeout.
    assert!(took < Duration::from_secs(4), "probe took {took:?}");
    assert!(s.value(PROBE_DURATION_SECONDS.name, &[]) < Some(1.5));
    // And it says the budget ran out.
    assert_eq!(s.value("dkim_probe_timed_out", &[]), Some(1.0), "{body}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_probe_leaves_the_daemons_nameservers_alone() {
    let key = support::rsa_public_key_base64(1024);
    let records = Zone::new()
        .cname("good._domainkey.example.com.", "good.dkim.amazonses.com.")
        .txt("good.dkim.amazonses.com.", &["p=", &key]);
    let (port, _nameservers) =
        TestDns::start_nameservers(vec![Behaviour::Answer(records.clone())]).await;
    let public = records
        .ns("example.com.", "ns1.example.com.")
        .a("ns1.example.com.", [127, 0, 0, 2]);
    let dns = TestDns::start(Behaviour::Answer(public)).await;
    let yaml = format!(
        "interval: 1h\ntimeout: 2s\nresolvers:\n{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n",
        resolver("local", dns.addr)
    );
    let options = dkim_exporter::Options {
        nameserver_port: port,
        ..Default::default()
    };
    let daemon = Daemon::start_with(&yaml, options).await;
    let ns = [("resolver", "auth:ns1.example.com")];
    let s = daemon.wait_rounds(1.0).await;
    let queries = s
        .value(DNS_QUERIES_TOTAL.name, &ns)
        .expect("the nameserver is asked");
    assert_eq!(s.value(RESOLVER_UP.name, &ns), Some(1.0));
    // A probe of a domain with nameservers of its own, and one of a domain without.
    let (status, body) = probe(&daemon, "target=example.com").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = probe(&daemon, "target=other.example&selector=s1").await;
    assert_eq!(status, 200, "{body}");
    // No round has run since (1h interval): the daemon's nameserver is still there, with its
    // counter and verdict.
    let s = daemon.scrape().await;
    assert_eq!(s.value(CHECK_ROUNDS_TOTAL.name, &[]), Some(1.0));
    assert!(
        s.value(DNS_QUERIES_TOTAL.name, &ns) >= Some(queries),
        "{}",
        s.text
    );
    assert_eq!(s.value(RESOLVER_UP.name, &ns), Some(1.0), "{}", s.text);
    daemon.stop().await;
}

#[tokio::test]
async fn too_many_selectors_are_refused_and_head_checks_nothing() {
    let silent = TestDns::start(Behaviour::Silent).await;
    let yaml = format!(
        "interval: 1h\ntimeout: 5s\nauthoritative: false\nresolvers:\n{}domains: []\n",
        resolver("silent", silent.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let many: String = (0..65).map(|i| format!("&selector=s{i}")).collect();
    let (status, body) = probe(&daemon, &format!("target=example.com{many}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("at most 64 selectors in one probe, got 65"),
        "{body}"
    );
    assert_eq!(silent.udp_queries(), 0);

    // HEAD answers at once, without a query, even against a resolver that never answers.
    let started = Instant::now();
    let response = support::http_exchange(
        daemon.addr,
        "HEAD",
        "/probe?target=example.com&selector=s1",
        &[],
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.head);
    assert!(response.body.is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(silent.udp_queries(), 0);
    // HEAD with bad parameters is refused as GET is.
    let response =
        support::http_exchange(daemon.addr, "HEAD", "/probe?target=example.com", &[]).await;
    assert_eq!(response.status, 400, "{}", response.head);
    daemon.stop().await;
}
