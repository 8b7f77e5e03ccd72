//! Reading DMARC report messages from an S3 bucket against moto (tests/integration/support/moto.rs),
//! through the real AWS SDK client: the buckets and objects are made with the SDK too. What moto
//! cannot do (a body without a length, or longer than it said) is tested against a loopback
//! fake (tests/integration/dmarc_s3.rs).
//!
//! `#[ignore]`d: .ci/run installs moto and runs them with
//! `cargo test --test integration -- --ignored dmarc_s3_moto::`.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use dkim_exporter::dmarc::s3::{self, Error, Object, Seen, Settings, TooLarge};
use futures_util::StreamExt as _;

use crate::support::moto::{Moto, credentials};

const REGION: &str = "eu-west-1";

fn settings(moto: &Moto, bucket: &str) -> Settings {
    Settings {
        bucket: bucket.to_string(),
        prefix: "dmarc/".to_string(),
        region: REGION.to_string(),
        profile: None,
        role_arn: None,
        endpoint: Some(moto.endpoint()),
    }
}

async fn create_bucket(admin: &Client, bucket: &str) {
    admin
        .create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(REGION))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Puts `body` at `key`; returns its ETag, as PutObject answers it.
async fn put(admin: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let output = admin
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
    output.e_tag().unwrap().to_string()
}

/// Puts each of `keys` with its own name as its body, 16 at a time.
async fn put_many(admin: &Client, bucket: &str, keys: &[String]) {
    futures_util::stream::iter(keys)
        .map(|key| put(admin, bucket, key, key.as_bytes()))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

fn keys(objects: &[Object]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

#[tokio::test]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn listing_takes_every_page_of_the_prefix_and_keeps_the_window() {
    let moto = Moto::start().await;
    let admin = moto.s3(REGION);
    create_bucket(&admin, "reports").await;
    // More than a page of 1,000 under the prefix, and keys beside it that are not listed.
    let early: Vec<String> = (0..1100).map(|i| format!("dmarc/{i:05}")).collect();
    put_many(&admin, "reports", &early).await;
    put_many(
        &admin,
        "reports",
        &["other/1".to_string(), "dmarc".to_string()],
    )
    .await;
    put(&admin, "reports", "dmarc/", b"").await;
    // LastModified is whole seconds: a later second for the late objects.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late: Vec<String> = (0..3).map(|i| format!("dmarc/late{i}")).collect();
    put_many(&admin, "reports", &late).await;

    let settings = settings(&moto, "reports");
    let client = s3::connect(&settings, Some(&credentials())).await;
    let all = s3::list(&client, &settings, 0).await.unwrap();
    let expected: Vec<&str> = early.iter().chain(&late).map(String::as_str).collect();
    assert_eq!(keys(&all), expected);
    let first = &all[0];
    assert_eq!(first.size, "dmarc/00000".len() as u64);
    // The ETag S3 gives (quoted), without its quotes.
    let head = admin
        .head_object()
        .bucket("reports")
        .key("dmarc/00000")
        .send()
        .await
        .unwrap();
    assert_eq!(format!("\"{}\"", first.etag), head.e_tag().unwrap());

    // The late puts may straddle a second: the window starts at the earliest of them, which the
    // sleep put past every early one.
    let (early_listed, late_listed) = all.split_at(early.len());
    let early_end = early_listed.iter().map(|o| o.last_modified_unix).max();
    let since = late_listed.iter().map(|o| o.last_modified_unix).min();
    assert!(since > early_end, "{since:?} after {early_end:?}");
    let recent = s3::list(&client, &settings, since.unwrap()).await.unwrap();
    assert_eq!(
        keys(&recent),
        late.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let last = all.iter().map(|o| o.last_modified_unix).max().unwrap();
    assert!(
        s3::list(&client, &settings, last + 1)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn get_returns_the_bytes_within_the_bound() {
    let moto = Moto::start().await;
    let admin = moto.s3(REGION);
    create_bucket(&admin, "reports").await;
    let message = b"From: dmarc-noreply@example.net\r\nSubject: Report\r\n\r\nbody\r\n";
    put(&admin, "reports", "dmarc/message", message).await;
    let settings = settings(&moto, "reports");
    let client = s3::connect(&settings, Some(&credentials())).await;
    let size = message.len() as u64;

    let read = s3::get(&client, &settings, "dmarc/message", size).await;
    assert_eq!(read, Ok(Ok(message.to_vec())));
    let refused = s3::get(&client, &settings, "dmarc/message", size - 1).await;
    assert_eq!(
        refused,
        Ok(Err(TooLarge {
            size: Some(size),
            max_bytes: size - 1
        }))
    );

    let missing = s3::get(&client, &settings, "dmarc/missing", size)
        .await
        .unwrap_err();
    let text = missing.to_string();
    assert!(matches!(missing, Error::Get { .. }), "{text}");
    assert!(
        text.starts_with("s3 reports/dmarc/: get dmarc/missing: ") && text.contains("NoSuchKey"),
        "{text}"
    );
}

#[tokio::test]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn a_missing_bucket_is_an_error_that_names_it() {
    let moto = Moto::start().await;
    let settings = settings(&moto, "no-such-reports");
    let client = s3::connect(&settings, Some(&credentials())).await;
    let error = s3::list(&client, &settings, 0).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::List { .. }), "{text}");
    assert!(
        text.starts_with("s3 no-such-reports/dmarc/: list: ") && text.contains("NoSuchBucket"),
        "{text}"
    );
    assert!(!text.contains('{'), "a debug dump in {text}");
}

#[tokio::test]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn seen_fetches_the_new_and_the_changed_once_and_forgets_the_deleted() {
    let moto = Moto::start().await;
    let admin = moto.s3(REGION);
    create_bucket(&admin, "reports").await;
    for key in ["dmarc/a", "dmarc/b", "dmarc/c"] {
        put(&admin, "reports", key, key.as_bytes()).await;
    }
    let settings = settings(&moto, "reports");
    let client = s3::connect(&settings, Some(&credentials())).await;
    let mut seen = Seen::new();

    // Reads what a pass says to fetch, as the caller would; returns the keys and what they held.
    async fn read(
        client: &Client,
        settings: &Settings,
        seen: &mut Seen,
    ) -> (Vec<String>, Vec<String>) {
        let pass = seen.pass(s3::list(client, settings, 0).await.unwrap());
        let mut read = Vec::new();
        for object in &pass.fetch {
            let bytes = s3::get(client, settings, &object.key, 1000)
                .await
                .unwrap()
                .unwrap();
            read.push(String::from_utf8(bytes).unwrap());
            seen.read(object);
        }
        (read, pass.gone)
    }

    let (fetched, gone) = read(&client, &settings, &mut seen).await;
    assert_eq!(fetched, ["dmarc/a", "dmarc/b", "dmarc/c"]);
    assert!(gone.is_empty());
    let (fetched, gone) = read(&client, &settings, &mut seen).await;
    assert!(
        fetched.is_empty() && gone.is_empty(),
        "{fetched:?} {gone:?}"
    );

    put(&admin, "reports", "dmarc/b", b"b, again").await;
    admin
        .delete_object()
        .bucket("reports")
        .key("dmarc/c")
        .send()
        .await
        .unwrap();
    let (fetched, gone) = read(&client, &settings, &mut seen).await;
    assert_eq!(fetched, ["b, again"]);
    assert_eq!(gone, ["dmarc/c"]);
    assert_eq!(seen.len(), 2);
    let (fetched, gone) = read(&client, &settings, &mut seen).await;
    assert!(
        fetched.is_empty() && gone.is_empty(),
        "{fetched:?} {gone:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto_server: .ci/run installs it and runs these"]
async fn an_s3_source_through_the_daemon() {
    use crate::dmarc::{config, dns, signatures};
    use crate::support::Daemon;
    use crate::support::dmarc::{Row, gzip, message, now, report_xml};
    use dkim_exporter::metrics::{DMARC_REPORT_ERRORS_TOTAL, DMARC_REPORTS, DMARC_SOURCE_UP};

    let moto = Moto::start().await;
    let admin = moto.s3(REGION);
    create_bucket(&admin, "inbound").await;
    let xml = report_xml(
        "google.com",
        "g1",
        now() - 3600,
        "broken.example",
        &[Row {
            count: 120,
            from: "broken.example",
            dkim: "fail",
            spf: "pass",
            signatures: &[("broken.example", "s1", "fail")],
        }],
        false,
    );
    // What an SES receipt rule stores: the whole message, under the rule's prefix.
    let stored = message(
        "",
        "noreply-dmarc-support@google.com",
        "google.com!broken.example!1.xml.gz",
        "application/gzip",
        &gzip(xml.as_bytes()),
    );
    put(
        &admin,
        "inbound",
        "dmarc/AMAZON_SES_SETUP_NOTIFICATION",
        b"not a report",
    )
    .await;
    put(&admin, "inbound", "dmarc/0001", stored.as_bytes()).await;
    put(&admin, "inbound", "elsewhere/0002", stored.as_bytes()).await;
    let dns = dns().await;
    let source = format!(
        "    - name: ses-inbound\n      refresh: 1s\n      s3: {{bucket: inbound, prefix: dmarc/, \
         region: {REGION}, endpoint: \"{}\"}}\n",
        moto.endpoint()
    );
    let options = dkim_exporter::Options {
        aws_credentials: Some(credentials()),
        ..Default::default()
    };
    let daemon = Daemon::start_with(&config(&dns, &source), options).await;
    let inbound = [("source", "ses-inbound")];
    let scrape = daemon
        .wait_for("the stored report read", |s| {
            s.value(DMARC_REPORTS.name, &inbound) == Some(1.0)
                && s.problems("broken.example", "s1") == ["failing_at_receivers"]
        })
        .await;
    assert_eq!(scrape.value(DMARC_SOURCE_UP.name, &inbound), Some(1.0));
    assert_eq!(
        signatures(&scrape, "broken.example", "s1", "fail"),
        Some(120.0)
    );
    assert_eq!(
        scrape.value(
            DMARC_REPORT_ERRORS_TOTAL.name,
            &[("source", "ses-inbound"), ("reason", "not_a_report")]
        ),
        Some(1.0)
    );
    // The object deleted: what it held no longer counts.
    admin
        .delete_object()
        .bucket("inbound")
        .key("dmarc/0001")
        .send()
        .await
        .unwrap();
    let scrape = daemon
        .wait_for("the deleted report gone", |s| {
            s.value(DMARC_REPORTS.name, &inbound) == Some(0.0)
        })
        .await;
    assert_eq!(
        scrape.problems("broken.example", "s1"),
        Vec::<String>::new()
    );
    daemon.stop().await;
}
