//! The AWS SDK client of a `ses:` source.
//!
//! Credentials come from the standard chain (environment, shared config and credentials files,
//! web identity for EKS IRSA, ECS container and EC2 instance metadata), or from `profile`;
//! with `role_arn` they are used to assume that role. HTTPS goes through rustls with the ring
//! provider the DNS-over-TLS resolvers already use, so the SDK adds no second crypto library.
//! The SDK retries throttling (`TooManyRequestsException`) and transient errors with
//! exponential backoff, a bounded number of times, and every call has a time limit.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::{Region, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::SesSource;

/// Attempts per API call, the first included: throttling and transient errors are retried.
pub const MAX_ATTEMPTS: u32 = 4;
/// The first retry's backoff; each next one doubles it, with jitter.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// One attempt of one API call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// One API call, its retries included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// The SESv2 client of `source`, with its credentials chain, role and endpoint.
///
/// Nothing is sent yet: credentials are looked up at the first call, so a missing credential
/// shows as that call's error. `credentials`, when given, replace the chain and `profile`.
pub async fn connect(
    source: &SesSource,
    credentials: Option<&SharedCredentialsProvider>,
) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(source.region.clone()))
        .http_client(http_client())
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    match (credentials, &source.profile) {
        (Some(credentials), _) => loader = loader.credentials_provider(credentials.clone()),
        (None, Some(profile)) => loader = loader.profile_name(profile),
        (None, None) => {}
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_sesv2::config::Builder::from(&shared);
    if let Some(role_arn) = &source.role_arn {
        let role = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name("dkim_exporter")
            .configure(&shared)
            .build()
            .await;
        config = config.credentials_provider(role);
    }
    if let Some(endpoint) = &source.endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// HTTPS (and plain HTTP, for a loopback endpoint) through rustls with ring.
pub fn http_client() -> aws_sdk_sesv2::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Throttling and transient errors retried with exponential backoff, [`MAX_ATTEMPTS`] in all.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Time limits of one attempt and one call.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_TIMEOUT)
        .build()
}
