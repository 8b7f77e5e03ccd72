//! Amazon SES discovery against moto (PyPI `moto[server]`), a second, independent loopback
//! implementation of the SES API v2 (and of STS), driven through the real AWS SDK client and
//! the real binary. moto's SESv2 returns no DKIM tokens, so these tests look at identities,
//! statuses and discovery health; the records of tokens are tested against tests/integration/support/ses.rs
//! (tests/integration/ses.rs).
//!
//! They need `moto_server` (tests/integration/support/moto.rs): .ci/run installs moto in a
//! virtualenv and runs them with `cargo test --test integration -- --ignored ses_moto::`.

use crate::support;

use std::net::SocketAddr;
use std::process::Child;
use std::time::Duration;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{DkimSigningAttributes, DkimSigningKeyLength};
use dkim_exporter::metrics::{
    SES_DISCOVERY_SUCCESS, SES_IDENTITIES, SES_IDENTITY_DKIM_STATUS, SES_IDENTITY_SIGNING_ENABLED,
};
use dkim_exporter::ses::{DkimStatus, discover};
use support::dns::{Behaviour, TestDns, Zone};
use support::moto::{Moto, credentials};
use support::{Daemon, Scrape};

/// Creates a domain identity; with `dkim`, with a DKIM signing key length, without, DKIM not
/// started.
///
/// moto (5.2) answers an identity with DKIM signing attributes with its
/// `LastKeyGenerationTimestamp` as an ISO 8601 string where the API has epoch seconds, which
/// the SDK refuses to read: the identity is created, but its response (and every later
/// `GetEmailIdentity` of it) is an error. The listing test uses that as a garbage reply.
async fn create(client: &Client, name: &str, dkim: bool) {
    let mut request = client.create_email_identity().email_identity(name);
    if dkim {
        request = request.dkim_signing_attributes(
            DkimSigningAttributes::builder()
                .next_signing_key_length(DkimSigningKeyLength::Rsa2048Bit)
                .build(),
        );
    }
    let sent = request.send().await;
    if !dkim {
        sent.unwrap();
    }
}

fn source(yaml: &str) -> dkim_exporter::config::SesSource {
    dkim_exporter::config::parse(&format!("ses:\n{yaml}"), "test.yaml")
        .unwrap()
        .config
        .ses
        .remove(0)
}

#[tokio::test]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn moto_listing_takes_every_page_and_maps_the_status() {
    let moto = Moto::start().await;
    let admin = moto.ses("eu-west-1");
    // More than one page of 1,000: the listing must follow NextToken.
    for i in 0..1003 {
        create(&admin, &format!("d{i:04}.example"), false).await;
    }
    create(&admin, "signed.example", true).await;
    create(&admin, "someone@signed.example", false).await;
    let source = source(&format!(
        "  - name: moto\n    region: eu-west-1\n    endpoint: {}\n    max_requests_per_second: 1000\n    exclude: [d1002.example]\n",
        moto.endpoint()
    ));
    let client = dkim_exporter::ses::client::connect(&source, Some(&credentials())).await;
    let listing = discover::discover(&client, &source, None).await.unwrap();
    // 1003 domains, one excluded, and the one moto describes in a way the SDK cannot read:
    // that one is unread (the daemon keeps its previous reading), the others are read. The
    // email identity is not a domain.
    assert_eq!(listing.identities.len(), 1002);
    assert_eq!(listing.unread.len(), 1, "{:?}", listing.unread);
    assert_eq!(listing.unread[0].0, "signed.example");
    assert!(
        listing.unread[0]
            .1
            .contains("GetEmailIdentity signed.example"),
        "{:?}",
        listing.unread
    );
    let plain = listing
        .identities
        .iter()
        .find(|i| i.domain == "d0000.example")
        .unwrap();
    assert_eq!(plain.status, Some(DkimStatus::NotStarted));
    assert!(!plain.signing_enabled);
    assert!(plain.tokens.is_empty());
    assert!(
        !listing
            .identities
            .iter()
            .any(|i| i.domain == "d1002.example")
    );
}

fn status_of(scrape: &Scrape, domain: &str) -> Option<String> {
    scrape
        .find(
            SES_IDENTITY_DKIM_STATUS.name,
            &[("source", "moto"), ("domain", domain)],
        )
        .into_iter()
        .find(|s| s.value == 1.0)
        .and_then(|s| s.labels.get("status").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn moto_identities_come_and_go_and_stay_when_moto_dies() {
    let mut moto = Moto::start().await;
    let admin = moto.ses("us-east-1");
    create(&admin, "first.example", false).await;
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let yaml = format!(
        "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}ses:\n  - name: moto\n    region: us-east-1\n    endpoint: {}\n    refresh: 1s\n    max_requests_per_second: 100\n",
        support::resolver("dns", dns.addr),
        moto.endpoint()
    );
    let options = dkim_exporter::Options {
        aws_credentials: Some(credentials()),
        ..dkim_exporter::Options::default()
    };
    let daemon = Daemon::start_with(&yaml, options).await;
    let s = daemon
        .wait_for("first.example discovered", |s| {
            status_of(s, "first.example").is_some()
        })
        .await;
    assert_eq!(
        status_of(&s, "first.example").as_deref(),
        Some("not_started")
    );
    assert_eq!(
        s.value(
            SES_IDENTITY_SIGNING_ENABLED.name,
            &[("source", "moto"), ("domain", "first.example")]
        ),
        Some(0.0)
    );

    // Added and removed in SES between two listings.
    create(&admin, "second.example", false).await;
    admin
        .delete_email_identity()
        .email_identity("first.example")
        .send()
        .await
        .unwrap();
    let s = daemon
        .wait_for("second.example replaces first.example", |s| {
            status_of(s, "second.example").is_some() && status_of(s, "first.example").is_none()
        })
        .await;
    assert_eq!(
        status_of(&s, "second.example").as_deref(),
        Some("not_started")
    );
    assert!(!s.text.contains("first.example"), "{}", s.text);

    // moto goes away: discovery fails, the last identities stay.
    let _ = moto.child.kill();
    let _ = moto.child.wait();
    let s = daemon
        .wait_for("discovery failing", |s| {
            s.value(SES_DISCOVERY_SUCCESS.name, &[("source", "moto")]) == Some(0.0)
        })
        .await;
    assert_eq!(
        s.value(SES_IDENTITIES.name, &[("source", "moto")]),
        Some(1.0)
    );
    assert_eq!(
        status_of(&s, "second.example").as_deref(),
        Some("not_started")
    );
    daemon.stop().await;
}

/// The binary on `config`, with keys in the environment (the standard chain) and STS at
/// `sts`: returns it, its log lines, and where it listens.
fn spawn_exporter(
    home: &support::TempDir,
    config: &std::path::Path,
    sts: &str,
) -> (Child, std::sync::mpsc::Receiver<String>, SocketAddr) {
    let (remove, mut set) = support::ses::aws_env(home.path(), true);
    set.push(("AWS_ENDPOINT_URL_STS".into(), sts.to_string()));
    let (child, lines) = support::spawn_binary(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--web.listen-address=127.0.0.1:0",
        ],
        (remove, set),
    );
    let address = support::listening_address(&lines);
    (child, lines, address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn moto_role_arn_is_assumed_through_sts_from_the_environment_chain() {
    let moto = Moto::start().await;
    create(&moto.ses("eu-west-1"), "assumed.example", false).await;
    let home = support::TempDir::new("ses-moto-role");
    let dns = TestDns::start(Behaviour::Answer(Zone::new())).await;
    let config = home.write(
        "dkim_exporter.yaml",
        &format!(
            "interval: 1s\ntimeout: 1s\nauthoritative: false\nresolvers:\n{}ses:\n  - name: moto\n    region: eu-west-1\n    role_arn: arn:aws:iam::123456789012:role/dkim-read\n    endpoint: {}\n    refresh: 1s\n",
            support::resolver("dns", dns.addr),
            moto.endpoint()
        ),
    );

    // STS unreachable: the role cannot be assumed, so SES is never asked with the keys alone.
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (mut child, lines, _) =
        spawn_exporter(&home, &config, &format!("http://127.0.0.1:{closed}"));
    let failed = support::wait_line(&lines, "SES discovery failed");
    assert!(failed.contains("source=moto"), "{failed}");
    let _ = child.kill();
    let _ = child.wait();

    // STS at moto: the role is assumed and the identities are listed with its credentials.
    let (mut child, lines, address) = spawn_exporter(&home, &config, &moto.endpoint());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = support::http_get(address, "/metrics").await;
        if body.contains("dkim_ses_discovery_success{source=\"moto\"} 1")
            && body.contains("domain=\"assumed.example\",status=\"not_started\"} 1")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no discovery through the assumed role within 60s:\n{}\n{body}",
            lines.try_iter().collect::<Vec<_>>().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
