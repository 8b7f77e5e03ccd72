//! `dkim_exporter check` run as a person or a cron job runs it: exit codes, text and JSON.

use crate::support;

use std::net::SocketAddr;

use support::dns::{Behaviour, TestDns, Zone};

async fn check(args: &[&str]) -> (i32, String, String) {
    support::run_check(args, Default::default()).await
}

async fn server(key: &str) -> TestDns {
    let zone = Zone::new()
        .cname("good._domainkey.example.com.", "good.dkim.amazonses.com.")
        .txt("good.dkim.amazonses.com.", &["v=DKIM1; p=", key])
        .cname("typo._domainkey.example.com.", "typo.dkim.amazonses.co.")
        .cname(
            "twice._domainkey.example.com.example.com.",
            "twice.dkim.amazonses.com.",
        )
        // example.org exists, with no DKIM record.
        .a("example.org.", [192, 0, 2, 80]);
    TestDns::start(Behaviour::Answer(zone)).await
}

fn resolver_arg(addr: SocketAddr) -> String {
    format!("--resolver={addr}")
}

#[tokio::test]
async fn broken_domain_in_text_exits_one_with_fixes() {
    let dns = server(&support::rsa_public_key_base64(1024)).await;
    let (code, out, err) = check(&[
        "example.com",
        "--provider=ses",
        "--selector=good",
        "--selector=typo",
        "--selector=twice",
        &resolver_arg(dns.addr),
    ])
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("example.com: 2 of 3 records need attention"),
        "{out}"
    );
    assert!(out.contains("OK      good._domainkey.example.com"), "{out}");
    assert!(out.contains("PROBLEM typo._domainkey.example.com"), "{out}");
    assert!(out.contains("cname typo.dkim.amazonses.co"), "{out}");
    assert!(out.contains("problem target_typo:"), "{out}");
    assert!(
        out.contains("fix: Fix the spelling of the CNAME target."),
        "{out}"
    );
    // The doubled name is named, with the way to fix it.
    assert!(
        out.contains(
            "problem doubled_domain: the record exists at twice._domainkey.example.com.example.com"
        ),
        "{out}"
    );
    assert!(
        out.contains("re-enter the name with a trailing dot, or without the domain"),
        "{out}"
    );
    assert!(out.contains("problem missing:"), "{out}");
    // Not a terminal: no colour codes.
    assert!(!out.contains('\x1b'), "{out}");
}

#[tokio::test]
async fn healthy_domain_exits_zero_and_json_is_for_scripts() {
    let dns = server(&support::rsa_public_key_base64(1024)).await;
    let (code, out, _) = check(&[
        "example.com",
        "--provider=ses",
        "--selector=good",
        &resolver_arg(dns.addr),
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("example.com: all records correct"), "{out}");

    let (code, out, _) = check(&[
        "example.com",
        "--provider=ses",
        "--selector=good",
        "--selector=typo",
        "--format=json",
        &resolver_arg(dns.addr),
    ])
    .await;
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(report["ok"], false);
    let records = &report["domains"][0]["records"];
    assert_eq!(records[0]["status"], "correct");
    assert_eq!(records[0]["key_bits"], 1024);
    assert_eq!(records[1]["status"], "problem");
    assert_eq!(records[1]["problems"][0]["problem"], "target_typo");
    assert_eq!(
        records[1]["resolvers"][0]["value"],
        "typo.dkim.amazonses.co"
    );
    assert_eq!(records[1]["expected_target"], "typo.dkim.amazonses.com");
}

#[tokio::test]
async fn every_configured_domain_from_the_config_file() {
    let dns = server(&support::rsa_public_key_base64(1024)).await;
    let dir = support::TempDir::new("check");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "timeout: 1s\nresolvers:\n  - name: local\n    address: {}\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n  - domain: example.org\n    records:\n      - selector: mail\n",
            dns.addr
        ),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let (code, out, _) = check(&["--config.file", path]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("example.com: all records correct"), "{out}");
    assert!(
        out.contains("example.org: 1 of 1 records need attention"),
        "{out}"
    );
    assert!(out.contains("problem missing: no record on local"), "{out}");
    // One domain of the config, with its configured selectors.
    let (code, out, _) = check(&["example.com", "--config.file", path]).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("example.org"));
}

#[tokio::test]
async fn a_dead_resolver_is_unknown_not_missing() {
    let dead = TestDns::start(Behaviour::Silent).await;
    let dir = support::TempDir::new("check-dead");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "timeout: 1s\nresolvers:\n  - name: dead\n    address: {}\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [good]\n",
            dead.addr
        ),
    )
    .unwrap();
    let (code, out, _) = check(&["--config.file", path.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("UNKNOWN good._domainkey.example.com"), "{out}");
    assert!(out.contains("lookup failed: timeout"), "{out}");
    assert!(!out.contains("problem missing"), "{out}");
}

#[tokio::test]
async fn bad_usage_exits_two() {
    let (code, _, err) = check(&[]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("give a DOMAIN with --selector, or --config.file"),
        "{err}"
    );
    let (code, _, err) = check(&["example.com", "--selector=bad selector"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("invalid selector"), "{err}");
    let (code, _, err) = check(&["--config.file", "/nonexistent/dkim.yaml"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/dkim.yaml"), "{err}");
    let (code, _, _) = check(&["example.com", "--format=xml"]).await;
    assert_eq!(code, 2);
}

#[tokio::test]
async fn a_healthy_record_costs_no_extra_queries() {
    let dns = server(&support::rsa_public_key_base64(1024)).await;
    let dir = support::TempDir::new("check-cost");
    let config = |selector: &str| {
        let path = dir.path().join(format!("{selector}.yaml"));
        std::fs::write(
            &path,
            format!(
                "authoritative: false\nresolvers:\n  - name: local\n    address: {}\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: [{selector}]\n",
                dns.addr
            ),
        )
        .unwrap();
        path
    };
    // Healthy: the CNAME, and the key at its target.
    let (code, _, _) = check(&["--config.file", config("good").to_str().unwrap()]).await;
    assert_eq!(code, 0);
    assert_eq!(dns.udp_queries(), 2);
    // Missing: the CNAME (NXDOMAIN), the domain's SOA (it exists), then A, AAAA and TXT at the
    // name, the doubled name, the name without the underscore, and `_domainkey.example.com`
    // (whether any DKIM record of the domain exists).
    let (code, _, _) = check(&["--config.file", config("absent").to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert_eq!(dns.udp_queries(), 2 + 8);
}

#[tokio::test]
async fn every_problem_through_check() {
    let strong = support::rsa_public_key_base64(2048);
    let weak = support::rsa_public_key_base64(512);
    let zone = support::broken_zone(&strong, &weak);
    let main = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let lagging = TestDns::start(Behaviour::Answer(
        zone.without("notprop._domainkey.example.com."),
    ))
    .await;
    let dir = support::TempDir::new("check-all");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "timeout: 2s\nauthoritative: false\nresolvers:\n  - name: main\n    address: {}\n  - name: lagging\n    address: {}\ndomains:\n  - domain: example.com\n    provider: ses\n    selectors: {}\n    records:\n      - selector: badtxt\n",
            main.addr,
            lagging.addr,
            support::SELECTORS
        ),
    )
    .unwrap();
    let (code, out, err) = check(&["--config.file", path.to_str().unwrap(), "--format=json"]).await;
    assert_eq!(code, 1, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let problems = |selector: &str| -> Vec<String> {
        let records = report["domains"][0]["records"].as_array().unwrap();
        let record = records.iter().find(|r| r["selector"] == selector).unwrap();
        let mut names: Vec<String> = record["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert!(p["fix"].as_str().is_some_and(|f| !f.is_empty()));
                p["problem"].as_str().unwrap().to_string()
            })
            .collect();
        names.sort();
        names
    };
    for (selector, want) in [
        ("good", vec![]),
        ("missing", vec!["missing"]),
        ("notprop", vec!["not_propagated"]),
        ("typo", vec!["target_typo"]),
        ("wrong", vec!["wrong_target"]),
        ("region", vec!["wrong_region"]),
        ("arec", vec!["a_record", "missing"]),
        ("txtkey", vec!["missing", "txt_instead_of_cname"]),
        ("doubled", vec!["doubled_domain", "missing"]),
        ("nounder", vec!["missing", "missing_underscore"]),
        ("nokey", vec!["key_missing"]),
        ("revoked", vec!["key_invalid"]),
        ("weak", vec!["key_weak"]),
        ("badtxt", vec!["key_invalid"]),
    ] {
        assert_eq!(problems(selector), want, "{selector}");
    }
}
