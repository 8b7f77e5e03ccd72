//! Before it breaks: several keys at one name, a key replaced between rounds (its log line, its
//! first-seen time, its fingerprint series), resolvers serving the old key and the new one,
//! DNSSEC signatures about to expire on the domain's nameservers, and a domain with nothing
//! under `_domainkey`. Each through the real daemon or the real binary, against DNS servers on
//! loopback.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::Digest as _;

use crate::support;

use dkim_exporter::metrics::{
    KEY_FIRST_SEEN_TIMESTAMP_SECONDS, KEY_INFO, RECORD_SIGNATURE_EXPIRY_TIMESTAMP_SECONDS,
};
use support::dns::{Behaviour, TestDns, Zone};
use support::{Daemon, Scrape, resolver};

/// `sha256:` and the first 16 hex digits of the SHA-256 of the decoded key `base64`: the
/// fingerprint as the contract defines it, worked out here apart from the exporter's code.
fn fingerprint(base64: &str) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .unwrap();
    let digest = sha2::Sha256::digest(&der);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The fingerprint label of the record's `dkim_key_info`, when it has exactly one series.
fn key_info(s: &Scrape, domain: &str, selector: &str) -> Option<String> {
    let found = s.find(KEY_INFO.name, &[("domain", domain), ("selector", selector)]);
    assert!(found.len() <= 1, "{}", s.text);
    found
        .first()
        .map(|sample| sample.labels["fingerprint"].clone())
}

#[tokio::test]
async fn two_key_records_at_one_name_are_key_multiple_and_a_non_key_beside_one_is_not() {
    let (one, two) = (
        support::rsa_public_key_base64(2048),
        support::rsa_public_key_base64(1024),
    );
    let zone = Zone::new()
        // Two keys published directly.
        .txt(
            "double._domainkey.example.com.",
            &["v=DKIM1; k=rsa; p=", &one],
        )
        .txt(
            "double._domainkey.example.com.",
            &["v=DKIM1; k=rsa; p=", &two],
        )
        // One key, and an SPF string and a verification token beside it.
        .txt("single._domainkey.example.com.", &["v=spf1 -all"])
        .txt(
            "single._domainkey.example.com.",
            &["v=DKIM1; k=rsa; p=", &one],
        )
        .txt(
            "single._domainkey.example.com.",
            &["google-site-verification=abc"],
        )
        // Two keys at the end of an SES CNAME.
        .cname("ses._domainkey.example.com.", "ses.dkim.amazonses.com.")
        .txt("ses.dkim.amazonses.com.", &["p=", &one])
        .txt("ses.dkim.amazonses.com.", &["p=", &two]);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:\n  - domain: example.com\n    records:\n      - selector: double\n      - selector: single\n      - selector: ses\n        cname: ses.dkim.amazonses.com\n",
        resolver("dns", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(1.0).await;
    assert_eq!(
        s.problems("example.com", "double"),
        ["key_multiple"],
        "{}",
        s.text
    );
    assert_eq!(s.problems("example.com", "ses"), ["key_multiple"]);
    assert_eq!(s.problems("example.com", "single"), Vec::<String>::new());
    assert_eq!(
        key_info(&s, "example.com", "single"),
        Some(fingerprint(&one))
    );

    // The detail names both keys, by fingerprint and size.
    let (status, page) = daemon.get("/domain/example.com").await;
    assert_eq!(status, 200);
    for (key, bits) in [(&one, 2048), (&two, 1024)] {
        let named = format!("{} ({bits}-bit RSA)", fingerprint(key));
        assert!(page.contains(&named), "{named} not on the page:\n{page}");
    }
    assert!(
        page.contains("the record holds 2 DKIM key records"),
        "{page}"
    );
    assert!(page.contains("ses.dkim.amazonses.com holds 2 DKIM key records"));
    daemon.stop().await;

    // `check` says the same, and fails.
    let (code, out, err) = support::run_check(
        &[
            "example.com",
            "--selector",
            "double",
            "--resolver",
            &dns.addr.to_string(),
            "--format",
            "text",
        ],
        Default::default(),
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("problem key_multiple: the record holds 2 DKIM key records"),
        "{out}"
    );
    assert!(
        out.contains("Keep exactly one key record per selector"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_replaced_while_resolvers_disagree_is_named_then_logged_once_it_takes_over() {
    let (old, new) = (
        support::rsa_public_key_base64(1024),
        support::rsa_public_key_base64(2048),
    );
    let serving = |key: &str| {
        Behaviour::Answer(Zone::new().txt("mail._domainkey.example.com.", &["v=DKIM1; p=", key]))
    };
    let (a, b, c) = (
        TestDns::start(serving(&old)).await,
        TestDns::start(serving(&old)).await,
        TestDns::start(serving(&old)).await,
    );
    let dir = support::TempDir::new("keys-change");
    let config = dir.write(
        "config.yaml",
        &format!(
            "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}{}{}domains:\n  - domain: example.com\n    records:\n      - selector: mail\n",
            resolver("a", a.addr),
            resolver("b", b.addr),
            resolver("c", c.addr)
        ),
    );
    let (mut child, lines) = support::spawn_binary(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--web.listen-address=127.0.0.1:0",
        ],
        Default::default(),
    );
    let addr = support::listening_address(&lines);
    let record = [("domain", "example.com"), ("selector", "mail")];
    let old_fingerprint = fingerprint(&old);
    let new_fingerprint = fingerprint(&new);

    // The old key everywhere: its fingerprint, and the time the process first saw it.
    let want = old_fingerprint.clone();
    let s = support::wait_for(addr, "the old key", move |s| {
        key_info(s, "example.com", "mail") == Some(want.clone())
    })
    .await;
    let first_seen = s
        .value(KEY_FIRST_SEEN_TIMESTAMP_SECONDS.name, &record)
        .unwrap();
    assert!((first_seen - now() as f64).abs() < 60.0, "{first_seen}");
    assert_eq!(s.problems("example.com", "mail"), Vec::<String>::new());

    // One resolver serves the new key: named as a key being replaced, not yet the key.
    a.set(serving(&new));
    let s = support::wait_for(addr, "a key being replaced", |s| {
        s.problems("example.com", "mail") == ["not_propagated"]
    })
    .await;
    assert_eq!(
        key_info(&s, "example.com", "mail"),
        Some(old_fingerprint.clone())
    );
    assert_eq!(
        s.value(KEY_FIRST_SEEN_TIMESTAMP_SECONDS.name, &record),
        Some(first_seen)
    );
    let line = support::wait_line(&lines, "problem appeared");
    assert!(
        line.contains(&format!(
            "the key is being replaced: a serves the new key {new_fingerprint} (2048 bits); b, \
             c serve the old key {old_fingerprint} (1024 bits)"
        )),
        "{line}"
    );

    // A second one: the new key takes over, and the change is logged with both keys.
    b.set(serving(&new));
    let line = support::wait_line(&lines, "key changed");
    for part in [
        "domain=example.com",
        "selector=mail",
        &format!("old_fingerprint={old_fingerprint}"),
        "old_bits=1024",
        &format!("new_fingerprint={new_fingerprint}"),
        "new_bits=2048",
        "new_on=\"a, b\"",
        "old_on=c",
    ] {
        assert!(line.contains(part), "{part} not in {line}");
    }
    let want = new_fingerprint.clone();
    let s = support::wait_for(addr, "the new key", move |s| {
        key_info(s, "example.com", "mail") == Some(want.clone())
    })
    .await;
    let changed = s
        .value(KEY_FIRST_SEEN_TIMESTAMP_SECONDS.name, &record)
        .unwrap();
    assert!(changed > first_seen, "{changed} after {first_seen}");
    assert_eq!(s.value("dkim_key_length", &record), Some(2048.0));
    let (_, page) = support::http_get(addr, "/domain/example.com").await;
    assert!(page.contains("key changed"), "{page}");
    assert!(page.contains(&format!(
        "it replaced <code>{old_fingerprint} (1024 bits)</code>"
    )));

    // The last one follows: nothing wrong, one key series, the first-seen time kept.
    c.set(serving(&new));
    let s = support::wait_for(addr, "every resolver on the new key", |s| {
        s.problems("example.com", "mail").is_empty()
    })
    .await;
    assert_eq!(s.find(KEY_INFO.name, &record).len(), 1);
    assert_eq!(
        s.value(KEY_FIRST_SEEN_TIMESTAMP_SECONDS.name, &record),
        Some(changed)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn signatures_expiring_within_three_days_on_the_nameservers_are_dnssec_expiring() {
    let key = support::rsa_public_key_base64(1024);
    let (now, day) = (now(), 86_400);
    let soon = now + 2 * day;
    let later = now + 20 * day;
    // Four domains on one nameserver: signatures made 12 days ago that expire in 2 (the signer
    // stopped), made an hour ago and expiring in 2 (a signer that signs each answer), made a day
    // ago and expiring in 20, and none.
    let served = [
        ("expiring.test", Some((now - 12 * day, soon))),
        ("online.test", Some((now - 3600, soon))),
        ("fresh.test", Some((now - day, later))),
        ("unsigned.test", None),
    ]
    .iter()
    .fold(
        Zone::new().txt("s1.dkim.amazonses.com.", &["p=", &key]),
        |zone, (domain, expire)| {
            let zone = zone
                .cname(
                    &format!("s1._domainkey.{domain}."),
                    "s1.dkim.amazonses.com.",
                )
                .ns(&format!("{domain}."), "ns1.nameservers.test.");
            match expire {
                Some((made, expire)) => zone.signed(&format!("{domain}."), *made, *expire),
                None => zone,
            }
        },
    );
    let (port, nameservers) =
        TestDns::start_nameservers(vec![Behaviour::Answer(served.clone())]).await;
    let public = TestDns::start(Behaviour::Answer(
        served.a("ns1.nameservers.test.", [127, 0, 0, 2]),
    ))
    .await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nresolvers:\n{}domains:\n  - domain: expiring.test\n    provider: ses\n    selectors: [s1]\n  - domain: online.test\n    provider: ses\n    selectors: [s1]\n  - domain: fresh.test\n    provider: ses\n    selectors: [s1]\n  - domain: unsigned.test\n    provider: ses\n    selectors: [s1]\n",
        resolver("public", public.addr)
    );
    let options = dkim_exporter::Options {
        nameserver_port: port,
        ..Default::default()
    };
    let daemon = Daemon::start_with(&yaml, options).await;
    let s = daemon
        .wait_for("a round, with every nameserver's answer", |s| {
            s.value("dkim_check_rounds_total", &[]) >= Some(1.0)
                && [
                    "expiring.test",
                    "online.test",
                    "fresh.test",
                    "unsigned.test",
                ]
                .iter()
                .all(|d| {
                    s.value(
                        "dkim_record_lookup_success",
                        &[
                            ("domain", d),
                            ("selector", "s1"),
                            ("resolver", "auth:ns1.nameservers.test"),
                        ],
                    ) == Some(1.0)
                })
        })
        .await;
    let expiry = |domain| {
        s.value(
            RECORD_SIGNATURE_EXPIRY_TIMESTAMP_SECONDS.name,
            &[("domain", domain), ("selector", "s1")],
        )
    };
    assert_eq!(expiry("expiring.test"), Some(soon as f64), "{}", s.text);
    assert_eq!(expiry("fresh.test"), Some(later as f64));
    assert_eq!(expiry("online.test"), Some(soon as f64));
    // An unsigned zone gets no series.
    assert_eq!(expiry("unsigned.test"), None);
    assert_eq!(s.problems("expiring.test", "s1"), ["dnssec_expiring"]);
    assert_eq!(s.problems("fresh.test", "s1"), Vec::<String>::new());
    // Within 3 days, but made moments ago: a signer at work, not one that stopped.
    assert_eq!(s.problems("online.test", "s1"), Vec::<String>::new());
    assert_eq!(s.problems("unsigned.test", "s1"), Vec::<String>::new());
    let (_, page) = daemon.get("/domain/expiring.test").await;
    assert!(
        page.contains("the DNSSEC signatures over the record expire within 3 days"),
        "{page}"
    );
    assert!(page.contains("auth:ns1.nameservers.test: "));
    assert!(
        page.contains("in 1 day 23 hours") || page.contains("in 2 days"),
        "{page}"
    );
    // Each record was asked of the nameserver (with the DO bit, or no RRSIG would have come).
    assert!(
        nameservers[0].udp_queries() + nameservers[0].tcp_queries() >= 4,
        "{} {}",
        nameservers[0].udp_queries(),
        nameservers[0].tcp_queries()
    );
    daemon.stop().await;
}

#[tokio::test]
async fn nothing_under_domainkey_says_the_domain_has_no_dkim_record_at_all() {
    let key = support::rsa_public_key_base64(1024);
    let zone = Zone::new()
        // gone.test exists, with nothing under _domainkey.
        .a("gone.test.", [192, 0, 2, 1])
        // kept.test has one of its two records.
        .a("kept.test.", [192, 0, 2, 2])
        .cname("s1._domainkey.kept.test.", "s1.dkim.amazonses.com.")
        .txt("s1.dkim.amazonses.com.", &["p=", &key]);
    let dns = TestDns::start(Behaviour::Answer(zone)).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}domains:\n  - domain: gone.test\n    provider: ses\n    selectors: [s1]\n  - domain: kept.test\n    provider: ses\n    selectors: [s1, s2]\n",
        resolver("dns", dns.addr)
    );
    let daemon = Daemon::start(&yaml).await;
    let s = daemon.wait_rounds(1.0).await;
    assert_eq!(s.problems("gone.test", "s1"), ["missing"], "{}", s.text);
    assert_eq!(s.problems("kept.test", "s2"), ["missing"]);
    let all_gone = "_domainkey.gone.test does not exist (NXDOMAIN), so the domain has no DKIM \
                    record at all";
    let (_, page) = daemon.get("/domain/gone.test").await;
    assert!(page.contains(all_gone), "{page}");
    let (_, page) = daemon.get("/domain/kept.test").await;
    assert!(!page.contains("has no DKIM record at all"), "{page}");
    daemon.stop().await;
}
