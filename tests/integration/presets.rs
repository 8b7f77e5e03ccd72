//! The provider presets and `cname:` templates: a domain configured in two lines, its default
//! selectors checked against an in-process DNS server with correct, wrong and missing records,
//! through the daemon and through `check`.

use crate::support;

use dkim_exporter::metrics::RECORD_CORRECT;
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, Scrape};

/// A CNAME from `{selector}._domainkey.{domain}` to `target`, with a key at the target.
fn cname_with_key(zone: Zone, selector: &str, domain: &str, target: &str, key: &str) -> Zone {
    zone.cname(
        &format!("{selector}._domainkey.{domain}."),
        &format!("{target}."),
    )
    .txt(&format!("{target}."), &["v=DKIM1; k=rsa; p=", key])
}

/// Every preset's domain: one record correct, one wrong or missing.
fn zone(key: &str) -> Zone {
    let mut zone = Zone::new();
    // SendGrid: s1 correct, s2 at another account.
    zone = cname_with_key(
        zone,
        "s1",
        "sg.test",
        "s1.domainkey.u1234.wl001.sendgrid.net",
        key,
    );
    zone = cname_with_key(
        zone,
        "s2",
        "sg.test",
        "s2.domainkey.u9876.wl042.sendgrid.net",
        key,
    );
    // Microsoft 365: selector1 correct, selector2 missing.
    zone = cname_with_key(
        zone,
        "selector1",
        "mail.m365.test",
        "selector1-mail-m365-test._domainkey.contoso.onmicrosoft.com",
        key,
    );
    // Mailchimp: k2 correct, k3 mistyped.
    zone = cname_with_key(zone, "k2", "mc.test", "dkim2.mcsv.net", key);
    zone = cname_with_key(zone, "k3", "mc.test", "dkim3.mcsv.ne", key);
    // Mandrill: mte1 correct, mte2 missing.
    zone = cname_with_key(zone, "mte1", "md.test", "dkim1.mandrillapp.com", key);
    // Brevo: both correct.
    zone = cname_with_key(zone, "brevo1", "bv.test", "b1.bv-test.dkim.brevo.com", key);
    zone = cname_with_key(zone, "brevo2", "bv.test", "b2.bv-test.dkim.brevo.com", key);
    // Brevo on another domain: brevo1 pointing at the first domain's target (one character
    // off: a typo), brevo2 missing.
    zone = cname_with_key(zone, "brevo1", "bv2.test", "b1.bv-test.dkim.brevo.com", key);
    // Google Workspace: a TXT key; on another domain, a revoked one.
    zone = zone.txt("google._domainkey.gw.test.", &["v=DKIM1; k=rsa; p=", key]);
    zone = zone.txt("google._domainkey.gw2.test.", &["v=DKIM1; k=rsa; p="]);
    // A template: {selector}-{domain_dashed}.
    zone = cname_with_key(
        zone,
        "sel",
        "tpl.test",
        "sel-tpl-test.keys.example.net",
        key,
    );
    // Domains exist even where a record is missing.
    for domain in [
        "sg.test",
        "mail.m365.test",
        "mc.test",
        "md.test",
        "bv.test",
        "gw.test",
    ] {
        zone = zone.a(&format!("{domain}."), [192, 0, 2, 1]);
    }
    zone
}

const DOMAINS: &str = "domains:
  - domain: sg.test
    provider: sendgrid
    account: u1234.wl001
  - domain: mail.m365.test
    provider: microsoft365
    tenant_domain: contoso.onmicrosoft.com
  - domain: mc.test
    provider: mailchimp
  - domain: md.test
    provider: mandrill
  - domain: bv.test
    provider: brevo
  - domain: gw.test
    provider: google
  - domain: bv2.test
    provider: brevo
  - domain: gw2.test
    provider: google
  - domain: tpl.test
    records:
      - selector: sel
        cname: \"{selector}-{domain_dashed}.keys.example.net\"
";

#[tokio::test]
async fn every_preset_through_the_daemon() {
    let key = support::rsa_public_key_base64(2048);
    let dns = TestDns::start(Behaviour::Answer(zone(&key))).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}{DOMAINS}",
        support::resolver("dns", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(2.0).await;
    let correct = |domain, selector| {
        s.value(
            RECORD_CORRECT.name,
            &[("domain", domain), ("selector", selector)],
        )
    };
    for (domain, selector) in [
        ("sg.test", "s1"),
        ("mail.m365.test", "selector1"),
        ("mc.test", "k2"),
        ("md.test", "mte1"),
        ("bv.test", "brevo1"),
        ("bv.test", "brevo2"),
        ("gw.test", "google"),
        ("tpl.test", "sel"),
    ] {
        assert_eq!(correct(domain, selector), Some(1.0), "{domain} {selector}");
        assert!(
            s.problems(domain, selector).is_empty(),
            "{domain} {selector}"
        );
    }
    assert_eq!(s.problems("sg.test", "s2"), ["wrong_target"]);
    assert_eq!(s.problems("mail.m365.test", "selector2"), ["missing"]);
    assert_eq!(s.problems("mc.test", "k3"), ["target_typo"]);
    assert_eq!(s.problems("md.test", "mte2"), ["missing"]);
    assert_eq!(s.problems("bv2.test", "brevo1"), ["target_typo"]);
    assert_eq!(s.problems("bv2.test", "brevo2"), ["missing"]);
    assert_eq!(s.problems("gw2.test", "google"), ["key_invalid"]);
    daemon.stop().await;
}

#[tokio::test]
async fn presets_through_check_and_probe() {
    let key = support::rsa_public_key_base64(2048);
    let dns = TestDns::start(Behaviour::Answer(zone(&key))).await;
    let resolver = format!("--resolver={}", dns.addr);

    // Two lines on the command line: the preset's own selectors.
    let (code, out, err) = support::run_check(
        &[
            "sg.test",
            "--provider=sendgrid",
            "--account=u1234.wl001",
            &resolver,
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "OK      s1._domainkey.sg.test  (expects CNAME s1.domainkey.u1234.wl001.sendgrid.net"
        ),
        "{out}"
    );
    assert!(out.contains("problem wrong_target"), "{out}");

    let (code, out, err) = support::run_check(
        &["bv.test", "--provider=brevo", &resolver],
        Default::default(),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("brevo2._domainkey.bv.test"), "{out}");

    // A preset's parameter is required, and belongs to its provider.
    let (code, _, err) = support::run_check(
        &["sg.test", "--provider=sendgrid", &resolver],
        Default::default(),
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("provider sendgrid needs account"), "{err}");
    let (code, _, err) = support::run_check(
        &[
            "sg.test",
            "--provider=ses",
            "--selector=a",
            "--account=x",
            &resolver,
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("account needs provider sendgrid"), "{err}");

    // /probe takes the same words.
    let yaml = format!(
        "interval: 1h\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}",
        support::resolver("dns", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let (status, body) = daemon
        .get("/probe?target=mail.m365.test&provider=microsoft365&tenant_domain=contoso.onmicrosoft.com")
        .await;
    assert_eq!(status, 200, "{body}");
    let s = Scrape::parse(&body);
    assert_eq!(
        s.value(
            RECORD_CORRECT.name,
            &[("domain", "mail.m365.test"), ("selector", "selector1")]
        ),
        Some(1.0)
    );
    assert_eq!(s.problems("mail.m365.test", "selector2"), ["missing"]);
    daemon.stop().await;
}

#[tokio::test]
async fn key_tags_are_read_from_real_keys() {
    use base64::Engine as _;
    let rsa = support::rsa_public_key_base64(2048);
    let ed25519 = {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
    };
    let zone = Zone::new()
        .txt(
            "testing._domainkey.keys.test.",
            &["v=DKIM1; t=y; k=rsa; p=", &rsa],
        )
        .txt("sha1._domainkey.keys.test.", &["v=DKIM1; h=sha1; p=", &rsa])
        .txt(
            "both._domainkey.keys.test.",
            &["v=DKIM1; h=sha1:sha256; p=", &rsa],
        )
        .txt(
            "ed._domainkey.keys.test.",
            &["v=DKIM1; k=ed25519; p=", &ed25519],
        )
        .txt("dsa._domainkey.keys.test.", &["v=DKIM1; k=dsa; p=", &rsa]);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:
  - domain: keys.test
    records:
      - selector: testing
      - selector: sha1
      - selector: both
      - selector: ed
      - selector: dsa
",
        support::resolver("dns", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(2.0).await;
    assert_eq!(s.problems("keys.test", "testing"), ["key_testing"]);
    assert_eq!(s.problems("keys.test", "sha1"), ["key_sha1_only"]);
    assert!(s.problems("keys.test", "both").is_empty());
    assert!(s.problems("keys.test", "ed").is_empty());
    assert_eq!(
        s.value(
            dkim_exporter::metrics::KEY_LENGTH.name,
            &[("domain", "keys.test"), ("selector", "ed")]
        ),
        Some(256.0)
    );
    assert_eq!(s.problems("keys.test", "dsa"), ["key_invalid"]);

    // check names the tags and the unknown algorithm.
    let (code, out, _) = support::run_check(
        &[
            "keys.test",
            "--selector=testing",
            "--selector=dsa",
            &format!("--resolver={}", dns.addr),
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("problem key_testing: the record: t=y, the domain is testing DKIM"),
        "{out}"
    );
    assert!(out.contains("unknown key type k=dsa"), "{out}");
    // The tags are shown, not only a hash of the TXT.
    assert!(
        out.contains("testing._domainkey.keys.test  (expects TXT DKIM key, key 2048 bits t=y)"),
        "{out}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn a_flattened_cname_is_told_from_a_records() {
    let zone = Zone::new()
        // The DNS host answers with the target's own addresses: flattened.
        .a("flat._domainkey.fl.test.", [192, 0, 2, 10])
        .a("flat.dkim.amazonses.com.", [192, 0, 2, 10])
        // Addresses of something else: A records typed in by hand.
        .a("arec._domainkey.fl.test.", [192, 0, 2, 99])
        .a("arec.dkim.amazonses.com.", [192, 0, 2, 11])
        .a("fl.test.", [192, 0, 2, 1]);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:
  - domain: fl.test
    provider: ses
    selectors: [flat, arec]
",
        support::resolver("dns", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon
        .wait_for("both records diagnosed", |s| {
            s.problems("fl.test", "flat").len() == 2 && s.problems("fl.test", "arec").len() == 2
        })
        .await;
    assert_eq!(
        s.problems("fl.test", "flat"),
        ["cname_flattened", "missing"]
    );
    assert_eq!(s.problems("fl.test", "arec"), ["a_record", "missing"]);
    daemon.stop().await;
}

#[tokio::test]
async fn every_fix_that_is_a_record_says_what_to_paste_and_where() {
    let zone = Zone::new()
        .ns("paste.test.", "ns1.paste.test.")
        .a("ns1.paste.test.", [127, 0, 0, 2])
        .a("paste.test.", [192, 0, 2, 1])
        .cname("typo._domainkey.paste.test.", "typo.dkim.amazonses.co.");
    let (port, _nameservers) =
        TestDns::start_nameservers(vec![Behaviour::Answer(zone.clone())]).await;
    let resolver = TestDns::start(Behaviour::Answer(zone)).await;
    let config = dkim_exporter::config::parse(
        &format!(
            "timeout: 1s\nresolvers:\n{}domains:
  - domain: paste.test
    provider: ses
    selectors: [sel, typo]
  - domain: paste.test.example
    records:
      - selector: mail
",
            support::resolver("dns", resolver.addr)
        ),
        "test.yaml",
    )
    .unwrap();
    let dkim_exporter::config::Loaded { config, records } = config;
    let report = dkim_exporter::check_once::check(config, &records, port).await;

    let text = report.to_text(false);
    for line in [
        "      problem missing: no record on dns, auth:ns1.paste.test; the domain's DNS is served by ns1.paste.test",
        "        paste: name sel._domainkey  type CNAME  value sel.dkim.amazonses.com",
        "        zone file: sel._domainkey.paste.test. 300 IN CNAME sel.dkim.amazonses.com.",
        "        where: your DNS is served by ns1.paste.test: add it there",
        "        paste: name typo._domainkey  type CNAME  value typo.dkim.amazonses.com",
        "        zone file: typo._domainkey.paste.test. 300 IN CNAME typo.dkim.amazonses.com.",
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "{line:?} not in:\n{text}"
        );
    }

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let sel = &json["domains"][0]["records"][0]["problems"][0];
    assert_eq!(sel["problem"], "missing");
    assert_eq!(
        sel["paste"],
        serde_json::json!({
            "zone_file": "sel._domainkey.paste.test. 300 IN CNAME sel.dkim.amazonses.com.",
            "name": "sel._domainkey.paste.test",
            "host_form_name": "sel._domainkey",
            "record_type": "CNAME",
            "value": "sel.dkim.amazonses.com",
            "nameservers": ["ns1.paste.test"],
        })
    );
    let typo = &json["domains"][0]["records"][1]["problems"][0];
    assert_eq!(typo["problem"], "target_typo");
    assert_eq!(typo["fix"], "Fix the spelling of the CNAME target.");
    assert_eq!(typo["paste"]["value"], "typo.dkim.amazonses.com");
    // A TXT key: only the sender has the value; a domain with no nameserver found says so.
    let mail = &json["domains"][1]["records"][0]["problems"];
    let pasted: Vec<&serde_json::Value> = mail
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("paste"))
        .collect();
    for paste in pasted {
        assert_eq!(paste["record_type"], "TXT");
        assert_eq!(
            paste["value"],
            "v=DKIM1; k=rsa; p=<the public key your provider gives you>"
        );
    }
}

#[tokio::test]
async fn check_for_people_and_scripts() {
    let key = support::rsa_public_key_base64(2048);
    let dns = TestDns::start(Behaviour::Answer(zone(&key))).await;
    let resolver = format!("--resolver={}", dns.addr);

    // A one-off record of no preset, by template; a timeout of its own; problems only.
    let (code, out, err) = support::run_check(
        &[
            "tpl.test",
            "--selector=sel",
            "--selector=other",
            "--cname={selector}-{domain_dashed}.keys.example.net",
            "--timeout=2s",
            "--problems-only",
            &resolver,
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(!out.contains("sel._domainkey.tpl.test  "), "{out}");
    assert!(
        out.contains(
            "PROBLEM other._domainkey.tpl.test  (expects CNAME other-tpl-test.keys.example.net)"
        ),
        "{out}"
    );
    assert!(
        out.ends_with(
            "1 domain, 2 records: 1 correct, 1 with problems, 0 unknown; 1 domain needs attention\n"
        ),
        "{out}"
    );

    // JSON for scripts: the version, when, and each domain's status.
    let (code, out, _) = support::run_check(
        &[
            "mc.test",
            "--provider=mailchimp",
            "--format=json",
            &resolver,
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["timestamp"].as_str().unwrap().ends_with('Z'), "{json}");
    assert_eq!(json["domains"][0]["status"], "problem");

    // Usage errors: a provider and a cname; a region with no provider that takes it.
    for (args, reason) in [
        (
            vec![
                "x.test",
                "--selector=s",
                "--provider=ses",
                "--cname=t.example",
            ],
            "cannot be used with",
        ),
        (
            vec!["x.test", "--selector=s", "--region=eu-south-1"],
            "region needs provider ses",
        ),
        (
            vec!["x.test", "--selector=s", "--cname={sel}.example"],
            "unknown placeholder {sel}",
        ),
        (
            vec!["x.test", "--selector=s", "--timeout=0s"],
            "greater than 0s",
        ),
    ] {
        let mut args = args;
        args.push(&resolver);
        let (code, _, err) = support::run_check(&args, Default::default()).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn discover_tries_the_common_selectors_and_names_the_provider() {
    let key = support::rsa_public_key_base64(2048);
    let zone = zone(&key)
        .cname(
            "s1._domainkey.mixed.test.",
            "s1.domainkey.u1234.wl001.sendgrid.net.",
        )
        .cname(
            "selector1._domainkey.mixed.test.",
            "selector1-mixed-test._domainkey.contoso.onmicrosoft.com.",
        )
        .txt(
            "google._domainkey.mixed.test.",
            &["v=DKIM1; k=rsa; p=", &key],
        )
        .cname("mail._domainkey.mixed.test.", "mail.keys.example.net.")
        .a("mixed.test.", [192, 0, 2, 1]);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let resolver = format!("--resolver={}", dns.addr);
    let (code, out, err) =
        support::run_check(&["mixed.test", "--discover", &resolver], Default::default()).await;
    assert_eq!(code, 0, "{out}\n{err}");
    for line in [
        "  found s1._domainkey.mixed.test  CNAME s1.domainkey.u1234.wl001.sendgrid.net  (looks like sendgrid)\n",
        "  found selector1._domainkey.mixed.test  CNAME selector1-mixed-test._domainkey.contoso.onmicrosoft.com  (looks like microsoft365)\n",
        "  found google._domainkey.mixed.test  TXT DKIM key, 2048 bits  (looks like google)\n",
        "  found mail._domainkey.mixed.test  CNAME mail.keys.example.net\n",
        "  Amazon SES tokens are random and cannot be guessed",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    assert_eq!(out.matches("  found ").count(), 4, "{out}");

    let (code, out, _) = support::run_check(
        &["nothing.test", "--discover", "--format=json", &resolver],
        Default::default(),
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["found"], serde_json::json!([]));
    assert_eq!(json["failed"], 0);
    assert!(json["tried"].as_u64().unwrap() >= 30);

    let (code, _, err) = support::run_check(
        &["mixed.test", "--discover", "--selector=s1", &resolver],
        Default::default(),
    )
    .await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn the_inactive_key_of_microsofts_rotating_pair_is_not_a_problem() {
    let key = support::rsa_public_key_base64(2048);
    // selector1 holds the active key; selector2's target has none until Microsoft rotates.
    let zone = cname_with_key(
        Zone::new(),
        "selector1",
        "pair.test",
        "selector1-pair-test._domainkey.contoso.onmicrosoft.com",
        &key,
    )
    .cname(
        "selector2._domainkey.pair.test.",
        "selector2-pair-test._domainkey.contoso.onmicrosoft.com.",
    )
    // Neither target of nokey.test holds a key: both are missing, and that pages.
    .cname(
        "selector1._domainkey.nokey.test.",
        "selector1-nokey-test._domainkey.contoso.onmicrosoft.com.",
    )
    .cname(
        "selector2._domainkey.nokey.test.",
        "selector2-nokey-test._domainkey.contoso.onmicrosoft.com.",
    );
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:
  - domain: pair.test
    provider: microsoft365
    tenant_domain: contoso.onmicrosoft.com
  - domain: nokey.test
    provider: microsoft365
    tenant_domain: contoso.onmicrosoft.com
",
        support::resolver("dns", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon
        .wait_for("nokey.test diagnosed", |s| {
            s.problems("nokey.test", "selector2") == ["key_missing"]
        })
        .await;
    assert!(s.problems("pair.test", "selector1").is_empty());
    assert!(
        s.problems("pair.test", "selector2").is_empty(),
        "{}",
        s.text
    );
    assert_eq!(
        s.value(
            dkim_exporter::metrics::DOMAIN_HEALTHY.name,
            &[("domain", "pair.test")]
        ),
        Some(1.0)
    );
    assert_eq!(s.problems("nokey.test", "selector1"), ["key_missing"]);
    let (_, page) = daemon.get("/domain/pair.test").await;
    assert!(page.contains("inactive key of a rotating pair"), "{page}");
    daemon.stop().await;

    let (code, out, _) = support::run_check(
        &[
            "pair.test",
            "--provider=microsoft365",
            "--tenant-domain=contoso.onmicrosoft.com",
            &format!("--resolver={}", dns.addr),
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("note: the inactive key of a rotating pair"),
        "{out}"
    );
}

#[tokio::test]
async fn a_target_that_is_a_cname_is_followed_to_the_key_and_the_chain_shown() {
    let key = support::rsa_public_key_base64(2048);
    // Brevo's target is itself a CNAME; the key is at the end of the chain.
    let zone = Zone::new()
        .cname(
            "brevo1._domainkey.chain.test.",
            "b1.chain-test.dkim.brevo.com.",
        )
        .cname("b1.chain-test.dkim.brevo.com.", "b1.keys.brevo.example.")
        .txt("b1.keys.brevo.example.", &["v=DKIM1; k=rsa; p=", &key])
        .cname(
            "brevo2._domainkey.chain.test.",
            "b2.chain-test.dkim.brevo.com.",
        )
        .cname("b2.chain-test.dkim.brevo.com.", "b2.keys.brevo.example.")
        .a("chain.test.", [192, 0, 2, 1]);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let (code, out, err) = support::run_check(
        &[
            "chain.test",
            "--provider=brevo",
            &format!("--resolver={}", dns.addr),
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(
            "  OK      brevo1._domainkey.chain.test  (expects CNAME b1.chain-test.dkim.brevo.com, key 2048 bits)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("      chain: b1.chain-test.dkim.brevo.com -> b1.keys.brevo.example\n"),
        "{out}"
    );
    // The end of the second chain holds no key.
    assert!(
        out.contains("      chain: b2.chain-test.dkim.brevo.com -> b2.keys.brevo.example\n"),
        "{out}"
    );
    assert!(out.contains("problem key_missing"), "{out}");
}
