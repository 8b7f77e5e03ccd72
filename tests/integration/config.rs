//! Config loading: the shipped example, and every bad config with the exact error it gives.

use std::path::Path;
use std::process::Command;

use dkim_exporter::config::{self, Protocol};
use dkim_exporter::provider::Expected;

/// Each file under tests/testdata/bad/ and the error it must produce, after `FILE:`.
const BAD: &[(&str, &str)] = &[
    (
        "bad_cname.yaml",
        r#"5:16: domains[0].records[0].cname: invalid name "s1..example.net": empty label"#,
    ),
    (
        "bad_duration.yaml",
        r#"1:11: interval: invalid duration "5 minutes": use a number and a unit, like 30s, 5m or 1h30m"#,
    ),
    (
        "dmarc_inline_password.yaml",
        "7:19: dmarc.sources[0].imap.password: the password is never written in the config: use password_file (a file only the exporter can read) or password_env (an environment variable)",
    ),
    (
        "dmarc_plain_not_loopback.yaml",
        "6:14: dmarc.sources[0].imap.tls: tls: none sends the password in the clear, so it is only for a server on a loopback address, not imap.example.com: use tls or starttls",
    ),
    (
        "dmarc_two_kinds.yaml",
        "3:7: dmarc.sources[0]: give exactly one of imap:, s3: or directory:",
    ),
    (
        "dmarc_unknown_field.yaml",
        "2:3: dmarc: unknown field `windw`, expected one of `window`, `fail_share`, `min_messages`, `max_selectors_per_domain`, `sources`",
    ),
    (
        "duplicate_domain.yaml",
        r#"5:13: domains[1].domain: duplicate domain "example.com" (also domains[0])"#,
    ),
    (
        "duplicate_record.yaml",
        r#"6:19: domains[0].records[0].selector: duplicate record: selector "abc" is listed twice for example.com"#,
    ),
    (
        "duplicate_resolver.yaml",
        r#"4:11: resolvers[1].name: duplicate resolver name "google" (also resolvers[0])"#,
    ),
    (
        "hostname_address.yaml",
        r#"3:14: resolvers[0].address: invalid resolver address "dns.google": give an IP address, IP:port, or [IPv6]:port (host names are not accepted: a resolver is needed to find them)"#,
    ),
    (
        "invalid_domain.yaml",
        r#"2:13: domains[0].domain: invalid name "exa mple.com": character ' ' is not allowed"#,
    ),
    (
        "metrics_unknown_detail.yaml",
        "2:11: metrics.detail: unknown variant `summry`, expected `full` or `summary`",
    ),
    (
        "no_records.yaml",
        "2:5: domains[0]: domain example.com lists no records: give selectors (with a provider) or records",
    ),
    (
        "no_resolvers.yaml",
        "1:12: resolvers: at least one resolver is needed (omit the field for the public defaults)",
    ),
    (
        "preset_bad_selector.yaml",
        r#"4:21: domains[0].selectors[1]: provider mailchimp has selectors kN (k2, k3), not "mc1"; list other records under records: with their cname"#,
    ),
    (
        "preset_missing_account.yaml",
        r#"2:5: domains[0]: provider sendgrid needs account: (like u1234.wl001, from SendGrid's DNS page)"#,
    ),
    (
        "preset_missing_tenant.yaml",
        r#"2:5: domains[0]: provider microsoft365 needs tenant_domain: (like contoso.onmicrosoft.com, or contoso.n-v1.dkim.mail.microsoft)"#,
    ),
    (
        "preset_param_of_another.yaml",
        r#"4:14: domains[0].account: account needs provider: sendgrid"#,
    ),
    (
        "region_without_provider.yaml",
        "3:13: domains[0].region: region needs provider: ses",
    ),
    (
        "selector_with_domainkey.yaml",
        r#"6:9: domains[0].selectors[1]: selector "def._domainkey" includes _domainkey: give only the part before it"#,
    ),
    (
        "selectors_without_provider.yaml",
        "3:16: domains[0].selectors: selectors need a provider (provider: ses, sendgrid, …); list other records under records: with their cname",
    ),
    (
        "ses_bad_endpoint.yaml",
        r#"4:15: ses[0].endpoint: invalid endpoint "127.0.0.1:4566": it must start with http:// or https://; give a URL like https://email.eu-west-1.amazonaws.com or http://127.0.0.1:4566"#,
    ),
    (
        "ses_bad_glob.yaml",
        r#"4:32: ses[0].include[1]: invalid glob "bad glob": character ' ' cannot be in a domain name"#,
    ),
    (
        "ses_bad_role_arn.yaml",
        r#"4:15: ses[0].role_arn: invalid role_arn "arn:aws:iam::1234:user/me": give a role ARN like arn:aws:iam::123456789012:role/dkim-read"#,
    ),
    (
        "ses_duplicate_source.yaml",
        r#"4:11: ses[1].name: duplicate source name "prod" (also ses[0])"#,
    ),
    ("ses_no_name.yaml", r#"2:5: ses[0]: missing field `name`"#),
    (
        "ses_unknown_field.yaml",
        r#"4:5: ses[0]: unknown field `regions`, expected one of `name`, `region`, `profile`, `role_arn`, `endpoint`, `refresh`, `include`, `exclude`, `max_requests_per_second`"#,
    ),
    (
        "ses_unknown_region.yaml",
        r#"3:13: ses[0].region: unknown region "eu-middle-1": give an AWS region such as us-east-1 or eu-south-1"#,
    ),
    (
        "ses_zero_rate.yaml",
        r#"4:30: ses[0].max_requests_per_second: invalid rate 0: give a number of requests per second over 0 and at most 1000"#,
    ),
    (
        "short_interval.yaml",
        "2:11: interval: interval must be at least 1s, got 500ms",
    ),
    (
        "template_unknown_placeholder.yaml",
        r#"5:16: domains[0].records[0].cname: unknown placeholder {tenant} in "{selector}.{tenant}.example.net": use {selector}, {domain} or {domain_dashed}"#,
    ),
    (
        "tls_ca_unreadable.yaml",
        "6:18: resolvers[0].tls_ca_file: cannot read tls_ca_file /nonexistent/ca.pem: No such file or directory (os error 2)",
    ),
    (
        "tls_name_on_udp.yaml",
        "4:15: resolvers[0].tls_name: tls_name only applies to protocol tls or https",
    ),
    (
        "tls_without_name.yaml",
        "4:15: resolvers[0].protocol: protocol tls needs tls_name: the name on the resolver's certificate, like cloudflare-dns.com",
    ),
    (
        "unknown_field.yaml",
        "2:1: unknown field `intervall`, expected one of `interval`, `timeout`, `authoritative`, `resolvers`, `domains`, `ses`, `metrics`, `dmarc`",
    ),
    (
        "unknown_protocol.yaml",
        "4:15: resolvers[0].protocol: unknown variant `quic`, expected one of `udp`, `tcp`, `tls`, `https`",
    ),
    (
        "unknown_provider.yaml",
        r#"3:15: domains[0].provider: unknown provider "postmark" (known: ses, sendgrid, microsoft365, mailchimp, mandrill, brevo, google); for others list records with their cname"#,
    ),
    (
        "unknown_record_field.yaml",
        "5:9: domains[0].records[0]: unknown field `target`, expected `selector` or `cname`",
    ),
    (
        "unknown_region.yaml",
        r#"4:13: domains[0].region: unknown region "eu-south-3": give an AWS region such as us-east-1 or eu-south-1"#,
    ),
    (
        "wrong_type.yaml",
        r#"1:16: authoritative: invalid type: string "sometimes", expected a boolean"#,
    ),
    (
        "yaml_syntax.yaml",
        "4:1: did not find expected ',' or ']', while parsing a flow sequence at line 3 column 16",
    ),
    (
        "zero_timeout.yaml",
        "1:10: timeout: timeout must be greater than 0s",
    ),
];

fn bad_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/bad"))
}

#[test]
fn every_bad_config_gives_its_exact_error() {
    for (file, expected) in BAD {
        let path = bad_dir().join(file);
        let err = config::load(&path).expect_err(file);
        assert_eq!(
            err.to_string(),
            format!("{}:{expected}", path.display()),
            "{file}"
        );
    }
}

#[test]
fn every_bad_config_file_is_in_the_table() {
    let mut files: Vec<String> = std::fs::read_dir(bad_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let table: Vec<&str> = BAD.iter().map(|(f, _)| *f).collect();
    assert_eq!(files, table);
}

#[test]
fn the_shipped_example_loads() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"));
    let config::Loaded { config, records } = config::load(path).unwrap();
    assert_eq!(config.interval.as_secs(), 300);
    assert_eq!(config.timeout.as_secs(), 5);
    assert!(config.authoritative);
    let resolvers: Vec<_> = config
        .resolvers
        .iter()
        .map(|r| (r.name.as_str(), r.address.to_string(), r.protocol))
        .collect();
    assert_eq!(
        resolvers,
        [
            ("google", "8.8.8.8:53".to_string(), Protocol::Udp),
            ("cloudflare", "1.1.1.1:53".to_string(), Protocol::Udp),
            ("quad9", "9.9.9.9:53".to_string(), Protocol::Udp),
            ("opendns", "208.67.222.222:53".to_string(), Protocol::Udp),
        ]
    );
    assert_eq!(records.domains.len(), 1);
    let domain = &records.domains[0];
    assert_eq!(domain.name, "clearways.ai");
    let records: Vec<_> = domain
        .records
        .iter()
        .map(|r| (r.selector.as_str(), r.expected.clone()))
        .collect();
    let ses = |t: &str| Expected::Cname(format!("{t}.dkim.amazonses.com").into());
    assert_eq!(
        records,
        [
            (
                "3eipelaisjj5qfbongczhvmxxvullr4m",
                ses("3eipelaisjj5qfbongczhvmxxvullr4m")
            ),
            (
                "bt7u7nxvcwanxk6gh3znbbewvea2f3u5",
                ses("bt7u7nxvcwanxk6gh3znbbewvea2f3u5")
            ),
            (
                "lmy7tl7ecn5dhqpfhdmjsbcpi2af3mtm",
                ses("lmy7tl7ecn5dhqpfhdmjsbcpi2af3mtm")
            ),
        ]
    );
}

#[test]
fn the_example_with_a_bogus_field_is_refused() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"));
    let text = std::fs::read_to_string(path).unwrap();
    let bogus = text.replacen(
        "    provider: ses\n",
        "    provider: ses\n    bogus: 1\n",
        1,
    );
    let err = config::parse(&bogus, "example").unwrap_err().to_string();
    assert!(err.contains("unknown field `bogus`"), "{err}");
}

#[test]
fn mixed_records_and_numeric_selectors() {
    let config = config::parse(
        "domains:\n  - domain: example.org\n    records:\n      - selector: 20230601\n        cname: S1.Example.NET.\n      - selector: mail.Sub\n",
        "t.yaml",
    )
    .unwrap();
    let domain = &config.records.domains[0];
    let records = &domain.records;
    assert_eq!(records[0].selector, "20230601");
    assert_eq!(
        records[0].expected,
        Expected::Cname("s1.example.net".into())
    );
    assert_eq!(records[1].selector, "mail.sub");
    assert_eq!(records[1].expected, Expected::Txt);
    assert_eq!(
        records[1].name(&domain.name),
        "mail.sub._domainkey.example.org"
    );
}

#[test]
fn config_check_flag() {
    let exe = env!("CARGO_BIN_EXE_dkim_exporter");
    let good = Command::new(exe)
        .args(["--config.check", "--config.file"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
        .output()
        .unwrap();
    assert_eq!(good.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        stdout.contains("valid: 1 domain, 3 records, 4 resolvers"),
        "{stdout}"
    );

    let bad_path = bad_dir().join("duplicate_resolver.yaml");
    let bad = Command::new(exe)
        .args(["--config.check", "--config.file"])
        .arg(&bad_path)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:4:11: resolvers[1].name: duplicate",
            bad_path.display()
        )),
        "{stderr}"
    );

    let missing = Command::new(exe)
        .args(["--config.check", "--config.file", "/nonexistent/dkim.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}
