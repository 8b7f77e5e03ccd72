//! Fetching a DMARC report object within its bound, against the loopback S3 of
//! tests/integration/support/s3.rs: bodies that say no length, or a length over the bound, are
//! refused without being read to their end. Listing, the window and what was already read are
//! tested against moto (tests/integration/dmarc_s3_moto.rs).

use std::time::Duration;

use dkim_exporter::dmarc::s3::{self, Settings, TooLarge};

use crate::support::moto::credentials;
use crate::support::s3::{FakeS3, LONG};

fn settings(fake: &FakeS3) -> Settings {
    Settings {
        bucket: "reports".to_string(),
        prefix: "dmarc/".to_string(),
        region: "eu-west-1".to_string(),
        profile: None,
        role_arn: None,
        endpoint: Some(fake.endpoint()),
    }
}

/// What the fake had sent once the reader let go, after a moment for the connection to close.
async fn sent_after(fake: &FakeS3) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.sent()
}

#[tokio::test]
async fn a_body_without_a_length_is_read_up_to_the_bound_and_no_further() {
    let fake = FakeS3::start().await;
    let settings = settings(&fake);
    let client = s3::connect(&settings, Some(&credentials())).await;

    let small = s3::get(&client, &settings, "dmarc/small", 500).await;
    assert_eq!(small, Ok(Ok(vec![b'x'; 500])));
    let over = s3::get(&client, &settings, "dmarc/small", 499).await;
    assert_eq!(
        over,
        Ok(Err(TooLarge {
            size: None,
            max_bytes: 499
        }))
    );

    let before = fake.sent();
    let endless = s3::get(&client, &settings, "dmarc/endless", 1000).await;
    assert_eq!(
        endless,
        Ok(Err(TooLarge {
            size: None,
            max_bytes: 1000
        }))
    );
    let sent = sent_after(&fake).await - before;
    assert!(sent < LONG / 4, "{sent} bytes of {LONG} sent");
}

#[tokio::test]
async fn a_length_over_the_bound_is_refused_before_the_body() {
    let fake = FakeS3::start().await;
    let settings = settings(&fake);
    let client = s3::connect(&settings, Some(&credentials())).await;
    let declared = s3::get(&client, &settings, "dmarc/declared", 1 << 20).await;
    assert_eq!(
        declared,
        Ok(Err(TooLarge {
            size: Some(LONG),
            max_bytes: 1 << 20
        }))
    );
    let sent = sent_after(&fake).await;
    assert!(sent < LONG / 4, "{sent} bytes of {LONG} sent");
}
