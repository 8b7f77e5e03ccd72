//! When a domain's own DNS breaks, the exporter names it on the domain's records and never
//! blames the resolvers; when a resolver breaks, it says so and claims nothing about records.
//! One test per row of issue 11's table, through the real daemon (or `check`'s code) against
//! DNS servers on loopback: resolvers that answer from a zone, a parent zone's nameserver that
//! refers, and delegated nameservers that are dead, refuse or answer without authority.

use crate::support;

use dkim_exporter::metrics::{
    CHECK_ROUNDS_TOTAL, DNS_QUERIES_TOTAL, DOMAIN_HEALTHY, LOOKUP_ERRORS_TOTAL,
    RECORD_LOOKUP_SUCCESS, RECORD_PRESENT, RESOLVER_UP,
};
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, Scrape, resolver};

fn up(s: &Scrape, resolver: &str) -> Option<f64> {
    s.value(RESOLVER_UP.name, &[("resolver", resolver)])
}

/// What public resolvers know: healthy.test's record and key, the `test.` zone's nameserver
/// (the parent of every test domain) at 127.0.0.2.
fn public_zone() -> Zone {
    let key = support::rsa_public_key_base64(1024);
    Zone::new()
        .cname("s1._domainkey.healthy.test.", "s1.dkim.amazonses.com.")
        .txt("s1.dkim.amazonses.com.", &["v=DKIM1; p=", &key])
        .ns("test.", "ns.test.")
        .a("ns.test.", [127, 0, 0, 2])
}

/// The daemon on `resolvers`, checking `domains` (SES selectors), its nameservers on `port`.
async fn daemon(resolvers: &[(&str, &TestDns)], domains: &[(&str, &[&str])], port: u16) -> Daemon {
    let resolvers: String = resolvers
        .iter()
        .map(|(name, dns)| resolver(name, dns.addr))
        .collect();
    let domains: String = domains
        .iter()
        .map(|(domain, selectors)| {
            format!(
                "  - domain: {domain}\n    provider: ses\n    selectors: [{}]\n",
                selectors.join(", ")
            )
        })
        .collect();
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{resolvers}domains:\n{domains}"
    );
    let options = dkim_exporter::Options {
        nameserver_port: port,
        ..Default::default()
    };
    Daemon::start_with(&yaml, options).await
}

/// The parent zone's nameserver (127.0.0.2) delegating `delegations`, and one nameserver per
/// delegation behind it (127.0.0.3, 127.0.0.4, …), all on one port.
async fn delegation(delegations: &[(&str, Behaviour)]) -> (u16, Vec<TestDns>) {
    let parent = delegations
        .iter()
        .enumerate()
        .fold(Zone::new(), |zone, (i, (domain, _))| {
            zone.delegate(
                &format!("{domain}."),
                &format!("ns1.{domain}."),
                [127, 0, 0, 3 + i as u8],
            )
        });
    let mut behaviours = vec![Behaviour::Answer(parent)];
    behaviours.extend(delegations.iter().map(|(_, b)| b.clone()));
    TestDns::start_nameservers(behaviours).await
}

/// The landing page's text.
async fn page(daemon: &Daemon) -> String {
    let (status, body) = daemon.get("/").await;
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn dead_nameservers_among_healthy_domains_are_unresolvable_and_no_resolver_is_down() {
    let (port, _servers) = delegation(&[("broken.test", Behaviour::Silent)]).await;
    let zone = public_zone().servfail_under("broken.test.");
    let r1 = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let r2 = TestDns::start(Behaviour::Answer(zone)).await;
    let daemon = daemon(
        &[("r1", &r1), ("r2", &r2)],
        &[("healthy.test", &["s1"]), ("broken.test", &["s1", "s2"])],
        port,
    )
    .await;
    let s = daemon.wait_rounds(2.0).await;
    for selector in ["s1", "s2"] {
        assert_eq!(
            s.problems("broken.test", selector),
            ["unresolvable"],
            "{}",
            s.text
        );
        // A lookup failure is never a missing record.
        assert_eq!(
            s.value(
                RECORD_PRESENT.name,
                &[
                    ("domain", "broken.test"),
                    ("selector", selector),
                    ("resolver", "r1")
                ]
            ),
            None
        );
    }
    assert!(s.problems("healthy.test", "s1").is_empty(), "{}", s.text);
    assert_eq!(up(&s, "r1"), Some(1.0), "{}", s.text);
    assert_eq!(up(&s, "r2"), Some(1.0));
    assert_eq!(
        s.value(DOMAIN_HEALTHY.name, &[("domain", "broken.test")]),
        Some(0.0)
    );
    assert_eq!(
        s.value(DOMAIN_HEALTHY.name, &[("domain", "healthy.test")]),
        Some(1.0)
    );
    // The detail names the dead nameserver.
    let page = page(&daemon).await;
    assert!(
        page.contains(
            "test delegates broken.test to ns1.broken.test (127.0.0.3), which does not answer"
        ),
        "{page}"
    );
    // The resolver panel counts the nameservers the walk asked, apart from the resolvers.
    assert!(
        page.contains("The domains' own nameservers: 2 asked"),
        "{page}"
    );
    // The nameservers the walk asks keep their counters from round to round, and are not
    // judged as resolvers.
    let dead = [("resolver", "auth:ns1.broken.test")];
    let before = s.value(DNS_QUERIES_TOTAL.name, &dead).expect("counted");
    let rounds = s.value(CHECK_ROUNDS_TOTAL.name, &[]).unwrap();
    let s = daemon.wait_rounds(rounds + 2.0).await;
    assert!(
        s.value(DNS_QUERIES_TOTAL.name, &dead) > Some(before),
        "{}",
        s.text
    );
    assert_eq!(up(&s, "auth:ns1.broken.test"), None);
    daemon.stop().await;
}

#[tokio::test]
async fn dead_nameservers_of_the_only_domain_still_leave_the_resolvers_up() {
    let (port, _servers) = delegation(&[("broken.test", Behaviour::Silent)]).await;
    let zone = public_zone().servfail_under("broken.test.");
    let r1 = TestDns::start(Behaviour::Answer(zone)).await;
    let daemon = daemon(&[("r1", &r1)], &[("broken.test", &["s1"])], port).await;
    let s = daemon.wait_rounds(2.0).await;
    assert_eq!(
        s.problems("broken.test", "s1"),
        ["unresolvable"],
        "{}",
        s.text
    );
    // It answers the exporter's questions about the parent zone: it works.
    assert_eq!(up(&s, "r1"), Some(1.0), "{}", s.text);
    daemon.stop().await;
}

#[tokio::test]
async fn lame_nameservers_are_unresolvable_and_named_lame() {
    let authoritative_zone = Zone::new().a("lame2.test.", [192, 0, 2, 2]);
    let (port, _servers) = delegation(&[
        (
            "lame1.test",
            Behaviour::Rcode(hickory_proto::op::ResponseCode::Refused),
        ),
        (
            "lame2.test",
            Behaviour::NotAuthoritative(authoritative_zone),
        ),
    ])
    .await;
    let zone = public_zone()
        .servfail_under("lame1.test.")
        .servfail_under("lame2.test.");
    let r1 = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let r2 = TestDns::start(Behaviour::Answer(zone)).await;
    let daemon = daemon(
        &[("r1", &r1), ("r2", &r2)],
        &[("lame1.test", &["s1"]), ("lame2.test", &["s1"])],
        port,
    )
    .await;
    let s = daemon.wait_rounds(2.0).await;
    assert_eq!(
        s.problems("lame1.test", "s1"),
        ["unresolvable"],
        "{}",
        s.text
    );
    assert_eq!(
        s.problems("lame2.test", "s1"),
        ["unresolvable"],
        "{}",
        s.text
    );
    assert_eq!(up(&s, "r1"), Some(1.0));
    assert_eq!(up(&s, "r2"), Some(1.0));
    let page = page(&daemon).await;
    assert!(
        page.contains("ns1.lame1.test (127.0.0.3), which answers REFUSED (lame)"),
        "{page}"
    );
    assert!(
        page.contains("ns1.lame2.test (127.0.0.4), which answers without authority (lame)"),
        "{page}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_bogus_zone_is_dnssec_bogus_even_where_a_resolver_answers() {
    // The key at s1.dkim.amazonses.com is public_zone()'s.
    let zone = public_zone().cname("s1._domainkey.signed.test.", "s1.dkim.amazonses.com.");
    // Two validating resolvers, one saying why (EDE 9), one answering only with CD; one that
    // does not validate.
    let with_ede = TestDns::start(Behaviour::Answer(
        zone.clone()
            .bogus_under("signed.test.", Some((9, "no DNSKEY matches the DS"))),
    ))
    .await;
    let without_ede = TestDns::start(Behaviour::Answer(
        zone.clone().bogus_under("signed.test.", None),
    ))
    .await;
    let plain = TestDns::start(Behaviour::Answer(zone)).await;
    let daemon = daemon(
        &[("ede", &with_ede), ("cd", &without_ede), ("plain", &plain)],
        &[("signed.test", &["s1"])],
        0,
    )
    .await;
    let s = daemon.wait_rounds(2.0).await;
    assert_eq!(
        s.problems("signed.test", "s1"),
        ["dnssec_bogus"],
        "{}",
        s.text
    );
    for r in ["ede", "cd", "plain"] {
        assert_eq!(up(&s, r), Some(1.0), "{r}\n{}", s.text);
    }
    let page = page(&daemon).await;
    assert!(
        page.contains("EDE 9 DNSKEY Missing: no DNSKEY matches the DS"),
        "{page}"
    );
    assert!(page.contains("rejected by DNSSEC validation"), "{page}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_domain_that_does_not_exist_is_domain_not_found_not_missing() {
    let r1 = TestDns::start(Behaviour::Answer(public_zone())).await;
    let daemon = daemon(&[("r1", &r1)], &[("gone.test", &["s1", "s2"])], 0).await;
    let s = daemon.wait_rounds(2.0).await;
    for selector in ["s1", "s2"] {
        assert_eq!(
            s.problems("gone.test", selector),
            ["domain_not_found"],
            "{}",
            s.text
        );
    }
    assert_eq!(up(&s, "r1"), Some(1.0));
    daemon.stop().await;
}

#[tokio::test]
async fn a_resolver_that_never_answers_is_down_and_nothing_else() {
    let good = TestDns::start(Behaviour::Answer(public_zone())).await;
    let silent = TestDns::start(Behaviour::Silent).await;
    let daemon = daemon(
        &[("good", &good), ("silent", &silent)],
        &[("healthy.test", &["s1"])],
        0,
    )
    .await;
    let s = daemon.wait_rounds(2.0).await;
    assert!(s.problems("healthy.test", "s1").is_empty(), "{}", s.text);
    assert_eq!(up(&s, "good"), Some(1.0));
    assert_eq!(up(&s, "silent"), Some(0.0));
    daemon.stop().await;
}

#[tokio::test]
async fn a_resolver_whose_upstream_is_gone_is_down_and_nothing_else() {
    let good = TestDns::start(Behaviour::Answer(public_zone())).await;
    // Its upstream is gone: it fails on every name under test., names the other answers.
    let broken = TestDns::start(Behaviour::Answer(public_zone().servfail_under("test."))).await;
    let daemon = daemon(
        &[("good", &good), ("broken", &broken)],
        &[("healthy.test", &["s1"])],
        0,
    )
    .await;
    let s = daemon.wait_rounds(2.0).await;
    assert!(s.problems("healthy.test", "s1").is_empty(), "{}", s.text);
    assert_eq!(up(&s, "good"), Some(1.0));
    assert_eq!(up(&s, "broken"), Some(0.0));
    daemon.stop().await;
}

#[tokio::test]
async fn every_resolver_dead_is_every_resolver_down_and_no_problem() {
    let a = TestDns::start(Behaviour::Silent).await;
    let b = TestDns::start(Behaviour::Silent).await;
    let daemon = daemon(&[("a", &a), ("b", &b)], &[("healthy.test", &["s1"])], 0).await;
    let s = daemon.wait_rounds(2.0).await;
    assert!(s.problems("healthy.test", "s1").is_empty(), "{}", s.text);
    assert_eq!(up(&s, "a"), Some(0.0));
    assert_eq!(up(&s, "b"), Some(0.0));
    assert_eq!(
        s.value(
            RECORD_LOOKUP_SUCCESS.name,
            &[
                ("domain", "healthy.test"),
                ("selector", "s1"),
                ("resolver", "a")
            ]
        ),
        Some(0.0)
    );
    daemon.stop().await;
}

#[tokio::test]
async fn refused_without_a_question_is_refused_at_once() {
    let good = TestDns::start(Behaviour::Answer(public_zone())).await;
    let refusing = TestDns::start(Behaviour::RefusedWithoutQuestion).await;
    // A long timeout: waiting it out would show as timeouts and slow rounds.
    let yaml = format!(
        "interval: 1s\ntimeout: 30s\nauthoritative: false\nresolvers:\n{}{}domains:\n  - domain: healthy.test\n    provider: ses\n    selectors: [s1]\n",
        resolver("good", good.addr),
        resolver("refusing", refusing.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(2.0).await;
    let errors = |reason| {
        s.value(
            LOOKUP_ERRORS_TOTAL.name,
            &[("resolver", "refusing"), ("reason", reason)],
        )
    };
    assert!(errors("refused") >= Some(2.0), "{}", s.text);
    assert_eq!(errors("timeout"), Some(0.0));
    assert!(s.problems("healthy.test", "s1").is_empty(), "{}", s.text);
    assert_eq!(up(&s, "refusing"), Some(0.0));
    assert_eq!(up(&s, "good"), Some(1.0));
    daemon.stop().await;
}

#[tokio::test]
async fn check_names_the_dead_the_lame_the_bogus_and_the_missing_domain() {
    let authoritative_zone = Zone::new().a("lame.test.", [192, 0, 2, 2]);
    let (port, _servers) = delegation(&[
        ("dead.test", Behaviour::Silent),
        ("lame.test", Behaviour::NotAuthoritative(authoritative_zone)),
    ])
    .await;
    // The key at s1.dkim.amazonses.com is public_zone()'s.
    let zone = public_zone()
        .servfail_under("dead.test.")
        .servfail_under("lame.test.")
        .cname("s1._domainkey.signed.test.", "s1.dkim.amazonses.com.");
    let validating = TestDns::start(Behaviour::Answer(
        zone.clone()
            .bogus_under("signed.test.", Some((6, "signature by key 12345 failed"))),
    ))
    .await;
    let plain = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = format!(
        "timeout: 1s\nauthoritative: false\nresolvers:\n{}{}domains:\n\
         - domain: dead.test\n    provider: ses\n    selectors: [s1]\n\
         - domain: lame.test\n    provider: ses\n    selectors: [s1]\n\
         - domain: signed.test\n    provider: ses\n    selectors: [s1]\n\
         - domain: gone.test\n    provider: ses\n    selectors: [s1]\n",
        resolver("validating", validating.addr),
        resolver("plain", plain.addr)
    )
    .replace("\n- domain", "\n  - domain");
    let config = dkim_exporter::config::parse(&yaml, "test.yaml").unwrap();
    let dkim_exporter::config::Loaded { config, records } = config;
    let report = dkim_exporter::check_once::check(config, &records, port).await;
    let text = report.to_text(false);
    eprintln!("{text}");
    assert!(!report.ok);
    for expected in [
        "problem unresolvable: validating, plain fail on it: test delegates dead.test to \
         ns1.dead.test (127.0.0.3), which does not answer",
        "problem unresolvable: validating, plain fail on it: test delegates lame.test to \
         ns1.lame.test (127.0.0.4), which answers without authority (lame)",
        "problem dnssec_bogus: DNSSEC validation fails on validating (EDE 6 DNSSEC Bogus: \
         signature by key 12345 failed)",
        "lookup failed: servfail (EDE 6 DNSSEC Bogus: signature by key 12345 failed), rejected \
         by DNSSEC validation",
        "problem domain_not_found: the domain itself does not exist (NXDOMAIN) on validating, plain",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let signed = &json["domains"][2]["records"][0];
    assert_eq!(signed["resolvers"][0]["dnssec_bogus"], true);
    assert_eq!(
        signed["resolvers"][0]["ede"],
        "EDE 6 DNSSEC Bogus: signature by key 12345 failed"
    );
}
