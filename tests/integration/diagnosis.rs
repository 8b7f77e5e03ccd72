//! Every problem of the contract, found end to end by the real daemon, and the authoritative
//! nameservers asked directly.

use crate::support;

use dkim_exporter::metrics::{
    DOMAIN_HEALTHY, KEY_LENGTH, LOOKUP_ERRORS_TOTAL, RECORD_CORRECT, RECORD_INFO,
    RECORD_LOOKUP_SUCCESS, RECORD_PRESENT, RECORD_PROPAGATION_RATIO, RECORD_RESOLVERS_AGREE,
};
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, SELECTORS, broken_zone, resolver};

const COM: &str = "example.com";

#[tokio::test]
async fn every_problem_end_to_end_and_cleared_when_fixed() {
    let strong = support::rsa_public_key_base64(2048);
    let weak = support::rsa_public_key_base64(512);
    let zone = broken_zone(&strong, &weak);
    let main = TestDns::start(Behaviour::Answer(zone.clone())).await;
    let lagging = TestDns::start(Behaviour::Answer(
        zone.clone().without("notprop._domainkey.example.com."),
    ))
    .await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: {SELECTORS}\n    records:\n      - selector: badtxt\n",
        resolver("main", main.addr),
        resolver("lagging", lagging.addr),
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(1.0).await;

    let expect = |selector: &str, want: &[&str]| {
        assert_eq!(s.problems(COM, selector), want, "{selector}\n{}", s.text);
    };
    expect("good", &[]);
    expect("missing", &["missing"]);
    expect("notprop", &["not_propagated"]);
    expect("typo", &["target_typo"]);
    expect("wrong", &["wrong_target"]);
    expect("region", &["wrong_region"]);
    expect("arec", &["a_record", "missing"]);
    expect("txtkey", &["missing", "txt_instead_of_cname"]);
    expect("doubled", &["doubled_domain", "missing"]);
    expect("nounder", &["missing", "missing_underscore"]);
    expect("nokey", &["key_missing"]);
    expect("revoked", &["key_invalid"]);
    expect("weak", &["key_weak"]);
    expect("badtxt", &["key_invalid"]);

    // A records show in dkim_record_info, sorted, on every resolver that answered.
    for r in ["main", "lagging"] {
        let info = s.find(
            RECORD_INFO.name,
            &[("domain", COM), ("selector", "arec"), ("resolver", r)],
        );
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].labels["record_type"], "a");
        assert_eq!(info[0].labels["value"], "52.94.236.248,2600:1f18::1");
    }
    let record = |sel| [("domain", COM), ("selector", sel)];
    assert_eq!(
        s.value(RECORD_RESOLVERS_AGREE.name, &record("arec")),
        Some(1.0)
    );
    assert_eq!(s.value(KEY_LENGTH.name, &record("good")), Some(2048.0));
    assert_eq!(s.value(KEY_LENGTH.name, &record("weak")), Some(512.0));
    assert_eq!(s.value(KEY_LENGTH.name, &record("revoked")), None);
    assert_eq!(
        s.value(RECORD_PROPAGATION_RATIO.name, &record("notprop")),
        Some(0.5)
    );
    assert_eq!(s.value(DOMAIN_HEALTHY.name, &[("domain", COM)]), Some(0.0));

    // Fix the typo and publish the missing record: their problems go away.
    let fixed = zone
        .without("typo._domainkey.example.com.")
        .cname("typo._domainkey.example.com.", "typo.dkim.amazonses.com.")
        .txt("typo.dkim.amazonses.com.", &["v=DKIM1; k=rsa; p=", &strong])
        .cname(
            "missing._domainkey.example.com.",
            "missing.dkim.amazonses.com.",
        )
        .txt(
            "missing.dkim.amazonses.com.",
            &["v=DKIM1; k=rsa; p=", &strong],
        );
    main.set(Behaviour::Answer(fixed.clone()));
    lagging.set(Behaviour::Answer(
        fixed.without("notprop._domainkey.example.com."),
    ));
    let rounds = s.value("dkim_check_rounds_total", &[]).unwrap();
    let s = daemon.wait_rounds(rounds + 2.0).await;
    assert_eq!(s.problems(COM, "typo"), Vec::<String>::new(), "{}", s.text);
    assert_eq!(s.problems(COM, "missing"), Vec::<String>::new());
    assert_eq!(s.problems(COM, "notprop"), ["not_propagated"]);
    assert!(!s.text.contains(r#"selector="typo",problem="#));
    daemon.stop().await;
}

#[tokio::test]
async fn authoritative_nameservers_are_asked_directly() {
    let key = support::rsa_public_key_base64(1024);
    let records = Zone::new()
        .cname(
            "stable._domainkey.example.com.",
            "stable.dkim.amazonses.com.",
        )
        .txt("stable.dkim.amazonses.com.", &["p=", &key])
        .cname("fresh._domainkey.example.com.", "fresh.dkim.amazonses.com.")
        .txt("fresh.dkim.amazonses.com.", &["p=", &key]);
    // ns1 serves the current zone, ns2 an old one without `fresh`, ns3 is lame (no AA).
    let (port, nameservers) = TestDns::start_nameservers(vec![
        Behaviour::Answer(records.clone()),
        Behaviour::Answer(records.clone().without("fresh._domainkey.example.com.")),
        Behaviour::NotAuthoritative(records.clone()),
    ])
    .await;
    // The public resolver knows the delegation and the nameservers' addresses.
    let public = records
        .ns("example.com.", "ns1.example.com.")
        .ns("example.com.", "ns2.example.com.")
        .ns("example.com.", "ns3.example.com.")
        .a("ns1.example.com.", [127, 0, 0, 2])
        .a("ns2.example.com.", [127, 0, 0, 3])
        .a("ns3.example.com.", [127, 0, 0, 4]);
    let public = TestDns::start(Behaviour::Answer(public)).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nresolvers:\n{}domains:\n  - domain: example.com\n    provider: ses\n    selectors: [stable, fresh]\n",
        resolver("public", public.addr)
    );
    let options = dkim_exporter::Options {
        nameserver_port: port,
        ..Default::default()
    };
    let daemon = Daemon::start_with(&yaml, options).await;
    let s = daemon.wait_rounds(1.0).await;

    let at = |sel, r| [("domain", COM), ("selector", sel), ("resolver", r)];
    for ns in ["auth:ns1.example.com", "auth:ns2.example.com"] {
        assert_eq!(
            s.value(RECORD_PRESENT.name, &at("stable", ns)),
            Some(1.0),
            "{ns}\n{}",
            s.text
        );
        assert_eq!(
            s.value(RECORD_CORRECT.name, &at("stable", ns)),
            Some(1.0),
            "{ns}"
        );
    }
    assert_eq!(
        s.value(RECORD_PRESENT.name, &at("fresh", "auth:ns1.example.com")),
        Some(1.0)
    );
    assert_eq!(
        s.value(RECORD_PRESENT.name, &at("fresh", "auth:ns2.example.com")),
        Some(0.0)
    );
    // The lame nameserver is a lookup failure, never a missing record.
    let lame = "auth:ns3.example.com";
    assert_eq!(s.value(RECORD_PRESENT.name, &at("fresh", lame)), None);
    assert_eq!(
        s.value(RECORD_LOOKUP_SUCCESS.name, &at("fresh", lame)),
        Some(0.0)
    );
    assert!(
        s.value(
            LOOKUP_ERRORS_TOTAL.name,
            &[("resolver", lame), ("reason", "lame")]
        ) >= Some(2.0)
    );
    assert_eq!(
        s.value("dkim_resolver_up", &[("resolver", lame)]),
        Some(0.0)
    );

    // Correct on the public resolver and ns1, absent on ns2: not propagated, not missing.
    assert_eq!(s.problems(COM, "fresh"), ["not_propagated"], "{}", s.text);
    assert_eq!(s.problems(COM, "stable"), Vec::<String>::new());
    let record = |sel| [("domain", COM), ("selector", sel)];
    // The ratio counts configured resolvers only; agreement counts nameservers too.
    assert_eq!(
        s.value(RECORD_PROPAGATION_RATIO.name, &record("fresh")),
        Some(1.0)
    );
    assert_eq!(
        s.value(RECORD_RESOLVERS_AGREE.name, &record("fresh")),
        Some(0.0)
    );
    assert_eq!(
        s.value(RECORD_RESOLVERS_AGREE.name, &record("stable")),
        Some(1.0)
    );
    // Nameservers were asked without recursion, each query once per record and round.
    assert!(nameservers.iter().all(|ns| ns.udp_queries() >= 2));
    daemon.stop().await;
}
