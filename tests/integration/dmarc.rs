//! DMARC aggregate reports read by the daemon from a real directory, counted against the
//! records in force and joined to what an in-process DNS server answers, scraped over HTTP.

use crate::support;

use dkim_exporter::metrics::{
    DMARC_LAST_REPORT_TIMESTAMP_SECONDS, DMARC_MESSAGES, DMARC_REPORT_ERRORS_TOTAL, DMARC_REPORTS,
    DMARC_SIGNATURES, DMARC_SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS, DMARC_SOURCE_UP, DOMAIN_HEALTHY,
};
use support::dmarc::{Row, gzip, message, now, report_xml};
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, Scrape, TempDir, resolver};

/// A zone where `s1` of both domains publishes a usable key.
pub(crate) async fn dns() -> TestDns {
    let key = support::rsa_public_key_base64(2048);
    let zone = Zone::new()
        .txt("s1._domainkey.good.example.", &["v=DKIM1; k=rsa; p=", &key])
        .txt(
            "s1._domainkey.broken.example.",
            &["v=DKIM1; k=rsa; p=", &key],
        )
        .txt("broken.example.", &["v=spf1 -all"])
        .txt("good.example.", &["v=spf1 -all"]);
    TestDns::start(Behaviour::Answer(zone)).await
}

pub(crate) fn config(dns: &TestDns, sources: &str) -> String {
    format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}\
         dmarc:\n  sources:\n{sources}\
         domains:\n  - domain: good.example\n    records: [{{selector: s1}}]\n  \
         - domain: broken.example\n    records: [{{selector: s1}}]\n",
        resolver("dns", dns.addr)
    )
}

/// What Google, Microsoft and Yahoo reported: `s1` of broken.example fails at two of them while
/// its key is in DNS, and `newsel`, which no config lists, signs some of its mail.
fn write_reports(dir: &TempDir, end: u64) {
    let google = report_xml(
        "google.com",
        "g1",
        end,
        "broken.example",
        &[
            Row {
                count: 120,
                from: "broken.example",
                dkim: "fail",
                spf: "pass",
                signatures: &[("broken.example", "s1", "fail")],
            },
            Row {
                count: 10,
                from: "broken.example",
                dkim: "pass",
                spf: "pass",
                signatures: &[("broken.example", "s1", "pass")],
            },
            Row {
                count: 40,
                from: "broken.example",
                dkim: "pass",
                spf: "pass",
                signatures: &[("broken.example", "newsel", "pass")],
            },
            // Not watched: counts nowhere, adds no series.
            Row {
                count: 99,
                from: "other.org",
                dkim: "fail",
                spf: "fail",
                signatures: &[("other.org", "x", "fail")],
            },
        ],
        false,
    );
    dir.write("google.com!broken.example!1.xml", &google);
    // The same report again (another copy, another name) counts once.
    dir.write("copy-of-google.xml", &google);
    let microsoft = report_xml(
        "microsoft.com",
        "m1",
        end - 600,
        "broken.example",
        &[Row {
            count: 40,
            from: "broken.example",
            dkim: "fail",
            spf: "pass",
            signatures: &[("broken.example", "s1", "fail")],
        }],
        true,
    );
    std::fs::write(
        dir.path().join("microsoft.xml.gz"),
        gzip(microsoft.as_bytes()),
    )
    .unwrap();
    let yahoo = report_xml(
        "yahoo.com",
        "y1",
        end,
        "good.example",
        &[Row {
            count: 200,
            from: "good.example",
            dkim: "pass",
            spf: "pass",
            signatures: &[("good.example", "s1", "pass")],
        }],
        false,
    );
    dir.write(
        "yahoo.eml",
        &message(
            "",
            "dmarc@yahoo.com",
            "yahoo.xml.gz",
            "application/gzip",
            &gzip(yahoo.as_bytes()),
        ),
    );
    // Out of the window: ten days old.
    let old = report_xml(
        "google.com",
        "g0",
        end - 10 * 86400,
        "broken.example",
        &[Row {
            count: 1000,
            from: "broken.example",
            dkim: "fail",
            spf: "fail",
            signatures: &[("broken.example", "s1", "fail")],
        }],
        false,
    );
    dir.write("old.xml", &old);
    dir.write("junk.xml", "<html><body>not a report</body></html>");
    std::fs::write(
        dir.path().join("broken.gz"),
        b"\x1f\x8b\x08\x00 not gzip at all",
    )
    .unwrap();
}

fn messages(scrape: &Scrape, domain: &str, dkim: &str, spf: &str) -> Option<f64> {
    scrape.value(
        DMARC_MESSAGES.name,
        &[("domain", domain), ("dkim", dkim), ("spf", spf)],
    )
}

pub(crate) fn signatures(
    scrape: &Scrape,
    domain: &str,
    selector: &str,
    result: &str,
) -> Option<f64> {
    scrape.value(
        DMARC_SIGNATURES.name,
        &[
            ("domain", domain),
            ("selector", selector),
            ("result", result),
        ],
    )
}

/// Waits for `source` to be down, and checks that what it held still counts: 160 failed
/// signatures of broken.example's s1, and failing_at_receivers.
async fn down_keeps_what_it_held(daemon: &Daemon, source: &str) {
    let scrape = daemon
        .wait_for("the source down", |s| {
            s.value(DMARC_SOURCE_UP.name, &[("source", source)]) == Some(0.0)
        })
        .await;
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "fail"),
        Some(160.0)
    );
    assert_eq!(
        scrape.problems("broken.example", "s1"),
        ["failing_at_receivers"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_in_a_directory_are_counted_and_joined_to_dns() {
    let dns = dns().await;
    let reports = TempDir::new("dmarc-reports");
    let end = now() - 3600;
    write_reports(&reports, end);
    let source = format!(
        "    - name: files\n      directory: {}\n      refresh: 1s\n",
        reports.path().display()
    );
    let daemon = Daemon::start(&config(&dns, &source)).await;
    let scrape = daemon
        .wait_for(
            "failing_at_receivers and the unlisted selector checked",
            |s| {
                s.problems("broken.example", "s1") == ["failing_at_receivers"]
                    && s.problems("broken.example", "newsel") == ["missing"]
            },
        )
        .await;
    support::keep_scrape("dmarc.prom", &scrape.text);

    // Messages by header From, DMARC-evaluated; the row about other.org adds nothing.
    assert_eq!(
        messages(&scrape, "broken.example", "fail", "pass"),
        Some(160.0)
    );
    assert_eq!(
        messages(&scrape, "broken.example", "pass", "pass"),
        Some(50.0)
    );
    assert_eq!(
        messages(&scrape, "broken.example", "fail", "fail"),
        Some(0.0)
    );
    assert_eq!(
        messages(&scrape, "good.example", "pass", "pass"),
        Some(200.0)
    );
    assert!(
        scrape
            .find(DMARC_MESSAGES.name, &[("domain", "other.org")])
            .is_empty()
    );
    assert!(
        scrape
            .find(DMARC_SIGNATURES.name, &[("domain", "other.org")])
            .is_empty()
    );
    // Signatures by selector and result: the copy and the old report count nowhere.
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "fail"),
        Some(160.0)
    );
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "pass"),
        Some(10.0)
    );
    assert_eq!(
        signatures(&scrape, "broken.example", "newsel", "pass"),
        Some(40.0)
    );
    assert_eq!(
        signatures(&scrape, "good.example", "s1", "pass"),
        Some(200.0)
    );
    // The source: three distinct reports in the window, two items that are not reports.
    let source = [("source", "files")];
    assert_eq!(scrape.value(DMARC_REPORTS.name, &source), Some(3.0));
    assert_eq!(scrape.value(DMARC_SOURCE_UP.name, &source), Some(1.0));
    assert!(scrape.value(DMARC_SOURCE_LAST_SUCCESS_TIMESTAMP_SECONDS.name, &source) > Some(0.0));
    let errors = |reason| {
        scrape.value(
            DMARC_REPORT_ERRORS_TOTAL.name,
            &[("source", "files"), ("reason", reason)],
        )
    };
    assert_eq!(errors("not_a_report"), Some(1.0));
    assert_eq!(errors("unparsable"), Some(1.0));
    assert_eq!(errors("too_large"), Some(0.0));
    assert_eq!(
        scrape.value(
            DMARC_LAST_REPORT_TIMESTAMP_SECONDS.name,
            &[("domain", "broken.example")]
        ),
        Some(end as f64)
    );
    // DNS is fine for both s1 records; only the reports make broken.example unhealthy.
    assert_eq!(scrape.problems("good.example", "s1"), Vec::<String>::new());
    assert_eq!(
        scrape.value(DOMAIN_HEALTHY.name, &[("domain", "good.example")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(DOMAIN_HEALTHY.name, &[("domain", "broken.example")]),
        Some(0.0)
    );

    // The status page names the reporters and says DNS serves a key.
    let (status, page) = daemon.get("/domain/broken.example").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("google.com 120 of 130 failed, microsoft.com 40 of 40 failed"),
        "{page}"
    );
    assert!(
        page.contains("the published key is not the key mail is signed with"),
        "{page}"
    );

    // The directory goes away: the source is down, and what it held still counts.
    let moved = reports.path().with_extension("moved");
    std::fs::rename(reports.path(), &moved).unwrap();
    down_keeps_what_it_held(&daemon, "files").await;
    std::fs::rename(&moved, reports.path()).unwrap();
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authserv_id_only_vouched_messages_count() {
    let dns = dns().await;
    let reports = TempDir::new("dmarc-authserv");
    let end = now() - 3600;
    let report = |org: &str, id: &str, result: &str| {
        let xml = report_xml(
            org,
            id,
            end,
            "broken.example",
            &[Row {
                count: 500,
                from: "broken.example",
                dkim: result,
                spf: "pass",
                signatures: &[("broken.example", "s1", result)],
            }],
            false,
        );
        gzip(xml.as_bytes())
    };
    // Google's report, vouched for by the mailbox's own server.
    let vouched = "Authentication-Results: mx.example.net;\r\n dkim=pass header.d=google.com header.s=20230601;\r\n spf=pass\r\n";
    reports.write(
        "google.eml",
        &message(
            vouched,
            "noreply-dmarc-support@google.com",
            "google.xml.gz",
            "application/gzip",
            &report("google.com", "g1", "pass"),
        ),
    );
    // A forger's report of failures, with an Authentication-Results of its own making below
    // the server's, which found no valid signature.
    let forged_headers = "Authentication-Results: mx.example.net; dkim=none\r\n\
                          Authentication-Results: mx.example.net; dkim=pass header.d=evil.test\r\n";
    reports.write(
        "forged.eml",
        &message(
            forged_headers,
            "dmarc@evil.test",
            "forged.xml.gz",
            "application/gzip",
            &report("evil.test", "f1", "fail"),
        ),
    );
    let with = |authserv: &str| {
        format!(
            "    - name: rua\n      directory: {}\n      refresh: 1s\n{authserv}",
            reports.path().display()
        )
    };

    // Without authserv_id the forgery counts: its 500 failures page.
    let daemon = Daemon::start(&config(&dns, &with(""))).await;
    let scrape = daemon
        .wait_for("both reports counted", |s| {
            s.value(DMARC_REPORTS.name, &[("source", "rua")]) == Some(2.0)
        })
        .await;
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "fail"),
        Some(500.0)
    );
    daemon
        .wait_for("the forgery pages", |s| {
            s.problems("broken.example", "s1") == ["failing_at_receivers"]
        })
        .await;
    daemon.stop().await;

    // With it, only Google's counts.
    let daemon = Daemon::start(&config(&dns, &with("      authserv_id: mx.example.net\n"))).await;
    let scrape = daemon
        .wait_for("one report counted", |s| {
            s.value(DMARC_REPORTS.name, &[("source", "rua")]) == Some(1.0)
                && s.value("dkim_check_rounds_total", &[]) >= Some(2.0)
        })
        .await;
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "pass"),
        Some(500.0)
    );
    assert_eq!(signatures(&scrape, "broken.example", "s1", "fail"), None);
    assert_eq!(
        scrape.problems("broken.example", "s1"),
        Vec::<String>::new()
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_reports_and_checks_the_selectors_they_name() {
    let dns = dns().await;
    let reports = TempDir::new("dmarc-check");
    write_reports(&reports, now() - 3600);
    let resolver = dns.addr.to_string();
    let dir = reports.path().to_str().unwrap();
    let args = [
        "broken.example",
        "--selector=s1",
        "--resolver",
        &resolver,
        "--timeout=2s",
        "--dmarc-reports",
        dir,
    ];
    let (code, stdout, stderr) = support::run_check(&args, Default::default()).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    for line in [
        "receivers (last 7 days): 210 messages, 24% passed DKIM, reported by google.com, microsoft.com",
        "160 messages passed SPF but not DKIM",
        "s1: 170 signatures, 160 failed (fail 160, pass 10): google.com 120 of 130 failed, microsoft.com 40 of 40 failed",
        "newsel: 40 signatures, 0 failed (pass 40)",
        "seen signing, not configured (checked below): newsel",
        "failing_at_receivers",
        "DNS serves a usable key",
        "newsel._domainkey.broken.example",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    // Each item that is not a report is named on stderr.
    assert!(
        stderr.contains("junk.xml: not a DMARC aggregate report"),
        "{stderr}"
    );
    assert!(stderr.contains("broken.gz: unparsable"), "{stderr}");

    let json_args = [&args[..], &["--format=json"]].concat();
    let (code, stdout, _) = support::run_check(&json_args, Default::default()).await;
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let domain = &json["domains"][0];
    assert_eq!(domain["receivers"]["messages"], 210);
    assert_eq!(domain["receivers"]["not_configured"][0], "newsel");
    let records = domain["records"].as_array().unwrap();
    let newsel = records.iter().find(|r| r["selector"] == "newsel").unwrap();
    assert_eq!(newsel["from_dmarc"], true);
    assert_eq!(newsel["problems"][0]["problem"], "missing");

    // A path that does not exist is bad usage.
    let (code, _, stderr) = support::run_check(
        &[
            "broken.example",
            "--selector=s1",
            "--resolver",
            &resolver,
            "--dmarc-reports",
            "/nonexistent/dmarc",
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/dmarc: No such file"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_without_dmarc_forgets_what_receivers_said() {
    let dns = dns().await;
    let reports = TempDir::new("dmarc-reload");
    write_reports(&reports, now() - 3600);
    let with = config(
        &dns,
        &format!(
            "    - name: files\n      directory: {}\n      refresh: 1s\n",
            reports.path().display()
        ),
    );
    let without =
        with[..with.find("dmarc:").unwrap()].to_string() + &with[with.find("domains:").unwrap()..];
    let home = TempDir::new("dmarc-reload-config");
    let file = home.write("config.yaml", &with);
    let options = dkim_exporter::Options {
        config_file: Some(file.clone()),
        ..Default::default()
    };
    let daemon = Daemon::start_with(&with, options).await;
    let failing = |s: &Scrape| {
        s.problems("broken.example", "s1") == ["failing_at_receivers"]
            && s.problems("broken.example", "newsel") == ["missing"]
    };
    daemon.wait_for("the reports counted", failing).await;

    std::fs::write(&file, &without).unwrap();
    let (status, body) = support::http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 200, "{body}");
    let scrape = daemon.scrape().await;
    assert!(!scrape.text.contains("dkim_dmarc_"), "{}", scrape.text);
    assert_eq!(
        scrape.problems("broken.example", "s1"),
        Vec::<String>::new()
    );
    assert!(!scrape.text.contains("newsel"), "{}", scrape.text);
    let (_, page) = daemon.get("/domain/broken.example").await;
    assert!(!page.contains("What receivers reported"), "{page}");

    std::fs::write(&file, &with).unwrap();
    let (status, body) = support::http_request(daemon.addr, "POST", "/-/reload").await;
    assert_eq!(status, 200, "{body}");
    daemon.wait_for("the reports counted again", failing).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_over_imap_is_read_without_changing_it() {
    use std::time::{Duration, SystemTime};
    use support::dovecot::{Dovecot, PASSWORD, USER};

    let dns = dns().await;
    let end = now() - 3600;
    let report = |org: &str, id: &str, count: u64| {
        let xml = report_xml(
            org,
            id,
            end,
            "broken.example",
            &[Row {
                count,
                from: "broken.example",
                dkim: "fail",
                spf: "pass",
                signatures: &[("broken.example", "s1", "fail")],
            }],
            id.starts_with('m'),
        );
        message(
            "",
            &format!("dmarc@{org}"),
            &format!("{id}.xml.gz"),
            "application/gzip",
            &gzip(xml.as_bytes()),
        )
    };
    let yesterday = SystemTime::now() - Duration::from_secs(86_400);
    let google = report("google.com", "g1", 120);
    let junk = "From: someone@example.org\r\nSubject: hello\r\n\r\nnot a report\r\n";
    let dovecot = Dovecot::start(&[(google.as_bytes(), yesterday), (junk.as_bytes(), yesterday)]);
    let files = dovecot.message_files();
    let home = TempDir::new("dmarc-imap-daemon");
    let password = home.write("imap-password", &format!("{PASSWORD}\n"));
    let source = format!(
        "    - name: rua\n      refresh: 1s\n      imap:\n        host: {}\n        port: {}\n        \
         tls: tls\n        tls_ca_file: {}\n        username: {USER}\n        password_file: {}\n",
        dovecot.imaps.ip(),
        dovecot.imaps.port(),
        dovecot.ca_file.display(),
        password.display()
    );
    let daemon = Daemon::start(&config(&dns, &source)).await;
    let rua = [("source", "rua")];
    let not_a_report = |s: &Scrape| {
        s.value(
            DMARC_REPORT_ERRORS_TOTAL.name,
            &[("source", "rua"), ("reason", "not_a_report")],
        )
    };
    let scrape = daemon
        .wait_for("Google's report read", |s| {
            s.value(DMARC_REPORTS.name, &rua) == Some(1.0)
        })
        .await;
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "fail"),
        Some(120.0)
    );
    assert_eq!(not_a_report(&scrape), Some(1.0));
    daemon
        .wait_for("failing_at_receivers", |s| {
            s.problems("broken.example", "s1") == ["failing_at_receivers"]
        })
        .await;

    // A report arriving later is read at the next refresh; the others are not fetched again
    // (the not-a-report count stays 1) and nothing in the mailbox changed.
    dovecot.deliver(
        report("microsoft.com", "m1", 40).as_bytes(),
        SystemTime::now(),
    );
    let scrape = daemon
        .wait_for("Microsoft's report read", |s| {
            s.value(DMARC_REPORTS.name, &rua) == Some(2.0)
        })
        .await;
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "fail"),
        Some(160.0)
    );
    assert_eq!(not_a_report(&scrape), Some(1.0));
    let mut now_files = dovecot.message_files();
    now_files.retain(|f| files.contains(f));
    assert_eq!(
        now_files, files,
        "the messages' files (and flags) are as they were"
    );

    // The server goes away: the source is down and what it held still counts.
    drop(dovecot);
    down_keeps_what_it_held(&daemon, "rua").await;
    daemon.stop().await;
}
