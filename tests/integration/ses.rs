//! Amazon SES discovery through the real AWS SDK client against a loopback SES API
//! (tests/integration/support/ses.rs), the daemon checking what it discovered against an in-process DNS
//! server, scraped over HTTP. moto, the other loopback SES, is driven by tests/integration/ses_moto.rs.

use crate::support;

use std::time::Duration;

use aws_sdk_sesv2::config::{Credentials, SharedCredentialsProvider};
use dkim_exporter::metrics::{
    EXPORTER_RECORDS, RECORD_CORRECT, RECORD_PROBLEM, SES_DISCOVERY_LAST_SUCCESS_TIMESTAMP_SECONDS,
    SES_DISCOVERY_SUCCESS, SES_IDENTITIES, SES_IDENTITY_DKIM_STATUS,
    SES_IDENTITY_LAST_KEY_GENERATION_TIMESTAMP_SECONDS, SES_IDENTITY_PROBLEM,
    SES_IDENTITY_SIGNING_ENABLED, SES_IDENTITY_SIGNING_KEY_LENGTH,
};
use dkim_exporter::ses::{DkimStatus, Origin, discover};
use support::dns::{Behaviour, TestDns, Zone};
use support::ses::{FakeIdentity, FakeSes};
use support::{Daemon, Scrape, resolver};

/// Fixed credentials: the standard chain is never consulted, so nothing looks for instance
/// metadata outside loopback.
fn options() -> dkim_exporter::Options {
    dkim_exporter::Options {
        aws_credentials: Some(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))),
        ..dkim_exporter::Options::default()
    }
}

/// Keys at the SES DKIM targets of `tokens` (global DKIM domain) and CNAMEs to them from
/// `domain`.
fn easy_dkim(mut zone: Zone, domain: &str, tokens: &[&str], key: &str) -> Zone {
    for token in tokens {
        zone = zone
            .cname(
                &format!("{token}._domainkey.{domain}."),
                &format!("{token}.dkim.amazonses.com."),
            )
            .txt(
                &format!("{token}.dkim.amazonses.com."),
                &["v=DKIM1; k=rsa; p=", key],
            );
    }
    zone
}

fn ses_config(dns: &TestDns, sources: &str, domains: &str) -> String {
    format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}ses:\n{sources}{domains}",
        resolver("dns", dns.addr)
    )
}

/// The binary on a config in `home` with the source `prod` at `ses` (plus `more` settings of
/// it) and `domains`, with dummy credentials or none; returns it and its log lines.
fn spawn_with_source(
    home: &support::TempDir,
    dns: &TestDns,
    ses: &FakeSes,
    more: &str,
    domains: &str,
    credentials: bool,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let source = format!(
        "  - name: prod\n    region: us-east-1\n    endpoint: {}\n    refresh: 1s\n{more}",
        ses.endpoint()
    );
    let config = home.write("dkim_exporter.yaml", &ses_config(dns, &source, domains));
    support::spawn_binary(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--web.listen-address=127.0.0.1:0",
        ],
        support::ses::aws_env(home.path(), credentials),
    )
}

fn identity(domain: &str) -> [(&str, &str); 3] {
    [
        ("source", "prod"),
        ("region", "us-east-1"),
        ("domain", domain),
    ]
}

fn status_of(scrape: &Scrape, domain: &str) -> Option<String> {
    scrape
        .find(SES_IDENTITY_DKIM_STATUS.name, &identity(domain))
        .into_iter()
        .find(|s| s.value == 1.0)
        .and_then(|s| s.labels.get("status").cloned())
}

fn ses_problems(scrape: &Scrape, domain: &str) -> Vec<String> {
    let mut problems: Vec<String> = scrape
        .find(SES_IDENTITY_PROBLEM.name, &identity(domain))
        .into_iter()
        .filter_map(|s| s.labels.get("problem").cloned())
        .collect();
    problems.sort();
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_identities_are_checked_and_judged_against_dns() {
    let key = support::rsa_public_key_base64(2048);
    let mut zone = Zone::new();
    zone = easy_dkim(zone, "good.example", &["g1", "g2", "g3"], &key);
    // SES says SUCCESS but one record was never added.
    zone = easy_dkim(zone, "drift.example", &["d1", "d2"], &key);
    // SES gave up although the records are there now.
    zone = easy_dkim(zone, "failed.example", &["f1"], &key);
    // Bring your own DKIM: the token is the selector of a TXT key.
    zone = zone.txt("byo._domainkey.byo.example.", &["v=DKIM1; k=rsa; p=", &key]);
    // A regional origin points at that region's DKIM domain.
    zone = zone
        .cname(
            "r1._domainkey.regional.example.",
            "r1.dkim.eu-south-1.amazonses.com.",
        )
        .txt(
            "r1.dkim.eu-south-1.amazonses.com.",
            &["v=DKIM1; k=rsa; p=", &key],
        );
    // The file lists this domain too, with a record of its own and one of SES's tokens
    // expected elsewhere: the file wins.
    zone = zone
        .cname("f1._domainkey.both.example.", "f1.elsewhere.example.")
        .txt("f1.elsewhere.example.", &["v=DKIM1; k=rsa; p=", &key]);
    zone = easy_dkim(zone, "both.example", &["b2"], &key);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let ses = FakeSes::start(vec![
        FakeIdentity::domain("good.example", &["g1", "g2", "g3"]),
        FakeIdentity::domain("Drift.Example", &["D1", "d2", "d3"]),
        FakeIdentity::domain("failed.example", &["f1"]).status("FAILED"),
        FakeIdentity::domain("pending.example", &["p1"])
            .status("PENDING")
            .not_signing(),
        FakeIdentity::domain("byo.example", &["byo"]).origin("EXTERNAL"),
        FakeIdentity::domain("regional.example", &["r1"]).origin("AWS_SES_EU_SOUTH_1"),
        FakeIdentity::domain("both.example", &["f1", "b2"]),
        FakeIdentity::domain("test.good.example", &["t1"]),
        FakeIdentity {
            identity_type: "EMAIL_ADDRESS",
            ..FakeIdentity::domain("someone@good.example", &[])
        },
    ])
    .await;
    let sources = format!(
        "  - name: prod\n    region: us-east-1\n    endpoint: {}\n    refresh: 1h\n    \
         max_requests_per_second: 100\n    exclude: [\"test.*\"]\n",
        ses.endpoint()
    );
    let domains = "domains:\n  - domain: both.example\n    records:\n      - selector: f1\n        cname: f1.elsewhere.example\n";
    let daemon = Daemon::start_with(&ses_config(&dns, &sources, domains), options()).await;

    let expected_correct = [
        ("good.example", "g1"),
        ("good.example", "g2"),
        ("good.example", "g3"),
        ("drift.example", "d1"),
        ("drift.example", "d2"),
        ("failed.example", "f1"),
        ("byo.example", "byo"),
        ("regional.example", "r1"),
        ("both.example", "f1"),
        ("both.example", "b2"),
    ];
    let s = daemon
        .wait_for("SES discovery and a round over its records", |s| {
            s.value(SES_DISCOVERY_SUCCESS.name, &[("source", "prod")]) == Some(1.0)
                && s.value(EXPORTER_RECORDS.name, &[]) == Some(12.0)
                && expected_correct.iter().all(|(domain, selector)| {
                    s.value(
                        RECORD_CORRECT.name,
                        &[("domain", domain), ("selector", selector)],
                    )
                    .is_some()
                })
                && !ses_problems(s, "drift.example").is_empty()
        })
        .await;

    // Seven domain identities: the email identity and the excluded one are not discovered.
    assert_eq!(
        s.value(SES_IDENTITIES.name, &[("source", "prod")]),
        Some(7.0)
    );
    assert!(
        s.value(
            SES_DISCOVERY_LAST_SUCCESS_TIMESTAMP_SECONDS.name,
            &[("source", "prod")]
        ) > Some(1.7e9)
    );
    assert!(
        s.find(
            SES_IDENTITY_DKIM_STATUS.name,
            &identity("test.good.example")
        )
        .is_empty()
    );
    // Every status is a series, 1 for the current one.
    assert_eq!(
        s.find(SES_IDENTITY_DKIM_STATUS.name, &identity("good.example"))
            .len(),
        5
    );
    assert_eq!(status_of(&s, "good.example").as_deref(), Some("success"));
    assert_eq!(status_of(&s, "failed.example").as_deref(), Some("failed"));
    assert_eq!(status_of(&s, "pending.example").as_deref(), Some("pending"));
    assert_eq!(
        s.value(
            SES_IDENTITY_SIGNING_ENABLED.name,
            &identity("pending.example")
        ),
        Some(0.0)
    );
    assert_eq!(
        s.value(
            SES_IDENTITY_SIGNING_KEY_LENGTH.name,
            &identity("good.example")
        ),
        Some(2048.0)
    );
    assert_eq!(
        s.value(
            SES_IDENTITY_LAST_KEY_GENERATION_TIMESTAMP_SECONDS.name,
            &identity("good.example")
        ),
        Some(1_764_000_000.0)
    );

    // The records: 3 + 3 + 1 + 1 + 1 + 1 from SES, and both.example's f1 from the file with
    // SES's b2 (SES's f1 is the file's).
    let correct = |domain, selector| {
        s.value(
            RECORD_CORRECT.name,
            &[
                ("domain", domain),
                ("selector", selector),
                ("resolver", "dns"),
            ],
        )
    };
    for (domain, selector) in expected_correct {
        assert_eq!(correct(domain, selector), Some(1.0), "{domain} {selector}");
    }
    assert_eq!(
        s.value(
            RECORD_PROBLEM.name,
            &[
                ("domain", "drift.example"),
                ("selector", "d3"),
                ("problem", "missing")
            ]
        ),
        Some(1.0)
    );

    // SES's verdict beside DNS's.
    assert!(ses_problems(&s, "good.example").is_empty());
    assert_eq!(ses_problems(&s, "drift.example"), ["ses_status_disagrees"]);
    assert_eq!(
        ses_problems(&s, "failed.example"),
        ["ses_failed", "ses_status_disagrees"]
    );
    assert_eq!(
        ses_problems(&s, "pending.example"),
        ["ses_signing_disabled"]
    );

    // Two identities a page: four pages, one GetEmailIdentity per domain identity wanted, all
    // signed with SigV4.
    ses.with(|state| {
        assert_eq!(state.list_requests, 5);
        assert_eq!(state.get_requests, 7);
        assert!(state.all_signed);
    });

    // Kept for CI's `promtool check metrics`.
    support::keep_scrape("ses.prom", &s.text);

    // The landing page says where the records came from, and what SES says.
    let (status, page) = daemon.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("from SES prod"), "{page}");
    assert!(
        page.contains("Amazon SES identity (prod · us-east-1)"),
        "{page}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_come_and_go_and_a_failing_api_keeps_the_last_listing() {
    let key = support::rsa_public_key_base64(1024);
    let mut zone = Zone::new();
    zone = easy_dkim(zone, "one.example", &["o1"], &key);
    zone = easy_dkim(zone, "two.example", &["t1"], &key);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let ses = FakeSes::start(vec![FakeIdentity::domain("one.example", &["o1"])]).await;
    let sources = format!(
        "  - name: prod\n    region: us-east-1\n    endpoint: {}\n    refresh: 1s\n    max_requests_per_second: 100\n",
        ses.endpoint()
    );
    // No domains in the file: SES alone.
    let daemon = Daemon::start_with(&ses_config(&dns, &sources, ""), options()).await;
    daemon
        .wait_for("one.example checked", |s| {
            s.value(
                RECORD_CORRECT.name,
                &[("domain", "one.example"), ("selector", "o1")],
            ) == Some(1.0)
        })
        .await;

    // An identity added in SES is discovered and checked; one removed disappears.
    ses.with(|state| state.identities = vec![FakeIdentity::domain("two.example", &["t1"])]);
    let s = daemon
        .wait_for("two.example replaces one.example", |s| {
            s.value(
                RECORD_CORRECT.name,
                &[("domain", "two.example"), ("selector", "t1")],
            ) == Some(1.0)
        })
        .await;
    assert!(!s.text.contains("one.example"), "{}", s.text);
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(1.0));

    // The API fails: discovery success drops to 0, and the last identities stay checked.
    ses.with(|state| state.failing = true);
    let s = daemon
        .wait_for("discovery failing", |s| {
            s.value(SES_DISCOVERY_SUCCESS.name, &[("source", "prod")]) == Some(0.0)
        })
        .await;
    assert_eq!(status_of(&s, "two.example").as_deref(), Some("success"));
    assert_eq!(
        s.value(SES_IDENTITIES.name, &[("source", "prod")]),
        Some(1.0)
    );
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(1.0));
    let (ready, _) = daemon.get("/-/ready").await;
    assert_eq!(ready, 200);

    // And recovers.
    ses.with(|state| state.failing = false);
    daemon
        .wait_for("discovery recovered", |s| {
            s.value(SES_DISCOVERY_SUCCESS.name, &[("source", "prod")]) == Some(1.0)
        })
        .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_a_failed_discovery_not_a_crash() {
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sources =
        format!("  - name: down\n    region: eu-south-1\n    endpoint: http://127.0.0.1:{port}\n");
    let domains = "domains:\n  - domain: example.com\n    records:\n      - selector: mail\n";
    let daemon = Daemon::start_with(&ses_config(&dns, &sources, domains), options()).await;
    let s = daemon
        .wait_for("discovery failed", |s| {
            s.value(SES_DISCOVERY_SUCCESS.name, &[("source", "down")]) == Some(0.0)
        })
        .await;
    // Never listed: no identity count, no last success; the file's records are checked.
    assert_eq!(s.value(SES_IDENTITIES.name, &[("source", "down")]), None);
    assert_eq!(
        s.value(
            SES_DISCOVERY_LAST_SUCCESS_TIMESTAMP_SECONDS.name,
            &[("source", "down")]
        ),
        None
    );
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(1.0));
    daemon.stop().await;
}

/// The discovery itself, through the real SDK client: throttling is retried with backoff,
/// and a domain asked for alone is read without listing.
#[tokio::test]
async fn throttling_is_retried_and_one_domain_is_read_alone() {
    let ses = FakeSes::start(vec![
        FakeIdentity::domain("a.example", &["x1", "x2"]).origin("EXTERNAL"),
        FakeIdentity::domain("b.example", &["y1"]).status("TEMPORARY_FAILURE"),
    ])
    .await;
    let config = dkim_exporter::config::parse(
        &format!(
            "ses:\n  - name: t\n    region: eu-south-1\n    endpoint: {}\n    max_requests_per_second: 50\n",
            ses.endpoint()
        ),
        "test.yaml",
    )
    .unwrap();
    let source = &config.config.ses[0];
    let credentials = options().aws_credentials.unwrap();
    let client = dkim_exporter::ses::client::connect(source, Some(&credentials)).await;

    ses.with(|state| state.throttle = 2);
    let listing = discover::discover(&client, source, None).await.unwrap();
    assert!(listing.unread.is_empty(), "{:?}", listing.unread);
    let domains: Vec<&str> = listing
        .identities
        .iter()
        .map(|i| i.domain.as_str())
        .collect();
    assert_eq!(domains, ["a.example", "b.example"]);
    assert_eq!(listing.identities[0].origin, Origin::External);
    assert_eq!(listing.identities[0].tokens, ["x1", "x2"]);
    assert_eq!(
        listing.identities[1].origin,
        Origin::Ses {
            region: "eu-south-1".into()
        }
    );
    assert_eq!(
        listing.identities[1].status,
        Some(DkimStatus::TemporaryFailure)
    );
    // The two throttled requests were tried again: one listing page, two reads, two retries.
    ses.with(|state| assert_eq!(state.list_requests + state.get_requests, 5));

    let before = ses.with(|state| state.list_requests);
    let one = discover::discover(&client, source, Some("B.example"))
        .await
        .unwrap();
    assert_eq!(one.identities.len(), 1);
    assert_eq!(ses.with(|state| state.list_requests), before);
    let missing = discover::discover(&client, source, Some("nope.example")).await;
    assert!(missing.unwrap_err().contains("not an identity"));

    // Throttled past the retries: the error names the call and SES's exception.
    ses.with(|state| state.throttle = 100);
    let error = discover::discover(&client, source, None).await.unwrap_err();
    assert!(error.contains("ListEmailIdentities"), "{error}");
    assert!(error.contains("TooManyRequestsException"), "{error}");
}

/// `dkim_exporter check` as a person runs it, with keys in the environment.
async fn check(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    support::run_check(args, support::ses::aws_env(home, true)).await
}

#[tokio::test]
async fn check_discovers_from_ses_and_prints_its_status_above_the_records() {
    let key = support::rsa_public_key_base64(2048);
    let zone = easy_dkim(Zone::new(), "good.example", &["g1", "g2"], &key);
    let zone = easy_dkim(zone, "failed.example", &["f1"], &key);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let ses = FakeSes::start(vec![
        FakeIdentity::domain("good.example", &["g1", "g2"]),
        FakeIdentity::domain("failed.example", &["f1"]).status("FAILED"),
    ])
    .await;
    let home = support::TempDir::new("ses-check");
    let endpoint = format!("--ses-endpoint={}", ses.endpoint());
    let resolver = format!("--resolver={}", dns.addr);

    // One domain: read alone, all correct.
    let (code, out, err) = check(
        home.path(),
        &[
            "good.example",
            "--ses-region=us-east-1",
            &endpoint,
            &resolver,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "SES command-line (us-east-1): DKIM status SUCCESS, signing enabled, key 2048 bits"
        ),
        "{out}"
    );
    assert!(
        out.contains("g1._domainkey.good.example  (expects CNAME g1.dkim.amazonses.com, key 2048 bits, from SES command-line)"),
        "{out}"
    );
    assert_eq!(ses.with(|state| state.list_requests), 0);

    // Every identity, as JSON: SES's FAILED with correct records is a problem.
    let (code, out, err) = check(
        home.path(),
        &[
            "--ses-region=us-east-1",
            &endpoint,
            &resolver,
            "--format=json",
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let failed = report["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "failed.example")
        .unwrap();
    assert_eq!(failed["ses"][0]["status"], "failed");
    let problems: Vec<&str> = failed["ses"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["problem"].as_str().unwrap())
        .collect();
    assert_eq!(problems, ["ses_failed", "ses_status_disagrees"]);
    assert_eq!(failed["records"][0]["from_ses"], "command-line");
    assert_eq!(failed["records"][0]["status"], "correct");

    // SES unreachable: a usage-level failure naming the source and the cause.
    ses.with(|state| state.throttle = 100);
    let (code, _, err) = check(
        home.path(),
        &[
            "good.example",
            "--ses-region=us-east-1",
            &endpoint,
            &resolver,
        ],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("SES discovery from command-line failed")
            && err.contains("TooManyRequestsException"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_daemon_says_so_and_keeps_running() {
    let key = support::rsa_public_key_base64(1024);
    let dns = TestDns::start(Behaviour::Answer(easy_dkim(
        Zone::new(),
        "file.example",
        &["s1"],
        &key,
    )))
    .await;
    let ses = FakeSes::start(vec![FakeIdentity::domain("good.example", &["g1"])]).await;
    let home = support::TempDir::new("ses-nocreds");
    let (mut child, lines) = spawn_with_source(
        &home,
        &dns,
        &ses,
        "",
        "domains:\n  - domain: file.example\n    provider: ses\n    selectors: [s1]\n",
        false,
    );
    let address = support::listening_address(&lines);
    let failed = support::wait_line(&lines, "SES discovery failed");
    assert!(failed.contains("level=warn"), "{failed}");
    assert!(failed.contains("source=prod"), "{failed}");
    assert!(failed.to_lowercase().contains("credentials"), "{failed}");

    // Still serving, the file's record checked, discovery marked failed; nothing reached SES.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (_, body) = support::http_get(address, "/metrics").await;
        if body.contains(
            "dkim_record_correct{domain=\"file.example\",selector=\"s1\",resolver=\"dns\"} 1",
        ) {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains("dkim_ses_discovery_success{source=\"prod\"} 0"),
        "{body}"
    );
    assert_eq!(support::http_get(address, "/-/ready").await.0, 200);
    assert_eq!(
        ses.with(|state| state.list_requests + state.get_requests),
        0
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_and_removes_sources() {
    let key = support::rsa_public_key_base64(1024);
    let zone = easy_dkim(Zone::new(), "one.example", &["o1"], &key);
    let zone = easy_dkim(zone, "two.example", &["t1"], &key);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let first = FakeSes::start(vec![FakeIdentity::domain("one.example", &["o1"])]).await;
    let second = FakeSes::start(vec![FakeIdentity::domain("two.example", &["t1"])]).await;
    let source = |name: &str, ses: &FakeSes| {
        format!(
            "  - name: {name}\n    region: us-east-1\n    endpoint: {}\n    refresh: 1h\n    max_requests_per_second: 100\n",
            ses.endpoint()
        )
    };
    let dir = support::TempDir::new("ses-reload");
    let path = dir.write(
        "dkim_exporter.yaml",
        &ses_config(&dns, &source("first", &first), ""),
    );
    let options = dkim_exporter::Options {
        config_file: Some(path.clone()),
        ..options()
    };
    let yaml = std::fs::read_to_string(&path).unwrap();
    let daemon = Daemon::start_with(&yaml, options).await;
    daemon
        .wait_for("one.example checked", |s| {
            s.value(
                RECORD_CORRECT.name,
                &[("domain", "one.example"), ("selector", "o1")],
            ) == Some(1.0)
        })
        .await;

    // The first source replaced by the second: its identities and records go at once, the
    // second's come with its first listing.
    dir.write(
        "dkim_exporter.yaml",
        &ses_config(&dns, &source("second", &second), ""),
    );
    let (status, body) = support::http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 200, "{body}");
    let s = daemon
        .wait_for("two.example checked", |s| {
            s.value(
                RECORD_CORRECT.name,
                &[("domain", "two.example"), ("selector", "t1")],
            ) == Some(1.0)
        })
        .await;
    assert!(!s.text.contains("one.example"), "{}", s.text);
    assert!(!s.text.contains("source=\"first\""), "{}", s.text);
    assert_eq!(s.value(EXPORTER_RECORDS.name, &[]), Some(1.0));

    // A reload that changes nothing of a source keeps what it discovered without asking SES
    // again.
    let asked = second.with(|state| state.list_requests + state.get_requests);
    let (status, body) = support::http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = daemon.scrape().await;
    assert_eq!(
        s.value(SES_IDENTITIES.name, &[("source", "second")]),
        Some(1.0)
    );
    assert_eq!(
        s.value(
            RECORD_CORRECT.name,
            &[("domain", "two.example"), ("selector", "t1")],
        ),
        Some(1.0)
    );
    assert_eq!(
        second.with(|state| state.list_requests + state.get_requests),
        asked
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_problems_appearing_and_clearing_are_logged() {
    let key = support::rsa_public_key_base64(1024);
    let dns = TestDns::start(Behaviour::Answer(easy_dkim(
        Zone::new(),
        "failed.example",
        &["f1"],
        &key,
    )))
    .await;
    // SES says FAILED while the record is correct: two SES problems.
    let ses = FakeSes::start(vec![
        FakeIdentity::domain("failed.example", &["f1"]).status("FAILED"),
    ])
    .await;
    let home = support::TempDir::new("ses-events");
    let (mut child, lines) = spawn_with_source(
        &home,
        &dns,
        &ses,
        "    max_requests_per_second: 100\n",
        "",
        true,
    );
    let problems = ["problem=ses_failed", "problem=ses_status_disagrees"];
    for appeared in support::wait_lines(&lines, &problems) {
        for field in [
            "level=info",
            "msg=\"SES problem appeared\"",
            "source=prod",
            "domain=failed.example",
            "detail=",
            "fix=",
        ] {
            assert!(appeared.contains(field), "{field}: {appeared}");
        }
    }
    // Verification restarted and passed: both clear.
    ses.with(|state| state.identities = vec![FakeIdentity::domain("failed.example", &["f1"])]);
    for cleared in support::wait_lines(&lines, &problems) {
        assert!(
            cleared.contains("msg=\"SES problem cleared\"")
                && cleared.contains("source=prod")
                && cleared.contains("domain=failed.example"),
            "{cleared}"
        );
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_identities_as_they_split_the_records() {
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let names: Vec<String> = (0..12).map(|i| format!("id{i}.example")).collect();
    let ses = FakeSes::start(
        names
            .iter()
            .map(|d| FakeIdentity::domain(d, &["t1"]).status("FAILED"))
            .collect(),
    )
    .await;
    let yaml = ses_config(
        &dns,
        &format!(
            "  - name: prod\n    region: us-east-1\n    endpoint: {}\n    refresh: 1s\n    max_requests_per_second: 1000\n",
            ses.endpoint()
        ),
        "",
    );
    let mut seen = std::collections::BTreeSet::new();
    for index in 0..2 {
        let options = dkim_exporter::Options {
            shard: dkim_exporter::records::shard::Shard { index, count: 2 },
            ..options()
        };
        let daemon = Daemon::start_with(&yaml, options).await;
        let s = daemon
            .wait_for("discovered, and the records checked", |s| {
                let checked = s
                    .find(dkim_exporter::metrics::DOMAIN_HEALTHY.name, &[])
                    .len();
                s.value(SES_IDENTITIES.name, &[("source", "prod")]) == Some(12.0)
                    && checked > 0
                    && checked == s.find(SES_IDENTITY_SIGNING_ENABLED.name, &[]).len()
            })
            .await;
        // Every replica lists every identity, and exports the identity series of its own
        // domains alone: those it checks the records of.
        let identities: std::collections::BTreeSet<String> = s
            .find(SES_IDENTITY_SIGNING_ENABLED.name, &[])
            .iter()
            .map(|x| x.labels["domain"].clone())
            .collect();
        let records: std::collections::BTreeSet<String> = s
            .find(dkim_exporter::metrics::DOMAIN_HEALTHY.name, &[])
            .iter()
            .map(|x| x.labels["domain"].clone())
            .collect();
        assert_eq!(identities, records);
        assert!(identities.is_disjoint(&seen));
        seen.extend(identities);
        daemon.stop().await;
    }
    assert_eq!(seen.len(), 12);
}
